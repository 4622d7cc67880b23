#pragma once
// nc_sink: the daemon's consumers of the decoded stream, and the per-shard pipeline that feeds
// them.
//
//   decoder --batch--> ShardPipeline: Enricher (inventory names, in place) --> sink 1, sink 2, ...
//
// Every consumer (the flow store, the recent-flows ring, exporters' interface tables, spike
// correlation; profiles and forwarding later) is a FlowSink, a library of its own. A shard's
// pipeline calls them in order on the receive thread, so a sink must be quick, must not block
// and must not allocate per record: a slow consumer drops (and counts) or hands work to a thread
// of its own. Sinks of one shard are called from that shard's thread only.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "collector/decode/decoder.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::inventory {
class Enricher;
struct Snapshot;
}  // namespace nc::inventory

namespace nc::sink {

// One decoded, enriched batch.
struct Batch {
  std::span<const FlowRecord> records;
  // Inventory ports the records resolved to (slots into snapshot->ports, UINT32_MAX = none), one
  // per record; null when the pipeline has no inventory.
  const uint32_t* in_port = nullptr;
  const uint32_t* out_port = nullptr;
  const inventory::Snapshot* snapshot = nullptr;
};

class FlowSink {
 public:
  virtual ~FlowSink() = default;
  virtual void onBatch(const Batch& batch) = 0;
  virtual void onCounters(const decode::InterfaceCounters& counters) { (void)counters; }
  virtual void onInterfaceName(const decode::InterfaceName& name) { (void)name; }
};

// The decoder's RecordSink for one receive shard.
class ShardPipeline : public decode::RecordSink {
 public:
  // `enricher` may be null (no inventory: names stay as decoded).
  explicit ShardPipeline(std::unique_ptr<inventory::Enricher> enricher);
  ~ShardPipeline() override;
  // Appends a sink, called after the ones before it; add() does not own it, adopt() does.
  void add(FlowSink* sink) { sinks_.push_back(sink); }
  void adopt(std::unique_ptr<FlowSink> sink) {
    sinks_.push_back(sink.get());
    owned_.push_back(std::move(sink));
  }

  void onRecords(std::span<const FlowRecord> records) override;
  void onRecordBatch(std::span<FlowRecord> records) override;
  void onCounters(const decode::InterfaceCounters& counters) override;
  void onInterfaceName(const decode::InterfaceName& name) override;

 private:
  std::unique_ptr<inventory::Enricher> enricher_;
  std::vector<FlowSink*> sinks_;
  std::vector<std::unique_ptr<FlowSink>> owned_;
  std::vector<uint32_t> in_;
  std::vector<uint32_t> out_;
  std::vector<FlowRecord> copy_;  // onRecords() callers that hand a const batch
};

}  // namespace nc::sink
