// NetlinkWatcher (ovsctl/inventory/netlink.hpp) against the real kernel, in a private network
// namespace: the watcher runs on a thread that joined the namespace (its netlink sockets belong to
// it); the test thread changes links, addresses and neighbours there with `ip -n NS ...` and
// checks that each change shows in the published state within 100 ms (polling every 2 ms), with
// a history entry that names it. The worst latency is printed. Needs root (skips locally, fails
// under CI=true).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ovsctl/inventory/netlink.hpp"
#include "tests/support/support.hpp"

namespace nc::inventory {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kDeadline = 100ms;
constexpr auto kPollEvery = 2ms;

// `ip netns add NAME`, deleted again on destruction (also after a failed assertion).
class Netns {
 public:
  explicit Netns(std::string name) : name_(std::move(name)) {
    test::run({"ip", "netns", "del", name_});  // leftover of a killed run, if any
    test::RunResult r = test::run({"ip", "netns", "add", name_});
    ok_ = r.exit_code == 0;
    error_ = r.err;
  }
  ~Netns() {
    if (ok_) {
      test::run({"ip", "netns", "del", name_});
    }
  }
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool ok_ = false;
  std::string error_;
};

// A NetlinkWatcher on its own io_context thread inside a network namespace.
class WatcherThread {
 public:
  ~WatcherThread() { stop(); }

  // Returns "" once the watcher started, else why not.
  std::string start(const std::string& netns, NetlinkOptions options = {}) {
    std::promise<std::string> ready;
    std::future<std::string> result = ready.get_future();
    thread_ = std::thread([this, netns, options, &ready] {
      int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        ready.set_value("open /run/netns/" + netns + ": " + std::strerror(errno));
        return;
      }
      int rc = ::setns(fd, CLONE_NEWNET);
      int err = errno;
      ::close(fd);
      if (rc != 0) {
        ready.set_value(std::string("setns: ") + std::strerror(err));
        return;
      }
      boost::asio::io_context io;
      NetlinkWatcher watcher(io, options);
      watcher.on_change = [this] { on_change_calls.fetch_add(1); };
      try {
        watcher.start();
      } catch (const std::exception& e) {
        ready.set_value(e.what());
        return;
      }
      io_ = &io;
      watcher_ = &watcher;
      ready.set_value("");
      io.run();
    });
    std::string error = result.get();
    if (!error.empty()) {
      thread_.join();
    }
    return error;
  }

  void stop() {
    if (!thread_.joinable()) {
      return;
    }
    if (io_ != nullptr) {
      boost::asio::post(*io_, [w = watcher_, io = io_] {
        w->stop();
        io->stop();
      });
    }
    thread_.join();
    io_ = nullptr;
    watcher_ = nullptr;
  }

  NetlinkWatcher& watcher() { return *watcher_; }
  // Runs `fn` on the watcher's io thread.
  void post(std::function<void()> fn) { boost::asio::post(*io_, std::move(fn)); }
  std::atomic<int> on_change_calls{0};

 private:
  std::thread thread_;
  boost::asio::io_context* io_ = nullptr;
  NetlinkWatcher* watcher_ = nullptr;
};

// The link with this ifindex, or an empty one (so predicates need no null checks).
const NlLink& at(const NetlinkState& st, int ifindex) {
  static const NlLink kNone;
  const NlLink* l = st.link(ifindex);
  return l != nullptr ? *l : kNone;
}

bool hasHistory(const NlLink& link, std::string_view what) {
  for (const LinkChange& c : link.history) {
    if (c.what == what) {
      return true;
    }
  }
  return false;
}

bool hasAddress(const NlLink& link, const std::string& text) {
  for (const NlAddress& a : link.addresses) {
    if (a.toString() == text) {
      return true;
    }
  }
  return false;
}

