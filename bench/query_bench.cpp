// Query throughput: rows/s of `top srcip by bytes` and of a filtered `-A srcip,dstport` over
// FlowColumns in memory, on 1 and 2 threads; and the same over flows written to a temporary
// store (scan + decompress + filter + aggregate). Run: build/bin/nc-bench-query [--rows=N]
// [--store=DIR] [--benchmark_filter=...]; "items_per_second" is rows scanned per second.
//   --rows=N     flows generated (default 2000000; the store benchmarks use the same flows)
//   --store=DIR  keep the store in DIR: written there when DIR does not exist, reused (as is)
//                when it does, never deleted; lets `net-collector top --store DIR` run on it.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "collector/query/aggregate.hpp"
#include "collector/query/filter.hpp"
#include "collector/query/query.hpp"
#include "collector/store/store.hpp"

namespace {

using namespace nc;
using namespace nc::query;

size_t kRows = 2'000'000;  // --rows
std::string kStoreDir;     // --store

// Synthetic flows: 50k sources (zipf-ish skew), 5k destinations, the usual port/protocol mix.
const std::vector<FlowRecord>& records() {
  static const std::vector<FlowRecord> rs = [] {
    std::vector<FlowRecord> v;
    v.reserve(kRows);
    std::mt19937_64 rng(42);
    const uint16_t ports[] = {80, 443, 53, 123, 22, 8080};
    const uint64_t t0 = 1795687200ULL * 1000000000ULL;
    for (size_t i = 0; i < kRows; ++i) {
      FlowRecord r;
      uint64_t x = rng();
      uint32_t src = static_cast<uint32_t>((x % 50000) * (x % 7 == 0 ? 1 : 0) + (x >> 20) % 2000);
      r.src_addr = IpAddr::fromV4(0x0a000000 + src);
      r.dst_addr = IpAddr::fromV4(0xc0a80000 + static_cast<uint32_t>((x >> 32) % 5000));
      r.src_port = static_cast<uint16_t>(1024 + (x >> 8) % 60000);
      r.dst_port = ports[(x >> 40) % 6];
      r.proto = (x >> 44) % 10 < 8 ? 6 : 17;
      r.packets = 1 + (x >> 48) % 100;
      r.bytes = r.packets * (64 + (x >> 50) % 1400);
      r.first_ns = t0 + i * 100000;
      r.last_ns = r.first_ns + (x >> 54) * 1000000;
      r.sampling_rate = 1;
      r.ip_version = 4;
      r.exporter = IpAddr::fromV4(0x7f000001);
      v.push_back(r);
    }
    return v;
  }();
  return rs;
}

const FlowColumns& columns() {
  static const FlowColumns c = [] {
    FlowColumns c;
    c.reserve(kRows);
    c.append(records());
    return c;
  }();
  return c;
}

void runAggregate(benchmark::State& state, Source& src, const char* filter, const char* keys) {
  QueryOptions q;
  q.filter = *Filter::compile(filter);
  q.threads = static_cast<unsigned>(state.range(0));
  auto spec = parseKeys(keys, 0, nullptr);
  uint64_t rows = 0;
  size_t groups = 0;
  for (auto _ : state) {
    std::unique_ptr<Aggregator> agg;
    auto t = aggregateFlows(src, q, *spec, agg);
    auto top = agg->top(Metric::kBytes, 10);
    benchmark::DoNotOptimize(top);
    rows += t.rows_scanned;
    groups = agg->size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(rows));
  state.counters["groups"] = static_cast<double>(groups);
}

void BM_MemoryTopSrcIpBytes(benchmark::State& state) {
  MemorySource src(columns());
  runAggregate(state, src, "", "srcip");
}
BENCHMARK(BM_MemoryTopSrcIpBytes)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_MemoryFilteredSrcIpDstPort(benchmark::State& state) {
  MemorySource src(columns());
  runAggregate(state, src, "proto tcp and dst port in [80 443 8080] and bytes > 1k",
               "srcip,dstport");
}
BENCHMARK(BM_MemoryFilteredSrcIpDstPort)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_MemoryFilterOnly(benchmark::State& state) {
  auto f = *Filter::compile("proto tcp and dst port in [80 443 8080] and bytes > 1k");
  const FlowColumns& cols = columns();  // generated outside the timed loop
  std::vector<uint32_t> rows;
  rows.reserve(kRows);
  for (auto _ : state) {
    rows.clear();
    f.select(cols, 0, cols.size(), rows);
    benchmark::DoNotOptimize(rows.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kRows));
  state.counters["selected"] = static_cast<double>(rows.size());
}
BENCHMARK(BM_MemoryFilterOnly)->UseRealTime()->Unit(benchmark::kMillisecond);

// A wider mix of leaf kinds (prefix, NOT, OR, derived values, flags, address lists) through
// select() alone.
void BM_MemoryFilterMixed(benchmark::State& state) {
  auto f = *Filter::compile(
      "(src net 10.0.0.0/22 or dst ip in [192.168.0.1 192.168.1.0/24]) and not dst port 53 and "
      "(duration > 100 or bpp < 500) and packets >= 2 and not proto icmp");
  const FlowColumns& cols = columns();
  std::vector<uint32_t> rows;
  rows.reserve(kRows);
  for (auto _ : state) {
    rows.clear();
    f.select(cols, 0, cols.size(), rows);
    benchmark::DoNotOptimize(rows.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kRows));
  state.counters["selected"] = static_cast<double>(rows.size());
}
BENCHMARK(BM_MemoryFilterMixed)->UseRealTime()->Unit(benchmark::kMillisecond);

// A store written once per process in a temporary directory (or in --store DIR, kept).
const std::string& storePath() {
  static const std::string path = [] {
    const bool keep = !kStoreDir.empty();
    auto p = keep ? std::filesystem::path(kStoreDir)
                  : std::filesystem::temp_directory_path() /
                        ("nc-bench-query-" + std::to_string(::getpid()));
    if (keep && std::filesystem::exists(p)) {
      return p.string();
    }
    std::filesystem::remove_all(p);
    store::StoreOptions o;
    o.path = p.string();
    o.rotate_ms = 3600ULL * 1000 * 24;
    o.queue_bytes = 1ULL << 30;
    store::Writer w(o);
    const auto& rs = records();
    for (size_t i = 0; i < rs.size(); i += 10000) {
      w.append(std::span<const FlowRecord>(rs.data() + i, std::min<size_t>(10000, rs.size() - i)));
      if (i % 1000000 == 0) {
        w.flush();  // keep the writer queue from dropping blocks
      }
    }
    w.close();
    if (w.stats().rows_dropped != 0) {
      std::fprintf(stderr, "store: %llu rows dropped\n",
                   static_cast<unsigned long long>(w.stats().rows_dropped));
    }
    if (!keep) {
      // Not storePath() in the handler: a handler registered while `path` is being initialized
      // runs after `path` is destroyed. A copy that is never destroyed instead.
      static const auto* doomed = new std::filesystem::path(p);
      std::atexit([] { std::filesystem::remove_all(*doomed); });
    }
    return p.string();
  }();
  return path;
}

void BM_StoreTopSrcIpBytes(benchmark::State& state) {
  auto src = openStore(storePath(), nullptr);
  runAggregate(state, *src, "", "srcip");
}
BENCHMARK(BM_StoreTopSrcIpBytes)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_StoreFilteredSrcIpDstPort(benchmark::State& state) {
  auto src = openStore(storePath(), nullptr);
  runAggregate(state, *src, "proto tcp and dst port in [80 443 8080] and bytes > 1k",
               "srcip,dstport");
}
BENCHMARK(BM_StoreFilteredSrcIpDstPort)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rows=", 7) == 0) {
      kRows = std::strtoull(argv[i] + 7, nullptr, 10);
    } else if (std::strncmp(argv[i], "--store=", 8) == 0) {
      kStoreDir = argv[i] + 8;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
