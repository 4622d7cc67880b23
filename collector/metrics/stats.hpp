#pragma once
// Counters declared once: the vocabulary for statistics structs built from an X-macro list.
//
// A statistics struct (ingest::ShardStats, decode::ExporterStats, http::ServerStats) names its
// counters in one list, one line per counter:
//
//   #define NC_SHARD_STATS(X)
//     X(Counter, uint64_t, datagrams, "datagrams", None, "datagrams", "Datagrams read")
//     X(Counter, uint64_t, bytes, "bytes", Bytes, "", "UDP payload bytes read")
//
// (each line but the last ending in a backslash)
//
//   X(TYPE, ctype, member, "key", UNIT, "column", "help")
//     TYPE     Counter (only grows) or Gauge (goes up and down)
//     ctype    uint64_t, uint32_t, ... or a CountsBy<> (one counter split by a label)
//     member   the C++ member
//     key      the JSON key (status JSON, unchanged for users) and the Prometheus name stem;
//              NC_KEY_PROM("json_key", "prom_stem") when they must differ (promtool refuses
//              names containing a type, e.g. "_counter_")
//     UNIT     None, Bytes or Seconds (Prometheus base-unit suffix _bytes / _seconds)
//     column   the CLI's title for it ("" = not shown by the CLI)
//     help     one line for Prometheus' # HELP and the docs
//
// and `NC_STATS_DEFINE(Struct, NC_SHARD_STATS)` inside the struct generates the members, the
// descriptor table `kMetrics`, `forEach(f)` (f(const MetricInfo&, value&) for every counter in list
// order) and `addCounters(other)` (merge: every counter and gauge is summed). JSON
// (collector/metrics/json.hpp), Prometheus exposition (collector/metrics/metrics.hpp) and the CLI's
// tables are generated from kMetrics/forEach, so adding a counter is one line in the list.
//
// This header depends on the standard library only: data-path libraries (decode, ingest) include
// it without linking anything.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace nc::metrics {

enum class MetricType : uint8_t { kCounter, kGauge };
// Base units only (Prometheus naming): a byte count is _bytes, a duration _seconds.
enum class Unit : uint8_t { kNone, kBytes, kSeconds };

constexpr std::string_view unitSuffix(Unit unit) {
  switch (unit) {
    case Unit::kBytes:
      return "bytes";
    case Unit::kSeconds:
      return "seconds";
    case Unit::kNone:
      break;
  }
  return {};
}

// What one counter is. All strings are literals (static storage).
struct MetricInfo {
  std::string_view key;   // JSON key
  std::string_view name;  // Prometheus name stem (snake_case), usually the key
  MetricType type = MetricType::kCounter;
  Unit unit = Unit::kNone;
  std::string_view label;   // label splitting a CountsBy counter ("reason"), else ""
  std::string_view column;  // CLI title, "" = not shown by the CLI
  std::string_view help;    // one line
};

// Separates the two names given by NC_KEY_PROM.
inline constexpr char kKeyPromSeparator = '|';

// The descriptor of one list entry (what NC_STATS_DEFINE builds for each).
constexpr MetricInfo makeMetricInfo(std::string_view key_prom, MetricType type, Unit unit,
                                    std::string_view label, std::string_view column,
                                    std::string_view help) {
  const size_t bar = key_prom.find(kKeyPromSeparator);
  const std::string_view key = key_prom.substr(0, bar);
  const std::string_view name = bar == std::string_view::npos ? key_prom : key_prom.substr(bar + 1);
  return MetricInfo{key, name, type, unit, label, column, help};
}

// One counter split by a label whose values are the members of an enum: slot i counts Label's
// value i. `Label` provides
//   static constexpr std::string_view key;    // the label name, e.g. "reason"
//   static constexpr size_t first;            // slots below it (a "none" member) are not exposed
//   static std::string_view name(size_t i);   // the label value of slot i
template <typename Label, size_t N>
struct CountsBy : std::array<uint64_t, N> {
  using LabelType = Label;
  // Sum over the exposed slots.
  uint64_t total() const {
    uint64_t t = 0;
    for (size_t i = Label::first; i < N; ++i) {
      t += (*this)[i];
    }
    return t;
  }
};

template <typename T>
struct IsCountsBy : std::false_type {};
template <typename Label, size_t N>
struct IsCountsBy<CountsBy<Label, N>> : std::true_type {};

// The label key of a counter type: "" for plain numbers.
template <typename T>
constexpr std::string_view labelKey() {
  if constexpr (IsCountsBy<T>::value) {
    return T::LabelType::key;
  } else {
    static_assert(std::is_arithmetic_v<T>, "a counter is a number or a CountsBy<>");
    return {};
  }
}

// Merge rule shared by every generated addCounters(): sum.
template <typename T>
constexpr void addInto(T& into, const T& from) {
  if constexpr (IsCountsBy<T>::value) {
    for (size_t i = 0; i < into.size(); ++i) {
      into[i] += from[i];
    }
  } else {
    into += from;
  }
}

}  // namespace nc::metrics

// --- generators for NC_STATS_DEFINE (one per use of the list) ------------------------------------
#define NC_STATS_MEMBER_(TYPE, ctype, member, key, UNIT, column, help) ctype member{};
#define NC_KEY_PROM(json_key, prom_stem) json_key "|" prom_stem
#define NC_STATS_INFO_(TYPE, ctype, member, key, UNIT, column, help)                            \
  ::nc::metrics::makeMetricInfo(key, ::nc::metrics::MetricType::k##TYPE,                        \
                                ::nc::metrics::Unit::k##UNIT, ::nc::metrics::labelKey<ctype>(), \
                                column, help),
#define NC_STATS_VISIT_(TYPE, ctype, member, key, UNIT, column, help) f(kMetrics[i++], s.member);
#define NC_STATS_ADD_(TYPE, ctype, member, key, UNIT, column, help) \
  ::nc::metrics::addInto(member, other.member);

// Inside `struct Self { ... };`: the counters of LIST as members, plus
//   static constexpr std::array<MetricInfo, N> kMetrics;  // in list order
//   template <class F> void forEach(F&& f) [const];       // f(const MetricInfo&, counter&)
//   void addCounters(const Self& other);                  // sums every counter
#define NC_STATS_DEFINE(Self, LIST)                              \
  LIST(NC_STATS_MEMBER_)                                         \
  static constexpr std::array kMetrics = {LIST(NC_STATS_INFO_)}; \
  template <typename F>                                          \
  void forEach(F&& f) const {                                    \
    visitCounters_(*this, f);                                    \
  }                                                              \
  template <typename F>                                          \
  void forEach(F&& f) {                                          \
    visitCounters_(*this, f);                                    \
  }                                                              \
  void addCounters(const Self& other) {                          \
    LIST(NC_STATS_ADD_)                                          \
  }                                                              \
  template <typename S, typename F>                              \
  static void visitCounters_(S& s, F& f) {                       \
    size_t i = 0;                                                \
    LIST(NC_STATS_VISIT_)                                        \
    (void)i;                                                     \
  }
