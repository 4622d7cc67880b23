// End to end, with no ovs-vsctl anywhere: the daemon is told in YAML which bridges export what,
// provisions the real Open vSwitch over OVSDB itself, and traffic between two namespace hosts
// reaches its collector by NetFlow v5, sFlow and IPFIX. Then the CLI's provision plan/remove
// are checked against the same OVSDB: exports stay when the daemon stops, and `remove` takes
// away exactly what the daemon owns.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "tests/harness/ovs_harness.hpp"
#include "tests/integration/ovs_traffic.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/support.hpp"

namespace nc::test {
namespace {

std::string cli() {
  return (binDir() / "net-collector").string();
}

TEST(ProvisionE2E, DeclaredExportsCarryRealTrafficToTheDaemon) {
  NC_REQUIRE_ROOT();
  for (const char* tool : {"ovsdb-server", "ovs-vswitchd", "ip", "ping", "ethtool"}) {
    NC_REQUIRE_TOOL(tool);
  }
  OvsHarness h;
  const OvsHost& h1 = h.host(0);
  const OvsHost& h2 = h.host(1);
  std::string yaml = "ovsdb: {endpoint: \"unix:" + h.dbSocket() +
                     "\"}\n"
                     "bridges:\n"
                     "  - match: \"*\"\n"
                     "    sflow: {sampling: 1, polling: 2}\n"
                     "    ipfix: {sampling: 1, cache_active_timeout: 2, cache_max_flows: 1024}\n"
                     "    netflow: {active_timeout: 2}\n";
  // The switch namespace is private, so the standard ports are free there; fixed ports also let
  // `provision plan` (which reads the config, not the daemon) compute the same targets.
  DaemonProcess d(yaml, {"ip", "netns", "exec", h.switchNs()},
                  "collector: {listen: [\"127.0.0.1:2055\", \"127.0.0.1:4739\", "
                  "\"127.0.0.1:6343\"]}");
  auto cfg = (d.dir() / "net-collector.yaml").string();

  // Provisioned: all three protocols "ok" on the harness bridge.
  auto t0 = std::chrono::steady_clock::now();
  bool provisioned = false;
  nlohmann::json st;
  while (!provisioned && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
    auto r = run({cli(), "--socket", d.socket(), "provision", "--json", "status"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    st = nlohmann::json::parse(r.out);
    provisioned =
        st.value("state", "") == "connected" && st.contains("bridges") && st["bridges"].size() == 1;
    if (provisioned) {
      for (const char* p : {"sflow", "ipfix", "netflow"}) {
        provisioned = provisioned && st["bridges"][0]["protocols"][p].value("action", "") == "ok";
      }
    }
    if (!provisioned) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ASSERT_TRUE(provisioned) << st.dump(2) << "\n" << d.log();
  std::printf("provisioned in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count()));

  auto ping =
      h.tryRunInHost(h1, {"ping", "-c", std::to_string(kPings), "-i", "0.2", "-W", "2", h2.ipv4});
  ASSERT_TRUE(ping.ok()) << ping.out << ping.err;
  ASSERT_EQ(tcpTransfer(h1, h2), kTransfer);

  auto seen = waitForTraffic(d, h1, h2);
  const Seen& nf = seen.netflow;
  const Seen& sf = seen.sflow;
  const Seen& ipfix = seen.ipfix;
  SCOPED_TRACE(d.status().dump(2));
  EXPECT_GE(nf.tcp_bytes, kTransfer);
  EXPECT_GE(ipfix.tcp_bytes, kTransfer);
  EXPECT_GE(sf.tcp_bytes, kTransfer);
  EXPECT_EQ(nf.icmp_packets, static_cast<uint64_t>(kPings));
  EXPECT_EQ(ipfix.icmp_packets, static_cast<uint64_t>(kPings));
  EXPECT_EQ(sf.icmp_packets, static_cast<uint64_t>(kPings));
  // Provisioned exporters are known to be OVS: v5 in OpenFlow ports, IPFIX/sFlow in ifindex.
  EXPECT_EQ(nf.in_if, static_cast<uint32_t>(h1.ofport));
  EXPECT_EQ(nf.if_kind, IfKind::kOpenFlowPort);
  EXPECT_EQ(ipfix.in_if, static_cast<uint32_t>(h1.ifindex));
  EXPECT_EQ(sf.in_if, static_cast<uint32_t>(h1.ifindex));

  // The plan against the live OVSDB shows nothing to change.
  auto plan = run({cli(), "--config", cfg, "provision", "plan"});
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find(h.bridge()), std::string::npos) << plan.out;

  // Stopping the daemon leaves the exports in place.
  ASSERT_EQ(d.stop(), 0) << d.log();
  auto after = run({cli(), "--config", cfg, "provision", "--json", "plan"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  auto pj = nlohmann::json::parse(after.out);
  ASSERT_EQ(pj["bridges"].size(), 1u) << pj.dump(2);
  for (const char* p : {"sflow", "ipfix", "netflow"}) {
    EXPECT_EQ(pj["bridges"][0]["protocols"][p].value("action", ""), "ok") << p << pj.dump(2);
  }

  // `provision remove` takes the owned rows away; the next plan would create them again.
  auto rm = run({cli(), "--config", cfg, "provision", "remove"});
  EXPECT_EQ(rm.exit_code, 0) << rm.out << rm.err;
  auto again = run({cli(), "--config", cfg, "provision", "--json", "plan"});
  auto aj = nlohmann::json::parse(again.out);
  for (const char* p : {"sflow", "ipfix", "netflow"}) {
    EXPECT_EQ(aj["bridges"][0]["protocols"][p].value("action", ""), "create") << p << aj.dump(2);
  }
}

}  // namespace
}  // namespace nc::test
