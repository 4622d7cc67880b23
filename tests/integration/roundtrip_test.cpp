// Round trip through the real daemon and its store, for each export format: what
// `net-collector gen` sent equals what `net-collector flows --store` returns — records, packet and
// byte sums (raw, and scaled by the advertised sampling rate).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "tests/support/daemon.hpp"
#include "tests/support/support.hpp"

namespace nc::test {
namespace {

std::string cli() {
  return (binDir() / "net-collector").string();
}

nlohmann::json summary(const std::string& store, bool raw) {
  std::vector<std::string> argv = {cli(),       "flows",    "--store", store,
                                   "--summary", "--format", "json"};
  if (raw) {
    argv.push_back("--raw");
  }
  auto r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

struct Case {
  const char* format;
  uint32_t sampling;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.format << " 1:" << c.sampling;
}

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, GenThroughDaemonAndStoreEqualsWhatWasSent) {
  const Case& c = GetParam();
  DaemonProcess d("store: {path: $DIR/flows, rotate: 1s, queue: 32MiB}\n", {},
                  "collector: {listen: [\"127.0.0.1:0\"]}");
  auto g =
      run({cli(), "gen", "-f", c.format, "-t", "127.0.0.1:" + std::to_string(d.port()), "--records",
           "20000", "--rate", "5000", "--sampling", std::to_string(c.sampling), "--json", "-q"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  auto sent = nlohmann::json::parse(g.out);
  uint64_t records = sent["records"];
  std::string store = (d.dir() / "flows").string();
  nlohmann::json got;
  for (int i = 0; i < 100; ++i) {  // rows reach disk within about a second
    got = summary(store, true);
    if (got.value("flows", uint64_t{0}) >= records) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(got.value("flows", uint64_t{0}), records) << got.dump() << "\n" << d.log();
  EXPECT_EQ(got.value("packets", uint64_t{0}), sent["flow_packets"].get<uint64_t>());
  EXPECT_EQ(got.value("bytes", uint64_t{0}), sent["flow_bytes"].get<uint64_t>());
  auto scaled = summary(store, false);
  EXPECT_EQ(scaled.value("bytes", uint64_t{0}), sent["flow_bytes"].get<uint64_t>() * c.sampling);
  auto st = d.status();
  EXPECT_EQ(st["ingest"]["decode_errors"], 0);
  EXPECT_EQ(st["store"]["drops"], 0);
  EXPECT_EQ(st["store"]["queue_limit_bytes"], 32u << 20);  // store.queue reaches the writer
  // And after a clean stop (segment sealed), the same answer.
  EXPECT_EQ(d.stop(), 0) << d.log();
  EXPECT_EQ(summary(store, true).value("flows", uint64_t{0}), records);
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip,
                         ::testing::Values(Case{"v5", 1}, Case{"v9", 1}, Case{"ipfix", 1},
                                           Case{"sflow", 1}, Case{"v5", 16}, Case{"v9", 8},
                                           Case{"ipfix", 4}, Case{"sflow", 64}),
                         [](const auto& info) {
                           return std::string(info.param.format) + "_sampling" +
                                  std::to_string(info.param.sampling);
                         });

}  // namespace
}  // namespace nc::test
