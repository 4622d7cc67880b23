// nc_dashboard: the dashboard's routes, its worker threads (RRD reads and graphs on one, store
// queries on query_threads) and the event stream. See dashboard.hpp for the API.
#include "collector/dashboard/dashboard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "collector/profile/graph.hpp"
#include "collector/profile/profiler.hpp"
#include "collector/profile/rrd.hpp"
#include "collector/query/aggregate.hpp"
#include "collector/query/filter.hpp"
#include "collector/query/query.hpp"
#include "collector/record/fields.hpp"
#include "common/clock.hpp"
#include "common/version.hpp"

namespace nc::dashboard {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;

http::Response errorJson(unsigned status, std::string_view message, json extra = {}) {
  json j = extra.is_object() ? std::move(extra) : json::object();
  j["error"] = message;
  http::Response r = http::Response::json(j.dump(), status);
  r.headers = {{"Cache-Control", "no-store"}};
  return r;
}

http::Response okJson(const json& j) {
  // Non-finite numbers would not be JSON: nlohmann writes them as null.
  http::Response r = http::Response::json(j.dump(-1, ' ', false, json::error_handler_t::replace));
  r.headers = {{"Cache-Control", "no-store"}};
  return r;
}

// A request parameter's error: 400 naming the parameter.
struct BadParam : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A fixed set of threads taking jobs from one queue of at most `capacity` jobs (running ones
// included); tryPost() refuses when full. A job computes a Response; the queue frees the job's
// place before it answers, so a client that sends its next request on receiving the answer
// never finds the place still taken.
class WorkQueue {
 public:
  using Work = std::function<http::Response()>;
  WorkQueue(unsigned threads, size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
    for (unsigned i = 0; i < std::max(threads, 1u); ++i) {
      threads_.emplace_back([this] { loop(); });
    }
  }
  ~WorkQueue() { stop(); }

  bool tryPost(Work work, http::Respond respond) {
    std::lock_guard lock(mu_);
    if (stopping_ || jobs_.size() + running_ >= capacity_) {
      return false;
    }
    jobs_.push_back({std::move(work), std::move(respond)});
    cv_.notify_one();
    return true;
  }

  // Finishes the running jobs, answers the queued ones 503, joins. Idempotent.
  void stop() {
    std::deque<Job> dropped;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      dropped.swap(jobs_);
    }
    cv_.notify_all();
    for (auto& j : dropped) {
      j.respond(errorJson(503, "the dashboard is stopping"));
    }
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }

 private:
  struct Job {
    Work work;
    http::Respond respond;
  };

  void loop() {
    while (true) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (stopping_) {
          return;
        }
        job = std::move(jobs_.front());
        jobs_.pop_front();
        ++running_;
      }
      http::Response resp;
      try {
        resp = job.work();
      } catch (const std::exception& e) {
        resp = errorJson(500, e.what());
      } catch (...) {
        resp = errorJson(500, "internal error");
      }
      {
        std::lock_guard lock(mu_);
        --running_;
      }
      job.respond(std::move(resp));
    }
  }

  size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The window [start, end] of a request (UNIX ns).
struct Window {
  uint64_t start = 0;
  uint64_t end = 0;
};

Window parseWindow(const http::Request& r, uint64_t now) {
  Window w;
  std::string why;
  w.end = now;
  if (auto e = r.param("end"); e && !e->empty()) {
    if (!query::parseTimeSpec(*e, now, w.end, &why)) {
      throw BadParam(fmt::format("end: {}", why));
    }
  }
  w.start = w.end > 3600 * kSecond ? w.end - 3600 * kSecond : 0;
  if (auto s = r.param("start"); s && !s->empty()) {
    if (!query::parseTimeSpec(*s, now, w.start, &why)) {
      throw BadParam(fmt::format("start: {}", why));
    }
  }
  if (w.start >= w.end) {
    throw BadParam("start must be before end");
  }
  return w;
}

std::string paramOr(const http::Request& r, std::string_view key, std::string def) {
  auto v = r.param(key);
  return v && !v->empty() ? std::string(*v) : def;
}

