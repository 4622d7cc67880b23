#include "ovsctl/inventory/netlink.hpp"

#include "common/clock.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <net/if.h>
// After <net/if.h> (libc-compat): IF_OPER_*.
#include <linux/if.h>
#include <linux/neighbour.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/socket.h>
#include <netlink/utils.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>
#include <utility>

#include "common/log.hpp"

namespace nc::inventory {

namespace {

constexpr std::string_view kLog = "netlink";
// libnl's per-message receive buffer (default 4 pages); large link messages (many VFs) need more.
constexpr size_t kMsgBuf = 64 << 10;
// At most one resync per this interval; errors inside it wait for a timer.
constexpr std::chrono::milliseconds kMinResyncInterval{1000};
constexpr std::chrono::milliseconds kMaxResyncBackoff{30000};
// How often deleted links past kKeepDeleted are pruned when nothing else happens.
constexpr std::chrono::seconds kPruneInterval{30};
// A dump the kernel marks interrupted (NLM_F_DUMP_INTR) is retried this many times.
constexpr int kDumpTries = 5;

bool toIp(nl_addr* a, IpAddr& out) {
  if (a == nullptr) {
    return false;
  }
  const auto* p = static_cast<const uint8_t*>(nl_addr_get_binary_addr(a));
  unsigned len = nl_addr_get_len(a);
  switch (nl_addr_get_family(a)) {
    case AF_INET:
      if (len != 4) {
        return false;
      }
      out = IpAddr::fromV4((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) |
                           p[3]);
      return true;
    case AF_INET6:
      if (len != 16) {
        return false;
      }
      out = IpAddr::fromV6(p);
      return true;
    default:
      return false;
  }
}

// 48-bit MAC in the low bits, or 0 when `a` is not a 6-byte address.
uint64_t toMac(nl_addr* a) {
  if (a == nullptr || nl_addr_get_len(a) != 6) {
    return 0;
  }
  const auto* p = static_cast<const uint8_t*>(nl_addr_get_binary_addr(a));
  uint64_t mac = 0;
  for (int i = 0; i < 6; ++i) {
    mac = (mac << 8) | p[i];
  }
  return mac;
}

// RFC 2863 operational state as `ip link` prints it (lower case).
std::string operstateName(uint8_t state) {
  switch (state) {
    case IF_OPER_UNKNOWN:
      return "unknown";
    case IF_OPER_NOTPRESENT:
      return "notpresent";
    case IF_OPER_DOWN:
      return "down";
    case IF_OPER_LOWERLAYERDOWN:
      return "lowerlayerdown";
    case IF_OPER_TESTING:
      return "testing";
    case IF_OPER_DORMANT:
      return "dormant";
    case IF_OPER_UP:
      return "up";
    default:
      return fmt::format("operstate{}", state);
  }
}

// NUD state as `ip neigh` prints it (lower case); several bits are joined with ','.
std::string nudName(int state) {
  static constexpr std::pair<int, const char*> kNames[] = {
      {NUD_INCOMPLETE, "incomplete"}, {NUD_REACHABLE, "reachable"}, {NUD_STALE, "stale"},
      {NUD_DELAY, "delay"},           {NUD_PROBE, "probe"},         {NUD_FAILED, "failed"},
      {NUD_NOARP, "noarp"},           {NUD_PERMANENT, "permanent"},
  };
  std::string out;
  for (const auto& [bit, name] : kNames) {
    if ((state & bit) != 0) {
      if (!out.empty()) {
        out += ',';
      }
      out += name;
    }
  }
  return out.empty() ? std::string("none") : out;
}

std::string nlError(int err) {
  return nl_geterror(err < 0 ? -err : err);
}

// True for an object that describes a network device: the kernel's AF_UNSPEC link messages.
// libnl files a device whose kind names an address family under that family (a "bridge" device
// has family AF_BRIDGE); real AF_BRIDGE messages (bridge port state, VLANs) carry no kind and
// describe no device of their own.
bool isDevice(rtnl_link* l) {
  int family = rtnl_link_get_family(l);
  if (family == AF_UNSPEC) {
    return true;
  }
  const char* kind = rtnl_link_get_type(l);
  return kind != nullptr && nl_str2af(kind) == family;
}

// The link's fields from a libnl object (no addresses, no history).
NlLink linkFrom(rtnl_link* l) {
  NlLink n;
  n.ifindex = rtnl_link_get_ifindex(l);
  const char* name = rtnl_link_get_name(l);
  n.name = name != nullptr ? name : "";
  n.mac = toMac(rtnl_link_get_addr(l));
  n.operstate = operstateName(rtnl_link_get_operstate(l));
  n.admin_up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
  n.carrier = rtnl_link_get_carrier(l) != 0;
  n.mtu = rtnl_link_get_mtu(l);
  n.master = rtnl_link_get_master(l);
  const char* kind = rtnl_link_get_type(l);
  n.kind = kind != nullptr ? kind : "";
  return n;
}

bool addressFrom(rtnl_addr* a, NlAddress& out) {
  int family = rtnl_addr_get_family(a);
  if (family != AF_INET && family != AF_INET6) {
    return false;
  }
  if (!toIp(rtnl_addr_get_local(a), out.addr)) {
    return false;
  }
  out.prefix_len = static_cast<uint8_t>(rtnl_addr_get_prefixlen(a));
  out.ifindex = rtnl_addr_get_ifindex(a);
  return out.ifindex > 0;
}

bool isMulticast(const IpAddr& a) {
  return a.isV4() ? (a.v4() >> 28) == 0xe : a.bytes[0] == 0xff;
}

// False for entries the state leaves out (other families, bridge FDB, no lladdr).
bool neighbourFrom(rtnl_neigh* n, NlNeighbour& out) {
  int family = rtnl_neigh_get_family(n);
  if (family != AF_INET && family != AF_INET6) {
    return false;
  }
  if (!toIp(rtnl_neigh_get_dst(n), out.addr) || isMulticast(out.addr)) {
    return false;
  }
  nl_addr* ll = rtnl_neigh_get_lladdr(n);
  if (ll == nullptr || nl_addr_get_len(ll) == 0) {
    return false;
  }
  out.mac = toMac(ll);
  out.ifindex = rtnl_neigh_get_ifindex(n);
  out.state = nudName(rtnl_neigh_get_state(n));
  return true;
}

void addHistory(NlLink& link, uint64_t t, std::string what) {
  if (link.history.size() >= NlLink::kHistory) {
    link.history.erase(link.history.begin(),
                       link.history.begin() + (link.history.size() - NlLink::kHistory + 1));
  }
  link.history.push_back(LinkChange{t, std::move(what)});
}

}  // namespace

std::string NlAddress::toString() const {
  return fmt::format("{}/{}", addr.toString(), prefix_len);
}

const NlLink* NetlinkState::link(int ifindex) const {
  auto it = links.find(ifindex);
  return it == links.end() ? nullptr : &it->second;
}

const NlLink* NetlinkState::linkByName(std::string_view name) const {
  const NlLink* deleted = nullptr;
  for (const auto& [index, l] : links) {
    if (l.name != name) {
      continue;
    }
    if (!l.deleted) {
      return &l;
    }
    if (deleted == nullptr || l.deleted_ns > deleted->deleted_ns) {
      deleted = &l;
    }
  }
  return deleted;
}

struct NetlinkWatcher::Impl : std::enable_shared_from_this<Impl> {
  using NeighKey = std::pair<int, IpAddr>;

