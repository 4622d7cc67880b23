// IPFIX on real captures (softflowd, IXIA, Nokia, VMware, ipfixcol2, Cisco ASR 9000) and on
// synthetic messages shaped like Open vSwitch's (duplicated interfaceName, delta timestamps,
// VMware PEN 6876 elements), plus template withdrawal.
#include <gtest/gtest.h>

#include <set>

#include "collector/record/fields.hpp"
#include "tests/unit/decode/capture_util.hpp"
#include "tests/unit/decode/ipfix_builder.hpp"

namespace nc::test {
namespace {

using decode::DecodeError;

TEST(DecodeIpfix, SoftflowdThreeMessages) {
  decode::Decoder d;
  CaptureRun run = runCapture("softflowd-ipfix-3-messages.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 3u);
  ASSERT_EQ(run.sink.records.size(), 12u);
  EXPECT_EQ(run.total.options_records, 1u);
  EXPECT_EQ(run.total.errorTotal(), 0u);
  const FlowRecord& r = run.sink.records[0];
  EXPECT_EQ(r.flow_proto, FlowProto::kIpfix);
  EXPECT_EQ(r.src_addr.toString(), "192.168.253.1");
  EXPECT_EQ(r.dst_addr.toString(), "192.168.253.128");
  EXPECT_EQ(r.src_port, 60560);
  EXPECT_EQ(r.dst_port, 22);
  EXPECT_EQ(r.proto, 6);
  EXPECT_EQ(r.bytes, 260u);
  EXPECT_EQ(r.packets, 5u);
  // 21/22 are sysUpTime-relative: end - start must be the 12.726 s tshark shows.
  EXPECT_EQ(r.last_ns - r.first_ns, 12'726'000'000u);
}

TEST(DecodeIpfix, IxiaVariableLengthFieldsAndTemplateInSameMessage) {
  decode::Decoder d;
  CaptureRun run = runCapture("ixia-ipfix-biflow-varlen-tpl256.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 1u);
  EXPECT_TRUE(run.statuses[0].ok());
  const FlowRecord& r = run.sink.records[0];
  EXPECT_EQ(r.src_addr.toString(), "119.103.128.175");
  EXPECT_EQ(r.dst_addr.toString(), "202.170.60.247");
  EXPECT_EQ(r.src_port, 51695);
  EXPECT_EQ(r.dst_port, 36197);
  EXPECT_EQ(r.proto, 17);
  EXPECT_EQ(r.bytes, 360u);
  EXPECT_EQ(r.packets, 4u);
  EXPECT_EQ(r.in_if, 1u);
  EXPECT_EQ(r.out_if, 1u);
  uint64_t start = 0;
  uint64_t end = 0;
  ASSERT_TRUE(parseTime("2018-10-25T12:24:19.882Z", start));
  ASSERT_TRUE(parseTime("2018-10-25T12:24:32.022Z", end));
  EXPECT_EQ(r.first_ns, start);
  EXPECT_EQ(r.last_ns, end);
}

TEST(DecodeIpfix, NokiaVariableLengthEnterpriseElements) {
  decode::Decoder d;
  CaptureRun run = runCapture("nokia-bras-ipfix-varlen-pen637.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 1u);
  EXPECT_EQ(run.total.errorTotal(), 0u);
  const FlowRecord& r = run.sink.records[0];
  EXPECT_EQ(r.src_addr.toString(), "10.0.1.228");
  EXPECT_EQ(r.dst_addr.toString(), "10.0.0.34");
  EXPECT_EQ(r.src_port, 5878);
  EXPECT_EQ(r.dst_port, 80);
  EXPECT_EQ(r.proto, 6);
  uint64_t start = 0;
  ASSERT_TRUE(parseTime("2017-12-14T07:23:45.148Z", start));
  EXPECT_EQ(r.first_ns, start);
}

TEST(DecodeIpfix, VmwarePen6876Elements) {
  decode::Decoder d;
  CaptureRun run = runCapture("vmware-vds-ipfix-pen6876.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 5u);
  EXPECT_EQ(run.total.templates_known, 13u);
  EXPECT_EQ(run.total.errorTotal(), 0u);
  const FlowRecord& r = run.sink.records[0];
  EXPECT_EQ(r.src_addr.toString(), "172.18.65.21");
  EXPECT_EQ(r.dst_addr.toString(), "172.18.65.211");
  EXPECT_EQ(r.bytes, 100u);
  EXPECT_EQ(r.packets, 2u);
  EXPECT_EQ(r.src_port, 61209);
  EXPECT_EQ(r.dst_port, 5985);
  EXPECT_EQ(r.in_if, 3u);
  EXPECT_EQ(r.out_if, 11u);
  EXPECT_EQ(r.direction, 1);
  // VMware's PEN 6876 is the one OVS uses, but the template layout is not OVS's.
  EXPECT_EQ(r.if_kind, IfKind::kSnmp);
  EXPECT_EQ(r.flags & FlowRecord::kFlagScaledByExporter, 0);
}

TEST(DecodeIpfix, Ipfixcol2ExactRecordCount) {
  decode::Decoder d;
  CaptureRun run = runCapture("ipfixcol2-ipfix-file-3979-records.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 68u);
  EXPECT_EQ(run.sink.records.size(), 3979u);
  EXPECT_EQ(run.total.flow_records, 3979u);
  EXPECT_EQ(run.total.errorTotal(), 0u);
  // Batches are bounded by DecoderOptions::batch_records.
  EXPECT_GE(run.sink.batches, 3979u / 256);
}

TEST(DecodeIpfix, Asr9kTwoDomainsMatchNetgauze) {
  decode::Decoder d;
  CaptureRun run = runCapture("cisco-asr9k-ipfix-two-domains-pmacct100.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 12u);
  EXPECT_EQ(expectMatchesNetgauze("cisco-asr9k-ipfix-two-domains-pmacct100.netgauze-flow.json",
                                  run.sink.records),
            12u);
  std::set<uint32_t> domains;
  for (const FlowRecord& r : run.sink.records) {
    domains.insert(r.observation_domain);
  }
  EXPECT_EQ(domains.size(), 2u);
  EXPECT_EQ(run.total.templates_known, 2u);
  EXPECT_EQ(run.total.lost_records, 0u);
}

// --- synthetic Open vSwitch-shaped messages -----------------------------------------------------

constexpr uint32_t kExport = 1700000000;

std::vector<uint8_t> ovsTemplateMessage(uint32_t seq) {
  IpfixBuilder b(kExport, seq, 7);
  b.beginSet(2);
  b.templateRecord(300, {{138, 4},
                         {61, 1},
                         {10, 4},
                         {82, 0xffff},
                         {14, 4},
                         {82, 0xffff},  // OVS sends interfaceName twice in egress templates
                         {56, 6},
                         {80, 6},
                         {256, 2},
                         {60, 1},
                         {4, 1},
                         {8, 4},
                         {12, 4},
                         {176, 1},
                         {177, 1},
                         {891, 1, 6876},       // VMware tunnelType
                         {892, 0xffff, 6876},  // VMware tunnelKey (variable length)
                         {158, 4},
                         {159, 4},
                         {2, 8},
                         {86, 8},
                         {1, 8},
                         {85, 8},
                         {136, 1}});
  b.endSet();
  return b.finish();
}

std::vector<uint8_t> ovsDataMessage(uint32_t seq, int records) {
  IpfixBuilder b(kExport, seq, 7);
  b.beginSet(300);
  for (int i = 0; i < records; ++i) {
    b.u32(0);  // observationPointId
    b.u8(1);   // egress
    b.u32(9);  // ingressInterface
    b.str("h1-ovs");
    b.u32(10);  // egressInterface
    b.str("h2-ovs-with-a-longer-name");
    b.bytes({0x00, 0x53, 0x00, 0x00, 0x00, 0x01});
    b.bytes({0x00, 0x53, 0x00, 0x00, 0x00, 0x02});
    b.u16(0x0800);
    b.u8(4);
    b.u8(1);  // ICMP
    b.u32(0x0a000001);
    b.u32(0x0a000002);
    b.u8(8);  // echo request
    b.u8(0);
    b.u8(2);                 // tunnelType
    b.bytes({3, 0, 0, 42});  // tunnelKey: length 3 + bytes
    b.u32(2'500'000);        // started 2.5 s before export
    b.u32(500'000);          // ended 0.5 s before export
    b.u64(3);                // packetDeltaCount
    b.u64(1000);             // packetTotalCount
    b.u64(252);              // octetDeltaCount
    b.u64(84000);
    b.u8(2);  // active timeout
  }
  b.endSet();
  return b.finish();
}

TEST(DecodeIpfix, OvsLayoutIsDetectedAndDecoded) {
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("127.0.0.1"), 40000, uint64_t{kExport} * 1'000'000'000};
  ASSERT_TRUE(d.decode(ovsTemplateMessage(0), meta, sink).ok());
  decode::DecodeStatus st = d.decode(ovsDataMessage(0, 2), meta, sink);
  ASSERT_TRUE(st.ok()) << decode::toString(st.error);
  ASSERT_EQ(sink.records.size(), 2u);
  const FlowRecord& r = sink.records[1];
  EXPECT_EQ(r.direction, 1);
  EXPECT_EQ(r.in_if, 9u);
  EXPECT_EQ(r.out_if, 10u);
  EXPECT_EQ(r.if_kind, IfKind::kLinuxIfindex);
  EXPECT_TRUE(r.flags & FlowRecord::kFlagScaledByExporter);
  EXPECT_EQ(r.src_mac, 0x005300000001u);
  EXPECT_EQ(r.dst_mac, 0x005300000002u);
  EXPECT_EQ(r.src_addr.toString(), "10.0.0.1");
  EXPECT_EQ(r.dst_addr.toString(), "10.0.0.2");
  EXPECT_EQ(r.proto, 1);
  EXPECT_EQ(r.icmp_type, 8);
  EXPECT_EQ(r.icmp_code, 0);
  EXPECT_EQ(r.flags & FlowRecord::kFlagIcmpFromPort, 0);
  EXPECT_EQ(r.packets, 3u);  // delta wins over total
  EXPECT_EQ(r.bytes, 252u);
  EXPECT_EQ(r.scaledPackets(), 3u);
  EXPECT_EQ(r.flow_end_reason, 2);
  EXPECT_EQ(r.observation_domain, 7u);
  EXPECT_EQ(r.first_ns, uint64_t{kExport} * 1'000'000'000 - 2'500'000'000);
  EXPECT_EQ(r.last_ns, uint64_t{kExport} * 1'000'000'000 - 500'000'000);
  auto stats = d.stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].flavor, decode::ExporterFlavor::kOvs);
  // IPFIX sequence counts data records: 2 records sent, next message should say 2.
  d.decode(ovsDataMessage(2, 1), meta, sink);
  d.decode(ovsDataMessage(10, 1), meta, sink);  // 7 records lost (3..9)
  EXPECT_EQ(d.stats()[0].lost_records, 7u);
}

TEST(DecodeIpfix, OvsInterfaceNamesFollowTheirInterfaceField) {
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("127.0.0.1"), 40000, uint64_t{kExport} * 1'000'000'000};
  ASSERT_TRUE(d.decode(ovsTemplateMessage(0), meta, sink).ok());
  ASSERT_TRUE(d.decode(ovsDataMessage(0, 3), meta, sink).ok());
  ASSERT_TRUE(d.decode(ovsDataMessage(3, 2), meta, sink).ok());
  EXPECT_EQ(sink.records.size(), 5u);
  // The first interfaceName follows ingressInterface 9, the second egressInterface 10; each is
  // reported once, not per record.
  ASSERT_EQ(sink.names.size(), 2u);
  EXPECT_EQ(sink.names[0].if_index, 9u);
  EXPECT_EQ(sink.names[0].name, "h1-ovs");
  EXPECT_EQ(sink.names[0].if_kind, IfKind::kLinuxIfindex);
  EXPECT_EQ(sink.names[0].domain, 7u);
  EXPECT_EQ(sink.names[1].if_index, 10u);
  EXPECT_EQ(sink.names[1].name, "h2-ovs-with-a-longer-name");
  EXPECT_EQ(sink.names[1].exporter, ip("127.0.0.1"));
}

TEST(DecodeIpfix, RouterFlavorOverrideKeepsSnmpAndUnscaled) {
  decode::Decoder d;
  d.setExporterConfig(ip("127.0.0.1"), {decode::ExporterFlavor::kRouter, 0, IfKind::kUnknown});
  CollectingSink sink;
  decode::DatagramMeta meta{ip("127.0.0.1"), 40000, uint64_t{kExport} * 1'000'000'000};
  d.decode(ovsTemplateMessage(0), meta, sink);
  d.decode(ovsDataMessage(0, 1), meta, sink);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].if_kind, IfKind::kSnmp);
  EXPECT_EQ(sink.records[0].flags & FlowRecord::kFlagScaledByExporter, 0);
}

TEST(DecodeIpfix, TemplateWithdrawalAndWithdrawAll) {
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("127.0.0.1"), 40000, uint64_t{kExport} * 1'000'000'000};
  d.decode(ovsTemplateMessage(0), meta, sink);
  EXPECT_EQ(d.templateCount(), 1u);
  {
    IpfixBuilder b(kExport, 0, 7);
    b.beginSet(2);
    b.u16(300);  // withdraw template 300
    b.u16(0);
    b.endSet();
    ASSERT_TRUE(d.decode(b.finish(), meta, sink).ok());
  }
  EXPECT_EQ(d.templateCount(), 0u);
  EXPECT_EQ(d.decode(ovsDataMessage(0, 1), meta, sink).error, DecodeError::kUnknownTemplate);

  d.decode(ovsTemplateMessage(0), meta, sink);
  {
    IpfixBuilder b(kExport, 0, 7);
    b.beginSet(2);
    b.u16(2);  // withdraw all data templates of the domain
    b.u16(0);
    b.endSet();
    ASSERT_TRUE(d.decode(b.finish(), meta, sink).ok());
  }
  EXPECT_EQ(d.templateCount(), 0u);
  EXPECT_EQ(d.stats()[0].templates_withdrawn, 2u);
}

TEST(DecodeIpfix, HostileTemplatesAreRejectedAndCounted) {
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.5"), 4739, 1};
  // Field count far beyond what the set holds.
  {
    IpfixBuilder b(kExport, 0, 1);
    b.beginSet(2);
    b.u16(400);
    b.u16(65535);
    b.u16(1);
    b.u16(4);
    b.endSet();
    EXPECT_EQ(d.decode(b.finish(), meta, sink).error, DecodeError::kBadTemplate);
  }
  // Every field of length 0: records of 0 bytes would loop forever.
  {
    IpfixBuilder b(kExport, 0, 1);
    b.beginSet(2);
    b.templateRecord(401, {{1, 0}, {2, 0}});
    b.endSet();
    EXPECT_EQ(d.decode(b.finish(), meta, sink).error, DecodeError::kBadTemplate);
  }
  // Too many fields for the configured limit (256).
  {
    IpfixBuilder b(kExport, 0, 1);
    b.beginSet(2);
    std::vector<IpfixBuilder::Field> many(300, {1, 1});
    b.templateRecord(402, many);
    b.endSet();
    EXPECT_EQ(d.decode(b.finish(), meta, sink).error, DecodeError::kBadTemplate);
  }
  // Template id below 256.
  {
    IpfixBuilder b(kExport, 0, 1);
    b.beginSet(2);
    b.templateRecord(12, {{1, 4}});
    b.endSet();
    EXPECT_EQ(d.decode(b.finish(), meta, sink).error, DecodeError::kBadTemplate);
  }
  // Zero-length set and reserved set id.
  {
    IpfixBuilder b(kExport, 0, 1);
    b.u16(256);
    b.u16(0);
    EXPECT_EQ(d.decode(b.finish(), meta, sink).error, DecodeError::kBadLength);
  }
  {
    IpfixBuilder b(kExport, 0, 1);
    b.beginSet(5);
    b.u32(0);
    b.endSet();
    EXPECT_EQ(d.decode(b.finish(), meta, sink).error, DecodeError::kBadSet);
  }
  EXPECT_EQ(d.templateCount(), 0u);
  auto s = sumStats(d);
  EXPECT_EQ(errorCount(s, DecodeError::kBadTemplate), 4u);
}

TEST(DecodeIpfix, SamplingFromOptionsDataBySelectorId) {
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.6"), 4739, 1};
  IpfixBuilder b(kExport, 0, 3);
  b.beginSet(3);  // options template 500: scope selectorId (302), samplingPacketInterval/Space
  b.optionsTemplateRecord(500, 1, {{302, 4}, {305, 4}, {306, 4}});
  b.endSet();
  b.beginSet(2);
  b.templateRecord(501, {{8, 4}, {12, 4}, {302, 4}, {2, 4}});
  b.endSet();
  b.beginSet(500);
  b.u32(9);  // selector 9: 1 packet in every 1 + 999
  b.u32(1);
  b.u32(999);
  b.endSet();
  b.beginSet(501);
  b.u32(0x0a000001);
  b.u32(0x0a000002);
  b.u32(9);
  b.u32(5);
  b.u32(0x0a000003);
  b.u32(0x0a000004);
  b.u32(77);  // unknown selector: unsampled
  b.u32(6);
  b.endSet();
  ASSERT_TRUE(d.decode(b.finish(), meta, sink).ok());
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].sampling_rate, 1000u);
  EXPECT_EQ(sink.records[0].scaledPackets(), 5000u);
  EXPECT_EQ(sink.records[1].sampling_rate, 1u);
  EXPECT_EQ(d.stats()[0].options_records, 1u);
}

}  // namespace
}  // namespace nc::test
