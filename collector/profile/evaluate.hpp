#pragma once
// Channel counting: the one function that turns flows into per-channel, per-step totals. The live
// path (ProfileShard, over each decoded batch transposed to columns) and back-fill (a scan of the
// flow store) both call ChannelPlan::evaluate(), so both count the same flow the same way.
//
//   FlowColumns --(one Filter::select per distinct filter)--> rows
//               --(per channel: sources, receive window)--> spread over steps --> StepTable
//
// Counting (nfsen's 15 data sources): flows, packets and bytes, each split tcp / udp / icmp
// (ICMP and ICMPv6) / other, multiplied by the sampling rate unless the exporter already did
// (FlowRecord::scaledPackets(); a flow counts as sampling_rate flows the same way). A flow counts
// at its own time: evenly over [t0, t1] (flowTime()), over at most the last max_span of it.
//
// Not thread-safe: one ChannelPlan is shared read-only; each thread has its own Scratch and
// StepTable.
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collector/query/filter.hpp"
#include "collector/record/columns.hpp"

namespace nc::profile {

// The data sources of every channel's RRD file: nfsen's names, in nfsen's order. "traffic" is
// bytes (graphs multiply by 8 for bits/s). All are per-second rates.
inline constexpr std::array<std::string_view, 15> kDataSources = {
    "flows",   "flows_tcp",   "flows_udp",   "flows_icmp",   "flows_other",
    "packets", "packets_tcp", "packets_udp", "packets_icmp", "packets_other",
    "traffic", "traffic_tcp", "traffic_udp", "traffic_icmp", "traffic_other"};

// Protocol classes, as the data sources split them.
enum ProtoClass : uint8_t { kTcp = 0, kUdp = 1, kIcmp = 2, kOther = 3 };
inline uint8_t protoClass(uint8_t proto) {
  return proto == 6 ? kTcp : proto == 17 ? kUdp : (proto == 1 || proto == 58) ? kIcmp : kOther;
}

// What one channel counted in one step: totals, not rates.
struct StepValues {
  // [metric * 4 + class]: metric 0 flows, 1 packets, 2 bytes; class as ProtoClass.
  std::array<double, 12> v{};
  void add(const StepValues& o) {
    for (size_t i = 0; i < v.size(); ++i) {
      v[i] += o.v[i];
    }
  }
  bool empty() const;
  // The 15 data sources' values for a step of `step_seconds`: per second, in kDataSources order.
  std::array<double, 15> rates(double step_seconds) const;
};

struct SpreadOptions {
  uint64_t step_ns = 10'000'000'000;
  // A flow is spread over at most its last max_span (Open vSwitch's NetFlow reports delta
  // counters with the flow's very first packet as its start).
  uint64_t max_span_ns = 20'000'000'000;
  // A flow that ends further than this after it was received comes from a clock far ahead of
  // ours (or has no times): it counts at its receive time.
  uint64_t max_ahead_ns = 60'000'000'000;
};

// The interval a flow counts over.
struct FlowTime {
  uint64_t t0 = 0;
  uint64_t t1 = 0;
};
FlowTime flowTime(uint64_t first_ns, uint64_t last_ns, uint64_t received_ns,
                  const SpreadOptions& o);

// Calls f(step, fraction) for every step [t.t0, t.t1] covers, fractions summing to 1.
template <typename F>
void spread(const FlowTime& t, uint64_t step_ns, F&& f) {
  const int64_t s0 = static_cast<int64_t>(t.t0 / step_ns);
  const int64_t s1 = static_cast<int64_t>(t.t1 / step_ns);
  if (s0 == s1) {
    f(s0, 1.0);
    return;
  }
  const double d = static_cast<double>(t.t1 - t.t0);
  for (int64_t s = s0; s <= s1; ++s) {
    const uint64_t lo = std::max<uint64_t>(t.t0, static_cast<uint64_t>(s) * step_ns);
    const uint64_t hi = std::min<uint64_t>(t.t1, static_cast<uint64_t>(s + 1) * step_ns);
    const double frac = static_cast<double>(hi - lo) / d;
    if (frac > 0) {
      f(s, frac);
    }
  }
}

// One accumulated (channel, step).
struct StepEntry {
  int64_t step = INT64_MIN;  // INT64_MIN = empty slot
  uint32_t channel = 0;
  StepValues values;
};

// (channel id, step) -> StepValues, open addressing. Bounded by its caller (take() empties it).
class StepTable {
 public:
  StepTable();
  void add(uint32_t channel, int64_t step, uint8_t cls, double flows, double packets, double bytes);
  // Moves every entry out (unordered) and empties the table.
  std::vector<StepEntry> take();
  size_t size() const { return used_; }
  size_t memoryBytes() const { return table_.capacity() * sizeof(StepEntry); }

 private:
  StepEntry& slot(uint32_t channel, int64_t step);
  std::vector<StepEntry> table_;
  size_t used_ = 0;
  StepEntry* last_ = nullptr;  // the entry of the previous add() (runs of one channel and step)
};

// A channel as the evaluator sees it.
struct ChannelSpec {
  uint32_t id = 0;  // reported with its StepEntries
  std::string filter = "any";
  std::vector<std::string> sources;  // validSource() strings; empty = all
  // Only rows with received_from_ns <= received_ns < received_until_ns count (the split between
  // back-fill and live counting).
  uint64_t received_from_ns = 0;
  uint64_t received_until_ns = UINT64_MAX;
  // Contributions to steps outside [min_step, max_step] are dropped (back-fill ranges).
  int64_t min_step = INT64_MIN;
  int64_t max_step = INT64_MAX;
};

// Per-thread buffers of evaluate().
struct Scratch {
  struct Facts {
    FlowTime t;
    double flows = 0;
    double packets = 0;
    double bytes = 0;
    int64_t s0 = 0;
    int64_t s1 = 0;
    uint8_t cls = 0;
  };
  std::vector<Facts> facts;
  std::vector<uint8_t> ready;
  std::vector<uint32_t> rows;
};

// A compiled set of channels: distinct filters compiled once, channels grouped by filter.
class ChannelPlan {
 public:
  // Compiles every channel's filter. On a bad filter or source returns null with `why`.
  static std::unique_ptr<ChannelPlan> build(const std::vector<ChannelSpec>& channels,
                                            const SpreadOptions& options, std::string* why);
  ~ChannelPlan();

  // Counts rows [begin, end) of `c` (end = SIZE_MAX: to c.size()) into `out`. `c` must hold
  // columns() (others may be empty).
  void evaluate(const FlowColumns& c, StepTable& out, Scratch& scratch, size_t begin = 0,
                size_t end = SIZE_MAX) const;
  // Columns evaluate() reads: the filters', the counting ones, exporter/bridge for sources.
  const ColumnSet& columns() const { return columns_; }
  // Columns the filters read (a scan decodes these first).
  const ColumnSet& filterColumns() const { return filter_columns_; }
  size_t channels() const;
  size_t distinctFilters() const;
  const SpreadOptions& options() const { return opts_; }

 private:
  struct Chan;
  struct Group;
  ChannelPlan() = default;
  std::vector<Chan> chans_;
  std::vector<Group> groups_;
  ColumnSet columns_;
  ColumnSet filter_columns_;
  SpreadOptions opts_;
};

// Transposes `rows` into `out`: the columns of `set` (and first_ns), the others left empty.
void transpose(std::span<const FlowRecord> rows, const ColumnSet& set, FlowColumns& out);

}  // namespace nc::profile
