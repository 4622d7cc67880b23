#pragma once
// Test policy helpers shared by every test binary.
//
// NC_REQUIRE_TOOL(name): a test that needs an external program (ovs-vswitchd, tshark, softflowd,
// nfdump, ...) skips when it is missing on a developer machine, but FAILS when CI=true, so CI can
// never go green by skipping. NC_REQUIRE_ROOT() does the same for tests that need root (network
// namespaces).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nc::test {

// True when the environment says we run in CI (CI=true).
bool inCi();
// Full path of `name` found on PATH (plus /usr/sbin, /sbin), or empty.
std::string findTool(const std::string& name);
// The repository root (NC_SOURCE_DIR, set by CTest) and the build's bin/ directory.
std::filesystem::path sourceDir();
std::filesystem::path binDir();
// A fresh private directory under $TMPDIR, removed by the caller (or by TempDir below).
std::filesystem::path makeTempDir(const std::string& tag);

// Result of running a program to completion.
struct RunResult {
  int exit_code = -1;  // exit status, or 128+signal when killed
  std::string out;     // stdout
  std::string err;     // stderr
};
// Runs argv[0] (searched on PATH) with `input` on stdin; waits at most `timeout_s` seconds, then
// kills it (exit_code 128+9).
RunResult run(const std::vector<std::string>& argv, const std::string& input = "",
              int timeout_s = 60);

// A free TCP port on 127.0.0.1 (bound and released: a daemon or server binds it right after).
uint16_t freeTcpPort();
// GET http://127.0.0.1:port<path> (HTTP/1.1, Connection: close): the body, and the status in
// `status` when given; "" and status 0 when the connection or the answer fails. Waits at most 10 s.
std::string httpGet(uint16_t port, const std::string& path, int* status = nullptr);

// RAII temporary directory.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) : path_(makeTempDir(tag)) {}
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace nc::test

#define NC_SKIP_OR_FAIL(why)                                                 \
  do {                                                                       \
    if (::nc::test::inCi()) {                                                \
      GTEST_FAIL() << "required in CI (CI=true) but unavailable: " << (why); \
    } else {                                                                 \
      GTEST_SKIP() << "skipped (would fail under CI=true): " << (why);       \
    }                                                                        \
  } while (0)

#define NC_REQUIRE_TOOL(name)                                            \
  do {                                                                   \
    if (::nc::test::findTool(name).empty()) {                            \
      NC_SKIP_OR_FAIL(std::string("tool not found on PATH: ") + (name)); \
    }                                                                    \
  } while (0)

#define NC_REQUIRE_ROOT()                                      \
  do {                                                         \
    if (::geteuid() != 0) {                                    \
      NC_SKIP_OR_FAIL("needs root (network namespaces, OVS)"); \
    }                                                          \
  } while (0)
