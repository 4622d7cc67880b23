#pragma once
// Correlator: live traffic-spike detection on this host's Open vSwitch ports and local addresses,
// explained with the inventory (collector/correlate/detector.hpp is the per-series algorithm).
//
//   receive shards: CorrelatorShard (a FlowSink)       control-plane thread: Correlator
//   per record: up to 4 subjects x the steps the  -->  every 250 ms: merge the shards' maps into
//   flow spans, added into a small flat map,           per-subject rings of steps; close steps
//   handed over every 250 ms (one mutex op)            whose data is in; feed the Detectors;
//                                                      start / end events; explain them
//
// Subjects. Each inventory port in each direction ("in": traffic that entered the switch through
// the port, the flow's input interface; "out": traffic the switch sent out of it), and each
// address behind a port ("out": sent by the address, i.e. the source of a flow entering through
// its port; "in": received by it). Metrics: bytes/s and packets/s, scaled by the sampling rate.
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
// Memory: ~(200 + 8 x ring) bytes a subject (ring = steps kept, see ringSteps()).
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
#include "collector/sink/sink.hpp"
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
class CorrelatorShard : public sink::FlowSink {
 public:
  explicit CorrelatorShard(Correlator& owner);
  ~CorrelatorShard() override;
  void onBatch(const sink::Batch& batch) override;
  // Hands the accumulated map over now (tests; the shard does so itself every handover_ns).
  void flush();

 private:
  void add(const SubjectKey& k, int64_t step, double bytes, double packets, uint64_t delay,
           uint32_t port_name);
  void addSpread(const SubjectKey& k, uint64_t t0, uint64_t t1, double bytes, double packets,
                 uint64_t delay, uint32_t port_name);
  Correlator& owner_;
  std::vector<StepAcc> table_;  // open addressing, power of two
  size_t used_ = 0;
  uint64_t last_handover_ = 0;
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
  boost::asio::steady_timer timer_;
  bool stopped_ = true;

  std::mutex inbox_mu_;
  std::vector<std::vector<StepAcc>> inbox_;

  mutable std::mutex mu_;  // subjects_ and counters (status() from other threads)
  std::unordered_map<SubjectKey, std::unique_ptr<Subject>, KeyHash> subjects_;
  size_t ports_ = 0;
  size_t addresses_ = 0;
  uint64_t refused_ = 0;
  uint64_t late_ = 0;
  uint64_t steps_evaluated_ = 0;
  uint64_t started_ = 0;
  uint64_t ended_ = 0;
  uint64_t last_idle_sweep_ = 0;
  uint64_t last_pass_ns_ = 0;  // the last pass over every subject (tick())
  std::atomic<uint64_t> handovers_{0};
  std::atomic<uint64_t> handover_drops_{0};  // accumulations dropped: the inbox was full
};

}  // namespace nc::correlate
