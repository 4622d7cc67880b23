#include "collector/cli/cli.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "collector/cli/correlation.hpp"
#include "collector/cli/output.hpp"
#include "collector/cli/profile.hpp"
#include "collector/cli/provision.hpp"
#include "collector/control/control.hpp"
#include "collector/events/events.hpp"
#include "collector/gen/gen.hpp"
#include "collector/ingest/ingest.hpp"
#include "collector/metrics/json.hpp"
#include "collector/query/filter.hpp"
#include "collector/query/input.hpp"
#include "collector/query/query.hpp"
#include "collector/record/fields.hpp"
#include "common/units.hpp"
#include "common/version.hpp"
#include "config/config.hpp"

namespace nc::cli {
namespace {

constexpr const char* kDefaultSocket = "/run/net-collector/control.sock";

struct Common {
  std::string socket;
  std::string config_path;
};

// The control socket: --socket, else control.socket of --config, else the default.
std::string controlSocket(const Common& c) {
  if (!c.socket.empty()) {
    return c.socket;
  }
  if (!c.config_path.empty()) {
    auto res = config::loadFile(c.config_path);
    if (!res.ok()) {
      throw std::runtime_error(res.errors.front().toString());
    }
    return res.config.control.socket;
  }
  return kDefaultSocket;
}

// "<title>1200 datagrams, 0 of them by UDP GRO, 1.2 MiB of UDP payload, ..." for every counter
// of `list` (a stats struct's kMetrics) read from the JSON object `in`, wrapped at 100 columns.
template <size_t N>
void printCounters(std::ostream& out, std::string_view title, const nlohmann::json& in,
                   const std::array<metrics::MetricInfo, N>& list) {
  std::string line(title);
  const std::string indent(title.size(), ' ');
  bool first = true;
  for (const auto& m : list) {
    const uint64_t v = metrics::counterValue(in, m);
    std::string part = fmt::format(
        "{} {}", m.unit == metrics::Unit::kBytes ? units::formatBytes(v) : std::to_string(v),
        m.column.empty() ? m.key : m.column);
    if (!first && line.size() + part.size() + 2 > 100) {
      out << line << ",\n";
      line = indent + part;
    } else {
      line += (first ? "" : ", ") + part;
    }
    first = false;
  }
  out << line << "\n";
}

int cmdStatus(const Common& c, bool json) {
  std::string sock = controlSocket(c);
  auto ans = control::request(sock, {{"cmd", "status"}});
  if (!ans.value("ok", false)) {
    std::cerr << "net-collector: daemon error: " << ans.value("error", "?") << "\n";
    return 1;
  }
  auto ex = control::request(sock, {{"cmd", "exporters"}});
  nlohmann::json r = ans["result"];
  r["exporters"] = ex.value("ok", false) ? ex["result"] : nlohmann::json::array();
  if (json) {
    std::cout << r.dump() << "\n";
    return 0;
  }
  std::cout << fmt::format("net-collectord {} (pid {}), up {}\n", r.value("version", "?"),
                           r.value("pid", 0),
                           units::formatDurationMs(r.value("uptime_s", uint64_t{0}) * 1000));
  std::string cfg = r.value("config", std::string());
  std::cout << fmt::format("config:   {}\n", cfg.empty() ? "(built-in defaults)" : cfg);
  std::cout << "listen:  ";
  for (const auto& l : r["listen"]) {
    std::string a = l.value("address", "");
    std::cout << (a.find(':') != std::string::npos ? fmt::format(" [{}]:{}", a, l.value("port", 0))
                                                   : fmt::format(" {}:{}", a, l.value("port", 0)));
  }
  std::cout << "\n";
  const auto& in = r["ingest"];
  printCounters(std::cout, "ingest:   ", in, ingest::ShardStats::kMetrics);
  if (in.contains("denied_sources") && !in["denied_sources"].empty()) {
    std::cout << "          denied by collector.allow, newest first:";
    for (const auto& d : in["denied_sources"]) {
      std::cout << fmt::format(" {} ({} datagrams, last {})", d.value("address", "?"),
                               d.value("datagrams", uint64_t{0}), d.value("last_seen", "?"));
    }
    std::cout << "\n";
  }
  std::cout << fmt::format("          now {} datagrams/s, {} records/s\n",
                           units::formatCount(in.value("datagrams_per_s", 0.0)),
                           units::formatCount(in.value("records_per_s", 0.0)));
  const auto& st = r["store"];
  if (st.is_object() && st.value("enabled", false)) {
    auto sn = [&](const char* k) { return st.value(k, uint64_t{0}); };
    std::cout << fmt::format(
        "store:    {} — {} in {} segment(s), {} rows written, {} dropped, {} "
        "write error(s){}\n",
        st.value("path", ""), units::formatBytes(sn("usage_bytes")), sn("segments"),
        sn("rows_written"), sn("drops"), sn("errors"),
        st.value("error_now", false) ? " — FAILING NOW: " + st.value("last_error", std::string())
                                     : "");
    if (!st.value("oldest", std::string()).empty()) {
      std::cout << fmt::format("          flows from {} to {}\n", st.value("oldest", ""),
                               st.value("newest", ""));
    }
  } else if (st.is_object()) {
    std::cout << fmt::format("store:    {} (disabled: {})\n", st.value("path", ""),
                             st.value("last_error", std::string("not writable")));
  }
  const auto& ov = r["ovsdb"];
  if (ov.contains("state")) {
    size_t bridges = ov.contains("bridges") ? ov["bridges"].size() : 0;
    std::string err = ov.value("last_error", std::string());
    std::cout << fmt::format("ovsdb:    {} — {}, {} bridge(s), {} transaction(s){}\n",
                             ov.value("endpoint", ""), ov.value("state", ""), bridges,
                             ov.value("transactions", 0),
                             err.empty() ? "" : " — last error: " + err);
  } else {
    std::cout << fmt::format("ovsdb:    {} (disabled)\n", ov.value("endpoint", ""));
  }
  if (const auto& inv = r["inventory"]; inv.is_object()) {
    std::string bridges;
    for (const auto& b : inv.value("bridges", nlohmann::json::array())) {
      bridges += (bridges.empty() ? "" : ", ") + b.get<std::string>();
    }
    const auto& nl = inv["netlink"];
    std::cout << fmt::format("ports:    {} Open vSwitch port(s){}{}; netlink: {}\n",
                             inv.value("ports", 0), bridges.empty() ? "" : " on " + bridges,
                             !inv["ovsdb"].value("enabled", false) ? " (OVSDB off)"
                             : inv["ovsdb"].value("synced", false) ? ""
                                                                   : " (OVSDB not synced)",
                             nl.value("running", false)
                                 ? fmt::format("{} links, {} neighbours", nl.value("links", 0),
                                               nl.value("neighbours", 0))
                                 : "off (" + nl.value("last_error", std::string()) + ")");
  }
  if (const auto& co = r["correlation"]; co.is_object()) {
    if (!co.value("enabled", false)) {
      std::cout << "spikes:   detection off (correlation.enabled)\n";
    } else {
      const auto& sub = co["subjects"];
      std::cout << fmt::format(
          "spikes:   watching {} port and {} address series (step {} ms); {} event(s) so far, {} "
          "ongoing\n",
          sub.value("ports", 0), sub.value("addresses", 0), co.value("step_ms", 0),
          co.value("events_started", 0), co.value("ongoing", 0));
      for (const auto& j : co.value("ongoing_events", nlohmann::json::array())) {
        events::Event e;
        std::string why;
        if (events::fromJson(j, e, &why)) {
          std::cout << "          " << events::formatLine(e, false) << "\n";
        }
      }
    }
  }
  if (!r["exporters"].empty()) {
    // Identity columns, then every ExporterStats counter that has a CLI column (in list order).
    std::vector<std::string> header = {"exporter", "protocol", "kind"};
    std::vector<bool> numeric = {false, false, false};
    for (const auto& m : decode::ExporterStats::kMetrics) {
      if (!m.column.empty()) {
        header.emplace_back(m.column);
        numeric.push_back(true);
      }
    }
    header.emplace_back("last_seen");
    numeric.push_back(false);
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : r["exporters"]) {
      std::vector<std::string> row = {e.value("exporter", ""), e.value("protocol", ""),
                                      e.value("flavor", "")};
      for (const auto& m : decode::ExporterStats::kMetrics) {
        if (!m.column.empty()) {
          row.push_back(std::to_string(metrics::counterValue(e, m)));
        }
      }
      row.push_back(e.value("last_seen", ""));
      rows.push_back(std::move(row));
    }
    std::cout << "\n";
    printTable(std::cout, header, rows, numeric);
  }
  return 0;
}

// The daemon keeps the newest flows it decoded in a ring per receive shard (kRecentPerShard in
// collector/daemon/daemon.cpp); --live queries see only those.
constexpr size_t kLiveRingPerShard = 4096;

// Every flow the daemon holds in memory (all its receive shards' rings), oldest first. The
// filter and the limit are applied by the caller, in that order.
std::vector<FlowRecord> liveFlows(const Common& c) {
  constexpr size_t kAll = size_t{1} << 30;  // more than all rings together hold
  auto ans = control::request(controlSocket(c), {{"cmd", "recent"}, {"limit", kAll}});
  if (!ans.value("ok", false)) {
    throw std::runtime_error("daemon error: " + ans.value("error", std::string("?")));
  }
  std::vector<FlowRecord> out;
  for (const auto& j : ans["result"]) {
    FlowRecord r;
    std::string why;
    if (!fromJson(j, r, &why)) {
      throw std::runtime_error("daemon sent a bad flow: " + why);
    }
    out.push_back(r);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Queries: flows, top, series.

// Options shared by the query subcommands.
struct QueryArgs {
  std::vector<std::string> filter_words;  // positional, joined like nfdump
  std::string filter;                     // --filter
  std::string since;
  std::string until;
  std::string input;
  std::string store;
  bool live = false;
  std::string format = "auto";
  size_t limit = 0;
  bool raw = false;
  unsigned threads = 0;
  bool quiet = false;
  bool summary_only = false;
  bool explain = false;
};

void addQueryOptions(CLI::App* cmd, QueryArgs& a, bool with_live) {
  cmd->add_option("filter", a.filter_words,
                  "filter in nfdump syntax, e.g. 'proto tcp and dst port 443' (words are joined; "
                  "see `net-collector filters`)");
  cmd->add_option("--filter", a.filter, "filter (ANDed with the positional one)");
  cmd->add_option("--since", a.since,
                  "flows that started at or after: now, -1h, 30m, 2026-11-26T10:00:00Z, "
                  "'2026-11-26 10:00[:SS]' (UTC)");
  cmd->add_option("--until", a.until, "flows that started before (same forms as --since)");
  cmd->add_option(
      "-i,--input", a.input,
      "read flows from a file instead of the store ('-' = stdin): JSON lines as "
      "written by --format json, or nfdump -o json output (an object with no flow field "
      "is an error naming its line)");
  cmd->add_option("--store", a.store,
                  "flow store directory (default: store.path of --config, else "
                  "/var/lib/net-collector/flows)");
  if (with_live) {
    cmd->add_flag("--live", a.live,
                  "the flows the running daemon holds in memory (the newest 4096 per receive "
                  "shard): filtered first, then limited by -n (0 = all of them)");
  }
  cmd->add_option("-f,--format", a.format,
                  "auto (table on a terminal, else JSON lines) | table | csv | json")
      ->capture_default_str();
  cmd->add_flag("--raw", a.raw,
                "sum packets/bytes as exported instead of multiplied by sampling_rate");
  cmd->add_option("--threads", a.threads, "worker threads (0 = one per core)")
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", a.quiet, "no summary line");
  cmd->add_flag("--summary", a.summary_only,
                "print only the summary (flows, packets, bytes, window, rows scanned)");
  cmd->add_flag("--explain", a.explain, "print the compiled filter program and exit");
}

std::string filterText(const QueryArgs& a) {
  std::string positional;
  for (const auto& w : a.filter_words) {
    positional += (positional.empty() ? "" : " ") + w;
  }
  if (!positional.empty() && !a.filter.empty()) {
    return "(" + positional + ") and (" + a.filter + ")";
  }
  return positional.empty() ? a.filter : positional;
}

uint64_t nowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Compiles filter + time window into `q`; throws with the caret message on errors.
void buildQuery(const QueryArgs& a, query::QueryOptions& q) {
  std::string text = filterText(a);
  query::FilterError err;
  auto f = query::Filter::compile(text, &err);
  if (!f) {
    throw std::runtime_error("bad filter\n" + err.render(text));
  }
  uint64_t now = nowNs();
  std::string why;
  if (!a.since.empty() && !query::parseTimeSpec(a.since, now, q.since_ns, &why)) {
    throw CLI::ValidationError("--since", why);
  }
  if (!a.until.empty() && !query::parseTimeSpec(a.until, now, q.until_ns, &why)) {
    throw CLI::ValidationError("--until", why);
  }
  if (q.since_ns >= q.until_ns) {
    throw CLI::ValidationError("--until", "must be after --since");
  }
  f->restrictTime(q.since_ns, q.until_ns);
  q.filter = std::move(*f);
  q.threads = a.threads;
  q.scaled = !a.raw;
  if (::isatty(STDERR_FILENO)) {
    q.progress = [](uint64_t rows) {
      std::cerr << fmt::format("\r  scanning: {} rows ",
                               units::formatCount(static_cast<double>(rows)))
                << std::flush;
    };
  }
}

void endProgress(const query::QueryOptions& q) {
  if (q.progress) {
    std::cerr << "\r\033[K" << std::flush;
  }
}

// Where the rows come from: --live, --input, else the store.
struct Input {
  FlowColumns mem;
  std::unique_ptr<query::Source> source;
  size_t live_rows = 0;  // --live: rows the daemon sent
};

// --live answers only from the daemon's rings: say so when they may have cut the answer short
// (at least one ring can be full and the answer is not already limited by -n).
void noteLiveCap(const QueryArgs& a, const Input& in, size_t answered) {
  if (a.live && in.live_rows >= kLiveRingPerShard && (a.limit == 0 || answered < a.limit)) {
    std::cerr << fmt::format(
        "net-collector: --live answered from the {} flows the daemon holds in memory (the newest "
        "{} per receive shard); query the store for older flows\n",
        in.live_rows, kLiveRingPerShard);
  }
}

void openInput(const Common& c, const QueryArgs& a, Input& in) {
  int chosen = (a.live ? 1 : 0) + (a.input.empty() ? 0 : 1) + (a.store.empty() ? 0 : 1);
  if (chosen > 1) {
    throw CLI::ValidationError("--live/--input/--store", "choose one input");
  }
  if (a.live) {
    for (const auto& r : liveFlows(c)) {
      in.mem.append(r);
      ++in.live_rows;
    }
    in.source = std::make_unique<query::MemorySource>(in.mem);
    return;
  }
  if (!a.input.empty()) {
    query::readFlowsFile(a.input, in.mem);
    in.source = std::make_unique<query::MemorySource>(in.mem);
    return;
  }
  std::string path = a.store;
  if (path.empty()) {
    path = config::Config{}.store.path;
    if (!c.config_path.empty()) {
      auto res = config::loadFile(c.config_path);
      if (!res.ok()) {
        throw std::runtime_error(res.errors.front().toString());
      }
      path = res.config.store.path;
    }
  }
  std::string why;
  in.source = query::openStore(path, &why);
  if (!in.source) {
    throw std::runtime_error(why + " (or use --input FILE / --live)");
  }
}

Format outputFormat(const QueryArgs& a) {
  Format f;
  if (!parseFormat(a.format, f)) {
    throw CLI::ValidationError("--format", "must be auto, table, csv or json");
  }
  return f;
}

// The summary: on stdout after a table, on stderr after CSV/JSON (stdout stays machine-readable),
// alone on stdout with --summary.
void finish(const QueryArgs& a, Format f, const query::ScanTotals& t) {
  if (a.summary_only) {
    printSummary(std::cout, t, !a.raw, f);
  } else if (!a.quiet) {
    printSummary(f == Format::kTable ? std::cout : std::cerr, t, !a.raw, Format::kTable);
  }
  for (const auto& e : t.errors) {
    std::cerr << "net-collector: store: " << e << "\n";
  }
}

int cmdFlows(const Common& c, const QueryArgs& a, const std::string& order_text,
             const std::string& aggregate) {
  Format f = outputFormat(a);
  query::QueryOptions q;
  buildQuery(a, q);
  if (a.explain) {
    std::cout << q.filter.dump();
    return 0;
  }
  query::Order order;
  if (!query::parseOrder(order_text, order)) {
    throw CLI::ValidationError("--order",
                               "must be first, last, bytes, packets, duration, pps, bps or bpp");
  }
  Input in;
  openInput(c, a, in);
  if (!aggregate.empty()) {
    std::string why;
    auto keys = query::parseKeys(aggregate, 60'000'000'000ULL, &why);
    if (!keys) {
      throw CLI::ValidationError("--aggregate", why);
    }
    std::unique_ptr<query::Aggregator> agg;
    auto t = query::aggregateFlows(*in.source, q, *keys, agg);
    endProgress(q);
    if (!a.summary_only) {
      std::vector<size_t> idx;
      if (order == query::Order::kFirst || order == query::Order::kLast) {
        idx.resize(agg->size());
        std::iota(idx.begin(), idx.end(), 0);
        std::sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
          const auto cx = agg->counters(x);
          const auto cy = agg->counters(y);
          uint64_t vx = order == query::Order::kFirst ? cx.first_ns : cx.last_ns;
          uint64_t vy = order == query::Order::kFirst ? cy.first_ns : cy.last_ns;
          return vx != vy ? vx < vy : x < y;
        });
        if (a.limit != 0 && idx.size() > a.limit) {
          idx.resize(a.limit);
        }
      } else {
        query::Metric m = order == query::Order::kPackets ? query::Metric::kPackets
                          : order == query::Order::kPps   ? query::Metric::kPps
                          : order == query::Order::kBps   ? query::Metric::kBps
                          : order == query::Order::kBpp   ? query::Metric::kBpp
                                                          : query::Metric::kBytes;
        idx = agg->top(m, a.limit);
      }
      printGroups(std::cout, *agg, idx, f, t, true);
    }
    finish(a, f, t);
    noteLiveCap(a, in, 0);  // sums over the rings only
    return 0;
  }
  std::vector<FlowRecord> flows;
  auto t = query::listFlows(*in.source, q, order, a.limit, flows);
  endProgress(q);
  if (!a.summary_only) {
    printFlows(std::cout, flows, f);
  }
  finish(a, f, t);
  noteLiveCap(a, in, flows.size());
  return 0;
}

int cmdTop(const Common& c, const QueryArgs& a, std::string by, std::string order,
           const std::string& stat, const std::string& bucket) {
  Format f = outputFormat(a);
  constexpr const char* kOrders = "flows, packets, bytes, pps, bps, bpp";
  if (!stat.empty()) {  // nfdump -s KEY[/ORDER]; KEY may itself be srcnet/BITS
    size_t slash = stat.rfind('/');
    query::Metric m;
    std::string suffix = slash == std::string::npos ? "" : stat.substr(slash + 1);
    if (slash != std::string::npos && query::parseMetric(suffix, m)) {
      by = stat.substr(0, slash);
      order = suffix;
    } else if (slash != std::string::npos &&
               (suffix.empty() || !std::all_of(suffix.begin(), suffix.end(), ::isdigit))) {
      throw CLI::ValidationError(
          "--stat", fmt::format("unknown order '{}' in '{}' (KEY[/ORDER], ORDER one of {})", suffix,
                                stat, kOrders));
    } else {
      by = stat;
      order = "flows";
    }
  }
  query::Metric metric;
  if (!query::parseMetric(order, metric)) {
    throw CLI::ValidationError("--order",
                               fmt::format("unknown order '{}' (one of {})", order, kOrders));
  }
  std::string why;
  auto bucket_ms = units::parseDurationMs(bucket, &why);
  if (!bucket_ms || *bucket_ms == 0) {
    throw CLI::ValidationError("--bucket", why.empty() ? "must be > 0" : why);
  }
  auto keys = query::parseKeys(by, *bucket_ms * 1000000ULL, &why);
  if (!keys) {
    throw CLI::ValidationError(stat.empty() ? "--by" : "--stat", why);
  }
  query::QueryOptions q;
  buildQuery(a, q);
  if (a.explain) {
    std::cout << q.filter.dump();
    return 0;
  }
  Input in;
  openInput(c, a, in);
  std::unique_ptr<query::Aggregator> agg;
  auto t = query::aggregateFlows(*in.source, q, *keys, agg);
  endProgress(q);
  if (!a.summary_only) {
    printGroups(std::cout, *agg, agg->top(metric, a.limit), f, t, false);
  }
  finish(a, f, t);
  noteLiveCap(a, in, 0);  // ranks over the rings only
  return 0;
}

// Flows, packets and bytes per time bucket, oldest first; empty buckets inside the range print
// as zero rows.
int cmdSeries(const Common& c, const QueryArgs& a, const std::string& bucket) {
  Format f = outputFormat(a);
  std::string why;
  auto bucket_ms = units::parseDurationMs(bucket, &why);
  if (!bucket_ms || *bucket_ms == 0) {
    throw CLI::ValidationError("--bucket", why.empty() ? "must be > 0" : why);
  }
  uint64_t b = *bucket_ms * 1000000ULL;
  auto keys = query::parseKeys("time", b, &why);
  query::QueryOptions q;
  buildQuery(a, q);
  if (a.explain) {
    std::cout << q.filter.dump();
    return 0;
  }
  Input in;
  openInput(c, a, in);
  std::unique_ptr<query::Aggregator> agg;
  auto t = query::aggregateFlows(*in.source, q, *keys, agg);
  endProgress(q);
  if (!a.summary_only) {
    printSeries(std::cout, *agg, b, f);
  }
  finish(a, f, t);
  noteLiveCap(a, in, 0);
  return 0;
}

int cmdFilters(bool markdown) {
  if (markdown) {
    std::cout << query::filterKeywordsMarkdown();
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& k : query::filterKeywords()) {
    rows.push_back({k.syntax, k.meaning});
  }
  printTable(std::cout, {"filter", "matches"}, rows, {false, false});
  return 0;
}

std::string filterHelpFooter() {
  std::string out = "\nFilter (nfdump syntax, keywords case-insensitive; docs/filters.md):\n";
  for (const auto& k : query::filterKeywords()) {
    out += fmt::format("  {:<52} {}\n", k.syntax, k.meaning);
  }
  out +=
      "Examples:\n"
      "  net-collector flows --since -1h 'proto tcp and dst port 443 and bytes > 1M'\n"
      "  net-collector flows -A srcip,dstport -O bytes -n 20 'net 10.0.0.0/8'\n"
      "  net-collector top -s srcip/bytes --since -15m\n"
      "  net-collector series --bucket 5m --since -1d 'src as 64500'\n";
  return out;
}
int cmdFields(bool markdown) {
  if (markdown) {
    std::cout << "| name | description |\n|---|---|\n";
    for (const auto& f : fields()) {
      std::cout << "| `" << f.name << "` | " << f.doc << " |\n";
    }
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : fields()) {
    rows.push_back({std::string(f.name), std::string(f.doc)});
  }
  printTable(std::cout, {"field", "description"}, rows, {false, false});
  return 0;
}

int cmdCheckConfig(const std::string& path) {
  auto res = config::loadFile(path);
  for (const auto& e : res.errors) {
    std::cerr << e.toString() << "\n";
  }
  if (!res.ok()) {
    std::cerr << fmt::format("{}: {} error(s)\n", path, res.errors.size());
    return 1;
  }
  std::cout << path << ": OK\n";
  return 0;
}

int cmdInterfaces(const Common& c, bool json, const std::string& exporter) {
  auto ans = control::request(controlSocket(c), {{"cmd", "interfaces"}});
  if (!ans.value("ok", false)) {
    std::cerr << "net-collector: daemon error: " << ans.value("error", "?") << "\n";
    return 1;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& e : ans["result"]) {
    if (exporter.empty() || e.value("exporter", "") == exporter) {
      list.push_back(e);
    }
  }
  if (json) {
    for (const auto& e : list) {
      std::cout << e.dump() << "\n";
    }
    return 0;
  }
  if (list.empty()) {
    std::cout << "no interfaces known yet (names come with IPFIX/NetFlow v9 interfaceName and "
                 "sFlow counter samples)\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : list) {
    std::vector<std::string> row = {e.value("exporter", ""),
                                    std::to_string(e.value("if_index", 0u)), e.value("if_kind", ""),
                                    e.value("name", ""), e.value("name_source", "")};
    if (e.contains("counters") && e["counters"].contains("in_octets")) {
      const auto& k = e["counters"];
      uint64_t speed = k.value("speed_bps", uint64_t{0});
      row.push_back(speed != 0 ? units::formatCount(static_cast<double>(speed)) + "b/s" : "-");
      row.push_back(k.value("oper_up", false) ? "up" : "down");
      row.push_back(units::formatCount(k.value("in_bps", 0.0)) + "b/s");
      row.push_back(units::formatCount(k.value("out_bps", 0.0)) + "b/s");
      row.push_back(units::formatCount(k.value("in_pps", 0.0)));
      row.push_back(units::formatCount(k.value("out_pps", 0.0)));
      row.push_back(
          std::to_string(k.value("in_errors", uint64_t{0}) + k.value("out_errors", uint64_t{0})));
      row.push_back(std::to_string(k.value("in_discards", uint64_t{0}) +
                                   k.value("out_discards", uint64_t{0})));
      row.push_back(k.contains("of_port") ? std::to_string(k.value("of_port", 0u)) : "-");
    } else {
      row.insert(row.end(), {"-", "-", "-", "-", "-", "-", "-", "-", "-"});
    }
    row.push_back(std::to_string(e.value("counter_samples", uint64_t{0})));
    rows.push_back(std::move(row));
  }
  printTable(std::cout,
             {"exporter", "if_index", "numbering", "name", "name_from", "speed", "oper", "in_bps",
              "out_bps", "in_pps", "out_pps", "errors", "discards", "ofport", "samples"},
             rows,
             {false, true, false, false, false, true, false, true, true, true, true, true, true,
              true, true});
  return 0;
}

}  // namespace

int runCli(int argc, char** argv) {
  CLI::App app{
      "net-collector: query flows and control net-collectord.\n"
      "Run `net-collector <command> --help` for the options of each command."};
  app.set_version_flag("--version", fmt::format("net-collector {} ({})", kVersion, kGitRevision));
  app.require_subcommand(1);
  Common common;
  app.add_option("--socket", common.socket,
                 fmt::format("control socket of the daemon (default: control.socket of --config, "
                             "else {})",
                             kDefaultSocket));
  app.add_option("--config", common.config_path, "daemon config file to take the socket from");

  int rc = 0;

  auto* status = app.add_subcommand("status", "show the running daemon's status");
  bool status_json = false;
  status->add_flag("--json", status_json, "print the raw JSON answer");
  status->callback([&] { rc = cmdStatus(common, status_json); });

  auto* ifaces = app.add_subcommand(
      "interfaces",
      "exporters' interfaces known to the daemon: names and the latest sFlow counters");
  bool ifaces_json = false;
  std::string ifaces_exporter;
  ifaces->add_flag("--json", ifaces_json, "one JSON object per interface (JSON lines)");
  ifaces->add_option("--exporter", ifaces_exporter, "only this exporter (address)");
  ifaces->footer(
      "\nNames come from IPFIX/NetFlow v9 interfaceName (Open vSwitch names both ports of every "
      "flow; routers send interface tables as options data) and from sFlow's port-name counter "
      "record. Counters and rates are from sFlow counter samples (rates between the two newest "
      "samples).");
  ifaces->callback([&] { rc = cmdInterfaces(common, ifaces_json, ifaces_exporter); });

  auto* flows =
      app.add_subcommand("flows", "list flows (filter, time window, order, -A aggregation)");
  QueryArgs flows_args;
  std::string flows_order = "first";
  std::string flows_aggregate;
  addQueryOptions(flows, flows_args, true);
  flows->add_option("-n,--limit", flows_args.limit, "print at most N flows (0 = all)");
  flows
      ->add_option("-O,--order", flows_order,
                   "first | last (ascending), bytes | packets | duration | pps | bps | bpp "
                   "(descending)")
      ->capture_default_str();
  flows->add_option("-A,--aggregate", flows_aggregate,
                    "aggregate by keys, e.g. srcip,dstport or src_addr,proto or srcnet/24 (nfdump "
                    "-A names and field names)");
  flows->footer(filterHelpFooter());
  flows->callback([&] { rc = cmdFlows(common, flows_args, flows_order, flows_aggregate); });

  auto* top = app.add_subcommand("top", "rank flows aggregated by one or more keys (nfdump -s)");
  QueryArgs top_args;
  top_args.limit = 10;
  std::string top_by = "src_addr";
  std::string top_order = "bytes";
  std::string top_stat;
  std::string top_bucket = "1m";
  addQueryOptions(top, top_args, true);
  top->add_option("-b,--by", top_by,
                  "comma-separated keys: field names (`net-collector fields`) or nfdump names: "
                  "srcip dstip ip srcport dstport port proto srcas dstas as inif outif if "
                  "srcnet[/BITS] dstnet[/BITS] router next time ...")
      ->capture_default_str();
  top->add_option("-o,--order", top_order, "flows | packets | bytes | pps | bps | bpp")
      ->capture_default_str();
  top->add_option("-s,--stat", top_stat,
                  "nfdump-style shorthand KEY[/ORDER], e.g. srcip/bytes, dstport, ip/flows");
  top->add_option("--bucket", top_bucket, "bucket length of the 'time' key (e.g. 1m, 5m, 1h)")
      ->capture_default_str();
  top->add_option("-n,--limit", top_args.limit, "number of rows (0 = all)")->capture_default_str();
  top->footer(
      "\nRanks by packets/bytes multiplied by sampling_rate (use --raw for the counters as "
      "exported, as nfdump does).\nFilter keywords: `net-collector filters`.");
  top->callback([&] { rc = cmdTop(common, top_args, top_by, top_order, top_stat, top_bucket); });

  auto* series = app.add_subcommand("series", "flows, packets and bytes per time bucket");
  QueryArgs series_args;
  std::string series_bucket = "1m";
  addQueryOptions(series, series_args, true);
  series->add_option("--bucket", series_bucket, "bucket length (e.g. 10s, 1m, 5m, 1h)")
      ->capture_default_str();
  series->footer(
      "\nBuckets are aligned to multiples of --bucket since the UNIX epoch, by flow "
      "start.\nFilter keywords: `net-collector filters`.");
  series->callback([&] { rc = cmdSeries(common, series_args, series_bucket); });

  auto* filters_cmd =
      app.add_subcommand("filters", "list the filter keywords (nfdump syntax + field names)");
  bool filters_markdown = false;
  filters_cmd->add_flag("--markdown", filters_markdown,
                        "print a Markdown table (docs/filters.md contains it)");
  filters_cmd->callback([&] { rc = cmdFilters(filters_markdown); });

  auto* fields_cmd = app.add_subcommand("fields", "list the flow fields and their JSON names");
  bool markdown = false;
  fields_cmd->add_flag("--markdown", markdown, "print a Markdown table (docs/fields.md)");
  fields_cmd->callback([&] { rc = cmdFields(markdown); });

  auto* check = app.add_subcommand("check-config", "validate a daemon config file");
  std::string check_path;
  check->add_option("file", check_path, "YAML config file")->required();
  check->callback([&] { rc = cmdCheckConfig(check_path); });

  gen::addGenCommand(app);
  addProvisionCommand(
      app, common.config_path, [&common] { return controlSocket(common); }, rc);
  addCorrelationCommands(
      app, common.config_path, [&common] { return controlSocket(common); }, rc);
  addProfileCommands(
      app, [&common] { return controlSocket(common); }, rc);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2 (CLI11's own codes, 105..114,
    // would tell scripts nothing they can rely on).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "net-collector: " << e.what() << "\n";
    return 1;
  }
  return rc;
}

}  // namespace nc::cli
