#pragma once
// nc_inventory: what this host's network looks like, for joining flows to it.
//
//   ovsdb-server --RFC 7047 monitor--> Bridge/Port/Interface/NetFlow replica --+
//   Linux netlink (NetlinkWatcher) --> links, addresses, neighbours -----------+--> Snapshot
//
// A Snapshot is immutable and published atomically (a shared_ptr swapped under a mutex, plus a
// generation counter the data path reads without a lock per batch), within a few milliseconds of
// an OVSDB update or a netlink notification. It holds one Port per OVS Interface with everything
// an operator asks about it (bridge, port, ofport, ifindex, MACs, states, VLANs, external_ids, the
// VM behind it, and the Linux link's state, addresses and recent changes), plus lookup tables for
// the data path: ifindex, (bridge, ofport), MAC and address -> port.
//
// Enricher (per receive shard, no locks, no allocation per record) fills the name columns of
// FlowRecords (in_ifname, out_ifname, bridge, in_vm, out_vm) from a Snapshot:
//  * a flow from a LOCAL exporter (its address is one of this host's, or loopback) resolves its
//    interface numbers by if_kind: OpenFlow port (OVS NetFlow v5) -> the port with that ofport
//    (the bridge found through the NetFlow row's engine type/id when ofports repeat across
//    bridges), Linux ifindex (OVS sFlow/IPFIX, and any other local exporter) -> the port with
//    that ifindex. Where the number is missing, 0 or unknown (tunnel ports, internal ports, some
//    sFlow samples): the port whose attached-mac / mac_in_use is the flow's source MAC (input) or
//    destination MAC (output), then the port behind the source / destination address (neighbour
//    table resolved to a port's MAC, addresses of the port's own link);
//  * any exporter: names the exporter sent for its interfaces (IPFIX/v9 interfaceName in records
//    or options, sFlow port names) fill in_ifname / out_ifname when the inventory has none.
// The names are those valid when the flow is received; later renames do not touch stored flows.
#include <nlohmann/json.hpp>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/record/flow_record.hpp"
#include "config/config.hpp"
#include "ovsctl/inventory/netlink.hpp"

namespace nc::inventory {

// One Open vSwitch interface, joined with its port, bridge and Linux link.
struct Port {
  uint32_t slot = 0;  // index in Snapshot::ports
  std::string bridge;
  std::string port;           // Port.name
  std::string name;           // Interface.name
  std::string type;           // "", "internal", "vxlan", "patch", ...
  int64_t ofport = -1;        // -1 unknown
  int64_t ifindex = 0;        // 0 unknown
  uint64_t mac = 0;           // mac_in_use (else the Linux link's MAC)
  uint64_t attached_mac = 0;  // external_ids:attached-mac (the VM's MAC)
  std::string admin_state;    // "up" / "down" / ""
  std::string link_state;
  uint64_t link_speed = 0;  // bits/s, 0 unknown
  int64_t tag = -1;         // access VLAN, -1 none
  std::vector<int64_t> trunks;
  std::map<std::string, std::string> external_ids;  // Interface's, then Port's keys it lacks
  std::string vm;  // external_ids vm-uuid, else vm-id, else iface-id ("" none)
  // From netlink (empty when the link is not in this network namespace).
  bool has_link = false;
  std::string operstate;
  uint32_t mtu = 0;
  std::vector<std::string> addresses;  // of the link, "10.0.0.1/24"
  std::vector<LinkChange> changes;     // the link's recent history
  // NameTable ids of name, bridge and vm.
  uint32_t name_id = 0;
  uint32_t bridge_id = 0;
  uint32_t vm_id = 0;
};

// Open addressing over 64-bit keys; built once per snapshot, read by every shard.
class SlotMap {
 public:
  void build(const std::vector<std::pair<uint64_t, uint32_t>>& entries);
  // The slot for `key`, or UINT32_MAX.
  uint32_t find(uint64_t key) const {
    if (mask_ == 0) {
      return UINT32_MAX;
    }
    for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Entry& e = table_[i];
      if (e.slot == UINT32_MAX) {
        return UINT32_MAX;
      }
      if (e.key == key) {
        return e.slot;
      }
    }
  }
  bool empty() const { return mask_ == 0; }

 private:
  static uint64_t hash(uint64_t k) { return (k * 0x9E3779B97F4A7C15ull) >> 20; }
  struct Entry {
    uint64_t key = 0;
    uint32_t slot = UINT32_MAX;
  };
  std::vector<Entry> table_;
  uint64_t mask_ = 0;
};

struct Snapshot {
  uint64_t generation = 0;
  uint64_t built_ns = 0;
  bool ovsdb_synced = false;
  std::vector<Port> ports;
  std::vector<std::string> bridges;
  std::shared_ptr<const NetlinkState> netlink;  // never null once published
  // This host's addresses (netlink, plus 127.0.0.1 and ::1): exporters sending from one of them
  // are local.
  std::vector<IpAddr> local_addresses;

