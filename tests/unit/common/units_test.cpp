#include "common/units.hpp"

#include <gtest/gtest.h>

namespace nc::units {
namespace {

TEST(Units, Sizes) {
  EXPECT_EQ(parseSize("4096"), 4096u);
  EXPECT_EQ(parseSize("32MiB"), 32u * 1024 * 1024);
  EXPECT_EQ(parseSize("50GiB"), 50ull << 30);
  EXPECT_EQ(parseSize("1.5G"), 1500000000u);
  EXPECT_EQ(parseSize("2 KiB"), 2048u);
  EXPECT_EQ(parseSize("32.0 MiB"), 32u * 1024 * 1024);  // what formatBytes prints
  std::string why;
  EXPECT_FALSE(parseSize("MiB", &why));
  EXPECT_NE(why.find("not a size"), std::string::npos);
  EXPECT_FALSE(parseSize("12XB", &why));
  EXPECT_NE(why.find("unknown size unit 'XB'"), std::string::npos);
  EXPECT_FALSE(parseSize("-1"));
  EXPECT_FALSE(parseSize("99999999999999999999999T"));
}

TEST(Units, Durations) {
  EXPECT_EQ(parseDurationMs("60s"), 60000u);
  EXPECT_EQ(parseDurationMs("60"), 60000u);
  EXPECT_EQ(parseDurationMs("500ms"), 500u);
  EXPECT_EQ(parseDurationMs("5m"), 300000u);
  EXPECT_EQ(parseDurationMs("2h"), 7200000u);
  EXPECT_EQ(parseDurationMs("30d"), 30ull * 86400 * 1000);
  EXPECT_EQ(parseDurationMs("1w"), 7ull * 86400 * 1000);
  EXPECT_FALSE(parseDurationMs("5 parsecs"));
  EXPECT_FALSE(parseDurationMs(""));
}

TEST(Units, Formatting) {
  EXPECT_EQ(formatBytes(512), "512 B");
  EXPECT_EQ(formatBytes(1536), "1.5 KiB");
  EXPECT_EQ(formatCount(950), "950");
  EXPECT_EQ(formatCount(1200000), "1.2 M");
  EXPECT_EQ(formatDurationMs(60000), "1m");
  EXPECT_EQ(formatDurationMs(90000), "90s");
  EXPECT_EQ(formatDurationMs(30ull * 86400 * 1000), "30d");
  EXPECT_EQ(formatDurationMs(1500), "1500ms");
  for (uint64_t ms : {1000ull, 61000ull, 3600000ull, 86400000ull * 3, 250ull}) {
    EXPECT_EQ(parseDurationMs(formatDurationMs(ms)), ms);
  }
}

}  // namespace
}  // namespace nc::units
