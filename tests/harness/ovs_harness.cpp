#include "tests/harness/ovs_harness.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "tests/support/support.hpp"

extern char** environ;

namespace nc::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace detail {

// Everything a signal handler needs to tear a harness down, in fixed-size storage so that the
// handler neither allocates nor follows pointers into objects that may be half-destroyed.
// Records live in a static pool and are never freed.
constexpr int kMaxRecords = 64;
constexpr int kMaxNetns = 66;  // 64 hosts + switch + slack
constexpr size_t kPathLen = 256;

struct EmergencyRecord {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 live
  std::atomic<pid_t> owner{0};
  std::atomic<pid_t> pids[2] = {0, 0};  // ovs-vswitchd, ovsdb-server
  std::atomic<bool> keep{false};
  std::atomic<int> netnsCount{0};
  char netnsPath[kMaxNetns][kPathLen] = {};
  char dir[kPathLen] = {};
};

}  // namespace detail

namespace {

detail::EmergencyRecord g_records[detail::kMaxRecords];
constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_oldActions[kSignals.size()];
std::atomic<bool> g_installed[kSignals.size()] = {};
std::once_flag g_installOnce;
std::atomic<unsigned> g_instanceCounter{0};

void copyTo(char* dst, size_t n, const std::string& s) {
  if (s.size() + 1 > n) {
    throw std::runtime_error("ovs harness: path too long: " + s);
  }
  std::memcpy(dst, s.c_str(), s.size() + 1);
}

void sleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Async-signal-safe: stop one daemon (SIGTERM, up to ~1 s, then SIGKILL) and reap it if it is
// our child.
void emergencyStop(pid_t pid) {
  if (pid <= 0) {
    return;
  }
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      if (r < 0) {
        ::kill(pid, SIGKILL);  // not our child (should not happen): make sure it is gone
      }
      return;
    }
    sleepMs(10);
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

// Async-signal-safe teardown of every live harness of this process.
void emergencyCleanupAll() {
  const pid_t self = ::getpid();
  for (auto& rec : g_records) {
    if (rec.state.load() != 2 || rec.owner.load() != self) {
      continue;
    }
    for (auto& p : rec.pids) {
      emergencyStop(p.exchange(0));
    }
    const int n = rec.netnsCount.load();
    for (int i = n - 1; i >= 0; --i) {
      ::umount2(rec.netnsPath[i], MNT_DETACH);
      ::unlink(rec.netnsPath[i]);
    }
    if (rec.dir[0] != '\0') {
      if (rec.keep.load()) {
        static const char kMsg[] = "ovs harness: kept ";
        (void)!::write(2, kMsg, sizeof(kMsg) - 1);
        (void)!::write(2, rec.dir, ::strlen(rec.dir));
        (void)!::write(2, "\n", 1);
      } else {
        char rm[] = "/bin/rm";
        char rf[] = "-rf";
        char dd[] = "--";
        char* argv[] = {rm, rf, dd, rec.dir, nullptr};
        char* envp[] = {nullptr};
        pid_t c = ::fork();
        if (c == 0) {
          ::execve(argv[0], argv, envp);
          ::_exit(127);
        }
        if (c > 0) {
          int st = 0;
          while (::waitpid(c, &st, 0) < 0 && errno == EINTR) {
          }
        }
      }
    }
    rec.state.store(0);
  }
}

void onFatalSignal(int sig) {
  const int savedErrno = errno;
  emergencyCleanupAll();
  for (size_t i = 0; i < kSignals.size(); ++i) {
    if (kSignals[i] == sig) {
      ::sigaction(sig, &g_oldActions[i], nullptr);
    }
  }
  // `sig` is blocked while we run: it is delivered (with the old disposition) when we return.
  ::raise(sig);
  errno = savedErrno;
}

void installHandlersOnce() {
  std::call_once(g_installOnce, [] {
    for (size_t i = 0; i < kSignals.size(); ++i) {
      struct sigaction cur = {};
      ::sigaction(kSignals[i], nullptr, &cur);
      if (cur.sa_handler != SIG_DFL || (cur.sa_flags & SA_SIGINFO) != 0) {
        continue;  // ignored (e.g. nohup) or someone else's handler: leave it alone
      }
      struct sigaction sa = {};
      sa.sa_handler = onFatalSignal;
      sigfillset(&sa.sa_mask);
      ::sigaction(kSignals[i], &sa, &g_oldActions[i]);
      g_installed[i] = true;
    }
    std::atexit(emergencyCleanupAll);
  });
}

detail::EmergencyRecord* claimRecord() {
  for (auto& rec : g_records) {
    int expected = 0;
    if (rec.state.compare_exchange_strong(expected, 1)) {
      rec.owner = ::getpid();
      rec.pids[0] = 0;
      rec.pids[1] = 0;
      rec.keep = false;
      rec.netnsCount = 0;
      rec.dir[0] = '\0';
      return &rec;
    }
  }
  throw std::runtime_error("ovs harness: more than 64 live harnesses in one process");
}

std::string findProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return name;
  }
  return findTool(name);
}