  Impl(NetlinkWatcher& owner, boost::asio::io_context& io, NetlinkOptions options)
      : owner(owner), io(io), options(options), resync_timer(io), prune_timer(io) {}
  ~Impl() { close(); }

  void start();
  void close();
  void armWait();
  void onReadable(const boost::system::error_code& ec);
  void requestResync(const std::string& why);
  bool resyncNow();
  void drain();
  void scheduleResync(std::chrono::milliseconds delay);
  void armPrune();

  // Model updates; `t` is the wall-clock time recorded in history.
  void applyLink(rtnl_link* l, int action, uint64_t t);
  void upsertLink(NlLink cur, uint64_t t, const char* created_as);  // created_as: history entry
  void markDeleted(NlLink& link, uint64_t t);
  void applyAddress(rtnl_addr* a, int action, uint64_t t);
  void applyNeighbour(rtnl_neigh* n, int action);
  void rebuild(bool initial);
  bool pruneDeleted(uint64_t now);
  void publish();
  void fail(const std::string& what);
  std::string masterText(int master) const;

  static void linkCb(nl_cache*, nl_object* obj, int action, void* arg);
  static void addrCb(nl_cache*, nl_object* obj, int action, void* arg);
  static void neighCb(nl_cache*, nl_object* obj, int action, void* arg);
  // Runs `fn` for a libnl callback; an exception (allocation failure) turns into a resync.
  template <typename Fn>
  void guarded(Fn&& fn);

