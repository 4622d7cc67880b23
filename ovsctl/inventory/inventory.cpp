#include "ovsctl/inventory/inventory.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>

#include "collector/record/fields.hpp"
#include "collector/record/names.hpp"
#include "common/log.hpp"
#include "ovsctl/jsonrpc/jsonrpc.hpp"
#include "ovsctl/ovsdb/ovsdb.hpp"

namespace nc::inventory {

using nlohmann::json;

// ---- SlotMap ----

void SlotMap::build(const std::vector<std::pair<uint64_t, uint32_t>>& entries) {
  table_.clear();
  mask_ = 0;
  if (entries.empty()) {
    return;
  }
  size_t cap = 16;
  while (cap < entries.size() * 2) {
    cap *= 2;
  }
  table_.assign(cap, Entry{});
  mask_ = cap - 1;
  for (const auto& [key, slot] : entries) {
    for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      Entry& e = table_[i];
      if (e.slot == UINT32_MAX) {
        e.key = key;
        e.slot = slot;
        break;
      }
      if (e.key == key) {  // first one wins
        break;
      }
    }
  }
}

// ---- Snapshot ----

uint64_t Snapshot::addrKey(const IpAddr& a) {
  if (a.isV4()) {  // exact
    return uint64_t{1} << 32 | a.v4();
  }
  uint64_t hi;
  uint64_t lo;
  std::memcpy(&hi, a.bytes.data(), 8);
  std::memcpy(&lo, a.bytes.data() + 8, 8);
  return (lo ^ (hi * 0xff51afd7ed558ccdull) ^ (hi >> 29)) | uint64_t{1} << 63;  // IPv6: hashed
}

bool Snapshot::isLocal(const IpAddr& a) const {
  for (const IpAddr& l : local_addresses) {
    if (l == a) {
      return true;
    }
  }
  return false;
}

const Port* Snapshot::portByName(std::string_view name) const {
  for (const Port& p : ports) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

namespace {

int64_t intOr(const json& v, int64_t def) {
  return v.is_number_integer() ? v.get<int64_t>() : def;
}
std::string strOr(const json& v) {
  return v.is_string() ? v.get<std::string>() : std::string();
}
std::vector<std::string> uuids(const json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (e.is_string()) {
        out.push_back(e.get<std::string>());
      }
    }
  }
  return out;
}
std::map<std::string, std::string> strMap(const json& v) {
  std::map<std::string, std::string> out;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.value().is_string()) {
        out[it.key()] = it.value().get<std::string>();
      }
    }
  }
  return out;
}
const json& rowOf(const json& tables, const char* table, const std::string& uuid) {
  static const json kNull;
  auto t = tables.find(table);
  if (t == tables.end()) {
    return kNull;
  }
  auto r = t->find(uuid);
  return r == t->end() ? kNull : *r;
}
const json& col(const json& row, const char* name) {
  static const json kNull;
  if (!row.is_object()) {
    return kNull;
  }
  auto it = row.find(name);
  return it == row.end() ? kNull : *it;
}

}  // namespace

