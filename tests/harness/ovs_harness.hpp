#pragma once
// OvsHarness: a real, private Open vSwitch for integration tests.
//
// What it does. The constructor starts a private ovsdb-server and ovs-vswitchd (userspace `netdev`
// datapath, --disable-system, no kernel module) from a fresh temporary directory
// (<tmpRoot>/nc-ovs-<run>-XXXXXX: database, sockets, pidfiles, logs; OVS_RUNDIR, OVS_LOGDIR,
// OVS_DBDIR and OVS_SYSCONFDIR point there for every ovs-* command, nothing is written under /etc,
// /var or /run except the netns files `ip netns` keeps in /run/netns). It creates one bridge and N
// hosts; each host is a network namespace whose `eth0` is a veth joined to the bridge, with an
// IPv4 address <ipv4Prefix>.N/24, optionally an IPv6 address, a fixed MAC and TX checksum offload
// off (required for TCP/UDP through the userspace datapath). The destructor tears everything down.
// It stops there: no exporters, no flows, no collector; tests configure those with vsctl().
//
// Topology (the "switch namespace" design):
//
//   netns <run>sw (lo up)                       netns <run>h1           netns <run>h2
//   +------------------------------------+     +-------------+        +-------------+
//   | ovsdb-server, ovs-vswitchd          |     |             |        |             |
//   | taps: ovs-netdev, br0               |     |             |        |             |
//   | bridge br0 --+-- <run>p1 (veth) ----+-----+-- eth0      |        |             |
//   |              +-- <run>p2 (veth) ----+-----+-------------+--------+-- eth0      |
//   +------------------------------------+     +-------------+        +-------------+
//
// Why a switch namespace: the userspace datapath creates persistent tap devices in the network
// namespace it runs in, one of them with the fixed name `ovs-netdev`, so only one userspace OVS
// can run per network namespace and a killed vswitchd leaves taps behind. Running both daemons
// inside a private namespace makes the taps and the switch-side veths vanish with it and lets
// several harnesses (several test processes, or several in one process) run at once. Checked by
// hand on Debian 12 / OVS 3.1: ping and TCP both work this way. Exporters configured on the bridge
// (sFlow, NetFlow, IPFIX) send from the switch namespace, so "127.0.0.1" means that namespace's
// loopback: run a collector with `ip netns exec <switchNs()> ...`, or open its sockets there with
// openSocketInNetns()/runInSwitchNs(). The OVSDB unix socket is a file and works from anywhere.
//
// Names. Every namespace carries the run prefix <namePrefix><pid><letter> (e.g. "nc4242a"); the
// letter distinguishes harnesses of one process. Interface names stay within 15 characters.
//
// Lifetime and robustness.
//  * The daemons are direct children (no --detach) started as `ip netns exec <sw> <daemon> ...`
//    with PR_SET_PDEATHSIG=SIGTERM (kept across both execs), in their own process group, and
//    are reaped with waitpid. PDEATHSIG fires when the *thread* that constructed the harness
//    exits: construct and use a harness on a thread that outlives it (the test's main thread).
//  * Teardown (destructor or teardown()): `ovs-appctl exit --cleanup` for vswitchd, `exit` for
//    ovsdb-server, waitpid with a timeout then SIGKILL, delete host namespaces and the switch
//    namespace, remove the temporary directory unless NC_KEEP_OVS=1 (then a `KEEP` marker is
//    written, the path printed, and sweeps leave it alone). If bring-up failed or something
//    could not be cleaned, the directory is kept too (so the logs named in the exception can be
//    read) but without the marker: the next run's sweep removes it.
//  * SIGINT, SIGTERM and SIGHUP, and exit(), tear down every live harness of the process with
//    async-signal-safe calls only (kill, waitpid, umount2+unlink of /run/netns/*, fork+exec rm),
//    then the signal is re-raised with its previous disposition.
//  * Construction first sweeps leftovers of dead runs (owner pid no longer alive) with the same
//    namePrefix: their namespaces, their ovsdb-server/ovs-vswitchd processes (found by temp dir
//    in /proc/<pid>/cmdline) and their temp dirs (unless marked KEEP). So even a SIGKILLed test
//    is cleaned up by the next run. Caveat: a run whose pid was reused is swept only later.
//
// Errors throw std::runtime_error naming the failing command, its exit status, its stderr and
// the daemon log files.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace nc::test {

