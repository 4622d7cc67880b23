#include "tests/support/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "collector/record/fields.hpp"

namespace nc::test {

DaemonProcess::DaemonProcess(const std::string& extra_yaml, const std::vector<std::string>& prefix,
                             const std::string& listen_yaml)
    : dir_("daemon") {
  auto cfg = dir_.path() / "net-collector.yaml";
  // "$DIR" in extra_yaml stands for the daemon's private directory; a `store:` or `ovsdb:` section
  // there replaces the default one.
  std::string extra = extra_yaml;
  for (size_t at = extra.find("$DIR"); at != std::string::npos; at = extra.find("$DIR", at)) {
    extra.replace(at, 4, dir_.path().string());
  }
  std::ofstream(cfg) << listen_yaml << "\n"
                     << (extra.find("store:") == std::string::npos
                             ? "store: {path: " + (dir_.path() / "flows").string() + "}\n"
                             : "")
                     << (extra.find("ovsdb:") == std::string::npos ? "ovsdb: {enabled: false}\n"
                                                                   : "")
                     << "control: {socket: " << socket() << "}\n"
                     << extra << "\n";
  std::vector<std::string> argv = prefix;
  argv.push_back((binDir() / "net-collectord").string());
  argv.push_back("--config");
  argv.push_back(cfg.string());
  auto errlog = dir_.path() / "stderr.log";
  pid_ = ::fork();
  if (pid_ < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    int fd = ::open(errlog.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (std::filesystem::exists(socket())) {
      return;
    }
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("net-collectord exited at start:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  throw std::runtime_error("net-collectord did not open its control socket:\n" + log());
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

nlohmann::json DaemonProcess::status() {
  auto r = run({(binDir() / "net-collector").string(), "--socket", socket(), "status", "--json"});
  if (r.exit_code != 0) {
    throw std::runtime_error("status failed: " + r.err);
  }
  return nlohmann::json::parse(r.out);
}

std::vector<nlohmann::json> DaemonProcess::interfaces() {
  auto r =
      run({(binDir() / "net-collector").string(), "--socket", socket(), "interfaces", "--json"});
  if (r.exit_code != 0) {
    throw std::runtime_error("interfaces failed: " + r.err);
  }
  std::vector<nlohmann::json> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      out.push_back(nlohmann::json::parse(line));
    }
  }
  return out;
}

uint16_t DaemonProcess::port() {
  if (port_ < 0) {
    port_ = status()["listen"][0]["port"].get<int>();
  }
  return static_cast<uint16_t>(port_);
}

std::vector<FlowRecord> DaemonProcess::flows(size_t limit) {
  auto r = run({(binDir() / "net-collector").string(), "--socket", socket(), "flows", "--live",
                "-n", std::to_string(limit), "--format", "json"});
  if (r.exit_code != 0) {
    throw std::runtime_error("flows failed: " + r.err);
  }
  std::vector<FlowRecord> out;
  std::stringstream ss(r.out);
  std::string line;
  while (std::getline(ss, line)) {
    FlowRecord f;
    std::string why;
    if (!fromJson(nlohmann::json::parse(line), f, &why)) {
      throw std::runtime_error("bad flow line: " + why);
    }
    out.push_back(f);
  }
  return out;
}

uint64_t DaemonProcess::waitRecords(uint64_t records, int timeout_s) {
  uint64_t seen = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    seen = status()["ingest"]["records"].get<uint64_t>();
    if (seen >= records) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return seen;
}

int DaemonProcess::stop() {
  if (pid_ <= 0) {
    return -1;
  }
  ::kill(pid_, SIGTERM);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::string DaemonProcess::log() const {
  std::ifstream in(dir_.path() / "stderr.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace nc::test
