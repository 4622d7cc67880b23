// Column projection over the store: every query gives exactly the same result whether the scan
// decodes only the columns the query needs (QueryOptions::project, the default) or all of them;
// and the store source really leaves the other columns undecoded.
#include <gtest/gtest.h>

#include <atomic>

#include <map>
#include <mutex>
#include <random>

#include "collector/query/aggregate.hpp"
#include "collector/query/query.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/query/expect_counters.hpp"

#if __has_include("collector/store/store.hpp")
#include "collector/store/store.hpp"
#define NC_TEST_STORE 1
#endif

namespace nc::query {
namespace {

#ifdef NC_TEST_STORE

constexpr uint64_t kT = 1795687200ULL * 1000000000ULL;  // 2026-11-26T10:00:00Z
constexpr uint64_t kSec = 1000000000ULL;

// Mixed flows over ~20 minutes: v4 and v6, sampled and exporter-scaled, ICMP, several
// exporters, masks, ASes and interfaces, so every kind of filter leaf and key has work.
std::vector<FlowRecord> mixedFlows(size_t n) {
  std::mt19937_64 rng(11);
  std::vector<FlowRecord> out(n);
  for (size_t i = 0; i < n; ++i) {
    FlowRecord& r = out[i];
    uint64_t x = rng();
    if (x % 9 == 0) {
      IpAddr::parse(x % 2 ? "2001:db8::1" : "2001:db8::2", r.src_addr);
      IpAddr::parse("2001:db8:1::5", r.dst_addr);
      r.ip_version = 6;
    } else {
      r.src_addr = IpAddr::fromV4(0x0a000000u + static_cast<uint32_t>((x >> 8) % 3000));
      r.dst_addr = IpAddr::fromV4(0xc0a80000u + static_cast<uint32_t>((x >> 20) % 400));
      r.ip_version = 4;
    }
    r.exporter = IpAddr::fromV4(0x7f000001u + static_cast<uint32_t>((x >> 30) % 3));
    r.next_hop = IpAddr::fromV4(0x0a0000feu);
    static const uint8_t protos[] = {6, 6, 6, 17, 17, 1, 58};
    r.proto = protos[(x >> 33) % 7];
    r.src_port = static_cast<uint16_t>(1024 + (x >> 36) % 50000);
    static const uint16_t ports[] = {80, 443, 53, 8080, 22, 123};
    r.dst_port = ports[(x >> 40) % 6];
    if (r.proto == 1 || r.proto == 58) {
      r.icmp_type = static_cast<uint8_t>((x >> 43) % 2 ? 8 : 0);
      r.icmp_code = 0;
    }
    r.tcp_flags = static_cast<uint8_t>((x >> 45) & 0x3f);
    r.packets = 1 + (x >> 48) % 200;
    r.bytes = r.packets * (40 + (x >> 52) % 1460);
    r.first_ns = kT + rng() % (1200 * kSec);
    r.last_ns = r.first_ns + (rng() % 30000) * 1000000ULL;
    r.received_ns = r.last_ns + 1000;
    r.sampling_rate = (x >> 56) % 3 == 0 ? 100 : 1;
    r.flags = (x >> 58) % 5 == 0 ? FlowRecord::kFlagScaledByExporter : 0;
    r.src_mask = static_cast<uint8_t>(16 + (x >> 59) % 9);
    r.dst_mask = 24;
    r.src_as = static_cast<uint32_t>(64500 + (x >> 61));
    r.dst_as = 65000;
    r.in_if = static_cast<uint32_t>(1 + (x >> 60) % 4);
    r.out_if = 7;
    r.vlan = static_cast<uint16_t>((x >> 62) * 10);
    r.direction = static_cast<uint8_t>((x >> 63) & 1);
  }
  return out;
}

// One sealed segment (the first 35000 rows) and one `.open` segment (the rest, its writer kept
// alive for the whole suite), so both the footer-summary and the decoded-summary paths run.
class ProjectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("query-proj");
    store::StoreOptions o;
    o.path = (dir_->path() / "flows").string();
    o.block_rows = 3000;
    auto rs = mixedFlows(60000);
    {
      store::Writer w(o);
      w.append(std::span(rs).subspan(0, 35000));
    }
    open_writer_ = new store::Writer(o);
    open_writer_->append(std::span(rs).subspan(35000));
    open_writer_->flush();
    path_ = o.path;
  }
  static void TearDownTestSuite() {
    delete open_writer_;
    delete dir_;
  }
  static test::TempDir* dir_;
  static store::Writer* open_writer_;
  static std::string path_;
};
test::TempDir* ProjectionTest::dir_ = nullptr;
store::Writer* ProjectionTest::open_writer_ = nullptr;
std::string ProjectionTest::path_;

std::map<std::string, Counters> groups(const Aggregator& a) {
  std::map<std::string, Counters> out;
  for (size_t g = 0; g < a.size(); ++g) {
    out[std::string(reinterpret_cast<const char*>(a.key(g)), a.spec().width)] = a.counters(g);
  }
  return out;
}