namespace detail {
struct EmergencyRecord;  // async-signal-safe cleanup record, see ovs_harness.cpp
}  // namespace detail

// Result of a finished command. `status` is the exit code, or 128+signal if it was killed (also
// on timeout, with timedOut set).
struct CommandResult {
  int status = -1;
  bool timedOut = false;
  std::string out;
  std::string err;
  bool ok() const { return status == 0 && !timedOut; }
};

// Runs argv[0] (looked up on PATH, /usr/sbin, /sbin) with extra environment entries
// ("NAME=value"), capturing stdout and stderr; kills it after `timeout`. Never throws for a
// non-zero exit; throws only if the program cannot be started.
CommandResult runCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& extraEnv = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Formats argv as a shell-like string for messages.
std::string formatArgv(const std::vector<std::string>& argv);

// Runs fn on a short-lived thread that has joined network namespace `netns` (a name from
// `ip netns list`) and returns its result; exceptions propagate. Sockets created inside fn keep
// that namespace after the thread ends.
void runInNetnsVoid(const std::string& netns, const std::function<void()>& fn);
template <typename F>
auto runInNetns(const std::string& netns, F&& fn) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<R>) {
    runInNetnsVoid(netns, std::function<void()>(std::forward<F>(fn)));
  } else {
    std::optional<R> result;
    runInNetnsVoid(netns, [&] { result.emplace(fn()); });
    return std::move(*result);
  }
}

// socket(domain, type, protocol) created inside network namespace `netns`; returns the fd
// (owned by the caller) or throws.
int openSocketInNetns(const std::string& netns, int domain, int type, int protocol = 0);

struct OvsHarnessOptions {
  int hosts = 2;                       // 1..64
  std::string namePrefix = "nc";       // run prefix = namePrefix + pid + letter
  std::string tmpRoot = "/tmp";        // temp dir = <tmpRoot>/nc-ovs-<run>-XXXXXX
  std::string bridge = "br0";          // bridge name (lives in the switch namespace)
  std::string ipv4Prefix = "10.77.0";  // host N gets <ipv4Prefix>.N/24
  bool ipv6 = false;                   // also give host N <ipv6Prefix>N/64 (nodad)
  std::string ipv6Prefix = "fd00:77::";
  int ofportBase = 100;  // host N gets ofport_request = ofportBase + N
  // Also listen on ptcp:<port>:127.0.0.1 (in the switch namespace). 0 = an ephemeral port,
  // discovered from the log.
  std::optional<uint16_t> ovsdbTcpPort = std::nullopt;
  std::chrono::milliseconds startTimeout = std::chrono::seconds(20);
  std::chrono::milliseconds stopTimeout = std::chrono::seconds(5);
};

struct OvsHost {
  std::string name;    // "h1"
  std::string netns;   // "<run>h1"
  std::string ifName;  // "eth0", inside netns
  std::string ipv4;    // "10.77.0.1"
  int prefixLen = 24;
  std::string ipv6;      // "fd00:77::1" or empty
  std::string mac;       // MAC of eth0, "02:00:0a:4d:00:01"
  std::string portName;  // OVS port/interface = switch-side veth, "<run>p1"
  int ofport = -1;       // Interface.ofport (= the requested one)
  int ifindex = -1;      // Interface.ifindex = ifindex of portName in the switch namespace
};

class OvsHarness {
 public:
  explicit OvsHarness(OvsHarnessOptions options = {});
  ~OvsHarness();
  OvsHarness(const OvsHarness&) = delete;
  OvsHarness& operator=(const OvsHarness&) = delete;

  // Stops the daemons and deletes namespaces and the temp dir. Idempotent; never throws (it
  // prints problems to stderr). Returns false if something could not be cleaned.
  bool teardown();