std::shared_ptr<Snapshot> Inventory::build(const json& tables,
                                           std::shared_ptr<const NetlinkState> netlink) {
  auto s = std::make_shared<Snapshot>();
  if (!netlink) {
    netlink = std::make_shared<NetlinkState>();
  }
  s->netlink = netlink;
  std::vector<std::pair<uint64_t, uint32_t>> engine;
  if (auto bt = tables.find("Bridge"); bt != tables.end() && bt->is_object()) {
    // Bridges in name order, so slots are stable for the same configuration.
    std::vector<std::pair<std::string, std::string>> bridges;  // name, uuid
    for (auto it = bt->begin(); it != bt->end(); ++it) {
      bridges.emplace_back(strOr(col(it.value(), "name")), it.key());
    }
    std::sort(bridges.begin(), bridges.end());
    for (const auto& [bname, buuid] : bridges) {
      const uint32_t bi = static_cast<uint32_t>(s->bridges.size());
      s->bridges.push_back(bname);
      const json& brow = (*bt)[buuid];
      for (const std::string& nf : uuids(col(brow, "netflow"))) {
        const json& nrow = rowOf(tables, "NetFlow", nf);
        const int64_t et = intOr(col(nrow, "engine_type"), -1);
        const int64_t ei = intOr(col(nrow, "engine_id"), -1);
        if (et >= 0 && ei >= 0) {
          engine.emplace_back(static_cast<uint64_t>((et & 0xff) << 8 | (ei & 0xff)), bi);
        }
      }
      std::vector<const json*> port_rows;
      for (const std::string& pu : uuids(col(brow, "ports"))) {
        const json& prow = rowOf(tables, "Port", pu);
        if (prow.is_object()) {
          port_rows.push_back(&prow);
        }
      }
      std::sort(port_rows.begin(), port_rows.end(), [](const json* a, const json* b) {
        return strOr(col(*a, "name")) < strOr(col(*b, "name"));
      });
      for (const json* prow : port_rows) {
        for (const std::string& iu : uuids(col(*prow, "interfaces"))) {
          const json& irow = rowOf(tables, "Interface", iu);
          if (!irow.is_object()) {
            continue;
          }
          Port p;
          p.slot = static_cast<uint32_t>(s->ports.size());
          p.bridge = bname;
          p.port = strOr(col(*prow, "name"));
          p.name = strOr(col(irow, "name"));
          p.type = strOr(col(irow, "type"));
          p.ofport = intOr(col(irow, "ofport"), -1);
          p.ifindex = intOr(col(irow, "ifindex"), 0);
          parseMac(strOr(col(irow, "mac_in_use")), p.mac);
          p.admin_state = strOr(col(irow, "admin_state"));
          p.link_state = strOr(col(irow, "link_state"));
          p.link_speed =
              static_cast<uint64_t>(std::max<int64_t>(0, intOr(col(irow, "link_speed"), 0)));
          p.tag = intOr(col(*prow, "tag"), -1);
          if (const json& tr = col(*prow, "trunks"); tr.is_array()) {
            for (const auto& t : tr) {
              if (t.is_number_integer()) {
                p.trunks.push_back(t.get<int64_t>());
              }
            }
          } else if (tr.is_number_integer()) {
            p.trunks.push_back(tr.get<int64_t>());
          }
          p.external_ids = strMap(col(irow, "external_ids"));
          for (const auto& [k, v] : strMap(col(*prow, "external_ids"))) {
            p.external_ids.emplace(k, v);
          }
          for (const char* key : {"vm-uuid", "vm-id", "iface-id"}) {
            if (auto it = p.external_ids.find(key);
                it != p.external_ids.end() && !it->second.empty()) {
              p.vm = it->second;
              break;
            }
          }
          if (auto it = p.external_ids.find("attached-mac"); it != p.external_ids.end()) {
            parseMac(it->second, p.attached_mac);
          }
          const NlLink* link = p.ifindex > 0 ? netlink->link(static_cast<int>(p.ifindex)) : nullptr;
          if (link == nullptr || link->deleted || link->name != p.name) {
            const NlLink* by_name = netlink->linkByName(p.name);
            if (by_name != nullptr && !by_name->deleted) {
              link = by_name;
            } else if (link != nullptr && link->name != p.name) {
              link = nullptr;
            }
          }
          if (link != nullptr) {
            p.has_link = true;
            p.operstate = link->operstate;
            p.mtu = link->mtu;
            for (const auto& a : link->addresses) {
              p.addresses.push_back(a.toString());
            }
            p.changes = link->history;
            if (p.mac == 0) {
              p.mac = link->mac;
            }
            if (p.ifindex <= 0) {
              p.ifindex = link->ifindex;
            }
          }
          p.name_id = internName(p.name);
          p.bridge_id = internName(p.bridge);
          p.vm_id = internName(p.vm);
          (void)bi;
          s->ports.push_back(std::move(p));
        }
      }
    }
  }
  // Lookup tables.
  std::vector<std::pair<uint64_t, uint32_t>> ifx;
  std::vector<std::pair<uint64_t, uint32_t>> ofp;
  std::map<int64_t, std::vector<uint32_t>> ofp_any;
  std::vector<std::pair<uint64_t, uint32_t>> macs;
  std::map<std::string, uint32_t> bridge_index;
  for (uint32_t i = 0; i < s->bridges.size(); ++i) {
    bridge_index[s->bridges[i]] = i;
  }
  for (const Port& p : s->ports) {
    if (p.ifindex > 0) {
      ifx.emplace_back(static_cast<uint64_t>(p.ifindex), p.slot);
    }
    if (p.ofport >= 0) {
      ofp.emplace_back(uint64_t{bridge_index[p.bridge]} << 32 | static_cast<uint64_t>(p.ofport),
                       p.slot);
      ofp_any[p.ofport].push_back(p.slot);
    }
  }
  // MACs: the VM's (attached-mac) first, then the port's own.
  for (const Port& p : s->ports) {
    if (p.attached_mac != 0) {
      macs.emplace_back(p.attached_mac, p.slot);
    }
  }
  for (const Port& p : s->ports) {
    if (p.mac != 0 && p.type != "internal") {
      macs.emplace_back(p.mac, p.slot);
    }
  }
  std::vector<std::pair<uint64_t, uint32_t>> any;
  for (const auto& [of, slots] : ofp_any) {
    if (slots.size() == 1) {
      any.emplace_back(static_cast<uint64_t>(of), slots[0]);
    }
  }
  s->by_ifindex.build(ifx);
  s->by_ofport.build(ofp);
  s->by_ofport_any.build(any);
  s->by_engine.build(engine);
  s->by_mac.build(macs);
  // Addresses: each port link's own, then neighbours whose MAC belongs to a port.
  std::vector<std::pair<uint64_t, uint32_t>> addrs;
  for (const Port& p : s->ports) {
    if (const NlLink* l = p.has_link ? netlink->linkByName(p.name) : nullptr) {
      for (const auto& a : l->addresses) {
        addrs.emplace_back(Snapshot::addrKey(a.addr), p.slot);
      }
    }
  }
  for (const NlNeighbour& n : netlink->neighbours) {
    const uint32_t slot = s->by_mac.find(n.mac);
    if (slot != UINT32_MAX) {
      addrs.emplace_back(Snapshot::addrKey(n.addr), slot);
    }
  }
  s->by_addr.build(addrs);
  IpAddr lo4;
  IpAddr::parse("127.0.0.1", lo4);
  IpAddr lo6;
  IpAddr::parse("::1", lo6);
  s->local_addresses = {lo4, lo6};
  for (const auto& [ifindex, l] : netlink->links) {
    if (l.deleted) {
      continue;
    }
    for (const auto& a : l.addresses) {
      if (std::find(s->local_addresses.begin(), s->local_addresses.end(), a.addr) ==
          s->local_addresses.end()) {
        s->local_addresses.push_back(a.addr);
      }
    }
  }
  return s;
}