size_t sizeParam(const http::Request& r, std::string_view key, size_t def, size_t lo, size_t hi) {
  auto v = r.param(key);
  if (!v || v->empty()) {
    return def;
  }
  size_t n = 0;
  for (char c : *v) {
    if (c < '0' || c > '9' || n > 1'000'000'000) {
      throw BadParam(fmt::format("{}: expected a number, got '{}'", key, *v));
    }
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (n < lo || n > hi) {
    throw BadParam(fmt::format("{}: must be {}..{} (got {})", key, lo, hi, n));
  }
  return n;
}

// 1-based line and column (in characters, UTF-8 continuation bytes not counted) of `offset`.
void lineColumn(std::string_view text, size_t offset, size_t& line, size_t& column) {
  line = 1;
  column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
}

// One profile's entry of Profiler::list(), or null.
json findProfile(profile::Profiler& p, const std::string& name) {
  json l = p.list(name);
  for (auto& e : l) {
    if (e.value("name", "") == name) {
      return e;
    }
  }
  return nullptr;
}

uint64_t profileStartS(const json& prof) {
  uint64_t t = 0;
  const std::string s = prof.value("start", "");
  return !s.empty() && parseTime(s, t) ? t / kSecond : 0;
}

struct ChannelRef {
  std::string name;
  std::string colour;
  std::string sign;
  int order = 0;
  std::string path;
};

// The profile's channels in drawing order, restricted to the `channel` parameters if any.
std::vector<ChannelRef> channelsOf(profile::Profiler& p, const json& prof, const http::Request& r) {
  std::vector<std::string> wanted;
  for (const auto& [k, v] : r.query) {
    if (k == "channel" && !v.empty()) {
      wanted.push_back(v);
    }
  }
  std::vector<ChannelRef> out;
  for (const auto& c : prof.value("channels", json::array())) {
    ChannelRef ref;
    ref.name = c.value("name", "");
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), ref.name) == wanted.end()) {
      continue;
    }
    ref.colour = c.value("colour", "#888888");
    ref.sign = c.value("sign", "+");
    ref.order = c.value("order", 0);
    ref.path = p.rrdPath(prof.value("name", ""), ref.name);
    out.push_back(std::move(ref));
  }
  for (const auto& w : wanted) {
    if (std::none_of(out.begin(), out.end(), [&](const ChannelRef& c) { return c.name == w; })) {
      throw BadParam(
          fmt::format("channel: profile '{}' has no channel '{}'", prof.value("name", ""), w));
    }
  }
  return out;
}

void parseMetricProto(const http::Request& r, profile::Metric& m, profile::ProtoSel& p,
                      std::string& metric_text, std::string& proto_text) {
  metric_text = paramOr(r, "metric", "traffic");
  proto_text = paramOr(r, "proto", "any");
  if (!profile::parseMetric(metric_text, m)) {
    throw BadParam(
        fmt::format("metric: expected traffic, packets or flows (got '{}')", metric_text));
  }
  if (!profile::parseProtoSel(proto_text, p)) {
    throw BadParam(
        fmt::format("proto: expected any, tcp, udp, icmp or other (got '{}')", proto_text));
  }
  metric_text = m == profile::Metric::kTraffic   ? "traffic"
                : m == profile::Metric::kPackets ? "packets"
                                                 : "flows";
}

