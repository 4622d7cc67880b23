// Template cache: persistence round trip (save, new Decoder, load, decode data-only datagrams),
// corrupt files, limits, expiry, exporter limit, and the ByteReader underneath.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "collector/decode/byte_reader.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/decode/capture_util.hpp"

namespace nc::test {
namespace {

using decode::DecodeError;

size_t decodeRange(decode::Decoder& d, const std::vector<UdpDatagram>& dg, size_t from,
                   CollectingSink& sink) {
  for (size_t i = from; i < dg.size(); ++i) {
    decode::DatagramMeta meta{dg[i].src, dg[i].src_port, dg[i].ts_ns};
    d.decode(dg[i].payload, meta, sink);
  }
  return sink.records.size();
}

TEST(DecodeTemplatePersistence, RoundTripDecodesDataOnlyDatagramsAtOnce) {
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(readUdpCapture((captureDir() / "ipfixcol2-ipfix-file-3979-records.pcap").string(), dg,
                             nullptr));
  ASSERT_EQ(dg.size(), 68u);
  TempDir dir("nc-decode-tpl");
  std::string path = (dir.path() / "templates.bin").string();

  // Reference: one decoder that saw everything.
  decode::Decoder first;
  CollectingSink all;
  decodeRange(first, dg, 0, all);
  ASSERT_EQ(all.records.size(), 3979u);
  std::string why;
  ASSERT_TRUE(first.saveTemplates(path, &why)) << why;
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename(), "templates.bin");  // no temporary left behind
  }

  // Without the saved templates, a restarted decoder cannot decode the data-only datagrams.
  decode::Decoder cold;
  CollectingSink cold_sink;
  size_t first_dg_records = 0;
  {
    decode::Decoder probe;
    CollectingSink s;
    decode::DatagramMeta meta{dg[0].src, dg[0].src_port, dg[0].ts_ns};
    probe.decode(dg[0].payload, meta, s);
    first_dg_records = s.records.size();
  }
  decodeRange(cold, dg, 1, cold_sink);
  EXPECT_LT(cold_sink.records.size(), 3979u - first_dg_records);
  EXPECT_GT(errorCount(sumStats(cold), DecodeError::kUnknownTemplate), 0u);

  // With them, it decodes exactly what the reference did.
  decode::Decoder warm;
  ASSERT_TRUE(warm.loadTemplates(path, &why)) << why;
  EXPECT_EQ(warm.templateCount(), first.templateCount());
  CollectingSink warm_sink;
  decodeRange(warm, dg, 1, warm_sink);
  ASSERT_EQ(warm_sink.records.size(), 3979u - first_dg_records);
  EXPECT_EQ(errorCount(sumStats(warm), DecodeError::kUnknownTemplate), 0u);
  for (size_t i = 0; i < warm_sink.records.size(); ++i) {
    const FlowRecord& a = all.records[first_dg_records + i];
    const FlowRecord& b = warm_sink.records[i];
    ASSERT_EQ(std::memcmp(&a, &b, sizeof(FlowRecord)), 0) << i;
  }
}

TEST(DecodeTemplatePersistence, OvsDetectionSurvivesRestart) {
  // IPFIX template with OVS's leading observationPointId + flowDirection, then one data record.
  std::vector<uint8_t> tpl = {0, 10, 0, 0,  0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0,  0, 0, 0, 0,  0, 2,
                              0, 20, 1, 44, 0,    3,    0,    138,  0, 4, 0, 61, 0, 1, 0, 10, 0, 4};
  tpl[3] = static_cast<uint8_t>(tpl.size());
  std::vector<uint8_t> data = {0, 10, 0,  0, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 0, 0, 0, 0,
                               0, 1,  44, 0, 13,   0,    0,    0,    0, 1, 0, 0, 0, 9};
  data[3] = static_cast<uint8_t>(data.size());
  TempDir dir("nc-decode-ovs");
  std::string path = (dir.path() / "t.bin").string();
  decode::DatagramMeta meta{ip("127.0.0.1"), 4739, 1'700'000'000'000'000'000};
  {
    decode::Decoder d;
    CollectingSink sink;
    ASSERT_TRUE(d.decode(tpl, meta, sink).ok());
    ASSERT_TRUE(d.saveTemplates(path));
  }
  decode::Decoder d;
  ASSERT_TRUE(d.loadTemplates(path));
  CollectingSink sink;
  ASSERT_TRUE(d.decode(data, meta, sink).ok());
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].in_if, 9u);
  EXPECT_EQ(sink.records[0].direction, 1);
  EXPECT_EQ(sink.records[0].if_kind, IfKind::kLinuxIfindex);
  EXPECT_TRUE(sink.records[0].flags & FlowRecord::kFlagScaledByExporter);
}

TEST(DecodeTemplatePersistence, CorruptOrMissingFilesLoadNothing) {
  TempDir dir("nc-decode-bad");
  std::string path = (dir.path() / "t.bin").string();
  decode::Decoder d;
  std::string why;
  EXPECT_FALSE(d.loadTemplates(path, &why));
  EXPECT_FALSE(why.empty());

  decode::Decoder src;
  CaptureRun run = runCapture("softflowd-nfv9-template-and-data.pcap", src);
  ASSERT_TRUE(src.saveTemplates(path));
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_GT(bytes.size(), 40u);
  bytes[30] ^= 0x5a;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  EXPECT_FALSE(d.loadTemplates(path, &why));
  EXPECT_NE(why.find("checksum"), std::string::npos) << why;
  EXPECT_EQ(d.templateCount(), 0u);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "garbage that is not a template file";
  }
  EXPECT_FALSE(d.loadTemplates(path, &why));
  EXPECT_EQ(d.templateCount(), 0u);
}