// ---- Enricher ----

uint32_t Enricher::resolve(const FlowRecord& r, bool input, bool local) {
  const Snapshot& s = *snap_;
  if (!local) {
    return UINT32_MAX;
  }
  const uint32_t num = input ? r.in_if : r.out_if;
  uint32_t slot = UINT32_MAX;
  if (num != 0) {
    if (r.if_kind == IfKind::kOpenFlowPort) {
      if (num < 0xff00) {  // OFPP_LOCAL, FLOOD, ... are not ports of ours
        const uint32_t bi = s.by_engine.find(uint64_t{r.engine_type} << 8 | r.engine_id);
        slot = bi != UINT32_MAX ? s.by_ofport.find(uint64_t{bi} << 32 | num)
                                : s.by_ofport_any.find(num);
      }
    } else if ((num & 0xc0000000u) == 0) {  // sFlow: 0x80000000 = several ports / discard
      slot = s.by_ifindex.find(num);
    }
  }
  if (slot == UINT32_MAX) {
    const uint64_t mac = input ? r.src_mac : r.dst_mac;
    if (mac != 0) {
      slot = s.by_mac.find(mac);
      if (slot == UINT32_MAX) {
        slot = learntMac(mac);
      }
    }
  } else if (input && r.src_mac != 0 && num != 0) {
    learnMac(r.src_mac, slot);
  }
  if (slot == UINT32_MAX && !s.by_addr.empty()) {
    const IpAddr& a = input ? r.src_addr : r.dst_addr;
    if (!a.isZero()) {
      slot = s.by_addr.find(Snapshot::addrKey(a));  // IPv6 keys are hashes: rare collisions
    }
  }
  return slot;
}