// Environment = ours with `extra` ("NAME=value") entries replacing same-named ones.
std::vector<std::string> buildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool overridden = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      return x.compare(0, name.size() + 1, name + "=") == 0;
    });
    if (!overridden) {
      env.push_back(std::move(entry));
    }
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> cStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

// fork + execve with PR_SET_PDEATHSIG. Only async-signal-safe calls in the child.
pid_t forkExec(const std::vector<std::string>& argvIn, const std::vector<std::string>& extraEnv,
               int inFd, int outFd, int errFd, bool newProcessGroup) {
  std::string path = findProgram(argvIn.at(0));
  if (path.empty()) {
    throw std::runtime_error("ovs harness: program not found on PATH: " + argvIn[0]);
  }
  std::vector<std::string> argv = argvIn;
  std::vector<std::string> env = buildEnv(extraEnv);
  std::vector<char*> cargv = cStrings(argv);
  std::vector<char*> cenv = cStrings(env);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    throw std::system_error(errno, std::generic_category(), "fork");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    if (newProcessGroup) {
      ::setpgid(0, 0);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    ::dup2(inFd, 0);
    ::dup2(outFd, 1);
    ::dup2(errFd, 2);
    // Daemons must not keep inherited descriptors (e.g. a test runner's pipes) open.
    ::close_range(3, ~0U, 0);
    ::execve(path.c_str(), cargv.data(), cenv.data());
    ::_exit(127);
  }
  return pid;
}

int decodeStatus(int st) {
  if (WIFEXITED(st)) {
    return WEXITSTATUS(st);
  }
  if (WIFSIGNALED(st)) {
    return 128 + WTERMSIG(st);
  }
  return -1;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tailLines(const std::string& text, size_t lines) {
  size_t pos = text.size();
  size_t count = 0;
  while (pos > 0) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      return text;
    }
    if (nl + 1 < text.size() && ++count > lines) {
      return text.substr(nl + 1);
    }
    pos = nl;
  }
  return text;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

// True when `pid` exists and is not a zombie.
bool pidAlive(pid_t pid) {
  if (pid <= 0) {
    return false;
  }
  if (::kill(pid, 0) != 0 && errno != EPERM) {
    return false;
  }
  std::ifstream st("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(st, line)) {
    if (line.rfind("State:", 0) == 0) {
      return line.find('Z') == std::string::npos && line.find('X') == std::string::npos;
    }
  }
  return false;
}

// Parses "<prefix><digits><letter><rest>"; returns the pid and sets rest, or 0.
pid_t parseRunName(const std::string& name, const std::string& prefix, std::string* rest) {
  if (name.compare(0, prefix.size(), prefix) != 0) {
    return 0;
  }
  size_t i = prefix.size();
  size_t start = i;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) != 0) {
    ++i;
  }
  if (i == start || i - start > 9 || i >= name.size() || name[i] < 'a' || name[i] > 'z') {
    return 0;
  }
  *rest = name.substr(i + 1);
  return static_cast<pid_t>(std::stol(name.substr(start, i - start)));
}

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) {
    return out;
  }
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      out.push_back(n);
    }
  }
  ::closedir(d);
  return out;
}

std::string procCmdline(const std::string& pid) {
  std::string s = readFile("/proc/" + pid + "/cmdline");
  std::replace(s.begin(), s.end(), '\0', ' ');
  return s;
}

bool removeNetnsFile(const std::string& name) {
  std::string path = "/run/netns/" + name;
  ::umount2(path.c_str(), MNT_DETACH);
  return ::unlink(path.c_str()) == 0 || errno == ENOENT;
}

