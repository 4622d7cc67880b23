#pragma once
// nc_dashboard: the daemon's web dashboard (issue 14): the page (web/: index.html, app.js,
// style.css, compiled into the binary) and its read-only JSON API on an http::Server.
//
//   GET /                      the page (also /index.html, /app.js, /style.css)
//   GET /api/profiles          Profiler::list(): profiles, channels (colour, sign, order), status
//   GET /api/series            per channel: the RRD series of one data source + window statistics
//   GET /api/graph             the same as a PNG/SVG drawn by librrd (profile/graph.hpp)
//   GET /api/flows             drill-down: newest flows or top-N over the flow store
//   GET /api/events            spike events overlapping the window
//   GET /api/stream            Server-Sent Events: "step" (new RRD steps written), "status"
//   GET /api/status            Sources::status() plus what the dashboard knows (profiles, store)
// Every error is {"error": "..."} with a 4xx status (5xx for failures of the server itself);
// /api/flows answers a bad filter 400 with {"error", "filter_error": {"message", "offset",
// "line", "column", "rendered"}} (offset: bytes into the filter text; line and column 1-based,
// column in characters).
//
// Threads. Handlers run on the io_context given (the daemon's control plane, one thread) and do
// only quick work there: parse, look up the profile (Profiler::list), call Sources::events /
// status. RRD reads and graph rendering run on one "read" thread (bounded queue, 503 when full);
// store queries on `query_threads` threads, at most that many at once (503 when all are busy: the
// page says "busy, retry"). A query cannot be cancelled once started (collector/query has no
// cancellation); it is bounded by max_rows, the window, and max_window_ns.
//
// Times (start, end): query::parseTimeSpec ("-1h", "now", RFC 3339, "@UNIX_SECONDS");
// defaults: end = now, start = end - 1 hour.
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collector/http/http.hpp"

namespace nc::profile {
class Profiler;
}

namespace nc::dashboard {

struct Sources {
  profile::Profiler* profiler = nullptr;  // null: profiles are off (the page says so)
  std::string store_path;                 // the flow store for drill-down ("" = none)
  // The daemon's "events" query ({"since","until" (UNIX ns),"limit"} -> JSON array of events,
  // events/events.hpp form); empty = no events. Called on the io_context thread.
  std::function<nlohmann::json(const nlohmann::json&)> events;
  // The daemon's status JSON (for a small header line: version, rates); may be empty. Called on
  // the io_context thread.
  std::function<nlohmann::json()> status;
};

struct DashboardOptions {
  size_t max_rows = 1000;      // rows a flows query answers at most (limit is capped to it)
  unsigned query_threads = 1;  // store queries at once (each scans with one thread)
  size_t max_points = 1000;    // points per series at most (consolidated by averaging)
  size_t max_read_queue = 32;  // series/graph requests waiting for the read thread
  uint64_t max_window_ns = 0;  // longest drill-down window (0 = any)
  size_t max_events = 1000;    // events per answer
  std::chrono::milliseconds poll{1000};            // Profiler::status() poll for "step"
  std::chrono::milliseconds status_every{10'000};  // "status" events on the stream
  // The clock the API resolves "now" and relative times with (tests; null = the wall clock).
  std::function<uint64_t()> now_ns;
};

class Dashboard {
 public:
  Dashboard(boost::asio::io_context& io, Sources sources, DashboardOptions options = {});
  // Ends the worker threads (waiting for a running query) and the event streams. Must run on
  // the io_context's thread or after it stopped, before the io_context is destroyed.
  ~Dashboard();
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // Registers "/", the assets and /api/* on `server` (the daemon re-creates its http::Server on
  // reload and calls install() on the new one). Call on the io_context thread.
  void install(http::Server& server);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The compiled-in assets (generated from web/ at build time): path ("/app.js"), content type,
// body. Exposed for tests and for a daemon that wants to serve them elsewhere.
struct EmbeddedAsset {
  const char* path;
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
const EmbeddedAsset* embeddedAssets(size_t& count);

// Window statistics of a series (exposed for tests). Unknown (NaN) points are skipped.
//   min, max, average: over the known points; p95: nearest rank (the smallest value with at
//   least 95 % of the known points <= it); total: sum of value x step over the known points.
struct SeriesStats {
  size_t known = 0;
  double min = 0;
  double max = 0;
  double average = 0;
  double p95 = 0;
  double total = 0;
};
SeriesStats seriesStats(const std::vector<double>& values, double step_s);

}  // namespace nc::dashboard
