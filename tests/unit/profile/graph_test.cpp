// Graph rendering through librrd: PNG and SVG of stacked channels, '+' above and '-' below the
// axis, and clear errors for bad requests.
#include "collector/profile/graph.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "collector/profile/evaluate.hpp"
#include "collector/profile/rrd.hpp"
#include "tests/support/support.hpp"

// Graphs leak inside librrd and the font libraries: tests/support/graph_leaks.hpp.
#include "tests/support/graph_leaks.hpp"

namespace nc::profile {
namespace {

constexpr std::time_t kStart = 1'800'000'000;  // 2027-01-15, a step boundary

// A channel file with an hour of 10 s steps: a sine of `scale` bytes/s.
std::string makeChannel(const std::filesystem::path& dir, const std::string& name, double scale) {
  const std::string path = (dir / (name + ".rrd")).string();
  std::string why;
  EXPECT_TRUE(rrd::create(path, 10, kStart, &why)) << why;
  std::vector<rrd::Update> ups;
  for (int i = 1; i <= 360; ++i) {
    rrd::Update u;
    u.t = kStart + i * 10;
    const double v = scale * (1.5 + std::sin(i / 30.0));
    u.v[0] = v / 1000;   // flows
    u.v[5] = v / 100;    // packets
    u.v[10] = v;         // traffic
    u.v[11] = v * 0.75;  // traffic_tcp
    u.v[12] = v * 0.25;  // traffic_udp
    ups.push_back(u);
  }
  EXPECT_TRUE(rrd::update(path, ups, &why)) << why;
  return path;
}

GraphSpec spec(const std::filesystem::path& dir) {
  GraphSpec s;
  s.channels = {{"web", makeChannel(dir, "web", 1e6), "#1f77b4", '+'},
                {"dns", makeChannel(dir, "dns", 2e5), "#ff7f0e", '+'},
                {"ssh", makeChannel(dir, "ssh", 5e5), "#2ca02c", '-'}};
  s.start_s = kStart;
  s.end_s = kStart + 3600;
  s.profile_start_s = kStart + 600;  // greyed before
  return s;
}

TEST(Graph, PngAndSvgOfStackedSignedChannels) {
  test::TempDir dir("profile-graph");
  GraphSpec s = spec(dir.path());
  for (Metric m : {Metric::kTraffic, Metric::kPackets, Metric::kFlows}) {
    for (ProtoSel p : {ProtoSel::kAny, ProtoSel::kTcp, ProtoSel::kOther}) {
      s.metric = m;
      s.proto = p;
      s.format = ImageFormat::kPng;
      std::string png;
      std::string why;
      ASSERT_TRUE(renderGraph(s, png, &why)) << why;
      ASSERT_GT(png.size(), 1000u);
      EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
      EXPECT_NE(png.find("IEND"), std::string::npos);  // a complete file
      s.format = ImageFormat::kSvg;
      std::string svg;
      ASSERT_TRUE(renderGraph(s, svg, &why)) << why;
      EXPECT_EQ(svg.rfind("<?xml", 0), 0u) << svg.substr(0, 80);
      EXPECT_NE(svg.find("<svg"), std::string::npos);
      EXPECT_NE(svg.find("</svg>"), std::string::npos);
      if (m == Metric::kTraffic && p == ProtoSel::kAny) {
        std::printf("[graph] traffic: PNG %zu bytes, SVG %zu bytes\n", png.size(), svg.size());
      }
    }
  }
  // For a look by eye: NC_GRAPH_OUT=/tmp/x writes x.png and x.svg.
  if (const char* out = std::getenv("NC_GRAPH_OUT")) {
    s.metric = Metric::kTraffic;
    s.proto = ProtoSel::kAny;
    for (ImageFormat f : {ImageFormat::kPng, ImageFormat::kSvg}) {
      s.format = f;
      std::string image;
      std::string why;
      ASSERT_TRUE(renderGraph(s, image, &why)) << why;
      std::ofstream(std::string(out) + (f == ImageFormat::kPng ? ".png" : ".svg")) << image;
    }
  }
}

TEST(Graph, BadRequestsAreErrors) {
  test::TempDir dir("profile-graph-bad");
  GraphSpec s = spec(dir.path());
  std::string image;
  std::string why;
  GraphSpec none = s;
  none.channels.clear();
  EXPECT_FALSE(renderGraph(none, image, &why));
  EXPECT_NE(why.find("no channels"), std::string::npos) << why;
  GraphSpec range = s;
  range.end_s = range.start_s;
  EXPECT_FALSE(renderGraph(range, image, &why));
  GraphSpec size = s;
  size.width = 100000;
  EXPECT_FALSE(renderGraph(size, image, &why));
  GraphSpec missing = s;
  missing.channels[0].rrd_path = (dir.path() / "gone.rrd").string();
  EXPECT_FALSE(renderGraph(missing, image, &why));
  EXPECT_NE(why.find("gone.rrd"), std::string::npos) << why;
  GraphSpec colon = s;  // a ':' in a path is escaped, not taken as a separator
  std::filesystem::copy_file(s.channels[0].rrd_path, dir.path() / "a:b.rrd");
  colon.channels[0].rrd_path = (dir.path() / "a:b.rrd").string();
  EXPECT_TRUE(renderGraph(colon, image, &why)) << why;
  Metric m;
  ProtoSel p;
  ImageFormat f;
  EXPECT_TRUE(parseMetric("bits", m));
  EXPECT_FALSE(parseMetric("octets", m));
  EXPECT_TRUE(parseProtoSel("icmp", p));
  EXPECT_FALSE(parseProtoSel("gre", p));
  EXPECT_TRUE(parseImageFormat("svg", f));
  EXPECT_FALSE(parseImageFormat("gif", f));
  EXPECT_EQ(dataSource(Metric::kTraffic, ProtoSel::kUdp), "traffic_udp");
  EXPECT_EQ(dataSource(Metric::kFlows, ProtoSel::kAny), "flows");
}

}  // namespace
}  // namespace nc::profile