bool netnsExists(const std::string& name) {
  struct stat st = {};
  return ::stat(("/run/netns/" + name).c_str(), &st) == 0;
}

std::vector<int> parseIpv4Prefix(const std::string& p) {
  std::vector<int> parts;
  std::stringstream ss(p);
  std::string x;
  while (std::getline(ss, x, '.')) {
    if (x.empty() || x.size() > 3 || !std::all_of(x.begin(), x.end(), ::isdigit)) {
      return {};
    }
    parts.push_back(std::stoi(x));
    if (parts.back() > 255) {
      return {};
    }
  }
  return parts.size() == 3 ? parts : std::vector<int>{};
}

void writeSysctl(const std::string& netns,
                 const std::vector<std::pair<std::string, std::string>>& kv) {
  runInNetnsVoid(netns, [&] {
    for (const auto& [key, value] : kv) {
      std::string path = "/proc/sys/net/" + key;
      int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "open " + path + " in " + netns);
      }
      ssize_t n = ::write(fd, value.data(), value.size());
      int err = errno;
      ::close(fd);
      if (n != static_cast<ssize_t>(value.size())) {
        throw std::system_error(err, std::generic_category(), "write " + path + " in " + netns);
      }
    }
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Free helpers

std::string formatArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) {
      out += ' ';
    }
    bool plain = !a.empty() && a.find_first_of(" \t\"'\\$") == std::string::npos;
    out += plain ? a : "'" + a + "'";
  }
  return out;
}

CommandResult runCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& extraEnv,
                         std::chrono::milliseconds timeout) {
  int outPipe[2];
  int errPipe[2];
  if (::pipe2(outPipe, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  if (::pipe2(errPipe, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(outPipe[0]);
    ::close(outPipe[1]);
    throw std::system_error(e, std::generic_category(), "pipe2");
  }
  int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = -1;
  try {
    pid = forkExec(argv, extraEnv, devNull, outPipe[1], errPipe[1], false);
  } catch (...) {
    for (int fd : {outPipe[0], outPipe[1], errPipe[0], errPipe[1], devNull}) {
      ::close(fd);
    }
    throw;
  }
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  ::close(devNull);

  CommandResult r;
  const auto deadline = Clock::now() + timeout;
  struct pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {errPipe[0], POLLIN, 0}};
  std::string* bufs[2] = {&r.out, &r.err};
  int open = 2;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      r.timedOut = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) {
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[4096];
        ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
        if (got > 0) {
          bufs[i]->append(buf, static_cast<size_t>(got));
        } else if (got == 0 || errno != EINTR) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open;
        }
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) {
      ::close(f.fd);
    }
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.status = decodeStatus(st);
  return r;
}

