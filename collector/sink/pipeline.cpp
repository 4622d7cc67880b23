#include "collector/sink/sink.hpp"

#include "ovsctl/inventory/inventory.hpp"

namespace nc::sink {

ShardPipeline::ShardPipeline(std::unique_ptr<inventory::Enricher> enricher)
    : enricher_(std::move(enricher)) {}

ShardPipeline::~ShardPipeline() = default;

void ShardPipeline::onRecords(std::span<const FlowRecord> records) {
  copy_.assign(records.begin(), records.end());
  onRecordBatch(copy_);
}

void ShardPipeline::onRecordBatch(std::span<FlowRecord> records) {
  Batch b;
  b.records = records;
  if (enricher_) {
    in_.resize(records.size());
    out_.resize(records.size());
    enricher_->enrich(records, in_.data(), out_.data());
    b.in_port = in_.data();
    b.out_port = out_.data();
    b.snapshot = enricher_->snapshot();
  }
  for (FlowSink* s : sinks_) {
    s->onBatch(b);
  }
}

void ShardPipeline::onCounters(const decode::InterfaceCounters& counters) {
  if (enricher_ && counters.has_port_name && counters.has_generic) {
    // Flow records of sFlow name their agent as exporter (collector/decode/sflow.cpp).
    enricher_->learnName(counters.agent.isZero() ? counters.exporter : counters.agent,
                         counters.if_index, counters.portName());
  }
  for (FlowSink* s : sinks_) {
    s->onCounters(counters);
  }
}

void ShardPipeline::onInterfaceName(const decode::InterfaceName& name) {
  if (enricher_) {
    enricher_->learnName(name.exporter, name.if_index, name.name);
  }
  for (FlowSink* s : sinks_) {
    s->onInterfaceName(name);
  }
}

}  // namespace nc::sink
