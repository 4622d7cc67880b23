// Aggregation keys, top-N, time buckets, and queries over memory with 1 and 2 threads.
#include "collector/query/aggregate.hpp"
#include "tests/unit/query/expect_counters.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "collector/query/input.hpp"
#include "collector/query/query.hpp"
#include "collector/record/fields.hpp"

namespace nc::query {
namespace {

constexpr uint64_t kT = 1795687200ULL * 1000000000ULL;  // 2026-11-26T10:00:00Z
constexpr uint64_t kSec = 1000000000ULL;

FlowRecord flow(const char* src, const char* dst, uint16_t sport, uint16_t dport, uint8_t proto,
                uint64_t packets, uint64_t bytes, uint64_t first_s = 0, uint32_t sampling = 1) {
  FlowRecord r;
  IpAddr::parse(src, r.src_addr);
  IpAddr::parse(dst, r.dst_addr);
  r.src_port = sport;
  r.dst_port = dport;
  r.proto = proto;
  r.packets = packets;
  r.bytes = bytes;
  r.first_ns = kT + first_s * kSec;
  r.last_ns = r.first_ns + 2 * kSec;
  r.sampling_rate = sampling;
  r.src_mask = 24;
  r.dst_mask = 16;
  r.ip_version = r.src_addr.isV4() ? 4 : 6;
  return r;
}

FlowColumns sample() {
  FlowColumns c;
  c.append(flow("10.0.0.1", "192.168.1.1", 1000, 443, 6, 10, 1000, 0));
  c.append(flow("10.0.0.1", "192.168.1.2", 1001, 80, 6, 5, 500, 30));
  c.append(flow("10.0.0.2", "192.168.1.1", 53, 53, 17, 1, 100, 61, 10));  // sampled 1:10
  c.append(flow("10.0.1.9", "10.0.0.1", 2000, 443, 6, 2, 200, 125));
  c.append(flow("2001:db8::1", "2001:db8::2", 3000, 443, 6, 3, 3000, 130));
  return c;
}

std::map<std::string, Counters> groups(const Aggregator& a) {
  std::map<std::string, Counters> out;
  for (size_t g = 0; g < a.size(); ++g) {
    std::string k;
    for (const auto& t : a.keyText(a.key(g))) {
      k += (k.empty() ? "" : "|") + t;
    }
    out[k] = a.counters(g);
  }
  return out;
}

Aggregator run(const FlowColumns& c, const std::string& keys, bool scaled = true,
               const std::string& filter = "", uint64_t bucket = 60 * kSec) {
  std::string why;
  auto spec = parseKeys(keys, bucket, &why);
  EXPECT_TRUE(spec) << keys << ": " << why;
  Aggregator a(*spec, scaled);
  auto f = Filter::compile(filter);
  std::vector<uint32_t> rows;
  f->select(c, 0, c.size(), rows);
  a.add(c, rows.data(), rows.size());
  return a;
}

TEST(Aggregate, KeyNamesFromRegistryAndNfdump) {
  auto c = sample();
  auto by_src = groups(run(c, "srcip"));
  ASSERT_EQ(by_src.size(), 4u);
  EXPECT_EQ(by_src["10.0.0.1"].flows, 2u);
  EXPECT_EQ(by_src["10.0.0.1"].bytes, 1500u);
  EXPECT_EQ(by_src["10.0.0.2"].bytes, 1000u);  // scaled 100 x 10
  EXPECT_EQ(groups(run(c, "src_addr")).size(), 4u);
  EXPECT_EQ(groups(run(c, "srcip", false))["10.0.0.2"].bytes, 100u);  // raw

  auto pairs = groups(run(c, "srcip,dstport"));
  EXPECT_EQ(pairs.size(), 5u);
  EXPECT_EQ(pairs["10.0.0.1|443"].packets, 10u);

  auto proto = groups(run(c, "proto"));
  EXPECT_EQ(proto["6"].flows, 4u);
  EXPECT_EQ(proto["17"].packets, 10u);

  auto nets = groups(run(c, "srcnet/16"));
  EXPECT_EQ(nets["10.0.0.0/16"].flows, 4u);
  EXPECT_EQ(nets["2001:db8::/64"].flows, 1u);
  auto recnets = groups(run(c, "srcnet"));  // the record's own src_mask (24)
  EXPECT_EQ(recnets["10.0.0.0/24"].flows, 3u);
  EXPECT_EQ(recnets["10.0.1.0/24"].flows, 1u);
  auto v6 = groups(run(c, "srcip6/32"));
  EXPECT_EQ(v6["2001:db8::/32"].flows, 1u);
  EXPECT_EQ(v6["10.0.0.1/32"].flows, 2u);  // IPv4 untouched by the IPv6 length
}

TEST(Aggregate, EitherSideCountsBothEnds) {
  auto c = sample();
  auto ip = groups(run(c, "ip"));
  // 10.0.0.1 is the source of two flows and the destination of one.
  EXPECT_EQ(ip["10.0.0.1"].flows, 3u);
  EXPECT_EQ(ip["192.168.1.1"].flows, 2u);
  auto port = groups(run(c, "port"));
  EXPECT_EQ(port["443"].flows, 3u);
  EXPECT_EQ(port["53"].flows, 2u);  // 53 -> 53 counted for each side, as nfdump -s port does
  std::string why;
  EXPECT_FALSE(parseKeys("ip,proto", 0, &why));
  EXPECT_NE(why.find("must be the only key"), std::string::npos);
}

TEST(Aggregate, TopOrdersAndLimits) {
  auto c = sample();
  auto a = run(c, "srcip");
  auto idx = a.top(Metric::kBytes, 2);
  ASSERT_EQ(idx.size(), 2u);
  EXPECT_EQ(a.keyText(a.key(idx[0]))[0], "2001:db8::1");  // 3000
  EXPECT_EQ(a.keyText(a.key(idx[1]))[0], "10.0.0.1");     // 1500
  idx = a.top(Metric::kFlows, 0);
  EXPECT_EQ(idx.size(), 4u);
  EXPECT_EQ(a.keyText(a.key(idx[0]))[0], "10.0.0.1");
  // pps/bps over the group's span: 10.0.0.1 spans 0..32 s with 15 packets.
  EXPECT_EQ(a.counters(idx[0]).durationMs(), 32000u);
  EXPECT_EQ(a.counters(idx[0]).pps(), 0u);  // 15 * 1000 / 32000
  EXPECT_EQ(a.counters(idx[0]).bps(), 375u);
  EXPECT_EQ(a.counters(idx[0]).bpp(), 100u);
  nlohmann::json j;
  a.keyJson(a.key(idx[0]), j);
  EXPECT_EQ(j["src_addr"], "10.0.0.1");
  auto p = run(c, "dstport");
  nlohmann::json jp;
  p.keyJson(p.key(p.top(Metric::kFlows, 1)[0]), jp);
  EXPECT_EQ(jp["dst_port"], 443);  // numbers stay numbers
}

TEST(Aggregate, TimeBuckets) {
  auto c = sample();
  auto a = run(c, "time", true, "", 60 * kSec);
  auto t = groups(a);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t["2026-11-26T10:00:00.000Z"].flows, 2u);
  EXPECT_EQ(t["2026-11-26T10:01:00.000Z"].flows, 1u);
  EXPECT_EQ(t["2026-11-26T10:02:00.000Z"].flows, 2u);
  auto order = a.byKey();
  EXPECT_EQ(a.keyText(a.key(order[0]))[0], "2026-11-26T10:00:00.000Z");
  EXPECT_EQ(a.keyText(a.key(order[2]))[0], "2026-11-26T10:02:00.000Z");
}

TEST(Aggregate, BadKeys) {
  std::string why;
  EXPECT_FALSE(parseKeys("nonsense", 0, &why));
  EXPECT_NE(why.find("unknown key 'nonsense'"), std::string::npos);
  EXPECT_FALSE(parseKeys("srcnet/40", 0, &why));
  EXPECT_FALSE(parseKeys("proto/8", 0, &why));
  EXPECT_FALSE(parseKeys("srcip,,dstip", 0, &why));
  EXPECT_TRUE(parseKeys("SrcIP, dstport ,proto,inif,outif,srcas,dstas,router,next", 0, &why))
      << why;
}

// Many rows, many groups: the table grows, and 1 vs 2 threads (per-worker maps merged) agree.
TEST(Query, ThreadsAgreeAndTotalsMatch) {
  FlowColumns c;
  for (uint32_t i = 0; i < 300000; ++i) {
    FlowRecord r;
    r.src_addr = IpAddr::fromV4(0x0a000000 + i % 5000);
    r.dst_addr = IpAddr::fromV4(0xc0a80000 + i % 77);
    r.dst_port = static_cast<uint16_t>(i % 1000);
    r.proto = i % 3 == 0 ? 17 : 6;
    r.packets = 1 + i % 7;
    r.bytes = 100 + i % 1500;
    r.first_ns = kT + i * 1000000ULL;
    r.last_ns = r.first_ns + 5000000;
    r.sampling_rate = i % 2 ? 1 : 4;
    c.append(r);
  }
  auto spec = parseKeys("srcip,dstport", 0, nullptr);
  ASSERT_TRUE(spec);
  std::map<std::string, Counters> ref;
  ScanTotals ref_totals;
  for (unsigned threads : {1u, 2u}) {
    MemorySource src(c, 10000);
    QueryOptions q;
    q.filter = *Filter::compile("proto tcp and dst port < 500");
    q.threads = threads;
    std::unique_ptr<Aggregator> agg;
    auto t = aggregateFlows(src, q, *spec, agg);
    EXPECT_EQ(t.rows_scanned, 300000u);
    uint64_t flows = 0;
    uint64_t bytes = 0;
    for (size_t g = 0; g < agg->size(); ++g) {
      flows += agg->counters(g).flows;
      bytes += agg->counters(g).bytes;
    }
    EXPECT_EQ(flows, t.flows);
    EXPECT_EQ(bytes, t.bytes);
    auto gs = groups(*agg);
    if (threads == 1) {
      ref = gs;
      ref_totals = t;
    } else {
      EXPECT_EQ(t.flows, ref_totals.flows);
      ASSERT_EQ(gs.size(), ref.size());
      for (const auto& [k, v] : ref) {
        EXPECT_EQ(gs[k].bytes, v.bytes) << k;
        EXPECT_EQ(gs[k].first_ns, v.first_ns) << k;
      }
    }
  }
}

// The IPv4 fast path: chunks whose key addresses are all IPv4 are aggregated under 4-byte keys
// and folded back at the end. Over chunks that are all-v4, mixed and v6-only (and the same
// addresses in several of them), every key gives exactly the groups of one plain Aggregator that
// sees every row under the full keys.
TEST(Query, V4FastPathEqualsFullKeys) {
  FlowColumns c;
  const size_t chunk = 1000;
  for (size_t i = 0; i < 6 * chunk; ++i) {
    const size_t part = i / chunk;  // 0, 2, 4: IPv4 only; 1: mixed; 3: IPv6 only; 5: one v6 row
    const bool v6 = part == 3 || (part == 1 && i % 7 == 0) || (part == 5 && i % chunk == 999);
    const uint32_t host = static_cast<uint32_t>((i * 2654435761u) % 300);
    FlowRecord r =
        flow("10.0.0.1", "192.168.1.1", static_cast<uint16_t>(1000 + i % 50), i % 3 == 0 ? 443 : 80,
             i % 5 == 0 ? 17 : 6, 1 + i % 13, 100 + i % 997, i % 600, i % 4 == 0 ? 10 : 1);
    r.src_addr = IpAddr::fromV4(0x0a000000u + host);
    r.dst_addr = IpAddr::fromV4(0xc0a80000u + host % 17);
    r.exporter = IpAddr::fromV4(0x7f000001u + static_cast<uint32_t>(i % 3));
    if (v6) {
      std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
      b[15] = static_cast<uint8_t>(host);
      r.src_addr = IpAddr::fromV6(b.data());
      b[14] = 1;
      r.dst_addr = IpAddr::fromV6(b.data());
    }
    c.append(r);
  }
  for (const char* keys : {"srcip", "dstip", "ip", "srcip,dstport", "proto,srcip,dstip", "router",
                           "dstport,srcip", "srcnet/24,srcip"}) {
    auto spec = parseKeys(keys, 60 * kSec, nullptr);
    ASSERT_TRUE(spec) << keys;
    EXPECT_TRUE(v4KeySpec(*spec)) << keys;
    for (const char* filter : {"", "proto tcp and bytes > 300"}) {
      auto f = Filter::compile(filter);
      ASSERT_TRUE(f);
      Aggregator plain(*spec, true);
      std::vector<uint32_t> rows;
      f->select(c, 0, c.size(), rows);
      plain.add(c, rows.data(), rows.size());
      for (unsigned threads : {1u, 2u}) {
        MemorySource src(c, chunk);
        QueryOptions q;
        q.filter = *f;
        q.threads = threads;
        std::unique_ptr<Aggregator> agg;
        aggregateFlows(src, q, *spec, agg);
        const std::string what =
            std::string(keys) + " '" + filter + "' " + std::to_string(threads) + " threads";
        ASSERT_EQ(agg->size(), plain.size()) << what;
        std::map<std::string, Counters> want;
        for (size_t g = 0; g < plain.size(); ++g) {
          want[std::string(reinterpret_cast<const char*>(plain.key(g)), spec->width)] =
              plain.counters(g);
        }
        for (size_t g = 0; g < agg->size(); ++g) {
          const std::string k(reinterpret_cast<const char*>(agg->key(g)), spec->width);
          ASSERT_EQ(want.count(k), 1u) << what;
          test::expectSameCounters(agg->counters(g), want[k], what);
        }
        // Same order of the top list (ties broken by the full key bytes).
        EXPECT_EQ(agg->keyText(agg->key(agg->top(Metric::kBytes, 1)[0])),
                  plain.keyText(plain.key(plain.top(Metric::kBytes, 1)[0])))
            << what;
      }
    }
  }
}

// Randomized: the hash-table aggregator (one table, merged tables, the IPv4 compact path folded
// back) against a std::map over key bytes. A group's key bytes come from a one-row aggregator (key
// building is not under test here); its counters are summed from the records.
TEST(Aggregate, RandomizedAgainstMapReference) {
  std::mt19937_64 rng(20261127);
  const size_t kChunk = 4096;
  const size_t kChunks = 12;
  FlowColumns c;
  std::vector<FlowRecord> recs;
  for (size_t i = 0; i < kChunk * kChunks; ++i) {
    const size_t chunk = i / kChunk;
    // Chunks 3 and 8 hold some IPv6 rows, chunk 10 only IPv6: the others take the v4 path.
    const bool v6 = chunk == 10 || ((chunk == 3 || chunk == 8) && rng() % 5 == 0);
    FlowRecord r = flow("10.0.0.1", "10.0.0.2", 0, 0, 6, 0, 0);
    const uint32_t src = static_cast<uint32_t>(rng() % 6000);  // grows the table several times
    const uint32_t dst = static_cast<uint32_t>(rng() % 300);
    r.src_addr = IpAddr::fromV4(0x0a000000u + src * 97);
    r.dst_addr = IpAddr::fromV4(0xc0a80000u + dst);
    if (v6) {
      std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
      b[14] = static_cast<uint8_t>(src >> 8);
      b[15] = static_cast<uint8_t>(src);
      r.src_addr = IpAddr::fromV6(b.data());
      b[13] = 1;
      b[15] = static_cast<uint8_t>(dst);
      r.dst_addr = IpAddr::fromV6(b.data());
    }
    r.src_port = static_cast<uint16_t>(rng() % 2000);
    r.dst_port = static_cast<uint16_t>(rng() % 8 == 0 ? rng() % 65536 : 443 + rng() % 3);
    r.proto = static_cast<uint8_t>(std::array<int, 4>{6, 17, 1, 47}[rng() % 4]);
    r.packets = rng() % 1000;
    r.bytes = rng() % 3 == 0 ? rng() : rng() % 1500000;  // some sums wrap around
    r.first_ns = kT + rng() % (3600 * kSec);
    r.last_ns = r.first_ns + rng() % (120 * kSec);
    // Chunks 0..5 all 1:1 (the no-multiply path); the others mixed rates, some pre-scaled.
    r.sampling_rate =
        chunk < 6 ? 1 : static_cast<uint32_t>(std::array<int, 4>{1, 10, 100, 0}[rng() % 4]);
    r.flags = rng() % 4 == 0 ? FlowRecord::kFlagScaledByExporter : 0;
    r.src_mask = static_cast<uint8_t>(rng() % 33);
    r.dst_mask = static_cast<uint8_t>(rng() % 33);
    r.ip_version = v6 ? 6 : 4;
    c.append(r);
    recs.push_back(r);
  }
  using Ref = std::map<std::string, Counters>;
  for (const char* keys :
       {"srcip", "srcip,dstport", "proto", "dstport", "proto,srcport", "ip", "port", "time",
        "time,proto", "srcnet/24,dstip", "srcnet", "dstip,srcport,proto"}) {
    std::string why;
    auto spec = parseKeys(keys, 300 * kSec, &why);
    ASSERT_TRUE(spec) << keys << ": " << why;
    const size_t w = spec->width;
    const auto compact = v4KeySpec(*spec);
    for (bool scaled : {true, false}) {
      const std::string what = std::string(keys) + (scaled ? " scaled" : " raw");
      // Reference.
      Ref want;
      for (uint32_t i = 0; i < recs.size(); ++i) {
        Aggregator one(*spec, scaled, 2);
        one.add(c, &i, 1);
        Counters rc;
        rc.flows = 1;
        rc.packets = scaled ? recs[i].scaledPackets() : recs[i].packets;
        rc.bytes = scaled ? recs[i].scaledBytes() : recs[i].bytes;
        rc.first_ns = recs[i].first_ns;
        rc.last_ns = recs[i].last_ns;
        for (size_t g = 0; g < one.size(); ++g) {
          // An either-sided key equal on both sides counts the flow twice.
          for (uint64_t t = 0; t < one.counters(g).flows; ++t) {
            want[std::string(reinterpret_cast<const char*>(one.key(g)), w)].add(rc);
          }
        }
      }
      // One aggregator, all rows in one call; and one per chunk group (some rows filtered out of
      // no chunk), merged, with the IPv4-only chunks on the compact spec, folded back.
      std::vector<uint32_t> all(recs.size());
      std::iota(all.begin(), all.end(), 0u);
      Aggregator single(*spec, scaled, 16);
      single.add(c, all.data(), all.size());
      std::vector<Aggregator> parts;
      std::vector<Aggregator> parts4;
      for (size_t k = 0; k < 3; ++k) {
        parts.emplace_back(*spec, scaled);
        if (compact) {
          parts4.emplace_back(*compact, scaled);
        }
      }
      for (size_t ch = 0; ch < kChunks; ++ch) {
        const uint32_t* rows = all.data() + ch * kChunk;
        const size_t k = ch % 3;
        if (compact && rowsAreV4(c, *compact, rows, kChunk)) {
          parts4[k].add(c, rows, kChunk);
        } else {
          parts[k].add(c, rows, kChunk);
        }
      }
      Aggregator merged(*spec, scaled, 4);
      for (const auto& p : parts) {
        merged.merge(p);
      }
      if (compact) {
        Aggregator merged4(*compact, scaled);
        for (const auto& p : parts4) {
          merged4.merge(p);
        }
        merged.mergeCompact(merged4);
        // Folding into an empty table (every batch IPv4) takes the insert-only path.
        Aggregator fresh(*spec, scaled);
        fresh.mergeCompact(merged4);
        Aggregator direct(*spec, scaled);
        for (size_t ch = 0; ch < kChunks; ++ch) {
          const uint32_t* rows = all.data() + ch * kChunk;
          if (rowsAreV4(c, *compact, rows, kChunk)) {
            direct.add(c, rows, kChunk);
          }
        }
        auto asMap = [&](const Aggregator& a) {
          std::map<std::string, std::array<uint64_t, 5>> out;
          for (size_t g = 0; g < a.size(); ++g) {
            const Counters x = a.counters(g);
            out[std::string(reinterpret_cast<const char*>(a.key(g)), w)] = {
                x.flows, x.packets, x.bytes, x.first_ns, x.last_ns};
          }
          return out;
        };
        EXPECT_EQ(asMap(fresh), asMap(direct)) << what;
      }
      for (const Aggregator* a : {&single, &merged}) {
        ASSERT_EQ(a->size(), want.size()) << what;
        for (size_t g = 0; g < a->size(); ++g) {
          const std::string k(reinterpret_cast<const char*>(a->key(g)), w);
          auto it = want.find(k);
          ASSERT_NE(it, want.end()) << what;
          const Counters got = a->counters(g);
          EXPECT_EQ(got.flows, it->second.flows) << what;
          EXPECT_EQ(got.packets, it->second.packets) << what;
          EXPECT_EQ(got.bytes, it->second.bytes) << what;
          EXPECT_EQ(got.first_ns, it->second.first_ns) << what;
          EXPECT_EQ(got.last_ns, it->second.last_ns) << what;
        }
        // top(): metric descending, ties by key bytes ascending (std::string compares as memcmp).
        for (Metric m : {Metric::kBytes, Metric::kFlows, Metric::kBps}) {
          std::vector<std::pair<uint64_t, std::string>> order;
          for (const auto& [k, v] : want) {
            order.emplace_back(metricOf(v, m), k);
          }
          std::stable_sort(order.begin(), order.end(),
                           [](const auto& x, const auto& y) { return x.first > y.first; });
          for (size_t limit : {size_t{0}, size_t{25}}) {
            const std::vector<size_t> idx = a->top(m, limit);
            ASSERT_EQ(idx.size(), limit == 0 ? order.size() : std::min(limit, order.size()))
                << what;
            for (size_t j = 0; j < idx.size(); ++j) {
              ASSERT_EQ(std::string(reinterpret_cast<const char*>(a->key(idx[j])), w),
                        order[j].second)
                  << what << " top #" << j;
            }
          }
        }
        // byKey(): every group once, in the same order as the single-call aggregator's.
        const std::vector<size_t> bk = a->byKey();
        const std::vector<size_t> bk1 = single.byKey();
        ASSERT_EQ(bk.size(), bk1.size()) << what;
        for (size_t j = 0; j < bk.size(); ++j) {
          ASSERT_EQ(std::memcmp(a->key(bk[j]), single.key(bk1[j]), w), 0) << what;
        }
      }
    }
  }
}

// Keys of up to 4 bytes whose values lie close together find their groups through a direct
// array set up by the first batch (Aggregator::denseGroups). Against one-row aggregators summed:
// later batches below and above the first batch's range, IPv4 keys (compared in network byte
// order), a first batch too wide for the array (the hash path throughout), and merges.
TEST(Aggregate, DenseKeysAgainstMapReference) {
  std::mt19937_64 rng(7);
  const size_t kBatch = 2000;
  const size_t kBatches = 8;
  FlowColumns c;
  std::vector<FlowRecord> recs;
  for (size_t i = 0; i < kBatch * kBatches; ++i) {
    const size_t b = i / kBatch;
    FlowRecord r = flow("10.0.0.1", "10.0.0.2", 0, 0, 6, 0, 0);
    // Batches 0-2 inside 10.1.0.0/20, ports 1000-1049, interfaces 5-14; then below the range
    // (10.0.255.x), above it (11.0.0.x), and anything.
    const uint32_t a = b < 3       ? 0x0a010000u + static_cast<uint32_t>(rng() % 4096)
                       : b == 3    ? 0x0a00ff00u + static_cast<uint32_t>(rng() % 256)
                       : b == 4    ? 0x0b000000u + static_cast<uint32_t>(rng() % 100)
                       : rng() % 2 ? 0x0a010000u + static_cast<uint32_t>(rng() % 4096)
                                   : static_cast<uint32_t>(rng());
    r.src_addr = IpAddr::fromV4(a);
    r.dst_port = static_cast<uint16_t>(b < 3 ? 1000 + rng() % 50 : rng() % 65536);
    r.in_if = static_cast<uint32_t>(b < 3 ? 5 + rng() % 10 : b == 4 ? 3 : rng());
    r.packets = rng() % 1000;
    r.bytes = rng() % 1500000;
    r.first_ns = kT + rng() % (3600 * kSec);
    r.last_ns = r.first_ns + rng() % (120 * kSec);
    c.append(r);
    recs.push_back(r);
  }
  for (const char* keys : {"srcip", "dstport", "inif"}) {
    std::string why;
    auto full = parseKeys(keys, 300 * kSec, &why);
    ASSERT_TRUE(full) << keys;
    // srcip: the 4-byte IPv4 form (every row here is IPv4), as the query's fast path uses it.
    const KeySpec spec = v4KeySpec(*full).value_or(*full);
    ASSERT_LE(spec.width, 4u) << keys;
    using Sums = std::map<std::string, std::array<uint64_t, 5>>;
    auto sums = [&](const Aggregator& a) {
      Sums out;
      for (size_t g = 0; g < a.size(); ++g) {
        const Counters x = a.counters(g);
        out[std::string(reinterpret_cast<const char*>(a.key(g)), spec.width)] = {
            x.flows, x.packets, x.bytes, x.first_ns, x.last_ns};
      }
      return out;
    };
    std::map<std::string, Counters> ref;
    for (uint32_t i = 0; i < recs.size(); ++i) {
      Aggregator one(spec, false, 2);
      one.add(c, &i, 1);
      ASSERT_EQ(one.size(), 1u);
      ref[std::string(reinterpret_cast<const char*>(one.key(0)), spec.width)].add(one.counters(0));
    }
    Sums want;
    for (const auto& [k, x] : ref) {
      want[k] = {x.flows, x.packets, x.bytes, x.first_ns, x.last_ns};
    }
    EXPECT_GT(want.size(), 1000u) << keys;
    // Batches in order (the first sets a narrow range), and from the last one backwards (the
    // first is too wide: no array); two aggregators of alternate batches, merged.
    for (bool backwards : {false, true}) {
      const std::string what = std::string(keys) + (backwards ? " backwards" : "");
      Aggregator one(spec, false);
      Aggregator half[2] = {Aggregator(spec, false), Aggregator(spec, false)};
      for (size_t k = 0; k < kBatches; ++k) {
        const size_t b = backwards ? kBatches - 1 - k : k;
        std::vector<uint32_t> rows(kBatch);
        std::iota(rows.begin(), rows.end(), static_cast<uint32_t>(b * kBatch));
        one.add(c, rows.data(), rows.size());
        half[k % 2].add(c, rows.data(), rows.size());
      }
      Aggregator merged(spec, false);
      merged.merge(half[0]);
      merged.merge(half[1]);
      for (const Aggregator* a : {&one, &merged}) {
        EXPECT_EQ(sums(*a), want) << what;
      }
    }
  }
}

TEST(Query, V4KeySpecAndRowsAreV4) {
  EXPECT_FALSE(v4KeySpec(*parseKeys("dstport,proto", 0, nullptr)));
  EXPECT_FALSE(v4KeySpec(*parseKeys("srcnet/24", 0, nullptr)));  // masked: stays 16 bytes
  auto compact = v4KeySpec(*parseKeys("srcip,dstport", 0, nullptr));
  ASSERT_TRUE(compact);
  EXPECT_EQ(compact->width, 6u);
  EXPECT_EQ(compact->parts[0].kind, KeyPart::Kind::kV4Addr);
  EXPECT_EQ(compact->parts[1].offset, 4u);
  auto c = sample();  // rows 0..3 IPv4, row 4 IPv6
  const uint32_t v4_rows[] = {0, 1, 2, 3};
  const uint32_t all_rows[] = {0, 1, 2, 3, 4};
  EXPECT_TRUE(rowsAreV4(c, *compact, v4_rows, 4));
  EXPECT_FALSE(rowsAreV4(c, *compact, all_rows, 5));
  EXPECT_TRUE(rowsAreV4(c, *compact, all_rows, 0));
  // A compact aggregator's keys print as the addresses.
  Aggregator a(*compact, true);
  a.add(c, v4_rows, 4);
  auto g = groups(a);
  EXPECT_EQ(g.count("10.0.0.1|443"), 1u);
  EXPECT_EQ(g["10.0.0.1|80"].bytes, 500u);
}

TEST(Query, ListOrderLimitAndWindow) {
  auto c = sample();
  MemorySource src(c);
  QueryOptions q;
  std::vector<FlowRecord> out;
  auto t = listFlows(src, q, Order::kBytes, 3, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].bytes, 3000u);
  EXPECT_EQ(out[1].bytes, 1000u);
  EXPECT_EQ(out[2].bytes, 100u);  // 100 x 10 sampled = 1000 scaled, started later
  EXPECT_EQ(t.flows, 5u);
  EXPECT_EQ(t.bytes, 3000u + 1000 + 500 + 1000 + 200);
  q.scaled = false;
  listFlows(src, q, Order::kBytes, 3, out);
  EXPECT_EQ(out[2].bytes, 500u);
  q.filter.restrictTime(kT + 30 * kSec, kT + 126 * kSec);
  q.scaled = true;
  t = listFlows(src, q, Order::kFirst, 0, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].first_ns, kT + 30 * kSec);
  EXPECT_EQ(out[2].first_ns, kT + 125 * kSec);
  EXPECT_EQ(t.first_ns, kT + 30 * kSec);
}

