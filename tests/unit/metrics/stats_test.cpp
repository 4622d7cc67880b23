// Counters declared once: every counter of ShardStats, ExporterStats and the HTTP server's stats
// is merged, exported to JSON under the names users read, and exposed to Prometheus; the receive
// path's families come out of a real Ingest.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

#include "collector/http/http.hpp"
#include "collector/ingest/ingest.hpp"
#include "collector/metrics/json.hpp"
#include "collector/metrics/metrics.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/metrics/exposition.hpp"

namespace nc::metrics {
namespace {

// Gives every counter (and every slot of a labelled one) a distinct value from `base`.
template <typename Stats>
Stats numbered(uint64_t base) {
  Stats s;
  uint64_t k = base;
  s.forEach([&](const MetricInfo&, auto& v) {
    using V = std::decay_t<decltype(v)>;
    if constexpr (IsCountsBy<V>::value) {
      for (auto& slot : v) {
        slot = ++k;
      }
    } else {
      v = static_cast<V>(++k);
    }
  });
  return s;
}

// Every counter of a.add(b) is the sum: nothing left out of the merge.
template <typename Stats>
void expectMergeOfEveryCounter() {
  Stats a = numbered<Stats>(1000);
  const Stats b = numbered<Stats>(5000);
  const Stats a0 = a;
  a.addCounters(b);
  std::vector<uint64_t> before, other, after;
  auto flatten = [](const Stats& s, std::vector<uint64_t>& out) {
    s.forEach([&](const MetricInfo&, const auto& v) {
      using V = std::decay_t<decltype(v)>;
      if constexpr (IsCountsBy<V>::value) {
        out.insert(out.end(), v.begin(), v.end());
      } else {
        out.push_back(v);
      }
    });
  };
  flatten(a0, before);
  flatten(b, other);
  flatten(a, after);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i], before[i] + other[i]) << "value " << i;
  }
}

// The descriptor table matches the members and follows the naming rules.
template <typename Stats>
void expectWellDescribed() {
  size_t visited = 0;
  Stats().forEach([&](const MetricInfo&, const auto&) { ++visited; });
  EXPECT_EQ(visited, Stats::kMetrics.size());
  std::set<std::string_view> keys;
  for (const MetricInfo& m : Stats::kMetrics) {
    EXPECT_TRUE(keys.insert(m.key).second) << "key twice: " << m.key;
    EXPECT_FALSE(m.help.empty()) << m.key;
    for (char c : m.key) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << m.key;
    }
  }
}

std::set<std::string> keysOf(const nlohmann::json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) {
    out.insert(k);
  }
  return out;
}

TEST(Stats, ShardStatsMergesEveryCounter) {
  expectWellDescribed<ingest::ShardStats>();
  expectMergeOfEveryCounter<ingest::ShardStats>();
  ingest::ShardStats a = numbered<ingest::ShardStats>(10);
  ingest::ShardStats b = numbered<ingest::ShardStats>(20);
  a.add(b);
  EXPECT_EQ(a.datagrams, 11u + 21u);
}

TEST(Stats, ExporterStatsMergesEveryCounterAndTheIdentity) {
  expectWellDescribed<decode::ExporterStats>();
  expectMergeOfEveryCounter<decode::ExporterStats>();
  decode::ExporterStats a = numbered<decode::ExporterStats>(0);
  a.first_seen_ns = 200;
  a.last_seen_ns = 300;
  a.last_proto = FlowProto::kIpfix;
  decode::ExporterStats b = numbered<decode::ExporterStats>(100);
  b.first_seen_ns = 100;
  b.last_seen_ns = 400;
  b.last_proto = FlowProto::kSflowV5;
  const uint64_t datagrams = a.datagrams + b.datagrams;
  a.add(b);
  EXPECT_EQ(a.datagrams, datagrams);
  EXPECT_EQ(a.first_seen_ns, 100u);
  EXPECT_EQ(a.last_seen_ns, 400u);
  EXPECT_EQ(a.last_proto, FlowProto::kSflowV5);
}

