// Integration tests of the real Open vSwitch harness (tests/harness/ovs_harness.hpp): traffic
// through the bridge, metadata, concurrent harnesses, and that teardown - normal, on SIGINT, or
// by the next run's sweep after SIGKILL - leaves no process, namespace, interface or directory.
#include "tests/harness/ovs_harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/support.hpp"

namespace nc::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What must be gone after a harness is torn down.
struct Footprint {
  std::string run;
  std::string dir;
  std::vector<pid_t> pids;
};

Footprint footprintOf(const OvsHarness& h) {
  return {h.runPrefix(), h.tempDir(), {h.ovsdbPid(), h.vswitchdPid()}};
}

// Lists everything that is left of `fp`; empty means clean.
std::vector<std::string> leftovers(const Footprint& fp) {
  std::vector<std::string> left;
  const std::string self = std::to_string(::getpid());
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    std::string cmd = readFile("/proc/" + pid + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (!fp.dir.empty() && cmd.find(fp.dir) != std::string::npos) {
      left.push_back("process " + pid + ": " + cmd);
    }
    // A zombie has an empty cmdline: an unreaped child of ours counts as left over.
    std::string status = readFile("/proc/" + pid + "/status");
    if (status.find("\nPPid:\t" + self + "\n") != std::string::npos &&
        status.find("\nState:\tZ") != std::string::npos) {
      left.push_back("unreaped zombie child " + pid);
    }
  }
  for (pid_t p : fp.pids) {
    if (p > 0 && fs::exists("/proc/" + std::to_string(p))) {
      std::string status = readFile("/proc/" + std::to_string(p) + "/status");
      if (status.find("\nPPid:\t" + self + "\n") != std::string::npos) {
        left.push_back("daemon pid " + std::to_string(p) + " still our child");
      }
    }
  }
  std::istringstream ns(runCommand({"ip", "netns", "list"}).out);
  for (std::string line; std::getline(ns, line);) {
    if (line.rfind(fp.run, 0) == 0) {
      left.push_back("netns " + line);
    }
  }
  std::istringstream links(runCommand({"ip", "-o", "link", "show"}).out);
  for (std::string line; std::getline(links, line);) {
    if (line.find(": " + fp.run) != std::string::npos) {
      left.push_back("root-namespace interface " + line.substr(0, line.find('<')));
    }
  }
  const char* keep = std::getenv("NC_KEEP_OVS");
  const bool kept = keep != nullptr && std::string(keep) == "1";
  if (!fp.dir.empty() && fs::exists(fp.dir) && !kept) {
    left.push_back("temp dir " + fp.dir);
  }
  return left;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += "  " + s + "\n";
  }
  return out;
}

// Namespace deletion is asynchronous in the kernel; processes and files are not, but allow a
// short grace period for interfaces.
void expectNothingLeft(const Footprint& fp) {
  std::vector<std::string> left;
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  do {
    left = leftovers(fp);
    if (left.empty()) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (Clock::now() < deadline);
  ADD_FAILURE() << "left over after teardown of " << fp.run << ":\n" << join(left);
}

void expectPing(const OvsHarness& h, const OvsHost& from, const std::string& to, bool v6 = false) {
  std::vector<std::string> argv = {"ping", "-c", "3", "-i", "0.1", "-W", "2", to};
  if (v6) {
    argv.insert(argv.begin() + 1, "-6");
  }
  CommandResult r = h.tryRunInHost(from, argv, std::chrono::seconds(20));
  EXPECT_TRUE(r.ok()) << from.name << " -> " << to << ": status " << r.status << "\n"
                      << r.out << r.err;
  EXPECT_NE(r.out.find("3 packets transmitted, 3 received"), std::string::npos) << r.out;
}

uint64_t fnv1a(uint64_t h, const unsigned char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ p[i]) * 1099511628211ULL;
  }
  return h;
}