  NetlinkWatcher& owner;
  boost::asio::io_context& io;
  NetlinkOptions options;

  // libnl. `sock` is the cache manager's notification socket (ours, so we can size its buffers;
  // freed after the manager), `sync_sock` the blocking socket used for resync dumps.
  nl_sock* sock = nullptr;
  nl_sock* sync_sock = nullptr;
  nl_cache_mngr* mngr = nullptr;
  nl_cache* link_cache = nullptr;
  nl_cache* addr_cache = nullptr;
  nl_cache* neigh_cache = nullptr;
  std::unique_ptr<boost::asio::posix::stream_descriptor> sd;
  boost::asio::steady_timer resync_timer;
  boost::asio::steady_timer prune_timer;
  bool running = false;
  bool wait_pending = false;    // an async_wait on sd is outstanding
  uint64_t epoch = 0;           // +1 per close(); completions of an older epoch are ignored
  bool resync_pending = false;  // resync_timer armed; reading is paused until it fires
  bool need_resync = false;     // set by callbacks that could not apply a change
  std::string resync_reason;
  std::chrono::steady_clock::time_point last_resync{};
  std::chrono::milliseconds resync_backoff = kMinResyncInterval;

  // The model (io thread only).
  std::map<int, NlLink> links;
  std::map<NeighKey, NlNeighbour> neighbours;
  std::deque<std::pair<uint64_t, int>> deleted_order;  // (deleted_ns, ifindex), oldest first
  size_t deleted_count = 0;
  bool dirty = false;
  uint64_t generation = 0;

