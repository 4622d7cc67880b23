// Profile and channel definitions: validation rules, drawing order, JSON round trip.
#include "collector/profile/definition.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace nc::profile {
namespace {

constexpr uint64_t kNow = 1'800'000'000'000'000'000ull;  // 2027-01-15

ProfileDef sample() {
  ProfileDef d;
  d.name = "ports";
  d.group = "svc";
  d.channels = {{"ssh", "port 22", "#ff0000", '+', 0, {}},
                {"dns", "port 53", "", '-', 0, {"br-int", "192.0.2.0/24"}},
                {"web", "port 80 or port 443", "#00FF00", '+', 1, {"2001:db8::1"}}};
  return d;
}

TEST(ProfileDef, ValidSampleHasNoErrors) {
  auto errs = validate(sample(), kNow);
  for (const auto& e : errs) {
    ADD_FAILURE() << e.toString();
  }
}

TEST(ProfileDef, NamesColoursSignsSources) {
  std::string why;
  EXPECT_TRUE(validName("a-Z_9", &why));
  for (const char* bad : {"", "a b", "../x", "x/y", "é", "a.b"}) {
    EXPECT_FALSE(validName(bad, &why)) << bad;
  }
  EXPECT_FALSE(validName(std::string(65, 'a'), &why));
  EXPECT_TRUE(validColour("#abCDef", &why));
  EXPECT_TRUE(validColour("", &why));  // palette
  for (const char* bad : {"abcdef", "#abcde", "#abcdefg", "#ghijkl", "red"}) {
    EXPECT_FALSE(validColour(bad, &why)) << bad;
    EXPECT_NE(why.find("#rrggbb"), std::string::npos) << why;
  }
  EXPECT_TRUE(validSource("10.0.0.0/8", &why));
  EXPECT_TRUE(validSource("2001:db8::/32", &why));
  EXPECT_TRUE(validSource("br-int", &why));
  EXPECT_FALSE(validSource("10.0.0.0/33", &why));
  EXPECT_NE(why.find("prefix length"), std::string::npos) << why;
  EXPECT_FALSE(validSource("br int", &why));
  EXPECT_FALSE(validSource("br-*", &why));
  EXPECT_FALSE(validSource("", &why));
}

TEST(ProfileDef, FilterErrorsCarryTheirPosition) {
  ProfileDef d = sample();
  d.channels[1].filter = "proto tcp and port 70000";
  auto errs = validate(d, kNow);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].path, "channels[1].filter");
  EXPECT_TRUE(errs[0].is_filter);
  EXPECT_EQ(errs[0].filter_offset, 19u);  // "70000"
  EXPECT_NE(errs[0].message.find("filter:1:20:"), std::string::npos) << errs[0].message;
  EXPECT_NE(errs[0].message.find("^"), std::string::npos) << errs[0].message;
}

TEST(ProfileDef, EveryProblemIsListed) {
  ProfileDef d = sample();
  d.name = "bad name";
  d.channels[0].colour = "#12";
  d.channels[0].sign = '*';
  d.channels[1].name = "ssh";  // duplicate
  d.channels[2].sources = {"not a source"};
  auto errs = validate(d, kNow);
  std::vector<std::string> paths;
  for (const auto& e : errs) {
    paths.push_back(e.path);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"name", "channels[0].colour", "channels[0].sign",
                                             "channels[1].name", "channels[2].sources[0]"}));
}

TEST(ProfileDef, TypesAndTimes) {
  ProfileDef h = sample();
  h.type = ProfileType::kHistory;
  EXPECT_EQ(validate(h, kNow).at(0).message, "a history profile needs start and end");
  h.start_ns = kNow - 3600'000'000'000ull;
  h.end_ns = kNow + 1;
  EXPECT_EQ(validate(h, kNow).at(0).path, "end");  // in the future
  h.end_ns = kNow;
  EXPECT_TRUE(validate(h, kNow).empty());
  h.expire_ms = 1000;
  EXPECT_EQ(validate(h, kNow).at(0).path, "expire");  // continuous only, as nfsen
  ProfileDef c = sample();
  c.end_ns = kNow;
  EXPECT_EQ(validate(c, kNow).at(0).path, "end");
  ProfileDef s = sample();
  s.type = ProfileType::kShadow;
  s.maxsize = 1;
  EXPECT_EQ(validate(s, kNow).at(0).path, "maxsize");
}

TEST(ProfileDef, DrawingOrderAndRenumbering) {
  ProfileDef d = sample();  // ssh +0, dns -0, web +1
  EXPECT_EQ(drawingOrder(d), (std::vector<size_t>{2, 0, 1}));
  normalizeOrders(d);
  EXPECT_EQ(d.channels[2].order, 1u);                     // web
  EXPECT_EQ(d.channels[0].order, 2u);                     // ssh
  EXPECT_EQ(d.channels[1].order, 1u);                     // dns, first below the axis
  EXPECT_EQ(channelColour(d.channels[1], 1), "#ff7f0e");  // palette entry 1
  EXPECT_EQ(channelColour(d.channels[0], 0), "#ff0000");
}

TEST(ProfileDef, JsonRoundTrip) {
  ProfileDef d = sample();
  d.type = ProfileType::kHistory;
  d.start_ns = 1'700'000'000'000'000'000ull;
  d.end_ns = 1'700'000'600'000'000'000ull;
  d.description = "x";
  ProfileDef back;
  std::string why;
  ASSERT_TRUE(fromJson(toJson(d), back, &why)) << why;
  EXPECT_EQ(back, d);
  EXPECT_FALSE(fromJson(nlohmann::json::parse(R"({"name": 5})"), back, &why));
  EXPECT_FALSE(fromJson(nlohmann::json::parse(R"({"name": "a", "type": "live"})"), back, &why));
  EXPECT_NE(why.find("continuous, history or shadow"), std::string::npos) << why;
  EXPECT_FALSE(
      fromJson(nlohmann::json::parse(R"({"name": "a", "channels": [{"sign": "+"}]})"), back, &why));
  EXPECT_FALSE(fromJson(nlohmann::json::parse(R"([1,2])"), back, &why));
}

}  // namespace
}  // namespace nc::profile