void runInNetnsVoid(const std::string& netns, const std::function<void()>& fn) {
  const std::string path = "/run/netns/" + netns;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "open " + path);
  }
  std::exception_ptr error;
  std::thread t([&] {
    try {
      if (::setns(fd, CLONE_NEWNET) != 0) {
        throw std::system_error(errno, std::generic_category(), "setns " + path);
      }
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  t.join();
  ::close(fd);
  if (error) {
    std::rethrow_exception(error);
  }
}

int openSocketInNetns(const std::string& netns, int domain, int type, int protocol) {
  return runInNetns(netns, [&] {
    int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) {
      throw std::system_error(errno, std::generic_category(), "socket in netns " + netns);
    }
    return fd;
  });
}

std::vector<std::string> sweepDeadOvsRuns(const std::string& namePrefix,
                                          const std::string& tmpRoot) {
  std::vector<std::string> done;
  // 1. Temp dirs of dead runs: kill their daemons (matched by dir in the command line).
  const std::string dirPrefix = "nc-ovs-" + namePrefix;
  std::vector<std::string> deadDirs;
  for (const auto& n : listDir(tmpRoot)) {
    std::string rest;
    if (n.compare(0, 7, "nc-ovs-") != 0) {
      continue;
    }
    pid_t owner = parseRunName(n.substr(7), namePrefix, &rest);
    if (owner > 0 && !rest.empty() && rest[0] == '-' && !pidAlive(owner)) {
      deadDirs.push_back(tmpRoot + "/" + n);
    }
  }
  if (!deadDirs.empty()) {
    std::vector<pid_t> victims;
    for (const auto& p : listDir("/proc")) {
      if (!std::all_of(p.begin(), p.end(), ::isdigit)) {
        continue;
      }
      std::string cmd = procCmdline(p);
      for (const auto& d : deadDirs) {
        if (cmd.find(d + "/") != std::string::npos) {
          pid_t pid = static_cast<pid_t>(std::stol(p));
          ::kill(pid, SIGKILL);
          victims.push_back(pid);
          done.push_back("killed pid " + p + ": " + cmd);
          break;
        }
      }
    }
    const auto deadline = Clock::now() + std::chrono::seconds(3);
    for (pid_t v : victims) {
      while (pidAlive(v) && Clock::now() < deadline) {
        sleepMs(10);
      }
    }
  }
  // 2. Namespaces of dead runs.
  for (const auto& n : listDir("/run/netns")) {
    std::string rest;
    pid_t owner = parseRunName(n, namePrefix, &rest);
    bool ours = rest == "sw" || (rest.size() > 1 && rest[0] == 'h' &&
                                 std::all_of(rest.begin() + 1, rest.end(), ::isdigit));
    if (owner > 0 && ours && !pidAlive(owner)) {
      if (removeNetnsFile(n)) {
        done.push_back("deleted netns " + n);
      }
    }
  }
  // 3. The dirs themselves, unless kept for debugging.
  for (const auto& d : deadDirs) {
    if (fs::exists(d + "/KEEP")) {
      continue;
    }
    std::error_code ec;
    fs::remove_all(d, ec);
    done.push_back("removed " + d);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// OvsHarness

OvsHarness::OvsHarness(OvsHarnessOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.hosts < 1 || o.hosts > 64) {
    throw std::invalid_argument("ovs harness: hosts must be 1..64");
  }
  if (o.namePrefix.empty() || o.namePrefix.size() > 4 ||
      !std::all_of(o.namePrefix.begin(), o.namePrefix.end(), ::islower)) {
    throw std::invalid_argument("ovs harness: namePrefix must be 1-4 lowercase letters");
  }
  if (parseIpv4Prefix(o.ipv4Prefix).empty()) {
    throw std::invalid_argument("ovs harness: ipv4Prefix must look like 10.77.0");
  }
  installHandlersOnce();
  for (const auto& what : sweepDeadOvsRuns(o.namePrefix, o.tmpRoot)) {
    std::cerr << "ovs harness: swept leftover of a dead run: " << what << "\n";
  }

  const std::string base = o.namePrefix + std::to_string(::getpid());
  for (int i = 0; i < 26; ++i) {
    char letter = static_cast<char>('a' + (g_instanceCounter++ % 26));
    run_ = base + letter;
    if (!netnsExists(run_ + "sw")) {
      break;
    }
  }
  switchNs_ = run_ + "sw";

  std::string tmpl = o.tmpRoot + "/nc-ovs-" + run_ + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
  }
  dir_ = tmpl;
  dbSock_ = dir_ + "/db.sock";

  try {
    emergency_ = claimRecord();
    copyTo(emergency_->dir, sizeof(emergency_->dir), dir_);
    copyTo(emergency_->netnsPath[0], detail::kPathLen, "/run/netns/" + switchNs_);
    for (int i = 1; i <= o.hosts; ++i) {
      copyTo(emergency_->netnsPath[i], detail::kPathLen,
             "/run/netns/" + run_ + "h" + std::to_string(i));
    }
    emergency_->netnsCount = o.hosts + 1;
    const char* keep = std::getenv("NC_KEEP_OVS");
    emergency_->keep = keep != nullptr && std::string(keep) == "1";
    emergency_->state = 2;
    bringUp();
  } catch (...) {
    failed_ = true;
    teardown();
    throw;
  }
}

OvsHarness::~OvsHarness() {
  teardown();
}

std::vector<std::string> OvsHarness::ovsEnv() const {
  return {"OVS_RUNDIR=" + dir_, "OVS_LOGDIR=" + dir_, "OVS_DBDIR=" + dir_,
          "OVS_SYSCONFDIR=" + dir_};
}

std::string OvsHarness::check(const std::vector<std::string>& argv, const CommandResult& r) const {
  if (r.ok()) {
    return r.out;
  }
  std::ostringstream msg;
  msg << "ovs harness: command failed: " << formatArgv(argv) << "\n  "
      << (r.timedOut ? "timed out" : "exit status " + std::to_string(r.status))
      << "\n  stderr: " << trim(r.err) << "\n  logs: " << ovsdbLog() << " " << vswitchdLog() << "\n"
      << logTail(10);
  throw std::runtime_error(msg.str());
}

std::string OvsHarness::runChecked(const std::vector<std::string>& argv, bool ovs) const {
  return check(argv, runCommand(argv, ovs ? ovsEnv() : std::vector<std::string>{}));
}

void OvsHarness::bringUp() {
  runChecked({"ip", "netns", "add", switchNs_});
  runChecked({"ip", "-n", switchNs_, "link", "set", "lo", "up"});
  // No IPv6 autoconfiguration noise from the switch-side veths.
  writeSysctl(switchNs_, {{"ipv6/conf/default/disable_ipv6", "1"}});
  startOvsdb();
  startVswitchd();
  addHosts();
  readPortInfo();
}

pid_t OvsHarness::spawnDaemon(const std::string& name, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip", "netns", "exec", switchNs_, findProgram(name)};
  if (argv.back().empty()) {
    throw std::runtime_error("ovs harness: program not found on PATH: " + name);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string outPath = dir_ + "/" + name + ".out";
  int out = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int devNull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || devNull < 0) {
    throw std::system_error(errno, std::generic_category(), "open " + outPath);
  }
  pid_t pid = -1;
  try {
    pid = forkExec(argv, ovsEnv(), devNull, out, out, true);
  } catch (...) {
    ::close(out);
    ::close(devNull);
    throw;
  }
  ::close(out);
  ::close(devNull);
  return pid;
}

void OvsHarness::waitForPath(const std::string& path, pid_t child, const std::string& what,
                             bool connectIt) {
  const auto deadline = Clock::now() + options_.startTimeout;
  while (true) {
    int st = 0;
    if (::waitpid(child, &st, WNOHANG) == child) {
      if (child == ovsdbPid_) {
        ovsdbPid_ = -1;
        emergency_->pids[1] = 0;
      } else {
        vswitchdPid_ = -1;
        emergency_->pids[0] = 0;
      }
      throw std::runtime_error("ovs harness: " + what + " exited during start-up (status " +
                               std::to_string(decodeStatus(st)) + "), see " + dir_ + "/" + what +
                               ".out and " + dir_ + "/" + what + ".log\n" + logTail(15) +
                               readFile(dir_ + "/" + what + ".out"));
    }
    if (connectIt) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      struct sockaddr_un addr = {};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
      int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      ::close(fd);
      if (rc == 0) {
        return;
      }
    } else if (fs::exists(path)) {
      return;
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error("ovs harness: " + what + " not ready (" + path + ") after " +
                               std::to_string(options_.startTimeout.count()) + " ms\n" +
                               logTail(15));
    }
    sleepMs(5);
  }
}

