// Event: JSON field names, round trip, rejection of bad records, formatLine.
#include <gtest/gtest.h>

#include "collector/events/events.hpp"
#include "collector/record/fields.hpp"
#include "tests/unit/events/sample_event.hpp"

namespace nc::events {
namespace {

using nlohmann::json;

TEST(EventJson, JsonHasExactlyTheDocumentedFieldNames) {
  json j = toJson(sampleEvent());
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) {
    keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"baseline", "detector", "direction", "end", "exporters",
                                            "id", "metric", "netlink", "observed", "ratio", "start",
                                            "subject", "top"}));
  std::vector<std::string> sub;
  for (const auto& [k, v] : j["subject"].items()) {
    sub.push_back(k);
  }
  std::sort(sub.begin(), sub.end());
  EXPECT_EQ(sub, (std::vector<std::string>{"bridge", "external_ids", "ifindex", "kind", "mac",
                                           "name", "ofport", "vm"}));
  EXPECT_EQ(j["netlink"].size(), 4u);
  EXPECT_TRUE(j["netlink"].contains("operstate"));
  EXPECT_TRUE(j["netlink"].contains("mtu"));
  EXPECT_TRUE(j["netlink"].contains("addresses"));
  EXPECT_EQ(j["netlink"]["changes"][0]["what"], "carrier up");
  EXPECT_EQ(j["netlink"]["changes"][0]["time"], "2026-12-07T17:27:20.000Z");
  EXPECT_EQ(j["top"][0].size(), 4u);
  EXPECT_EQ(j["top"][0]["key"], "10.77.0.1 -> 10.77.0.2 TCP 5201");
  EXPECT_EQ(j["top"][0]["bytes"], 46500000u);
  EXPECT_EQ(j["top"][0]["packets"], 31000u);
  EXPECT_DOUBLE_EQ(j["top"][0]["share"].get<double>(), 0.93);

  EXPECT_EQ(j["id"], "20261207T172731Z-000042");
  EXPECT_EQ(j["start"], "2026-12-07T17:27:31.000Z");
  EXPECT_TRUE(j["end"].is_null());
  EXPECT_EQ(j["subject"]["kind"], "port");
  EXPECT_EQ(j["subject"]["ofport"], 101);
  EXPECT_EQ(j["subject"]["external_ids"]["vm-id"], "6f1c2a");
  EXPECT_EQ(j["direction"], "in");
  EXPECT_EQ(j["metric"], "bytes");
  EXPECT_DOUBLE_EQ(j["observed"].get<double>(), 1550000.0);
  EXPECT_EQ(j["exporters"], json::array({"127.0.0.1"}));
  EXPECT_EQ(j["detector"]["k"], 5);
}

TEST(EventJson, RoundTripsExactly) {
  Event e = sampleEvent();
  e.end_ns = e.start_ns + 42'123'000'000ULL;
  e.observed = 1.0 / 3.0;  // a double that needs all 17 digits
  Event back;
  std::string why;
  ASSERT_TRUE(fromJson(toJson(e), back, &why)) << why;
  EXPECT_EQ(back, e);
  // Through text too, as in the log.
  Event back2;
  ASSERT_TRUE(fromJson(json::parse(toJson(e).dump()), back2, &why)) << why;
  EXPECT_EQ(back2, e);
  EXPECT_EQ(toJson(back2), toJson(e));
}

TEST(EventJson, UnknownNumbersAreNullAndRoundTrip) {
  Event e = sampleEvent();
  e.subject.kind = SubjectKind::kAddress;
  e.subject.name = "10.77.0.2";
  e.subject.ofport.reset();
  e.subject.ifindex.reset();
  e.netlink.mtu.reset();
  e.direction = Direction::kOut;
  e.metric = Metric::kPackets;
  e.detector = json::object();
  json j = toJson(e);
  EXPECT_TRUE(j["subject"]["ofport"].is_null());
  EXPECT_TRUE(j["subject"]["ifindex"].is_null());
  EXPECT_TRUE(j["netlink"]["mtu"].is_null());
  EXPECT_EQ(j["subject"]["kind"], "address");
  EXPECT_EQ(j["direction"], "out");
  EXPECT_EQ(j["metric"], "packets");
  Event back;
  ASSERT_TRUE(fromJson(j, back, nullptr));
  EXPECT_EQ(back, e);
}

