// The inventory snapshot (Inventory::build from plain OVSDB rows and a hand-made NetlinkState) and
// the per-shard Enricher that joins flows to it, fed through Enricher::useSnapshot() (no live
// Inventory, no OVSDB, no netlink socket).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "collector/record/flow_record.hpp"
#include "collector/record/names.hpp"
#include "ovsctl/inventory/inventory.hpp"
#include "ovsctl/inventory/netlink.hpp"

namespace nc::inventory {
namespace {

using nlohmann::json;

constexpr uint32_t kNone = UINT32_MAX;

IpAddr ip(std::string_view text) {
  IpAddr a;
  EXPECT_TRUE(IpAddr::parse(text, a)) << text;
  return a;
}

uint64_t mac(std::string_view text) {
  uint64_t m = 0;
  EXPECT_TRUE(parseMac(text, m)) << text;
  return m;
}

// Two bridges. br-int: its internal port, three VM taps (vm-uuid / vm-id / iface-id), NetFlow
// engine 1/1. br-ex: eth1 (ofport 1, the same as vm1-tap's) and a vxlan tunnel without ifindex,
// NetFlow engine 2/2. Sets are given both as arrays and as bare values, optionals as null.
json tables() {
  return json::parse(R"({
    "Bridge": {
      "b-int": {"name": "br-int", "ports": ["p-int", "p-vm1", "p-vm2", "p-vm3"],
                "netflow": "nf-int"},
      "b-ex": {"name": "br-ex", "ports": ["p-eth1", "p-tun"], "netflow": ["nf-ex"]}
    },
    "Port": {
      "p-int": {"name": "br-int", "interfaces": "i-int", "tag": null, "trunks": [],
                "external_ids": {}},
      "p-vm1": {"name": "vm1-tap", "interfaces": ["i-vm1"], "tag": 10, "trunks": [],
                "external_ids": {}},
      "p-vm2": {"name": "vm2-tap", "interfaces": ["i-vm2"], "tag": null, "trunks": [20, 30],
                "external_ids": {}},
      "p-vm3": {"name": "vm3", "interfaces": "i-vm3", "tag": null, "trunks": 40,
                "external_ids": {"owner": "test", "iface-id": "from-port"}},
      "p-eth1": {"name": "eth1", "interfaces": ["i-eth1"]},
      "p-tun": {"name": "tun0", "interfaces": ["i-tun"]}
    },
    "Interface": {
      "i-int": {"name": "br-int", "type": "internal", "ofport": 65534, "ifindex": 20,
                "mac_in_use": "aa:bb:cc:00:00:20", "admin_state": "up", "link_state": "up",
                "link_speed": null, "external_ids": {}},
      "i-vm1": {"name": "vm1-tap", "type": "", "ofport": 1, "ifindex": 11,
                "mac_in_use": "fe:16:3e:00:00:01", "admin_state": "up", "link_state": "up",
                "link_speed": 10000000000,
                "external_ids": {"attached-mac": "52:54:00:00:00:01", "vm-uuid": "uuid-vm1",
                                 "vm-id": "id-vm1", "iface-id": "iface-vm1"}},
      "i-vm2": {"name": "vm2-tap", "ofport": 2, "ifindex": null, "mac_in_use": null,
                "external_ids": {"vm-id": "id-vm2", "iface-id": "iface-vm2"}},
      "i-vm3": {"name": "vm3-tap", "ofport": 3, "ifindex": 13, "mac_in_use": "fe:16:3e:00:00:03",
                "admin_state": "down", "link_state": "down",
                "external_ids": {"iface-id": "iface-vm3"}},
      "i-eth1": {"name": "eth1", "ofport": 1, "ifindex": 30, "mac_in_use": "02:00:00:00:00:30"},
      "i-tun": {"name": "tun0", "type": "vxlan", "ofport": 7, "ifindex": null}
    },
    "NetFlow": {
      "nf-int": {"engine_type": 1, "engine_id": 1},
      "nf-ex": {"engine_type": 2, "engine_id": 2}
    }
  })");
}

NlLink link(int ifindex, std::string name, std::string_view mac_text,
            std::vector<std::pair<std::string_view, uint8_t>> addrs = {}) {
  NlLink l;
  l.ifindex = ifindex;
  l.name = std::move(name);
  l.mac = mac(mac_text);
  l.operstate = "up";
  l.admin_up = true;
  l.carrier = true;
  l.mtu = 1500;
  for (const auto& [a, len] : addrs) {
    l.addresses.push_back(NlAddress{ip(a), len, ifindex});
  }
  return l;
}

std::shared_ptr<const NetlinkState> netlink() {
  auto nl = std::make_shared<NetlinkState>();
  nl->generation = 1;
  nl->links[11] = link(11, "vm1-tap", "fe:16:3e:00:00:01");
  nl->links[11].history = {{1'000'000'000, "created"}, {2'000'000'000, "mtu 1500 -> 9000"}};
  nl->links[12] = link(12, "vm2-tap", "fe:16:3e:00:00:02");
  nl->links[13] = link(13, "vm3-tap", "fe:16:3e:00:00:03");
  nl->links[20] = link(20, "br-int", "aa:bb:cc:00:00:20", {{"10.0.0.1", 24}});
  nl->links[30] = link(30, "eth1", "02:00:00:00:00:30", {{"192.168.1.10", 24}});
  // A neighbour whose MAC is vm1's VM (attached-mac), and one nobody owns.
  nl->neighbours.push_back({ip("10.0.0.5"), mac("52:54:00:00:00:01"), 20, "reachable"});
  nl->neighbours.push_back({ip("10.0.0.99"), mac("52:54:00:00:00:99"), 20, "stale"});
  return nl;
}

std::shared_ptr<const Snapshot> snapshot() {
  return Inventory::build(tables(), netlink());
}

uint32_t slotOf(const Snapshot& s, std::string_view name) {
  const Port* p = s.portByName(name);
  EXPECT_NE(p, nullptr) << name;
  return p != nullptr ? p->slot : kNone;
}

FlowRecord rec(std::string_view exporter, IfKind kind, uint32_t in_if, uint32_t out_if) {
  FlowRecord r;
  r.exporter = ip(exporter);
  r.if_kind = kind;
  r.in_if = in_if;
  r.out_if = out_if;
  r.ip_version = 4;
  return r;
}

struct Result {
  FlowRecord r;
  uint32_t in_slot = kNone;
  uint32_t out_slot = kNone;
  std::string_view in_ifname() const { return nameOf(r.in_ifname); }
  std::string_view out_ifname() const { return nameOf(r.out_ifname); }
  std::string_view bridge() const { return nameOf(r.bridge); }
  std::string_view in_vm() const { return nameOf(r.in_vm); }
  std::string_view out_vm() const { return nameOf(r.out_vm); }
};

Result enrichOne(Enricher& e, FlowRecord r) {
  Result out;
  out.r = r;
  e.enrich(std::span<FlowRecord>(&out.r, 1), &out.in_slot, &out.out_slot);
  return out;
}

class EnricherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    snap_ = snapshot();
    enricher_.useSnapshot(snap_);
  }
  uint32_t slot(std::string_view name) const { return slotOf(*snap_, name); }
  Result run(const FlowRecord& r) { return enrichOne(enricher_, r); }

  std::shared_ptr<const Snapshot> snap_;
  Enricher enricher_{nullptr};
};