std::vector<std::string> OvsHarness::ovsdbArgs(std::optional<uint16_t> tcpPort) const {
  std::vector<std::string> args = {dir_ + "/conf.db",
                                   "--remote=punix:" + dbSock_,
                                   "--pidfile=" + dir_ + "/ovsdb-server.pid",
                                   "--log-file=" + ovsdbLog(),
                                   "--unixctl=" + dir_ + "/ovsdb-server.ctl",
                                   "--no-chdir",
                                   "-vconsole:off"};
  if (tcpPort) {
    args.push_back("--remote=ptcp:" + std::to_string(*tcpPort) + ":127.0.0.1");
  }
  return args;
}

void OvsHarness::killOvsdb() {
  if (ovsdbPid_ <= 0) {
    return;
  }
  ::kill(ovsdbPid_, SIGKILL);
  int st = 0;
  while (::waitpid(ovsdbPid_, &st, 0) < 0 && errno == EINTR) {
  }
  ovsdbPid_ = -1;
  if (emergency_ != nullptr) {
    emergency_->pids[1] = 0;
  }
}

void OvsHarness::restartOvsdb() {
  if (ovsdbPid_ > 0) {
    throw std::runtime_error("ovs harness: restartOvsdb: ovsdb-server is still running");
  }
  ::unlink(dbSock_.c_str());  // left behind by the killed server
  ovsdbPid_ = spawnDaemon("ovsdb-server", ovsdbArgs(tcpPort_));
  emergency_->pids[1] = ovsdbPid_;
  waitForPath(dbSock_, ovsdbPid_, "ovsdb-server", true);
}

