#pragma once
// Runs a real net-collectord (build/bin) for a test: private directory, listeners on 127.0.0.1
// port 0, its own control socket; stops it with SIGTERM and checks it exited cleanly.
#include <sys/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collector/record/flow_record.hpp"
#include "tests/support/support.hpp"

namespace nc::test {

class DaemonProcess {
 public:
  // `extra_yaml` is appended to a config that sets collector.listen (127.0.0.1:0), store.path,
  // ovsdb.enabled=false and control.socket inside a fresh temp dir ("$DIR" in it is that dir; a
  // `store:` or `ovsdb:` section in it replaces the default one). `prefix` runs the daemon under
  // another program, e.g. {"ip", "netns", "exec", "ns"}.
  explicit DaemonProcess(const std::string& extra_yaml = "",
                         const std::vector<std::string>& prefix = {},
                         const std::string& listen_yaml = "collector: {listen: [\"127.0.0.1:0\"]}");
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string socket() const { return (dir_.path() / "control.sock").string(); }
  // The first listener's bound port.
  uint16_t port();
  // `net-collector status --json` as JSON.
  nlohmann::json status();
  // `net-collector interfaces --json`: one object per interface the daemon knows.
  std::vector<nlohmann::json> interfaces();
  // The newest `limit` flows the daemon decoded (`flows --live --format json`).
  std::vector<FlowRecord> flows(size_t limit = 100000);
  // Waits until the daemon has decoded at least `records` records or `timeout_s` pass; returns
  // the count seen.
  uint64_t waitRecords(uint64_t records, int timeout_s = 10);
  // SIGTERM and wait; returns the exit status (0 = clean).
  int stop();
  std::string log() const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = -1;
};

}  // namespace nc::test
