// NetFlow v5 on real captures: MikroTik, softflowd, telegraf's example (golden values), and the
// logstash "invalid" datagram whose header count is a lie.
#include <gtest/gtest.h>

#include "tests/unit/decode/capture_util.hpp"

namespace nc::test {
namespace {

using decode::DecodeError;

uint8_t telegrafTcpFlags(const std::string& s) {
  // telegraf prints CEUAPRSF, '.' for a clear bit.
  uint8_t v = 0;
  for (size_t i = 0; i < s.size() && i < 8; ++i) {
    if (s[i] != '.') {
      v |= static_cast<uint8_t>(0x80 >> i);
    }
  }
  return v;
}

uint32_t be32At(const std::vector<uint8_t>& p, size_t off) {
  return (uint32_t{p[off]} << 24) | (uint32_t{p[off + 1]} << 16) | (uint32_t{p[off + 2]} << 8) |
         p[off + 3];
}

TEST(DecodeNetflowV5, MikrotikThirtyRecords) {
  decode::Decoder d;
  CaptureRun run = runCapture("mikrotik-nfv5-30-records.pcap", d);
  ASSERT_TRUE(run.read_ok) << run.why;
  ASSERT_EQ(run.sink.records.size(), 30u);
  EXPECT_TRUE(run.statuses[0].ok());
  EXPECT_EQ(run.statuses[0].records, 30u);
  for (const FlowRecord& r : run.sink.records) {
    EXPECT_EQ(r.flow_proto, FlowProto::kNetflowV5);
    EXPECT_EQ(r.ip_version, 4);
    EXPECT_EQ(r.if_kind, IfKind::kSnmp);
    EXPECT_EQ(r.exporter, ip("192.0.2.1"));
    EXPECT_EQ(r.exporter_port, 4444);
    EXPECT_GE(r.sampling_rate, 1u);
    EXPECT_LE(r.first_ns, r.last_ns);
    EXPECT_GT(r.packets, 0u);
  }
  EXPECT_EQ(run.total.errorTotal(), 0u);
}

TEST(DecodeNetflowV5, SoftflowdTwelveDatagramsNoSequenceGap) {
  decode::Decoder d;
  CaptureRun run = runCapture("softflowd-nfv5-12-datagrams.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 12u);
  EXPECT_EQ(run.sink.records.size(), 30u);
  EXPECT_EQ(run.total.lost_records, 0u);
  EXPECT_EQ(run.total.sequence_resets, 0u);
  EXPECT_EQ(run.total.datagrams, 12u);
}

TEST(DecodeNetflowV5, TelegrafExampleMatchesGolden) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-nfv5-telegraf-example.pcap", d);
  auto golden = readTelegraf("unknown-nfv5-telegraf-example.telegraf-expected.out");
  ASSERT_EQ(golden.size(), 8u);
  ASSERT_EQ(run.sink.records.size(), golden.size());
  const std::vector<uint8_t>& p = run.datagrams[0].payload;
  uint64_t export_ns = uint64_t{be32At(p, 8)} * 1'000'000'000 + be32At(p, 12);
  for (size_t i = 0; i < golden.size(); ++i) {
    const FlowRecord& r = run.sink.records[i];
    auto& g = golden[i];
    SCOPED_TRACE(i);
    EXPECT_EQ(r.src_addr.toString(), g["src"]);
    EXPECT_EQ(r.dst_addr.toString(), g["dst"]);
    EXPECT_EQ(std::to_string(r.src_port), g["src_port"]);
    EXPECT_EQ(std::to_string(r.dst_port), g["dst_port"]);
    EXPECT_EQ(std::to_string(r.bytes), g["in_bytes"]);
    EXPECT_EQ(std::to_string(r.packets), g["in_packets"]);
    EXPECT_EQ(r.tcp_flags, telegrafTcpFlags(g["tcp_flags"]));
    EXPECT_EQ(r.proto, g["protocol"] == "tcp" ? 6 : g["protocol"] == "udp" ? 17 : r.proto);
    EXPECT_EQ(std::to_string(r.engine_type), g["engine_type"]);
    EXPECT_EQ(r.engine_id, 0x56);
    EXPECT_EQ(std::to_string(r.in_if), g["in_snmp"]);
    EXPECT_EQ(std::to_string(r.out_if), g["out_snmp"]);
    EXPECT_EQ(r.next_hop.toString(), g["next_hop"]);
    uint64_t uptime = std::stoull(g["sys_uptime"]);
    uint64_t first = std::stoull(g["first_switched"]);
    uint64_t last = std::stoull(g["last_switched"]);
    EXPECT_EQ(r.first_ns, export_ns - (uptime - first) * 1'000'000);
    EXPECT_EQ(r.last_ns, export_ns - (uptime - last) * 1'000'000);
    EXPECT_EQ(r.sampling_rate, 1u);  // sampling_interval=0
  }
}

TEST(DecodeNetflowV5, BogusHeaderCountDoesNotOverRead) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-nfv5-bogus-count.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 1u);
  EXPECT_EQ(run.sink.records.size(), 30u);
  EXPECT_EQ(run.statuses[0].error, DecodeError::kBadLength);
  EXPECT_EQ(errorCount(run.total, DecodeError::kBadLength), 1u);
}