// ---- SlotMap ----

TEST(SlotMap, EmptyFindsNothing) {
  SlotMap m;
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.find(0), kNone);
  EXPECT_EQ(m.find(42), kNone);
  m.build({});
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.find(42), kNone);
}

TEST(SlotMap, ManyKeysWithCollisionsAllFound) {
  // 3000 keys in a 8192-entry table: many share a home bucket and probe past each other.
  std::vector<std::pair<uint64_t, uint32_t>> entries;
  for (uint32_t i = 0; i < 3000; ++i) {
    entries.emplace_back(uint64_t{i} * 0x100000, i);  // keys differing only in the high bits
  }
  entries.emplace_back(0xffffffffffffffffull, 3000);
  SlotMap m;
  m.build(entries);
  EXPECT_FALSE(m.empty());
  for (const auto& [key, slot] : entries) {
    EXPECT_EQ(m.find(key), slot) << key;
  }
  EXPECT_EQ(m.find(0), 0u);  // key 0 is a key like any other
  for (uint64_t k = 1; k < 2000; k += 7) {
    EXPECT_EQ(m.find(k), kNone) << k;  // absent keys end at an empty entry
  }
}

TEST(SlotMap, FirstEntryForAKeyWins) {
  SlotMap m;
  m.build({{5, 1}, {6, 2}, {5, 3}, {6, 4}, {7, 5}});
  EXPECT_EQ(m.find(5), 1u);
  EXPECT_EQ(m.find(6), 2u);
  EXPECT_EQ(m.find(7), 5u);
  // A rebuild replaces everything.
  m.build({{7, 9}});
  EXPECT_EQ(m.find(5), kNone);
  EXPECT_EQ(m.find(7), 9u);
}

// ---- Inventory::build ----