TEST(Query, TimeSpecs) {
  uint64_t now = kT;
  uint64_t v = 0;
  std::string why;
  EXPECT_TRUE(parseTimeSpec("now", now, v, &why));
  EXPECT_EQ(v, now);
  EXPECT_TRUE(parseTimeSpec("-1h", now, v, &why));
  EXPECT_EQ(v, now - 3600 * kSec);
  EXPECT_TRUE(parseTimeSpec("30m", now, v, &why));
  EXPECT_EQ(v, now - 1800 * kSec);
  EXPECT_TRUE(parseTimeSpec("2026-11-26T09:00:00Z", now, v, &why));
  EXPECT_EQ(v, now - 3600 * kSec);
  EXPECT_TRUE(parseTimeSpec("2026-11-26T10:00:00+01:00", now, v, &why));
  EXPECT_EQ(v, now - 3600 * kSec);
  EXPECT_TRUE(parseTimeSpec("2026-11-26 10:00", now, v, &why));
  EXPECT_EQ(v, now);
  EXPECT_TRUE(parseTimeSpec("2026-11-26 10:00:30", now, v, &why));
  EXPECT_EQ(v, now + 30 * kSec);
  EXPECT_TRUE(parseTimeSpec("2026-11-26", now, v, &why));
  EXPECT_EQ(v, now - 10 * 3600 * kSec);
  EXPECT_TRUE(parseTimeSpec("@1795687200", now, v, &why));
  EXPECT_EQ(v, now);
  EXPECT_FALSE(parseTimeSpec("yesterday", now, v, &why));
  EXPECT_NE(why.find("bad time 'yesterday'"), std::string::npos) << why;
  EXPECT_FALSE(parseTimeSpec("-1x", now, v, &why));
}

