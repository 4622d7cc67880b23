#include "collector/record/columns.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace nc {
namespace {

template <typename T>
void setField(T& f, uint64_t v) {
  f = static_cast<T>(static_cast<uint8_t>(v) | 0x80u);
}
void setField(IpAddr&, uint64_t) {}  // set by hand below

// Every byte of a FlowRecord set to a distinct value must come back from the columns: a field
// missing from NC_FLOW_COLUMNS would come back as its default and fail here.
TEST(Columns, EveryFieldRoundTrips) {
  FlowRecord r;
  IpAddr::parse("192.0.2.1", r.exporter);
  IpAddr::parse("2001:db8::1", r.src_addr);
  IpAddr::parse("2001:db8::2", r.dst_addr);
  IpAddr::parse("10.0.0.1", r.next_hop);
  uint64_t v = 1;
#define NC_SET(type, name) setField(r.name, ++v);
  NC_FLOW_COLUMNS(NC_SET)
#undef NC_SET
  FlowColumns c;
  c.append(FlowRecord{});
  c.append(r);
  ASSERT_EQ(c.size(), 2u);
  FlowRecord back = c.row(1);
#define NC_CHECK(type, name) EXPECT_TRUE(back.name == r.name) << #name;
  NC_FLOW_COLUMNS(NC_CHECK)
#undef NC_CHECK
  // And the list covers the whole record: same number of bytes of payload.
  size_t column_bytes = 0;
#define NC_SIZE(type, name) column_bytes += sizeof(type);
  NC_FLOW_COLUMNS(NC_SIZE)
#undef NC_SIZE
  size_t record_bytes = 0;
#define NC_RSIZE(type, name) record_bytes += sizeof(r.name);
  NC_FLOW_COLUMNS(NC_RSIZE)
#undef NC_RSIZE
  EXPECT_EQ(column_bytes, record_bytes);
  EXPECT_GE(sizeof(FlowRecord), record_bytes);
  EXPECT_LE(sizeof(FlowRecord) - record_bytes, 8u) << "a FlowRecord field is not a column";
}

TEST(Columns, BlockSummaryRanges) {
  FlowColumns c;
  for (uint16_t port : {443, 80, 8080}) {
    FlowRecord r;
    r.dst_port = port;
    r.first_ns = 1000u * port;
    IpAddr::parse(port == 80 ? "10.0.0.9" : "10.0.0.1", r.src_addr);
    c.append(r);
  }
  BlockSummary s;
  s.compute(c);
  EXPECT_EQ(s.rows, 3u);
  EXPECT_EQ(s[Column::dst_port].min, 80u);
  EXPECT_EQ(s[Column::dst_port].max, 8080u);
  EXPECT_EQ(s[Column::first_ns].min, 80000u);
  EXPECT_EQ(s[Column::src_addr].amin.toString(), "10.0.0.1");
  EXPECT_EQ(s[Column::src_addr].amax.toString(), "10.0.0.9");
  EXPECT_EQ(kColumnCount, 41u);  // 36 + the five name columns (2026-12-07)
}

// The summary against a plain scan: u64 columns (four chains, lengths that are not multiples of
// four, the extremes in every position), IPv4-mapped addresses (the 32-bit path, extremes that
// differ only in the low byte) and addresses mixed with IPv6 ones (the 128-bit path).
TEST(Columns, BlockSummaryAgainstAPlainScan) {
  std::mt19937_64 rng(3);
  for (size_t n : {1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u, 63u, 1000u}) {
    for (int mix = 0; mix < 3; ++mix) {
      FlowColumns c;
      for (size_t i = 0; i < n; ++i) {
        FlowRecord r;
        r.bytes = rng() >> (rng() % 64);
        r.first_ns = rng();
        r.src_addr = IpAddr::fromV4(0x0a000000u | static_cast<uint32_t>(rng() % 256));
        if (mix == 1 && i == n / 2) {
          IpAddr::parse("2001:db8::1", r.src_addr);
        }
        if (mix == 2) {
          IpAddr::parse(i % 2 ? "::1" : "ffff::", r.src_addr);  // not mapped, < and > any v4
        }
        c.append(r);
      }
      BlockSummary s;
      s.compute(c);
      uint64_t bmin = UINT64_MAX;
      uint64_t bmax = 0;
      IpAddr amin = c.src_addr[0];
      IpAddr amax = c.src_addr[0];
      for (size_t i = 0; i < n; ++i) {
        bmin = std::min(bmin, c.bytes[i]);
        bmax = std::max(bmax, c.bytes[i]);
        amin = std::min(amin, c.src_addr[i]);
        amax = std::max(amax, c.src_addr[i]);
      }
      EXPECT_EQ(s[Column::bytes].min, bmin) << n;
      EXPECT_EQ(s[Column::bytes].max, bmax) << n;
      EXPECT_EQ(s[Column::src_addr].amin, amin) << n << " mix " << mix;
      EXPECT_EQ(s[Column::src_addr].amax, amax) << n << " mix " << mix;
    }
  }
}

// assign() fills the columns with rows[order[i]] (as appending them one by one does), and the
// summary it takes tile by tile equals BlockSummary::compute afterwards: ranges merged across
// tiles, IPv4-only tiles next to tiles with IPv6 addresses below and above them, sizes around the
// tile size.
TEST(Columns, AssignWithSummaryEqualsComputeAfterwards) {
  std::mt19937_64 rng(9);
  for (size_t n : {0u, 1u, 255u, 256u, 257u, 1000u, 5000u}) {
    for (int mix = 0; mix < 3; ++mix) {
      const size_t from = 17;
      std::vector<FlowRecord> rows(n + from + 5);
      for (size_t i = 0; i < rows.size(); ++i) {
        FlowRecord& r = rows[i];
        r.first_ns = rng();
        r.bytes = rng() >> (rng() % 64);
        r.in_if = static_cast<uint32_t>(rng() % 1000);
        r.src_port = static_cast<uint16_t>(rng());
        r.proto = static_cast<uint8_t>(rng() % 3);
        r.src_addr = IpAddr::fromV4(0x0a000000u | static_cast<uint32_t>(rng() % 65536));
        r.dst_addr = IpAddr::fromV4(static_cast<uint32_t>(rng()));
        if (mix == 1 && i % 700 == 300) {
          IpAddr::parse(i % 1400 == 300 ? "::1" : "ffff::9", r.src_addr);
        }
        if (mix == 2) {
          IpAddr::parse(i % 2 ? "2001:db8::1" : "2001:db8::2", r.dst_addr);
        }
      }
      std::vector<uint32_t> order(n);
      for (size_t i = 0; i < n; ++i) {
        order[i] = static_cast<uint32_t>(from + i);
      }
      std::shuffle(order.begin(), order.end(), rng);
      FlowColumns plain;  // the same rows appended one by one
      for (uint32_t at : order) {
        plain.append(rows[at]);
      }
      FlowColumns with;
      BlockSummary got;
      got.rows = 99;
      with.assign(rows, order, got);
      BlockSummary want;
      want.compute(plain);
      ASSERT_EQ(with.size(), n);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(with.row(i).first_ns, plain.row(i).first_ns) << n << " row " << i;
        ASSERT_EQ(with.row(i).src_addr, plain.row(i).src_addr) << n << " row " << i;
      }
      EXPECT_EQ(got.rows, want.rows);
      for (size_t k = 0; k < kColumnCount; ++k) {
        EXPECT_EQ(got.cols[k].min, want.cols[k].min) << "n " << n << " mix " << mix << " col " << k;
        EXPECT_EQ(got.cols[k].max, want.cols[k].max) << "n " << n << " mix " << mix << " col " << k;
        EXPECT_EQ(got.cols[k].amin, want.cols[k].amin)
            << "n " << n << " mix " << mix << " col " << k;
        EXPECT_EQ(got.cols[k].amax, want.cols[k].amax)
            << "n " << n << " mix " << mix << " col " << k;
      }
    }
  }
}

}  // namespace
}  // namespace nc
