// Profile channel counting benchmarks (Google Benchmark; nothing here asserts a time). Issue 14's
// target: 100 channels over 1 M flows/s cost at most one core, i.e. <= ~1,000 ns a record. Times
// are the thread's CPU time around ProfileShard::onBatch only (preparing each batch and the
// profiler's merge are left out); the "wall_" counters add what a preempted thread waits.
//   BM_ProfileShard/<channels>  ProfileShard::onBatch on batches of 256 records arriving at 1 M
//                               records/s of virtual time (hand-over every 250 ms of it,
//                               included). Channels: the first N of the well-known-port profile
//                               (examples/profiles.yaml: icmp, chargen, ftp, ssh, ...; 21 in
//                               all), beyond 21 "port P" channels for other ports, all distinct
//                               filters. Flows: 70 % TCP, 25 % UDP, 3 % ICMP, 2 % other; half of
//                               them to a well-known port; spans 0-10 s (a third cross a step);
//                               1 in 3 sampled 1:64. Counters "ns/record", "%core@1Mfps" (=
//                               ns/record / 10), "distinct_filters", "shard_bytes" (the shard's
//                               columns, selection buffers and step table) and "rss_growth".
//   BM_ProfileShardShared/105   the 21 well-known channels in 5 profiles, one per bridge
//                               (sources: br-0 .. br-4): 105 channels, 21 distinct filters.
// Profiler::tick (the control thread's merge and step closing) runs untimed once a virtual
// second; no RRD file is written (the writer thread is not started).
// Run: build/bin/nc-bench-profile [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "bench/bench_util.hpp"
#include "collector/profile/profiler.hpp"
#include "collector/profile/rrd.hpp"
#include "collector/record/flow_record.hpp"
#include "collector/record/names.hpp"
#include "collector/sink/sink.hpp"

