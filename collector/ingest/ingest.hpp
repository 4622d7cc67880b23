#pragma once
// nc_ingest: the receive path. UDP listeners -> recvmmsg batches -> one Decoder per shard ->
// FlowRecord batches handed to a per-shard sink.
//
// Shards: `threads` receive/decode threads. Each shard opens its own socket on every listener with
// SO_REUSEPORT, so the kernel spreads exporters over shards by 4-tuple hash and one exporter always
// lands on the same shard (its templates live there). A shard owns its Decoder and buffers: no
// locks shared across shards, no allocation, logging, OVSDB or netlink work per datagram. Readiness
// comes from Boost.Asio (async_wait on the socket); datagrams are drained with recvmmsg in batches.
// Kernel drops (SO_RXQ_OVFL) and datagrams from exporters outside `allow` are counted.
//
// Statistics are published by each shard once per second (and on demand) as immutable snapshots,
// so readers on other threads never touch the hot path's state.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collector/decode/decoder.hpp"
#include "collector/record/flow_record.hpp"

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

struct ShardStats {
  uint64_t datagrams = 0;        // datagrams read from the sockets
  uint64_t gro_datagrams = 0;    // of which arrived several to a buffer (UDP GRO)
  uint64_t bytes = 0;            // UDP payload bytes
  uint64_t denied = 0;           // dropped: exporter not in collector.allow
  uint64_t truncated = 0;        // dropped: larger than the receive buffer (MSG_TRUNC)
  uint64_t kernel_drops = 0;     // dropped by the kernel before we read them (SO_RXQ_OVFL)
  uint64_t records = 0;          // flow records decoded
  uint64_t counter_samples = 0;  // sFlow counter samples decoded
  uint64_t decode_errors = 0;    // datagrams with a decode error
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

}  // namespace nc::ingest