  // Published state and counters (any thread).
  mutable std::mutex mu;
  std::shared_ptr<const NetlinkState> state = std::make_shared<NetlinkState>();
  std::string last_error;  // guarded by mu
  std::atomic<uint64_t> changes{0};
  std::atomic<uint64_t> resyncs{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> neighbours_dropped{0};
  std::atomic<bool> running_flag{false};
};

template <typename Fn>
void NetlinkWatcher::Impl::guarded(Fn&& fn) {
  try {
    changes.fetch_add(1, std::memory_order_relaxed);
    fn();
  } catch (const std::exception& e) {
    need_resync = true;
    resync_reason = fmt::format("applying a change failed: {}", e.what());
  }
}

void NetlinkWatcher::Impl::linkCb(nl_cache*, nl_object* obj, int action, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  self->guarded([&] { self->applyLink(reinterpret_cast<rtnl_link*>(obj), action, unixNowNs()); });
}

void NetlinkWatcher::Impl::addrCb(nl_cache*, nl_object* obj, int action, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  self->guarded(
      [&] { self->applyAddress(reinterpret_cast<rtnl_addr*>(obj), action, unixNowNs()); });
}

void NetlinkWatcher::Impl::neighCb(nl_cache*, nl_object* obj, int action, void* arg) {
  auto* self = static_cast<Impl*>(arg);
  self->guarded([&] { self->applyNeighbour(reinterpret_cast<rtnl_neigh*>(obj), action); });
}

std::string NetlinkWatcher::Impl::masterText(int master) const {
  if (master == 0) {
    return "master none";
  }
  auto it = links.find(master);
  std::string name = it != links.end() ? it->second.name : std::string("?");
  return fmt::format("master {} ({})", name, master);
}

void NetlinkWatcher::Impl::upsertLink(NlLink cur, uint64_t t, const char* created_as) {
  auto it = links.find(cur.ifindex);
  if (it == links.end() || it->second.deleted) {
    // New link (or a deleted one's ifindex reused: the new link starts a new history).
    if (it != links.end()) {
      --deleted_count;
    }
    addHistory(cur, t, created_as);
    links[cur.ifindex] = std::move(cur);
    dirty = true;
    return;
  }
  NlLink& old = it->second;
  if (cur.name == old.name && cur.admin_up == old.admin_up && cur.carrier == old.carrier &&
      cur.operstate == old.operstate && cur.mtu == old.mtu && cur.master == old.master &&
      cur.mac == old.mac && cur.kind == old.kind) {
    return;
  }
  if (cur.name != old.name) {
    addHistory(old, t, "renamed from " + old.name);
  }
  if (cur.admin_up != old.admin_up) {
    addHistory(old, t, cur.admin_up ? "up" : "down");
  }
  if (cur.carrier != old.carrier) {
    addHistory(old, t, cur.carrier ? "carrier on" : "carrier off");
  }
  if (cur.operstate != old.operstate) {
    addHistory(old, t, fmt::format("operstate {} -> {}", old.operstate, cur.operstate));
  }
  if (cur.mtu != old.mtu) {
    addHistory(old, t, fmt::format("mtu {} -> {}", old.mtu, cur.mtu));
  }
  if (cur.master != old.master) {
    addHistory(old, t, masterText(cur.master));
  }
  if (cur.mac != old.mac) {
    addHistory(old, t, "mac " + formatMac(cur.mac));
  }
  old.name = std::move(cur.name);
  old.admin_up = cur.admin_up;
  old.carrier = cur.carrier;
  old.operstate = std::move(cur.operstate);
  old.mtu = cur.mtu;
  old.master = cur.master;
  old.mac = cur.mac;
  old.kind = std::move(cur.kind);
  dirty = true;
}

void NetlinkWatcher::Impl::markDeleted(NlLink& link, uint64_t t) {
  link.deleted = true;
  link.deleted_ns = t;
  link.admin_up = false;
  link.carrier = false;
  addHistory(link, t, "deleted");
  deleted_order.emplace_back(t, link.ifindex);
  ++deleted_count;
  // Its neighbours go with it (the kernel flushes them; do not depend on the messages).
  auto it = neighbours.lower_bound(NeighKey{link.ifindex, IpAddr{}});
  while (it != neighbours.end() && it->first.first == link.ifindex) {
    it = neighbours.erase(it);
  }
  dirty = true;
}

void NetlinkWatcher::Impl::applyLink(rtnl_link* l, int action, uint64_t t) {
  if (!isDevice(l)) {
    return;
  }
  int ifindex = rtnl_link_get_ifindex(l);
  if (ifindex <= 0) {
    return;
  }
  if (action == NL_ACT_DEL) {
    auto it = links.find(ifindex);
    if (it != links.end() && !it->second.deleted) {
      markDeleted(it->second, t);
    }
    return;
  }
  upsertLink(linkFrom(l), t, "created");
}

void NetlinkWatcher::Impl::applyAddress(rtnl_addr* a, int action, uint64_t t) {
  NlAddress addr;
  if (!addressFrom(a, addr)) {
    return;
  }
  auto it = links.find(addr.ifindex);
  if (it == links.end() || it->second.deleted) {
    return;  // the kernel announces the link first; a resync repairs any gap
  }
  NlLink& link = it->second;
  auto pos = std::find(link.addresses.begin(), link.addresses.end(), addr);
  if (action == NL_ACT_DEL) {
    if (pos != link.addresses.end()) {
      link.addresses.erase(pos);
      addHistory(link, t, "address removed " + addr.toString());
      dirty = true;
    }
  } else if (pos == link.addresses.end()) {
    link.addresses.push_back(addr);
    addHistory(link, t, "address added " + addr.toString());
    dirty = true;
  }
}

void NetlinkWatcher::Impl::applyNeighbour(rtnl_neigh* n, int action) {
  NlNeighbour nb;
  bool usable = neighbourFrom(n, nb);
  if (!usable) {
    // An entry that lost its lladdr (failed, incomplete) leaves the state too.
    IpAddr dst;
    if (toIp(rtnl_neigh_get_dst(n), dst) &&
        neighbours.erase(NeighKey{rtnl_neigh_get_ifindex(n), dst}) > 0) {
      dirty = true;
    }
    return;
  }
  NeighKey key{nb.ifindex, nb.addr};
  if (action == NL_ACT_DEL) {
    if (neighbours.erase(key) > 0) {
      dirty = true;
    }
    return;
  }
  auto it = neighbours.find(key);
  if (it == neighbours.end()) {
    if (neighbours.size() >= NetlinkState::kMaxNeighbours) {
      neighbours_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    neighbours.emplace(key, std::move(nb));
    dirty = true;
  } else if (it->second.mac != nb.mac || it->second.state != nb.state) {
    it->second = std::move(nb);
    dirty = true;
  }
}

// Rebuilds the model from the caches, diffing against what the model holds: histories of links
// that still exist are kept and gain entries for what changed while notifications were lost.
void NetlinkWatcher::Impl::rebuild(bool initial) {
  uint64_t t = unixNowNs();
  const char* created_as = initial ? "present at start" : "appeared at resync";

  // Links.
  std::set<int> seen;
  struct LinkCtx {
    Impl* self;
    std::set<int>* seen;
    uint64_t t;
    const char* created_as;
  } lctx{this, &seen, t, created_as};
  nl_cache_foreach(
      link_cache,
      [](nl_object* obj, void* arg) {
        auto* c = static_cast<LinkCtx*>(arg);
        auto* l = reinterpret_cast<rtnl_link*>(obj);
        if (!isDevice(l) || rtnl_link_get_ifindex(l) <= 0) {
          return;
        }
        c->seen->insert(rtnl_link_get_ifindex(l));
        c->self->upsertLink(linkFrom(l), c->t, c->created_as);
      },
      &lctx);
  for (auto& [ifindex, link] : links) {
    if (!link.deleted && seen.count(ifindex) == 0) {
      markDeleted(link, t);
    }
  }

  // Addresses, per live link.
  std::map<int, std::vector<NlAddress>> addrs;
  nl_cache_foreach(
      addr_cache,
      [](nl_object* obj, void* arg) {
        NlAddress a;
        if (addressFrom(reinterpret_cast<rtnl_addr*>(obj), a)) {
          (*static_cast<std::map<int, std::vector<NlAddress>>*>(arg))[a.ifindex].push_back(a);
        }
      },
      &addrs);
  for (auto& [ifindex, link] : links) {
    if (link.deleted) {
      continue;
    }
    std::vector<NlAddress>& now = addrs[ifindex];
    if (!initial) {
      for (const NlAddress& a : link.addresses) {
        if (std::find(now.begin(), now.end(), a) == now.end()) {
          addHistory(link, t, "address removed " + a.toString());
          dirty = true;
        }
      }
      for (const NlAddress& a : now) {
        if (std::find(link.addresses.begin(), link.addresses.end(), a) == link.addresses.end()) {
          addHistory(link, t, "address added " + a.toString());
          dirty = true;
        }
      }
    }
    link.addresses = std::move(now);
  }

  // Neighbours: replaced wholesale.
  struct NeighCtx {
    std::map<NeighKey, NlNeighbour> out;
    uint64_t dropped = 0;
  } nctx;
  nl_cache_foreach(
      neigh_cache,
      [](nl_object* obj, void* arg) {
        auto* c = static_cast<NeighCtx*>(arg);
        NlNeighbour nb;
        if (!neighbourFrom(reinterpret_cast<rtnl_neigh*>(obj), nb)) {
          return;
        }
        if (c->out.size() >= NetlinkState::kMaxNeighbours) {
          ++c->dropped;
          return;
        }
        NeighKey key{nb.ifindex, nb.addr};
        c->out.emplace(key, std::move(nb));
      },
      &nctx);
  neighbours = std::move(nctx.out);
  neighbours_dropped.fetch_add(nctx.dropped, std::memory_order_relaxed);
  dirty = true;
}

// Drops deleted links older than kKeepDeleted and the oldest beyond kMaxDeleted. True if any.
bool NetlinkWatcher::Impl::pruneDeleted(uint64_t now) {
  const uint64_t keep_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(NlLink::kKeepDeleted).count();
  bool pruned = false;
  while (!deleted_order.empty()) {
    auto [when, ifindex] = deleted_order.front();
    auto it = links.find(ifindex);
    bool current = it != links.end() && it->second.deleted && it->second.deleted_ns == when;
    if (current && when + keep_ns > now && deleted_count <= NlLink::kMaxDeleted) {
      break;
    }
    deleted_order.pop_front();
    if (current) {
      links.erase(it);
      --deleted_count;
      pruned = true;
    }
  }
  if (pruned) {
    dirty = true;
  }
  return pruned;
}

void NetlinkWatcher::Impl::publish() {
  auto s = std::make_shared<NetlinkState>();
  s->generation = ++generation;
  s->links = links;
  s->neighbours.reserve(neighbours.size());
  for (const auto& [key, nb] : neighbours) {
    s->neighbours.push_back(nb);
  }
  {
    std::lock_guard lock(mu);
    state = std::move(s);
  }
  dirty = false;
  if (owner.on_change) {
    try {
      owner.on_change();
    } catch (const std::exception& e) {
      log::error(kLog, "on_change handler failed: {}", e.what());
    }
  }
}

void NetlinkWatcher::Impl::fail(const std::string& what) {
  errors.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu);
  last_error = what;
}

void NetlinkWatcher::Impl::start() {
  if (running) {
    return;
  }
  auto check = [this](int err, const char* what) {
    if (err < 0) {
      std::string msg = fmt::format("netlink: {} failed: {}", what, nlError(err));
      fail(msg);
      close();
      throw std::runtime_error(msg);
    }
  };
  sock = nl_socket_alloc();
  sync_sock = nl_socket_alloc();
  if (sock == nullptr || sync_sock == nullptr) {
    check(-NLE_NOMEM, "nl_socket_alloc");
  }
  check(nl_cache_mngr_alloc(sock, NETLINK_ROUTE, NL_AUTO_PROVIDE, &mngr),
        "opening a NETLINK_ROUTE socket (nl_cache_mngr_alloc)");
  int fd = nl_cache_mngr_get_fd(mngr);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &options.rcvbuf, sizeof options.rcvbuf) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options.rcvbuf, sizeof options.rcvbuf);
  }
  nl_socket_set_msg_buf_size(sock, kMsgBuf);
  nl_socket_set_msg_buf_size(sync_sock, kMsgBuf);

  struct Want {
    const char* name;
    change_func_t cb;
    nl_cache** out;
  };
  const Want wants[] = {{"route/link", &Impl::linkCb, &link_cache},
                        {"route/addr", &Impl::addrCb, &addr_cache},
                        {"route/neigh", &Impl::neighCb, &neigh_cache}};
  for (const Want& w : wants) {
    int err = 0;
    for (int i = 0; i < kDumpTries; ++i) {
      err = nl_cache_mngr_add(mngr, w.name, w.cb, this, w.out);
      if (err != -NLE_DUMP_INTR) {
        break;
      }
    }
    check(err, fmt::format("adding cache {} (nl_cache_mngr_add)", w.name).c_str());
  }
  check(nl_connect(sync_sock, NETLINK_ROUTE), "connecting the resync socket (nl_connect)");

  rebuild(/*initial=*/true);
  publish();
  sd = std::make_unique<boost::asio::posix::stream_descriptor>(io, fd);
  running = true;
  running_flag = true;
  last_resync = std::chrono::steady_clock::now() - kMinResyncInterval;
  armWait();
  armPrune();
  size_t addrs = 0;
  for (const auto& [i, l] : links) {
    addrs += l.addresses.size();
  }
  log::info(kLog, "watching {} links, {} addresses, {} neighbours", links.size(), addrs,
            neighbours.size());
}

