#pragma once
// Correlator: live traffic-spike detection on this host's Open vSwitch ports and local addresses,
// explained with the inventory (collector/correlate/detector.hpp is the per-series algorithm).
//
//   receive shards: CorrelatorShard (a FlowSink)       control-plane thread: Correlator
//   per record: up to 4 subjects x the steps the  -->  every hand-over: merge the shards' sums
//   flow spans, added into per-port arrays (no         into per-subject rings of steps; close
//   hashing), handed over every 250 ms - 1 s           steps whose data is in; feed the
//   (one mutex op)                                     Detectors; start / end events; explain
//
// Subjects. Each inventory port in each direction ("in": traffic that entered the switch through
// the port, the flow's input interface; "out": traffic the switch sent out of it), and each
// local address: an address behind a port ("out": sent by the address, i.e. the source of a flow
// entering through its port; "in": received by it, the destination of a flow leaving through
// it) on a port with at most CorrelatorShard::kAddressesPerPort addresses (a VM's port). The
// addresses an uplink carries are the peers of the local ones, not subjects. Metrics: bytes/s
// and packets/s, scaled by the sampling rate.
//
// Time. A flow counts at its own time: its counters are spread evenly over the steps between its
// first and last packet (over at most the last max_span of it, so that exporters reporting
// long-lived flows with delta counters do not smear them over hours). A step of a subject is
// evaluated once the data for it has had time to arrive: at its end plus the subject's observed
// delay (how long after a flow's first counted packet its record arrives: ~1 s for sFlow, about
// the active timeout for IPFIX/NetFlow; a max that decays) plus a margin (a quarter step, at most
// 1 s) and the shards' handover period. So with sFlow an
// event starts within 2 steps of a burst, with IPFIX/NetFlow within the active timeout + 2 steps.
//
// Events. One event per subject and direction at a time: it starts when the bytes or the packets
// detector fires and ends when every detector that fired has ended. The Correlator fills subject
// (inventory), netlink state and changes, observed/baseline/ratio and the detector's parameters;
// the explainer (set by the daemon) adds the top contributors and exporters, from the store.
//
// Bounded: at most 2 x max_ports port series and 2 x max_addresses address series (both
// directions together; others are counted in status "subjects_refused"); subjects idle for an
// hour are dropped.
// Memory: ~(200 + 8 x ring) bytes a subject (ring = steps kept, see ringSteps()); each shard
// 64 bytes a port, plus ~880 bytes for each port that has seen an address.
#include <nlohmann/json.hpp>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/correlate/detector.hpp"
#include "collector/events/events.hpp"
#include "collector/metrics/stats.hpp"
#include "collector/sink/sink.hpp"
#include "common/periodic_timer.hpp"
#include "ovsctl/inventory/inventory.hpp"

namespace nc::correlate {

struct CorrelatorOptions {
  uint64_t step_ns = 10'000'000'000;      // detection step
  uint64_t warmup_ns = 300'000'000'000;   // learning only, per subject
  double sensitivity = 4.0;               // deviations above the baseline
  double min_bps = 1'000'000;             // bits/s below which nothing fires
  double min_pps = 100;                   // packets/s below which nothing fires
  uint64_t cooldown_ns = 30'000'000'000;  // quiet time that ends an event / blocks a new one
  // A flow is spread over at most its last max_span: exporters with delta counters and the
  // flow's very first packet as its start (Open vSwitch NetFlow) would smear it over hours.
  uint64_t max_span_ns = 20'000'000'000;
  uint64_t max_delay_ns = 60'000'000'000;  // flows arriving later than this after their steps
                                           // are not counted (status "late")
  uint64_t handover_ns = 250'000'000;      // shard -> correlator
  size_t max_ports = 10'000;
  size_t max_addresses = 100'000;
  uint64_t idle_drop_ns = 3600'000'000'000;
  // Changes of a port's link this long before an event's start are reported with it.
  uint64_t netlink_lookback_ns = 300'000'000'000;
  DetectorParams detectorParams(bool bytes) const;
  // Steps each subject keeps: enough for max_delay plus the step being filled.
  size_t ringSteps() const;
};

// Subject identity: kind, direction and a 16-byte name (a port's NameTable id, or an address).
struct SubjectKey {
  uint64_t hi = 0;
  uint64_t lo = 0;
  uint8_t kind = 0;  // 0 port, 1 address
  uint8_t dir = 0;   // 0 in, 1 out
  friend bool operator==(const SubjectKey&, const SubjectKey&) = default;
};

// What a shard accumulated for one subject and step.
struct StepAcc {
  SubjectKey subject;
  int64_t step = 0;
  double bytes = 0;
  double packets = 0;
  uint64_t max_delay_ns = 0;  // received - first counted packet, the largest seen
  uint32_t port_name = 0;     // address subjects: the port (NameTable id) it was seen behind
};

class Correlator;

// The receive-shard part: a FlowSink. Only its shard's thread calls it.
//
// Per record it touches no hash table: port subjects live in an array indexed by the snapshot's
// port slot (two steps per direction, the step being filled and the one before), and the
// addresses behind a port in a small block of that port (at most kAddressesPerPort, compared
// in place). A port that carries more addresses than that (an uplink, a trunk, a routing VM) is
// "crowded" for kCrowdedNs: its addresses are not subjects (they are the peers of local
// addresses, not local ones) and cost one comparison a flow. Accumulations leave the shard as
// StepAcc entries: all of them every handover_ns, and one whenever a step replaces an older one
// in a port's two-step ring (or a flow adds to a step older than the ring holds).
class CorrelatorShard : public sink::FlowSink {
 public:
  static constexpr size_t kAddressesPerPort = 12;
  static constexpr uint64_t kCrowdedNs = 600'000'000'000;      // 10 min
  static constexpr uint64_t kAddressStaleNs = 60'000'000'000;  // an idle address gives way