void OvsHarness::startOvsdb() {
  runChecked(
      {"ovsdb-tool", "create", dir_ + "/conf.db", "/usr/share/openvswitch/vswitch.ovsschema"},
      true);
  ovsdbPid_ = spawnDaemon("ovsdb-server", ovsdbArgs(options_.ovsdbTcpPort));
  emergency_->pids[1] = ovsdbPid_;
  waitForPath(dbSock_, ovsdbPid_, "ovsdb-server", true);
  if (options_.ovsdbTcpPort) {
    tcpPort_ = *options_.ovsdbTcpPort;
    if (*tcpPort_ == 0) {
      // "ptcp:0:127.0.0.1: listening on port 41095" (OVS's PARSE_LISTENING_PORT).
      const auto deadline = Clock::now() + options_.startTimeout;
      tcpPort_.reset();
      while (!tcpPort_ && Clock::now() < deadline) {
        std::string log = readFile(ovsdbLog());
        size_t pos = log.find("listening on port ");
        if (pos != std::string::npos) {
          tcpPort_ = static_cast<uint16_t>(std::stoi(log.substr(pos + 18)));
        } else {
          sleepMs(5);
        }
      }
      if (!tcpPort_) {
        throw std::runtime_error("ovs harness: no 'listening on port' in " + ovsdbLog());
      }
    }
  }
  vsctl({"--no-wait", "init"});
}

void OvsHarness::startVswitchd() {
  vswitchdPid_ = spawnDaemon(
      "ovs-vswitchd", {"unix:" + dbSock_, "--disable-system",
                       "--pidfile=" + dir_ + "/ovs-vswitchd.pid", "--log-file=" + vswitchdLog(),
                       "--unixctl=" + dir_ + "/ovs-vswitchd.ctl", "--no-chdir", "-vconsole:off"});
  emergency_->pids[0] = vswitchdPid_;
  waitForPath(dir_ + "/ovs-vswitchd.ctl", vswitchdPid_, "ovs-vswitchd", true);
  // Without --no-wait, ovs-vsctl returns once vswitchd has applied the change: our barrier.
  vsctl(
      {"add-br", options_.bridge, "--", "set", "Bridge", options_.bridge, "datapath_type=netdev"});
}

void OvsHarness::addHosts() {
  const auto& o = options_;
  const std::vector<int> v4 = parseIpv4Prefix(o.ipv4Prefix);
  std::vector<std::string> addPorts;
  std::ostringstream swBatch;
  for (int i = 1; i <= o.hosts; ++i) {
    OvsHost h;
    h.name = "h" + std::to_string(i);
    h.netns = run_ + h.name;
    h.ifName = "eth0";
    h.ipv4 = o.ipv4Prefix + "." + std::to_string(i);
    if (o.ipv6) {
      h.ipv6 = o.ipv6Prefix + std::to_string(i);
    }
    char mac[32];
    std::snprintf(mac, sizeof(mac), "02:00:%02x:%02x:%02x:%02x", v4[0], v4[1], v4[2], i);
    h.mac = mac;
    h.portName = run_ + "p" + std::to_string(i);
    if (h.portName.size() > 15) {
      throw std::invalid_argument("ovs harness: interface name too long: " + h.portName);
    }
    runChecked({"ip", "netns", "add", h.netns});
    // eth0 is created directly in the host namespace and takes its "default" settings.
    if (o.ipv6) {
      writeSysctl(h.netns, {{"ipv6/conf/default/accept_dad", "0"},
                            {"ipv6/conf/default/accept_ra", "0"},
                            {"ipv6/conf/default/router_solicitations", "0"}});
    } else {
      writeSysctl(h.netns, {{"ipv6/conf/default/disable_ipv6", "1"}});
    }
    runChecked({"ip", "-n", switchNs_, "link", "add", h.portName, "type", "veth", "peer", "name",
                h.ifName, "netns", h.netns});
    std::ostringstream batch;
    batch << "link set " << h.ifName << " address " << h.mac << "\n"
          << "addr add " << h.ipv4 << "/" << h.prefixLen << " dev " << h.ifName << "\n";
    if (o.ipv6) {
      batch << "addr add " << h.ipv6 << "/64 dev " << h.ifName << " nodad\n";
    }
    batch << "link set lo up\n"
          << "link set " << h.ifName << " up\n";
    const std::string batchFile = dir_ + "/" + h.name + ".ip";
    std::ofstream(batchFile) << batch.str();
    runChecked({"ip", "-n", h.netns, "-batch", batchFile});
    // TX checksum offload off: required for TCP/UDP through the userspace datapath.
    runChecked({"ip", "netns", "exec", h.netns, "ethtool", "-K", h.ifName, "tx", "off"});
    swBatch << "link set " << h.portName << " up\n";
    h.ofport = o.ofportBase + i;
    addPorts.insert(addPorts.end(),
                    {"--", "add-port", o.bridge, h.portName, "--", "set", "Interface", h.portName,
                     "ofport_request=" + std::to_string(h.ofport)});
    hosts_.push_back(std::move(h));
  }
  const std::string swFile = dir_ + "/switch.ip";
  std::ofstream(swFile) << swBatch.str();
  runChecked({"ip", "-n", switchNs_, "-batch", swFile});
  vsctl(addPorts);
}

