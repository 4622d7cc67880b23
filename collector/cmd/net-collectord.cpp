// net-collectord: the daemon. Parses the command line, loads the config, hands over to
// collector/daemon/. Everything else lives in the libraries.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "collector/daemon/daemon.hpp"
#include "common/log.hpp"
#include "common/version.hpp"
#include "config/config.hpp"

namespace {
constexpr const char* kDefaultConfig = "/etc/net-collector/net-collector.yaml";
}

int main(int argc, char** argv) {
  CLI::App app{
      "net-collectord: collects NetFlow v5/v9, IPFIX and sFlow v5, stores flows, and provisions "
      "Open vSwitch exports from one YAML file."};
  app.set_version_flag("--version",
                       fmt::format("net-collectord {} ({})", nc::kVersion, nc::kGitRevision));
  std::string config_path;
  bool check = false;
  bool dump = false;
  std::string level;
  app.add_option("-c,--config", config_path,
                 fmt::format("YAML config file (default: {} if it exists, else built-in defaults)",
                             kDefaultConfig));
  app.add_flag("--check-config", check,
               "validate the config, print every error as file:line:col: key.path: message, and "
               "exit (1 on errors)");
  app.add_flag("--dump-config", dump, "print the effective config (defaults filled in) and exit");
  app.add_option("--log-level", level, "debug | info | warning | error (overrides log.level)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, as for net-collector.
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (config_path.empty() && ::access(kDefaultConfig, F_OK) == 0) {
    config_path = kDefaultConfig;
  }
  nc::config::LoadResult res;
  if (!config_path.empty()) {
    res = nc::config::loadFile(config_path);
  }
  if (!level.empty()) {
    nc::log::Level l;
    if (!nc::log::parseLevel(level, l)) {
      std::cerr << "net-collectord: --log-level must be debug, info, warning or error\n";
      return 2;
    }
    res.config.log.level = level;
  }
  for (const auto& e : res.errors) {
    std::cerr << e.toString() << "\n";
  }
  if (!res.ok()) {
    std::cerr << fmt::format("net-collectord: {} error(s) in {}\n", res.errors.size(), config_path);
    return 1;
  }
  if (check) {
    std::cout << (config_path.empty() ? "(built-in defaults)" : config_path) << ": OK\n";
    return 0;
  }
  if (dump) {
    std::cout << nc::config::dump(res.config) << nc::daemon::runtimeProfilesComment(res.config);
    return 0;
  }
  try {
    return nc::daemon::run({config_path, std::move(res.config)});
  } catch (const std::exception& e) {
    nc::log::error("daemon", "{}", e.what());
    return 1;
  }
}