TEST(Input, ReadsOwnJsonLinesAndNfdumpJson) {
  FlowColumns c;
  std::stringstream own(
      R"({"first":"2026-11-26T10:00:01.000Z","src_addr":"10.0.0.1","dst_addr":"10.0.0.2","proto":6,"packets":3,"bytes":300})"
      "\n\n"
      R"({"first":"2026-11-26T10:00:02.000Z","src_addr":"10.0.0.3","dst_addr":"10.0.0.4","proto":17})"
      "\n");
  readFlows(own, "own", c);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.packets[0], 3u);
  // nfdump -o json: an array of pretty-printed objects, local time (TZ is UTC in tests).
  setenv("TZ", "UTC", 1);
  tzset();
  std::stringstream nf(R"([
{
	"type" : "FLOW",
	"first" : "2026-11-26T16:13:06.202",
	"last" : "2026-11-26T16:14:02.387",
	"in_packets" : 87,
	"in_bytes" : 77430,
	"proto" : 6,
	"tcp_flags" : "...AP.SF",
	"src_port" : 11120,
	"dst_port" : 80,
	"src_tos" : 4,
	"src4_addr" : "10.0.143.149",
	"dst4_addr" : "192.168.65.182",
	"input_snmp" : 6,
	"output_snmp" : 2,
	"src_mask" : 16,
	"direction" : 0,
	"src_as" : 65278,
	"ip4_next_hop" : "172.16.0.1",
	"ip4_router" : "127.0.0.1"
},
{
	"type" : "FLOW",
	"first" : "2026-11-26T16:13:45.015",
	"last" : "2026-11-26T16:14:02.957",
	"in_packets" : 70,
	"in_bytes" : 73990,
	"proto" : 1,
	"icmp_type" : 8,
	"icmp_code" : 0,
	"src6_addr" : "2001:db8::1",
	"dst6_addr" : "2001:db8::2",
	"ip6_router" : "2001:db8::ff"
}])");
  FlowColumns n;
  readFlows(nf, "nf", n);
  ASSERT_EQ(n.size(), 2u);
  FlowRecord a = n.row(0);
  EXPECT_EQ(formatTime(a.first_ns), "2026-11-26T16:13:06.202Z");
  EXPECT_EQ(a.packets, 87u);
  EXPECT_EQ(a.bytes, 77430u);
  EXPECT_EQ(a.tcp_flags, 0x1b);
  EXPECT_EQ(a.tos, 4);
  EXPECT_EQ(a.src_addr.toString(), "10.0.143.149");
  EXPECT_EQ(a.in_if, 6u);
  EXPECT_EQ(a.src_as, 65278u);
  EXPECT_EQ(a.next_hop.toString(), "172.16.0.1");
  EXPECT_EQ(a.exporter.toString(), "127.0.0.1");
  EXPECT_EQ(a.ip_version, 4);
  FlowRecord b = n.row(1);
  EXPECT_EQ(b.dst_port, 8 << 8);
  EXPECT_EQ(b.icmp_type, 8);
  EXPECT_EQ(b.ip_version, 6);
  EXPECT_EQ(b.exporter.toString(), "2001:db8::ff");

  std::stringstream bad("{\"src_port\": \"x\"}\n");
  FlowColumns x;
  EXPECT_THROW(readFlows(bad, "bad", x), std::runtime_error);
}

}  // namespace
}  // namespace nc::query
