// NetFlow v9 on real captures: templates, options templates, padding, data before template,
// per-sampler sampling rates, malformed input, and golden field values (telegraf, NetGauze).
#include <gtest/gtest.h>

#include <map>

#include "tests/unit/decode/capture_util.hpp"

namespace nc::test {
namespace {

using decode::DecodeError;

TEST(DecodeNetflowV9, SoftflowdTemplateAndDataInOneDatagram) {
  decode::Decoder d;
  CaptureRun run = runCapture("softflowd-nfv9-template-and-data.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 1u);
  EXPECT_TRUE(run.statuses[0].ok());
  ASSERT_EQ(run.sink.records.size(), 7u);
  EXPECT_EQ(run.total.templates_known, 2u);
  int v4 = 0;
  int v6 = 0;
  for (const FlowRecord& r : run.sink.records) {
    EXPECT_EQ(r.flow_proto, FlowProto::kNetflowV9);
    EXPECT_EQ(r.if_kind, IfKind::kSnmp);
    (r.ip_version == 4 ? v4 : v6)++;
    EXPECT_EQ(r.ip_version == 4, r.src_addr.isV4());
    EXPECT_GT(r.packets, 0u);
    EXPECT_LE(r.first_ns, r.last_ns);
  }
  EXPECT_GT(v4, 0);
  EXPECT_GT(v6, 0);
}

TEST(DecodeNetflowV9, Cisco1941TemplateAndDataSameDatagram) {
  decode::Decoder d;
  CaptureRun run = runCapture("cisco-1941-nfv9-template-and-data-same-datagram.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 29u);
  EXPECT_EQ(run.total.errorTotal(), 0u);
  size_t with_mac = 0;
  for (const FlowRecord& r : run.sink.records) {
    with_mac += r.src_mac != 0 || r.dst_mac != 0;
  }
  EXPECT_GT(with_mac, 0u);
}

TEST(DecodeNetflowV9, Asr9kOptionsInterfaceTableGivesInterfaceNames) {
  // Options template 256: scope System, INPUT_SNMP (10) + IF_DESC (83); 19 interfaces.
  decode::Decoder d;
  CaptureRun run = runCapture("cisco-asr9k-nfv9-options-interface-table.pcap", d);
  EXPECT_EQ(run.total.errorTotal(), 0u);
  EXPECT_EQ(run.sink.records.size(), 0u);
  EXPECT_EQ(run.total.options_records, 19u);
  ASSERT_EQ(run.sink.names.size(), 19u);
  std::map<uint32_t, std::string> byIndex;
  for (const auto& n : run.sink.names) {
    EXPECT_EQ(n.if_kind, IfKind::kSnmp);
    EXPECT_EQ(n.name.find('\0'), std::string::npos) << "NUL padding must be stripped";
    byIndex[n.if_index] = n.name;
  }
  EXPECT_EQ(byIndex.size(), 19u) << "one name per ifIndex";
  EXPECT_EQ(run.sink.names[0].name, "TenGigE0_0_1_0");
  // Decoding the same table again reports nothing new.
  CaptureRun again = runCapture("cisco-asr9k-nfv9-options-interface-table.pcap", d);
  EXPECT_EQ(again.sink.names.size(), 0u);
}

TEST(DecodeNetflowV9, JuniperSrxZeroScopeLengthOptionsTemplate) {
  decode::Decoder d;
  CaptureRun run = runCapture("juniper-srx-nfv9-options-zero-scope-length.pcap", d);
  EXPECT_TRUE(run.statuses[0].ok());
  EXPECT_EQ(run.total.options_records, 1u);
  EXPECT_EQ(run.total.templates_known, 2u);
  EXPECT_EQ(run.total.errorTotal(), 0u);
}

TEST(DecodeNetflowV9, CiscoAciTrailingZeroPaddingIsNotAnError) {
  decode::Decoder d;
  CaptureRun run = runCapture("cisco-aci-nfv9-trailing-zero-padding.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 3u);
  EXPECT_EQ(run.total.errorTotal(), 0u);
  EXPECT_TRUE(run.statuses[0].ok());
  // Template 256 is the IPv4 one (257/258 are IPv6 and MAC templates, unused by this data).
  EXPECT_EQ(run.sink.records[0].src_addr.toString(), "10.154.231.145");
  EXPECT_EQ(run.sink.records[2].src_addr.toString(), "10.154.230.177");
}

TEST(DecodeNetflowV9, MidstreamDataWithoutTemplateIsCounted) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-nfv9-midstream-no-templates.pcap", d);
  ASSERT_EQ(run.datagrams.size(), 10u);
  EXPECT_TRUE(run.sink.records.empty());
  EXPECT_EQ(errorCount(run.total, DecodeError::kUnknownTemplate), 23u);
  EXPECT_EQ(run.statuses[0].error, DecodeError::kUnknownTemplate);
}

TEST(DecodeNetflowV9, LibnetflowMalformedCountedNotCrashing) {
  for (const char* f : {"libnetflow9-nfv9-malformed-1.pcap", "libnetflow9-nfv9-malformed-2.pcap",
                        "libnetflow9-nfv9-malformed-options-template.pcap"}) {
    SCOPED_TRACE(f);
    decode::Decoder d;
    CaptureRun run = runCapture(f, d);
    ASSERT_FALSE(run.datagrams.empty());
    EXPECT_GT(errorCount(run.total, DecodeError::kBadTemplate), 0u);
    EXPECT_TRUE(run.sink.records.empty());
  }
}

TEST(DecodeNetflowV9, TelegrafExampleMatchesGolden) {
  decode::Decoder d;
  CaptureRun run = runCapture("unknown-nfv9-telegraf-example.pcap", d);
  auto golden = readTelegraf("unknown-nfv9-telegraf-example.telegraf-expected.out");
  ASSERT_EQ(golden.size(), 8u);
  ASSERT_EQ(run.sink.records.size(), golden.size());
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
    EXPECT_EQ(std::to_string(r.first_ns / 1'000'000), g["flow_start_ms"]);
    EXPECT_EQ(std::to_string(r.last_ns / 1'000'000), g["flow_end_ms"]);
    EXPECT_EQ(std::to_string(r.engine_type), g["engine_type"]);
    EXPECT_EQ(std::to_string(r.icmp_type), g["icmp_type"]);
    EXPECT_EQ(std::to_string(r.icmp_code), g["icmp_code"]);
  }
}

TEST(DecodeNetflowV9, Asr9kMatchesNetgauze) {
  decode::Decoder d;
  CaptureRun run = runCapture("cisco-asr9k-nfv9-pmacct101.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 51u);
  EXPECT_EQ(
      expectMatchesNetgauze("cisco-asr9k-nfv9-pmacct101.netgauze-flow.json", run.sink.records),
      51u);
  // The template carries both IPv4 and (zeroed) IPv6 addresses: the family with data wins.
  EXPECT_EQ(run.sink.records[0].ip_version, 4);
}

TEST(DecodeNetflowV9, Ncs55SamplingRatePerSamplerId) {
  decode::Decoder d;
  CaptureRun run = runCapture("cisco-ncs55-nfv9-multiple-sampling-rates.pcap", d);
  ASSERT_EQ(run.sink.records.size(), 12u);
  EXPECT_EQ(run.total.options_records, 2u);
  // Options data: sampler 1 = 1 out of 2000, sampler 2 = 1 out of 4000. tshark shows the data
  // records' samplerId as 2,1,1,... (first record uses sampler 2).
  EXPECT_EQ(run.sink.records[0].sampling_rate, 4000u);
  for (size_t i = 1; i < run.sink.records.size(); ++i) {
    EXPECT_EQ(run.sink.records[i].sampling_rate, 2000u) << i;
  }
  EXPECT_EQ(run.sink.records[0].src_addr.toString(), "ffff::68");
  EXPECT_EQ(run.sink.records[0].packets, 18u);
  EXPECT_EQ(run.sink.records[0].bytes, 1348u);
  EXPECT_EQ(run.sink.records[0].scaledPackets(), 18u * 4000);
}

TEST(DecodeNetflowV9, SequenceGapCountsLostDatagramsPerSourceId) {
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(readUdpCapture((captureDir() / "softflowd-nfv9-template-and-data.pcap").string(), dg,
                             nullptr));
  std::vector<uint8_t> p = dg[0].payload;
  decode::Decoder d;
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.9"), 2055, 1};
  auto setSeq = [&](uint32_t s) {
    p[12] = static_cast<uint8_t>(s >> 24);
    p[13] = static_cast<uint8_t>(s >> 16);
    p[14] = static_cast<uint8_t>(s >> 8);
    p[15] = static_cast<uint8_t>(s);
  };
  for (uint32_t s : {10u, 11u, 15u}) {  // 12, 13, 14 lost
    setSeq(s);
    d.decode(p, meta, sink);
  }
  auto st = sumStats(d);
  EXPECT_EQ(st.lost_datagrams, 3u);
  EXPECT_EQ(st.lost_records, 0u);
}

}  // namespace
}  // namespace nc::test
