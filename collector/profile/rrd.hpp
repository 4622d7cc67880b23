#pragma once
// The RRD files of channels, through librrd (1.7): one file per channel with the 15 data sources
// of evaluate.hpp (kDataSources), GAUGE, values per second, heartbeat two steps, min 0.
//
// Archives (AVERAGE and MAX each; xff 0.5), for a step S:
//   S      for 1 day     (S = 10 s: 8640 rows)
//   1 min  for 2 weeks   (20160 rows)
//   5 min  for 60 days   (17280 rows)
//   1 h    for 2 years   (17520 rows)
// An archive whose resolution is not above S's is folded into the one before it. Size at 10 s:
// ~15.3 MB a channel (rraSpecs(), fileBytes()).
//
// Threads: create/update/fetch/inspect use librrd's thread-safe *_r functions and may run on any
// thread (one writer per file at a time: callers serialize). Errors come back as text, never
// as a crash or an exit. graph.hpp serializes rrd_graph, which is not thread-safe.
#include <array>
#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace nc::profile::rrd {

// "RRA:AVERAGE:0.5:<pdp>:<rows>", ... for step `step_s`.
std::vector<std::string> rraSpecs(uint64_t step_s);
// The DS definitions: "DS:flows:GAUGE:<2*step>:0:U", ...
std::vector<std::string> dsSpecs(uint64_t step_s);
// Approximate size of a channel file for `step_s` (data rows; the header is a few KB).
uint64_t fileBytes(uint64_t step_s);

// Creates `path` with last update `start_s` (the first update must be later) through a temporary
// file that is fsync'd and renamed into place, so a file at `path` is always complete. Fails
// (false, `why`) when `path` exists, the directory is missing, or the disk is full.
bool create(const std::string& path, uint64_t step_s, std::time_t start_s, std::string* why);

struct FileInfo {
  uint64_t step_s = 0;
  std::time_t last_update = 0;
  uint64_t bytes = 0;      // file size
  bool layout_ok = false;  // our 15 data sources, in order
};
// Reads the header of an existing file. False with `why` when it is missing or not an RRD.
bool inspect(const std::string& path, FileInfo& out, std::string* why);

// One update: the values of the step ending at `t` (kDataSources order), or unknown.
struct Update {
  std::time_t t = 0;
  bool unknown = false;
  std::array<double, 15> v{};
};
// Applies `updates` (ascending times, each after the file's last update) in order. On an error
// returns false with `why`; updates before the failing one are on disk.
bool update(const std::string& path, const std::vector<Update>& updates, std::string* why);

// rrd_fetch: rows of `cf` ("AVERAGE" or "MAX") covering [start, end] at a resolution of at least
// `resolution_s` (0 = the finest). Row i holds the values of the step ending at
// start + (i + 1) * step; NaN = unknown.
struct Series {
  std::time_t start = 0;
  std::time_t end = 0;
  unsigned long step = 0;
  std::vector<std::string> names;
  std::vector<double> data;  // rows x names.size()
  size_t rows() const { return names.empty() ? 0 : data.size() / names.size(); }
  double at(size_t row, size_t ds) const { return data[row * names.size() + ds]; }
};
bool fetch(const std::string& path, const char* cf, std::time_t start, std::time_t end,
           unsigned long resolution_s, Series& out, std::string* why);

}  // namespace nc::profile::rrd