void expectSameTotals(const ScanTotals& a, const ScanTotals& b, const std::string& what) {
  EXPECT_EQ(a.rows_scanned, b.rows_scanned) << what;
  EXPECT_EQ(a.flows, b.flows) << what;
  EXPECT_EQ(a.packets, b.packets) << what;
  EXPECT_EQ(a.bytes, b.bytes) << what;
  EXPECT_EQ(a.first_ns, b.first_ns) << what;
  EXPECT_EQ(a.last_ns, b.last_ns) << what;
  EXPECT_EQ(a.blocks, b.blocks) << what;
  EXPECT_EQ(a.blocks_skipped, b.blocks_skipped) << what;
  EXPECT_EQ(a.corrupt_blocks, 0u) << what;
  EXPECT_EQ(b.corrupt_blocks, 0u) << what;
}

TEST_F(ProjectionTest, AggregationsEqualFullScans) {
  auto src = openStore(path_, nullptr);
  ASSERT_TRUE(src);
  const char* filters[] = {
      "",
      "proto tcp and dst port in [80 443 8080] and bytes > 1k",
      "src net 10.0.0.0/22 or dst ip 2001:db8:1::5",
      "icmp-type 8",
      "dst port 2048",
      "duration > 1000 and pps > 10",
      "bps > 100000 or bpp < 100",
      "flags S and not flags A",
      "src as 64501 and in if 2",
      "router ip 127.0.0.2",
      "sampled",
      "packets > 100 and not proto udp",
      "vlan 10 or flowdir egress",
  };
  const char* keys[] = {"srcip",     "srcip,dstport", "ip",       "port",       "srcnet",
                        "dstnet/16", "proto,time",    "router",   "inif,outif", "srcas,dstas",
                        "next",      "tos,dir",       "srcip4/20"};
  // The same rows in memory: the store (which filters itself, decoding the other columns only
  // at matching rows) must agree with the in-memory path (filter over whole batches).
  FlowColumns all;
  all.append(mixedFlows(60000));
  MemorySource mem(all, 4096);
  EXPECT_FALSE(mem.selectsRows());
  size_t checked = 0;
  size_t round = 0;
  for (const char* f : filters) {
    ++round;
    for (size_t j = 0; j < 4; ++j) {  // every filter with 4 keys, every key with 4 filters
      const char* k = keys[(round + j * 3) % std::size(keys)];
      for (bool scaled : {true, false}) {
        auto spec = parseKeys(k, 60 * kSec, nullptr);
        ASSERT_TRUE(spec) << k;
        QueryOptions q;
        auto compiled = Filter::compile(f);
        ASSERT_TRUE(compiled) << f;
        q.filter = *compiled;
        q.since_ns = kT + 100 * kSec;
        q.until_ns = kT + 1100 * kSec;
        q.filter.restrictTime(q.since_ns, q.until_ns);
        q.scaled = scaled;
        q.threads = 2;
        std::unique_ptr<Aggregator> full;
        std::unique_ptr<Aggregator> proj;
        q.project = false;
        auto tf = aggregateFlows(*src, q, *spec, full);
        q.project = true;
        auto tp = aggregateFlows(*src, q, *spec, proj);
        std::string what =
            std::string("filter '") + f + "' keys " + k + (scaled ? " scaled" : " raw");
        expectSameTotals(tf, tp, what);
        auto gf = groups(*full);
        auto gp = groups(*proj);
        ASSERT_EQ(gf.size(), gp.size()) << what;
        for (const auto& [key, c] : gf) {
          test::expectSameCounters(c, gp[key], what);
        }
        std::unique_ptr<Aggregator> in_memory;
        auto tm = aggregateFlows(mem, q, *spec, in_memory);
        EXPECT_EQ(tm.flows, tp.flows) << what << " (memory)";
        EXPECT_EQ(tm.packets, tp.packets) << what << " (memory)";
        EXPECT_EQ(tm.bytes, tp.bytes) << what << " (memory)";
        EXPECT_EQ(tm.first_ns, tp.first_ns) << what << " (memory)";
        EXPECT_EQ(tm.last_ns, tp.last_ns) << what << " (memory)";
        auto gm = groups(*in_memory);
        ASSERT_EQ(gm.size(), gp.size()) << what << " (memory)";
        for (const auto& [key, c] : gm) {
          test::expectSameCounters(c, gp[key], what + " (memory)");
        }
        checked += tf.flows > 0;
      }
    }
  }
  EXPECT_GT(checked, 60u);  // most combinations matched something
}

