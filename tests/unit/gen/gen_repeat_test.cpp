// `gen --repeat`: the kept datagrams sent again must read, to a collector's decoder, like a
// continuing export: every record decoded, no sequence gap or reset (v5 flows, v9 datagrams,
// IPFIX records, sFlow datagrams and flow samples), totals that count every pass, and flow times
// that move on with the renewed export time where the format carries them relative to it.
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
  std::vector<FlowRecord> rows;
};

struct Case {
  Format format;
  const char* agent;
};

class GenRepeat : public ::testing::TestWithParam<Case> {};

TEST_P(GenRepeat, LaterPassesContinueTheExport) {
  GenOptions o;
  o.format = GetParam().format;
  o.agent = GetParam().agent;
  o.fixed_time = true;
  o.rate = 10;  // 100 ms apart: later passes are seconds later
  o.flows = 50;
  o.sampling = 4;
  o.repeat = 7;
  o.count = 45;  // 6 passes and a part
  ASSERT_EQ(validate(o), "");
  Generator gen(o);
  decode::Decoder decoder;
  Keep sink;
  decode::DatagramMeta meta;
  IpAddr::parse("127.0.0.1", meta.exporter);
  std::vector<uint8_t> out;
  std::vector<size_t> rows_before;  // sink rows before each datagram
  std::vector<size_t> sizes;
  uint64_t records = 0;
  for (uint64_t i = 0; i < o.count; ++i) {
    const uint64_t t = kFixedTimeNs + i * 100'000'000;
    ASSERT_TRUE(gen.next(t, out)) << i;
    meta.received_ns = t;
    rows_before.push_back(sink.rows.size());
    auto st = decoder.decode(out, meta, sink);
    records += st.records;
    sizes.push_back(out.size());
  }
  EXPECT_FALSE(gen.next(kFixedTimeNs + o.count * 100'000'000, out));
  rows_before.push_back(sink.rows.size());
  EXPECT_EQ(gen.stats().datagrams, o.count);
  EXPECT_EQ(records, gen.stats().records);
  EXPECT_EQ(sink.rows.size(), gen.stats().records);
  uint64_t packets = 0;
  for (const auto& r : sink.rows) {
    packets += o.format == Format::kSflow ? 1 : r.packets;
  }
  EXPECT_EQ(packets, gen.stats().flow_packets);
  const auto all = decoder.stats();
  ASSERT_EQ(all.size(), 1u);
  const auto& s = all[0];
  EXPECT_EQ(s.errorTotal(), 0u);
  EXPECT_EQ(s.lost_datagrams, 0u);
  EXPECT_EQ(s.lost_records, 0u);
  EXPECT_EQ(s.sequence_resets, 0u);
  // The same datagram (and records) 5 passes later; times moved on with the export time.
  for (size_t i = 0; i < o.repeat; ++i) {
    size_t later = i + 5 * o.repeat;
    EXPECT_EQ(sizes[i], sizes[later]);
    size_t n = rows_before[i + 1] - rows_before[i];
    ASSERT_EQ(rows_before[later + 1] - rows_before[later], n);
    for (size_t k = 0; k < n; ++k) {
      const FlowRecord& a = sink.rows[rows_before[i] + k];
      const FlowRecord& b = sink.rows[rows_before[later] + k];
      EXPECT_EQ(a.src_addr, b.src_addr);
      EXPECT_EQ(a.bytes, b.bytes);
      if (o.format == Format::kNetflowV5 || o.format == Format::kNetflowV9) {
        // Export time renewed (3.5 s later, whole seconds in v9): the flow times follow.
        EXPECT_GE(b.first_ns, a.first_ns + 3'000'000'000) << i;
      } else if (o.format == Format::kIpfix) {
        EXPECT_EQ(b.first_ns, a.first_ns);  // absolute times are the first pass's
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, GenRepeat,
                         ::testing::Values(Case{Format::kNetflowV5, ""},
                                           Case{Format::kNetflowV9, ""}, Case{Format::kIpfix, ""},
                                           Case{Format::kSflow, ""},
                                           Case{Format::kSflow, "2001:db8::7"}),
                         [](const auto& info) {
                           std::string n = std::string(toString(info.param.format));
                           return n + (info.param.agent[0] != 0 ? "_v6_agent" : "");
                         });

TEST(GenRepeat, RecordLimitStopsBeforeADatagramThatWouldPassIt) {
  GenOptions o;
  o.format = Format::kNetflowV9;
  o.fixed_time = true;
  o.rate = 1000;
  o.repeat = 3;
  o.records = 200;
  ASSERT_EQ(validate(o), "");
  Generator gen(o);
  std::vector<uint8_t> out;
  while (gen.next(kFixedTimeNs, out)) {
  }
  EXPECT_LE(gen.stats().records, 200u);
  EXPECT_GT(gen.stats().records, 200u - 30);
}

}  // namespace
}  // namespace nc::gen
