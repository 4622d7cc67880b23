// `net-collector provision plan|apply|remove|status`: the OVSDB provisioning of the daemon, run
// once from the command line (plan/apply/remove read the daemon's config file) or asked from the
// running daemon (status).
#include "collector/cli/provision.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "collector/control/control.hpp"
#include "config/config.hpp"
#include "ovsctl/ovsctl.hpp"

namespace nc::cli {
namespace {

constexpr const char* kDefaultConfig = "/etc/net-collector/net-collector.yaml";

config::Config loadConfig(const std::string& given) {
  std::string path = given.empty() ? kDefaultConfig : given;
  auto res = config::loadFile(path);
  if (!res.ok()) {
    std::string all;
    for (const auto& e : res.errors) {
      all += e.toString() + "\n";
    }
    throw std::runtime_error(
        fmt::format("{}{} error(s) in {}: nothing was changed", all, res.errors.size(), path));
  }
  if (!res.config.ovsdb.enabled) {
    throw std::runtime_error(fmt::format("{}: ovsdb.enabled is false", path));
  }
  return res.config;
}

void printStatus(const nlohmann::json& s) {
  std::cout << fmt::format(
      "ovsdb:   {} — {}{}\n", s.value("endpoint", ""),
      s.value("state", std::string(s.value("enabled", true) ? "?" : "disabled")),
      s.value("last_error", std::string()).empty()
          ? ""
          : " (last error: " + s.value("last_error", std::string()) + ")");
  if (s.contains("owner")) {
    std::cout << fmt::format("owner:   {}; {} reconcile(s), {} transaction(s), {} conflict(s)\n",
                             s.value("owner", ""), s.value("reconciles", 0),
                             s.value("transactions", 0), s.value("conflicts", 0));
  }
  if (!s.contains("bridges")) {
    return;
  }
  for (const auto& b : s["bridges"]) {
    std::cout << fmt::format("bridge {}{}\n", b.value("name", ""),
                             b.value("rule", -1) < 0 ? " (no rule matches)" : "");
    if (!b.contains("protocols")) {
      continue;
    }
    for (const auto& [proto, p] : b["protocols"].items()) {
      std::string changes;
      if (p.contains("changes")) {
        for (const auto& c : p["changes"]) {
          changes += (changes.empty() ? "" : "; ") + c.get<std::string>();
        }
      }
      std::cout << fmt::format("  {:<10} {:<10} {}{}\n", proto, p.value("action", ""), changes,
                               p.value("note", std::string()).empty()
                                   ? ""
                                   : " (" + p.value("note", std::string()) + ")");
    }
  }
}

}  // namespace

void addProvisionCommand(CLI::App& app, std::string& config_path,
                         std::function<std::string()> socket, int& rc) {
  auto* prov = app.add_subcommand(
      "provision",
      "OVSDB provisioning of NetFlow/sFlow/IPFIX exports (plan, apply, remove, status)");
  prov->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  prov->add_flag("--json", *json, "JSON output");

  auto* plan = prov->add_subcommand(
      "plan", "print what would change, per bridge and protocol (old -> new); changes nothing");
  plan->callback([&config_path, &rc, json] {
    auto cfg = loadConfig(config_path);
    auto p =
        ovsctl::plan(cfg, ovsctl::targetFromListeners(cfg.collector), ovsctl::defaultOwnerId());
    std::cout << (*json ? ovsctl::toJson(p).dump(2) + "\n" : ovsctl::formatPlan(p));
    rc = p.ok() ? 0 : 1;
  });
  auto* apply = prov->add_subcommand("apply", "apply the plan once (the daemon keeps it applied)");
  apply->callback([&config_path, &rc, json] {
    auto cfg = loadConfig(config_path);
    auto r =
        ovsctl::apply(cfg, ovsctl::targetFromListeners(cfg.collector), ovsctl::defaultOwnerId());
    if (*json) {
      std::cout << ovsctl::toJson(r).dump(2) << "\n";
    } else {
      std::cout << ovsctl::formatPlan(r.plan);
      std::cout << (r.ok ? fmt::format("applied {} change(s)\n", r.changes)
                         : fmt::format("not applied: {}\n", r.error));
    }
    rc = r.ok ? 0 : 1;
  });
  auto* remove = prov->add_subcommand(
      "remove", "remove every export row this host's net-collector owns (others stay)");
  remove->callback([&config_path, &rc, json] {
    auto cfg = loadConfig(config_path);
    auto r = ovsctl::removeOwned(cfg.ovsdb, ovsctl::defaultOwnerId());
    if (*json) {
      std::cout << ovsctl::toJson(r).dump(2) << "\n";
    } else {
      std::cout << ovsctl::formatPlan(r.plan);
      std::cout << (r.ok ? fmt::format("removed {} row reference(s)\n", r.changes)
                         : fmt::format("not removed: {}\n", r.error));
    }
    rc = r.ok ? 0 : 1;
  });
  auto* status = prov->add_subcommand(
      "status", "the running daemon's view: connection, desired vs actual per bridge");
  status->callback([socket, &rc, json] {
    auto ans = control::request(socket(), {{"cmd", "provision"}});
    if (!ans.value("ok", false)) {
      throw std::runtime_error("daemon error: " + ans.value("error", std::string("?")));
    }
    if (*json) {
      std::cout << ans["result"].dump(2) << "\n";
    } else {
      printStatus(ans["result"]);
    }
    rc = 0;
  });
}

}  // namespace nc::cli