  explicit CorrelatorShard(Correlator& owner);
  ~CorrelatorShard() override;
  void onBatch(const sink::Batch& batch) override;
  // Hands the accumulated state over now (tests; the shard does so itself every handover_ns).
  void flush();
  // Ports whose addresses were found crowded (an uplink...) since the start.
  uint64_t crowdedEvents() const { return crowded_events_; }

 private:
  // Two steps of one subject (both directions): the ring of step & 1. Tags are steps relative to
  // epoch_ (kNoTag: empty). Floats: a hand-over period's sum, sent on as doubles.
  struct Ring {
    int32_t tag[2][2];  // [dir][step & 1]
    float bytes[2][2];
    float packets[2][2];
  };
  struct AddressBlock {
    IpAddr addr[kAddressesPerPort];
    Ring ring[kAddressesPerPort];
    uint32_t last_seen_s[kAddressesPerPort];  // updated at hand-over
    uint64_t crowded_until = 0;
  };
  // One cache line a port: its own ring, and what the hot path needs of its addresses.
  struct alignas(64) PortState {
    Ring ring;
    uint32_t delay_ms = 0;          // the largest this hand-over period
    AddressBlock* block = nullptr;  // once it has seen an address
    uint8_t naddr = 0;
    bool touched = false;
    bool crowded = false;
  };
  void reset(const inventory::Snapshot* snap);
  PortState& touch(uint32_t slot);
  int findAddress(PortState& p, const IpAddr& a, uint64_t now);
  [[gnu::noinline]] int addAddress(PortState& p, const IpAddr& a, uint64_t now);
  // One flow's share of one step.
  struct Piece {
    int64_t step;
    int32_t tag;
    float bytes;
    float packets;
  };
  // Adds the current flow's pieces to one subject's ring; `key` makes its SubjectKey, needed only
  // when an entry leaves the ring.
  template <class Key>
  void addTo(Ring& ring, uint8_t dir, const Key& key, uint32_t port);
  [[gnu::noinline]] void spill(int64_t step, double bytes, double packets, const SubjectKey& k,
                               uint32_t port);
  bool flushRing(Ring& ring, const SubjectKey& k, uint32_t port);  // true: it held data
  int64_t stepOf(uint64_t t);

  Correlator& owner_;
  const inventory::Snapshot* snap_ = nullptr;  // identity only (never dereferenced later)
  uint64_t snap_generation_ = 0;
  std::vector<PortState> ports_;  // by snapshot slot
  std::vector<uint32_t> names_;   // by snapshot slot: NameTable ids (read at hand-over)
  std::vector<std::unique_ptr<AddressBlock>> blocks_;
  std::vector<uint32_t> touched_;
  std::vector<StepAcc> out_;
  std::vector<Piece> pieces_;  // the current flow's steps
  uint64_t last_handover_ = 0;
  int64_t epoch_ = INT64_MIN;     // ring tags are steps - epoch_
  int64_t cur_step_ = INT64_MIN;  // the newest step seen, and its start
  uint64_t cur_start_ = 0;
  uint64_t crowded_events_ = 0;
  // Copied at construction: reconfigure() never changes these (the shards run on other threads).
  uint64_t step_ns_;
  uint64_t max_span_ns_;
  uint64_t max_delay_ns_;
  uint64_t handover_ns_;
};

// One ongoing or ended event with what the correlator needs to finish it.
struct Tracked {
  events::Event event;
  bool bytes_fired = false;
  bool packets_fired = false;
};

// The correlator's counters, declared once (collector/metrics/stats.hpp): status JSON
// ("correlation") and Prometheus net_collector_correlation_*.
// X(TYPE, ctype, member, "key", UNIT, "column", "help")
#define NC_CORRELATOR_STATS(X)                                                                  \
  X(Counter, uint64_t, subjects_refused, "subjects_refused", None, "",                          \
    "Ports and addresses not followed: the subject limit was reached")                          \
  X(Counter, uint64_t, late, "late", None, "",                                                  \
    "Flow shares that arrived after their step was evaluated")                                  \
  X(Counter, uint64_t, handover_drops, "handover_drops", None, "",                              \
    "Shard hand-overs dropped: the correlator's inbox was full")                                \
  X(Counter, uint64_t, steps_evaluated, "steps_evaluated", None, "", "Subject steps evaluated") \
  X(Counter, uint64_t, events_started, "events_started", None, "", "Spike events started")      \
  X(Counter, uint64_t, events_ended, "events_ended", None, "", "Spike events ended")            \
  X(Gauge, uint64_t, ongoing, NC_KEY_PROM("ongoing", "events_ongoing"), None, "",               \
    "Spike events ongoing now")                                                                 \
  X(Counter, uint64_t, handovers, "handovers", None, "", "Shard hand-overs merged")             \
  X(Counter, uint64_t, handover_entries, "handover_entries", None, "",                          \
    "Step sums the shards handed over")                                                         \
  X(Gauge, uint64_t, memory_bytes, NC_KEY_PROM("memory_bytes", "memory"), Bytes, "",            \
    "Memory the followed subjects take (estimate)")

struct CorrelatorStats {
  NC_STATS_DEFINE(CorrelatorStats, NC_CORRELATOR_STATS)
};

class Correlator {
 public:
  Correlator(boost::asio::io_context& io, CorrelatorOptions options,
             const inventory::Inventory* inventory);
  ~Correlator();
  Correlator(const Correlator&) = delete;
  Correlator& operator=(const Correlator&) = delete;

