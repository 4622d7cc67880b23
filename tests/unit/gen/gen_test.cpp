// Unit tests for nc_gen: option parsing, FlowSource, the four encoders (read back with the
// independent reader in reader.hpp), totals, determinism, sending over loopback and the CLI.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "collector/gen/gen.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/gen/reader.hpp"

namespace nc::gen {
namespace {

using test::Flow;

constexpr uint64_t kNsPerMs = 1000000;

GenOptions baseOptions(Format format) {
  GenOptions o;
  o.format = format;
  o.fixed_time = true;
  o.quiet = true;
  o.rate = 1000;
  o.flows = 200;
  return o;
}

Cidr cidr(const char* text) {
  Cidr c;
  EXPECT_TRUE(parseCidr(text, c)) << text;
  return c;
}

// Builds `n` datagrams with the virtual clock runGen uses with fixed_time (1/rate apart).
struct Built {
  std::vector<std::vector<uint8_t>> datagrams;
  std::vector<std::vector<FlowRecord>> records;
  std::vector<ExportState> states;  // after each datagram
  GenStats stats;
};

Built build(GenOptions o, size_t n) {
  EXPECT_EQ(validate(o), "");
  Generator gen(o);
  Built b;
  std::vector<uint8_t> out;
  double period_ns = o.rate > 0 ? 1e9 / o.rate : 0;
  for (size_t i = 0; i < n; ++i) {
    if (!gen.next(kFixedTimeNs + static_cast<uint64_t>(static_cast<double>(i) * period_ns), out)) {
      break;
    }
    b.datagrams.push_back(out);
    b.records.emplace_back(gen.lastRecords().begin(), gen.lastRecords().end());
    b.states.push_back(gen.state());
  }
  b.stats = gen.stats();
  return b;
}

uint32_t uptime(uint64_t t_ns, const ExportState& s) {
  return static_cast<uint32_t>((t_ns - s.boot_ns) / kNsPerMs);
}

// Compares a decoded flow with the record it came from (times left to the caller).
void expectSameFlow(const Flow& f, const FlowRecord& r, bool ports_carry_icmp = false) {
  EXPECT_EQ(f.src, r.src_addr);
  EXPECT_EQ(f.dst, r.dst_addr);
  EXPECT_EQ(f.proto, r.proto);
  EXPECT_EQ(f.tos, r.tos);
  EXPECT_EQ(f.tcp_flags, r.tcp_flags);
  EXPECT_EQ(f.in_if, r.in_if);
  EXPECT_EQ(f.out_if, r.out_if);
  EXPECT_EQ(f.src_mask, r.src_mask);
  EXPECT_EQ(f.dst_mask, r.dst_mask);
  EXPECT_EQ(f.packets, r.packets);
  EXPECT_EQ(f.bytes, r.bytes);
  uint16_t icmp = static_cast<uint16_t>(r.icmp_type << 8 | r.icmp_code);
  if (ports_carry_icmp && r.proto == 1) {
    EXPECT_EQ(f.dst_port, icmp);
  } else {
    EXPECT_EQ(f.src_port, r.src_port);
    EXPECT_EQ(f.dst_port, r.dst_port);
    if (!ports_carry_icmp) {
      EXPECT_EQ(f.icmp, icmp);
    }
  }
}

// ---- options ------------------------------------------------------------------------------

TEST(GenOptions, ParsesNetworksPortsProtocolsTargets) {
  Cidr c;
  ASSERT_TRUE(parseCidr("10.1.2.3/16", c));
  EXPECT_TRUE(c.v4);
  EXPECT_EQ(c.prefix, 16);
  EXPECT_EQ(c.base.toString(), "10.1.0.0");
  ASSERT_TRUE(parseCidr("2001:db8:1:2::5/48", c));
  EXPECT_FALSE(c.v4);
  EXPECT_EQ(c.base.toString(), "2001:db8:1::");
  ASSERT_TRUE(parseCidr("192.0.2.7", c));
  EXPECT_EQ(c.prefix, 32);
  std::string why;
  EXPECT_FALSE(parseCidr("10.0.0.0/33", c, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(parseCidr("nope/8", c));

  std::vector<PortRange> ports;
  ASSERT_TRUE(parsePortList("80, 443,8000-8010", ports));
  EXPECT_EQ(ports, (std::vector<PortRange>{{80, 80}, {443, 443}, {8000, 8010}}));
  EXPECT_FALSE(parsePortList("90-80", ports));
  EXPECT_FALSE(parsePortList("70000", ports));

  std::vector<ProtoWeight> mix;
  ASSERT_TRUE(parseProtoMix("tcp:80,udp:15,icmp:5,47", mix));
  EXPECT_EQ(mix, (std::vector<ProtoWeight>{{6, 80}, {17, 15}, {1, 5}, {47, 1}}));
  EXPECT_FALSE(parseProtoMix("quic:3", mix));
  EXPECT_FALSE(parseProtoMix("tcp:0", mix));

  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(parseTarget("127.0.0.1:9995", host, port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9995);
  ASSERT_TRUE(parseTarget("[::1]:4739", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 4739);
  ASSERT_TRUE(parseTarget("2001:db8::1", host, port));
  EXPECT_EQ(host, "2001:db8::1");
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(parseTarget("host:99999", host, port));

  Format f;
  ASSERT_TRUE(parseFormat("ipfix", f));
  EXPECT_EQ(f, Format::kIpfix);
  EXPECT_FALSE(parseFormat("v7", f));
}

TEST(GenOptions, ValidateFillsDefaultsAndRejectsNonsense) {
  GenOptions o;
  o.format = Format::kSflow;
  EXPECT_EQ(validate(o), "");
  EXPECT_EQ(o.target_port, 6343);
  EXPECT_EQ(o.src_nets.size(), 1u);
  EXPECT_FALSE(o.dst_ports.empty());
  EXPECT_FALSE(o.protos.empty());

  GenOptions v5;
  v5.src_nets = {cidr("2001:db8::/32")};
  v5.dst_nets = {cidr("2001:db8:1::/48")};
  EXPECT_NE(validate(v5).find("IPv4 only"), std::string::npos);

  GenOptions mixed;
  mixed.format = Format::kIpfix;
  mixed.src_nets = {cidr("2001:db8::/32")};
  mixed.dst_nets = {cidr("10.0.0.0/8")};
  EXPECT_NE(validate(mixed).find("IPv6"), std::string::npos);

  GenOptions bad;
  bad.mtu = 100;
  bad.flows = 0;
  bad.sampling = 0;
  std::string errors = validate(bad);
  EXPECT_NE(errors.find("--mtu"), std::string::npos);
  EXPECT_NE(errors.find("--flows"), std::string::npos);
  EXPECT_NE(errors.find("--sampling"), std::string::npos);
}

// ---- FlowSource ---------------------------------------------------------------------------

TEST(FlowSource, IsDeterministicPerSeed) {
  GenOptions o = baseOptions(Format::kIpfix);
  ASSERT_EQ(validate(o), "");
  FlowSource a(o);
  FlowSource b(o);
  o.seed = 2;
  FlowSource c(o);
  bool any_difference = false;
  for (int i = 0; i < 1000; ++i) {
    FlowRecord ra;
    FlowRecord rb;
    FlowRecord rc;
    a.next(kFixedTimeNs, ra);
    b.next(kFixedTimeNs, rb);
    c.next(kFixedTimeNs, rc);
    ASSERT_EQ(std::memcmp(&ra, &rb, sizeof(ra)), 0) << "record " << i;
    any_difference = any_difference || ra.src_addr != rc.src_addr || ra.bytes != rc.bytes;
  }
  EXPECT_TRUE(any_difference);
}

TEST(FlowSource, HonoursFlowsNetworksPortsAndProtocols) {
  GenOptions o = baseOptions(Format::kIpfix);
  o.flows = 500;
  o.src_nets = {cidr("10.20.0.0/16"), cidr("2001:db8:1::/48")};
  o.dst_nets = {cidr("192.168.7.0/24"), cidr("2001:db8:2::/64")};
  o.protos = {{6, 3}, {17, 1}};
  ASSERT_TRUE(parsePortList("443,9000-9003", o.dst_ports));
  o.src_ports = {2000, 2100};
  ASSERT_EQ(validate(o), "");
  FlowSource src(o);
  EXPECT_EQ(src.flowCount(), 500u);
  std::set<std::tuple<IpAddr, IpAddr, uint16_t, uint16_t, uint8_t>> keys;
  std::map<uint8_t, int> protos;
  int v6 = 0;
  for (int i = 0; i < 2000; ++i) {
    FlowRecord r;
    src.next(kFixedTimeNs, r);
    keys.insert({r.src_addr, r.dst_addr, r.src_port, r.dst_port, r.proto});
    ++protos[r.proto];
    if (r.ip_version == 4) {
      EXPECT_EQ(r.src_addr.v4() >> 16, 0x0a14u);
      EXPECT_EQ(r.dst_addr.v4() >> 8, 0xc0a807u);
    } else {
      ++v6;
      EXPECT_EQ(r.ip_version, 6);
      EXPECT_EQ(r.src_addr.bytes[5], 0x01);
      EXPECT_EQ(r.dst_addr.bytes[5], 0x02);
      EXPECT_EQ(r.dst_addr.bytes[7], 0x00);
    }
    EXPECT_TRUE(r.dst_port == 443 || (r.dst_port >= 9000 && r.dst_port <= 9003));
    EXPECT_GE(r.src_port, 2000);
    EXPECT_LE(r.src_port, 2100);
    EXPECT_GE(r.packets, o.min_packets);
    EXPECT_LE(r.packets, o.max_packets);
    EXPECT_GE(r.bytes, r.packets * o.min_packet_size);
    EXPECT_LE(r.bytes, r.packets * o.max_packet_size);
    EXPECT_LE(r.first_ns, r.last_ns);
    EXPECT_LE(r.last_ns, kFixedTimeNs);
    EXPECT_EQ(r.sampling_rate, 1u);
    EXPECT_EQ(r.flow_proto, FlowProto::kIpfix);
  }
  EXPECT_EQ(keys.size(), 500u);  // exactly the requested number of distinct flows
  EXPECT_GT(v6, 600);
  EXPECT_LT(v6, 1400);
  EXPECT_GT(protos[6], protos[17] * 2);  // 3:1 mix
  EXPECT_EQ(protos.size(), 2u);
}

TEST(FlowSource, ZipfSkewsHosts) {
  auto topShare = [](AddrDist dist) {
    GenOptions o = baseOptions(Format::kNetflowV5);
    o.flows = 2000;
    o.addr_dist = dist;
    EXPECT_EQ(validate(o), "");
    FlowSource src(o);
    std::map<uint32_t, int> hosts;
    for (int i = 0; i < 2000; ++i) {
      FlowRecord r;
      src.next(kFixedTimeNs, r);
      ++hosts[r.src_addr.v4()];
    }
    std::vector<int> counts;
    for (auto& [h, n] : hosts) {
      counts.push_back(n);
    }
    std::sort(counts.rbegin(), counts.rend());
    int top = 0;
    for (size_t i = 0; i < 10 && i < counts.size(); ++i) {
      top += counts[i];
    }
    return top / 2000.0;
  };
  EXPECT_LT(topShare(AddrDist::kUniform), 0.05);
  EXPECT_GT(topShare(AddrDist::kZipf), 0.3);
}

// ---- NetFlow v5 ---------------------------------------------------------------------------

TEST(EncodeV5, HeaderCountsSequenceAndRecords) {
  GenOptions o = baseOptions(Format::kNetflowV5);
  o.sampling = 100;
  o.domain = 0x0102;
  Built b = build(o, 50);
  ASSERT_EQ(b.datagrams.size(), 50u);
  uint32_t expected_seq = 0;
  uint64_t packets = 0;
  for (size_t i = 0; i < b.datagrams.size(); ++i) {
    test::V5Packet p;
    std::string err;
    ASSERT_TRUE(test::parseV5(b.datagrams[i], p, err)) << err;
    EXPECT_LE(b.datagrams[i].size(), o.mtu);
    EXPECT_EQ(p.count, 28);  // (1400 - 24) / 48
    EXPECT_EQ(p.sequence, expected_seq);
    expected_seq += p.count;
    EXPECT_EQ(p.engine_type, 1);
    EXPECT_EQ(p.engine_id, 2);
    EXPECT_EQ(p.sampling >> 14, 1);
    EXPECT_EQ(p.sampling & 0x3fff, 100);
    uint64_t export_ns = kFixedTimeNs + i * kNsPerMs;
    EXPECT_EQ(p.secs, export_ns / 1000000000);
    EXPECT_EQ(p.nsecs, export_ns % 1000000000);
    EXPECT_EQ(p.uptime, uptime(export_ns, b.states[i]));
    ASSERT_EQ(p.flows.size(), b.records[i].size());
    for (size_t k = 0; k < p.flows.size(); ++k) {
      const FlowRecord& r = b.records[i][k];
      expectSameFlow(p.flows[k], r, true);
      EXPECT_EQ(p.flows[k].first, uptime(r.first_ns, b.states[i]));
      EXPECT_EQ(p.flows[k].last, uptime(r.last_ns, b.states[i]));
      EXPECT_EQ(p.flows[k].src_as, r.src_as);
      packets += p.flows[k].packets;
    }
  }
  EXPECT_EQ(b.stats.records, expected_seq);
  EXPECT_EQ(b.stats.flow_packets, packets);
}

TEST(EncodeV5, RecordsPerPacketAndMtuBound) {
  GenOptions o = baseOptions(Format::kNetflowV5);
  o.records_per_packet = 7;
  Built b = build(o, 5);
  for (const auto& d : b.datagrams) {
    EXPECT_EQ(d.size(), 24u + 7 * 48);
  }
  o.records_per_packet = 0;
  o.mtu = 9000;  // v5 still stops at 30
  b = build(o, 3);
  for (const auto& d : b.datagrams) {
    EXPECT_EQ(d.size(), 24u + 30 * 48);
  }
  o.mtu = 600;
  b = build(o, 3);
  for (const auto& d : b.datagrams) {
    EXPECT_EQ(d.size(), 24u + 12 * 48);
  }
}

// ---- NetFlow v9 ---------------------------------------------------------------------------

TEST(EncodeV9, TemplatesCadenceSequenceCountsAndRecords) {
  GenOptions o = baseOptions(Format::kNetflowV9);
  o.src_nets = {cidr("10.0.0.0/8"), cidr("2001:db8:a::/48")};
  o.dst_nets = {cidr("172.16.0.0/12"), cidr("2001:db8:b::/48")};
  o.sampling = 64;
  o.domain = 77;
  o.template_interval = 20;
  Built b = build(o, 65);
  ASSERT_EQ(b.datagrams.size(), 65u);
  test::TemplateReader reader(false);
  uint64_t records = 0;
  std::set<uint16_t> template_ids_used;
  for (size_t i = 0; i < b.datagrams.size(); ++i) {
    const auto& d = b.datagrams[i];
    EXPECT_LE(d.size(), o.mtu);
    test::TemplatePacket p;
    std::string err;
    ASSERT_TRUE(reader.parse(d, p, err)) << "datagram " << i << ": " << err;
    EXPECT_EQ(p.sequence, i);  // counts export packets
    EXPECT_EQ(p.domain, 77u);
    uint64_t export_ns = kFixedTimeNs + i * kNsPerMs;
    EXPECT_EQ(p.secs, export_ns / 1000000000);
    EXPECT_EQ(p.uptime, uptime(export_ns, b.states[i]));
    bool due = i % 20 == 0;
    EXPECT_EQ(p.template_records, due ? 2u : 0u) << i;
    EXPECT_EQ(p.options_template_records, due ? 1u : 0u) << i;
    EXPECT_EQ(p.options_data_records, due ? 1u : 0u) << i;
    if (due) {
      EXPECT_EQ(p.options_values[34], 64u);
      EXPECT_EQ(p.options_values[35], 1u);
    }
    // Count = every record in the packet (templates, options template, options and flow data).
    EXPECT_EQ(p.count, p.template_records + p.options_template_records + p.options_data_records +
                           p.flows.size());
    for (uint16_t len : p.set_lengths) {
      EXPECT_EQ(len % 4, 0) << "v9 flowsets are padded to 32 bits";
    }
    ASSERT_EQ(p.flows.size(), b.records[i].size());
    for (size_t k = 0; k < p.flows.size(); ++k) {
      const FlowRecord& r = b.records[i][k];
      expectSameFlow(p.flows[k], r);
      EXPECT_EQ(p.flows[k].next_hop, r.next_hop);
      EXPECT_EQ(p.flows[k].src_as, r.src_as);
      EXPECT_EQ(p.flows[k].dst_as, r.dst_as);
      EXPECT_EQ(p.flows[k].first, uptime(r.first_ns, b.states[i]));
      EXPECT_EQ(p.flows[k].last, uptime(r.last_ns, b.states[i]));
      EXPECT_EQ(p.flows[k].template_id, r.ip_version == 6 ? 257 : 256);
      template_ids_used.insert(p.flows[k].template_id);
    }
    records += p.flows.size();
    // Full datagrams: the next record would not have fitted.
    EXPECT_GT(d.size() + 104 + 4, o.mtu);
  }
  EXPECT_EQ(template_ids_used, (std::set<uint16_t>{256, 257}));
  EXPECT_EQ(records, b.stats.records);
}

TEST(EncodeV9, NoOptionsWithoutSamplingAndTemplatesOnlyFirstWithIntervalZero) {
  GenOptions o = baseOptions(Format::kNetflowV9);
  o.template_interval = 0;
  Built b = build(o, 30);
  test::TemplateReader reader(false);
  for (size_t i = 0; i < b.datagrams.size(); ++i) {
    test::TemplatePacket p;
    std::string err;
    ASSERT_TRUE(reader.parse(b.datagrams[i], p, err)) << err;
    EXPECT_EQ(p.template_records, i == 0 ? 2u : 0u);
    EXPECT_EQ(p.options_template_records, 0u);
  }
}

// ---- IPFIX --------------------------------------------------------------------------------

TEST(EncodeIpfix, LengthSequenceTemplatesOptionsAndRecords) {
  GenOptions o = baseOptions(Format::kIpfix);
  o.src_nets = {cidr("10.0.0.0/8"), cidr("2001:db8:a::/48")};
  o.dst_nets = {cidr("172.16.0.0/12"), cidr("2001:db8:b::/48")};
  o.sampling = 1000;
  o.domain = 4242;
  o.template_interval = 10;
  Built b = build(o, 45);
  ASSERT_EQ(b.datagrams.size(), 45u);
  test::TemplateReader reader(true);
  uint32_t data_records = 0;  // flow + options data records, the IPFIX sequence unit
  for (size_t i = 0; i < b.datagrams.size(); ++i) {
    const auto& d = b.datagrams[i];
    EXPECT_LE(d.size(), o.mtu);
    test::TemplatePacket p;
    std::string err;
    ASSERT_TRUE(reader.parse(d, p, err)) << "datagram " << i << ": " << err;
    EXPECT_EQ(p.length, d.size());
    EXPECT_EQ(p.sequence, data_records) << i;
    EXPECT_EQ(p.domain, 4242u);
    EXPECT_EQ(p.secs, (kFixedTimeNs + i * kNsPerMs) / 1000000000);
    bool due = i % 10 == 0;
    EXPECT_EQ(p.template_records, due ? 2u : 0u) << i;
    EXPECT_EQ(p.options_template_records, due ? 1u : 0u) << i;
    if (due) {
      EXPECT_EQ(p.options_values[149], 4242u);
      EXPECT_EQ(p.options_values[34], 1000u);
      EXPECT_EQ(p.options_values[305], 1u);
      EXPECT_EQ(p.options_values[306], 999u);
    }
    data_records += p.options_data_records + static_cast<uint32_t>(p.flows.size());
    ASSERT_EQ(p.flows.size(), b.records[i].size());
    for (size_t k = 0; k < p.flows.size(); ++k) {
      const FlowRecord& r = b.records[i][k];
      expectSameFlow(p.flows[k], r);
      EXPECT_EQ(p.flows[k].first, r.first_ns / kNsPerMs);
      EXPECT_EQ(p.flows[k].last, r.last_ns / kNsPerMs);
      EXPECT_EQ(p.flows[k].template_id, r.ip_version == 6 ? 257 : 256);
    }
  }
  EXPECT_EQ(b.states.back().sequence, data_records);
}

TEST(EncodeIpfix, RecordsPerPacketIsHonoured) {
  GenOptions o = baseOptions(Format::kIpfix);
  o.records_per_packet = 3;
  Built b = build(o, 10);
  test::TemplateReader reader(true);
  for (const auto& d : b.datagrams) {
    test::TemplatePacket p;
    std::string err;
    ASSERT_TRUE(reader.parse(d, p, err)) << err;
    EXPECT_EQ(p.flows.size(), 3u);
  }
}

// ---- sFlow --------------------------------------------------------------------------------

TEST(EncodeSflow, HeaderSamplesSequencesAndSampledHeaders) {
  GenOptions o = baseOptions(Format::kSflow);
  o.src_nets = {cidr("10.0.0.0/8"), cidr("2001:db8:a::/48")};
  o.dst_nets = {cidr("172.16.0.0/12"), cidr("2001:db8:b::/48")};
  o.sampling = 512;
  o.domain = 3;
  o.agent = "192.0.2.9";
  Built b = build(o, 40);
  ASSERT_EQ(b.datagrams.size(), 40u);
  uint32_t sample_seq = 0;
  uint64_t frame_bytes = 0;
  for (size_t i = 0; i < b.datagrams.size(); ++i) {
    const auto& d = b.datagrams[i];
    EXPECT_LE(d.size(), o.mtu);
    test::SflowDatagram g;
    std::string err;
    ASSERT_TRUE(test::parseSflow(d, g, err)) << "datagram " << i << ": " << err;
    EXPECT_EQ(g.agent.toString(), "192.0.2.9");
    EXPECT_EQ(g.sub_agent, 3u);
    EXPECT_EQ(g.sequence, i + 1);
    EXPECT_EQ(g.uptime, uptime(kFixedTimeNs + i * kNsPerMs, b.states[i]));
    ASSERT_EQ(g.samples.size(), b.records[i].size());
    EXPECT_GT(g.samples.size(), 5u);
    // A counters sample (default --counters-interval 10) in datagrams 0, 10, 20, 30.
    EXPECT_EQ(g.num_samples, g.samples.size() + g.counters.size());
    ASSERT_EQ(g.counters.size(), i % 10 == 0 ? 1u : 0u) << i;
    if (!g.counters.empty()) {
      const test::SflowCounters& cs = g.counters[0];
      EXPECT_EQ(cs.sequence, i / 10 + 1);
      EXPECT_EQ(cs.source_id, 1u);
      EXPECT_TRUE(cs.generic);
      EXPECT_EQ(cs.if_index, 1u);
      EXPECT_EQ(cs.if_speed, 10'000'000'000ULL);
      EXPECT_EQ(cs.if_status, 3u);
      EXPECT_GT(cs.in_octets, 0u);
    }
    for (size_t k = 0; k < g.samples.size(); ++k) {
      const test::SflowSample& s = g.samples[k];
      const FlowRecord& r = b.records[i][k];
      EXPECT_EQ(s.sequence, ++sample_seq);
      EXPECT_EQ(s.source_id, 1u);
      EXPECT_EQ(s.sampling_rate, 512u);
      EXPECT_EQ(s.sample_pool, s.sequence * 512u);
      EXPECT_EQ(s.input, r.in_if);
      EXPECT_EQ(s.output, r.out_if);
      EXPECT_EQ(s.header_protocol, 1u);
      EXPECT_EQ(r.packets, 1u);
      EXPECT_EQ(s.frame_length, r.bytes);
      EXPECT_LE(s.header.size(), s.frame_length);
      EXPECT_EQ(s.ethertype, r.ip_version == 6 ? 0x86dd : 0x0800);
      EXPECT_EQ(s.flow.src, r.src_addr);
      EXPECT_EQ(s.flow.dst, r.dst_addr);
      EXPECT_EQ(s.flow.proto, r.proto);
      EXPECT_EQ(s.flow.tos, r.tos);
      EXPECT_EQ(s.flow.src_port, r.src_port);
      EXPECT_EQ(s.flow.dst_port, r.dst_port);
      EXPECT_EQ(s.flow.tcp_flags, r.tcp_flags);
      if (r.proto == 1 || r.proto == 58) {
        EXPECT_EQ(s.flow.icmp, r.icmp_type << 8 | r.icmp_code);
      }
      if (r.ip_version == 4) {
        // IPv4 header checksum verifies.
        uint32_t sum = 0;
        for (size_t j = 14; j < 34; j += 2) {
          sum += (uint32_t{s.header[j]} << 8) | s.header[j + 1];
        }
        while (sum >> 16) {
          sum = (sum & 0xffff) + (sum >> 16);
        }
        EXPECT_EQ(sum, 0xffffu);
      }
      frame_bytes += s.frame_length;
    }
  }
  EXPECT_EQ(b.stats.flow_bytes, frame_bytes);
  EXPECT_EQ(b.stats.flow_packets, sample_seq);
  EXPECT_EQ(b.stats.records, sample_seq);
}

TEST(EncodeSflow, Ipv6Agent) {
  GenOptions o = baseOptions(Format::kSflow);
  o.agent = "2001:db8::99";
  Built b = build(o, 2);
  test::SflowDatagram g;
  std::string err;
  ASSERT_TRUE(test::parseSflow(b.datagrams[1], g, err)) << err;
  EXPECT_EQ(g.agent.toString(), "2001:db8::99");
  EXPECT_EQ(g.sequence, 2u);
}

// ---- totals, limits, determinism ------------------------------------------------------------

TEST(Generator, TotalsEqualSumsOverFlowSourceRecords) {
  for (Format f : {Format::kNetflowV5, Format::kNetflowV9, Format::kIpfix, Format::kSflow}) {
    GenOptions o = baseOptions(f);
    o.records = 1234;  // not a multiple of any records-per-datagram: the last one is partial
    ASSERT_EQ(validate(o), "");
    Built b = build(o, 1000000);
    EXPECT_EQ(b.stats.records, 1234u) << toString(f);
    uint64_t bytes = 0;
    for (const auto& d : b.datagrams) {
      bytes += d.size();
    }
    EXPECT_EQ(b.stats.bytes, bytes);
    EXPECT_EQ(b.stats.datagrams, b.datagrams.size());
    FlowSource src(o);
    uint64_t packets = 0;
    uint64_t octets = 0;
    for (int i = 0; i < 1234; ++i) {
      FlowRecord r;
      src.next(kFixedTimeNs, r);
      packets += r.packets;
      octets += r.bytes;
    }
    EXPECT_EQ(b.stats.flow_packets, packets) << toString(f);
    EXPECT_EQ(b.stats.flow_bytes, octets) << toString(f);
  }
}

TEST(Generator, CountLimitStops) {
  GenOptions o = baseOptions(Format::kIpfix);
  o.count = 17;
  Built b = build(o, 100);
  EXPECT_EQ(b.datagrams.size(), 17u);
}

std::vector<uint8_t> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(RunGen, FixedTimePcapIsByteIdenticalPerSeed) {
  ::nc::test::TempDir dir("gen-determinism");
  for (Format f : {Format::kNetflowV5, Format::kNetflowV9, Format::kIpfix, Format::kSflow}) {
    GenOptions o = baseOptions(f);
    o.count = 40;
    o.sampling = 10;
    auto path = [&](const char* name) {
      return (dir.path() / (std::string(toString(f)) + name)).string();
    };
    o.pcap = path("-a.pcap");
    GenStats sa;
    ASSERT_EQ(runGen(o, &sa), 0);
    o.pcap = path("-b.pcap");
    ASSERT_EQ(runGen(o, nullptr), 0);
    o.seed = 99;
    o.pcap = path("-c.pcap");
    ASSERT_EQ(runGen(o, nullptr), 0);
    auto a = slurp(path("-a.pcap"));
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, slurp(path("-b.pcap"))) << toString(f);
    EXPECT_NE(a, slurp(path("-c.pcap"))) << toString(f);
    EXPECT_EQ(sa.datagrams, 40u);
    EXPECT_EQ(a.size(), 24 + sa.wire_bytes + 16 * sa.datagrams);  // pcap headers + frames

    // The pcap payloads are exactly the Generator's datagrams.
    auto packets = test::readPcap(path("-a.pcap"));
    o.seed = 1;
    o.pcap.clear();
    Built b = build(o, 40);
    ASSERT_EQ(packets.size(), b.datagrams.size());
    for (size_t i = 0; i < packets.size(); ++i) {
      auto payload = packets[i].payload();
      EXPECT_TRUE(
          std::equal(payload.begin(), payload.end(), b.datagrams[i].begin(), b.datagrams[i].end()));
    }
  }
}

TEST(RunGen, WithoutFixedTimeOnlyTimestampsDiffer) {
  // Real time moves the timestamps; everything else (sequence, keys, counters, durations) stays.
  GenOptions o = baseOptions(Format::kIpfix);
  o.fixed_time = false;
  o.count = 5;
  ::nc::test::TempDir dir("gen-realtime");
  o.pcap = (dir.path() / "a.pcap").string();
  ASSERT_EQ(runGen(o), 0);
  o.pcap = (dir.path() / "b.pcap").string();
  ASSERT_EQ(runGen(o), 0);
  auto a = test::readPcap((dir.path() / "a.pcap").string());
  auto b = test::readPcap((dir.path() / "b.pcap").string());
  ASSERT_EQ(a.size(), b.size());
  test::TemplateReader ra(true);
  test::TemplateReader rb(true);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].frame.size(), b[i].frame.size());
    test::TemplatePacket pa;
    test::TemplatePacket pb;
    std::string err;
    ASSERT_TRUE(ra.parse(a[i].payload(), pa, err)) << err;
    ASSERT_TRUE(rb.parse(b[i].payload(), pb, err)) << err;
    EXPECT_EQ(pa.sequence, pb.sequence);
    ASSERT_EQ(pa.flows.size(), pb.flows.size());
    for (size_t k = 0; k < pa.flows.size(); ++k) {
      EXPECT_EQ(pa.flows[k].src, pb.flows[k].src);
      EXPECT_EQ(pa.flows[k].bytes, pb.flows[k].bytes);
      EXPECT_EQ(pa.flows[k].last - pa.flows[k].first, pb.flows[k].last - pb.flows[k].first);
    }
  }
}

// ---- sending ------------------------------------------------------------------------------

// Receives datagrams on a loopback socket bound to port 0.
class Receiver {
 public:
  explicit Receiver(bool v6) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 8 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*a);
    }
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
          ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0;
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ~Receiver() { ::close(fd_); }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }
  std::vector<std::vector<uint8_t>> drain(size_t max) {
    std::vector<std::vector<uint8_t>> out;
    std::vector<uint8_t> buf(65536);
    while (out.size() < max) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 2000) <= 0) {
        break;
      }
      ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
      if (n < 0) {
        break;
      }
      out.emplace_back(buf.begin(), buf.begin() + n);
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  uint16_t port_ = 0;
};