void NetlinkWatcher::Impl::close() {
  ++epoch;
  running = false;
  running_flag = false;
  wait_pending = false;
  resync_pending = false;
  resync_timer.cancel();
  prune_timer.cancel();
  if (sd) {
    boost::system::error_code ec;
    sd->cancel(ec);
    sd->release();  // the fd is libnl's; nl_cache_mngr_free closes it
    sd.reset();
  }
  if (mngr != nullptr) {
    nl_cache_mngr_free(mngr);  // frees the caches too
    mngr = nullptr;
  }
  link_cache = addr_cache = neigh_cache = nullptr;
  if (sock != nullptr) {
    nl_socket_free(sock);
    sock = nullptr;
  }
  if (sync_sock != nullptr) {
    nl_socket_free(sync_sock);
    sync_sock = nullptr;
  }
}

void NetlinkWatcher::Impl::armWait() {
  if (!running || resync_pending || wait_pending) {
    return;
  }
  wait_pending = true;
  std::weak_ptr<Impl> weak = shared_from_this();
  sd->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                 [weak, epoch = epoch](const boost::system::error_code& ec) {
                   auto self = weak.lock();
                   if (self && self->epoch == epoch) {
                     self->onReadable(ec);
                   }
                 });
}

void NetlinkWatcher::Impl::onReadable(const boost::system::error_code& ec) {
  wait_pending = false;
  if (!running) {
    return;
  }
  if (ec == boost::asio::error::operation_aborted) {
    armWait();  // cancelled for a resync that has run already: resume (no-op while pending)
    return;
  }
  if (ec) {
    fail(fmt::format("waiting on the netlink socket: {}", ec.message()));
    requestResync("socket wait failed");
    return;
  }
  int rc = nl_cache_mngr_data_ready(mngr);
  if (rc < 0) {
    std::string what = rc == -NLE_NOMEM ? "netlink receive buffer overrun (ENOBUFS)"
                                        : fmt::format("receive failed: {}", nlError(rc));
    fail(what);
    need_resync = true;
    resync_reason = what;
  }
  pruneDeleted(unixNowNs());
  if (dirty) {
    publish();
  }
  if (need_resync) {
    need_resync = false;
    requestResync(resync_reason);  // publishes itself
  }
  armWait();
}