TEST(DecodeTemplateCache, PerExporterLimitIsCounted) {
  decode::DecoderOptions opt;
  opt.max_templates_per_exporter = 1;
  decode::Decoder d(opt);
  CaptureRun run = runCapture("softflowd-nfv9-template-and-data.pcap", d);
  EXPECT_EQ(d.templateCount(), 1u);
  EXPECT_EQ(errorCount(run.total, DecodeError::kTemplateLimit), 1u);
  EXPECT_GT(errorCount(run.total, DecodeError::kUnknownTemplate), 0u);
  EXPECT_LT(run.sink.records.size(), 7u);
}

TEST(DecodeTemplateCache, TotalLimitIsCounted) {
  decode::DecoderOptions opt;
  opt.max_templates_total = 10;
  decode::Decoder d(opt);
  CaptureRun run = runCapture("cisco-asa-nfv9-nsel.pcap", d);  // 13 templates
  EXPECT_EQ(d.templateCount(), 10u);
  EXPECT_EQ(errorCount(run.total, DecodeError::kTemplateLimit), 3u);
}

TEST(DecodeTemplateCache, TemplatesExpireOnTheirOwnRefreshTime) {
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(readUdpCapture((captureDir() / "softflowd-nfv9-template-and-data.pcap").string(), dg,
                             nullptr));
  decode::DecoderOptions opt;
  opt.template_timeout_ns = 10'000'000'000;  // 10 s
  decode::Decoder d(opt);
  CollectingSink sink;
  decode::DatagramMeta meta{ip("192.0.2.1"), 4444, 1'000'000'000'000};
  ASSERT_TRUE(d.decode(dg[0].payload, meta, sink).ok());
  EXPECT_EQ(d.templateCount(), 2u);
  EXPECT_EQ(d.expireTemplates(meta.received_ns + 5'000'000'000), 0u);
  EXPECT_EQ(d.expireTemplates(meta.received_ns + 11'000'000'000), 2u);
  EXPECT_EQ(d.templateCount(), 0u);
  EXPECT_EQ(d.stats()[0].templates_expired, 2u);
  EXPECT_EQ(d.stats()[0].templates_known, 0u);
  // Re-learnt from the next datagram (template + data in the same datagram).
  meta.received_ns += 20'000'000'000;
  sink.records.clear();
  ASSERT_TRUE(d.decode(dg[0].payload, meta, sink).ok());
  EXPECT_EQ(sink.records.size(), 7u);
  EXPECT_EQ(d.templateCount(), 2u);
}

TEST(DecodeTemplateCache, ExporterLimit) {
  decode::DecoderOptions opt;
  opt.max_exporters = 1;
  decode::Decoder d(opt);
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(
      readUdpCapture((captureDir() / "mikrotik-nfv5-30-records.pcap").string(), dg, nullptr));
  CollectingSink sink;
  EXPECT_TRUE(d.decode(dg[0].payload, {ip("192.0.2.1"), 1, 1}, sink).ok());
  EXPECT_EQ(d.decode(dg[0].payload, {ip("192.0.2.2"), 1, 1}, sink).error,
            DecodeError::kExporterLimit);
  EXPECT_EQ(d.stats().size(), 1u);
}

TEST(DecodeTemplateCache, KeyIncludesDomainAndExporter) {
  // The same v9 datagram from another exporter address must not find the first one's templates.
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(readUdpCapture(
      (captureDir() / "cisco-ncs55-nfv9-multiple-sampling-rates.pcap").string(), dg, nullptr));
  ASSERT_EQ(dg.size(), 4u);
  decode::Decoder d;
  CollectingSink sink;
  for (size_t i = 0; i < 3; ++i) {
    d.decode(dg[i].payload, {ip("192.0.2.1"), 1, dg[i].ts_ns}, sink);
  }
  EXPECT_EQ(d.decode(dg[3].payload, {ip("192.0.2.99"), 1, dg[3].ts_ns}, sink).error,
            DecodeError::kUnknownTemplate);
  EXPECT_TRUE(d.decode(dg[3].payload, {ip("192.0.2.1"), 1, dg[3].ts_ns}, sink).ok());
}

TEST(DecodeByteReader, StickyErrorAndBigEndian) {
  const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
  decode::ByteReader r(data, sizeof(data));
  EXPECT_EQ(r.u16(), 0x0102);
  EXPECT_EQ(r.u32(), 0x03040506u);
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(r.u32(), 0u);  // past the end
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.u8(), 0);  // sticky
  EXPECT_EQ(decode::loadBeN(data, 3), 0x010203u);
  EXPECT_EQ(decode::loadBeN(data, 9), 0x0203040506070809u);
  decode::ByteReader s(data, sizeof(data));
  decode::ByteReader sub = s.sub(4);
  EXPECT_EQ(sub.u32(), 0x01020304u);
  EXPECT_TRUE(sub.empty());
  EXPECT_FALSE(s.sub(100).ok());
}

}  // namespace
}  // namespace nc::test