TEST(Stats, HttpServerStatsMergesEveryCounter) {
  expectWellDescribed<http::ServerStats>();
  expectMergeOfEveryCounter<http::ServerStats>();
}

// The status JSON's `ingest` object: the same keys as before the registry (plus the daemon's own
// interfaces and rates, added by the daemon), and the sources collector.allow refused.
TEST(Stats, ShardStatsJsonNamesUnchanged) {
  const ingest::ShardStats s = numbered<ingest::ShardStats>(0);
  const nlohmann::json j = toJson(s);
  EXPECT_EQ(keysOf(j), (std::set<std::string>{"datagrams", "gro_datagrams", "bytes", "records",
                                              "counter_samples", "decode_errors", "denied",
                                              "truncated", "kernel_drops", "denied_sources"}));
  EXPECT_EQ(j["denied_sources"], nlohmann::json::array());
  EXPECT_EQ(j["datagrams"], s.datagrams);
  EXPECT_EQ(j["gro_datagrams"], s.gro_datagrams);
  EXPECT_EQ(j["bytes"], s.bytes);
  EXPECT_EQ(j["records"], s.records);
  EXPECT_EQ(j["counter_samples"], s.counter_samples);
  EXPECT_EQ(j["decode_errors"], s.decode_errors);
  EXPECT_EQ(j["denied"], s.denied);
  EXPECT_EQ(j["truncated"], s.truncated);
  EXPECT_EQ(j["kernel_drops"], s.kernel_drops);
}

// The `exporters` answer: every key it had, with the same meaning (records = flow_records, errors
// = non-zero reasons by name); the template counters are new.
TEST(Stats, ExporterStatsJsonNamesUnchanged) {
  decode::ExporterStats s = numbered<decode::ExporterStats>(0);
  s.errors = {};
  s.errors[static_cast<size_t>(decode::DecodeError::kTruncated)] = 3;
  s.errors[static_cast<size_t>(decode::DecodeError::kBadSample)] = 4;
  const nlohmann::json j = toJson(s);
  EXPECT_EQ(keysOf(j), (std::set<std::string>{"datagrams", "bytes", "records", "options_records",
                                              "counter_samples", "templates_known",
                                              "lost_datagrams", "lost_records", "sequence_resets",
                                              "sampler_drops", "errors", "templates_received",
                                              "templates_withdrawn", "templates_expired"}));
  EXPECT_EQ(j["records"], s.flow_records);
  EXPECT_EQ(j["templates_known"], s.templates_known);
  EXPECT_EQ(j["sampler_drops"], s.sampler_drops);
  EXPECT_EQ(j["errors"], (nlohmann::json{{"truncated", 3}, {"bad_sample", 4}}));
  EXPECT_EQ(toJson(decode::ExporterStats())["errors"], nlohmann::json::object());
  EXPECT_EQ(s.errorTotal(), 7u);

  // The CLI reads them back through the same table.
  uint64_t columns = 0;
  for (const auto& m : decode::ExporterStats::kMetrics) {
    if (m.key == "errors") {
      EXPECT_EQ(counterValue(j, m), 7u);
    }
    columns += m.column.empty() ? 0 : 1;
  }
  EXPECT_EQ(columns, 7u) << "datagrams records lost_dgrams lost_records agent_drops errors "
                            "templates";
  EXPECT_EQ(counterValue(nlohmann::json{{"datagrams", -1}}, decode::ExporterStats::kMetrics[0]),
            0u);
  EXPECT_EQ(counterValue(nlohmann::json("x"), decode::ExporterStats::kMetrics[0]), 0u);
}