// Resyncs now, or when the minimum interval since the last one has passed (reading pauses until
// then: the kernel keeps queueing, and an overrun meanwhile is repaired by that resync).
void NetlinkWatcher::Impl::requestResync(const std::string& why) {
  if (!running) {
    return;
  }
  if (resync_pending) {
    return;  // one is already scheduled
  }
  auto since = std::chrono::steady_clock::now() - last_resync;
  if (since >= resync_backoff) {
    log::warn(kLog, "resyncing: {}", why);
    if (resyncNow()) {
      resync_backoff = kMinResyncInterval;
      return;
    }
    resync_backoff = std::min(resync_backoff * 2, kMaxResyncBackoff);
    scheduleResync(resync_backoff);
    return;
  }
  log::warn(kLog, "resync in {} ms: {}",
            std::chrono::duration_cast<std::chrono::milliseconds>(resync_backoff - since).count(),
            why);
  scheduleResync(std::chrono::duration_cast<std::chrono::milliseconds>(resync_backoff - since));
}

void NetlinkWatcher::Impl::scheduleResync(std::chrono::milliseconds delay) {
  resync_pending = true;
  if (sd) {
    boost::system::error_code ec;
    sd->cancel(ec);  // pause reading until the resync
  }
  resync_timer.expires_after(delay);
  std::weak_ptr<Impl> weak = shared_from_this();
  resync_timer.async_wait([weak, epoch = epoch](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!self || ec || self->epoch != epoch || !self->running) {
      return;
    }
    self->resync_pending = false;
    if (self->resyncNow()) {
      self->resync_backoff = kMinResyncInterval;
    } else {
      self->resync_backoff = std::min(self->resync_backoff * 2, kMaxResyncBackoff);
      self->scheduleResync(self->resync_backoff);
      return;
    }
    self->armWait();
  });
}

