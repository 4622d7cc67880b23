// The dashboard of a real net-collectord in a real headless browser: Debian's chromium driven by
// playwright-core (tests/browser/dashboard-check.mjs). Flows from `net-collector gen` fill a
// profile's channels and the store; the page must load without console errors, draw the graph,
// return exactly the rows of a filter with known matches, show a bad filter's error with its
// position, and zoom on a drag. The screenshot is kept in <build>/artifacts/dashboard.png.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/support/daemon.hpp"
#include "tests/support/support.hpp"

namespace nc {
namespace {

nlohmann::json getJson(uint16_t port, const std::string& path) {
  return nlohmann::json::parse(test::httpGet(port, path), nullptr, false);
}

std::string gen(uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> argv = {
      (test::binDir() / "net-collector").string(), "gen", "-f", "ipfix", "-t",
      fmt::format("127.0.0.1:{}", port),           "-q"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = test::run(argv, "", 60);
  return r.exit_code == 0 ? "" : r.err;
}

TEST(DashboardBrowser, HeadlessChromiumLoadsGraphsDrillsDownAndShowsFilterErrors) {
  NC_REQUIRE_TOOL("chromium");
  NC_REQUIRE_TOOL("node");
  const auto browser_dir = test::sourceDir() / "tests" / "browser";
  if (!std::filesystem::exists(browser_dir / "node_modules" / "playwright-core")) {
    NC_SKIP_OR_FAIL("tests/browser/node_modules missing: run scripts/setup (npm ci there)");
  }
  test::TempDir pdir("dash-profiles");
  const uint16_t http_port = test::freeTcpPort();
  test::DaemonProcess d(fmt::format(
      "http: {{enabled: true, listen: \"127.0.0.1:{}\"}}\n"
      "profiles:\n"
      "  path: {}\n"
      "  step: 5s\n"
      "  delay: 1s\n"
      "  declared:\n"
      "    - name: web\n"
      "      channels:\n"
      "        - {{name: https, filter: \"port 443\", colour: \"#1f77b4\"}}\n"
      "        - {{name: ssh, filter: \"port 22\", colour: \"#2ca02c\"}}\n"
      "        - {{name: dns, filter: \"port 53\", colour: \"#ff7f0e\", sign: \"-\"}}\n",
      http_port, pdir.path().string()));
  // Background traffic for the graph over a few steps, then 7 flows with a port nothing else
  // uses: the drill-down must find exactly those.
  ASSERT_EQ(gen(d.port(), {"--dst-ports", "443,53,22", "-r", "100", "-d", "12s"}), "");
  ASSERT_EQ(gen(d.port(), {"--dst-ports", "4242", "--proto", "tcp", "--flows", "7", "--records",
                           "7", "--seed", "7"}),
            "");
  // Wait until the store shows them and a step with data is written.
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    auto flows = getJson(http_port, "/api/flows?filter=dst%20port%204242&start=-10m&limit=100");
    auto series = getJson(http_port, "/api/series?profile=web&start=-10m");
    size_t known = 0;
    if (series.is_object() && series.contains("channels")) {
      for (const auto& c : series["channels"]) {
        known += c["stats"].value("known", size_t{0});
      }
    }
    ready = flows.is_object() && flows.contains("rows") && flows["rows"].size() == 7 && known > 0;
    if (!ready) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ASSERT_TRUE(ready) << d.log();

  const auto artifacts = test::binDir().parent_path() / "artifacts";
  std::filesystem::create_directories(artifacts);
  const auto shot = artifacts / "dashboard.png";
  std::filesystem::remove(shot);
  auto r = test::run(
      {"node", (browser_dir / "dashboard-check.mjs").string(),
       fmt::format("http://127.0.0.1:{}/", http_port), shot.string(), "--profile", "web",
       "--filter", "dst port 4242", "--expect-rows", "7", "--bad-filter", "dst port 4242 and"},
      "", 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << d.log();
  auto summary = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(summary.is_object()) << r.out << r.err;
  EXPECT_TRUE(summary.value("ok", false)) << summary.dump(2);
  for (const char* c : {"load", "graph", "drill", "bad", "zoom", "clean"}) {
    EXPECT_TRUE(summary["checks"][c].value("ok", false)) << c << ": " << summary.dump(2);
  }
  ASSERT_TRUE(std::filesystem::exists(shot));
  EXPECT_GT(std::filesystem::file_size(shot), 10'000u);
  std::cout << "screenshot: " << shot.string() << "\n";
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace nc