void OvsHarness::readPortInfo() {
  const auto deadline = Clock::now() + options_.startTimeout;
  for (auto& h : hosts_) {
    const int requested = h.ofport;
    while (true) {
      std::istringstream in(vsctl({"get", "Interface", h.portName, "ofport", "ifindex"}));
      int ofport = -1;
      int ifindex = -1;
      in >> ofport >> ifindex;
      if (ofport == requested && ifindex > 0) {
        h.ifindex = ifindex;
        break;
      }
      if (Clock::now() > deadline) {
        throw std::runtime_error(
            "ovs harness: port " + h.portName + " got ofport " + std::to_string(ofport) +
            " (requested " + std::to_string(requested) + "), ifindex " + std::to_string(ifindex) +
            "; error column: " + trim(tryVsctl({"get", "Interface", h.portName, "error"}).out) +
            "\n" + logTail(10));
      }
      sleepMs(10);
    }
  }
}

CommandResult OvsHarness::tryVsctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"ovs-vsctl", "--db=unix:" + dbSock_, "--timeout=30"};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, ovsEnv(), std::chrono::seconds(40));
}

std::string OvsHarness::vsctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"ovs-vsctl", "--db=unix:" + dbSock_, "--timeout=30"};
  argv.insert(argv.end(), args.begin(), args.end());
  return check(argv, runCommand(argv, ovsEnv(), std::chrono::seconds(40)));
}

std::string OvsHarness::appctl(const std::vector<std::string>& args,
                               const std::string& target) const {
  std::vector<std::string> argv = {"ovs-appctl", "-t", dir_ + "/" + target + ".ctl",
                                   "--timeout=30"};
  argv.insert(argv.end(), args.begin(), args.end());
  return check(argv, runCommand(argv, ovsEnv(), std::chrono::seconds(40)));
}

CommandResult OvsHarness::tryRunInHost(const OvsHost& host, const std::vector<std::string>& argv,
                                       std::chrono::milliseconds timeout) const {
  std::vector<std::string> full = {"ip", "netns", "exec", host.netns};
  full.insert(full.end(), argv.begin(), argv.end());
  return runCommand(full, {}, timeout);
}

std::string OvsHarness::runInHost(const OvsHost& host, const std::vector<std::string>& argv) const {
  std::vector<std::string> full = {"ip", "netns", "exec", host.netns};
  full.insert(full.end(), argv.begin(), argv.end());
  return check(full, runCommand(full));
}

CommandResult OvsHarness::tryRunInSwitchNs(const std::vector<std::string>& argv,
                                           std::chrono::milliseconds timeout) const {
  std::vector<std::string> full = {"ip", "netns", "exec", switchNs_};
  full.insert(full.end(), argv.begin(), argv.end());
  return runCommand(full, ovsEnv(), timeout);
}

const OvsHost& OvsHarness::host(const std::string& name) const {
  for (const auto& h : hosts_) {
    if (h.name == name || h.netns == name) {
      return h;
    }
  }
  throw std::out_of_range("ovs harness: no host " + name);
}