void sendAndCompare(bool v6, Format f, bool gso = false) {
  Receiver rx(v6);
  if (!rx.ok()) {
    GTEST_SKIP() << "no " << (v6 ? "IPv6" : "IPv4") << " loopback";
  }
  GenOptions o = baseOptions(f);
  o.target_host = v6 ? "::1" : "127.0.0.1";
  o.target_port = rx.port();
  o.rate = 0;
  o.count = 300;
  o.gso = gso;
  if (v6) {
    o.src_nets = {cidr("2001:db8:1::/48")};
    o.dst_nets = {cidr("2001:db8:2::/48")};
  }
  GenStats stats;
  ASSERT_EQ(runGen(o, &stats), 0);
  EXPECT_EQ(stats.datagrams, 300u);
  EXPECT_EQ(stats.send_errors, 0u);
  auto got = rx.drain(300);
  ASSERT_EQ(got.size(), 300u);
  Built b = build(o, 300);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i] == b.datagrams[i]) << "datagram " << i << " differs";
  }
  uint64_t bytes = 0;
  for (const auto& d : got) {
    bytes += d.size();
  }
  EXPECT_EQ(stats.bytes, bytes);
  EXPECT_EQ(stats.wire_bytes, bytes + 300 * (14 + (v6 ? 40 : 20) + 8));
}