// Reads the series of every channel (read thread).
json readSeries(const std::vector<ChannelRef>& chans, const std::string& ds, bool bits,
                uint64_t start_s, uint64_t end_s, uint64_t step_s, size_t max_points) {
  const uint64_t span = end_s - start_s;
  const uint64_t want =
      std::max<uint64_t>(step_s, (span + max_points - 1) / std::max<size_t>(max_points, 1));
  json channels = json::array();
  std::optional<std::time_t> t0;
  unsigned long step = 0;
  size_t points = 0;
  size_t factor = 1;
  std::string rrd_error;
  for (const auto& c : chans) {
    json cj = {{"name", c.name}, {"colour", c.colour}, {"sign", c.sign}, {"order", c.order}};
    std::error_code ec;
    profile::rrd::Series s;
    std::string why;
    if (!std::filesystem::exists(c.path, ec)) {
      cj["error"] = "no data yet (the channel's RRD file is not written)";
    } else if (!profile::rrd::fetch(c.path, "AVERAGE", static_cast<std::time_t>(start_s),
                                    static_cast<std::time_t>(end_s), want, s, &why)) {
      cj["error"] = why;
    } else {
      auto it = std::find(s.names.begin(), s.names.end(), ds);
      if (it == s.names.end()) {
        cj["error"] = fmt::format("the RRD file has no data source '{}'", ds);
      } else {
        const size_t k = static_cast<size_t>(it - s.names.begin());
        // Rows overlapping the window: row i covers (s.start + i*step, s.start + (i+1)*step].
        std::vector<double> raw;
        std::time_t first = 0;
        for (size_t i = 0; i < s.rows(); ++i) {
          const std::time_t lo = s.start + static_cast<std::time_t>(i * s.step);
          const std::time_t hi = lo + static_cast<std::time_t>(s.step);
          if (hi <= static_cast<std::time_t>(start_s) || lo >= static_cast<std::time_t>(end_s)) {
            continue;
          }
          if (raw.empty()) {
            first = lo;
          }
          raw.push_back(s.at(i, k));
        }
        if (!t0) {
          t0 = first;
          step = s.step;
          factor = std::max<size_t>(1, (raw.size() + max_points - 1) / max_points);
          points = (raw.size() + factor - 1) / factor;
        }
        const SeriesStats st = seriesStats(raw, static_cast<double>(s.step));
        const double mul = bits ? 8.0 : 1.0;
        cj["stats"] = {{"known", st.known},           {"min", st.min * mul}, {"max", st.max * mul},
                       {"average", st.average * mul}, {"p95", st.p95 * mul}, {"total", st.total}};
        // Consolidate `factor` rows into one point (average of the known ones).
        json values = json::array();
        for (size_t i = 0; i < points; ++i) {
          double sum = 0;
          size_t n = 0;
          for (size_t j = i * factor; j < std::min(raw.size(), (i + 1) * factor); ++j) {
            if (!std::isnan(raw[j])) {
              sum += raw[j];
              ++n;
            }
          }
          if (n == 0) {
            values.push_back(nullptr);
          } else {
            values.push_back(sum / static_cast<double>(n) * mul);
          }
        }
        cj["values"] = std::move(values);
      }
    }
    if (cj.contains("error") && rrd_error.empty()) {
      rrd_error = cj["error"];
    }
    if (!cj.contains("values")) {
      cj["values"] = json::array();
      cj["stats"] = nullptr;
    }
    channels.push_back(std::move(cj));
  }
  return {{"start", t0 ? static_cast<int64_t>(*t0) : static_cast<int64_t>(start_s)},
          {"step", static_cast<uint64_t>(step) * factor},
          {"rrd_step", step},
          {"points", points},
          {"channels", std::move(channels)}};
}

json totalsJson(const query::ScanTotals& t) {
  return {{"rows_scanned", t.rows_scanned},
          {"flows", t.flows},
          {"packets", t.packets},
          {"bytes", t.bytes},
          {"segments", t.segments},
          {"blocks", t.blocks},
          {"blocks_skipped", t.blocks_skipped},
          {"seconds", t.seconds},
          {"errors", t.errors}};
}