TEST(InventoryBuild, JoinsRowsAndNetlink) {
  auto s = snapshot();
  ASSERT_EQ(s->ports.size(), 6u);
  EXPECT_EQ(s->bridges, (std::vector<std::string>{"br-ex", "br-int"}));
  for (uint32_t i = 0; i < s->ports.size(); ++i) {
    EXPECT_EQ(s->ports[i].slot, i);
  }
  // Bridges in name order, ports in name order within a bridge.
  std::vector<std::string> names;
  for (const Port& p : s->ports) {
    names.push_back(p.name);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"eth1", "tun0", "br-int", "vm1-tap", "vm2-tap", "vm3-tap"}));

  const Port& vm1 = *s->portByName("vm1-tap");
  EXPECT_EQ(vm1.bridge, "br-int");
  EXPECT_EQ(vm1.port, "vm1-tap");
  EXPECT_EQ(vm1.ofport, 1);
  EXPECT_EQ(vm1.ifindex, 11);
  EXPECT_EQ(vm1.mac, mac("fe:16:3e:00:00:01"));
  EXPECT_EQ(vm1.attached_mac, mac("52:54:00:00:00:01"));
  EXPECT_EQ(vm1.vm, "uuid-vm1");  // vm-uuid before vm-id and iface-id
  EXPECT_EQ(vm1.tag, 10);
  EXPECT_EQ(vm1.link_speed, 10'000'000'000u);
  EXPECT_TRUE(vm1.has_link);
  EXPECT_EQ(vm1.operstate, "up");
  EXPECT_EQ(vm1.changes.size(), 2u);
  EXPECT_EQ(nameOf(vm1.name_id), "vm1-tap");
  EXPECT_EQ(nameOf(vm1.bridge_id), "br-int");
  EXPECT_EQ(nameOf(vm1.vm_id), "uuid-vm1");

  // ifindex and MAC null in OVSDB: taken from the Linux link of the same name.
  const Port& vm2 = *s->portByName("vm2-tap");
  EXPECT_EQ(vm2.ifindex, 12);
  EXPECT_EQ(vm2.mac, mac("fe:16:3e:00:00:02"));
  EXPECT_EQ(vm2.vm, "id-vm2");  // vm-id before iface-id
  EXPECT_EQ(vm2.tag, -1);
  EXPECT_EQ(vm2.trunks, (std::vector<int64_t>{20, 30}));

  // Port's external_ids fill the keys the Interface lacks; the Interface's win.
  const Port& vm3 = *s->portByName("vm3-tap");
  EXPECT_EQ(vm3.port, "vm3");
  EXPECT_EQ(vm3.vm, "iface-vm3");
  EXPECT_EQ(vm3.external_ids.at("owner"), "test");
  EXPECT_EQ(vm3.external_ids.at("iface-id"), "iface-vm3");
  EXPECT_EQ(vm3.trunks, (std::vector<int64_t>{40}));  // a bare value is a one-element set
  EXPECT_EQ(vm3.admin_state, "down");

  const Port& tun = *s->portByName("tun0");
  EXPECT_EQ(tun.type, "vxlan");
  EXPECT_EQ(tun.ifindex, 0);
  EXPECT_FALSE(tun.has_link);
  EXPECT_EQ(tun.vm, "");
  EXPECT_EQ(tun.vm_id, 0u);

  // Lookups.
  EXPECT_EQ(s->by_ifindex.find(11), vm1.slot);
  EXPECT_EQ(s->by_ifindex.find(12), vm2.slot);
  EXPECT_EQ(s->by_ofport_any.find(1), kNone);  // on both bridges
  EXPECT_EQ(s->by_ofport_any.find(2), vm2.slot);
  EXPECT_EQ(s->by_ofport_any.find(7), tun.slot);
  EXPECT_EQ(s->by_mac.find(mac("52:54:00:00:00:01")), vm1.slot);
  EXPECT_EQ(s->by_mac.find(mac("fe:16:3e:00:00:01")), vm1.slot);
  EXPECT_EQ(s->by_mac.find(mac("aa:bb:cc:00:00:20")), kNone);  // internal ports' MACs are not
  EXPECT_EQ(s->by_addr.find(Snapshot::addrKey(ip("10.0.0.5"))), vm1.slot);
  EXPECT_EQ(s->by_addr.find(Snapshot::addrKey(ip("10.0.0.1"))), slotOf(*s, "br-int"));
  EXPECT_EQ(s->by_addr.find(Snapshot::addrKey(ip("10.0.0.99"))), kNone);

  for (const char* a : {"127.0.0.1", "::1", "10.0.0.1", "192.168.1.10"}) {
    EXPECT_TRUE(s->isLocal(ip(a))) << a;
  }
  EXPECT_FALSE(s->isLocal(ip("192.0.2.1")));
  EXPECT_EQ(s->portByName("nope"), nullptr);
}

