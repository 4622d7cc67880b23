// A real Prometheus (Debian's `prometheus`) scrapes nc_http's /metrics, served in-process from a
// MetricsRegistry on 127.0.0.1 port 0, every second; its query API must then return our counters
// with the values we set, including a change made while it runs.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cctype>
#include <chrono>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "collector/decode/decoder.hpp"
#include "collector/http/http.hpp"
#include "collector/ingest/ingest.hpp"
#include "collector/metrics/metrics.hpp"
#include "common/version.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/http/test_client.hpp"

extern char** environ;

namespace nc {
namespace {

// Prometheus in the background, stopped with SIGTERM.
class Prometheus {
 public:
  Prometheus(const std::filesystem::path& dir, uint16_t port, uint16_t target) : port_(port) {
    const auto config = dir / "prometheus.yml";
    std::ofstream(config) << fmt::format(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n"
        "scrape_configs:\n"
        "  - job_name: net_collector\n"
        "    static_configs: [{{targets: [\"127.0.0.1:{}\"]}}]\n",
        target);
    auto check = test::run({"promtool", "check", "config", config.string()});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    log_ = dir / "prometheus.log";
    std::vector<std::string> args = {
        test::findTool("prometheus"), "--config.file=" + config.string(),
        "--storage.tsdb.path=" + (dir / "data").string(),
        fmt::format("--web.listen-address=127.0.0.1:{}", port), "--log.level=warn"};
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Prometheus() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  std::string log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // GET `target` from Prometheus' HTTP API as JSON (null when it does not answer).
  nlohmann::json api(const std::string& target) const {
    test::Client c(port_);
    if (!c.connected() ||
        !c.send(fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                            target))) {
      return nullptr;
    }
    auto a = c.read();
    if (!a) {
      return nullptr;
    }
    return nlohmann::json::parse(a->body(), nullptr, false);
  }

  // The value of an instant query's only series, or "" while it has none.
  std::string query(const std::string& promql) const {
    auto j = api("/api/v1/query?query=" + encode(promql));
    if (!j.is_object() || j.value("status", "") != "success") {
      return "";
    }
    const auto& r = j["data"]["result"];
    if (!r.is_array() || r.size() != 1) {
      return "";
    }
    return r[0]["value"][1].get<std::string>();
  }

 private:
  static std::string encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
        out += static_cast<char>(c);
      } else {
        out += fmt::format("%{:02X}", c);
      }
    }
    return out;
  }

  uint16_t port_;
  pid_t pid_ = -1;
  std::filesystem::path log_;
};

