#pragma once
// Live view of the host's Linux network state (links, addresses, neighbours) from rtnetlink,
// through libnl-route-3's cache manager. Part of the host inventory (DESIGN.md, "inventory").
//
// What it does:
//  * Keeps libnl caches "route/link", "route/addr" and "route/neigh" current from the kernel's
//    change notifications (no polling): the cache manager's socket is watched by Asio on the
//    caller's io_context and drained with nl_cache_mngr_data_ready().
//  * Keeps its own model (ifindex -> NlLink) so that every change can be diffed against the
//    previous state and written to the link's history: created, deleted, up/down (IFF_UP),
//    carrier on/off, operstate, rename, mtu, master, MAC, address added/removed.
//  * Publishes an immutable NetlinkState (shared_ptr swapped under a mutex) once per batch of
//    messages, then calls on_change.
//  * On a netlink buffer overrun (ENOBUFS) or any other receive error it resyncs: discards what is
//    still queued on the socket (all of it older than the dump to come; replaying it after the
//    dump could resurrect a link whose deletion was lost), refills every cache with a fresh dump
//    and rebuilds the model by diffing it against the dump, so histories of links that still exist
//    are kept and what changed during the overrun is still recorded. Resyncs are at most one per
//    second; further errors inside that second wait for a timer, so a persistent error never spins.
//  * Bounded memory in the model: 32 history entries per link, deleted links kept 10 minutes and
//    at most 1024 of them, at most 100,000 neighbours (the rest are counted as dropped). libnl's
//    own caches hold what the kernel reports (they are not capped here).
// Where it stops: it does not join OVS ports (the inventory above does that), and it reads only.
//
// Threading: everything runs on the io_context given to the constructor, which one thread runs.
// Construct the watcher, call start(), stop() and destroy it on that thread (or while the
// io_context is not running). state(), status() and resync() may be called from any thread.
//
// Network namespaces: the netlink sockets belong to the network namespace of the thread that
// calls start(). To watch another namespace, setns(CLONE_NEWNET) on the io thread first.
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collector/record/flow_record.hpp"

namespace nc::inventory {

// One entry of a link's history. `what` is short and readable: "created", "deleted", "up",
// "down", "carrier on", "carrier off", "operstate up -> lowerlayerdown", "renamed from veth0",
// "mtu 1500 -> 9000", "master br0 (7)", "master none", "mac 02:00:00:00:00:01",
// "address added 10.1.2.3/24", "address removed fd00::1/64", "present at start" (the link existed
// when the watcher started), "appeared at resync" (created while notifications were lost).
struct LinkChange {
  uint64_t time_ns = 0;  // UNIX ns, wall clock
  std::string what;
};

struct NlAddress {
  IpAddr addr;  // IFA_LOCAL (IPv4 stored v4-mapped)
  uint8_t prefix_len = 0;
  int ifindex = 0;
  // "10.1.2.3/24", "fd00::1/64".
  std::string toString() const;
  friend bool operator==(const NlAddress&, const NlAddress&) = default;
};

struct NlLink {
  int ifindex = 0;
  std::string name;
  uint64_t mac = 0;       // 48 bits in the low bits (formatMac); 0 when the link has none
  std::string operstate;  // "up", "down", "lowerlayerdown", "unknown", ... as `ip link` prints
                          // them, in lower case
  bool admin_up = false;  // IFF_UP
  bool carrier = false;   // IFLA_CARRIER
  uint32_t mtu = 0;
  int master = 0;    // master ifindex, 0 none
  std::string kind;  // rtnl link info kind: "veth", "bridge", "tun", "openvswitch", "" ...
  std::vector<NlAddress> addresses;
  std::vector<LinkChange> history;  // oldest first, at most kHistory entries
  // Deleted links are kept (with their history) for kKeepDeleted, at most kMaxDeleted of them,
  // so that later lookups can still explain what happened.
  bool deleted = false;
  uint64_t deleted_ns = 0;

  static constexpr size_t kHistory = 32;
  static constexpr std::chrono::minutes kKeepDeleted{10};
  static constexpr size_t kMaxDeleted = 1024;
};

// An IPv4 ARP or IPv6 ND entry. Not included: entries without a link-layer address (incomplete,
// failed), multicast destinations (the kernel makes and drops those without announcing them) and
// bridge FDB entries.
struct NlNeighbour {
  IpAddr addr;
  uint64_t mac = 0;
  int ifindex = 0;
  std::string state;  // "reachable", "stale", "permanent", "delay", "probe", "noarp", ...
};

// An immutable snapshot; a new one is published for every batch of changes.
struct NetlinkState {
  uint64_t generation = 0;              // +1 per published change (0: nothing published yet)
  std::map<int, NlLink> links;          // by ifindex (includes deleted ones, see NlLink)
  std::vector<NlNeighbour> neighbours;  // sorted by (ifindex, addr)

  static constexpr size_t kMaxNeighbours = 100000;

  // The link with this ifindex (live or deleted), or nullptr.
  const NlLink* link(int ifindex) const;
  // A live link with this name, else the most recently deleted one, else nullptr.
  const NlLink* linkByName(std::string_view name) const;
};

struct NetlinkOptions {
  // Receive buffer of the notification socket in bytes (SO_RCVBUFFORCE as root, else SO_RCVBUF,
  // which the kernel caps at net.core.rmem_max). A burst of changes larger than this while the
  // io thread is busy overruns it and costs a resync.
  int rcvbuf = 4 << 20;
};

class NetlinkWatcher {
 public:
  explicit NetlinkWatcher(boost::asio::io_context& io, NetlinkOptions options = {});
  ~NetlinkWatcher();
  NetlinkWatcher(const NetlinkWatcher&) = delete;
  NetlinkWatcher& operator=(const NetlinkWatcher&) = delete;

  // Opens the netlink sockets (in the calling thread's network namespace), dumps links,
  // addresses and neighbours, publishes the first state and starts watching. Throws
  // std::runtime_error naming the cause if netlink cannot be opened or dumped.
  void start();
  // Stops watching and closes the sockets. The last published state stays readable. Idempotent.
  void stop();
  // Asks for a full resync (refill every cache, rebuild the model) on the io thread; the same
  // thing an overrun triggers. Thread-safe.
  void resync();

  // Called on the io_context thread after each batch of changes was applied and published.
  std::function<void()> on_change;

  // Thread-safe; an immutable snapshot, republished on every change. Never null (before start()
  // an empty state with generation 0).
  std::shared_ptr<const NetlinkState> state() const;
  // Thread-safe. {"links" (live), "deleted_links", "addresses", "neighbours",
  // "neighbours_dropped", "changes" (notifications applied), "resyncs", "errors", "last_error",
  // "generation", "running"}.
  nlohmann::json status() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace nc::inventory
