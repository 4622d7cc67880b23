// Profiles end to end against a real net-collectord: flows sent as IPFIX (sampled 1 in 10) land
// in the channels' RRD files with exactly the expected per-step values, read back by Debian's
// `rrdtool fetch`; a channel back-filled from the store equals the live one; profiles managed
// with the CLI survive a restart and show in --dump-config; `graph` writes an image.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "collector/gen/gen.hpp"
#include "collector/record/fields.hpp"
#include "common/clock.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/support.hpp"

namespace nc {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kStepS = 5;
constexpr uint32_t kSampling = 10;

std::string cli() {
  return (test::binDir() / "net-collector").string();
}

test::RunResult profileCmd(const test::DaemonProcess& d, std::vector<std::string> args) {
  std::vector<std::string> argv = {cli(), "--socket", d.socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv);
}

// One kind of flow sent in a step.
struct Kind {
  uint8_t proto;
  uint16_t dst_port;
  uint64_t packets;
  uint64_t bytes;
  int count;
};

// Sends `kinds` as IPFIX from 127.0.0.1 with every flow's first = last = `t_ns`, sampling 1:10
// announced in every datagram (options template and record before the data).
void sendFlows(uint16_t port, gen::ExportState& st, const std::vector<Kind>& kinds, uint64_t t_ns) {
  std::vector<FlowRecord> recs;
  uint32_t host = 1;
  for (const Kind& k : kinds) {
    for (int i = 0; i < k.count; ++i) {
      FlowRecord r;
      r.first_ns = t_ns;
      r.last_ns = t_ns;
      r.src_addr = IpAddr::fromV4(0x0a000000 | host);
      r.dst_addr = IpAddr::fromV4(0xc0a80000 | host);
      ++host;
      r.proto = k.proto;
      r.src_port = k.proto == 6 || k.proto == 17 ? 40000 : 0;
      r.dst_port = k.dst_port;
      r.packets = k.packets;
      r.bytes = k.bytes;
      recs.push_back(r);
    }
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::span<const FlowRecord> rest(recs);
  std::vector<uint8_t> dgram;
  while (!rest.empty()) {
    st.export_ns = unixNowNs();
    const size_t n = gen::encodeIpfix(rest, st, dgram);
    ASSERT_GT(n, 0u);
    ASSERT_EQ(
        ::sendto(fd, dgram.data(), dgram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
        static_cast<ssize_t>(dgram.size()));
    rest = rest.subspan(n);
  }
  ::close(fd);
}

// The 15 data sources of one step, as the profiler must write them (per second).
std::map<std::string, double> expected(const std::vector<Kind>& kinds) {
  std::map<std::string, double> v;
  for (const char* m : {"flows", "packets", "traffic"}) {
    for (const char* c : {"", "_tcp", "_udp", "_icmp", "_other"}) {
      v[std::string(m) + c] = 0;
    }
  }
  for (const Kind& k : kinds) {
    const std::string cls = k.proto == 6    ? "_tcp"
                            : k.proto == 17 ? "_udp"
                            : k.proto == 1  ? "_icmp"
                                            : "_other";
    const double n = static_cast<double>(k.count) * kSampling / kStepS;
    for (const std::string& c : {std::string(), cls}) {
      v["flows" + c] += n;
      v["packets" + c] += n * static_cast<double>(k.packets);
      v["traffic" + c] += n * static_cast<double>(k.bytes);  // bytes per second
    }
  }
  return v;
}

std::vector<Kind> only(const std::vector<Kind>& kinds, bool (*keep)(const Kind&)) {
  std::vector<Kind> out;
  for (const Kind& k : kinds) {
    if (keep(k)) {
      out.push_back(k);
    }
  }
  return out;
}

// `rrdtool fetch FILE AVERAGE -r STEP -s START -e END`: the row of the step ending at `t_end_s`,
// by data-source name. Empty when the row is missing.
std::map<std::string, double> fetchRow(const std::string& file, uint64_t t_end_s) {
  auto r = test::run({"rrdtool", "fetch", file, "AVERAGE", "-r", std::to_string(kStepS), "-s",
                      std::to_string(t_end_s - 2 * kStepS), "-e", std::to_string(t_end_s)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  std::vector<std::string> names;
  std::map<std::string, double> row;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    if (names.empty()) {
      std::istringstream h(line);
      std::string n;
      while (h >> n) {
        names.push_back(n);
      }
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos || std::stoull(line.substr(0, colon)) != t_end_s) {
      continue;
    }
    std::istringstream vals(line.substr(colon + 1));
    for (const auto& n : names) {
      std::string v;
      vals >> v;
      row[n] = v == "-nan" || v == "nan" ? NAN : std::stod(v);
    }
  }
  return row;
}

void expectRow(const std::map<std::string, double>& got, const std::map<std::string, double>& want,
               const std::string& what) {
  ASSERT_EQ(got.size(), 15u) << what << ": no row";
  for (const auto& [ds, v] : want) {
    ASSERT_TRUE(got.count(ds)) << what << ": " << ds;
    EXPECT_NEAR(got.at(ds), v, 1e-6 * std::max(1.0, v)) << what << ": " << ds;
  }
}

// Waits until now is 1..2 s into a step that starts after `after_s`; returns its start (UNIX s).
uint64_t waitEarlyInStep(uint64_t after_s = 0) {
  for (;;) {
    const uint64_t now = unixNowNs();
    const uint64_t into = now % (kStepS * kSec);
    const uint64_t start = now / kSec / kStepS * kStepS;
    if (into >= kSec && into < 2 * kSec && start > after_s) {
      return start;
    }
    const uint64_t wait = into < kSec ? kSec - into : kStepS * kSec - into + kSec;
    std::this_thread::sleep_for(std::chrono::nanoseconds(wait + 50'000'000));
  }
}

// Polls `profile list NAME --json` until the profile was updated up to `until_s` and is OK.
bool waitUpdated(const test::DaemonProcess& d, const std::string& name, uint64_t until_s,
                 std::string* last) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = profileCmd(d, {"profile", "list", name, "--json"});
    *last = r.out + r.err;
    if (r.exit_code == 0) {
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      if (j.is_array() && j.size() == 1 && j[0].value("status", "") == "OK") {
        uint64_t upd = 0;
        if (parseTime(j[0].value("updated", ""), upd) && upd / kSec >= until_s) {
          return true;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return false;
}

TEST(Profiles, ChannelArithmeticAndBackfillMatchRrdtoolFetch) {
  NC_REQUIRE_TOOL("rrdtool");
  test::TempDir pdir("profiles");
  const uint16_t http_port = test::freeTcpPort();
  const std::string yaml = fmt::format(
      "http: {{enabled: true, listen: \"127.0.0.1:{}\"}}\n"
      "profiles:\n"
      "  path: {}\n"
      "  step: {}s\n"
      "  delay: 2s\n"
      "  max_span: {}s\n"
      "  declared:\n"
      "    - name: arith\n"
      "      channels:\n"
      "        - {{name: all, filter: any}}\n"
      "        - {{name: web, filter: \"proto tcp and dst port 443\"}}\n"
      "        - {{name: dns, filter: \"proto udp and port 53\", sign: \"-\"}}\n"
      "        - {{name: ping, filter: \"proto icmp\"}}\n"
      "        - {{name: gre, filter: \"proto 47\"}}\n"
      "        - {{name: none, filter: \"port 9\"}}\n",
      http_port, pdir.path().string(), kStepS, kStepS);
  test::DaemonProcess d(yaml);
  const uint16_t port = d.port();
  const std::vector<Kind> a = {{6, 443, 10, 1000, 3},
                               {17, 53, 1, 100, 2},
                               {1, 0, 4, 400, 1},
                               {47, 0, 2, 300, 1},
                               {6, 80, 5, 5000, 2}};
  const std::vector<Kind> b = {{6, 443, 7, 700, 5}, {17, 53, 1, 120, 1}, {47, 0, 3, 333, 2}};
  gen::ExportState st;
  st.sampling = kSampling;
  st.template_interval = 1;
  st.boot_ns = unixNowNs() - 100 * kSec;

  const uint64_t s1 = waitEarlyInStep();
  sendFlows(port, st, a, s1 * kSec + 500'000'000);
  const uint64_t s2 = waitEarlyInStep(s1);
  ASSERT_EQ(s2, s1 + kStepS) << "the machine stalled for a whole step";
  sendFlows(port, st, b, s2 * kSec + 700'000'000);
  const int total = 3 + 2 + 1 + 1 + 2 + 5 + 1 + 2;
  ASSERT_EQ(d.waitRecords(total), static_cast<uint64_t>(total)) << d.log();
  std::string last;
  ASSERT_TRUE(waitUpdated(d, "arith", s2 + kStepS, &last)) << last << d.log();

  const auto dir = pdir.path() / "arith";
  auto web = [](const Kind& k) { return k.proto == 6 && k.dst_port == 443; };
  auto dns = [](const Kind& k) { return k.proto == 17 && k.dst_port == 53; };
  auto ping = [](const Kind& k) { return k.proto == 1; };
  auto gre = [](const Kind& k) { return k.proto == 47; };
  auto none = [](const Kind&) { return false; };
  const std::vector<std::pair<std::string, bool (*)(const Kind&)>> channels = {
      {"all", [](const Kind&) { return true; }},
      {"web", web},
      {"dns", dns},
      {"ping", ping},
      {"gre", gre},
      {"none", none}};
  for (const auto& [name, keep] : channels) {
    const std::string file = (dir / (name + ".rrd")).string();
    expectRow(fetchRow(file, s1 + kStepS), expected(only(a, keep)), name + " step 1");
    expectRow(fetchRow(file, s2 + kStepS), expected(only(b, keep)), name + " step 2");
  }

  // Back-fill: a runtime profile starting before the flows, built from the store, must hold the
  // same values as the live channels.
  auto add = profileCmd(d, {"profile", "add", "bf", "--start", fmt::format("@{}", s1 - kStepS)});
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
  auto ch = profileCmd(
      d, {"profile", "channel", "add", "bf/web", "--filter", "proto tcp and dst port 443"});
  ASSERT_EQ(ch.exit_code, 0) << ch.out << ch.err;
  ch = profileCmd(d, {"profile", "channel", "add", "bf/all", "--filter", "any"});
  ASSERT_EQ(ch.exit_code, 0) << ch.out << ch.err;
  auto commit = profileCmd(d, {"profile", "commit", "bf"});
  ASSERT_EQ(commit.exit_code, 0) << commit.out << commit.err;
  ASSERT_TRUE(waitUpdated(d, "bf", s2 + kStepS, &last)) << last << d.log();
  for (const std::string name : {"web", "all"}) {
    const std::string live = (dir / (name + ".rrd")).string();
    const std::string filled = (pdir.path() / "bf" / (name + ".rrd")).string();
    for (uint64_t t : {s1 + kStepS, s2 + kStepS}) {
      expectRow(fetchRow(filled, t), fetchRow(live, t), "back-filled " + name);
    }
  }

  // Prometheus counters per channel: the same counts, in total (sampling applied).
  const std::string metrics = test::httpGet(http_port, "/metrics");
  EXPECT_NE(metrics.find("net_collector_profile_channel_flows_total{profile=\"arith\","
                         "channel=\"web\"} 80\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("net_collector_profile_channel_bytes_total{profile=\"arith\","
                         "channel=\"web\"} 65000\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("net_collector_profile_channel_packets_total{profile=\"arith\","
                         "channel=\"none\"} 0\n"),
            std::string::npos)
      << metrics;
  auto st_json = d.status();
  EXPECT_TRUE(st_json["profiles"].value("enabled", false)) << st_json.dump(2);
  EXPECT_EQ(st_json["profiles"].value("write_errors", 1u), 0u) << st_json.dump(2);

  auto g = profileCmd(d, {"graph", "arith", "--since", fmt::format("@{}", s1 - kStepS), "-o",
                          (pdir.path() / "arith.png").string()});
  ASSERT_EQ(g.exit_code, 0) << g.out << g.err;
  std::ifstream png(pdir.path() / "arith.png", std::ios::binary);
  std::string magic(8, '\0');
  png.read(magic.data(), 8);
  EXPECT_EQ(magic, std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(d.stop(), 0) << d.log();
}

TEST(Profiles, CliProfilesSurviveARestartAndShowInDumpConfig) {
  test::TempDir pdir("profiles-cli");
  const std::string yaml = fmt::format("profiles: {{path: {}}}\n", pdir.path().string());
  {
    test::DaemonProcess d(yaml);
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"profile", "add", "zone1", "--group", "dc1", "--expire", "30d"},
             {"profile", "channel", "add", "zone1/ssh", "--filter", "port 22", "--colour",
              "#48C6FF"},
             {"profile", "channel", "add", "zone1/dns", "--filter", "port 53", "--sign", "-"},
             {"profile", "commit", "zone1"},
             {"profile", "add", "draft"}}) {
      auto r = profileCmd(d, args);
      ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    }
    // A bad filter is refused with its position, and nothing is staged.
    auto bad = profileCmd(d, {"profile", "channel", "add", "zone1/x", "--filter", "port 22 and"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.err.find("filter:1:"), std::string::npos) << bad.err;
    EXPECT_NE(bad.err.find("^"), std::string::npos) << bad.err;
    EXPECT_EQ(d.stop(), 0) << d.log();
  }
  test::DaemonProcess d(yaml);
  auto r = profileCmd(d, {"profile", "list", "zone1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u) << r.out;
  EXPECT_EQ(j[0].value("group", ""), "dc1");
  EXPECT_EQ(j[0].value("status", ""), "OK") << r.out;
  EXPECT_EQ(j[0].value("expire_ms", uint64_t{0}), 30ull * 86400 * 1000);
  ASSERT_EQ(j[0]["channels"].size(), 2u) << r.out;
  std::map<std::string, nlohmann::json> chans;
  for (const auto& c : j[0]["channels"]) {
    chans[c.value("name", "")] = c;
  }
  EXPECT_EQ(chans["ssh"].value("filter", ""), "port 22");
  EXPECT_EQ(chans["ssh"].value("colour", ""), "#48C6FF");
  EXPECT_EQ(chans["dns"].value("sign", ""), "-");
  // The never-committed profile survives as "new".
  auto draft = profileCmd(d, {"profile", "list", "draft", "--json"});
  ASSERT_EQ(draft.exit_code, 0) << draft.err;
  EXPECT_EQ(nlohmann::json::parse(draft.out).at(0).value("status", ""), "new") << draft.out;
  // The text form shows what `nfsen -l` did.
  auto text = profileCmd(d, {"profile", "list", "zone1"});
  for (const char* key : {"name", "group", "created", "start", "expire", "size", "maxsize", "type",
                          "status", "#48C6FF", "port 53"}) {
    EXPECT_NE(text.out.find(key), std::string::npos) << key << "\n" << text.out;
  }
  // --dump-config shows committed runtime profiles (as a comment: they live in profiles.json).
  const auto cfg = d.dir() / "dump.yaml";
  std::ofstream(cfg) << yaml;
  auto dump = test::run(
      {(test::binDir() / "net-collectord").string(), "-c", cfg.string(), "--dump-config"});
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_NE(dump.out.find("#   - name: zone1"), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("port 22"), std::string::npos) << dump.out;
  EXPECT_EQ(dump.out.find("name: draft"), std::string::npos) << dump.out;
  // Deleting removes it for good.
  auto del = profileCmd(d, {"profile", "delete", "zone1"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace nc
