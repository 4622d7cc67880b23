// Decode throughput per format on one core, from memory: records/s and ns of CPU per record.
// Payloads: datagrams built by the flow generator (fixed seed; v9/IPFIX templates sent in the
// first datagram only, as a long-running exporter does) and, for IPFIX, the layout Open vSwitch
// uses is exercised by tests, not here. Run: build/bin/nc-bench-decode [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <vector>

#include "collector/decode/decoder.hpp"
#include "collector/gen/gen.hpp"

namespace {

using nc::decode::CountingSink;
using nc::decode::DatagramMeta;
using nc::decode::Decoder;

struct Payloads {
  std::vector<std::vector<uint8_t>> datagrams;  // [0] carries the templates for v9/IPFIX
  uint64_t records = 0;                         // records in datagrams[1..]
};

Payloads build(nc::gen::Format format, size_t count) {
  nc::gen::GenOptions o;
  o.format = format;
  o.count = count + 1;
  o.flows = 100000;
  o.template_interval = 0;
  o.fixed_time = true;
  if (!nc::gen::validate(o).empty()) {
    std::abort();
  }
  nc::gen::Generator g(o);
  Payloads p;
  std::vector<uint8_t> d;
  uint64_t t = nc::gen::kFixedTimeNs;
  while (g.next(t, d)) {
    if (!p.datagrams.empty()) {
      p.records += g.lastRecords().size();
    }
    p.datagrams.push_back(d);
    t += 1000000;
  }
  return p;
}

void decodeFormat(benchmark::State& state, nc::gen::Format format) {
  Payloads p = build(format, 2000);
  Decoder decoder;
  CountingSink sink;
  DatagramMeta meta;
  nc::IpAddr::parse("192.0.2.1", meta.exporter);
  meta.received_ns = nc::gen::kFixedTimeNs;
  decoder.decode(p.datagrams[0], meta, sink);  // templates
  uint64_t records = 0;
  for (auto _ : state) {
    for (size_t i = 1; i < p.datagrams.size(); ++i) {
      auto st = decoder.decode(p.datagrams[i], meta, sink);
      records += st.records;
    }
  }
  state.counters["records/s"] =
      benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
  state.counters["s/record"] = benchmark::Counter(
      static_cast<double>(records), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.SetItemsProcessed(static_cast<int64_t>(records));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(p.datagrams.size() * 1400));
  if (sink.records() == 0) {
    state.SkipWithError("nothing decoded");
  }
}

BENCHMARK_CAPTURE(decodeFormat, netflow_v5, nc::gen::Format::kNetflowV5);
BENCHMARK_CAPTURE(decodeFormat, netflow_v9, nc::gen::Format::kNetflowV9);
BENCHMARK_CAPTURE(decodeFormat, ipfix, nc::gen::Format::kIpfix);
BENCHMARK_CAPTURE(decodeFormat, sflow, nc::gen::Format::kSflow);

}  // namespace

BENCHMARK_MAIN();