void setTimeouts(int fd, int seconds) {
  timeval tv = {seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Sends `size` pseudo-random bytes from `from` to `to` over TCP through the bridge, with sockets
// opened in the hosts' namespaces; checks byte count and checksum.
void expectTcpTransfer(const OvsHost& from, const OvsHost& to, size_t size) {
  int lfd = openSocketInNetns(to.netns, AF_INET, SOCK_STREAM);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  ASSERT_EQ(::inet_pton(AF_INET, to.ipv4.c_str(), &addr.sin_addr), 1);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << errno;
  ASSERT_EQ(::listen(lfd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  size_t received = 0;
  uint64_t recvHash = 14695981039346656037ULL;
  std::string recvError;
  std::thread receiver([&] {
    pollfd p = {lfd, POLLIN, 0};
    if (::poll(&p, 1, 15000) != 1) {
      recvError = "accept timed out";
      return;
    }
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0) {
      recvError = "accept failed";
      return;
    }
    setTimeouts(c, 15);
    std::vector<unsigned char> buf(64 * 1024);
    while (true) {
      ssize_t n = ::read(c, buf.data(), buf.size());
      if (n <= 0) {
        if (n < 0) {
          recvError = "read: errno " + std::to_string(errno);
        }
        break;
      }
      received += static_cast<size_t>(n);
      recvHash = fnv1a(recvHash, buf.data(), static_cast<size_t>(n));
    }
    ::close(c);
  });

  int cfd = openSocketInNetns(from.netns, AF_INET, SOCK_STREAM);
  setTimeouts(cfd, 15);
  std::vector<unsigned char> data(size);
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (auto& b : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<unsigned char>(x);
  }
  const uint64_t sentHash = fnv1a(14695981039346656037ULL, data.data(), data.size());
  const auto t0 = Clock::now();
  bool connected = ::connect(cfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  EXPECT_TRUE(connected) << "connect " << to.ipv4 << ": errno " << errno;
  size_t sent = 0;
  while (connected && sent < data.size()) {
    ssize_t n = ::write(cfd, data.data() + sent, data.size() - sent);
    if (n <= 0) {
      ADD_FAILURE() << "write: errno " << errno << " after " << sent << " bytes";
      break;
    }
    sent += static_cast<size_t>(n);
  }
  ::shutdown(cfd, SHUT_WR);
  receiver.join();
  ::close(cfd);
  ::close(lfd);
  std::cout << "tcp " << from.name << "->" << to.name << ": " << received << " bytes in "
            << msSince(t0) << " ms\n";
  EXPECT_EQ(recvError, "");
  EXPECT_EQ(received, size);
  EXPECT_EQ(recvHash, sentHash);
}

int ifindexInNs(const std::string& ns, const std::string& ifname) {
  CommandResult r = runCommand({"ip", "-n", ns, "-o", "link", "show", "dev", ifname});
  return r.ok() ? std::atoi(r.out.c_str()) : -1;
}

class OvsHarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NC_REQUIRE_ROOT();
    for (const char* tool : {"ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl",
                             "ovsdb-tool", "ip", "ping", "ethtool"}) {
      NC_REQUIRE_TOOL(tool);
    }
  }
};

// Prints the harness description and log tails when the current test has failed.
void dumpOnFailure(const OvsHarness& h) {
  if (::testing::Test::HasFailure()) {
    std::cerr << h.describe() << h.logTail(40);
  }
}

TEST_F(OvsHarnessTest, PingAndTcpTwoHosts) {
  const auto t0 = Clock::now();
  auto h = std::make_unique<OvsHarness>(OvsHarnessOptions{.hosts = 2});
  const double upMs = msSince(t0);
  const Footprint fp = footprintOf(*h);
  std::cout << h->describe();

  const OvsHost& h1 = h->host("h1");
  const OvsHost& h2 = h->host("h2");
  expectPing(*h, h1, h2.ipv4);
  expectTcpTransfer(h1, h2, 4 << 20);

  // Metadata: names, addresses, ofport and ifindex as the switch and the kernel see them.
  for (size_t i = 0; i < h->hosts().size(); ++i) {
    const OvsHost& host = h->host(i);
    SCOPED_TRACE(host.name);
    EXPECT_EQ(host.ofport, 101 + static_cast<int>(i));
    EXPECT_EQ(std::stoi(h->vsctl({"get", "Interface", host.portName, "ofport"})), host.ofport);
    EXPECT_EQ(std::stoi(h->vsctl({"get", "Interface", host.portName, "ifindex"})), host.ifindex);
    EXPECT_EQ(ifindexInNs(h->switchNs(), host.portName), host.ifindex);
    EXPECT_GT(host.ifindex, 0);
    EXPECT_EQ(host.ipv4, "10.77.0." + std::to_string(i + 1));
    EXPECT_LE(host.portName.size(), 15u);
    EXPECT_EQ(host.portName.rfind(h->runPrefix(), 0), 0u);
    std::string link = h->runInHost(host, {"ip", "-o", "link", "show", "dev", host.ifName});
    EXPECT_NE(link.find(host.mac), std::string::npos) << link;
    std::string addr = h->runInHost(host, {"ip", "-o", "-4", "addr", "show", "dev", host.ifName});
    EXPECT_NE(addr.find(host.ipv4 + "/24"), std::string::npos) << addr;
    std::string offload = h->runInHost(host, {"ethtool", "-k", host.ifName});
    EXPECT_NE(offload.find("tx-checksumming: off"), std::string::npos) << offload;
  }
  EXPECT_EQ(h->vsctl({"get", "Bridge", h->bridge(), "datapath_type"}), "netdev\n");
  // The datapath's taps live in the switch namespace, not in the root one.
  EXPECT_GT(ifindexInNs(h->switchNs(), "ovs-netdev"), 0);
  EXPECT_GT(ifindexInNs(h->switchNs(), h->bridge()), 0);
  EXPECT_TRUE(fs::exists(h->dbSocket()));
  EXPECT_EQ(h->tempDir().rfind("/tmp/nc-ovs-" + h->runPrefix() + "-", 0), 0u);
  // `ip netns exec` execs in place: the pids we reap are the daemons themselves.
  EXPECT_NE(readFile("/proc/" + std::to_string(h->ovsdbPid()) + "/cmdline").find("ovsdb-server"),
            std::string::npos);
  EXPECT_NE(readFile("/proc/" + std::to_string(h->vswitchdPid()) + "/cmdline").find("ovs-vswitchd"),
            std::string::npos);
  EXPECT_NE(h->appctl({"version"}).find("Open vSwitch"), std::string::npos);
  dumpOnFailure(*h);

  const auto t1 = Clock::now();
  EXPECT_TRUE(h->teardown());
  const double downMs = msSince(t1);
  h.reset();
  expectNothingLeft(fp);
  std::cout << "timing: bring-up " << upMs << " ms, teardown " << downMs << " ms, whole test "
            << msSince(t0) << " ms\n";
  RecordProperty("bring_up_ms", std::to_string(static_cast<int>(upMs)));
  RecordProperty("teardown_ms", std::to_string(static_cast<int>(downMs)));
}

TEST_F(OvsHarnessTest, ThreeHostsAllPairsPing) {
  Footprint fp;
  {
    OvsHarness h(OvsHarnessOptions{.hosts = 3, .ipv4Prefix = "10.78.5", .ofportBase = 200});
    fp = footprintOf(h);
    for (const auto& a : h.hosts()) {
      for (const auto& b : h.hosts()) {
        if (a.name != b.name) {
          expectPing(h, a, b.ipv4);
        }
      }
    }
    EXPECT_EQ(h.host("h3").ofport, 203);
    EXPECT_EQ(h.host("h3").ipv4, "10.78.5.3");
    dumpOnFailure(h);
  }
  expectNothingLeft(fp);
}

TEST_F(OvsHarnessTest, Ipv6AndOvsdbTcpRemote) {
  Footprint fp;
  {
    OvsHarness h(OvsHarnessOptions{.hosts = 2, .ipv6 = true, .ovsdbTcpPort = 0});
    fp = footprintOf(h);
    ASSERT_TRUE(h.dbTcpPort().has_value());
    EXPECT_GT(*h.dbTcpPort(), 0);
    expectPing(h, h.host(0), h.host(1).ipv6, true);
    // The ptcp remote listens on the switch namespace's loopback.
    const std::string remote = "--db=tcp:127.0.0.1:" + std::to_string(*h.dbTcpPort());
    CommandResult r = h.tryRunInSwitchNs({"ovs-vsctl", remote, "--timeout=10", "br-exists", "br0"});
    EXPECT_TRUE(r.ok()) << r.err;
    // A socket opened in the switch namespace reaches it too.
    int fd = h.runInSwitchNs([] { return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(*h.dbTcpPort());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << errno;
    ::close(fd);
    dumpOnFailure(h);
  }
  expectNothingLeft(fp);
}

// A failing bring-up step throws with the command, its status, its stderr and the log paths,
// and leaves no process or namespace; the temp dir is kept for its logs.
TEST_F(OvsHarnessTest, BringUpFailureReportsAndCleansUp) {
  std::string message;
  try {
    // OpenFlow port numbers stop at 65279: ovs-vsctl rejects ofport_request=65401.
    OvsHarness h(OvsHarnessOptions{.hosts = 1, .ofportBase = 65400});
    ADD_FAILURE() << "bring-up should have failed";
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  std::cout << message << "\n";
  EXPECT_NE(message.find("ovs-vsctl"), std::string::npos);
  EXPECT_NE(message.find("ofport_request=65401"), std::string::npos);
  EXPECT_NE(message.find("exit status"), std::string::npos);
  EXPECT_NE(message.find("stderr: "), std::string::npos);
  const size_t a = message.find("logs: /tmp/nc-ovs-");
  const size_t b = message.find("/ovsdb-server.log", a);
  ASSERT_TRUE(a != std::string::npos && b != std::string::npos) << message;
  Footprint fp;
  fp.dir = message.substr(a + 6, b - a - 6);
  fp.run = fp.dir.substr(std::string("/tmp/nc-ovs-").size());
  fp.run = fp.run.substr(0, fp.run.find('-'));
  EXPECT_TRUE(fs::exists(fp.dir + "/ovs-vswitchd.log"));
  std::error_code ec;
  fs::remove_all(fp.dir, ec);
  expectNothingLeft(fp);
}

// Two harnesses at once, brought up concurrently from two threads, with the same addresses:
// each lives in its own namespaces, so both work and neither sees the other.
TEST_F(OvsHarnessTest, TwoHarnessesConcurrently) {
  std::barrier sync(2);
  Footprint fps[2];
  std::string errors[2];
  auto body = [&](int k) {
    try {
      // PDEATHSIG follows the constructing thread: the harness lives and dies on this thread.
      OvsHarness h(OvsHarnessOptions{.hosts = 2});
      fps[k] = footprintOf(h);
      sync.arrive_and_wait();  // both up
      CommandResult r =
          h.tryRunInHost(h.host(0), {"ping", "-c", "3", "-i", "0.2", "-W", "2", h.host(1).ipv4});
      if (r.out.find("3 received") == std::string::npos) {
        errors[k] = "ping failed:\n" + r.out + r.err + h.describe() + h.logTail(20);
      }
      sync.arrive_and_wait();  // both done before either tears down
    } catch (const std::exception& e) {
      errors[k] = e.what();
      sync.arrive_and_drop();
    }
  };
  std::thread a(body, 0);
  std::thread b(body, 1);
  a.join();
  b.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  EXPECT_NE(fps[0].run, fps[1].run);
  expectNothingLeft(fps[0]);
  expectNothingLeft(fps[1]);
}

// --- Interrupt and SIGKILL: a child copy of this binary brings a harness up and is then
// signalled. The helper test only runs when NC_OVS_HELPER=1.

TEST(OvsHarnessHelper, DISABLED_BringUpAndWait) {
  if (std::getenv("NC_OVS_HELPER") == nullptr) {
    GTEST_SKIP() << "helper for the interrupt tests";
  }
  OvsHarness h(OvsHarnessOptions{.hosts = 2, .namePrefix = std::getenv("NC_OVS_HELPER")});
  std::cout << "READY " << h.runPrefix() << " " << h.tempDir() << " " << h.ovsdbPid() << " "
            << h.vswitchdPid() << std::endl;
  std::this_thread::sleep_for(std::chrono::seconds(60));
}

struct Helper {
  pid_t pid = -1;
  Footprint fp;
};

// The helper uses its own name prefix, so that a harness of a concurrently running test process
// cannot sweep its leftovers before we look at them.
Helper startHelper(const std::string& prefix) {
  int p[2];
  EXPECT_EQ(::pipe(p), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::close(p[0]);
    ::close(p[1]);
    ::setenv("NC_OVS_HELPER", prefix.c_str(), 1);
    ::execl("/proc/self/exe", "ovs_harness_test", "--gtest_also_run_disabled_tests",
            "--gtest_filter=OvsHarnessHelper.DISABLED_BringUpAndWait", nullptr);
    ::_exit(127);
  }
  ::close(p[1]);
  Helper h;
  h.pid = pid;
  std::string out;
  char buf[512];
  pollfd pf = {p[0], POLLIN, 0};
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (out.find("READY ") == std::string::npos ||
         out.find('\n', out.find("READY ")) == std::string::npos) {
    if (Clock::now() > deadline || ::poll(&pf, 1, 1000) < 0) {
      break;
    }
    ssize_t n = ::read(p[0], buf, sizeof(buf));
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  size_t at = out.find("READY ");
  if (at == std::string::npos) {
    ADD_FAILURE() << "helper did not come up:\n" << out;
    return h;
  }
  std::istringstream in(out.substr(at + 6));
  pid_t a = 0;
  pid_t b = 0;
  in >> h.fp.run >> h.fp.dir >> a >> b;
  h.fp.pids = {a, b};
  return h;
}

int waitExit(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return st;
}

TEST_F(OvsHarnessTest, SigintTearsDown) {
  Helper helper = startHelper("ncsi");
  ASSERT_FALSE(helper.fp.run.empty());
  EXPECT_TRUE(fs::exists(helper.fp.dir));
  EXPECT_FALSE(leftovers(helper.fp).empty());
  const auto t0 = Clock::now();
  ::kill(helper.pid, SIGINT);
  int st = waitExit(helper.pid);
  std::cout << "helper exited " << msSince(t0) << " ms after SIGINT\n";
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT) << st;
  expectNothingLeft(helper.fp);  // no sweep involved
}

TEST_F(OvsHarnessTest, SigkillLeftoversAreSweptByNextRun) {
  Helper helper = startHelper("ncsk");
  ASSERT_FALSE(helper.fp.run.empty());
  ::kill(helper.pid, SIGKILL);
  int st = waitExit(helper.pid);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << st;
  // PR_SET_PDEATHSIG (kept across the exec of `ip netns exec` and of the daemon) stops the
  // daemons by itself; they were re-parented to init, which reaps them.
  const auto t0 = Clock::now();
  for (pid_t p : helper.fp.pids) {
    while (fs::exists("/proc/" + std::to_string(p) + "/cmdline") &&
           readFile("/proc/" + std::to_string(p) + "/cmdline").find(helper.fp.dir) !=
               std::string::npos &&
           Clock::now() - t0 < std::chrono::seconds(5)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  std::cout << "daemons gone " << msSince(t0) << " ms after the helper died\n";
  // Namespaces and the temp dir stay behind ...
  std::vector<std::string> left = leftovers(helper.fp);
  std::cout << "after SIGKILL:\n" << join(left);
  for (const auto& l : left) {
    EXPECT_EQ(l.find("process "), std::string::npos) << l;
  }
  EXPECT_TRUE(fs::exists(helper.fp.dir));
  EXPECT_NE(runCommand({"ip", "netns", "list"}).out.find(helper.fp.run + "sw"), std::string::npos);
  // ... until the next harness sweeps runs whose owner is dead.
  Footprint fp;
  {
    OvsHarness h(OvsHarnessOptions{.hosts = 1, .namePrefix = "ncsk"});
    fp = footprintOf(h);
  }
  expectNothingLeft(helper.fp);
  expectNothingLeft(fp);
}

}  // namespace
}  // namespace nc::test
