// Flow enrichment and spike correlation benchmarks (Google Benchmark; nothing here asserts a
// time). Issue 13's targets: enrichment at most 15 ns a record, the correlation detectors under
// 1 % of a core at 1 M flows/s. Times are the thread's CPU time around the measured calls only
// (the preparation of each batch is left out; the benchmark's "Time" column is that CPU time);
// the "wall_" counters add what a thread preempted by other processes waits.
//   BM_Enrich/<case>       Enricher::enrich on batches of 256 records, over a snapshot of 1,000
//                          ports (Inventory::build, used through Enricher::useSnapshot):
//                          0 router (a non-local exporter: no inventory lookups), 1 local OVS
//                          exporter with Linux ifindexes (by_ifindex, plus MAC learning), 2 MAC
//                          fallback (in_if = out_if = 0: by_mac). Counter "ns/record".
//   BM_CorrelatorShard/<resolved>/<ports>/<addresses per port>/<uplink %>
//                          CorrelatorShard::onBatch on batches of 256 records arriving at 1 M
//                          records/s of virtual time (hand-over to the Correlator every 250 ms of
//                          it, included); resolved = in and out port known (4 subjects a flow:
//                          2 ports, source and destination address), each flow spread over 1 or
//                          2 steps of 10 s (half of them cross a step boundary). Each VM port has
//                          its own addresses (a flow from port p comes from one of p's and goes
//                          to one of the output port's); <uplink %> of the flows enter through
//                          an uplink port from random peers (a crowded port: its addresses are
//                          not subjects). The Correlator merges untimed once a virtual second.
//                          Counters "ns/record" and "%core@1Mfps" (= ns/record / 10: the share of
//                          one core at 1 M flows/s).
//   BM_CorrelatorTick/<active>
//                          Correlator::tick with 10,000 port subjects x 2 directions and 100,000
//                          address subjects x 2 directions (made by feeding one flow each), a
//                          10 s step and a tick every 250 ms of virtual time: one iteration is
//                          40 ticks (10 s). active = 1: every subject gets one flow per step
//                          (handed over before the step's ticks; merged inside the timed tick).
//                          Counters: "ms/s" (tick time per second of wall time), "%core",
//                          "max_tick_ms", "memory_bytes" (status()["memory_bytes"]) and the
//                          process RSS growth (/proc/self/statm) after feeding (the shard's table
//                          and its hand-over), after the first merge (the subjects) and at the
//                          end.
// Run: build-bench/bin/nc-bench-correlate [--benchmark_filter=...]; for the RSS figures run each
// BM_CorrelatorTick alone (--benchmark_filter=Tick/0/): memory an earlier benchmark freed is
// reused and would hide part of the growth.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <vector>

#include "bench/bench_util.hpp"
#include "collector/correlate/correlator.hpp"
#include "collector/record/flow_record.hpp"
#include "collector/sink/sink.hpp"
#include "ovsctl/inventory/inventory.hpp"

namespace {

using nc::bench::Lap;
using nc::bench::rssBytes;
using nc::bench::Stopwatch;

using nc::FlowRecord;
using nc::IpAddr;
namespace inventory = nc::inventory;
namespace correlate = nc::correlate;

constexpr size_t kBatch = 256;
constexpr size_t kPoolBatches = 16;  // 4096 records, ~750 KB: stays in the 1 MiB L2
constexpr uint64_t kT0 = 1'800'000'000'000'000'000ull;
constexpr uint64_t kSecond = 1'000'000'000ull;
constexpr int64_t kFirstIfindex = 1000;

uint64_t attachedMac(size_t i) {
  return 0x02aa00000000ull | i;
}
uint64_t portMac(size_t i) {
  return 0xfe5400000000ull | i;
}

// An inventory snapshot of one bridge with `n` VM ports: vnet<i>, ofport i + 1, ifindex
// kFirstIfindex + i, attached-mac and vm-uuid in external_ids. No netlink state: the local
// addresses are 127.0.0.1 and ::1.
std::shared_ptr<const inventory::Snapshot> makeSnapshot(size_t n) {
  nlohmann::json tables;
  nlohmann::json port_uuids = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i) {
    const std::string pu = fmt::format("port-{}", i);
    const std::string iu = fmt::format("iface-{}", i);
    const std::string name = fmt::format("vnet{}", i);
    port_uuids.push_back(pu);
    tables["Port"][pu] = {{"name", name}, {"interfaces", iu}};
    tables["Interface"][iu] = {
        {"name", name},
        {"type", ""},
        {"ofport", static_cast<int64_t>(i + 1)},
        {"ifindex", kFirstIfindex + static_cast<int64_t>(i)},
        {"mac_in_use", nc::formatMac(portMac(i))},
        {"admin_state", "up"},
        {"link_state", "up"},
        {"external_ids",
         {{"attached-mac", nc::formatMac(attachedMac(i))},
          {"vm-uuid", fmt::format("00000000-0000-4000-8000-{:012x}", i / 2)}}}};
  }
  tables["Bridge"]["bridge-0"] = {{"name", "br-int"}, {"ports", port_uuids}};
  return inventory::Inventory::build(tables, nullptr);
}