namespace {
inline size_t macHash(uint64_t mac) {
  return static_cast<size_t>((mac * 0x9E3779B97F4A7C15ull) >> 32);
}
constexpr size_t kLearntMacs = 4096;  // power of two; cleared when half full
}  // namespace

void Enricher::learnMac(uint64_t mac, uint32_t slot) {
  if (macs_.empty()) {
    macs_.assign(kLearntMacs, {0, UINT32_MAX});
  }
  const size_t mask = macs_.size() - 1;
  for (size_t i = macHash(mac) & mask;; i = (i + 1) & mask) {
    auto& e = macs_[i];
    if (e.second == UINT32_MAX) {
      if (macs_used_ * 2 >= macs_.size()) {
        std::fill(macs_.begin(), macs_.end(), std::make_pair(uint64_t{0}, UINT32_MAX));
        macs_used_ = 0;
        learnMac(mac, slot);
        return;
      }
      e = {mac, slot};
      ++macs_used_;
      return;
    }
    if (e.first == mac) {
      e.second = slot;  // moved (a VM migrated, a cable was swapped)
      return;
    }
  }
}

uint32_t Enricher::learntMac(uint64_t mac) const {
  if (macs_used_ == 0) {
    return UINT32_MAX;
  }
  const size_t mask = macs_.size() - 1;
  for (size_t i = macHash(mac) & mask;; i = (i + 1) & mask) {
    const auto& e = macs_[i];
    if (e.second == UINT32_MAX) {
      return UINT32_MAX;
    }
    if (e.first == mac) {
      return e.second;
    }
  }
}

void Enricher::enrich(std::span<FlowRecord> records, uint32_t* in_slot, uint32_t* out_slot) {
  const uint64_t gen = inventory_ != nullptr ? inventory_->generation() : fixed_generation_;
  if (gen != generation_ || !snap_) {
    if (inventory_ != nullptr) {
      snap_ = inventory_->snapshot();
    } else {
      snap_ = fixed_ ? fixed_ : std::make_shared<Snapshot>();
    }
    generation_ = gen;
    have_last_ = false;
    if (macs_used_ != 0) {  // slots of the old snapshot
      std::fill(macs_.begin(), macs_.end(), std::make_pair(uint64_t{0}, UINT32_MAX));
      macs_used_ = 0;
    }
  }
  const Snapshot& s = *snap_;
  const bool no_ports = s.ports.empty();
  for (size_t i = 0; i < records.size(); ++i) {
    FlowRecord& r = records[i];
    uint32_t is = UINT32_MAX;
    uint32_t os = UINT32_MAX;
    if (!no_ports) {
      if (!have_last_ || !(r.exporter == last_exporter_)) {
        last_exporter_ = r.exporter;
        last_local_ = s.isLocal(r.exporter);
        have_last_ = true;
      }
      if (last_local_) {
        is = resolve(r, true, true);
        os = resolve(r, false, true);
      }
    }
    if (is != UINT32_MAX) {
      const Port& p = s.ports[is];
      r.in_ifname = p.name_id;
      r.in_vm = p.vm_id;
      r.bridge = p.bridge_id;
    }
    if (os != UINT32_MAX) {
      const Port& p = s.ports[os];
      r.out_ifname = p.name_id;
      r.out_vm = p.vm_id;
      if (r.bridge == 0) {
        r.bridge = p.bridge_id;
      }
    }
    if (!names_.empty() && (r.in_ifname == 0 || r.out_ifname == 0)) {
      const uint64_t h = Snapshot::addrKey(r.exporter) * 31;
      if (r.in_ifname == 0 && r.in_if != 0) {
        auto it = names_.find(h ^ r.in_if);
        if (it != names_.end() && it->second.exporter == r.exporter &&
            it->second.if_index == r.in_if) {
          r.in_ifname = it->second.name_id;
        }
      }
      if (r.out_ifname == 0 && r.out_if != 0) {
        auto it = names_.find(h ^ r.out_if);
        if (it != names_.end() && it->second.exporter == r.exporter &&
            it->second.if_index == r.out_if) {
          r.out_ifname = it->second.name_id;
        }
      }
    }
    if (in_slot != nullptr) {
      in_slot[i] = is;
    }
    if (out_slot != nullptr) {
      out_slot[i] = os;
    }
  }
}