std::string describe(const NlLink& l) {
  std::string s = "#" + std::to_string(l.ifindex) + " " + l.name + " kind=" + l.kind +
                  " admin_up=" + std::to_string(l.admin_up) +
                  " carrier=" + std::to_string(l.carrier) + " operstate=" + l.operstate +
                  " mtu=" + std::to_string(l.mtu) + " master=" + std::to_string(l.master) +
                  " deleted=" + std::to_string(l.deleted) + " addresses=[";
  for (const NlAddress& a : l.addresses) {
    s += " " + a.toString();
  }
  s += " ] history=[";
  for (const LinkChange& c : l.history) {
    s += " \"" + c.what + "\"";
  }
  return s + " ]";
}

std::string describe(const NetlinkState& st) {
  std::string s = "generation " + std::to_string(st.generation) + ":\n";
  for (const auto& [index, l] : st.links) {
    s += "  " + describe(l) + "\n";
  }
  for (const NlNeighbour& n : st.neighbours) {
    s += "  neigh " + n.addr.toString() + " " + formatMac(n.mac) + " dev #" +
         std::to_string(n.ifindex) + " " + n.state + "\n";
  }
  return s;
}

class NetlinkWatchTest : public ::testing::Test {
 protected:
  // Runs `ip -n NS args...`, then polls the watcher's state until `pred` holds (at most
  // kDeadline after ip exited). Records the latency after ip's exit (the change is complete in the
  // kernel by then; 0 when it was already published) and prints the time since ip's start too.
  ::testing::AssertionResult step(const std::string& name, std::vector<std::string> args,
                                  const std::function<bool(const NetlinkState&)>& pred) {
    args.insert(args.begin(), {"ip", "-n", ns_});
    auto started = Clock::now();
    test::RunResult r = test::run(args);
    if (r.exit_code != 0) {
      std::string cmd;
      for (const std::string& a : args) {
        cmd += a + " ";
      }
      return ::testing::AssertionFailure() << name << ": `" << cmd << "` failed: " << r.err;
    }
    return await(name, pred, started);
  }

  ::testing::AssertionResult await(const std::string& name,
                                   const std::function<bool(const NetlinkState&)>& pred,
                                   std::optional<Clock::time_point> started = std::nullopt) {
    auto t0 = Clock::now();
    for (;;) {
      auto st = w_->watcher().state();
      auto elapsed = Clock::now() - t0;
      if (pred(*st)) {
        double ms = std::chrono::duration<double, std::milli>(elapsed).count();
        std::printf("[ latency  ] %-22s %6.2f ms", name.c_str(), ms);
        if (started) {
          std::printf(" (%6.2f ms since ip started)",
                      std::chrono::duration<double, std::milli>(Clock::now() - *started).count());
        }
        std::printf(" generation %llu\n", static_cast<unsigned long long>(st->generation));
        if (ms > worst_ms_) {
          worst_ms_ = ms;
          worst_step_ = name;
        }
        return ::testing::AssertionSuccess();
      }
      if (elapsed > kDeadline) {
        return ::testing::AssertionFailure()
               << name << ": not seen within " << kDeadline.count() << " ms; state "
               << describe(*st) << "status " << w_->watcher().status().dump();
      }
      std::this_thread::sleep_for(kPollEvery);
    }
  }

  std::string ns_ = "ncnl" + std::to_string(::getpid());
  WatcherThread* w_ = nullptr;
  double worst_ms_ = 0;
  std::string worst_step_;
};