TEST(EventJson, RejectsBadRecordsWithAReason) {
  json good = toJson(sampleEvent());
  struct Case {
    std::function<void(json&)> spoil;
    std::string why;
  };
  std::vector<Case> cases = {
      {[](json& j) { j.erase("id"); }, "id: missing"},
      {[](json& j) { j["start"] = "yesterday"; }, "start: must be an RFC 3339 time"},
      {[](json& j) { j["end"] = 5; }, "end: must be an RFC 3339 time"},
      {[](json& j) { j["subject"]["kind"] = "bridge"; }, "subject.kind"},
      {[](json& j) { j["subject"]["ofport"] = -1; }, "subject.ofport"},
      {[](json& j) { j["direction"] = "sideways"; }, "direction"},
      {[](json& j) { j["metric"] = 3; }, "metric: must be a string"},
      {[](json& j) { j["observed"] = "fast"; }, "observed: must be a number"},
      {[](json& j) { j["top"][0]["bytes"] = "x"; }, "top[].bytes"},
      {[](json& j) { j["exporters"] = {1}; }, "exporters"},
      {[](json& j) { j["detector"] = 1; }, "detector: must be an object"},
  };
  for (const auto& c : cases) {
    json j = good;
    c.spoil(j);
    Event e;
    std::string why;
    EXPECT_FALSE(fromJson(j, e, &why)) << c.why;
    EXPECT_NE(why.find(c.why), std::string::npos) << why;
  }
}

TEST(EventJson, FormatLineStarted) {
  Event e = sampleEvent();
  e.observed = 1550000;  // 12.4 Mb/s
  e.baseline = 10000;    // 80 kb/s
  e.ratio = 155;
  EXPECT_EQ(formatLine(e, false),
            "event 20261207T172731Z-000042 started: port h1-ovs (br0, ofport 101, vm 6f1c2a) in "
            "bytes 12.4 Mb/s vs baseline 80 kb/s (155x); top 10.77.0.1 -> 10.77.0.2 TCP 5201 93%");
}

TEST(EventJson, FormatLineEnded) {
  Event e = sampleEvent();
  e.end_ns = e.start_ns + 42'000'000'000ULL;
  e.top.push_back({"10.77.0.3 -> 10.77.0.2 UDP 53", 10, 1, 0.05});
  EXPECT_EQ(formatLine(e, true),
            "event 20261207T172731Z-000042 ended after 42 s: port h1-ovs (br0, ofport 101, vm "
            "6f1c2a) in bytes, peak 12.4 Mb/s vs baseline 80 kb/s (155x); top 10.77.0.1 -> "
            "10.77.0.2 TCP 5201 93%, 10.77.0.3 -> 10.77.0.2 UDP 53 5%");
  e.end_ns = e.start_ns + 200'000'000'000ULL;
  EXPECT_NE(formatLine(e, true).find("ended after 3 min 20 s"), std::string::npos);
}

TEST(EventJson, FormatLineAddressAndPackets) {
  Event e;
  e.id = "20261207T172731Z-000001";
  e.subject.kind = SubjectKind::kAddress;
  e.subject.name = "10.77.0.2";
  e.direction = Direction::kOut;
  e.metric = Metric::kPackets;
  e.observed = 12345;
  e.baseline = 9.5;
  e.ratio = 1299.5;
  EXPECT_EQ(formatLine(e, false),
            "event 20261207T172731Z-000001 started: address 10.77.0.2 out packets 12.3 kp/s vs "
            "baseline 9.5 p/s (1300x)");
}

TEST(EventJson, IdsSortAndCarryTheirSequence) {
  uint64_t t = 0;
  ASSERT_TRUE(parseTime("2026-12-07T17:27:31Z", t));
  EXPECT_EQ(makeId(t, 42), "20261207T172731Z-000042");
  EXPECT_EQ(idSequence("20261207T172731Z-000042"), 42u);
  EXPECT_EQ(idSequence("20261207T172731Z-1234567"), 1234567u);
  EXPECT_FALSE(idSequence("nope"));
  EXPECT_LT(makeId(t, 9), makeId(t + 1'000'000'000ULL, 1));
}

}  // namespace
}  // namespace nc::events
