#pragma once
// nc_metrics: the one registry of the daemon's counters, rendered as Prometheus text exposition
// (format 0.0.4, what `/metrics` serves; collector/http serves it).
//
//   MetricsRegistry registry;
//   registry.add("ingest", [&](MetricWriter& w) { ingest::writeMetrics(ingest, w); });
//   registry.add("store", [&](MetricWriter& w) {
//     w.family("store_usage", MetricType::kGauge, Unit::kBytes, "Bytes on disk").add(usage);
//   });
//   std::string text = registry.render();   // on the control-plane thread, per scrape
//
// Subsystems register a collect callback that appends their families to a MetricWriter; nothing
// is cached or polled in between, so a scrape reads exactly what the status JSON would. Structs
// declared with NC_STATS_DEFINE (collector/metrics/stats.hpp) are written in one call by
// writeStats(). Every family is named net_collector_<name>, with the base-unit suffix (_bytes,
// _seconds) and, for counters, _total added; `net_collector_build_info{version,revision} 1` comes
// first. Where it stops: no HTTP (collector/http), no histograms, no timestamps on samples.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "collector/metrics/stats.hpp"

namespace nc::metrics {

// Content-Type of the text exposition.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";
// Every family's name starts with it.
inline constexpr std::string_view kNamePrefix = "net_collector_";

struct Label {
  std::string_view key;    // [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"
  std::string_view value;  // any bytes: escaped, invalid UTF-8 replaced by U+FFFD
};

// The full family name for `name`: kNamePrefix + name, then "_<unit>" unless name already ends
// with it, then "_total" for a counter unless already there.
std::string familyName(std::string_view name, MetricType type, Unit unit);

// Collects families and samples, then renders them grouped by family (each family's # HELP and
// # TYPE once, its samples after them), whatever order they were added in. Not thread-safe: one
// writer per render. Errors in names are programming errors: family() and add() throw
// std::invalid_argument naming the metric (MetricsRegistry counts and survives them).
class MetricWriter {
 public:
  class Family {
   public:
    // One sample. Integers are written exactly; doubles as Go's ParseFloat reads them (NaN,
    // +Inf, -Inf included). Throws std::invalid_argument on a bad or repeated label key, or a
    // label set already written in this family.
    template <typename T>
    requires std::is_arithmetic_v<T>
    void add(std::span<const Label> labels, T value) {
      if constexpr (std::is_floating_point_v<T>) {
        put(labels, static_cast<double>(value));
      } else if constexpr (std::is_signed_v<T>) {
        put(labels, static_cast<int64_t>(value));
      } else {
        put(labels, static_cast<uint64_t>(value));
      }
    }
    template <typename T>
    requires std::is_arithmetic_v<T>
    void add(std::initializer_list<Label> labels, T value) {
      add(std::span<const Label>(labels.begin(), labels.size()), value);
    }
    template <typename T>
    requires std::is_arithmetic_v<T>
    void add(T value) { add(std::span<const Label>(), value); }
    const std::string& name() const { return name_; }
    MetricType type() const { return type_; }

   private:
    friend class MetricWriter;
    void put(std::span<const Label> labels, uint64_t value);
    void put(std::span<const Label> labels, int64_t value);
    void put(std::span<const Label> labels, double value);
    void putText(std::span<const Label> labels, std::string_view value);

    std::string name_;
    MetricType type_ = MetricType::kGauge;
    std::string help_;
    std::string samples_;                     // rendered sample lines
    std::unordered_set<std::string> series_;  // rendered label sets, to refuse duplicates
  };

  MetricWriter() = default;
  MetricWriter(const MetricWriter&) = delete;
  MetricWriter& operator=(const MetricWriter&) = delete;

  // The family familyName(name, type, unit), created on first use. Asking again for the same
  // name returns the same family (the first help text stays); asking with another type throws.
  Family& family(std::string_view name, MetricType type, Unit unit, std::string_view help);
  // The family of one counter of a stats struct: name "<subsystem>_<info.name>".
  Family& family(std::string_view subsystem, const MetricInfo& info);

  // The exposition text (families in the order they were created).
  std::string text() const;
  size_t familyCount() const { return families_.size(); }

 private:
  std::vector<std::unique_ptr<Family>> families_;
  std::unordered_map<std::string, Family*> by_name_;
};

// Writes one sample per counter of `stats` (a struct with NC_STATS_DEFINE) into the families
// "<subsystem>_<key>", each with `labels`; a CountsBy counter writes one sample per exposed slot
// with its label added.
template <typename Stats>
void writeStats(MetricWriter& w, std::string_view subsystem, const Stats& stats,
                std::span<const Label> labels = {}) {
  stats.forEach([&](const MetricInfo& info, const auto& value) {
    using V = std::decay_t<decltype(value)>;
    MetricWriter::Family& f = w.family(subsystem, info);
    if constexpr (IsCountsBy<V>::value) {
      std::vector<Label> l(labels.begin(), labels.end());
      l.push_back({V::LabelType::key, {}});
      for (size_t i = V::LabelType::first; i < value.size(); ++i) {
        l.back().value = V::LabelType::name(i);
        f.add(std::span<const Label>(l), value[i]);
      }
    } else {
      f.add(labels, value);
    }
  });
}
template <typename Stats>
void writeStats(MetricWriter& w, std::string_view subsystem, const Stats& stats,
                std::initializer_list<Label> labels) {
  writeStats(w, subsystem, stats, std::span<const Label>(labels.begin(), labels.size()));
}

// The set of collect callbacks the daemon's /metrics renders. add/remove/render are thread-safe;
// render() runs the callbacks on the calling thread, one render at a time, with the registry
// locked: a callback must not call add() or remove(), and must only read state that is safe to
// read from that thread (snapshots, atomics).
class MetricsRegistry {
 public:
  using Collector = std::function<void(MetricWriter&)>;

  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Adds the collector `name` (replacing one of the same name, keeping its place). Throws
  // std::invalid_argument for an empty name or an empty function.
  void add(std::string name, Collector collect);
  // Removes the collector `name`; false when there was none.
  bool remove(std::string_view name);
  std::vector<std::string> names() const;

  // The exposition: net_collector_build_info, then every collector's families in the order the
  // collectors were added, then net_collector_metrics_collect_errors_total{collector} for every
  // collector that ever threw. A collector that throws is counted and logged (once per distinct
  // message); what it wrote before throwing is kept.
  std::string render() const;

 private:
  struct Entry {
    std::string name;
    Collector collect;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> collectors_;
  mutable std::unordered_map<std::string, uint64_t> errors_;         // by collector name
  mutable std::unordered_map<std::string, std::string> last_error_;  // by collector name
};

}  // namespace nc::metrics