// The newest `limit` matching flows (first_ns descending): listFlows orders times ascending
// only, so this scans the source itself.
query::ScanTotals newestFlows(query::Source& src, const query::QueryOptions& q, size_t limit,
                              std::vector<FlowRecord>& out) {
  const auto start = std::chrono::steady_clock::now();
  auto newer = [](const FlowRecord& a, const FlowRecord& b) { return a.first_ns > b.first_ns; };
  struct Worker {
    std::vector<uint32_t> sel;
    std::vector<FlowRecord> flows;
    uint64_t matched = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
  };
  std::vector<Worker> workers(std::max(src.maxWorkers(q.threads), 1u));
  const bool selected = src.selectsRows();
  const bool in_window = src.passesOnlyWindowRows();
  query::ScanTotals totals;
  auto fn = [&](const FlowColumns& c, size_t begin, size_t end, unsigned w) {
    Worker& wk = workers[std::min<size_t>(w, workers.size() - 1)];
    wk.sel.clear();
    if (selected) {
      for (size_t i = begin; i < end; ++i) {
        wk.sel.push_back(static_cast<uint32_t>(i));
      }
    } else {
      q.filter.select(c, begin, end, wk.sel, in_window);
    }
    for (uint32_t i : wk.sel) {
      wk.flows.push_back(c.row(i));
      ++wk.matched;
      wk.packets += query::rowPackets(c, i, q.scaled);
      wk.bytes += query::rowBytes(c, i, q.scaled);
    }
    if (wk.flows.size() > 2 * limit + 4096) {
      std::nth_element(wk.flows.begin(), wk.flows.begin() + static_cast<ptrdiff_t>(limit),
                       wk.flows.end(), newer);
      wk.flows.resize(limit);
    }
  };
  if (!selected) {
    totals.rows_scanned = 0;
  }
  src.scan(q.filter, q.since_ns, q.until_ns, q.threads, allColumns(), fn, totals);
  out.clear();
  for (auto& wk : workers) {
    totals.flows += wk.matched;
    totals.packets += wk.packets;
    totals.bytes += wk.bytes;
    out.insert(out.end(), wk.flows.begin(), wk.flows.end());
  }
  for (const auto& f : out) {
    totals.first_ns = std::min(totals.first_ns, f.first_ns);
    totals.last_ns = std::max(totals.last_ns, f.last_ns);
  }
  if (out.size() > limit) {
    std::partial_sort(out.begin(), out.begin() + static_cast<ptrdiff_t>(limit), out.end(), newer);
    out.resize(limit);
  } else {
    std::sort(out.begin(), out.end(), newer);
  }
  totals.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return totals;
}

struct FlowsJob {
  std::string store_path;
  query::QueryOptions q;
  bool top = false;
  std::string order;
  std::optional<query::KeySpec> keys;
  size_t limit = 100;
};

json runFlows(FlowsJob& job) {
  std::string why;
  auto src = query::openStore(job.store_path, &why);
  if (!src) {
    throw std::runtime_error(fmt::format("cannot open the flow store: {}", why));
  }
  json rows = json::array();
  json columns = json::array();
  query::ScanTotals t;
  if (!job.top) {
    std::vector<FlowRecord> flows;
    query::Order order;
    if (job.order == "newest") {
      t = newestFlows(*src, job.q, job.limit, flows);
    } else {
      query::parseOrder(job.order, order);  // checked before
      t = query::listFlows(*src, job.q, order, job.limit, flows);
    }
    for (const auto& f : flows) {
      rows.push_back(toJson(f));
    }
    for (const auto* c : {"first", "duration", "proto", "src_addr", "src_port", "dst_addr",
                          "dst_port", "packets", "bytes", "sampling_rate", "exporter"}) {
      columns.push_back(c);
    }
  } else {
    std::unique_ptr<query::Aggregator> agg;
    t = query::aggregateFlows(*src, job.q, *job.keys, agg);
    query::Metric m = query::Metric::kBytes;
    query::parseMetric(job.order, m);  // checked before
    for (size_t g : agg->top(m, job.limit)) {
      json o = json::object();
      agg->keyJson(agg->key(g), o);
      const auto c = agg->counters(g);
      o["flows"] = c.flows;
      o["packets"] = c.packets;
      o["bytes"] = c.bytes;
      o["pps"] = c.pps();
      o["bps"] = c.bps();
      o["bpp"] = c.bpp();
      o["first"] = formatTime(c.first_ns);
      o["last"] = formatTime(c.last_ns);
      rows.push_back(std::move(o));
    }
    for (const auto& k : agg->keyNames()) {
      columns.push_back(k);
    }
    for (const auto* c : {"flows", "packets", "bytes", "bps", "pps", "bpp"}) {
      columns.push_back(c);
    }
  }
  const bool truncated = job.top ? false : t.flows > rows.size();
  return {{"mode", job.top ? "top" : "list"},
          {"filter", job.q.filter.text()},
          {"start", formatTime(job.q.since_ns)},
          {"end", formatTime(job.q.until_ns)},
          {"order", job.order},
          {"limit", job.limit},
          {"columns", std::move(columns)},
          {"rows", std::move(rows)},
          {"truncated", truncated},
          {"totals", totalsJson(t)}};
}

}  // namespace