TEST_F(NetlinkWatchTest, LinksAddressesNeighboursLive) {
  NC_REQUIRE_ROOT();
  NC_REQUIRE_TOOL("ip");
  Netns netns(ns_);  // declared before the thread: the thread is joined first
  ASSERT_TRUE(netns.ok()) << "ip netns add " << ns_ << ": " << netns.error();
  WatcherThread thread;
  std::string error = thread.start(ns_);
  ASSERT_EQ(error, "");
  w_ = &thread;

  // The namespace's loopback, present before the watcher started.
  ASSERT_TRUE(await("initial dump", [](const NetlinkState& st) {
    const NlLink* lo = st.linkByName("lo");
    return st.generation >= 1 && lo != nullptr && lo->history.size() == 1 &&
           lo->history[0].what == "present at start" && st.links.size() == 1;
  }));

  int a = 0;
  int b = 0;
  ASSERT_TRUE(step("veth created", {"link", "add", "nlA", "type", "veth", "peer", "name", "nlB"},
                   [&](const NetlinkState& st) {
                     const NlLink* la = st.linkByName("nlA");
                     const NlLink* lb = st.linkByName("nlB");
                     if (la == nullptr || lb == nullptr) {
                       return false;
                     }
                     a = la->ifindex;
                     b = lb->ifindex;
                     return la->kind == "veth" && lb->kind == "veth" && !la->admin_up &&
                            la->mtu == 1500 && la->mac != 0 && la->history.size() == 1 &&
                            la->history[0].what == "created";
                   }));
  // No IPv6 link-local addresses: the histories below then hold exactly what the test did.
  for (const char* dev : {"nlA", "nlB"}) {
    ASSERT_EQ(test::run({"ip", "-n", ns_, "link", "set", dev, "addrgenmode", "none"}).exit_code, 0);
  }

  ASSERT_TRUE(step("renamed", {"link", "set", "nlA", "name", "nlX"}, [&](const NetlinkState& st) {
    const NlLink* l = &at(st, a);
    return l != nullptr && l->name == "nlX" && hasHistory(*l, "renamed from nlA") &&
           st.linkByName("nlA") == nullptr && st.linkByName("nlX") == l;
  }));

  ASSERT_TRUE(step("ipv4 address added", {"addr", "add", "10.9.9.1/24", "dev", "nlX"},
                   [&](const NetlinkState& st) {
                     const NlLink* l = &at(st, a);
                     return hasAddress(*l, "10.9.9.1/24") &&
                            hasHistory(*l, "address added 10.9.9.1/24");
                   }));
  ASSERT_TRUE(step("ipv6 address added", {"addr", "add", "fd00:9::1/64", "dev", "nlX", "nodad"},
                   [&](const NetlinkState& st) {
                     const NlLink* l = &at(st, a);
                     return hasAddress(*l, "fd00:9::1/64") &&
                            hasHistory(*l, "address added fd00:9::1/64");
                   }));

  int br = 0;
  ASSERT_TRUE(step("bridge created", {"link", "add", "nlbr0", "type", "bridge"},
                   [&](const NetlinkState& st) {
                     const NlLink* l = st.linkByName("nlbr0");
                     br = l != nullptr ? l->ifindex : 0;
                     return l != nullptr && l->kind == "bridge";
                   }));
  ASSERT_TRUE(
      step("master set", {"link", "set", "nlX", "master", "nlbr0"}, [&](const NetlinkState& st) {
        const NlLink* l = &at(st, a);
        return l->master == br && hasHistory(*l, "master nlbr0 (" + std::to_string(br) + ")");
      }));
  ASSERT_TRUE(
      step("master removed", {"link", "set", "nlX", "nomaster"}, [&](const NetlinkState& st) {
        const NlLink* l = &at(st, a);
        return l->master == 0 && hasHistory(*l, "master none");
      }));

  ASSERT_TRUE(step("peer up", {"link", "set", "nlB", "up"}, [&](const NetlinkState& st) {
    const NlLink* l = &at(st, b);
    return l->admin_up && hasHistory(*l, "up");
  }));
  ASSERT_TRUE(step("up, carrier on", {"link", "set", "nlX", "up"}, [&](const NetlinkState& st) {
    const NlLink* l = &at(st, a);
    return l->admin_up && l->carrier && l->operstate == "up" && hasHistory(*l, "up") &&
           hasHistory(*l, "carrier on");
  }));

  ASSERT_TRUE(step("mtu", {"link", "set", "nlX", "mtu", "9000"}, [&](const NetlinkState& st) {
    const NlLink* l = &at(st, a);
    return l->mtu == 9000 && hasHistory(*l, "mtu 1500 -> 9000");
  }));

  IpAddr neigh_ip;
  ASSERT_TRUE(IpAddr::parse("10.9.9.9", neigh_ip));
  ASSERT_TRUE(step(
      "neighbour added",
      {"neigh", "add", "10.9.9.9", "lladdr", "02:00:00:00:09:09", "dev", "nlX", "nud", "permanent"},
      [&](const NetlinkState& st) {
        for (const NlNeighbour& n : st.neighbours) {
          if (n.addr == neigh_ip && n.ifindex == a) {
            return n.mac == 0x020000000909ull && n.state == "permanent";
          }
        }
        return false;
      }));

  // A requested resync (the overrun path) rebuilds the model from fresh dumps: same links, same
  // addresses, same neighbours, and histories kept without spurious entries.
  auto before = thread.watcher().state();
  thread.watcher().resync();
  ASSERT_TRUE(await("resync", [&](const NetlinkState& st) {
    return st.generation > before->generation &&
           thread.watcher().status()["resyncs"].get<uint64_t>() == 1;
  }));
  {
    auto after = thread.watcher().state();
    ASSERT_EQ(after->links.size(), before->links.size());
    for (const auto& [index, l] : before->links) {
      const NlLink* n = after->link(index);
      ASSERT_NE(n, nullptr) << describe(l);
      EXPECT_EQ(describe(*n), describe(l));
    }
    // The dump may hold entries the kernel never announced (NOARP multicast entries created by
    // MLD): the neighbours seen before must all still be there, unchanged.
    for (const NlNeighbour& n : before->neighbours) {
      bool found = false;
      for (const NlNeighbour& m : after->neighbours) {
        found = found || (m.addr == n.addr && m.ifindex == n.ifindex && m.mac == n.mac &&
                          m.state == n.state);
      }
      EXPECT_TRUE(found) << n.addr.toString() << " lost at resync: " << describe(*after);
    }
    if (after->neighbours.size() != before->neighbours.size()) {
      std::printf("[ resync   ] neighbours %zu -> %zu:\n%s", before->neighbours.size(),
                  after->neighbours.size(), describe(*after).c_str());
    }
  }

  ASSERT_TRUE(step("ipv4 address removed", {"addr", "del", "10.9.9.1/24", "dev", "nlX"},
                   [&](const NetlinkState& st) {
                     const NlLink* l = &at(st, a);
                     return !hasAddress(*l, "10.9.9.1/24") &&
                            hasHistory(*l, "address removed 10.9.9.1/24");
                   }));

  ASSERT_TRUE(step("down", {"link", "set", "nlX", "down"}, [&](const NetlinkState& st) {
    const NlLink* l = &at(st, a);
    return !l->admin_up && !l->carrier && hasHistory(*l, "down") && hasHistory(*l, "carrier off");
  }));

  ASSERT_TRUE(step("deleted", {"link", "del", "nlX"}, [&](const NetlinkState& st) {
    const NlLink* l = &at(st, a);
    const NlLink* p = st.link(b);
    return l != nullptr && l->deleted && !l->history.empty() &&
           l->history.back().what == "deleted" && p != nullptr && p->deleted;
  }));

  // The deleted link is still there, with the history that explains what happened to it.
  auto st = thread.watcher().state();
  const NlLink* gone = st->linkByName("nlX");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->ifindex, a);
  EXPECT_TRUE(gone->deleted);
  EXPECT_GT(gone->deleted_ns, 0u);
  for (const char* what : {"created", "renamed from nlA", "address added 10.9.9.1/24",
                           "address added fd00:9::1/64", "up", "carrier on", "mtu 1500 -> 9000",
                           "address removed 10.9.9.1/24", "down", "carrier off", "deleted"}) {
    EXPECT_TRUE(hasHistory(*gone, what)) << what << " missing in " << describe(*gone);
  }
  std::printf("[ deleted  ] %s\n", describe(*gone).c_str());
  for (size_t i = 1; i < gone->history.size(); ++i) {
    EXPECT_LE(gone->history[i - 1].time_ns, gone->history[i].time_ns);
  }
  for (const NlNeighbour& n : st->neighbours) {
    EXPECT_NE(n.ifindex, a) << "neighbour of a deleted link kept";
  }
  EXPECT_EQ(st->linkByName("nlbr0")->ifindex, br);

  nlohmann::json status = thread.watcher().status();
  std::printf("[ status   ] %s\n", status.dump().c_str());
  EXPECT_EQ(status["links"], 2);  // lo, nlbr0
  EXPECT_EQ(status["deleted_links"], 2);
  EXPECT_EQ(status["resyncs"], 1);
  EXPECT_EQ(status["errors"], 0);
  EXPECT_EQ(status["last_error"], "");
  EXPECT_GT(thread.on_change_calls.load(), 0);
  std::printf("[ latency  ] worst %.2f ms (%s), limit %lld ms\n", worst_ms_, worst_step_.c_str(),
              static_cast<long long>(kDeadline.count()));

  thread.stop();
  // The last state stays readable after stop() (the watcher object is gone with its thread).
  EXPECT_EQ(st->link(a)->name, "nlX");
}

