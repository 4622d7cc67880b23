#include "collector/daemon/interfaces.hpp"

#include <algorithm>
#include <tuple>

namespace nc::daemon {

InterfaceEntry* InterfaceTable::entry(const IpAddr& exporter, uint32_t if_index) {
  auto key = std::make_pair(exporter, if_index);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    return &it->second;
  }
  if (entries_.size() >= capacity_) {
    ++refused_;
    return nullptr;
  }
  InterfaceEntry& e = entries_[key];
  e.exporter = exporter;
  e.if_index = if_index;
  return &e;
}

void InterfaceTable::onCounters(const decode::InterfaceCounters& c) {
  // The interface is the generic record's ifIndex; without one, the data source index.
  uint32_t index = c.has_generic ? c.if_index : (c.source_id & 0xffffff);
  const IpAddr& who = c.agent.isZero() ? c.exporter : c.agent;
  std::lock_guard lock(mutex_);
  InterfaceEntry* e = entry(who, index);
  if (e == nullptr) {
    return;
  }
  if (e->has_counters && c.has_generic && e->counters.has_generic &&
      c.received_ns > e->counters.received_ns) {
    const auto& p = e->counters;
    double dt = static_cast<double>(c.received_ns - p.received_ns) / 1e9;
    bool forward = c.in_octets >= p.in_octets && c.out_octets >= p.out_octets &&
                   c.in_packets >= p.in_packets && c.out_packets >= p.out_packets;
    if (forward && dt > 0) {
      e->in_bps = static_cast<double>(c.in_octets - p.in_octets) * 8 / dt;
      e->out_bps = static_cast<double>(c.out_octets - p.out_octets) * 8 / dt;
      e->in_pps = static_cast<double>(c.in_packets - p.in_packets) / dt;
      e->out_pps = static_cast<double>(c.out_packets - p.out_packets) / dt;
    } else {
      e->in_bps = e->out_bps = e->in_pps = e->out_pps = 0;
    }
  }
  e->counters = c;
  e->has_counters = true;
  ++e->samples;
  if (e->if_kind == IfKind::kUnknown) {
    e->if_kind = IfKind::kLinuxIfindex;  // sFlow data sources are ifIndex values
  }
  if (c.has_port_name && c.port_name_len > 0) {
    std::string_view name = c.portName();
    if (e->name != name) {
      e->name.assign(name);
      e->name_source = "sflow";
      e->name_ns = c.received_ns;
    }
  }
}

void InterfaceTable::onName(const decode::InterfaceName& n) {
  std::lock_guard lock(mutex_);
  InterfaceEntry* e = entry(n.exporter, n.if_index);
  if (e == nullptr) {
    return;
  }
  e->name.assign(n.name);
  e->name_source = n.proto == FlowProto::kNetflowV9 ? "netflow_v9" : "ipfix";
  e->name_ns = n.received_ns;
  if (n.if_kind != IfKind::kUnknown) {
    e->if_kind = n.if_kind;
  }
}

void InterfaceTable::snapshot(std::vector<InterfaceEntry>& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& [key, e] : entries_) {
    out.push_back(e);
  }
}

uint64_t InterfaceTable::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

std::vector<InterfaceEntry> mergeInterfaces(std::vector<InterfaceEntry> all) {
  std::sort(all.begin(), all.end(), [](const InterfaceEntry& a, const InterfaceEntry& b) {
    return std::tie(a.exporter, a.if_index) < std::tie(b.exporter, b.if_index);
  });
  std::vector<InterfaceEntry> out;
  for (auto& e : all) {
    if (!out.empty() && out.back().exporter == e.exporter && out.back().if_index == e.if_index) {
      InterfaceEntry& m = out.back();
      if (e.name_ns > m.name_ns) {
        m.name = e.name;
        m.name_source = e.name_source;
        m.name_ns = e.name_ns;
      }
      if (e.has_counters && (!m.has_counters || e.counters.received_ns > m.counters.received_ns)) {
        uint64_t samples = m.samples + e.samples;
        std::string name = m.name, source = m.name_source;
        uint64_t name_ns = m.name_ns;
        m = e;
        m.samples = samples;
        m.name = name;
        m.name_source = source;
        m.name_ns = name_ns;
      } else {
        m.samples += e.samples;
      }
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace nc::daemon
