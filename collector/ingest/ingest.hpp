#pragma once
// nc_ingest: the receive path. UDP listeners -> recvmmsg batches -> one Decoder per shard ->
// FlowRecord batches handed to a per-shard sink.
//
// Shards: `threads` receive/decode threads. Each shard opens its own socket on every listener with
// SO_REUSEPORT, so the kernel spreads exporters over shards by 4-tuple hash and one exporter always
// lands on the same shard (its templates live there). A shard owns its Decoder and buffers: no
// locks shared across shards, no allocation, logging, OVSDB or netlink work per datagram. Readiness
// comes from Boost.Asio (async_wait on the socket); datagrams are drained with recvmmsg in batches.
// Kernel drops (SO_RXQ_OVFL) and datagrams from exporters outside `allow` are counted; the last
// few refused sources are remembered (ShardStats::denied_sources).
//
// Statistics are published by each shard once per second (and on demand) as immutable snapshots,
// so readers on other threads never touch the hot path's state.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collector/decode/decoder.hpp"
#include "collector/metrics/stats.hpp"
#include "collector/record/fields.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::metrics {
class MetricWriter;
}

namespace nc::ingest {

struct Listen {
  std::string address = "0.0.0.0";
  uint16_t port = 0;  // 0 = any free port (see Ingest::boundPorts)
};

// An IPv4/IPv6 network in the allow-list.
struct Network {
  IpAddr base;
  uint8_t prefix = 128;  // on the 128-bit (v4-mapped) form
  bool contains(const IpAddr& a) const;
  static bool parse(const std::string& text, Network& out);
};

struct ExporterRule {
  Network network;
  decode::ExporterConfig config;
};

struct IngestOptions {
  std::vector<Listen> listen;
  uint32_t threads = 1;
  uint64_t rcvbuf = 32ull << 20;
  std::vector<Network> allow;  // empty = any exporter
  std::vector<ExporterRule> exporters;
  decode::DecoderOptions decoder;
  std::string templates_path;  // "" = no persistence; else per-shard files <path>.<shard>
  uint32_t batch = 64;         // datagrams per recvmmsg
};

// Receive-path counters of one shard (and their sum over shards, Ingest::totals()). The list is
// the only place a counter is declared (collector/metrics/stats.hpp): the JSON keys are the
// `ingest` object of the daemon's status, the Prometheus families net_collector_ingest_*; the
// column is the phrase `net-collector status` prints after the value.
// X(TYPE, ctype, member, "key", UNIT, "column", "help")
#define NC_SHARD_STATS(X)                                                                         \
  X(Counter, uint64_t, datagrams, "datagrams", None, "datagrams",                                 \
    "Datagrams read from the sockets (a UDP GRO buffer counts each datagram it holds)")           \
  X(Counter, uint64_t, gro_datagrams, "gro_datagrams", None, "of them by UDP GRO",                \
    "Datagrams that arrived several to a receive buffer (UDP GRO)")                               \
  X(Counter, uint64_t, bytes, "bytes", Bytes, "of UDP payload", "UDP payload bytes read")         \
  X(Counter, uint64_t, records, "records", None, "flow records", "Flow records decoded")          \
  X(Counter, uint64_t, counter_samples, NC_KEY_PROM("counter_samples", "sflow_counters_samples"), \
    None, "counter samples", "sFlow counter samples decoded")                                     \
  X(Counter, uint64_t, decode_errors, "decode_errors", None, "decode errors",                     \
    "Datagrams with a decode error (the reasons are counted per exporter)")                       \
  X(Counter, uint64_t, kernel_drops, "kernel_drops", None, "kernel drops (socket buffer full)",   \
    "Datagrams the kernel dropped before they were read (SO_RXQ_OVFL: receive buffer full)")      \
  X(Counter, uint64_t, denied, "denied", None, "denied (collector.allow)",                        \
    "Datagrams dropped because their exporter is not in collector.allow")                         \
  X(Counter, uint64_t, truncated, "truncated", None, "truncated (larger than the buffer)",        \
    "Datagrams dropped because they were larger than the receive buffer (MSG_TRUNC)")

// A source whose datagrams collector.allow refused.
struct DeniedSource {
  IpAddr address;
  uint64_t datagrams = 0;
  uint64_t last_ns = 0;  // newest refused datagram; 0 = an empty slot
};

struct ShardStats {
  NC_STATS_DEFINE(ShardStats, NC_SHARD_STATS)
  // The most recently refused sources, at most kDeniedSourcesKept (fixed storage: noting one on
  // the receive path allocates nothing). When a new source arrives and the slots are full, the one
  // refused longest ago is forgotten; its datagrams stay counted in `denied`.
  static constexpr size_t kDeniedSourcesKept = 8;
  std::array<DeniedSource, kDeniedSourcesKept> denied_sources{};

  void noteDenied(const IpAddr& address, uint64_t datagrams, uint64_t now_ns);
  // Counters summed; denied sources merged by address, the newest kept.
  void add(const ShardStats& other);
  // The denied sources in use, newest first.
  std::vector<DeniedSource> deniedSources() const;
  // metrics::toJson() calls this after the counters: "denied_sources": [{"address", "datagrams",
  // "last_seen"}, ...], newest first (the `ingest` object of the daemon's status).
  template <typename Json>
  void jsonExtras(Json& out) const {
    Json list = Json::array();
    for (const auto& d : deniedSources()) {
      list.push_back(Json{{"address", d.address.toString()},
                          {"datagrams", d.datagrams},
                          {"last_seen", formatTime(d.last_ns)}});
    }
    out["denied_sources"] = std::move(list);
  }
};

// A shard's consumer of decoded output. Called on the shard's thread only.
using SinkFactory = std::function<std::unique_ptr<decode::RecordSink>(uint32_t shard)>;

class Ingest {
 public:
  // Opens every socket now (throws std::runtime_error naming the address on failure) but starts no
  // thread. Loads persisted templates into every shard.
  Ingest(IngestOptions options, SinkFactory sinks);
  ~Ingest();
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  void start();
  // Stops the threads, saves templates. Idempotent.
  void stop();

  // Actual bound ports, in listen order (resolves port 0).
  std::vector<uint16_t> boundPorts() const;
  // Sum over shards of the last published snapshots, and decoder statistics per (exporter,
  // protocol) merged over shards (the same exporter and protocol seen by two shards is summed).
  ShardStats totals() const;
  std::vector<decode::ExporterStats> exporters() const;
  // Templates loaded from the persistence files at construction.
  size_t loadedTemplates() const { return loaded_templates_; }
  // Asks every shard to publish fresh statistics and waits up to `timeout_ms` for it.
  void refreshStats(int timeout_ms = 500);

  class Shard;

 private:
  IngestOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<uint16_t> ports_;
  size_t loaded_templates_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

// Appends the receive path's Prometheus families (collector/metrics): net_collector_ingest_* (the
// sum over shards of ShardStats), net_collector_exporter_*{exporter,protocol} (ExporterStats),
// net_collector_exporter_info{exporter,protocol,flavor} and
// net_collector_exporter_last_seen_timestamp_seconds. Reads the shards' last published snapshots
// (at most a second old) without waiting; call it from a MetricsRegistry collector.
void writeMetrics(const Ingest& ingest, metrics::MetricWriter& w);

}  // namespace nc::ingest