TEST(InventoryBuild, EmptyTablesAndNullNetlink) {
  auto s = Inventory::build(json::object(), nullptr);
  EXPECT_TRUE(s->ports.empty());
  ASSERT_NE(s->netlink, nullptr);
  EXPECT_TRUE(s->by_ifindex.empty());
  EXPECT_TRUE(s->isLocal(ip("127.0.0.1")));
}

TEST(InventoryBuild, ToJsonPort) {
  auto s = snapshot();
  const json vm1 = toJson(*s->portByName("vm1-tap"));
  EXPECT_EQ(vm1["bridge"], "br-int");
  EXPECT_EQ(vm1["port"], "vm1-tap");
  EXPECT_EQ(vm1["interface"], "vm1-tap");
  EXPECT_EQ(vm1["type"], "");
  EXPECT_EQ(vm1["ofport"], 1);
  EXPECT_EQ(vm1["ifindex"], 11);
  EXPECT_EQ(vm1["mac"], "fe:16:3e:00:00:01");
  EXPECT_EQ(vm1["attached_mac"], "52:54:00:00:00:01");
  EXPECT_EQ(vm1["vm"], "uuid-vm1");
  EXPECT_EQ(vm1["admin_state"], "up");
  EXPECT_EQ(vm1["link_state"], "up");
  EXPECT_EQ(vm1["link_speed"], 10'000'000'000u);
  EXPECT_EQ(vm1["tag"], 10);
  EXPECT_EQ(vm1["trunks"], json::array());
  EXPECT_EQ(vm1["external_ids"]["vm-uuid"], "uuid-vm1");
  EXPECT_EQ(vm1["operstate"], "up");
  EXPECT_EQ(vm1["mtu"], 1500);
  EXPECT_EQ(vm1["addresses"], json::array());
  ASSERT_EQ(vm1["changes"].size(), 2u);
  EXPECT_EQ(vm1["changes"][1]["what"], "mtu 1500 -> 9000");
  EXPECT_TRUE(vm1["changes"][0]["time"].is_string());

  // Unknowns are null.
  const json tun = toJson(*s->portByName("tun0"));
  EXPECT_EQ(tun["ofport"], 7);
  EXPECT_TRUE(tun["ifindex"].is_null());
  EXPECT_TRUE(tun["mac"].is_null());
  EXPECT_TRUE(tun["attached_mac"].is_null());
  EXPECT_TRUE(tun["vm"].is_null());
  EXPECT_TRUE(tun["tag"].is_null());
  EXPECT_TRUE(tun["operstate"].is_null());
  EXPECT_TRUE(tun["mtu"].is_null());
  EXPECT_EQ(tun["changes"], json::array());

  const json br = toJson(*s->portByName("br-int"));
  EXPECT_EQ(br["addresses"], json::array({"10.0.0.1/24"}));
  EXPECT_EQ(br["ofport"], 65534);
}

// ---- Enricher ----

TEST_F(EnricherTest, LocalExporterByIfindex) {
  for (const char* exporter : {"127.0.0.1", "::1", "192.168.1.10", "10.0.0.1"}) {
    Result x = run(rec(exporter, IfKind::kLinuxIfindex, 11, 12));
    EXPECT_EQ(x.in_slot, slot("vm1-tap")) << exporter;
    EXPECT_EQ(x.out_slot, slot("vm2-tap")) << exporter;
    EXPECT_EQ(x.in_ifname(), "vm1-tap");
    EXPECT_EQ(x.out_ifname(), "vm2-tap");
    EXPECT_EQ(x.bridge(), "br-int");
    EXPECT_EQ(x.in_vm(), "uuid-vm1");
    EXPECT_EQ(x.out_vm(), "id-vm2");
  }
  // iface-id as the VM; the bridge from the output port when the input is unknown.
  Result x = run(rec("127.0.0.1", IfKind::kLinuxIfindex, 999, 13));
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.r.in_ifname, 0u);
  EXPECT_EQ(x.r.in_vm, 0u);
  EXPECT_EQ(x.out_ifname(), "vm3-tap");
  EXPECT_EQ(x.out_vm(), "iface-vm3");
  EXPECT_EQ(x.bridge(), "br-int");
  // A port on the other bridge.
  x = run(rec("127.0.0.1", IfKind::kLinuxIfindex, 30, 0));
  EXPECT_EQ(x.in_ifname(), "eth1");
  EXPECT_EQ(x.bridge(), "br-ex");
  EXPECT_EQ(x.r.in_vm, 0u);
  EXPECT_EQ(x.out_slot, kNone);
  EXPECT_EQ(x.r.out_ifname, 0u);
}

