// The receive path's Prometheus families: totals over shards and per-exporter counters, from the
// snapshots the shards publish (no waiting on the shards).
#include <string>

#include "collector/ingest/ingest.hpp"
#include "collector/metrics/metrics.hpp"

namespace nc::ingest {

void writeMetrics(const Ingest& ingest, metrics::MetricWriter& w) {
  using metrics::MetricType;
  using metrics::Unit;
  metrics::writeStats(w, "ingest", ingest.totals());
  const std::vector<decode::ExporterStats> exporters = ingest.exporters();
  w.family("exporters", MetricType::kGauge, Unit::kNone,
           "Exporters known to the decoders (one per address and protocol)")
      .add(exporters.size());
  for (const auto& e : exporters) {
    const std::string address = e.exporter.toString();
    const metrics::Label labels[] = {{"exporter", address}, {"protocol", toString(e.last_proto)}};
    metrics::writeStats(w, "exporter", e, labels);
    w.family("exporter_info", MetricType::kGauge, Unit::kNone,
             "Kind of each exporter: flavor=ovs|router|auto (auto: not known yet); always 1")
        .add({labels[0], labels[1], {"flavor", decode::toString(e.flavor)}}, 1);
    w.family("exporter_last_seen_timestamp", MetricType::kGauge, Unit::kSeconds,
             "UNIX time of the exporter's newest datagram")
        .add(labels, static_cast<double>(e.last_seen_ns) / 1e9);
  }
}

}  // namespace nc::ingest