// Polls `promql` until it returns `want` (safety net: 90 s; Prometheus takes ~5 s to start
// scraping). Returns the last value seen.
std::string waitValue(const Prometheus& p, const std::string& promql, const std::string& want) {
  std::string got;
  for (int i = 0; i < 450; ++i) {
    got = p.query(promql);
    if (got == want || !p.running()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return got;
}

TEST(PrometheusScrape, CountersArriveWithTheirValues) {
  NC_REQUIRE_TOOL("prometheus");
  NC_REQUIRE_TOOL("promtool");
  test::TempDir dir("prom");

  std::atomic<uint64_t> datagrams{12345};
  metrics::MetricsRegistry registry;
  registry.add("ingest", [&](metrics::MetricWriter& w) {
    ingest::ShardStats t;
    t.datagrams = datagrams.load();
    t.kernel_drops = 3;
    t.bytes = 1'500'000;
    metrics::writeStats(w, "ingest", t);
    decode::ExporterStats e;
    e.flow_records = 4242;
    e.errors[static_cast<size_t>(decode::DecodeError::kTruncated)] = 7;
    e.templates_known = 12;
    metrics::writeStats(w, "exporter", e, {{"exporter", "192.0.2.1"}, {"protocol", "ipfix"}});
  });

  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  http::Server server(io, {});
  http::serveMetrics(server, registry);
  registry.add("http", [&](metrics::MetricWriter& w) { server.writeMetrics(w); });
  server.start();
  std::thread thread([&] { io.run(); });

  {
    Prometheus prom(dir.path(), test::freeTcpPort(), server.port());
    ASSERT_TRUE(prom.running()) << prom.log();
    EXPECT_EQ(waitValue(prom, "net_collector_ingest_datagrams_total", "12345"), "12345")
        << prom.log() << prom.api("/api/v1/targets").dump(2);
    EXPECT_EQ(prom.query("up{job=\"net_collector\"}"), "1");
    EXPECT_EQ(prom.query("net_collector_ingest_kernel_drops_total"), "3");
    EXPECT_EQ(prom.query("net_collector_ingest_bytes_total"), "1500000");
    EXPECT_EQ(prom.query("net_collector_exporter_records_total{exporter=\"192.0.2.1\","
                         "protocol=\"ipfix\"}"),
              "4242");
    EXPECT_EQ(prom.query("net_collector_exporter_errors_total{reason=\"truncated\"}"), "7");
    EXPECT_EQ(prom.query("net_collector_exporter_errors_total{reason=\"bad_set\"}"), "0");
    EXPECT_EQ(prom.query("net_collector_exporter_templates_known"), "12");
    EXPECT_EQ(prom.query(fmt::format("net_collector_build_info{{version=\"{}\"}}", kVersion)), "1");
    EXPECT_EQ(prom.query("count(net_collector_http_requests_total > 0)"), "1");
    // The scrape target is healthy: no parse error on our exposition.
    auto targets = prom.api("/api/v1/targets");
    ASSERT_TRUE(targets.is_object()) << prom.log();
    const auto& active = targets["data"]["activeTargets"];
    ASSERT_EQ(active.size(), 1u) << targets.dump(2);
    EXPECT_EQ(active[0].value("health", ""), "up") << targets.dump(2);
    EXPECT_EQ(active[0].value("lastError", "?"), "") << targets.dump(2);

    // A counter that moves is seen moving.
    datagrams = 67890;
    EXPECT_EQ(waitValue(prom, "net_collector_ingest_datagrams_total", "67890"), "67890")
        << prom.log();
  }

  std::promise<void> stopped;
  boost::asio::post(io, [&] {
    server.stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  io.stop();
  thread.join();
}

// The daemon itself: http.enabled serves /metrics with its ingest, store and daemon counters,
// and a real Prometheus scraping it reads the same figures `status --json` shows.
TEST(PrometheusScrape, DaemonCountersMatchStatus) {
  NC_REQUIRE_TOOL("prometheus");
  test::TempDir dir("prom-daemon");
  const uint16_t http_port = test::freeTcpPort();
  test::DaemonProcess d(
      fmt::format("http: {{enabled: true, listen: \"127.0.0.1:{}\"}}\n", http_port));
  const std::string port = std::to_string(d.port());
  auto g = test::run({(test::binDir() / "net-collector").string(), "gen", "-f", "ipfix", "-t",
                      "127.0.0.1:" + port, "--records", "3000", "--flows", "300", "--rate", "3000",
                      "-q"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  ASSERT_EQ(d.waitRecords(3000), 3000u) << d.log();
  const nlohmann::json st = d.status();
  ASSERT_TRUE(st.contains("http")) << st.dump(2);
  EXPECT_EQ(st["http"].value("port", 0), http_port);
  const std::string records = std::to_string(st["ingest"]["records"].get<uint64_t>());
  const std::string datagrams = std::to_string(st["ingest"]["datagrams"].get<uint64_t>());
  {
    Prometheus prom(dir.path(), test::freeTcpPort(), http_port);
    ASSERT_TRUE(prom.running()) << prom.log();
    EXPECT_EQ(waitValue(prom, "net_collector_ingest_records_total", records), records)
        << prom.log() << prom.api("/api/v1/targets").dump(2) << d.log();
    EXPECT_EQ(prom.query("net_collector_ingest_datagrams_total"), datagrams);
    EXPECT_EQ(prom.query("sum(net_collector_exporter_records_total)"), records);
    EXPECT_EQ(prom.query(fmt::format("net_collector_build_info{{version=\"{}\"}}", kVersion)), "1");
    EXPECT_EQ(prom.query("count(net_collector_uptime_seconds > 0)"), "1");
    EXPECT_EQ(prom.query("count(net_collector_store_segments >= 0)"), "1");
    auto targets = prom.api("/api/v1/targets");
    ASSERT_TRUE(targets.is_object()) << prom.log();
    const auto& active = targets["data"]["activeTargets"];
    ASSERT_EQ(active.size(), 1u) << targets.dump(2);
    EXPECT_EQ(active[0].value("health", ""), "up") << targets.dump(2);
    EXPECT_EQ(active[0].value("lastError", "?"), "") << targets.dump(2);
  }
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace nc