void Enricher::useSnapshot(std::shared_ptr<const Snapshot> s) {
  fixed_ = std::move(s);
  ++fixed_generation_;
}

void Enricher::learnName(const IpAddr& exporter, uint32_t if_index, std::string_view name) {
  constexpr size_t kMaxLearnt = 1 << 16;
  const uint64_t key = (Snapshot::addrKey(exporter) * 31) ^ if_index;
  auto it = names_.find(key);
  if (it == names_.end() && names_.size() >= kMaxLearnt) {
    return;
  }
  names_[key] = LearntName{exporter, if_index, internName(name)};
}

// ---- Inventory ----

ovsctl::ovsdb::MonitorSpec inventoryMonitorSpec() {
  return {
      {"Bridge", {"name", "ports", "netflow"}},
      {"Port", {"name", "interfaces", "tag", "trunks", "external_ids"}},
      {"Interface",
       {"name", "type", "ofport", "ifindex", "mac_in_use", "admin_state", "link_state",
        "link_speed", "external_ids"}},
      {"NetFlow", {"engine_type", "engine_id"}},
  };
}

class Inventory::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(Inventory& owner, boost::asio::io_context& io, config::OvsdbConfig cfg,
       InventoryOptions options)
      : owner_(owner), io_(io), cfg_(std::move(cfg)), options_(options) {
    auto empty = std::make_shared<Snapshot>();
    empty->netlink = std::make_shared<NetlinkState>();
    snapshot_ = std::move(empty);
  }

  void start() {
    std::weak_ptr<Impl> weak = shared_from_this();
    if (options_.netlink) {
      netlink_ = std::make_unique<NetlinkWatcher>(io_);
      netlink_->on_change = [weak] {
        if (auto self = weak.lock()) {
          self->schedule();
        }
      };
      try {
        netlink_->start();
      } catch (const std::exception& e) {
        netlink_error_ = e.what();
        log::warn("inventory", "netlink: {}; interfaces will lack Linux link state", e.what());
        netlink_.reset();
      }
    }
    if (options_.ovsdb && cfg_.enabled) {
      std::string why;
      auto ep = ovsctl::jsonrpc::parseEndpoint(cfg_.endpoint, &why);
      if (!ep) {
        ovsdb_error_ = "ovsdb.endpoint: " + why;
      } else {
        ovsctl::jsonrpc::SessionOptions so;
        so.quiet = true;  // the provisioner logs the same connection's ups and downs
        client_ = ovsctl::ovsdb::Client::create(io_, *ep, inventoryMonitorSpec(), so);
        client_->on_synced = [weak] {
          if (auto self = weak.lock()) {
            self->schedule();
          }
        };
        client_->on_change = [weak] {
          if (auto self = weak.lock()) {
            self->schedule();
          }
        };
        client_->on_down = [weak](const std::string& why) {
          if (auto self = weak.lock()) {
            std::lock_guard lock(self->mu_);
            self->ovsdb_error_ = why;
          }
        };
        client_->start();
      }
    }
    schedule();
  }

  void stop() {
    if (client_) {
      client_->stop();
      client_.reset();
    }
    if (netlink_) {
      netlink_->stop();
      netlink_.reset();
    }
  }

  // Coalesces bursts of notifications into one rebuild, posted right away (the data path must
  // see a change within 100 ms; a rebuild of a few hundred ports takes well under 1 ms).
  void schedule() {
    if (pending_) {
      return;
    }
    pending_ = true;
    boost::asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->pending_ = false;
        self->rebuild();
      }
    });
  }

  json tables() const {
    json out = json::object();
    if (!client_ || !client_->synced()) {
      return out;
    }
    const auto& rep = client_->replica();
    for (const auto& [table, cols] : rep.spec()) {
      json t = json::object();
      for (const auto& [uuid, row] : rep.table(table)) {
        json r = json::object();
        for (const std::string& c : cols) {
          const auto* type = rep.schema().column(table, c);
          if (type == nullptr) {
            continue;
          }
          r[c] = ovsctl::ovsdb::toPlain(*type, rep.get(table, row, c));
        }
        t[uuid] = std::move(r);
      }
      out[table] = std::move(t);
    }
    return out;
  }

  void rebuild() {
    std::shared_ptr<const NetlinkState> nl =
        netlink_ ? netlink_->state() : std::make_shared<const NetlinkState>();
    auto snap = Inventory::build(tables(), nl);
    snap->ovsdb_synced = client_ && client_->synced();
    snap->built_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    {
      std::lock_guard lock(mu_);
      snap->generation = ++published_;
      snapshot_ = std::move(snap);
    }
    owner_.generation_.store(published_, std::memory_order_release);
    if (owner_.on_change) {
      owner_.on_change();
    }
  }

  std::shared_ptr<const Snapshot> snapshot() const {
    std::lock_guard lock(mu_);
    return snapshot_;
  }

  json status() const {
    auto snap = snapshot();
    json ovsdb = {{"enabled", options_.ovsdb && cfg_.enabled}, {"endpoint", cfg_.endpoint}};
    {
      std::lock_guard lock(mu_);
      ovsdb["last_error"] = ovsdb_error_;
    }
    ovsdb["synced"] = snap->ovsdb_synced;
    json nl =
        netlink_ ? netlink_->status() : json{{"running", false}, {"last_error", netlink_error_}};
    return {{"ovsdb", ovsdb},
            {"netlink", nl},
            {"ports", snap->ports.size()},
            {"bridges", snap->bridges},
            {"generation", snap->generation},
            {"built", snap->built_ns}};
  }

 private:
  Inventory& owner_;
  boost::asio::io_context& io_;
  config::OvsdbConfig cfg_;
  InventoryOptions options_;
  std::shared_ptr<ovsctl::ovsdb::Client> client_;
  std::unique_ptr<NetlinkWatcher> netlink_;
  std::string netlink_error_;
  bool pending_ = false;
  mutable std::mutex mu_;
  std::string ovsdb_error_;
  std::shared_ptr<const Snapshot> snapshot_;
  uint64_t published_ = 0;
};

