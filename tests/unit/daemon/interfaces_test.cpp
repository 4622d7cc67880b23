// InterfaceTable: names from IPFIX/v9 and sFlow, counter samples kept per interface with rates,
// counters going backwards, merging the tables of several shards, and the capacity bound.
#include "collector/daemon/interfaces.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace nc::daemon {
namespace {

IpAddr ip(const char* text) {
  IpAddr a;
  IpAddr::parse(text, a);
  return a;
}

decode::InterfaceCounters sample(uint32_t index, uint64_t at_s, uint64_t in_octets,
                                 uint64_t in_packets, const char* port_name = nullptr) {
  decode::InterfaceCounters c;
  c.agent = ip("192.0.2.1");
  c.exporter = ip("198.51.100.1");
  c.received_ns = at_s * 1'000'000'000;
  c.source_id = index;
  c.has_generic = true;
  c.if_index = index;
  c.in_octets = in_octets;
  c.in_packets = in_packets;
  c.out_octets = 10;
  c.out_packets = 1;
  if (port_name != nullptr) {
    c.has_port_name = true;
    c.port_name_len = static_cast<uint8_t>(std::strlen(port_name));
    std::memcpy(c.port_name.data(), port_name, c.port_name_len);
  }
  return c;
}

std::vector<InterfaceEntry> snap(const InterfaceTable& t) {
  std::vector<InterfaceEntry> out;
  t.snapshot(out);
  return out;
}

TEST(InterfaceTable, CountersAreKeptPerInterfaceWithRates) {
  InterfaceTable t;
  t.onCounters(sample(7, 100, 1000, 10, "vnet0"));
  auto s = snap(t);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].exporter, ip("192.0.2.1")) << "keyed by the sFlow agent, as flows are";
  EXPECT_EQ(s[0].if_index, 7u);
  EXPECT_EQ(s[0].name, "vnet0");
  EXPECT_EQ(s[0].name_source, "sflow");
  EXPECT_EQ(s[0].in_bps, 0) << "one sample gives no rate";
  t.onCounters(sample(7, 110, 1000 + 12500, 10 + 50));  // 10 s later: 10 kbit/s, 5 packets/s
  s = snap(t);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_DOUBLE_EQ(s[0].in_bps, 10000.0);
  EXPECT_DOUBLE_EQ(s[0].in_pps, 5.0);
  EXPECT_DOUBLE_EQ(s[0].out_bps, 0.0);
  EXPECT_EQ(s[0].samples, 2u);
  EXPECT_EQ(s[0].counters.in_octets, 13500u);
  EXPECT_EQ(s[0].name, "vnet0") << "a sample without a port name keeps the name";
  // Counters going backwards (agent restart): no rate rather than a huge one.
  t.onCounters(sample(7, 120, 5, 1));
  s = snap(t);
  EXPECT_EQ(s[0].in_bps, 0);
  EXPECT_EQ(s[0].counters.in_octets, 5u);
}

TEST(InterfaceTable, NamesFromIpfixAndChanges) {
  InterfaceTable t;
  decode::InterfaceName n;
  n.exporter = ip("127.0.0.1");
  n.if_index = 4;
  n.if_kind = IfKind::kLinuxIfindex;
  n.proto = FlowProto::kIpfix;
  n.name = "tap1";
  n.received_ns = 5;
  t.onName(n);
  n.if_index = 5;
  n.proto = FlowProto::kNetflowV9;
  n.name = "tap2";
  t.onName(n);
  n.name = "tap2-renamed";
  n.received_ns = 6;
  t.onName(n);
  auto s = mergeInterfaces(snap(t));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "tap1");
  EXPECT_EQ(s[0].name_source, "ipfix");
  EXPECT_EQ(s[0].if_kind, IfKind::kLinuxIfindex);
  EXPECT_FALSE(s[0].has_counters);
  EXPECT_EQ(s[1].name, "tap2-renamed");
  EXPECT_EQ(s[1].name_source, "netflow_v9");
}

TEST(InterfaceTable, MergeKeepsNewestNameAndCountersAcrossShards) {
  InterfaceTable a, b;
  a.onCounters(sample(1, 100, 1000, 10, "old"));
  b.onCounters(sample(1, 200, 2000, 20, "new"));
  decode::InterfaceName n;
  n.exporter = ip("192.0.2.1");
  n.if_index = 1;
  n.proto = FlowProto::kIpfix;
  n.name = "from-ipfix";
  n.received_ns = 150ull * 1'000'000'000;
  a.onName(n);
  std::vector<InterfaceEntry> all;
  a.snapshot(all);
  b.snapshot(all);
  auto m = mergeInterfaces(all);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].counters.in_octets, 2000u) << "newest counters";
  EXPECT_EQ(m[0].name, "new") << "newest name (sFlow at 200 s beats IPFIX at 150 s)";
  EXPECT_EQ(m[0].samples, 2u);
}

TEST(InterfaceTable, CapacityIsBounded) {
  InterfaceTable t(3);
  for (uint32_t i = 0; i < 10; ++i) {
    t.onCounters(sample(i, 1, 0, 0));
  }
  EXPECT_EQ(snap(t).size(), 3u);
  EXPECT_EQ(t.refused(), 7u);
  t.onCounters(sample(1, 2, 5, 5));  // known interfaces still update
  EXPECT_EQ(snap(t)[1].counters.in_octets, 5u);
}

}  // namespace
}  // namespace nc::daemon