TEST_F(ProjectionTest, ListingsEqualFullScans) {
  auto src = openStore(path_, nullptr);
  ASSERT_TRUE(src);
  for (const char* f : {"", "proto icmp or dst port 53", "bytes > 10k"}) {
    QueryOptions q;
    q.filter = *Filter::compile(f);
    std::vector<FlowRecord> a;
    std::vector<FlowRecord> b;
    q.project = false;
    auto ta = listFlows(*src, q, Order::kBytes, 500, a);
    q.project = true;
    auto tb = listFlows(*src, q, Order::kBytes, 500, b);
    expectSameTotals(ta, tb, f);
    ASSERT_EQ(a.size(), b.size()) << f;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].bytes, b[i].bytes) << f;
      EXPECT_EQ(a[i].src_addr, b[i].src_addr) << f;
      EXPECT_EQ(a[i].tcp_flags, b[i].tcp_flags) << f;
    }
  }
}

// The store source decodes only the columns asked for; the rest are empty vectors. It applies
// the filter itself (late materialization: the other columns are decoded only at the rows that
// match), so the batches hold just the matching rows, and it counts the rows it scanned.
TEST_F(ProjectionTest, ColumnsOutsideTheSetAreNotDecoded) {
  auto src = openStore(path_, nullptr);
  ASSERT_TRUE(src);
  EXPECT_TRUE(src->selectsRows());
  size_t tcp = 0;
  for (const FlowRecord& r : mixedFlows(60000)) {
    tcp += r.proto == 6 ? 1 : 0;
  }
  std::atomic<uint64_t> progress{0};
  src->setProgress(&progress);
  auto f = *Filter::compile("proto tcp");
  ColumnSet set = f.columns();
  addColumn(set, Column::src_addr);
  EXPECT_TRUE(hasColumn(set, Column::proto));
  ScanTotals t;
  std::mutex mu;
  size_t batches = 0;
  size_t rows = 0;
  src->scan(
      f, 0, UINT64_MAX, 2, set,
      [&](const FlowColumns& c, size_t begin, size_t end, unsigned) {
        std::lock_guard lk(mu);
        ++batches;
        rows += end - begin;
        EXPECT_EQ(c.proto.size(), c.size());
        EXPECT_EQ(c.src_addr.size(), c.size());
        EXPECT_EQ(c.first_ns.size(), c.size());
        EXPECT_TRUE(c.dst_addr.empty());
        EXPECT_TRUE(c.bytes.empty());
        EXPECT_TRUE(c.exporter.empty());
        EXPECT_TRUE(c.tcp_flags.empty());
        for (size_t i = begin; i < end; ++i) {
          EXPECT_EQ(c.proto[i], 6);
        }
      },
      t);
  EXPECT_GT(batches, 0u);
  EXPECT_EQ(rows, tcp);
  EXPECT_GT(tcp, 20000u);
  EXPECT_EQ(t.rows_scanned, 60000u);
  EXPECT_EQ(progress.load(), 60000u);
}

// Late materialization reads a block's other columns only when the filter keeps rows of it: a
// listing (every column) with a filter nothing matches reads a fraction of what one that
// matches everything reads, and finds the same nothing as the rows in memory.
TEST_F(ProjectionTest, BlocksWithoutMatchesReadOnlyTheFilterColumns) {
  auto src = openStore(path_, nullptr);
  ASSERT_TRUE(src);
  QueryOptions q;
  q.threads = 2;
  std::vector<FlowRecord> out;
  q.filter = *Filter::compile("dst port 81");  // inside every block's range, never a value
  auto none = listFlows(*src, q, Order::kFirst, 10, out);
  EXPECT_EQ(none.flows, 0u);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(none.rows_scanned, 60000u);
  q.filter = *Filter::compile("not dst port 81");
  auto every = listFlows(*src, q, Order::kFirst, 10, out);
  EXPECT_EQ(every.flows, 60000u);
  EXPECT_EQ(out.size(), 10u);
  EXPECT_LT(none.bytes_read * 2, every.bytes_read) << none.bytes_read << " vs " << every.bytes_read;
}

TEST(Projection, FilterAndKeyColumns) {
  auto f = *Filter::compile("dst port 443 and duration > 5 and src net 10.0.0.0/8");
  ColumnSet s = f.columns();
  for (Column c :
       {Column::dst_port, Column::proto, Column::icmp_type, Column::icmp_code, Column::first_ns,
        Column::last_ns, Column::packets, Column::bytes, Column::src_addr}) {
    EXPECT_TRUE(hasColumn(s, c)) << static_cast<int>(c);
  }
  EXPECT_FALSE(hasColumn(s, Column::dst_addr));
  EXPECT_TRUE(Filter().columns().none());
  auto spec = *parseKeys("srcnet", 0, nullptr);
  ColumnSet k = keyColumns(spec, false);
  EXPECT_TRUE(hasColumn(k, Column::src_addr));
  EXPECT_TRUE(hasColumn(k, Column::src_mask));
  EXPECT_FALSE(hasColumn(k, Column::sampling_rate));
  EXPECT_TRUE(hasColumn(keyColumns(spec, true), Column::sampling_rate));
  EXPECT_TRUE(hasColumn(keyColumns(spec, true), Column::flags));
}

#else

TEST(Projection, NeedsTheStore) {
  GTEST_SKIP() << "this build has no flow store";
}

#endif

}  // namespace
}  // namespace nc::query