Inventory::Inventory(boost::asio::io_context& io, config::OvsdbConfig ovsdb,
                     InventoryOptions options)
    : impl_(std::make_shared<Impl>(*this, io, std::move(ovsdb), options)) {}
Inventory::~Inventory() {
  impl_->stop();
}
void Inventory::start() {
  impl_->start();
}
void Inventory::stop() {
  impl_->stop();
}
std::shared_ptr<const Snapshot> Inventory::snapshot() const {
  return impl_->snapshot();
}
json Inventory::status() const {
  return impl_->status();
}

json toJson(const Port& p) {
  json changes = json::array();
  for (const auto& c : p.changes) {
    changes.push_back({{"time", formatTime(c.time_ns)}, {"what", c.what}});
  }
  return {{"bridge", p.bridge},
          {"port", p.port},
          {"interface", p.name},
          {"type", p.type},
          {"ofport", p.ofport >= 0 ? json(p.ofport) : json()},
          {"ifindex", p.ifindex > 0 ? json(p.ifindex) : json()},
          {"mac", p.mac != 0 ? json(formatMac(p.mac)) : json()},
          {"attached_mac", p.attached_mac != 0 ? json(formatMac(p.attached_mac)) : json()},
          {"vm", p.vm.empty() ? json() : json(p.vm)},
          {"admin_state", p.admin_state},
          {"link_state", p.link_state},
          {"link_speed", p.link_speed},
          {"tag", p.tag >= 0 ? json(p.tag) : json()},
          {"trunks", p.trunks},
          {"external_ids", p.external_ids},
          {"operstate", p.has_link ? json(p.operstate) : json()},
          {"mtu", p.has_link ? json(p.mtu) : json()},
          {"addresses", p.addresses},
          {"changes", changes}};
}

}  // namespace nc::inventory