TEST(RunGen, SendsOverIpv4Loopback) {
  sendAndCompare(false, Format::kIpfix);
}
TEST(RunGen, SendsOverIpv6Loopback) {
  sendAndCompare(true, Format::kNetflowV9);
}

// With --gso the kernel cuts runs of equal-size datagrams apart: the receiver must see exactly
// the datagrams of a plain send, in order (templates and option data make runs of several sizes).
TEST(RunGen, GsoSendsTheSameDatagrams) {
  sendAndCompare(false, Format::kNetflowV9, true);
  sendAndCompare(false, Format::kNetflowV5, true);
  sendAndCompare(false, Format::kSflow, true);
  sendAndCompare(true, Format::kIpfix, true);
}

TEST(RunGen, PacingIsNeverFasterThanTheRate) {
  Receiver rx(false);
  ASSERT_TRUE(rx.ok());
  GenOptions o = baseOptions(Format::kNetflowV5);
  o.target_port = rx.port();
  o.rate = 2000;
  o.count = 200;  // at most ~2 ms of burst at 2000/s: >= ~0.098 s
  GenStats stats;
  ASSERT_EQ(runGen(o, &stats), 0);
  EXPECT_EQ(stats.datagrams, 200u);
  EXPECT_GE(stats.elapsed_s, 0.09);
  EXPECT_EQ(rx.drain(200).size(), 200u);
}

