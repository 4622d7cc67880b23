#pragma once
// Profiler: nfsen-style profiles of channels kept as RRD time series, updated live from the
// decoded stream and back-filled from the flow store.
//
//   receive shards: ProfileShard (a FlowSink)        control-plane thread: Profiler::tick()
//   per batch: transpose the columns the channel  -> every 250 ms: merge the shards' steps into
//   filters need, one Filter::select per distinct    each channel's open steps; hand the steps
//   filter, spread matches over steps into a flat    that are due (their end + delay) to the
//   table; hand it over every 250 ms                 writer thread, in order
//                                                    writer thread: librrd create / update
//                                                    back-fill thread: store scans (backfill.hpp)
//
// Time. A flow counts at its own time (evaluate.hpp). A step is written `delay` after it ends
// (default 8 s at a 10 s step: a point is on disk within 2 steps of its data). Parts of flows
// arriving after their step was written are added to the oldest step not yet written and counted
// in status "late" (records and bytes): RRD takes updates in time order only.
//
// Channels and RRD files: <dir>/<profile>/<channel>.rrd (rrd.hpp). A channel whose file is
// missing or older than now is first back-filled from the store: the flows received before it
// began counting live, over [profile start (or the file's last update), now), in windows of at
// most `backfill_window_steps`, oldest first; its steps are written as each window completes.
// A history profile is built that way over [start, end] and then left alone. Without a store the
// missing steps stay unknown.
//
// Profile definitions come from a ProfileStore (profile_store.hpp) the Profiler owns: YAML-
// declared profiles plus runtime ones. control() runs the CLI's operations on it (add, delete,
// channel add/delete, modify, commit, discard, list, graph) and applies committed changes at once.
//
// Expire and maxsize (continuous profiles, as nfsen): a profile owns no copy of flows (they stay
// in the one flow store, with its own retention), so its data is its RRD files plus the flows its
// channels select in the store from its data start ("tstart") on. expire keeps tstart at least
// now - expire; maxsize moves tstart forward by whole hours until RRD bytes + flows counted since
// tstart x store bytes per flow <= maxsize. Graphs grey out the time before tstart and listings
// show it; the RRD files keep their fixed size.
//
// Threads: shards call only their ProfileShard; everything else runs on the control-plane thread
// (tick, control, apply, list, graph), except status(), which any thread may call.
#include <nlohmann/json.hpp>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "collector/profile/evaluate.hpp"
#include "collector/profile/graph.hpp"
#include "collector/profile/profile_store.hpp"
#include "collector/sink/sink.hpp"
#include "common/periodic_timer.hpp"

namespace nc::metrics {
class MetricWriter;
}

namespace nc::profile {

struct ProfilerOptions {
  std::string dir = "/var/lib/net-collector/profiles";
  std::string store_path;  // the flow store, for back-fill ("" = none)
  uint64_t step_ns = 10'000'000'000;
  uint64_t delay_ns = 8'000'000'000;      // a step is written this long after its end
  uint64_t max_span_ns = 20'000'000'000;  // see SpreadOptions
  uint64_t handover_ns = 250'000'000;     // shard -> profiler
  // Back-fill starts this long after the channels begin counting live: the store shows flows
  // about a second after they arrive (collector/store/store.hpp).
  uint64_t backfill_settle_ns = 2'000'000'000;
  unsigned backfill_threads = 1;
  // Steps per back-fill scan: 6 h at 10 s; a window holds ~160 B a channel and step with data.
  size_t backfill_window_steps = 2160;
  uint64_t maintain_every_ns = 300'000'000'000;  // expire/maxsize and sizes
  double store_bytes_per_flow = 40;  // size estimate of a flow in the store (setStoreBytesPerFlow)
  size_t max_open_steps = 8640;      // steps a channel holds unwritten (while it back-fills)
  size_t max_channels = 4096;
  SpreadOptions spread() const;
};

class Profiler;
struct LivePlan;

// The receive-shard part: a FlowSink. Only its shard's thread calls it.
class ProfileShard : public sink::FlowSink {
 public:
  explicit ProfileShard(Profiler& owner);
  ~ProfileShard() override;
  void onBatch(const sink::Batch& batch) override;
  // Hands what it accumulated over now (tests; the shard does so itself every handover).
  void flush();
  size_t memoryBytes() const;

