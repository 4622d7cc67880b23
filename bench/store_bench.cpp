// Flow store benchmarks (Google Benchmark; nothing here asserts a time). Flows come from
// nc::gen::FlowSource (the generator behind `net-collector gen`), `--flows` distinct flow keys
// reused round-robin with fresh counters and times, 100k flows/s of virtual time.
//   BM_Write/<distinct>/<codec>   Writer::append in 30-row batches (one v5 datagram) + close:
//                                 rows/s and bytes/flow on disk (counter "B/flow")
//   BM_Encode/<version>/<codec>/<zstd level>
//                                 the writer thread's CPU work per block, no I/O: sort by first_ns,
//                                 BlockSummary, BlockEncoder (block version 1 = the layout before
//                                 the constant/v4/narrow transforms, 2 and 3 = 2026-11-27, 4 =
//                                 bit-packing and no zstd for hot columns): rows/s on one core
//   BM_WriterCpu/<codec>          the store path's CPU per row: append() in 21-row batches, and
//                                 the writer thread (sort, encode, write), 4M rows
//   BM_Scan/<threads>             Reader::scan of 2M stored rows, summing a column: rows/s
// Run: build-store/bin/nc-bench-store [--benchmark_filter=...]
// Ratio against nfcapd: bench/store_vs_nfcapd.sh.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "collector/gen/gen.hpp"
#include "collector/store/format.hpp"
#include "collector/store/store.hpp"