TEST(DecodeNetflowV5, HeaderSamplingIntervalAndOvsOverride) {
  // Rewrite the MikroTik header: mode 01 (deterministic), interval 100.
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(
      readUdpCapture((captureDir() / "mikrotik-nfv5-30-records.pcap").string(), dg, nullptr));
  std::vector<uint8_t> p = dg[0].payload;
  p[22] = 0x40;
  p[23] = 100;
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.9"), 2055, 1};
  d.setExporterConfig(ip("192.0.2.9"), {decode::ExporterFlavor::kOvs, 0, IfKind::kUnknown});
  ASSERT_TRUE(d.decode(p, meta, sink).ok());
  ASSERT_EQ(sink.records.size(), 30u);
  EXPECT_EQ(sink.records[0].sampling_rate, 100u);
  EXPECT_EQ(sink.records[0].if_kind, IfKind::kOpenFlowPort);
  EXPECT_EQ(sink.records[0].scaledPackets(), sink.records[0].packets * 100);

  // Per-exporter sampling override wins over the header.
  d.setExporterConfig(ip("192.0.2.9"), {decode::ExporterFlavor::kAuto, 7, IfKind::kSnmp});
  sink.records.clear();
  ASSERT_TRUE(d.decode(p, meta, sink).ok());
  EXPECT_EQ(sink.records[0].sampling_rate, 7u);
  EXPECT_EQ(sink.records[0].if_kind, IfKind::kSnmp);
}

TEST(DecodeNetflowV5, SequenceGapCountsLostRecords) {
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(
      readUdpCapture((captureDir() / "mikrotik-nfv5-30-records.pcap").string(), dg, nullptr));
  std::vector<uint8_t> p = dg[0].payload;
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.9"), 2055, 1};
  auto setSeq = [&](uint32_t s) {
    p[16] = static_cast<uint8_t>(s >> 24);
    p[17] = static_cast<uint8_t>(s >> 16);
    p[18] = static_cast<uint8_t>(s >> 8);
    p[19] = static_cast<uint8_t>(s);
  };
  setSeq(1000);
  d.decode(p, meta, sink);
  setSeq(1030);  // in order: 1000 + 30 records
  d.decode(p, meta, sink);
  setSeq(1100);  // 40 records missing
  d.decode(p, meta, sink);
  auto s = sumStats(d);
  EXPECT_EQ(s.lost_records, 40u);
  EXPECT_EQ(s.lost_datagrams, 0u);
}

// Open vSwitch writes the number of a datagram's LAST flow into flow_seq (ofproto/netflow.c sets
// it for every record it adds). For an exporter known to be OVS the header is read that way:
// datagrams of 30, 5 and 12 flows numbered consecutively are no loss, 7 skipped flows are.
TEST(DecodeNetflowV5, OvsSequenceIsTheLastFlowsNumber) {
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(
      readUdpCapture((captureDir() / "mikrotik-nfv5-30-records.pcap").string(), dg, nullptr));
  auto datagram = [&](uint16_t count, uint32_t last_seq) {
    std::vector<uint8_t> p(dg[0].payload.begin(), dg[0].payload.begin() + 24 + 48 * count);
    p[2] = static_cast<uint8_t>(count >> 8);
    p[3] = static_cast<uint8_t>(count);
    p[16] = static_cast<uint8_t>(last_seq >> 24);
    p[17] = static_cast<uint8_t>(last_seq >> 16);
    p[18] = static_cast<uint8_t>(last_seq >> 8);
    p[19] = static_cast<uint8_t>(last_seq);
    return p;
  };
  for (bool ovs : {true, false}) {
    decode::Decoder d;
    if (ovs) {
      d.setExporterConfig(ip("192.0.2.9"),
                          {decode::ExporterFlavor::kOvs, 0, IfKind::kOpenFlowPort});
    }
    CollectingSink sink;
    decode::DatagramMeta meta{ip("192.0.2.9"), 2055, 1};
    ASSERT_TRUE(d.decode(datagram(30, 29), meta, sink).ok());  // flows 0..29
    ASSERT_TRUE(d.decode(datagram(5, 34), meta, sink).ok());   // 30..34
    ASSERT_TRUE(d.decode(datagram(12, 46), meta, sink).ok());  // 35..46
    auto s = sumStats(d);
    if (ovs) {
      EXPECT_EQ(s.lost_records, 0u);
      EXPECT_EQ(s.sequence_resets, 0u);
      ASSERT_TRUE(d.decode(datagram(3, 56), meta, sink).ok());  // 54..56: 47..53 lost
      EXPECT_EQ(sumStats(d).lost_records, 7u);
    } else {
      // Read the standard way (flow_seq = flows before the datagram) these headers are wrong.
      EXPECT_GT(s.lost_records + s.sequence_resets, 0u);
    }
  }
}

TEST(DecodeNetflowV5, TruncatedHeaderAndBadVersion) {
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.9"), 2055, 1};
  std::vector<uint8_t> shortv5 = {0, 5, 0, 1, 0, 0};
  EXPECT_EQ(d.decode(shortv5, meta, sink).error, DecodeError::kTruncated);
  std::vector<uint8_t> v7 = {0, 7, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(d.decode(v7, meta, sink).error, DecodeError::kBadVersion);
  std::vector<uint8_t> empty;
  EXPECT_EQ(d.decode(empty, meta, sink).error, DecodeError::kTruncated);
  EXPECT_TRUE(sink.records.empty());
  EXPECT_EQ(decode::toString(DecodeError::kBadVersion), "bad_version");
}

}  // namespace
}  // namespace nc::test