  // Lookups (UINT32_MAX = none): slots into `ports`.
  SlotMap by_ifindex;
  SlotMap by_ofport;      // key: bridge index << 32 | ofport
  SlotMap by_ofport_any;  // key: ofport, only for ofports no two bridges share
  SlotMap by_engine;      // key: engine_type << 8 | engine_id -> bridge index
  SlotMap by_mac;         // attached-mac and mac_in_use
  SlotMap by_addr;        // key: addrKey(address) (neighbours, link addresses)

  bool isLocal(const IpAddr& a) const;
  const Port* portByName(std::string_view name) const;
  static uint64_t addrKey(const IpAddr& a);
};

// Per-shard flow enrichment against the published snapshot (see the header comment). The shard
// calls enrich() for each decoded batch; it takes a new snapshot only when the generation moved.
class Enricher {
 public:
  explicit Enricher(const class Inventory* inventory) : inventory_(inventory) {}
  // Fills in_ifname/out_ifname/bridge/in_vm/out_vm; `in_slot`/`out_slot` (when not null, sized by
  // the caller to records.size()) get the resolved ports' slots in the snapshot (UINT32_MAX none).
  void enrich(std::span<FlowRecord> records, uint32_t* in_slot = nullptr,
              uint32_t* out_slot = nullptr);
  // An interface name an exporter sent (decoder output); kept per (exporter, if index).
  void learnName(const IpAddr& exporter, uint32_t if_index, std::string_view name);
  // For tests and tools without a live Inventory: the snapshot enrich() uses when the inventory
  // pointer is null (ignored otherwise). Each call counts as a new generation: the next enrich()
  // takes `s` (null: an empty snapshot) and forgets the MACs learnt against the previous one.
  void useSnapshot(std::shared_ptr<const Snapshot> s);
  const Snapshot* snapshot() const { return snap_.get(); }
  const std::shared_ptr<const Snapshot>& snapshotPtr() const { return snap_; }

 private:
  uint32_t resolve(const FlowRecord& r, bool input, bool local);
  const class Inventory* inventory_;
  std::shared_ptr<const Snapshot> fixed_;  // useSnapshot()
  uint64_t fixed_generation_ = 0;          // +1 per useSnapshot()
  std::shared_ptr<const Snapshot> snap_;
  uint64_t generation_ = UINT64_MAX;
  IpAddr last_exporter_;
  bool last_local_ = false;
  bool have_last_ = false;
  // Exporters' interface names: key hash(exporter) ^ if_index -> NameTable id (exact key kept).
  struct LearntName {
    IpAddr exporter;
    uint32_t if_index = 0;
    uint32_t name_id = 0;
  };
  std::unordered_map<uint64_t, LearntName> names_;
  // MACs learnt from flows, as a switch does: the source MAC of a flow whose input port was
  // resolved by its number is behind that port (ports without attached-mac). Slots of snap_;
  // cleared when the snapshot changes. Open addressing, bounded (cleared when full).
  void learnMac(uint64_t mac, uint32_t slot);
  uint32_t learntMac(uint64_t mac) const;
  std::vector<std::pair<uint64_t, uint32_t>> macs_;
  size_t macs_used_ = 0;
};

struct InventoryOptions {
  bool ovsdb = true;    // monitor OVSDB (config.ovsdb.endpoint)
  bool netlink = true;  // watch Linux netlink
};

// The live inventory, on the control-plane io_context. Thread-safe reads.
class Inventory {
 public:
  Inventory(boost::asio::io_context& io, config::OvsdbConfig ovsdb, InventoryOptions options = {});
  ~Inventory();
  Inventory(const Inventory&) = delete;
  Inventory& operator=(const Inventory&) = delete;

  // Connects to OVSDB (reconnecting with backoff, as the provisioner does) and starts the netlink
  // watcher. Netlink failing to open is logged and counted, not fatal.
  void start();
  void stop();

  // Never null: an empty snapshot before the first build.
  std::shared_ptr<const Snapshot> snapshot() const;
  // Bumped after each publish; the data path compares it per batch (relaxed load).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // After each publish, on the io_context thread.
  std::function<void()> on_change;
  // {"ovsdb":{"endpoint","state","synced","last_error"},"netlink":{...},"ports","bridges",
  //  "generation","published"}
  nlohmann::json status() const;

  // Builds a snapshot from an OVSDB replica's tables (as plain JSON rows, see inventory.cpp) and
  // a netlink state; exposed for tests.
  static std::shared_ptr<Snapshot> build(const nlohmann::json& tables,
                                         std::shared_ptr<const NetlinkState> netlink);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
  std::atomic<uint64_t> generation_{0};
  friend class Impl;
};

// JSON for `net-collector ports` (one port; rates are added by the caller).
nlohmann::json toJson(const Port& p);

}  // namespace nc::inventory