  std::unique_ptr<CorrelatorShard> makeShard();
  // Starts the step timer on the io_context.
  void start();
  void stop();
  // New detector parameters (reload): sensitivity, warm-up, cooldown, minimum rates, caps.
  // Detectors keep what they learnt. The step, span, delay and handover stay as they were (the
  // shards hold them): returns false when `options` changes one of those (restart to apply).
  bool reconfigure(const CorrelatorOptions& options);
  const CorrelatorOptions& options() const { return opts_; }

  // Called on the io_context thread when an event starts (ended = false) and when it ends.
  std::function<void(const events::Event&, bool ended)> on_event;

  // Merges what the shards handed over and evaluates every step that is due at `now_ns`
  // (wall clock). The timer calls it; tests call it with their own clock.
  void tick(uint64_t now_ns);
  // Ongoing events (copies).
  std::vector<events::Event> ongoing() const;
  // {"subjects":{"ports","addresses"},"subjects_refused","late","steps_evaluated","events_started",
  //  "events_ended","ongoing","memory_bytes","step_ms",...}
  nlohmann::json status() const;
  // The counters of status(), declared once (NC_CORRELATOR_STATS). Thread-safe.
  CorrelatorStats stats() const;
  // Per-port current rates from the last completed steps (bits/s, packets/s) by port name.
  struct PortRate {
    double in_bps = 0;
    double in_pps = 0;
    double out_bps = 0;
    double out_pps = 0;
  };
  std::unordered_map<std::string, PortRate> portRates() const;

  // Shards hand their maps over here.
  void handover(std::vector<StepAcc>&& accs);

 private:
  struct Subject;
  struct KeyHash {
    size_t operator()(const SubjectKey& k) const;
  };
  void merge(const StepAcc& a, uint64_t now_ns);
  void evaluate(Subject& s, uint64_t now_ns);
  void closeStep(Subject& s, int64_t step, double bytes, double packets);
  void startEvent(Subject& s, int64_t step, bool bytes);
  void endEvent(Subject& s, int64_t end_step);
  void describe(const Subject& s, events::Event& e) const;
  void schedule();

  boost::asio::io_context& io_;
  CorrelatorOptions opts_;
  DetectorParams bytes_params_;
  DetectorParams packets_params_;
  const inventory::Inventory* inventory_;
  PeriodicTimer timer_;
  bool stopped_ = true;

  std::mutex inbox_mu_;
  std::vector<std::vector<StepAcc>> inbox_;

  mutable std::mutex mu_;  // subjects_ and counters (status() from other threads)
  std::unordered_map<SubjectKey, std::unique_ptr<Subject>, KeyHash> subjects_;
  size_t ports_ = 0;
  size_t addresses_ = 0;
  CorrelatorStats statsLocked() const;  // mu_ held
  uint64_t refused_ = 0;
  uint64_t late_ = 0;
  uint64_t steps_evaluated_ = 0;
  uint64_t started_ = 0;
  uint64_t ended_ = 0;
  uint64_t last_idle_sweep_ = 0;
  uint64_t last_pass_ns_ = 0;  // the last pass over every subject (tick())
  uint64_t passes_ = 0;
  // When each subject's next step falls due, contiguous: a pass reads this, not the subjects.
  struct Due {
    uint64_t due_ns;
    Subject* subject;
  };
  std::vector<Due> due_;
  void decayDelay(Subject& s) const;
  std::atomic<uint64_t> handovers_{0};
  std::atomic<uint64_t> handover_entries_{0};  // StepAcc entries handed over
  std::atomic<uint64_t> handover_drops_{0};    // accumulations dropped: the inbox was full
};

}  // namespace nc::correlate