IpAddr exporterOf(bool local) {
  return local ? IpAddr::fromV4(0x7f000001) : IpAddr::fromV4(0x0aff0001);
}

// ---- BM_Enrich ----

enum EnrichCase { kRouter = 0, kLocalIfindex = 1, kMacFallback = 2 };

std::vector<FlowRecord> enrichRecords(EnrichCase c, size_t ports, size_t n) {
  std::mt19937_64 rng(13);
  std::vector<FlowRecord> out(n);
  for (size_t i = 0; i < n; ++i) {
    FlowRecord& r = out[i];
    const size_t in = rng() % ports;
    size_t o = rng() % ports;
    if (o == in) {
      o = (o + 1) % ports;
    }
    r.first_ns = kT0 + i * 1000;
    r.last_ns = r.first_ns + 1000;
    r.received_ns = r.last_ns;
    r.packets = 10;
    r.bytes = 8000;
    r.src_addr = IpAddr::fromV4(0x0a000000 | static_cast<uint32_t>(rng() & 0xffff));
    r.dst_addr = IpAddr::fromV4(0xc0a80000 | static_cast<uint32_t>(rng() & 0xffff));
    r.ip_version = 4;
    r.proto = 6;
    switch (c) {
      case kRouter:
        r.exporter = exporterOf(false);
        r.if_kind = nc::IfKind::kSnmp;
        r.in_if = static_cast<uint32_t>(1 + rng() % 48);
        r.out_if = static_cast<uint32_t>(1 + rng() % 48);
        r.src_mac = 0x020000000000ull | (rng() & 0xffffffffull);
        r.dst_mac = 0x020100000000ull | (rng() & 0xffffffffull);
        r.flow_proto = nc::FlowProto::kNetflowV9;
        break;
      case kLocalIfindex:
      case kMacFallback:
        r.exporter = exporterOf(true);
        r.if_kind = nc::IfKind::kLinuxIfindex;
        r.in_if = c == kMacFallback ? 0 : static_cast<uint32_t>(kFirstIfindex + in);
        r.out_if = c == kMacFallback ? 0 : static_cast<uint32_t>(kFirstIfindex + o);
        r.src_mac = attachedMac(in);
        r.dst_mac = attachedMac(o);
        r.flow_proto = nc::FlowProto::kIpfix;
        break;
    }
  }
  return out;
}

void BM_Enrich(benchmark::State& state) {
  const auto c = static_cast<EnrichCase>(state.range(0));
  constexpr size_t kPorts = 1000;
  auto snap = makeSnapshot(kPorts);
  inventory::Enricher enricher(nullptr);
  enricher.useSnapshot(snap);
  auto records = enrichRecords(c, kPorts, kBatch * kPoolBatches);
  std::vector<uint32_t> in(kBatch);
  std::vector<uint32_t> out(kBatch);
  std::span<FlowRecord> all(records);
  // A first pass outside the measurement: takes the snapshot, learns the MACs.
  for (size_t b = 0; b < kPoolBatches; ++b) {
    enricher.enrich(all.subspan(b * kBatch, kBatch), in.data(), out.data());
  }
  uint64_t resolved = 0;
  for (size_t i = 0; i < kBatch; ++i) {
    resolved += (in[i] != UINT32_MAX) + (out[i] != UINT32_MAX);
  }
  Lap total;
  uint64_t n = 0;
  for (auto _ : state) {
    const Stopwatch watch;
    for (size_t b = 0; b < kPoolBatches; ++b) {
      enricher.enrich(all.subspan(b * kBatch, kBatch), in.data(), out.data());
    }
    const Lap l = watch.lap();
    benchmark::DoNotOptimize(in.data());
    benchmark::DoNotOptimize(out.data());
    state.SetIterationTime(l.cpu);
    total.cpu += l.cpu;
    total.wall += l.wall;
    n += records.size();
  }
  state.counters["ns/record"] = total.cpu * 1e9 / static_cast<double>(n);
  state.counters["wall_ns/record"] = total.wall * 1e9 / static_cast<double>(n);
  state.counters["resolved/record"] = static_cast<double>(resolved) / kBatch;
  static const char* const kLabels[] = {"router (not local)", "local OVS, ifindex",
                                        "local OVS, MAC fallback"};
  state.SetLabel(kLabels[c]);
}
BENCHMARK(BM_Enrich)->Arg(kRouter)->Arg(kLocalIfindex)->Arg(kMacFallback)->UseManualTime();

