#include "collector/record/fields.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

namespace nc {
namespace {

FlowRecord sample() {
  FlowRecord r;
  r.first_ns = 1764171454123000000ull;  // 2025-11-26T15:37:34.123Z
  r.last_ns = r.first_ns + 2500000000ull;
  IpAddr::parse("192.0.2.1", r.exporter);
  IpAddr::parse("10.0.0.1", r.src_addr);
  IpAddr::parse("2001:db8::2", r.dst_addr);
  r.src_port = 34567;
  r.dst_port = 443;
  r.proto = 6;
  r.tcp_flags = 0x1b;
  r.tos = 0x10;
  r.packets = 10;
  r.bytes = 15000;
  r.in_if = 101;
  r.out_if = 102;
  r.if_kind = IfKind::kOpenFlowPort;
  r.sampling_rate = 64;
  r.src_as = 64500;
  r.dst_as = 64501;
  IpAddr::parse("10.0.0.254", r.next_hop);
  r.vlan = 42;
  r.src_mac = 0x0a1b2c3d4e5full;
  r.dst_mac = 0xfeedfacecafeull;
  r.flow_proto = FlowProto::kIpfix;
  return r;
}

TEST(Fields, NamesAreUniqueSnakeCaseAndIncludeTheDocumentedSet) {
  std::set<std::string> names;
  for (const auto& f : fields()) {
    EXPECT_TRUE(names.insert(std::string(f.name)).second) << f.name;
    for (char c : f.name) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << f.name;
    }
    EXPECT_FALSE(f.doc.empty()) << f.name;
  }
  for (const char* required :
       {"first",         "last",      "exporter", "src_addr", "dst_addr", "src_port", "dst_port",
        "proto",         "tcp_flags", "tos",      "packets",  "bytes",    "in_if",    "out_if",
        "sampling_rate", "src_as",    "dst_as",   "next_hop", "vlan",     "src_mac",  "dst_mac"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
}

TEST(Fields, JsonValuesAndRoundTrip) {
  FlowRecord r = sample();
  nlohmann::json j = toJson(r);
  EXPECT_EQ(j["first"], "2025-11-26T15:37:34.123Z");
  EXPECT_EQ(j["last"], "2025-11-26T15:37:36.623Z");
  EXPECT_EQ(j["exporter"], "192.0.2.1");
  EXPECT_EQ(j["dst_addr"], "2001:db8::2");
  EXPECT_EQ(j["proto"], 6);
  EXPECT_EQ(j["sampling_rate"], 64);
  EXPECT_EQ(j["src_mac"], "0a:1b:2c:3d:4e:5f");
  EXPECT_EQ(j["if_kind"], "ofport");
  EXPECT_EQ(j["export_proto"], "ipfix");
  EXPECT_FALSE(j.contains("icmp_type"));  // not an ICMP flow
  EXPECT_FALSE(j.contains("direction"));  // unknown values are left out
  FlowRecord echo_reply = r;
  echo_reply.proto = 1;
  EXPECT_EQ(toJson(echo_reply)["icmp_type"], 0);  // type 0 is meaningful for ICMP
  FlowRecord back;
  std::string why;
  ASSERT_TRUE(fromJson(j, back, &why)) << why;
  EXPECT_EQ(toJson(back), j);
  EXPECT_EQ(back.scaledBytes(), 15000u * 64);
}

TEST(Fields, ScaledByExporterIsNotScaledAgain) {
  FlowRecord r = sample();
  r.flags |= FlowRecord::kFlagScaledByExporter;
  EXPECT_EQ(r.scaledPackets(), 10u);
}

TEST(Fields, BadJsonValuesAreRejectedWithTheFieldName) {
  FlowRecord r;
  std::string why;
  EXPECT_FALSE(fromJson(nlohmann::json{{"src_port", 70000}}, r, &why));
  EXPECT_EQ(why, "field 'src_port' has a bad value: 70000");
  EXPECT_FALSE(fromJson(nlohmann::json{{"src_addr", "10.0.0"}}, r, &why));
  EXPECT_FALSE(fromJson(nlohmann::json{{"first", "yesterday"}}, r, &why));
  EXPECT_FALSE(fromJson(nlohmann::json::array(), r, &why));
}

TEST(Fields, TimeParsing) {
  uint64_t ns = 0;
  ASSERT_TRUE(parseTime("2026-11-26T15:37:34.123Z", ns));
  EXPECT_EQ(formatTime(ns), "2026-11-26T15:37:34.123Z");
  ASSERT_TRUE(parseTime("2026-11-26T16:37:34+01:00", ns));
  EXPECT_EQ(formatTime(ns), "2026-11-26T15:37:34.000Z");
  ASSERT_TRUE(parseTime("2026-11-26 15:37:34", ns));
  EXPECT_FALSE(parseTime("2026-11-26", ns));
  EXPECT_FALSE(parseTime("2026-11-26T15:37:34Zjunk", ns));
}

}  // namespace
}  // namespace nc