TEST_F(EnricherTest, SlotsForABatch) {
  std::vector<FlowRecord> batch = {
      rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 12),
      rec("192.0.2.1", IfKind::kLinuxIfindex, 11, 12),  // not local
      rec("127.0.0.1", IfKind::kLinuxIfindex, 13, 30),
      rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0),
  };
  std::vector<uint32_t> in(batch.size(), 7);
  std::vector<uint32_t> out(batch.size(), 7);
  enricher_.enrich(batch, in.data(), out.data());
  EXPECT_EQ(in, (std::vector<uint32_t>{slot("vm1-tap"), kNone, slot("vm3-tap"), kNone}));
  EXPECT_EQ(out, (std::vector<uint32_t>{slot("vm2-tap"), kNone, slot("eth1"), kNone}));
  EXPECT_EQ(nameOf(batch[2].in_ifname), "vm3-tap");
  EXPECT_EQ(nameOf(batch[2].out_ifname), "eth1");
  EXPECT_EQ(nameOf(batch[2].bridge), "br-int");  // the input port's bridge first
  EXPECT_EQ(batch[1].in_ifname, 0u);
  // Without slot outputs.
  std::vector<FlowRecord> again = {rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 12)};
  enricher_.enrich(again);
  EXPECT_EQ(nameOf(again[0].in_ifname), "vm1-tap");
  EXPECT_EQ(enricher_.snapshot(), snap_.get());
}

TEST_F(EnricherTest, OpenFlowPortsUniqueAcrossBridges) {
  // ofport 2 and 7 exist on one bridge only: resolved whatever the engine says (0/0: not set).
  FlowRecord r = rec("127.0.0.1", IfKind::kOpenFlowPort, 2, 7);
  Result x = run(r);
  EXPECT_EQ(x.in_ifname(), "vm2-tap");
  EXPECT_EQ(x.out_ifname(), "tun0");
  EXPECT_EQ(x.bridge(), "br-int");
  EXPECT_EQ(x.in_vm(), "id-vm2");
  // The ofport, not the ifindex: ifindex 11 is no ofport.
  x = run(rec("127.0.0.1", IfKind::kOpenFlowPort, 11, 3));
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.out_ifname(), "vm3-tap");
}

TEST_F(EnricherTest, OpenFlowPortRepeatedAcrossBridgesNeedsTheEngine) {
  FlowRecord r = rec("127.0.0.1", IfKind::kOpenFlowPort, 1, 0);
  // Engine 0/0 belongs to no bridge: ofport 1 is ambiguous, not resolved at all.
  Result x = run(r);
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.r.in_ifname, 0u);
  EXPECT_EQ(x.r.bridge, 0u);
  // br-int's NetFlow engine 1/1.
  r.engine_type = 1;
  r.engine_id = 1;
  x = run(r);
  EXPECT_EQ(x.in_ifname(), "vm1-tap");
  EXPECT_EQ(x.bridge(), "br-int");
  // br-ex's engine 2/2.
  r.engine_type = 2;
  r.engine_id = 2;
  x = run(r);
  EXPECT_EQ(x.in_ifname(), "eth1");
  EXPECT_EQ(x.bridge(), "br-ex");
  // Engine 2/1 is no bridge's.
  r.engine_type = 2;
  r.engine_id = 1;
  x = run(r);
  EXPECT_EQ(x.in_slot, kNone);
  // A known engine names the bridge: ofport 2 is not on br-ex, even though it is unique.
  r = rec("127.0.0.1", IfKind::kOpenFlowPort, 2, 7);
  r.engine_type = 2;
  r.engine_id = 2;
  x = run(r);
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.out_ifname(), "tun0");
  EXPECT_EQ(x.bridge(), "br-ex");
}

TEST_F(EnricherTest, ReservedOpenFlowPortsAreNotPorts) {
  // OFPP_LOCAL (0xfffe) is br-int's ofport in OVSDB, but NetFlow's LOCAL/FLOOD/NONE are not ports.
  for (uint32_t num : {0xff00u, 0xfff8u, 0xfffbu, 0xfffeu, 0xffffu}) {
    FlowRecord r = rec("127.0.0.1", IfKind::kOpenFlowPort, num, num);
    r.engine_type = 1;
    r.engine_id = 1;
    Result x = run(r);
    EXPECT_EQ(x.in_slot, kNone) << num;
    EXPECT_EQ(x.out_slot, kNone) << num;
    EXPECT_EQ(x.r.bridge, 0u) << num;
  }
}