TEST(RunGen, RejectsBadOptionsWithStatus2) {
  GenOptions o;
  o.mtu = 10;
  EXPECT_EQ(runGen(o), 2);
}

// ---- CLI ----------------------------------------------------------------------------------

TEST(GenCommand, ParsesOptionsRunsAndPrintsJson) {
  ::nc::test::TempDir dir("gen-cli");
  std::string pcap = (dir.path() / "out.pcap").string();
  CLI::App app("test");
  addGenCommand(app);
  std::vector<std::string> args = {"net-collector",
                                   "gen",
                                   "-f",
                                   "sflow",
                                   "--pcap",
                                   pcap,
                                   "-n",
                                   "100",
                                   "--sampling",
                                   "256",
                                   "--src-net",
                                   "2001:db8::/64",
                                   "--dst-net",
                                   "2001:db8:1::/64",
                                   "--fixed-time",
                                   "--json",
                                   "-q",
                                   "--proto",
                                   "udp"};
  std::vector<const char*> argv;
  for (const std::string& a : args) {
    argv.push_back(a.c_str());
  }
  ::testing::internal::CaptureStdout();
  app.parse(static_cast<int>(argv.size()), argv.data());
  std::string out = ::testing::internal::GetCapturedStdout();
  nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["format"], "sflow");
  EXPECT_EQ(j["records"], 100);
  EXPECT_EQ(j["flow_packets"], 100);
  EXPECT_EQ(j["sampling"], 256);
  EXPECT_EQ(j["target"], "127.0.0.1:6343");
  auto packets = test::readPcap(pcap);
  EXPECT_EQ(packets.size(), j["datagrams"].get<size_t>());
  uint64_t frame_bytes = 0;
  for (const auto& p : packets) {
    test::SflowDatagram g;
    std::string err;
    ASSERT_TRUE(test::parseSflow(p.payload(), g, err)) << err;
    for (const auto& s : g.samples) {
      EXPECT_EQ(s.ethertype, 0x86dd);
      EXPECT_EQ(s.flow.proto, 17);
      frame_bytes += s.frame_length;
    }
  }
  EXPECT_EQ(j["flow_bytes"].get<uint64_t>(), frame_bytes);
}

TEST(GenCommand, BadOptionsExitWithStatus2AndHelpListsOptions) {
  CLI::App app("test");
  addGenCommand(app);
  const char* argv[] = {"net-collector", "gen", "-f", "v7"};
  try {
    app.parse(4, argv);
    FAIL() << "expected CLI::RuntimeError";
  } catch (const CLI::RuntimeError& e) {
    EXPECT_EQ(e.get_exit_code(), 2);
  }
  std::string help = app.get_subcommand("gen")->help();
  for (const char* opt : {"--format",  "--target",     "--rate",      "--count",
                          "--records", "--duration",   "--flows",     "--src-net",
                          "--dst-net", "--addr-dist",  "--dst-ports", "--proto",
                          "--rpp",     "--mtu",        "--sampling",  "--template-interval",
                          "--seed",    "--fixed-time", "--dry-run",   "--pcap",
                          "--json"}) {
    EXPECT_NE(help.find(opt), std::string::npos) << opt;
  }
}

}  // namespace
}  // namespace nc::gen
