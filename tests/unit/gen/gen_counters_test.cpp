// `gen -f sflow --counters-interval N`: a counters sample with generic interface counters in
// datagram 0 and every N, read back by our own sFlow decoder (so `net-collector interfaces` can be
// tried without Open vSwitch); with --repeat the replayed counters keep counting.
#include <gtest/gtest.h>

#include "collector/decode/decoder.hpp"
#include "collector/gen/gen.hpp"

namespace nc::gen {
namespace {

class Keep : public decode::RecordSink {
 public:
  void onRecords(std::span<const FlowRecord> records) override {
    rows.insert(rows.end(), records.begin(), records.end());
  }
  void onCounters(const decode::InterfaceCounters& c) override { counters.push_back(c); }
  std::vector<FlowRecord> rows;
  std::vector<decode::InterfaceCounters> counters;
};

struct GenRun {
  Keep sink;
  std::vector<uint32_t> counters_per_datagram;
  std::vector<size_t> rows_after;  // flow rows decoded up to the end of each datagram
  std::vector<decode::ExporterStats> stats;
};

GenRun generate(GenOptions o) {
  GenRun run;
  EXPECT_EQ(validate(o), "");
  Generator gen(o);
  decode::Decoder decoder;
  decode::DatagramMeta meta;
  IpAddr::parse("127.0.0.1", meta.exporter);
  std::vector<uint8_t> out;
  for (uint64_t i = 0; i < o.count; ++i) {
    const uint64_t t = kFixedTimeNs + i * 100'000'000;
    EXPECT_TRUE(gen.next(t, out)) << i;
    meta.received_ns = t;
    auto st = decoder.decode(out, meta, run.sink);
    EXPECT_TRUE(st.ok()) << i << ": " << toString(st.error);
    run.counters_per_datagram.push_back(st.counters);
    run.rows_after.push_back(run.sink.rows.size());
  }
  run.stats = decoder.stats();
  return run;
}

GenOptions sflowOptions() {
  GenOptions o;
  o.format = Format::kSflow;
  o.fixed_time = true;
  o.rate = 0;
  o.flows = 20;
  o.sampling = 4;
  o.count = 7;
  return o;
}

TEST(GenCounters, GenericInterfaceCountersEveryNDatagrams) {
  GenOptions o = sflowOptions();
  o.counters_interval = 3;
  GenRun run = generate(o);
  EXPECT_EQ(run.counters_per_datagram, (std::vector<uint32_t>{1, 0, 0, 1, 0, 0, 1}));
  ASSERT_EQ(run.sink.counters.size(), 3u);
  for (size_t i = 0; i < run.sink.counters.size(); ++i) {
    const decode::InterfaceCounters& c = run.sink.counters[i];
    EXPECT_TRUE(c.has_generic);
    EXPECT_EQ(c.sequence, i + 1);
    EXPECT_EQ(c.source_id, 1u);  // class 0, ifIndex 1
    EXPECT_EQ(c.if_index, 1u);
    EXPECT_EQ(c.if_type, 6u);
    EXPECT_EQ(c.if_speed, 10'000'000'000ULL);
    EXPECT_EQ(c.if_status, 3u);  // admin and oper up
    EXPECT_EQ(c.in_errors, 0u);
    EXPECT_EQ(c.out_octets, 0u);
    // The input counters count every sampled packet sent so far, this datagram's included,
    // scaled by the sampling rate, as an agent's interface counters would.
    uint64_t octets = 0;
    const size_t upto = run.rows_after[i * 3];
    for (size_t k = 0; k < upto; ++k) {
      octets += run.sink.rows[k].bytes * o.sampling;
    }
    EXPECT_EQ(c.in_octets, octets) << i;
    EXPECT_EQ(c.in_packets, upto * o.sampling) << i;
  }
  EXPECT_LT(run.sink.counters[0].in_octets, run.sink.counters[1].in_octets);
  EXPECT_LT(run.sink.counters[1].in_octets, run.sink.counters[2].in_octets);
  ASSERT_EQ(run.stats.size(), 1u);
  EXPECT_EQ(run.stats[0].errorTotal(), 0u);
  EXPECT_EQ(run.stats[0].counter_samples, 3u);
  EXPECT_EQ(run.stats[0].sequence_resets, 0u);
}

TEST(GenCounters, ZeroIntervalSendsNone) {
  GenOptions o = sflowOptions();
  o.counters_interval = 0;
  GenRun run = generate(o);
  EXPECT_TRUE(run.sink.counters.empty());
  EXPECT_EQ(run.stats[0].counter_samples, 0u);
}

TEST(GenCounters, DefaultIsEveryTenDatagrams) {
  GenOptions o = sflowOptions();
  o.count = 21;
  GenRun run = generate(o);
  EXPECT_EQ(run.sink.counters.size(), 3u);  // datagrams 0, 10, 20
}

TEST(GenCounters, RepeatKeepsCounting) {
  GenOptions o = sflowOptions();
  o.counters_interval = 2;
  o.repeat = 2;
  o.count = 8;  // four passes of 2 datagrams; the first of each carries counters
  GenRun run = generate(o);
  ASSERT_EQ(run.sink.counters.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(run.sink.counters[i].sequence, i + 1);
    if (i > 0) {
      EXPECT_GT(run.sink.counters[i].in_octets, run.sink.counters[i - 1].in_octets);
      EXPECT_GT(run.sink.counters[i].in_packets, run.sink.counters[i - 1].in_packets);
    }
  }
  EXPECT_EQ(run.stats[0].sequence_resets, 0u);
  EXPECT_EQ(run.stats[0].errorTotal(), 0u);
}

}  // namespace
}  // namespace nc::gen