// ---- BM_CorrelatorShard ----

IpAddr hostAddress(uint32_t base, size_t i) {
  return IpAddr::fromV4(base + static_cast<uint32_t>(i));
}

void BM_CorrelatorShard(benchmark::State& state) {
  const bool resolved = state.range(0) != 0;
  const auto ports = static_cast<size_t>(state.range(1));
  const auto per_port = static_cast<size_t>(state.range(2));
  const auto uplink_pct = static_cast<uint64_t>(state.range(3));
  constexpr uint64_t kPerRecordNs = 1000;  // 1 M records/s of virtual time
  auto snap = makeSnapshot(ports + 1);     // the last one is the uplink
  const auto uplink = static_cast<uint32_t>(ports);
  boost::asio::io_context io;
  correlate::CorrelatorOptions opts;  // 10 s steps, 250 ms hand-over
  correlate::Correlator corr(io, opts, nullptr);
  auto shard = corr.makeShard();

  constexpr size_t kPool = kBatch * kPoolBatches;
  std::mt19937_64 rng(17);
  std::vector<FlowRecord> records(kPool);
  std::vector<uint32_t> in_port(kPool);
  std::vector<uint32_t> out_port(kPool);
  std::vector<uint64_t> delay(kPool);  // received - last packet
  std::vector<uint64_t> span(kPool);   // last - first packet: 0-10 s, so half cross a step
  for (size_t i = 0; i < kPool; ++i) {
    FlowRecord& r = records[i];
    r.exporter = exporterOf(true);
    r.packets = 1 + rng() % 100;
    r.bytes = r.packets * (64 + rng() % 1400);
    r.ip_version = 4;
    delay[i] = kSecond / 2 + rng() % (4 * kSecond);
    span[i] = rng() % (10 * kSecond);
  }
  // Port p's addresses: 10.x.y.z with the low bits p + k * ports.
  auto vmAddress = [&](uint32_t port) {
    return hostAddress(0x0a000000, port + (rng() % per_port) * ports);
  };
  uint64_t vt = kT0;
  uint64_t next_tick = vt + kSecond;
  Lap total;
  uint64_t n = 0;
  for (auto _ : state) {
    double iteration = 0;
    for (size_t b = 0; b < kPoolBatches; ++b) {
      // Not timed: this batch's ports, addresses and times (written just before, as a decoder
      // does: the batch is in the cache when the shard reads it).
      for (size_t i = b * kBatch; i < (b + 1) * kBatch; ++i) {
        FlowRecord& r = records[i];
        const auto out = static_cast<uint32_t>(rng() % ports);
        if (rng() % 100 < uplink_pct) {
          in_port[i] = uplink;
          r.src_addr = hostAddress(0xc6000000, rng() % 1'000'000);
        } else {
          in_port[i] = static_cast<uint32_t>(rng() % ports);
          r.src_addr = vmAddress(in_port[i]);
        }
        out_port[i] = out;
        r.dst_addr = vmAddress(out);
        if (!resolved) {
          in_port[i] = out_port[i] = UINT32_MAX;
        }
        r.received_ns = vt + i * kPerRecordNs;
        r.last_ns = r.received_ns - delay[i];
        r.first_ns = r.last_ns - span[i];
      }
      nc::sink::Batch batch;
      batch.records = std::span<const FlowRecord>(records).subspan(b * kBatch, kBatch);
      batch.in_port = in_port.data() + b * kBatch;
      batch.out_port = out_port.data() + b * kBatch;
      batch.snapshot = snap.get();
      const Stopwatch watch;
      shard->onBatch(batch);
      const Lap l = watch.lap();
      iteration += l.cpu;
      total.cpu += l.cpu;
      total.wall += l.wall;
    }
    state.SetIterationTime(iteration);
    n += kPool;
    vt += kPool * kPerRecordNs;
    if (vt >= next_tick) {  // not timed: the control thread's merge
      corr.tick(vt);
      next_tick = vt + kSecond;
    }
  }
  const double ns = total.cpu * 1e9 / static_cast<double>(n);
  state.counters["ns/record"] = ns;
  state.counters["%core@1Mfps"] = ns / 10;
  state.counters["wall_ns/record"] = total.wall * 1e9 / static_cast<double>(n);
  const auto st = corr.status();
  state.counters["port_subjects"] = st["subjects"]["ports"].get<double>();
  state.counters["entries/record"] =
      st["handover_entries"].get<double>() / static_cast<double>(n + kPool);
  state.counters["address_subjects"] = st["subjects"]["addresses"].get<double>();
  state.SetLabel(resolved ? "resolved ports" : "unresolved");
}
BENCHMARK(BM_CorrelatorShard)
    ->Args({1, 10, 2, 0})
    ->Args({1, 100, 2, 0})
    ->Args({1, 1000, 2, 20})
    ->Args({1, 10000, 10, 0})
    ->Args({0, 1000, 2, 0})
    ->UseManualTime()
    ->MinTime(2);