SeriesStats seriesStats(const std::vector<double>& values, double step_s) {
  SeriesStats s;
  std::vector<double> known;
  known.reserve(values.size());
  for (double v : values) {
    if (!std::isnan(v)) {
      known.push_back(v);
    }
  }
  s.known = known.size();
  if (known.empty()) {
    return s;
  }
  std::sort(known.begin(), known.end());
  s.min = known.front();
  s.max = known.back();
  const double sum = std::accumulate(known.begin(), known.end(), 0.0);
  s.average = sum / static_cast<double>(known.size());
  s.total = sum * step_s;
  // Nearest rank: the ceil(0.95 n)-th smallest value.
  const size_t rank = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(known.size())));
  s.p95 = known[std::max<size_t>(rank, 1) - 1];
  return s;
}

struct Dashboard::Impl : std::enable_shared_from_this<Dashboard::Impl> {
  Impl(asio::io_context& io_context, Sources s, DashboardOptions o)
      : io(io_context),
        sources(std::move(s)),
        opts(std::move(o)),
        timer(io_context),
        reads(1, std::max<size_t>(opts.max_read_queue, 1)),
        queries(std::max(opts.query_threads, 1u), std::max(opts.query_threads, 1u)) {}

  uint64_t now() const { return opts.now_ns ? opts.now_ns() : unixNowNs(); }

  void install(http::Server& server);
  void stop();
  void poll();
  json statusJson() const;
  uint64_t stepsWritten() const {
    return sources.profiler ? sources.profiler->status().value("steps_written", uint64_t{0}) : 0;
  }

  http::Response profiles(const http::Request& r);
  void series(const http::Request& r, http::Respond respond);
  void graph(const http::Request& r, http::Respond respond);
  void flows(const http::Request& r, http::Respond respond);
  http::Response events(const http::Request& r);

  asio::io_context& io;
  Sources sources;
  DashboardOptions opts;
  asio::steady_timer timer;
  bool polling = false;
  bool stopped = false;
  uint64_t last_steps = 0;
  std::chrono::steady_clock::time_point last_status{};
  std::vector<std::shared_ptr<http::SseStream>> streams;
  WorkQueue reads;
  WorkQueue queries;
};

json Dashboard::Impl::statusJson() const {
  json j = {{"version", std::string(kVersion)},
            {"profiles", sources.profiler != nullptr},
            {"store", !sources.store_path.empty()},
            {"events", static_cast<bool>(sources.events)},
            {"time", formatTime(now())}};
  if (sources.profiler) {
    const json st = sources.profiler->status();
    j["steps_written"] = st.value("steps_written", uint64_t{0});
    j["step_s"] = st.value("step_ms", uint64_t{0}) / 1000;
  }
  if (sources.status) {
    try {
      j["daemon"] = sources.status();
    } catch (const std::exception& e) {
      j["daemon_error"] = e.what();
    }
  }
  return j;
}

http::Response Dashboard::Impl::profiles(const http::Request&) {
  if (!sources.profiler) {
    return okJson({{"enabled", false},
                   {"profiles", json::array()},
                   {"hint", "profiles are off in this daemon (profiles: in the configuration)"}});
  }
  json list = sources.profiler->list();
  json j = {{"enabled", true},
            {"step_s", sources.profiler->status().value("step_ms", uint64_t{0}) / 1000},
            {"profiles", std::move(list)}};
  if (j["profiles"].empty()) {
    j["hint"] =
        "no profiles yet: net-collector profile add NAME; net-collector profile channel add "
        "NAME/CHANNEL --filter 'port 22' --colour '#48C6FF'; net-collector profile commit NAME";
  }
  return okJson(j);
}