// Refills every cache with a fresh dump and rebuilds the model. False (error recorded) when a
// dump failed; the model is then left as it was.
bool NetlinkWatcher::Impl::resyncNow() {
  last_resync = std::chrono::steady_clock::now();
  resyncs.fetch_add(1, std::memory_order_relaxed);
  drain();
  const std::pair<nl_cache*, const char*> caches[] = {
      {link_cache, "route/link"}, {addr_cache, "route/addr"}, {neigh_cache, "route/neigh"}};
  for (const auto& [cache, name] : caches) {
    int err = 0;
    for (int i = 0; i < kDumpTries; ++i) {
      err = nl_cache_refill(sync_sock, cache);
      if (err != -NLE_DUMP_INTR) {
        break;
      }
    }
    if (err < 0) {
      std::string what = fmt::format("resync dump of {} failed: {}", name, nlError(err));
      fail(what);
      log::warn(kLog, "{}", what);
      return false;
    }
  }
  try {
    rebuild(/*initial=*/false);
    pruneDeleted(unixNowNs());
  } catch (const std::exception& e) {
    fail(fmt::format("resync failed: {}", e.what()));
    return false;
  }
  publish();
  return true;
}

// Discards the notifications queued on the socket. Called right before the resync dump: all of
// them are older than it, and after an overrun the newest ones are the ones lost, so replaying the
// rest after the dump could undo it (a link re-created whose deletion was dropped).
void NetlinkWatcher::Impl::drain() {
  int fd = nl_cache_mngr_get_fd(mngr);
  char buf[1];
  // Bounded: the dump comes next anyway, and a flood must not keep us here.
  for (int i = 0; i < 1'000'000; ++i) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && errno != ENOBUFS && errno != EINTR) {
      break;  // EAGAIN: empty
    }
  }
}

