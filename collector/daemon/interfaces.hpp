#pragma once
// InterfaceTable: what the daemon knows about exporters' interfaces, keyed by (exporter, if
// index): names learnt from IPFIX / NetFlow v9 interfaceName (OVS names both ports of every
// record, routers send interface tables as options data) and from sFlow's port-name counter
// record, and the latest sFlow interface counter sample (octets, packets, errors, discards, speed,
// status, OpenFlow port) with rates from the two newest samples. Counter samples are kept here as
// interface counters, never turned into flows.
//
// One table per receive shard: only that shard's thread writes it (once per counter sample or
// name change, never per flow record); readers take a snapshot. Bounded by `capacity` entries
// (further interfaces are counted in `refused`).
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "collector/decode/decoder.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::daemon {

struct InterfaceEntry {
  IpAddr exporter;  // sFlow: the agent address; IPFIX/v9: the datagram source (as on flows)
  uint32_t if_index = 0;
  IfKind if_kind = IfKind::kUnknown;
  std::string name;         // "" = unknown
  std::string name_source;  // "ipfix", "netflow_v9", "sflow"
  uint64_t name_ns = 0;     // when the name was last learnt or changed

  bool has_counters = false;
  decode::InterfaceCounters counters;  // latest sample (port_name as sent)
  uint64_t samples = 0;                // counter samples received
  // Per-second rates between the two newest samples (0 until there are two, or after a counter
  // went backwards: agent restart or wrap).
  double in_bps = 0, out_bps = 0, in_pps = 0, out_pps = 0;
};

class InterfaceTable {
 public:
  explicit InterfaceTable(size_t capacity = 65536) : capacity_(capacity) {}
  void onCounters(const decode::InterfaceCounters& c);
  void onName(const decode::InterfaceName& n);
  // Appends a copy of every entry.
  void snapshot(std::vector<InterfaceEntry>& out) const;
  uint64_t refused() const;

 private:
  InterfaceEntry* entry(const IpAddr& exporter, uint32_t if_index);

  mutable std::mutex mutex_;
  std::map<std::pair<IpAddr, uint32_t>, InterfaceEntry> entries_;
  size_t capacity_;
  uint64_t refused_ = 0;
};

// Merges snapshots of several shards: the same interface seen by two shards keeps the newest name
// and the newest counters. Sorted by exporter, then if index.
std::vector<InterfaceEntry> mergeInterfaces(std::vector<InterfaceEntry> all);

}  // namespace nc::daemon