  const std::string& runPrefix() const { return run_; }
  const std::string& tempDir() const { return dir_; }
  const std::string& switchNs() const { return switchNs_; }
  const std::string& bridge() const { return options_.bridge; }
  const std::string& dbSocket() const { return dbSock_; }         // unix socket path
  std::string dbRemote() const { return "unix:" + dbSock_; }      // for --db=
  std::optional<uint16_t> dbTcpPort() const { return tcpPort_; }  // in the switch namespace
  std::string ovsdbLog() const { return dir_ + "/ovsdb-server.log"; }
  std::string vswitchdLog() const { return dir_ + "/ovs-vswitchd.log"; }
  pid_t ovsdbPid() const { return ovsdbPid_; }
  pid_t vswitchdPid() const { return vswitchdPid_; }
  // The OVS_*DIR=... entries every ovs-* command needs.
  std::vector<std::string> ovsEnv() const;

  const std::vector<OvsHost>& hosts() const { return hosts_; }
  const OvsHost& host(size_t i) const { return hosts_.at(i); }  // 0-based
  const OvsHost& host(const std::string& name) const;           // "h1"

  // ovs-vsctl --db=unix:<sock> --timeout=30 args...; returns stdout, throws on failure.
  std::string vsctl(const std::vector<std::string>& args) const;
  CommandResult tryVsctl(const std::vector<std::string>& args) const;
  // ovs-appctl -t <tempdir>/<target>.ctl args... (target "ovs-vswitchd" or "ovsdb-server").
  std::string appctl(const std::vector<std::string>& args,
                     const std::string& target = "ovs-vswitchd") const;
  // ip netns exec <host netns> argv...; the checked form throws on a non-zero exit.
  std::string runInHost(const OvsHost& host, const std::vector<std::string>& argv) const;
  CommandResult tryRunInHost(const OvsHost& host, const std::vector<std::string>& argv,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  // ip netns exec <switch netns> argv...
  CommandResult tryRunInSwitchNs(
      const std::vector<std::string>& argv,
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  template <typename F>
  auto runInSwitchNs(F&& fn) const {
    return runInNetns(switchNs_, std::forward<F>(fn));
  }
  template <typename F>
  auto runInHostNs(const OvsHost& host, F&& fn) const {
    return runInNetns(host.netns, std::forward<F>(fn));
  }

  // For reconnect tests. killOvsdb() SIGKILLs ovsdb-server (like a crash) and reaps it; the
  // database file stays and ovs-vswitchd keeps running (and retries by itself).
  // restartOvsdb() starts it again on the same database, Unix socket and TCP port (the one
  // discovered at start-up when ovsdbTcpPort was 0) and returns once the socket accepts.
  void killOvsdb();
  void restartOvsdb();

  // Human-readable summary (dir, logs, namespaces, hosts) for failure messages.
  std::string describe() const;
  // Last `lines` lines of both daemon logs.
  std::string logTail(size_t lines = 30) const;

 private:
  void bringUp();
  void startOvsdb();
  std::vector<std::string> ovsdbArgs(std::optional<uint16_t> tcpPort) const;
  void startVswitchd();
  void addHosts();
  void readPortInfo();
  pid_t spawnDaemon(const std::string& name, const std::vector<std::string>& args);
  void waitForPath(const std::string& path, pid_t child, const std::string& what, bool connect);
  std::string check(const std::vector<std::string>& argv, const CommandResult& r) const;
  std::string runChecked(const std::vector<std::string>& argv, bool ovs = false) const;
  bool stopDaemon(pid_t& pid, const std::string& name, const std::string& ctl,
                  const std::vector<std::string>& exitArgs);

  OvsHarnessOptions options_;
  std::string run_;
  std::string dir_;
  std::string switchNs_;
  std::string dbSock_;
  std::optional<uint16_t> tcpPort_;
  pid_t ovsdbPid_ = -1;
  pid_t vswitchdPid_ = -1;
  std::vector<OvsHost> hosts_;
  detail::EmergencyRecord* emergency_ = nullptr;
  bool tornDown_ = false;
  bool failed_ = false;  // bring-up failed: keep the temp dir (logs) for the next run's sweep
};

// Removes leftovers of dead runs with this name prefix (see header comment). Called by every
// OvsHarness constructor; exposed for tests. Returns a description of what was removed.
std::vector<std::string> sweepDeadOvsRuns(const std::string& namePrefix = "nc",
                                          const std::string& tmpRoot = "/tmp");

}  // namespace nc::test
