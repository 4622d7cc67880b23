// Open vSwitch (userspace datapath, from the harness) exports NetFlow v5, sFlow and IPFIX for real
// traffic between two namespace hosts — ping and a TCP transfer — into the real daemon running in
// the switch namespace. Every protocol must deliver the hosts' addresses, ports and protocols, the
// right interface numbering (OpenFlow port for NetFlow, ifindex for sFlow/IPFIX), and byte totals
// that cover the transfer.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "collector/record/fields.hpp"
#include "tests/harness/ovs_harness.hpp"
#include "tests/integration/ovs_traffic.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/support.hpp"

namespace nc::test {
namespace {

TEST(OvsExport, NetflowSflowIpfixFromRealTrafficReachTheDaemon) {
  NC_REQUIRE_ROOT();
  for (const char* tool : {"ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ip", "ping", "ethtool"}) {
    NC_REQUIRE_TOOL(tool);
  }
  OvsHarness h;
  const OvsHost& h1 = h.host(0);
  const OvsHost& h2 = h.host(1);
  // The exporter is named as Open vSwitch in the config, as an operator (or the daemon's own
  // provisioning) does: NetFlow v5 carries no sign of OVS, and auto-detection through IPFIX/sFlow
  // is per receive shard, so it cannot be relied on for v5's OpenFlow port numbering.
  DaemonProcess d("", {"ip", "netns", "exec", h.switchNs()},
                  "collector: {listen: [\"127.0.0.1:0\"], exporters: [{network: 127.0.0.1, kind: "
                  "ovs}]}");
  std::string target = "\"127.0.0.1:" + std::to_string(d.port()) + "\"";
  h.vsctl({"--",
           "set",
           "Bridge",
           h.bridge(),
           "netflow=@nf",
           "sflow=@s",
           "ipfix=@i",
           "--",
           "--id=@nf",
           "create",
           "NetFlow",
           "targets=" + target,
           "active_timeout=2",
           "--",
           "--id=@s",
           "create",
           "sFlow",
           "agent=lo",
           "targets=" + target,
           "header=128",
           "sampling=1",
           "polling=2",
           "--",
           "--id=@i",
           "create",
           "IPFIX",
           "targets=" + target,
           "sampling=1",
           "cache_active_timeout=2",
           "cache_max_flows=1024"});

  auto ping =
      h.tryRunInHost(h1, {"ping", "-c", std::to_string(kPings), "-i", "0.2", "-W", "2", h2.ipv4});
  ASSERT_TRUE(ping.ok()) << ping.out << ping.err;
  ASSERT_EQ(tcpTransfer(h1, h2), kTransfer);

  // Active timeouts are 2 s; give every exporter a few rounds.
  auto seen = waitForTraffic(d, h1, h2);
  const Seen& nf = seen.netflow;
  const Seen& sf = seen.sflow;
  const Seen& ipfix = seen.ipfix;
  const std::vector<FlowRecord>& flows = seen.flows;
  SCOPED_TRACE(d.status().dump(2));
  if (std::getenv("NC_DUMP_FLOWS") != nullptr) {
    for (const auto& f : flows) {
      std::fprintf(stderr, "%s dir=%d\n", toJson(f).dump().c_str(), f.direction);
    }
  }

  // NetFlow v5: OpenFlow port numbers; counts are not sampled.
  EXPECT_GE(nf.tcp_bytes, kTransfer);
  EXPECT_LT(nf.tcp_bytes, kTransfer * 12 / 10);  // payload + TCP/IP headers
  EXPECT_EQ(nf.icmp_packets, static_cast<uint64_t>(kPings));
  EXPECT_TRUE(nf.icmp_type_ok) << "ICMP echo request: type 8 recovered from the v5 port field";
  EXPECT_EQ(nf.in_if, static_cast<uint32_t>(h1.ofport));
  EXPECT_EQ(nf.out_if, static_cast<uint32_t>(h2.ofport));
  EXPECT_EQ(nf.if_kind, IfKind::kOpenFlowPort);

  // IPFIX: Linux ifindex; sampling 1.
  EXPECT_GE(ipfix.tcp_bytes, kTransfer);
  EXPECT_LT(ipfix.tcp_bytes, kTransfer * 12 / 10);
  EXPECT_EQ(ipfix.icmp_packets, static_cast<uint64_t>(kPings));
  EXPECT_EQ(ipfix.in_if, static_cast<uint32_t>(h1.ifindex));
  EXPECT_EQ(ipfix.if_kind, IfKind::kLinuxIfindex);
  EXPECT_EQ(ipfix.sampling, 1u);

  // sFlow 1:1: every packet sampled; bytes are frame lengths (Ethernet included).
  EXPECT_GE(sf.tcp_bytes, kTransfer);
  EXPECT_LT(sf.tcp_bytes, kTransfer * 12 / 10);
  EXPECT_EQ(sf.icmp_packets, static_cast<uint64_t>(kPings));
  EXPECT_EQ(sf.in_if, static_cast<uint32_t>(h1.ifindex));
  EXPECT_EQ(sf.out_if, static_cast<uint32_t>(h2.ifindex));
  EXPECT_EQ(sf.if_kind, IfKind::kLinuxIfindex);
  EXPECT_EQ(sf.sampling, 1u);

  auto st = d.status();
  EXPECT_EQ(st["ingest"]["decode_errors"], 0) << st.dump(2);
  EXPECT_GT(st["ingest"]["counter_samples"].get<uint64_t>(), 0u) << "sFlow counters (polling 2)";
  // One status entry per protocol OVS sends from 127.0.0.1, none with a sequence gap or restart
  // (OVS's NetFlow flow_seq numbers the datagram's last flow: read as OVS writes it).
  std::set<std::string> protos;
  for (const auto& e : st["exporters"]) {
    if (e["exporter"] != "127.0.0.1") {
      continue;
    }
    protos.insert(e["protocol"].get<std::string>());
    EXPECT_EQ(e["lost_records"], 0) << e.dump();
    EXPECT_EQ(e["lost_datagrams"], 0) << e.dump();
    EXPECT_EQ(e["sequence_resets"], 0) << e.dump();
  }
  EXPECT_EQ(protos, (std::set<std::string>{"netflow5", "sflow5", "ipfix"}));

  // Interfaces: OVS names both ports in IPFIX (interfaceName) and in sFlow's port-name counter
  // record; sFlow counter samples are kept as interface counters (OpenFlow port, octets).
  auto ifaces = d.interfaces();
  if (std::getenv("NC_DUMP_FLOWS") != nullptr) {
    for (const auto& e : ifaces) {
      std::fprintf(stderr, "%s\n", e.dump().c_str());
    }
  }
  for (const OvsHost* host : {&h1, &h2}) {
    const nlohmann::json* found = nullptr;
    for (const auto& e : ifaces) {
      if (e.value("if_index", -1) == host->ifindex) {
        found = &e;
      }
    }
    ASSERT_NE(found, nullptr) << "ifindex " << host->ifindex << " missing";
    EXPECT_EQ((*found)["name"], host->portName) << found->dump();
    EXPECT_EQ((*found)["if_kind"], "ifindex");
    ASSERT_TRUE(found->contains("counters")) << found->dump();
    const auto& k = (*found)["counters"];
    EXPECT_EQ(k.value("of_port", -1), host->ofport) << found->dump();
    // The TCP transfer went h1 -> h2 through these ports: kTransfer bytes in one direction.
    uint64_t octets =
        std::max(k.value("in_octets", uint64_t{0}), k.value("out_octets", uint64_t{0}));
    EXPECT_GE(octets, kTransfer) << found->dump();
    EXPECT_GE(found->value("counter_samples", 0), 1);
  }
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace nc::test