namespace {

using nc::bench::Lap;
using nc::bench::rssBytes;
using nc::bench::Stopwatch;

using nc::FlowRecord;
using nc::IpAddr;
namespace profile = nc::profile;

constexpr size_t kBatch = 256;
constexpr size_t kPoolBatches = 16;  // 4096 records
constexpr uint64_t kSecond = 1'000'000'000ull;
constexpr uint64_t kT0 = 1'800'000'000ull * kSecond;

// The well-known-port profile (examples/profiles.yaml).
struct WellKnown {
  const char* name;
  const char* filter;
};
constexpr WellKnown kWellKnown[] = {
    {"icmp", "proto icmp or proto icmp6"},
    {"chargen", "port 19"},
    {"ftp", "port 20 or port 21"},
    {"ssh", "port 22"},
    {"telnet", "port 23"},
    {"smtp", "port 25"},
    {"dns", "port 53"},
    {"http", "port 80"},
    {"pop3", "port 110"},
    {"ntp", "port 123"},
    {"netbios-ns", "port 137"},
    {"snmp", "port 161 or port 162"},
    {"ldap", "port 389"},
    {"https", "port 443"},
    {"microsoft-ds", "port 445"},
    {"syslog", "port 514"},
    {"http-alt", "port 8080"},
    {"ms-sql-s", "port 1433"},
    {"mysql", "port 3306"},
    {"rdp", "port 3389"},
    {"sip", "port 5060 or port 5061"},
};
constexpr uint16_t kWellKnownPorts[] = {19,  20,  21,  22,  23,  25,  53,   80,   110,  123,  137,
                                        161, 162, 389, 443, 445, 514, 8080, 1433, 3306, 3389, 5060};

std::vector<profile::ChannelDef> channels(size_t n) {
  std::vector<profile::ChannelDef> out;
  for (size_t i = 0; i < n; ++i) {
    profile::ChannelDef c;
    if (i < std::size(kWellKnown)) {
      c.name = kWellKnown[i].name;
      c.filter = kWellKnown[i].filter;
    } else {
      const unsigned port = 2000 + static_cast<unsigned>(i) * 7;
      c.name = fmt::format("port-{}", port);
      c.filter = fmt::format("port {}", port);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<FlowRecord> makeRecords(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> bridges;
  for (int b = 0; b < 5; ++b) {
    bridges.push_back(nc::internName(fmt::format("br-{}", b)));
  }
  std::vector<FlowRecord> out(n);
  for (FlowRecord& r : out) {
    const unsigned p = static_cast<unsigned>(rng() % 100);
    r.proto = p < 70 ? 6 : p < 95 ? 17 : p < 98 ? 1 : 47;
    r.src_port = static_cast<uint16_t>(1024 + rng() % 60000);
    r.dst_port = rng() % 2 == 0 ? kWellKnownPorts[rng() % std::size(kWellKnownPorts)]
                                : static_cast<uint16_t>(1024 + rng() % 60000);
    if (rng() % 4 == 0) {
      std::swap(r.src_port, r.dst_port);  // replies
    }
    if (r.proto == 1) {
      r.src_port = 0;
      r.dst_port = 0x0800;
      r.icmp_type = 8;
    }
    r.packets = 1 + rng() % 100;
    r.bytes = r.packets * (64 + rng() % 1400);
    r.sampling_rate = rng() % 3 == 0 ? 64 : 1;
    r.ip_version = 4;
    r.src_addr = IpAddr::fromV4(0x0a000000 | static_cast<uint32_t>(rng() & 0xffff));
    r.dst_addr = IpAddr::fromV4(0xc0a80000 | static_cast<uint32_t>(rng() & 0xffff));
    r.exporter = IpAddr::fromV4(0xc0000201 + static_cast<uint32_t>(rng() % 4));
    r.bridge = bridges[rng() % bridges.size()];
  }
  return out;
}

void run(benchmark::State& state, const std::vector<profile::ProfileDef>& defs) {
  constexpr uint64_t kPerRecordNs = 1000;  // 1 M records/s of virtual time
  const auto dir =
      std::filesystem::temp_directory_path() / fmt::format("nc-bench-profile-{}", ::getpid());
  boost::asio::io_context io;
  profile::ProfilerOptions opts;  // 10 s steps, 8 s delay, 250 ms hand-over
  opts.dir = dir.string();
  profile::Profiler prof(io, opts);
  for (const auto& m : prof.open(defs, kT0 - kSecond)) {
    state.SkipWithError(m.c_str());
    return;
  }
  auto shard = prof.makeShard();
  constexpr size_t kPool = kBatch * kPoolBatches;
  auto records = makeRecords(kPool, 29);
  std::mt19937_64 rng(31);
  std::vector<uint64_t> delay(kPool);
  std::vector<uint64_t> span(kPool);
  for (size_t i = 0; i < kPool; ++i) {
    delay[i] = kSecond / 2 + rng() % (4 * kSecond);
    span[i] = rng() % (10 * kSecond);
  }
  const uint64_t rss0 = rssBytes();
  uint64_t vt = kT0;
  uint64_t next_tick = vt + kSecond;
  Lap total;
  uint64_t n = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kPool; ++i) {  // not timed: this pass's times
      FlowRecord& r = records[i];
      r.received_ns = vt + i * kPerRecordNs;
      r.last_ns = r.received_ns - delay[i];
      r.first_ns = r.last_ns - span[i];
    }
    const Stopwatch watch;
    for (size_t b = 0; b < kPoolBatches; ++b) {
      nc::sink::Batch batch;
      batch.records = std::span<const FlowRecord>(records).subspan(b * kBatch, kBatch);
      shard->onBatch(batch);
    }
    const Lap l = watch.lap();
    state.SetIterationTime(l.cpu);
    total.cpu += l.cpu;
    total.wall += l.wall;
    n += kPool;
    vt += kPool * kPerRecordNs;
    if (vt >= next_tick) {  // not timed: the control thread's merge
      prof.tick(vt);
      next_tick = vt + kSecond;
    }
  }
  const double ns = total.cpu * 1e9 / static_cast<double>(n);
  state.counters["ns/record"] = ns;
  state.counters["%core@1Mfps"] = ns / 10;
  state.counters["wall_ns/record"] = total.wall * 1e9 / static_cast<double>(n);
  const auto st = prof.status();
  state.counters["channels"] = st["live_channels"].get<double>();
  state.counters["distinct_filters"] = st["distinct_filters"].get<double>();
  state.counters["shard_bytes"] = static_cast<double>(shard->memoryBytes());
  state.counters["profiler_bytes"] = st["memory_bytes"].get<double>();
  state.counters["rss_growth"] = static_cast<double>(rssBytes() - std::min(rss0, rssBytes()));
  state.counters["rrd_file_bytes"] = static_cast<double>(profile::rrd::fileBytes(10));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

void BM_ProfileShard(benchmark::State& state) {
  profile::ProfileDef d;
  d.name = "ports";
  d.start_ns = kT0 - kSecond;
  d.channels = channels(static_cast<size_t>(state.range(0)));
  run(state, {d});
  state.SetLabel("distinct filters");
}
BENCHMARK(BM_ProfileShard)->Arg(1)->Arg(10)->Arg(21)->Arg(100)->UseManualTime()->MinTime(2);

void BM_ProfileShardShared(benchmark::State& state) {
  std::vector<profile::ProfileDef> defs;
  for (int b = 0; b < 5; ++b) {
    profile::ProfileDef d;
    d.name = fmt::format("ports-br-{}", b);
    d.start_ns = kT0 - kSecond;
    d.channels = channels(std::size(kWellKnown));
    for (auto& c : d.channels) {
      c.sources = {fmt::format("br-{}", b)};
    }
    defs.push_back(std::move(d));
  }
  run(state, defs);
  state.SetLabel("5 profiles x 21 channels, one per bridge");
}
BENCHMARK(BM_ProfileShardShared)->Arg(105)->UseManualTime()->MinTime(2);

}  // namespace

BENCHMARK_MAIN();