TEST_F(EnricherTest, SflowSpecialValuesAreNotResolvedByNumber) {
  // 0x80000000 | n: n output ports; 0x40000000 | reason: discarded. Low bits = a real ifindex.
  for (uint32_t num : {0x80000000u | 11u, 0x80000000u | 2u, 0x40000000u | 12u, 0xc000000bu}) {
    Result x = run(rec("127.0.0.1", IfKind::kLinuxIfindex, 11, num));
    EXPECT_EQ(x.in_ifname(), "vm1-tap");
    EXPECT_EQ(x.out_slot, kNone) << std::hex << num;
    EXPECT_EQ(x.r.out_ifname, 0u) << std::hex << num;
  }
  // ... but the destination MAC still names the output port.
  FlowRecord r = rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 0x80000002u);
  r.dst_mac = mac("fe:16:3e:00:00:03");
  EXPECT_EQ(run(r).out_ifname(), "vm3-tap");
}

TEST_F(EnricherTest, MacFallbackWhenTheNumberIsMissing) {
  FlowRecord r = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0);
  r.src_mac = mac("52:54:00:00:00:01");  // vm1's attached-mac
  r.dst_mac = mac("fe:16:3e:00:00:02");  // vm2-tap's mac (from its Linux link)
  Result x = run(r);
  EXPECT_EQ(x.in_ifname(), "vm1-tap");
  EXPECT_EQ(x.out_ifname(), "vm2-tap");
  EXPECT_EQ(x.in_vm(), "uuid-vm1");
  EXPECT_EQ(x.bridge(), "br-int");
  // An unknown number falls back too (a tunnel's or an internal port's number).
  r.in_if = 4242;
  r.out_if = 4343;
  x = run(r);
  EXPECT_EQ(x.in_slot, slot("vm1-tap"));
  EXPECT_EQ(x.out_slot, slot("vm2-tap"));
  // OpenFlow numbering: the same.
  r.if_kind = IfKind::kOpenFlowPort;
  r.in_if = 0;
  r.out_if = 0xfffe;
  x = run(r);
  EXPECT_EQ(x.in_slot, slot("vm1-tap"));
  EXPECT_EQ(x.out_slot, slot("vm2-tap"));
  // An internal port's MAC names nothing; unknown MACs neither.
  r = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0);
  r.src_mac = mac("aa:bb:cc:00:00:20");
  r.dst_mac = mac("52:54:00:00:00:77");
  x = run(r);
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.out_slot, kNone);
}

TEST_F(EnricherTest, LearnedMacs) {
  const uint64_t vm2_guest = mac("52:54:00:00:00:02");  // vm2 has no attached-mac
  FlowRecord to_vm2 = rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 0);
  to_vm2.dst_mac = vm2_guest;
  EXPECT_EQ(run(to_vm2).out_slot, kNone);  // not learnt yet

  // A flow whose input resolved by number teaches its source MAC.
  FlowRecord from_vm2 = rec("127.0.0.1", IfKind::kLinuxIfindex, 12, 11);
  from_vm2.src_mac = vm2_guest;
  EXPECT_EQ(run(from_vm2).in_slot, slot("vm2-tap"));
  Result x = run(to_vm2);
  EXPECT_EQ(x.out_slot, slot("vm2-tap"));
  EXPECT_EQ(x.out_ifname(), "vm2-tap");
  EXPECT_EQ(x.out_vm(), "id-vm2");
  // It also serves as the input.
  FlowRecord in0 = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0);
  in0.src_mac = vm2_guest;
  EXPECT_EQ(run(in0).in_slot, slot("vm2-tap"));

  // The MAC moved (the VM migrated to vm3-tap): the last port seen wins.
  from_vm2.in_if = 13;
  EXPECT_EQ(run(from_vm2).in_slot, slot("vm3-tap"));
  EXPECT_EQ(run(to_vm2).out_slot, slot("vm3-tap"));

  // A flow resolved by MAC or address (not by number) teaches nothing.
  const uint64_t other = mac("52:54:00:00:00:03");
  FlowRecord by_addr = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0);
  by_addr.src_mac = other;
  by_addr.src_addr = ip("10.0.0.5");
  EXPECT_EQ(run(by_addr).in_slot, slot("vm1-tap"));
  FlowRecord to_other = rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 0);
  to_other.dst_mac = other;
  EXPECT_EQ(run(to_other).out_slot, kNone);
  // Nor does an output resolved by number (only the input's source MAC is learnt).
  FlowRecord out_only = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 13);
  out_only.dst_mac = other;
  EXPECT_EQ(run(out_only).out_slot, slot("vm3-tap"));
  EXPECT_EQ(run(to_other).out_slot, kNone);
}