void Dashboard::Impl::series(const http::Request& r, http::Respond respond) {
  if (!sources.profiler) {
    return respond(errorJson(404, "profiles are off in this daemon"));
  }
  const std::string name = paramOr(r, "profile", "");
  if (name.empty()) {
    throw BadParam("profile: required");
  }
  const json prof = findProfile(*sources.profiler, name);
  if (prof.is_null()) {
    return respond(errorJson(404, fmt::format("no profile '{}'", name)));
  }
  const Window w = parseWindow(r, now());
  profile::Metric m;
  profile::ProtoSel p;
  std::string metric_text;
  std::string proto_text;
  parseMetricProto(r, m, p, metric_text, proto_text);
  auto chans = channelsOf(*sources.profiler, prof, r);
  const std::string ds = profile::dataSource(m, p);
  const bool bits = m == profile::Metric::kTraffic;
  const uint64_t step_s =
      std::max<uint64_t>(1, sources.profiler->status().value("step_ms", uint64_t{10'000}) / 1000);
  json head = {{"profile", name},
               {"metric", metric_text},
               {"proto", proto_text},
               {"ds", ds},
               {"unit", bits ? "bit/s" : metric_text + "/s"},
               {"total_unit", bits ? "bytes" : metric_text},
               {"window", {{"start", w.start / kSecond}, {"end", w.end / kSecond}}},
               {"profile_start", profileStartS(prof)},
               {"profile_status", prof.value("status", "")}};
  const size_t max_points = std::max<size_t>(opts.max_points, 1);
  auto job = [chans = std::move(chans), ds, bits, w, step_s, max_points, head = std::move(head)]() {
    json body = readSeries(chans, ds, bits, w.start / kSecond, (w.end + kSecond - 1) / kSecond,
                           step_s, max_points);
    for (auto& [k, v] : head.items()) {
      body[k] = v;
    }
    return okJson(body);
  };
  if (!reads.tryPost(std::move(job), respond)) {
    respond(errorJson(503, "busy: too many graph requests waiting, retry"));
  }
}

void Dashboard::Impl::graph(const http::Request& r, http::Respond respond) {
  if (!sources.profiler) {
    return respond(errorJson(404, "profiles are off in this daemon"));
  }
  const std::string name = paramOr(r, "profile", "");
  if (name.empty()) {
    throw BadParam("profile: required");
  }
  const json prof = findProfile(*sources.profiler, name);
  if (prof.is_null()) {
    return respond(errorJson(404, fmt::format("no profile '{}'", name)));
  }
  const Window w = parseWindow(r, now());
  profile::GraphSpec spec;
  std::string metric_text;
  std::string proto_text;
  parseMetricProto(r, spec.metric, spec.proto, metric_text, proto_text);
  for (auto& c : channelsOf(*sources.profiler, prof, r)) {
    std::error_code ec;
    if (std::filesystem::exists(c.path, ec)) {
      spec.channels.push_back({c.name, c.path, c.colour, c.sign == "-" ? '-' : '+'});
    }
  }
  if (spec.channels.empty()) {
    return respond(errorJson(404, fmt::format("profile '{}' has no channel data yet", name)));
  }
  const std::string format = paramOr(r, "format", "png");
  if (!profile::parseImageFormat(format, spec.format)) {
    throw BadParam(fmt::format("format: expected png or svg (got '{}')", format));
  }
  spec.width = static_cast<unsigned>(sizeParam(r, "width", 576, 16, 4096));
  spec.height = static_cast<unsigned>(sizeParam(r, "height", 200, 16, 4096));
  spec.start_s = w.start / kSecond;
  spec.end_s = std::max<uint64_t>(spec.start_s + 1, w.end / kSecond);
  spec.profile_start_s = profileStartS(prof);
  spec.title = fmt::format("{}: {}", name, profile::dataSource(spec.metric, spec.proto));
  auto job = [spec = std::move(spec)]() {
    std::string image;
    std::string why;
    if (!profile::renderGraph(spec, image, &why)) {
      return errorJson(500, fmt::format("graph: {}", why));
    }
    http::Response resp;
    resp.content_type = spec.format == profile::ImageFormat::kPng ? "image/png" : "image/svg+xml";
    resp.body = std::move(image);
    resp.headers = {{"Cache-Control", "no-store"}};
    return resp;
  };
  if (!reads.tryPost(std::move(job), respond)) {
    respond(errorJson(503, "busy: too many graph requests waiting, retry"));
  }
}

void Dashboard::Impl::flows(const http::Request& r, http::Respond respond) {
  if (sources.store_path.empty()) {
    return respond(errorJson(404, "no flow store in this daemon: drill-down is off"));
  }
  FlowsJob job;
  job.store_path = sources.store_path;
  const std::string text = paramOr(r, "filter", "");
  query::FilterError err;
  auto f = query::Filter::compile(text, &err);
  if (!f) {
    size_t line = 0;
    size_t column = 0;
    lineColumn(text, err.offset, line, column);
    return respond(errorJson(400, fmt::format("filter:{}:{}: {}", line, column, err.message),
                             {{"filter_error",
                               {{"message", err.message},
                                {"offset", err.offset},
                                {"line", line},
                                {"column", column},
                                {"rendered", err.render(text)}}}}));
  }
  const Window w = parseWindow(r, now());
  if (opts.max_window_ns != 0 && w.end - w.start > opts.max_window_ns) {
    throw BadParam(fmt::format("the window is longer than the dashboard allows ({} s)",
                               opts.max_window_ns / kSecond));
  }
  f->restrictTime(w.start, w.end);
  job.q.filter = std::move(*f);
  job.q.since_ns = w.start;
  job.q.until_ns = w.end;
  job.q.threads = 1;
  job.q.scaled = paramOr(r, "raw", "") != "1";
  const std::string mode = paramOr(r, "mode", "list");
  if (mode != "list" && mode != "top") {
    throw BadParam(fmt::format("mode: expected list or top (got '{}')", mode));
  }
  job.top = mode == "top";
  job.limit = sizeParam(r, "limit", std::min<size_t>(100, opts.max_rows), 1,
                        std::max<size_t>(opts.max_rows, 1));
  if (job.top) {
    std::string why;
    const std::string key = paramOr(r, "key", "srcip");
    job.keys = query::parseKeys(key, 60 * kSecond, &why);
    if (!job.keys) {
      throw BadParam(fmt::format("key: {}", why));
    }
    job.order = paramOr(r, "order", "bytes");
    query::Metric m;
    if (!query::parseMetric(job.order, m)) {
      throw BadParam(fmt::format(
          "order: expected flows, packets, bytes, pps, bps or bpp (got '{}')", job.order));
    }
  } else {
    job.order = paramOr(r, "order", "newest");
    query::Order o;
    if (job.order != "newest" && !query::parseOrder(job.order, o)) {
      throw BadParam(fmt::format(
          "order: expected newest, first, last, bytes, packets, duration, pps, bps or bpp "
          "(got '{}')",
          job.order));
    }
  }
  // A shared_ptr: std::function needs a copyable callable.
  auto shared = std::make_shared<FlowsJob>(std::move(job));
  auto run = [shared]() { return okJson(runFlows(*shared)); };
  if (!queries.tryPost(std::move(run), respond)) {
    respond(errorJson(503, "busy: another drill-down query is running, retry when it ends",
                      {{"busy", true}}));
  }
}

http::Response Dashboard::Impl::events(const http::Request& r) {
  if (!sources.events) {
    return okJson({{"enabled", false}, {"events", json::array()}});
  }
  const Window w = parseWindow(r, now());
  json req = {{"since", w.start}, {"until", w.end}, {"limit", opts.max_events}};
  json list;
  try {
    list = sources.events(req);
  } catch (const std::exception& e) {
    return errorJson(400, fmt::format("events: {}", e.what()));
  }
  if (!list.is_array()) {
    list = json::array();
  }
  return okJson({{"enabled", true},
                 {"window", {{"start", w.start / kSecond}, {"end", w.end / kSecond}}},
                 {"events", std::move(list)}});
}

void Dashboard::Impl::poll() {
  if (stopped) {
    return;
  }
  std::erase_if(streams, [](const auto& s) { return s->closed(); });
  const uint64_t steps = stepsWritten();
  if (steps != last_steps) {
    last_steps = steps;
    const std::string data = json{{"steps_written", steps}, {"time", formatTime(now())}}.dump();
    for (auto& s : streams) {
      s->send(data, "step");
    }
  }
  const auto t = std::chrono::steady_clock::now();
  if (!streams.empty() && opts.status_every.count() > 0 && t - last_status >= opts.status_every) {
    last_status = t;
    const std::string data = statusJson().dump(-1, ' ', false, json::error_handler_t::replace);
    for (auto& s : streams) {
      s->send(data, "status");
    }
  }
  timer.expires_after(opts.poll);
  timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) {
      return;
    }
    if (auto self = weak.lock()) {
      self->poll();
    }
  });
}

