// sFlow v5 on real captures: expanded flow samples with router/gateway records (tcpdump golden),
// VLAN and QinQ sampled frames, ICMP, counter samples with port name (telegraf golden), a
// multi-agent counter capture with stray NetFlow v5 on the same port, and a malformed datagram.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "tests/unit/decode/capture_util.hpp"

namespace nc::test {
namespace {

using decode::DecodeError;

TEST(DecodeSflow, ExpandedFlowSampleMatchesTcpdump) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-sflow5-expanded-flow-sample.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 1u);
  EXPECT_TRUE(run.statuses[0].ok());
  const FlowRecord& r = run.sink.records[0];
  // tcpdump -v: agent 49.49.49.49, agent-id 0, rate 1000, input 29001, output 1285816721.
  EXPECT_EQ(r.exporter, ip("49.49.49.49"));
  EXPECT_EQ(r.observation_domain, 0u);
  EXPECT_EQ(r.sampling_rate, 1000u);
  EXPECT_EQ(r.in_if, 29001u);
  EXPECT_EQ(r.out_if, 1285816721u);
  EXPECT_EQ(r.flow_proto, FlowProto::kSflowV5);
  EXPECT_EQ(r.packets, 1u);
  EXPECT_EQ(r.bytes, 126u);  // frame length
  EXPECT_EQ(r.scaledBytes(), 126000u);
  // Sampled header: 802.1Q 809, 52.52.52.52:22 -> 53.53.53.53:52237 TCP [PSH,ACK], DSCP 2.
  EXPECT_EQ(r.vlan, 809);
  EXPECT_EQ(r.src_mac, 0x948ed30a713bu);
  EXPECT_EQ(r.dst_mac, 0x22421f4a9fcdu);
  EXPECT_EQ(r.src_addr.toString(), "52.52.52.52");
  EXPECT_EQ(r.dst_addr.toString(), "53.53.53.53");
  EXPECT_EQ(r.src_port, 22);
  EXPECT_EQ(r.dst_port, 52237);
  EXPECT_EQ(r.proto, 6);
  EXPECT_EQ(r.tcp_flags, 0x18);
  EXPECT_EQ(r.tos, 0x08);
  EXPECT_EQ(r.ip_version, 4);
  // Extended router (1002) and gateway (1003).
  EXPECT_EQ(r.next_hop.toString(), "54.54.54.54");
  EXPECT_EQ(r.src_mask, 32);
  EXPECT_EQ(r.dst_mask, 22);
  EXPECT_EQ(r.src_as, 203476u);
  EXPECT_EQ(r.dst_as, 203361u);  // last AS of the path
}

TEST(DecodeSflow, ConfigByAgentAddressAppliesAndClears) {
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(readUdpCapture((captureDir() / "unknown-sflow5-expanded-flow-sample.pcap").string(),
                             dg, nullptr));
  decode::Decoder d;
  d.setExporterConfig(ip("49.49.49.49"), {decode::ExporterFlavor::kOvs, 10, IfKind::kUnknown});
  CollectingSink sink;
  decode::DatagramMeta meta{dg[0].src, dg[0].src_port, dg[0].ts_ns};
  d.decode(dg[0].payload, meta, sink);
  d.clearExporterConfig(ip("49.49.49.49"));
  d.decode(dg[0].payload, meta, sink);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].sampling_rate, 10u);
  EXPECT_EQ(sink.records[0].if_kind, IfKind::kLinuxIfindex);
  EXPECT_EQ(sink.records[1].sampling_rate, 1000u);
  EXPECT_EQ(sink.records[1].if_kind, IfKind::kSnmp);
}

TEST(DecodeSflow, VlanTaggedSample) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-sflow5-flow-sample-vlan.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 1u);
  const FlowRecord& r = run.sink.records[0];
  EXPECT_EQ(r.exporter, ip("10.243.62.190"));
  EXPECT_EQ(r.sampling_rate, 2000u);
  EXPECT_EQ(r.out_if, 52u);
  EXPECT_EQ(r.vlan, 2422);
  EXPECT_EQ(r.src_addr.toString(), "10.243.2.11");
  EXPECT_EQ(r.dst_addr.toString(), "10.243.13.15");
  EXPECT_EQ(r.src_port, 63150);
  EXPECT_EQ(r.dst_port, 443);
  EXPECT_EQ(r.tcp_flags, 0x10);
  EXPECT_EQ(r.bytes, 62u);
}