void NetlinkWatcher::Impl::armPrune() {
  prune_timer.expires_after(kPruneInterval);
  std::weak_ptr<Impl> weak = shared_from_this();
  prune_timer.async_wait([weak, epoch = epoch](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!self || ec || self->epoch != epoch || !self->running) {
      return;
    }
    if (self->pruneDeleted(unixNowNs())) {
      self->publish();
    }
    self->armPrune();
  });
}

NetlinkWatcher::NetlinkWatcher(boost::asio::io_context& io, NetlinkOptions options)
    : impl_(std::make_shared<Impl>(*this, io, options)) {}

NetlinkWatcher::~NetlinkWatcher() {
  stop();
}

void NetlinkWatcher::start() {
  impl_->start();
}

void NetlinkWatcher::stop() {
  if (impl_->running) {
    log::info(kLog, "stopped");
  }
  impl_->close();
}

void NetlinkWatcher::resync() {
  std::weak_ptr<Impl> weak = impl_;
  boost::asio::post(impl_->io, [weak] {
    if (auto self = weak.lock()) {
      self->requestResync("requested");
    }
  });
}

std::shared_ptr<const NetlinkState> NetlinkWatcher::state() const {
  std::lock_guard lock(impl_->mu);
  return impl_->state;
}

nlohmann::json NetlinkWatcher::status() const {
  std::shared_ptr<const NetlinkState> s;
  std::string last_error;
  {
    std::lock_guard lock(impl_->mu);
    s = impl_->state;
    last_error = impl_->last_error;
  }
  size_t live = 0;
  size_t deleted = 0;
  size_t addrs = 0;
  for (const auto& [i, l] : s->links) {
    if (l.deleted) {
      ++deleted;
    } else {
      ++live;
      addrs += l.addresses.size();
    }
  }
  return nlohmann::json{
      {"links", live},
      {"deleted_links", deleted},
      {"addresses", addrs},
      {"neighbours", s->neighbours.size()},
      {"neighbours_dropped", impl_->neighbours_dropped.load()},
      {"changes", impl_->changes.load()},
      {"resyncs", impl_->resyncs.load()},
      {"errors", impl_->errors.load()},
      {"last_error", last_error},
      {"generation", s->generation},
      {"running", impl_->running_flag.load()},
  };
}

}  // namespace nc::inventory