// A burst of changes while the io thread is blocked overruns a deliberately tiny receive buffer
// (ENOBUFS): the watcher resyncs from fresh dumps and ends with the kernel's state, without
// resurrecting links whose deletion was lost in the overrun.
TEST_F(NetlinkWatchTest, OverrunResyncs) {
  NC_REQUIRE_ROOT();
  NC_REQUIRE_TOOL("ip");
  Netns netns(ns_);
  ASSERT_TRUE(netns.ok()) << "ip netns add " << ns_ << ": " << netns.error();
  WatcherThread thread;
  NetlinkOptions options;
  options.rcvbuf = 1;  // the kernel rounds it up to its minimum, a few KiB
  ASSERT_EQ(thread.start(ns_, options), "");
  w_ = &thread;
  ASSERT_TRUE(await("initial dump", [](const NetlinkState& st) { return st.generation >= 1; }));

  constexpr int kPairs = 40;
  constexpr int kDeleted = 20;  // nlV0..nlV19 (and their peers) are deleted again
  std::string batch;
  for (int i = 0; i < kPairs; ++i) {
    batch +=
        "link add nlV" + std::to_string(i) + " type veth peer name nlW" + std::to_string(i) + "\n";
  }
  for (int i = 0; i < kPairs; ++i) {
    batch += i < kDeleted ? "link del nlV" + std::to_string(i) + "\n"
                          : "link set nlV" + std::to_string(i) + " mtu 1400\n";
  }
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  thread.post([released] { released.wait(); });  // the io thread reads nothing meanwhile
  test::RunResult r = test::run({"ip", "-n", ns_, "-batch", "-"}, batch);
  release.set_value();
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto consistent = [&](const NetlinkState& st) {
    for (int i = 0; i < kPairs; ++i) {
      for (const std::string& name : {"nlV" + std::to_string(i), "nlW" + std::to_string(i)}) {
        const NlLink* l = st.linkByName(name);
        if (i < kDeleted) {
          if (l != nullptr && !l->deleted) {
            return false;  // deleted in the kernel
          }
        } else if (l == nullptr || l->deleted || (name[2] == 'V' && l->mtu != 1400)) {
          return false;
        }
      }
    }
    return true;
  };
  ASSERT_TRUE(await("state after overrun", [&](const NetlinkState& st) {
    nlohmann::json status = thread.watcher().status();
    return status["resyncs"].get<uint64_t>() >= 1 && consistent(st);
  }));
  nlohmann::json status = thread.watcher().status();
  std::printf("[ status   ] %s\n", status.dump().c_str());
  EXPECT_GE(status["errors"].get<uint64_t>(), 1u);
  EXPECT_NE(status["last_error"].get<std::string>().find("overrun"), std::string::npos);
  // Nothing older than the dump is replayed afterwards.
  std::this_thread::sleep_for(50ms);
  auto st = thread.watcher().state();
  EXPECT_TRUE(consistent(*st)) << describe(*st);
  const NlLink* survivor = st->linkByName("nlV" + std::to_string(kPairs - 1));
  ASSERT_NE(survivor, nullptr);
  EXPECT_FALSE(survivor->history.empty());
  std::printf("[ survivor ] %s\n", describe(*survivor).c_str());
}

}  // namespace
}  // namespace nc::inventory