TEST(DecodeSflow, QinqKeepsOuterVlan) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-sflow5-qinq.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 1u);
  const FlowRecord& r = run.sink.records[0];
  EXPECT_EQ(r.observation_domain, 100u);
  EXPECT_EQ(r.sampling_rate, 4096u);
  EXPECT_EQ(r.in_if, 369098852u);
  EXPECT_EQ(r.out_if, 369098851u);
  EXPECT_EQ(r.vlan, 1062);  // outer tag; the inner (1493) is walked over to reach IPv4
  EXPECT_EQ(r.proto, 6);
  EXPECT_EQ(r.src_port, 32017);
  EXPECT_EQ(r.dst_port, 443);
  EXPECT_EQ(r.bytes, 106u);
  EXPECT_EQ(r.src_mac, 0x4caea3520ff6u);
}

TEST(DecodeSflow, Icmpv4TypeAndCode) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-sflow5-icmpv4.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 1u);
  const FlowRecord& r = run.sink.records[0];
  EXPECT_EQ(r.exporter, ip("127.0.0.1"));
  EXPECT_EQ(r.observation_domain, 1402u);
  EXPECT_EQ(r.proto, 1);
  EXPECT_EQ(r.icmp_type, 8);
  EXPECT_EQ(r.icmp_code, 0);
  EXPECT_EQ(r.src_addr.toString(), "203.0.113.4");
  EXPECT_EQ(r.dst_addr.toString(), "203.0.113.5");
  EXPECT_EQ(r.out_if, 0x3fffffffu);  // "local" interface
  EXPECT_EQ(r.sampling_rate, 1u);
}

TEST(DecodeSflow, FiveSamplesWithGatewayRecords) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-sflow5-5-flow-samples-ext-gateway.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 5u);
  size_t with_as = 0;
  for (const FlowRecord& r : run.sink.records) {
    EXPECT_EQ(r.exporter, ip("172.16.0.3"));
    with_as += r.dst_as != 0 || r.src_as != 0;
  }
  EXPECT_GT(with_as, 0u);
}

TEST(DecodeSflow, CounterSampleWithPortNameMatchesTelegraf) {
  decode::Decoder d;
  CaptureRun run = runCapture("hsflowd-sflow5-counters-portname-telegraf.pcap", d);
  EXPECT_TRUE(run.sink.records.empty());  // counters are not flows
  ASSERT_EQ(run.sink.counters.size(), 1u);
  EXPECT_EQ(run.statuses[0].counters, 1u);
  auto golden = readTelegraf("hsflowd-sflow5-counters-portname-telegraf.telegraf-expected.out");
  ASSERT_EQ(golden.size(), 1u);
  auto& g = golden[0];
  const decode::InterfaceCounters& c = run.sink.counters[0];
  EXPECT_EQ(c.agent.toString(), g["agent_ip"]);
  EXPECT_EQ(std::to_string(c.sub_agent), g["agent_subid"]);
  EXPECT_TRUE(c.has_generic);
  EXPECT_EQ(std::to_string(c.if_index), g["interface"]);
  EXPECT_EQ(std::to_string(c.if_type), g["interface_type"]);
  EXPECT_EQ(std::to_string(c.if_speed), g["speed"]);
  EXPECT_EQ(std::to_string(c.in_octets), g["in_bytes"]);
  EXPECT_EQ(std::to_string(c.out_octets), g["out_bytes"]);
  // Multicast/broadcast are "unknown" (all ones) and do not enter the packet sums.
  EXPECT_EQ(std::to_string(c.in_packets), g["in_unicast_packets_total"]);
  EXPECT_EQ(std::to_string(c.out_packets), g["out_unicast_packets_total"]);
  EXPECT_EQ(std::to_string(c.in_errors), g["in_errors"]);
  EXPECT_EQ(std::to_string(c.in_discards), g["in_dropped_packets"]);
  EXPECT_EQ(std::to_string(c.sequence), g["seq_number"]);
  EXPECT_TRUE(c.has_port_name);
  EXPECT_EQ(c.portName(), g["port_name"]);
  EXPECT_EQ(c.if_status & 3u, 3u);  // "up"
}

TEST(DecodeSflow, HpCountersManyAgentsAndStrayNetflowV5) {
  decode::Decoder d;
  CaptureRun run = runCapture("hp-sflow5-counters-30pdus-with-nfv5.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 30u);
  EXPECT_EQ(run.total.counter_samples, 144u);  // sflowtool: COUNTERSSAMPLE 144
  EXPECT_EQ(run.sink.counters.size(), 142u);   // 2 samples carry only host (2000-series) records
  EXPECT_EQ(run.sink.records.size(), 7u);      // the NetFlow v5 datagrams on the sFlow port
  EXPECT_EQ(run.total.errorTotal(), 0u);
  for (const decode::InterfaceCounters& c : run.sink.counters) {
    EXPECT_TRUE(c.has_generic);
    EXPECT_TRUE(c.has_ethernet);
  }
}

TEST(DecodeSflow, CountersProcessorSamplesOnlyInterfacesGoToSink) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-sflow5-counters-processor.pcap", d);
  EXPECT_EQ(run.total.counter_samples, 12u);
  EXPECT_EQ(run.sink.counters.size(), 9u);  // 9 generic-interface samples (sflowtool 0:1 x9)
}