 private:
  Profiler& owner_;
  std::shared_ptr<const LivePlan> plan_;
  uint64_t version_ = 0;
  FlowColumns cols_;
  Scratch scratch_;
  StepTable table_;
  uint64_t last_handover_ = 0;
  uint64_t handover_ns_;
};

// One graph as the CLI asks for it.
struct GraphRequest {
  std::string profile;
  std::vector<std::string> channels;  // empty = all
  Metric metric = Metric::kTraffic;
  ProtoSel proto = ProtoSel::kAny;
  uint64_t start_ns = 0;  // 0 = end - 1 day
  uint64_t end_ns = 0;    // 0 = now (history profiles: their end)
  unsigned width = 576;
  unsigned height = 200;
  ImageFormat format = ImageFormat::kPng;
  std::string title;
};

class Profiler {
 public:
  Profiler(boost::asio::io_context& io, ProfilerOptions options);
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // Loads the runtime profiles (<dir>/profiles.json), adds the YAML-declared ones and applies
  // them. Returns messages for the log (a corrupt profiles.json, shadowed profiles, channels
  // whose RRD file cannot be used); the profiler runs whatever is valid.
  std::vector<std::string> open(const std::vector<ProfileDef>& declared, uint64_t now_ns);
  // SIGHUP: new declared profiles (applied at once). Step, delay and the directory stay.
  std::vector<std::string> setDeclared(const std::vector<ProfileDef>& declared, uint64_t now_ns);

  std::unique_ptr<ProfileShard> makeShard();
  // Starts the writer and back-fill threads and the tick timer on the io_context.
  void start();
  // Writes every open step now (ending early), stops the timer and the threads. Idempotent.
  void stop();

  // Merges the shards' hand-overs, writes due steps, takes back-fill results, maintains
  // expire/maxsize. The timer calls it with the wall clock; tests call it with their own.
  void tick(uint64_t now_ns);
  // Re-reads the store's running profiles and applies changes (control() does it itself).
  void apply(uint64_t now_ns);
  // Waits until the writer and back-fill threads are idle and nothing is queued (tests).
  bool waitIdle(uint64_t timeout_ms);

  // The CLI's operations, one JSON request each (the daemon routes {"cmd": "profile", ...} here):
  //   {"op": "list"|"show" [, "profile": P]}        -> [list() entries]
  //   {"op": "add", "name": P [, "group", "description", "type", "start", "end" (RFC 3339),
  //    "expire_ms", "maxsize", "channels": [channel...]]}   -> staged as "new"
  //   {"op": "channel-add", "profile": P, "channel": {"name", "filter", "colour", "sign",
  //    "order", "sources"}}
  //   {"op": "channel-delete", "profile": P, "channel": C}
  //   {"op": "modify", "profile": P [, "group", "description", "expire_ms", "maxsize"]}
  //   {"op": "commit"|"discard"|"delete", "profile": P}  (commit answers the profile's listing)
  //   {"op": "graph", "profile": P [, "channels": [C...], "metric": "traffic"|"packets"|"flows",
  //    "proto": "any"|"tcp"|"udp"|"icmp"|"other", "start", "end" (query::parseTimeSpec: "-1d",
  //    "now", RFC 3339...), "format": "png"|"svg", "width", "height", "title"]}
  //      -> {"format", "bytes", "image_base64"}
  //   {"op": "status"}                              -> status()
  // Changes are staged until "commit" (definitions: profile_store.hpp); commit and delete apply
  // at once. Throws std::runtime_error with an operator's message (validation errors one a line,
  // "channel.filter: filter:1:9: ..." with the filter's caret) on bad requests.
  nlohmann::json control(const nlohmann::json& request);
  // What `nfsen -l` shows, per profile (all, or one by name).
  nlohmann::json list(const std::string& name = "") const;
  nlohmann::json status() const;
  // Appends net_collector_profile_* families: per channel the flows, packets and bytes counted
  // live since the daemon started (sampling-corrected; labels profile, channel), and the
  // profiler's own counters. Any thread.
  void writeMetrics(metrics::MetricWriter& w) const;
  bool graph(const GraphRequest& req, std::string& image, std::string* why) const;