// ---- BM_CorrelatorTick ----

void BM_CorrelatorTick(benchmark::State& state) {
  const bool active = state.range(0) != 0;
  constexpr size_t kPorts = 10000;
  constexpr size_t kAddresses = 100000;
  constexpr uint64_t kTick = 250'000'000;
  auto snap = makeSnapshot(kPorts);
  boost::asio::io_context io;
  correlate::CorrelatorOptions opts;
  // One flow per subject and step: the population, and the data of each step when active.
  std::vector<FlowRecord> flows(kAddresses);
  std::vector<uint32_t> ports(kAddresses);
  for (size_t i = 0; i < kAddresses; ++i) {
    FlowRecord& r = flows[i];
    r.exporter = exporterOf(true);
    r.src_addr = hostAddress(0x0a000000, i);
    // Port p's ten addresses are those with i % kPorts == p, on both sides (a port whose
    // flows came from more addresses than a shard's port block holds would be crowded).
    r.dst_addr = hostAddress(0x0a000000, (i + kPorts) % kAddresses);
    r.packets = 100;
    r.bytes = 100'000;
    r.ip_version = 4;
    ports[i] = static_cast<uint32_t>(i % kPorts);
  }
  auto feed = [&](correlate::CorrelatorShard& shard, uint64_t step_start) {
    for (size_t i = 0; i < kAddresses; ++i) {
      flows[i].last_ns = step_start + 2 * kSecond;
      flows[i].first_ns = step_start + 1 * kSecond;
      flows[i].received_ns = step_start + 3 * kSecond;
    }
    for (size_t b = 0; b < kAddresses; b += kBatch) {
      const size_t m = std::min(kBatch, kAddresses - b);
      nc::sink::Batch batch;
      batch.records = std::span<const FlowRecord>(flows).subspan(b, m);
      batch.in_port = ports.data() + b;
      batch.out_port = ports.data() + b;
      batch.snapshot = snap.get();
      shard.onBatch(batch);
    }
    shard.flush();
  };

  const uint64_t rss0 = rssBytes();
  correlate::Correlator corr(io, opts, nullptr);
  auto shard = corr.makeShard();
  uint64_t now = kT0 - kT0 % opts.step_ns;
  feed(*shard, now);
  const uint64_t rss_fed = rssBytes();
  corr.tick(now + 3 * kSecond);  // merge: creates the subjects
  const uint64_t rss_merged = rssBytes();
  const auto st = corr.status();
  now += 3 * kSecond + kTick;

  Lap total;
  double max_tick = 0;
  uint64_t ticks = 0;
  for (auto _ : state) {
    const uint64_t step_start = now - now % opts.step_ns;
    if (active) {
      feed(*shard, step_start);  // not timed: the shards' part (BM_CorrelatorShard)
    }
    double iteration = 0;
    for (int k = 0; k < 40; ++k) {
      const Stopwatch watch;
      corr.tick(now);
      const Lap l = watch.lap();
      iteration += l.cpu;
      total.cpu += l.cpu;
      total.wall += l.wall;
      max_tick = std::max(max_tick, l.cpu);
      ++ticks;
      now += kTick;
    }
    state.SetIterationTime(iteration);
  }
  const double wall = static_cast<double>(ticks) * static_cast<double>(kTick) / 1e9;
  const auto end = corr.status();
  state.counters["ms/s"] = total.cpu * 1e3 / wall;
  state.counters["%core"] = total.cpu * 100 / wall;
  state.counters["wall_ms/s"] = total.wall * 1e3 / wall;
  state.counters["max_tick_ms"] = max_tick * 1e3;
  state.counters["subjects"] =
      st["subjects"]["ports"].get<double>() + st["subjects"]["addresses"].get<double>();
  state.counters["memory_bytes"] = st["memory_bytes"].get<double>();
  state.counters["rss_fed_MiB"] = static_cast<double>(rss_fed - rss0) / (1 << 20);
  state.counters["rss_merged_MiB"] = static_cast<double>(rss_merged - rss0) / (1 << 20);
  state.counters["rss_end_MiB"] = static_cast<double>(rssBytes() - rss0) / (1 << 20);
  state.counters["steps_evaluated"] = end["steps_evaluated"].get<double>();
  state.counters["late"] = end["late"].get<double>();
  state.SetLabel(active ? "one flow per subject and step" : "no new flows");
}
BENCHMARK(BM_CorrelatorTick)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(12);

}  // namespace

BENCHMARK_MAIN();