TEST(DecodeSflow, MalformedDatagramDoesNotCrash) {
  decode::Decoder d;
  CaptureRun run = runCapture("tcpdump-sflow5-malformed-segv.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 1u);
  EXPECT_FALSE(run.statuses[0].ok());
  EXPECT_TRUE(run.sink.records.empty());
}

TEST(DecodeSflow, OvsDetectedFromOpenFlowPortCounters) {
  // Synthetic OVS-like datagram: one counter sample with 1004 (OpenFlow port) and 1005 (name),
  // then a flow sample; after the counters, flows use the Linux ifindex numbering.
  std::vector<uint8_t> p;
  auto u32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) {
      p.push_back(static_cast<uint8_t>(v >> s));
    }
  };
  u32(5);
  u32(1);
  u32(0x7f000001);
  u32(0);  // sub-agent
  u32(1);  // seq
  u32(1000);
  u32(2);  // samples
  // counter sample
  u32(2);
  u32(4 * 3 + (8 + 12) + (8 + 12));
  u32(1);     // seq
  u32(9);     // source id: ifindex 9
  u32(2);     // records
  u32(1004);  // OpenFlow port
  u32(12);
  u32(0);
  u32(0x1234);  // dpid
  u32(101);     // port
  u32(1005);    // port name
  u32(12);
  u32(6);
  for (char ch : std::string("h1-ovs\0\0", 8)) {
    p.push_back(static_cast<uint8_t>(ch));
  }
  // flow sample without records
  u32(1);
  u32(4 * 8);
  u32(1);           // seq
  u32(1000);        // source id
  u32(64);          // rate
  u32(100);         // pool
  u32(0);           // drops
  u32(9);           // input
  u32(0x80000002);  // output: multiple (2)
  u32(0);           // records
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("127.0.0.1"), 50000, 1};
  decode::DecodeStatus st = d.decode(p, meta, sink);
  ASSERT_TRUE(st.ok()) << decode::toString(st.error);
  ASSERT_EQ(sink.counters.size(), 1u);
  EXPECT_TRUE(sink.counters[0].has_openflow);
  EXPECT_EQ(sink.counters[0].of_dpid, 0x1234u);
  EXPECT_EQ(sink.counters[0].of_port, 101u);
  EXPECT_EQ(sink.counters[0].portName(), "h1-ovs");
  EXPECT_EQ(sink.counters[0].source_id, 9u);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].if_kind, IfKind::kLinuxIfindex);
  EXPECT_EQ(sink.records[0].in_if, 9u);
  EXPECT_EQ(sink.records[0].out_if, 0u);  // "multiple" is not an ifindex
  EXPECT_EQ(sink.records[0].sampling_rate, 64u);
  EXPECT_EQ(sink.records[0].flags & FlowRecord::kFlagScaledByExporter, 0);
  EXPECT_EQ(d.stats()[0].flavor, decode::ExporterFlavor::kOvs);

  // Datagram sequence per agent/sub-agent: 1 then 5 means 3 datagrams lost.
  p[19] = 5;
  d.decode(p, meta, sink);
  EXPECT_EQ(d.stats()[0].lost_datagrams, 3u);
}