  ProfileStore& store() { return store_; }
  const ProfilerOptions& options() const { return opts_; }
  // The store's mean bytes per flow (the daemon sets it from the store's statistics).
  void setStoreBytesPerFlow(double bytes) { opts_.store_bytes_per_flow = bytes; }
  // The path of a channel's RRD file.
  std::string rrdPath(const std::string& profile, const std::string& channel) const;

  // Shards hand their steps over here (any thread).
  void handover(std::vector<StepEntry>&& entries);
  // The current live plan and its version (shards; any thread).
  std::shared_ptr<const LivePlan> plan(uint64_t& version) const;
  uint64_t planVersion() const { return plan_version_.load(std::memory_order_acquire); }

 private:
  struct Chan;
  struct Prof;
  struct Job;
  struct Backfill;
  void schedule();
  void merge(const StepEntry& e);
  void addInto(Chan& c, int64_t step, const StepValues& v);
  // Moves the channel's first writable step up to `to` (what is open before it joins `to`).
  void raiseFloor(Chan& c, int64_t to);
  // True while the writer still has to remove `path` (or its profile directory).
  bool removalPending(const std::string& path);
  void writeDue(Chan& c, uint64_t now_ns, bool all);
  void publishPlan();
  void takeBackfills(uint64_t now_ns);
  void startBackfill(std::vector<uint32_t> ids, uint64_t now_ns);
  void maintain(uint64_t now_ns);
  void removeChannel(Chan& c, bool remove_file);
  void enqueue(Job job);
  void writerLoop();
  void backfillLoop();
  nlohmann::json listOne(const Prof& p) const;
  std::string statusOf(const Prof& p) const;

  boost::asio::io_context& io_;
  ProfilerOptions opts_;
  ProfileStore store_;
  PeriodicTimer timer_;
  bool stopped_ = true;
  uint64_t applied_generation_ = 0;

  // Live plan, read by shards.
  mutable std::mutex plan_mu_;
  std::shared_ptr<const LivePlan> plan_;
  std::atomic<uint64_t> plan_version_{0};

  std::mutex inbox_mu_;
  std::vector<std::vector<StepEntry>> inbox_;
  std::atomic<uint64_t> handover_drops_{0};

  // Profiles and channels (control-plane thread; mu_ for status()/list() from others).
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Prof>> profs_;
  std::unordered_map<uint32_t, std::unique_ptr<Chan>> chans_;
  uint32_t next_id_ = 1;
  uint64_t next_serial_ = 1;  // Prof::serial
  uint64_t last_maintain_ns_ = 0;
  uint64_t late_records_ = 0;
  uint64_t late_bytes_ = 0;
  uint64_t steps_written_ = 0;
  uint64_t write_errors_ = 0;
  std::string last_error_;

  // Writer thread.
  mutable std::mutex job_mu_;
  std::condition_variable job_cv_;
  std::deque<Job> jobs_;
  bool job_busy_ = false;
  std::mutex done_mu_;
  std::vector<Job> done_;  // finished jobs' outcomes, taken by tick()
  std::thread writer_;

  // Back-fill thread.
  std::mutex bf_mu_;
  std::condition_variable bf_cv_;
  std::deque<std::shared_ptr<Backfill>> bf_queue_;
  std::vector<std::shared_ptr<Backfill>> bf_active_;  // started, not yet taken by tick()
  bool bf_busy_ = false;
  std::atomic<bool> bf_blocked_{false};  // the thread waits for tick() to take its windows
  std::atomic<bool> bf_cancel_{false};
  std::thread backfiller_;
  std::atomic<bool> threads_stop_{false};
};

}  // namespace nc::profile