TEST_F(EnricherTest, LearnedMacTableIsBounded) {
  // Far more MACs than the table holds: it starts over when half full, never loops or grows.
  FlowRecord from = rec("127.0.0.1", IfKind::kLinuxIfindex, 12, 0);
  FlowRecord to = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0);
  constexpr uint64_t kBase = 0x525400100000ull;
  constexpr uint64_t kCount = 20'000;
  for (uint64_t i = 0; i < kCount; ++i) {
    from.src_mac = kBase + i;
    run(from);
  }
  to.dst_mac = kBase + kCount - 1;  // the last one learnt is known
  EXPECT_EQ(run(to).out_slot, slot("vm2-tap"));
  to.dst_mac = kBase;  // the first one was dropped with its generation
  EXPECT_EQ(run(to).out_slot, kNone);
  size_t known = 0;
  for (uint64_t i = 0; i < kCount; ++i) {
    to.dst_mac = kBase + i;
    known += run(to).out_slot != kNone ? 1 : 0;
  }
  EXPECT_GT(known, 0u);
  EXPECT_LE(known, 4096u);
}

TEST_F(EnricherTest, AddressFallback) {
  FlowRecord r = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0);
  r.src_addr = ip("10.0.0.5");  // a neighbour whose MAC is vm1's attached-mac
  r.dst_addr = ip("10.0.0.1");  // br-int's own address
  Result x = run(r);
  EXPECT_EQ(x.in_ifname(), "vm1-tap");
  EXPECT_EQ(x.in_vm(), "uuid-vm1");
  EXPECT_EQ(x.out_ifname(), "br-int");
  EXPECT_EQ(x.out_slot, slot("br-int"));
  EXPECT_EQ(x.bridge(), "br-int");
  // Reversed.
  std::swap(r.src_addr, r.dst_addr);
  x = run(r);
  EXPECT_EQ(x.in_ifname(), "br-int");
  EXPECT_EQ(x.out_ifname(), "vm1-tap");
  EXPECT_EQ(x.out_vm(), "uuid-vm1");
  // A neighbour whose MAC is nobody's, and an unknown address.
  r.src_addr = ip("10.0.0.99");
  r.dst_addr = ip("203.0.113.9");
  x = run(r);
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.out_slot, kNone);
  // The MAC comes before the address.
  r.src_addr = ip("10.0.0.5");
  r.src_mac = mac("fe:16:3e:00:00:03");
  EXPECT_EQ(run(r).in_slot, slot("vm3-tap"));
  // The number comes before both.
  r.in_if = 30;
  EXPECT_EQ(run(r).in_slot, slot("eth1"));
}

TEST_F(EnricherTest, NonLocalExporterGetsOnlyLearntNames) {
  const IpAddr router = ip("192.0.2.1");
  FlowRecord r = rec("192.0.2.1", IfKind::kLinuxIfindex, 11, 12);
  r.src_mac = mac("52:54:00:00:00:01");
  r.src_addr = ip("10.0.0.5");
  Result x = run(r);
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.out_slot, kNone);
  EXPECT_EQ(x.r.in_ifname, 0u);
  EXPECT_EQ(x.r.out_ifname, 0u);
  EXPECT_EQ(x.r.bridge, 0u);
  EXPECT_EQ(x.r.in_vm, 0u);
  EXPECT_EQ(x.r.out_vm, 0u);

  enricher_.learnName(router, 11, "ge-0/0/11");
  enricher_.learnName(router, 12, "ge-0/0/12");
  enricher_.learnName(ip("192.0.2.2"), 11, "other-router");
  x = run(r);
  EXPECT_EQ(x.in_ifname(), "ge-0/0/11");
  EXPECT_EQ(x.out_ifname(), "ge-0/0/12");
  EXPECT_EQ(x.r.bridge, 0u);
  EXPECT_EQ(x.r.in_vm, 0u);
  EXPECT_EQ(x.in_slot, kNone);
  // Another exporter, the same numbers.
  x = run(rec("192.0.2.2", IfKind::kSnmp, 11, 12));
  EXPECT_EQ(x.in_ifname(), "other-router");
  EXPECT_EQ(x.r.out_ifname, 0u);
  // A later name replaces the earlier one.
  enricher_.learnName(router, 12, "ge-0/0/12.100");
  EXPECT_EQ(run(r).out_ifname(), "ge-0/0/12.100");
  // Index 0 is never looked up.
  enricher_.learnName(router, 0, "zero");
  EXPECT_EQ(run(rec("192.0.2.1", IfKind::kSnmp, 0, 0)).r.in_ifname, 0u);
}