TEST(Stats, PrometheusFamiliesFromTheList) {
  decode::ExporterStats s = numbered<decode::ExporterStats>(0);
  MetricWriter w;
  writeStats(w, "exporter", s, {{"exporter", "192.0.2.1"}, {"protocol", "ipfix"}});
  writeStats(w, "ingest", numbered<ingest::ShardStats>(100));
  auto e = test::parseExposition(w.text());
  ASSERT_TRUE(e.problems.empty()) << w.text();
  const std::map<std::string, std::string> l = {{"exporter", "192.0.2.1"}, {"protocol", "ipfix"}};
  EXPECT_EQ(e.value("net_collector_exporter_datagrams_total", l), s.datagrams);
  EXPECT_EQ(e.value("net_collector_exporter_bytes_total", l), s.bytes);
  EXPECT_EQ(e.value("net_collector_exporter_records_total", l), s.flow_records);
  EXPECT_EQ(e.value("net_collector_exporter_templates_known", l), s.templates_known);
  EXPECT_EQ(e.types["net_collector_exporter_templates_known"], "gauge");
  auto with = [&](std::string reason) {
    auto m = l;
    m["reason"] = reason;
    return m;
  };
  EXPECT_EQ(e.value("net_collector_exporter_errors_total", with("truncated")),
            s.errors[static_cast<size_t>(decode::DecodeError::kTruncated)]);
  EXPECT_TRUE(std::isnan(e.value("net_collector_exporter_errors_total", with("none"))))
      << "kNone is not a reason";
  size_t reasons = 0;
  for (const auto& x : e.samples) {
    reasons += x.name == "net_collector_exporter_errors_total" ? 1 : 0;
  }
  EXPECT_EQ(reasons, decode::kDecodeErrorCount - 1);
  EXPECT_EQ(e.value("net_collector_ingest_kernel_drops_total"),
            numbered<ingest::ShardStats>(100).kernel_drops);
  EXPECT_EQ(
      e.helps["net_collector_ingest_kernel_drops_total"],
      "Datagrams the kernel dropped before they were read (SO_RXQ_OVFL: receive buffer full)");
}

// One NetFlow v5 datagram (header + one record) from 127.0.0.1.
std::vector<uint8_t> netflowV5() {
  std::vector<uint8_t> d(24 + 48, 0);
  d[1] = 5;  // version
  d[3] = 1;  // count
  uint8_t* r = d.data() + 24;
  r[0] = 10;
  r[3] = 1;  // src 10.0.0.1
  r[4] = 10;
  r[7] = 2;    // dst 10.0.0.2
  r[19] = 1;   // dPkts
  r[23] = 64;  // dOctets
  r[38] = 6;   // proto tcp
  return d;
}

class NullSink : public decode::RecordSink {
 public:
  void onRecords(std::span<const FlowRecord>) override {}
};

TEST(Stats, IngestWriteMetricsFromARealReceivePath) {
  ingest::IngestOptions o;
  o.listen = {{"127.0.0.1", 0}};
  ingest::Ingest in(o, [](uint32_t) { return std::make_unique<NullSink>(); });
  in.start();
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(in.boundPorts()[0]);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto d = netflowV5();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(d.size()));
  }
  ::close(fd);
  for (int i = 0; i < 500 && in.totals().datagrams < 3; ++i) {  // safety net: 10 s
    in.refreshStats();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(in.totals().datagrams, 3u);
  MetricWriter w;
  ingest::writeMetrics(in, w);
  in.stop();
  auto e = test::parseExposition(w.text());
  ASSERT_TRUE(e.problems.empty()) << w.text();
  EXPECT_EQ(e.value("net_collector_ingest_datagrams_total"), 3);
  EXPECT_EQ(e.value("net_collector_ingest_records_total"), 3);
  EXPECT_EQ(e.value("net_collector_ingest_bytes_total"), 3.0 * d.size());
  EXPECT_EQ(e.value("net_collector_exporters"), 1);
  const std::map<std::string, std::string> l = {{"exporter", "127.0.0.1"},
                                                {"protocol", "netflow5"}};
  EXPECT_EQ(e.value("net_collector_exporter_datagrams_total", l), 3);
  EXPECT_EQ(e.value("net_collector_exporter_records_total", l), 3);
  EXPECT_EQ(e.value("net_collector_exporter_info", {{"exporter", "127.0.0.1"}, {"flavor", "auto"}}),
            1);
  EXPECT_GT(e.value("net_collector_exporter_last_seen_timestamp_seconds", l), 1.7e9);
  if (!test::findTool("promtool").empty()) {
    auto r = test::run({"promtool", "check", "metrics"}, w.text(), 60);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << w.text();
  }
}

}  // namespace
}  // namespace nc::metrics