void Dashboard::Impl::stop() {
  if (stopped) {
    return;
  }
  stopped = true;
  timer.cancel();
  for (auto& s : streams) {
    s->close();
  }
  streams.clear();
  queries.stop();
  reads.stop();
}

void Dashboard::Impl::install(http::Server& server) {
  std::weak_ptr<Impl> weak = weak_from_this();
  size_t n = 0;
  const EmbeddedAsset* assets = embeddedAssets(n);
  for (size_t i = 0; i < n; ++i) {
    http::Asset a;
    a.content_type = assets[i].content_type;
    a.body.assign(reinterpret_cast<const char*>(assets[i].data), assets[i].size);
    if (std::string_view(assets[i].path) == "/index.html") {
      server.asset("/", a);
    }
    server.asset(assets[i].path, std::move(a));
  }
  // Sync handlers: run on the io thread; BadParam -> 400.
  auto sync = [weak](http::Response (Impl::*fn)(const http::Request&)) {
    return [weak, fn](const http::Request& r) {
      auto self = weak.lock();
      if (!self || self->stopped) {
        return errorJson(503, "the dashboard is stopping");
      }
      try {
        return ((*self).*fn)(r);
      } catch (const BadParam& e) {
        return errorJson(400, e.what());
      } catch (const std::exception& e) {
        return errorJson(500, e.what());
      }
    };
  };
  auto async = [weak](void (Impl::*fn)(const http::Request&, http::Respond)) {
    return [weak, fn](const http::Request& r, http::Respond respond) {
      auto self = weak.lock();
      if (!self || self->stopped) {
        return respond(errorJson(503, "the dashboard is stopping"));
      }
      try {
        ((*self).*fn)(r, respond);
      } catch (const BadParam& e) {
        respond(errorJson(400, e.what()));
      } catch (const std::exception& e) {
        respond(errorJson(500, e.what()));
      }
    };
  };
  server.route("GET", "/api/profiles", sync(&Impl::profiles));
  server.route("GET", "/api/events", sync(&Impl::events));
  server.route("GET", "/api/status", [weak](const http::Request&) {
    auto self = weak.lock();
    if (!self || self->stopped) {
      return errorJson(503, "the dashboard is stopping");
    }
    return okJson(self->statusJson());
  });
  server.routeAsync("GET", "/api/series", async(&Impl::series));
  server.routeAsync("GET", "/api/graph", async(&Impl::graph));
  server.routeAsync("GET", "/api/flows", async(&Impl::flows));
  server.route("GET", "/api", [](const http::Request& r) {
    return errorJson(404, fmt::format("no such API: {}", r.path));
  });
  server.sse("/api/stream", [weak](const http::Request&, std::shared_ptr<http::SseStream> s) {
    auto self = weak.lock();
    if (!self || self->stopped) {
      throw std::runtime_error("the dashboard is stopping");
    }
    s->send(json{{"steps_written", self->last_steps}}.dump(), "hello");
    self->streams.push_back(std::move(s));
  });
  if (!polling) {
    polling = true;
    last_steps = stepsWritten();
    timer.expires_after(opts.poll);
    timer.async_wait([weak](boost::system::error_code ec) {
      if (ec) {
        return;
      }
      if (auto self = weak.lock()) {
        self->poll();
      }
    });
  }
}

Dashboard::Dashboard(asio::io_context& io, Sources sources, DashboardOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(sources), std::move(options))) {}

Dashboard::~Dashboard() {
  impl_->stop();
}

void Dashboard::install(http::Server& server) {
  impl_->install(server);
}

}  // namespace nc::dashboard