// A flow sample's `drops` is the data source's cumulative count of samples the agent dropped
// for lack of resources: sampler_drops adds its increases per data source (not the first value,
// not a decrease after an agent restart), apart from lost_records (sequence gaps).
TEST(DecodeSflow, SamplerDropsCountIncreasesPerDataSource) {
  auto datagram = [](uint32_t dgram_seq, uint32_t sample_seq, uint32_t source, uint32_t drops) {
    std::vector<uint8_t> p;
    auto u32 = [&](uint32_t v) {
      for (int s = 24; s >= 0; s -= 8) {
        p.push_back(static_cast<uint8_t>(v >> s));
      }
    };
    for (uint32_t v : {5u, 1u, 0x7f000001u, 0u, dgram_seq, 1000u, 1u}) {
      u32(v);  // version, agent type, agent, sub-agent, sequence, uptime, samples
    }
    for (uint32_t v : {1u, 4u * 8, sample_seq, source, 64u, 100u, drops, 1u, 2u, 0u}) {
      u32(v);  // flow sample: format, length, seq, source, rate, pool, drops, in, out, records
    }
    return p;
  };
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("127.0.0.1"), 50000, 1};
  // (datagram seq, sample seq, source, drops) -> running sampler_drops
  const std::vector<std::array<uint32_t, 5>> steps = {
      {1, 1, 7, 5, 0},    // first value: a baseline, not a loss
      {2, 2, 7, 5, 0},    // unchanged
      {3, 3, 7, 12, 7},   // +7
      {4, 1, 8, 100, 7},  // another data source: its own baseline
      {5, 2, 8, 101, 8},  // +1
      {6, 1, 7, 3, 8},    // source 7 restarted (counter went down): new baseline
      {7, 2, 7, 4, 9},    // +1
  };
  for (const auto& [dseq, sseq, src, drops, want] : steps) {
    ASSERT_TRUE(d.decode(datagram(dseq, sseq, src, drops), meta, sink).ok());
    EXPECT_EQ(d.stats()[0].sampler_drops, want) << "datagram " << dseq;
  }
  EXPECT_EQ(d.stats()[0].lost_datagrams, 0u);
  EXPECT_EQ(sink.records.size(), steps.size());
}

// One address sending sFlow and NetFlow v5 (as an Open vSwitch host does): statistics per
// protocol, each with its own datagrams, records and sequence gaps.
TEST(DecodeSflow, StatisticsPerProtocolOfOneAddress) {
  auto sflow = [](uint32_t dgram_seq) {
    std::vector<uint8_t> p;
    auto u32 = [&](uint32_t v) {
      for (int s = 24; s >= 0; s -= 8) {
        p.push_back(static_cast<uint8_t>(v >> s));
      }
    };
    for (uint32_t v : {5u, 1u, 0x7f000001u, 0u, dgram_seq, 1000u, 1u}) {
      u32(v);
    }
    for (uint32_t v : {1u, 4u * 8, dgram_seq, 7u, 64u, 100u, 0u, 1u, 2u, 0u}) {
      u32(v);
    }
    return p;
  };
  auto v5 = [](uint32_t flow_seq) {
    std::vector<uint8_t> p(24 + 48, 0);
    p[1] = 5;  // version
    p[3] = 1;  // count
    p[16] = static_cast<uint8_t>(flow_seq >> 24);
    p[17] = static_cast<uint8_t>(flow_seq >> 16);
    p[18] = static_cast<uint8_t>(flow_seq >> 8);
    p[19] = static_cast<uint8_t>(flow_seq);
    p[24 + 38] = 6;  // proto
    return p;
  };
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("127.0.0.1"), 50000, 1};
  ASSERT_TRUE(d.decode(sflow(1), meta, sink).ok());
  ASSERT_TRUE(d.decode(v5(0), meta, sink).ok());
  ASSERT_TRUE(d.decode(sflow(2), meta, sink).ok());
  ASSERT_TRUE(d.decode(v5(1), meta, sink).ok());
  ASSERT_TRUE(d.decode(v5(11), meta, sink).ok());  // records 2..10 lost
  auto st = d.stats();
  ASSERT_EQ(st.size(), 2u);
  std::sort(st.begin(), st.end(), [](auto& a, auto& b) { return a.last_proto < b.last_proto; });
  EXPECT_EQ(st[0].last_proto, FlowProto::kNetflowV5);
  EXPECT_EQ(st[0].datagrams, 3u);
  EXPECT_EQ(st[0].flow_records, 3u);
  EXPECT_EQ(st[0].lost_records, 9u);
  EXPECT_EQ(st[1].last_proto, FlowProto::kSflowV5);
  EXPECT_EQ(st[1].datagrams, 2u);
  EXPECT_EQ(st[1].flow_records, 2u);
  EXPECT_EQ(st[1].lost_records, 0u);
  EXPECT_EQ(st[1].lost_datagrams, 0u);
  EXPECT_EQ(st[0].exporter, st[1].exporter);
}

TEST(DecodeSflow, HostileSampleCountIsBounded) {
  std::vector<uint8_t> p = {0, 0, 0, 5, 0, 0, 0, 1, 1, 2, 3,    4,    0,    0,
                            0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.7"), 6343, 1};
  EXPECT_EQ(d.decode(p, meta, sink).error, DecodeError::kBadLength);
  // Unknown agent address type.
  std::vector<uint8_t> q = {0, 0, 0, 5, 0, 0, 0, 9, 1, 2, 3, 4};
  EXPECT_EQ(d.decode(q, meta, sink).error, DecodeError::kTruncated);
}

}  // namespace
}  // namespace nc::test