TEST_F(EnricherTest, LearntNamesFillWhatTheInventoryLacks) {
  const IpAddr lo = ip("127.0.0.1");
  enricher_.learnName(lo, 11, "exporter-says-11");
  enricher_.learnName(lo, 555, "exporter-says-555");
  Result x = run(rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 555));
  EXPECT_EQ(x.in_ifname(), "vm1-tap");  // the inventory's name first
  EXPECT_EQ(x.out_ifname(), "exporter-says-555");
  EXPECT_EQ(x.out_slot, kNone);
  EXPECT_EQ(x.r.out_vm, 0u);
}

TEST(Enricher, NoSnapshotResolvesNothingButLearntNames) {
  Enricher e(nullptr);
  Result x = enrichOne(e, rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 12));
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.out_slot, kNone);
  EXPECT_EQ(x.r.in_ifname, 0u);
  ASSERT_NE(e.snapshot(), nullptr);
  EXPECT_TRUE(e.snapshot()->ports.empty());
  e.learnName(ip("127.0.0.1"), 11, "learnt-11");
  x = enrichOne(e, rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 12));
  EXPECT_EQ(x.in_ifname(), "learnt-11");
  EXPECT_EQ(x.in_slot, kNone);
  // useSnapshot(nullptr): an empty snapshot again.
  e.useSnapshot(snapshot());
  EXPECT_EQ(enrichOne(e, rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 12)).in_ifname(), "vm1-tap");
  e.useSnapshot(nullptr);
  x = enrichOne(e, rec("127.0.0.1", IfKind::kLinuxIfindex, 12, 12));
  EXPECT_EQ(x.in_slot, kNone);
  EXPECT_EQ(x.r.in_ifname, 0u);
}

TEST_F(EnricherTest, NewSnapshotIsPickedUpAndLearntMacsForgotten) {
  const uint64_t vm2_guest = mac("52:54:00:00:00:02");
  FlowRecord from_vm2 = rec("127.0.0.1", IfKind::kLinuxIfindex, 12, 0);
  from_vm2.src_mac = vm2_guest;
  FlowRecord to_vm2 = rec("127.0.0.1", IfKind::kLinuxIfindex, 0, 0);
  to_vm2.dst_mac = vm2_guest;
  run(from_vm2);
  ASSERT_EQ(run(to_vm2).out_slot, slot("vm2-tap"));
  EXPECT_EQ(run(rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 0)).in_vm(), "uuid-vm1");

  // The VM behind vm1-tap changed, a port was added on br-ex (so slots move).
  json t = tables();
  t["Interface"]["i-vm1"]["external_ids"]["vm-uuid"] = "uuid-vm1-new";
  t["Interface"]["i-aaa"] = {{"name", "aaa0"}, {"ofport", 9}, {"ifindex", 40}};
  t["Port"]["p-aaa"] = {{"name", "aaa0"}, {"interfaces", "i-aaa"}};
  t["Bridge"]["b-ex"]["ports"].push_back("p-aaa");
  auto next = Inventory::build(t, netlink());
  EXPECT_NE(next->portByName("vm2-tap")->slot, snap_->portByName("vm2-tap")->slot);
  enricher_.useSnapshot(next);

  Result x = run(rec("127.0.0.1", IfKind::kLinuxIfindex, 11, 40));
  EXPECT_EQ(enricher_.snapshot(), next.get());
  EXPECT_EQ(enricher_.snapshotPtr(), next);
  EXPECT_EQ(x.in_vm(), "uuid-vm1-new");
  EXPECT_EQ(x.in_slot, next->portByName("vm1-tap")->slot);
  EXPECT_EQ(x.out_ifname(), "aaa0");
  EXPECT_EQ(x.bridge(), "br-int");
  // The MAC learnt against the old snapshot (its slot) is gone ...
  EXPECT_EQ(run(to_vm2).out_slot, kNone);
  // ... and is learnt again against the new one.
  run(from_vm2);
  EXPECT_EQ(run(to_vm2).out_slot, next->portByName("vm2-tap")->slot);

  // Handing the same snapshot again is a new generation too: learnt MACs are forgotten.
  enricher_.useSnapshot(next);
  EXPECT_EQ(run(to_vm2).out_slot, kNone);
}

}  // namespace
}  // namespace nc::inventory
