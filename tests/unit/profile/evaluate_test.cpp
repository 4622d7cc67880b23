// Channel counting without files: flowTime()/spread(), ChannelPlan over columns, StepTable.
#include "collector/profile/evaluate.hpp"
#include "collector/profile/backfill.hpp"

#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "collector/record/names.hpp"

namespace nc::profile {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kStep = 10 * kSec;
constexpr uint64_t kT0 = 1'800'000'000 * kSec;  // a step boundary (2027-01-15)
constexpr int64_t kS0 = static_cast<int64_t>(kT0 / kStep);

FlowRecord flow(uint8_t proto, uint16_t dport, uint64_t first, uint64_t last, uint64_t bytes,
                uint64_t packets, uint32_t sampling = 1) {
  FlowRecord r;
  r.proto = proto;
  r.dst_port = dport;
  r.src_port = 40000;
  r.first_ns = first;
  r.last_ns = last;
  r.received_ns = last + kSec;
  r.bytes = bytes;
  r.packets = packets;
  r.sampling_rate = sampling;
  r.ip_version = 4;
  r.src_addr = IpAddr::fromV4(0x0a000001);
  r.dst_addr = IpAddr::fromV4(0x0a000002);
  r.exporter = IpAddr::fromV4(0xc0000201);  // 192.0.2.1
  return r;
}

ChannelSpec spec(uint32_t id, std::string filter, std::vector<std::string> sources = {}) {
  ChannelSpec s;
  s.id = id;
  s.filter = std::move(filter);
  s.sources = std::move(sources);
  return s;
}

// Runs `specs` over `records` and returns channel -> step -> values.
std::map<uint32_t, std::map<int64_t, StepValues>> run(const std::vector<ChannelSpec>& specs,
                                                      const std::vector<FlowRecord>& records,
                                                      SpreadOptions o = {}) {
  std::string why;
  auto plan = ChannelPlan::build(specs, o, &why);
  EXPECT_TRUE(plan) << why;
  FlowColumns c;
  transpose(records, plan->columns(), c);
  StepTable t;
  Scratch s;
  plan->evaluate(c, t, s);
  std::map<uint32_t, std::map<int64_t, StepValues>> out;
  for (const auto& e : t.take()) {
    out[e.channel][e.step].add(e.values);
  }
  return out;
}

TEST(FlowTime, ClampsAndFallsBackToReceiveTime) {
  SpreadOptions o;
  auto t = flowTime(kT0, kT0 + 5 * kSec, kT0 + 6 * kSec, o);
  EXPECT_EQ(t.t0, kT0);
  EXPECT_EQ(t.t1, kT0 + 5 * kSec);
  t = flowTime(kT0, kT0 + 3600 * kSec, kT0 + 3601 * kSec, o);  // long flow: its last 20 s
  EXPECT_EQ(t.t0, kT0 + 3580 * kSec);
  t = flowTime(kT0, kT0 + 600 * kSec, kT0, o);  // ends 10 min after it arrived: clock ahead
  EXPECT_EQ(t.t0, kT0);
  EXPECT_EQ(t.t1, kT0);
  t = flowTime(0, 0, kT0 + 7, o);  // no times
  EXPECT_EQ(t.t0, kT0 + 7);
  t = flowTime(kT0 + 9 * kSec, kT0, kT0 + 10 * kSec, o);  // first after last
  EXPECT_EQ(t.t0, kT0 + 10 * kSec);
}

TEST(Spread, FractionsFollowTheTimeInEachStep) {
  std::map<int64_t, double> got;
  spread({kT0 + 5 * kSec, kT0 + 25 * kSec}, kStep, [&](int64_t s, double f) { got[s] += f; });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_DOUBLE_EQ(got[kS0], 0.25);
  EXPECT_DOUBLE_EQ(got[kS0 + 1], 0.5);
  EXPECT_DOUBLE_EQ(got[kS0 + 2], 0.25);
  got.clear();
  spread({kT0 + 10 * kSec, kT0 + 10 * kSec}, kStep, [&](int64_t s, double f) { got[s] += f; });
  EXPECT_EQ(got, (std::map<int64_t, double>{{kS0 + 1, 1.0}}));
}

// The arithmetic of the 15 data sources: sampling applied (unless the exporter did), protocol
// classes, spreading, totals.
TEST(ChannelPlan, CountsWithSamplingAndProtocolClasses) {
  std::vector<FlowRecord> rs = {
      flow(6, 80, kT0 + kSec, kT0 + 2 * kSec, 1000, 10),          // tcp, step 0
      flow(17, 53, kT0 + 3 * kSec, kT0 + 3 * kSec, 100, 1, 100),  // udp x100
      flow(1, 0, kT0 + 4 * kSec, kT0 + 4 * kSec, 84, 1, 64),      // icmp, scaled
      flow(58, 0, kT0 + 4 * kSec, kT0 + 4 * kSec, 104, 1),        // icmpv6
      flow(47, 0, kT0 + 5 * kSec, kT0 + 5 * kSec, 500, 5),        // gre = other
      flow(6, 443, kT0 + 5 * kSec, kT0 + 15 * kSec, 2000, 20),    // tcp, half/half
  };
  rs[2].flags = FlowRecord::kFlagScaledByExporter;
  auto got = run({spec(1, "any"), spec(2, "proto tcp"), spec(3, "port 80 or port 443")}, rs);
  const StepValues& a0 = got[1][kS0];
  // flows
  EXPECT_DOUBLE_EQ(a0.v[kTcp], 1.5);
  EXPECT_DOUBLE_EQ(a0.v[kUdp], 100);
  EXPECT_DOUBLE_EQ(a0.v[kIcmp], 2);  // 1 (scaled by exporter) + 1
  EXPECT_DOUBLE_EQ(a0.v[kOther], 1);
  // packets
  EXPECT_DOUBLE_EQ(a0.v[4 + kTcp], 20);
  EXPECT_DOUBLE_EQ(a0.v[4 + kUdp], 100);
  EXPECT_DOUBLE_EQ(a0.v[4 + kIcmp], 2);
  // bytes
  EXPECT_DOUBLE_EQ(a0.v[8 + kTcp], 2000);
  EXPECT_DOUBLE_EQ(a0.v[8 + kUdp], 10000);
  EXPECT_DOUBLE_EQ(a0.v[8 + kIcmp], 188);
  EXPECT_DOUBLE_EQ(a0.v[8 + kOther], 500);
  const auto r = a0.rates(10);
  EXPECT_DOUBLE_EQ(r[0], (1.5 + 100 + 2 + 1) / 10);            // flows
  EXPECT_DOUBLE_EQ(r[1], 0.15);                                // flows_tcp
  EXPECT_DOUBLE_EQ(r[10], (2000 + 10000 + 188 + 500) / 10.0);  // traffic
  EXPECT_DOUBLE_EQ(r[14], 50);                                 // traffic_other
  EXPECT_DOUBLE_EQ(got[1][kS0 + 1].v[8 + kTcp], 1000);
  EXPECT_EQ(got[2].size(), 2u);
  EXPECT_DOUBLE_EQ(got[2][kS0].v[8 + kTcp], 2000);
  EXPECT_DOUBLE_EQ(got[3][kS0].v[8 + kTcp], 2000);
  EXPECT_DOUBLE_EQ(got[3][kS0 + 1].v[4 + kTcp], 10);
}

TEST(ChannelPlan, IdenticalFiltersShareOneSelection) {
  std::string why;
  auto plan = ChannelPlan::build(
      {spec(1, "port 22"), spec(2, " port 22 "), spec(3, "port 23"), spec(4, "any")}, {}, &why);
  ASSERT_TRUE(plan) << why;
  EXPECT_EQ(plan->channels(), 4u);
  EXPECT_EQ(plan->distinctFilters(), 3u);
  EXPECT_TRUE(hasColumn(plan->columns(), Column::dst_port));
  EXPECT_FALSE(hasColumn(plan->columns(), Column::exporter));
  EXPECT_FALSE(ChannelPlan::build({spec(1, "port 99999")}, {}, &why));
  EXPECT_NE(why.find("port out of range"), std::string::npos) << why;
}

TEST(ChannelPlan, SourcesReceiveWindowAndStepRange) {
  std::vector<FlowRecord> rs = {flow(6, 22, kT0, kT0, 100, 1), flow(6, 22, kT0, kT0, 200, 2),
                                flow(6, 22, kT0 + 10 * kSec, kT0 + 10 * kSec, 400, 4)};
  rs[1].exporter = IpAddr::fromV4(0xc6336401);  // 198.51.100.1
  rs[1].bridge = internName("br-prof");
  ChannelSpec by_net = spec(1, "any", {"192.0.2.0/24"});
  ChannelSpec by_bridge = spec(2, "any", {"br-prof"});
  ChannelSpec by_rx = spec(3, "any");
  by_rx.received_from_ns = kT0 + 5 * kSec;  // only the third was received after
  ChannelSpec by_step = spec(4, "any");
  by_step.max_step = kS0;
  auto got = run({by_net, by_bridge, by_rx, by_step}, rs);
  EXPECT_DOUBLE_EQ(got[1][kS0].v[8], 100);
  EXPECT_DOUBLE_EQ(got[1][kS0 + 1].v[8], 400);
  EXPECT_EQ(got[2].size(), 1u);
  EXPECT_DOUBLE_EQ(got[2][kS0].v[8], 200);
  EXPECT_EQ(got[3].size(), 1u);
  EXPECT_DOUBLE_EQ(got[3][kS0 + 1].v[8], 400);
  EXPECT_EQ(got[4].size(), 1u);
  EXPECT_DOUBLE_EQ(got[4][kS0].v[8], 300);
}

// Back-fill is a query over any collector/query Source: over flows in memory it counts what the
// evaluator counts for the rows received before the split, within the step range.
TEST(Backfill, CountsTheRowsReceivedBeforeTheSplit) {
  std::vector<FlowRecord> rs;
  for (uint64_t i = 0; i < 600; ++i) {
    rs.push_back(flow(i % 3 == 0 ? 17 : 6, i % 2 == 0 ? 80 : 22, kT0 + i * kSec,
                      kT0 + i * kSec + (i % 4) * kSec, 1000 + i, 1 + i % 7, i % 5 == 0 ? 10 : 1));
  }
  FlowColumns all;
  all.append(rs);
  query::MemorySource src(all, 64);
  ChannelSpec web = spec(1, "port 80");
  web.received_until_ns = kT0 + 300 * kSec;
  web.min_step = kS0 + 3;
  ChannelSpec udp = spec(2, "proto udp");
  udp.received_until_ns = kT0 + 300 * kSec;
  udp.min_step = kS0;
  udp.max_step = kS0 + 20;
  BackfillRequest req;
  req.channels = {web, udp};
  BackfillResult r = backfill(src, req);
  ASSERT_TRUE(r.ok) << r.error;
  auto want = run({web, udp}, rs);
  ASSERT_EQ(r.steps.size(), want.size());
  for (const auto& [ch, steps] : want) {
    ASSERT_EQ(r.steps[ch].size(), steps.size()) << ch;
    for (const auto& [s, v] : steps) {
      for (size_t k = 0; k < 12; ++k) {
        EXPECT_NEAR(r.steps[ch][s].v[k], v.v[k], 1e-9 * std::max(1.0, v.v[k])) << ch << " " << s;
      }
    }
  }
  EXPECT_EQ(r.steps[1].begin()->first, kS0 + 3);
  EXPECT_EQ(r.steps[2].rbegin()->first, kS0 + 20);
  BackfillRequest bad;
  bad.store_path = "/nonexistent/store";
  bad.channels = {web};
  EXPECT_FALSE(backfill(bad).ok);
}

TEST(StepTable, GrowsAndEmpties) {
  StepTable t;
  for (uint32_t ch = 0; ch < 100; ++ch) {
    for (int64_t s = 0; s < 50; ++s) {
      t.add(ch, s, kUdp, 1, 2, 3);
      t.add(ch, s, kUdp, 1, 2, 3);
    }
  }
  EXPECT_EQ(t.size(), 5000u);
  auto all = t.take();
  ASSERT_EQ(all.size(), 5000u);
  for (const auto& e : all) {
    EXPECT_DOUBLE_EQ(e.values.v[kUdp], 2);
    EXPECT_DOUBLE_EQ(e.values.v[8 + kUdp], 6);
  }
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.take().empty());
}

}  // namespace
}  // namespace nc::profile