namespace {

namespace fs = std::filesystem;
constexpr uint64_t kT0 = 1'800'000'000'000'000'000ull;

std::vector<nc::FlowRecord> makeFlows(size_t n, uint32_t distinct) {
  nc::gen::GenOptions o;
  o.flows = distinct;
  o.seed = 7;
  nc::gen::validate(o);
  nc::gen::FlowSource src(o);
  std::vector<nc::FlowRecord> out(n);
  for (size_t i = 0; i < n; ++i) {
    src.next(kT0 + i * 10'000, out[i]);
    out[i].received_ns = kT0 + i * 10'000 + 1'000'000;
    out[i].exporter = nc::IpAddr::fromV4(0x7f000001);
    out[i].flow_proto = nc::FlowProto::kNetflowV9;
  }
  return out;
}

fs::path freshDir(const std::string& tag) {
  fs::path p = fs::temp_directory_path() / ("nc-bench-store-" + tag);
  fs::remove_all(p);
  return p;
}

// A fresh store directory for `tag`, with a queue large enough that nothing is dropped: the
// benchmarks measure the writer, not drops.
nc::store::StoreOptions benchStore(const std::string& tag,
                                   nc::store::StoreOptions::Compression codec,
                                   uint64_t queue_bytes) {
  nc::store::StoreOptions o;
  o.path = freshDir(tag).string();
  o.compression = codec;
  o.queue_bytes = queue_bytes;
  return o;
}

void BM_Write(benchmark::State& state) {
  const auto distinct = static_cast<uint32_t>(state.range(0));
  const auto codec = static_cast<nc::store::StoreOptions::Compression>(state.range(1));
  const auto flows = makeFlows(1'000'000, distinct);
  uint64_t rows = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    nc::store::Writer w(benchStore("write", codec, 1ull << 30));
    for (size_t i = 0; i < flows.size(); i += 30) {
      w.append(std::span(flows).subspan(i, std::min<size_t>(30, flows.size() - i)));
    }
    w.close();
    auto s = w.stats();
    rows += s.rows_written;
    bytes = s.bytes_on_disk;
    if (s.rows_dropped != 0) {
      state.SkipWithError("rows dropped");
    }
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["B/flow"] = static_cast<double>(bytes) / static_cast<double>(flows.size());
  state.SetLabel(std::string(nc::store::toString(codec)));
  fs::remove_all(freshDir("write"));
}
BENCHMARK(BM_Write)
    ->ArgsProduct({{1000, 100000, 1000000}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

double threadCpuNs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}
double processCpuNs() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// The daemon's store path in CPU per row: append() in 21-row batches (one v9 datagram of the
// generator) on this thread, the writer thread's sorting, encoding and writing on the other.
void BM_WriterCpu(benchmark::State& state) {
  const auto codec = static_cast<nc::store::StoreOptions::Compression>(state.range(0));
  static const auto flows = makeFlows(4'000'000, 100000);
  uint64_t rows = 0;
  double append_ns = 0;
  double total_ns = 0;
  for (auto _ : state) {
    const auto o = benchStore("writer-cpu", codec, 4ull << 30);
    // Each batch is first copied into a small buffer, as the decoder leaves a datagram's records
    // in its cache; the copying alone is timed apart and not counted.
    std::vector<nc::FlowRecord> batch(21);
    double copy_ns = threadCpuNs();
    for (size_t i = 0; i < flows.size(); i += 21) {
      const size_t k = std::min<size_t>(21, flows.size() - i);
      std::copy_n(flows.begin() + static_cast<ptrdiff_t>(i), k, batch.begin());
      benchmark::DoNotOptimize(batch.data());
    }
    copy_ns = threadCpuNs() - copy_ns;
    const double p0 = processCpuNs();
    const double t0 = threadCpuNs();
    nc::store::Writer w(o);
    for (size_t i = 0; i < flows.size(); i += 21) {
      const size_t k = std::min<size_t>(21, flows.size() - i);
      std::copy_n(flows.begin() + static_cast<ptrdiff_t>(i), k, batch.begin());
      w.append(std::span(batch).first(k));
      // Keep the backlog at a few blocks, as in the daemon at a rate the writer sustains (a
      // growing queue would measure page faults of fresh blocks instead).
      while (i % 16380 == 0 && w.stats().queue_bytes > 4 * 16384 * 200) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    append_ns += threadCpuNs() - t0 - copy_ns;
    w.close();
    total_ns += processCpuNs() - p0 - copy_ns;
    rows += w.stats().rows_written;
    if (w.stats().rows_dropped != 0) {
      state.SkipWithError("rows dropped");
    }
  }
  const auto r = static_cast<double>(rows);
  state.counters["append_ns/row"] = append_ns / r;
  state.counters["writer_ns/row"] = (total_ns - append_ns) / r;
  state.SetLabel(std::string(nc::store::toString(codec)));
  fs::remove_all(freshDir("writer-cpu"));
}
BENCHMARK(BM_WriterCpu)
    ->Arg(0)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

void BM_Encode(benchmark::State& state) {
  const auto version = static_cast<uint16_t>(state.range(0));
  const auto codec = static_cast<nc::store::StoreOptions::Compression>(state.range(1));
  constexpr size_t kBlock = 16384;
  static const std::vector<nc::FlowColumns> blocks = [] {
    const auto flows = makeFlows(kBlock * 32, 100000);
    std::vector<nc::FlowColumns> out;
    for (size_t i = 0; i < flows.size(); i += kBlock) {
      nc::FlowColumns c;
      c.append(std::span(flows).subspan(i, kBlock));
      out.push_back(std::move(c));
    }
    return out;
  }();
  const int level = state.range(2);
  nc::store::format::BlockEncoder enc(codec, level);
  enc.setVersion(version);
  std::vector<uint8_t> frame;
  nc::FlowColumns c;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    for (const auto& b : blocks) {
      state.PauseTiming();
      c = b;  // the writer sorts its own copy
      state.ResumeTiming();
      nc::store::format::sortByFirstNs(c);
      nc::BlockSummary s;
      s.compute(c);
      enc.encode(c, frame, version >= 2 ? &s : nullptr);
      rows += c.size();
      bytes += frame.size();
    }
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["B/flow"] = static_cast<double>(bytes) / static_cast<double>(rows);
  state.SetLabel(codec == nc::store::StoreOptions::Compression::kZstd
                     ? "zstd level " + std::to_string(level)
                     : std::string(nc::store::toString(codec)));
}
BENCHMARK(BM_Encode)->ArgsProduct({{1, 2, 3, 4}, {0, 1, 2}, {1}})->Unit(benchmark::kMillisecond);
// zstd levels (negative = zstd's fast levels), block version 4.
BENCHMARK(BM_Encode)->ArgsProduct({{4}, {0}, {-5, -3, -1, 1, 3}})->Unit(benchmark::kMillisecond);

void BM_Scan(benchmark::State& state) {
  static const fs::path dir = [] {
    fs::path p = freshDir("scan");
    nc::store::StoreOptions o;
    o.path = p.string();
    o.queue_bytes = 1ull << 30;
    nc::store::Writer w(o);
    const auto flows = makeFlows(2'000'000, 100000);
    for (size_t i = 0; i < flows.size(); i += 1000) {
      w.append(std::span(flows).subspan(i, 1000));
    }
    static const auto* doomed = new fs::path(p);  // outlives `dir` for the exit handler
    std::atexit([] { fs::remove_all(*doomed); });
    return p;
  }();
  nc::store::Reader r(dir.string());
  nc::store::ScanRequest req;
  req.threads = static_cast<unsigned>(state.range(0));
  uint64_t rows = 0;
  std::atomic<uint64_t> sink{0};
  for (auto _ : state) {
    auto st = r.scan(req, [&](const nc::FlowColumns& c, unsigned) {
      uint64_t sum = 0;
      for (uint64_t b : c.bytes) {
        sum += b;
      }
      sink += sum;
    });
    rows += st.rows_scanned;
  }
  benchmark::DoNotOptimize(sink.load());
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Scan)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
