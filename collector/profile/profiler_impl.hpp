#pragma once
// Internal to collector/profile/profiler*.cpp: the Profiler's runtime state, shared by its core
// (profiler.cpp: shards, apply, tick), its threads (profiler_threads.cpp: writer, back-fill) and
// its operator side (profiler_control.cpp: list, status, graph, control). Not a public header.
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "collector/profile/evaluate.hpp"
#include "collector/profile/profiler.hpp"
#include "collector/record/fields.hpp"

namespace nc::profile {

inline constexpr uint64_t kSecond = 1'000'000'000;
inline constexpr size_t kMaxJobs = 8192;  // writer queue

// What shards evaluate: the channels counted live.
struct LivePlan {
  std::unique_ptr<ChannelPlan> plan;
};

inline std::string timeText(uint64_t ns) {
  return ns == 0 ? std::string() : formatTime(ns);
}
inline double flowsOf(const StepValues& v) {
  return v.v[0] + v.v[1] + v.v[2] + v.v[3];
}
inline double bytesOf(const StepValues& v) {
  return v.v[8] + v.v[9] + v.v[10] + v.v[11];
}

struct Profiler::Chan {
  uint32_t id = 0;
  std::string profile;
  ChannelDef def;
  std::string path;
  bool live = false;  // counted by the shards (continuous and shadow profiles)
  uint64_t live_from_ns = 0;
  int64_t end_step = INT64_MAX;  // history: the last step
  int64_t floor = 0;             // first step not handed to the writer yet
  // While back-filling, steps up to here may be written (the windows done so far).
  int64_t allowed_until = INT64_MAX;
  bool backfilling = false;
  bool needs_create = false;  // no RRD file yet: the first write creates it
  std::map<int64_t, StepValues> open;
  double late_flows = 0;
  double late_bytes = 0;
  uint64_t dropped_steps = 0;
  int64_t written_until = INT64_MIN;  // the last step the writer confirmed
  uint64_t rrd_bytes = 0;
  double flows_since_tstart = 0;  // maintenance: flows counted since the profile's tstart
  std::string error;              // a channel that cannot be written (bad file)
  uint64_t write_errors = 0;
  std::string last_write_error;
  StepValues counted;  // everything the shards counted live (Prometheus counters)
};

struct Profiler::Prof {
  uint64_t serial = 0;  // tells this profile from an earlier one of the same name
  StoredProfile sp;
  std::vector<uint32_t> chans;  // in definition order
  int backfill_windows_total = 0;
  int backfill_windows_done = 0;
  bool backfill_pending = false;
  std::string backfill_error;
  uint64_t size_bytes = 0;
  std::vector<std::pair<int64_t, double>> hourly_flows;  // maintenance (hour start s, flows)
};

struct Profiler::Job {
  enum class Kind : uint8_t { kWrite, kRemoveFile, kRemoveDir, kMaintain } kind = Kind::kWrite;
  uint32_t chan = 0;
  std::string path;
  bool create = false;
  int64_t from = 0;  // steps [from, to]
  int64_t to = -1;
  std::map<int64_t, StepValues> values;  // steps with data (the others are written as zero)
  // Maintenance: channel files and since when to count their flows.
  struct File {
    uint32_t chan = 0;
    std::string path;
    std::time_t since_s = 0;
  };
  std::vector<File> files;
  std::time_t now_s = 0;  // the tick's clock
  // Outcome.
  bool ok = true;
  bool created = false;
  std::string error;
  int64_t written_until = INT64_MIN;
  std::vector<std::pair<uint32_t, std::vector<std::pair<int64_t, double>>>> hourly;  // maintain
  std::vector<std::pair<uint32_t, uint64_t>> bytes;                                  // maintain
};

struct Profiler::Backfill {
  std::string profile;
  uint64_t serial = 0;  // Prof::serial
  std::vector<ChannelSpec> specs;
  int64_t from = 0;  // steps to cover
  int64_t to = 0;
  uint64_t not_before_ns = 0;  // tick time after which it may start (store settle)
  // Filled by the back-fill thread, taken by tick().
  struct Window {
    int64_t from = 0;
    int64_t to = 0;
    std::map<uint32_t, std::map<int64_t, StepValues>> steps;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Window> windows;
  int windows_total = 0;
  bool finished = false;
  std::string error;
  uint64_t store_oldest_ns = 0;
};

}  // namespace nc::profile