std::string OvsHarness::logTail(size_t lines) const {
  std::ostringstream out;
  for (const auto& log : {ovsdbLog(), vswitchdLog()}) {
    if (fs::exists(log)) {
      out << "---- " << log << " (tail)\n" << tailLines(readFile(log), lines);
    }
  }
  return out.str();
}

std::string OvsHarness::describe() const {
  std::ostringstream out;
  out << "ovs harness " << run_ << ": dir " << dir_ << ", switch netns " << switchNs_
      << ", db unix:" << dbSock_ << ", bridge " << options_.bridge << ", logs " << ovsdbLog() << " "
      << vswitchdLog() << "\n";
  for (const auto& h : hosts_) {
    out << "  " << h.name << ": netns " << h.netns << " " << h.ifName << " " << h.ipv4 << "/"
        << h.prefixLen << (h.ipv6.empty() ? "" : " " + h.ipv6) << " " << h.mac << " port "
        << h.portName << " ofport " << h.ofport << " ifindex " << h.ifindex << "\n";
  }
  return out.str();
}

bool OvsHarness::stopDaemon(pid_t& pid, const std::string& name, const std::string& ctl,
                            const std::vector<std::string>& exitArgs) {
  if (pid <= 0) {
    return true;
  }
  std::vector<std::string> argv = {"ovs-appctl", "-t", ctl, "--timeout=5"};
  argv.insert(argv.end(), exitArgs.begin(), exitArgs.end());
  if (fs::exists(ctl)) {
    runCommand(argv, ovsEnv(), std::chrono::seconds(6));
  }
  const auto deadline = Clock::now() + options_.stopTimeout;
  int st = 0;
  pid_t r = 0;
  while ((r = ::waitpid(pid, &st, WNOHANG)) == 0 && Clock::now() < deadline) {
    sleepMs(5);
  }
  bool ok = true;
  if (r == 0) {
    std::cerr << "ovs harness: " << name << " (pid " << pid << ") did not exit within "
              << options_.stopTimeout.count() << " ms, sending SIGKILL; see " << dir_ << "\n";
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    ok = false;
  }
  pid = -1;
  return ok;
}

bool OvsHarness::teardown() {
  if (tornDown_) {
    return true;
  }
  tornDown_ = true;
  bool ok = true;
  ok &= stopDaemon(vswitchdPid_, "ovs-vswitchd", dir_ + "/ovs-vswitchd.ctl", {"exit", "--cleanup"});
  if (emergency_ != nullptr) {
    emergency_->pids[0] = 0;
  }
  ok &= stopDaemon(ovsdbPid_, "ovsdb-server", dir_ + "/ovsdb-server.ctl", {"exit"});
  if (emergency_ != nullptr) {
    emergency_->pids[1] = 0;
  }
  std::vector<std::string> namespaces;
  for (int i = options_.hosts; i >= 1; --i) {
    namespaces.push_back(run_ + "h" + std::to_string(i));
  }
  namespaces.push_back(switchNs_);
  for (const auto& ns : namespaces) {
    if (run_.empty() || !netnsExists(ns)) {
      continue;
    }
    CommandResult r = runCommand({"ip", "netns", "del", ns}, {}, std::chrono::seconds(10));
    if (!r.ok() && !removeNetnsFile(ns)) {
      std::cerr << "ovs harness: could not delete netns " << ns << ": " << r.err << "\n";
      ok = false;
    }
  }
  const bool keep = emergency_ != nullptr && emergency_->keep.load();
  if (!dir_.empty()) {
    if (keep || !ok || failed_) {
      if (keep) {
        std::ofstream(dir_ + "/KEEP") << "kept for debugging (NC_KEEP_OVS=1)\n";
      }
      std::cerr << "ovs harness: kept " << dir_ << " (logs " << ovsdbLog() << ", " << vswitchdLog()
                << ")" << (keep ? "" : "; the next run's sweep removes it") << "\n";
    } else {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      if (ec) {
        std::cerr << "ovs harness: could not remove " << dir_ << ": " << ec.message() << "\n";
        ok = false;
      }
    }
  }
  if (emergency_ != nullptr) {
    emergency_->state = 0;
    emergency_ = nullptr;
  }
  return ok;
}

}  // namespace nc::test
