#include "collector/cli/correlation.hpp"

#include "common/clock.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>

#include "collector/cli/output.hpp"
#include "collector/control/control.hpp"
#include "collector/events/events.hpp"
#include "collector/query/query.hpp"
#include "collector/record/fields.hpp"
#include "common/units.hpp"
#include "config/config.hpp"

namespace nc::cli {
namespace {

std::string rate(const nlohmann::json& j, const char* key, const char* unit) {
  if (!j.is_object() || !j.contains(key)) {
    return "-";
  }
  return units::formatCount(j.value(key, 0.0)) + unit;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return "-";
  }
  return it->is_string() ? it->get<std::string>() : it->dump();
}

int cmdPorts(const std::string& sock, bool json) {
  auto ans = control::request(sock, {{"cmd", "ports"}});
  if (!ans.value("ok", false)) {
    std::cerr << "net-collector: daemon error: " << ans.value("error", "?") << "\n";
    return 1;
  }
  if (json) {
    for (const auto& p : ans["result"]) {
      std::cout << p.dump() << "\n";
    }
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : ans["result"]) {
    // Rates from the flows when the correlator has them, else from sFlow counters.
    const nlohmann::json& r = p["rates_flows"].is_object() ? p["rates_flows"] : p["rates_sflow"];
    rows.push_back({str(p, "bridge"), str(p, "port"), str(p, "interface"), str(p, "ofport"),
                    str(p, "ifindex"), str(p, "mac"), str(p, "vm"), str(p, "operstate"),
                    rate(r, "in_bps", "b/s"), rate(r, "in_pps", "p/s"), rate(r, "out_bps", "b/s"),
                    rate(r, "out_pps", "p/s")});
  }
  if (rows.empty()) {
    std::cout << "no Open vSwitch ports known (is ovsdb reachable? see `net-collector status`)\n";
    return 0;
  }
  printTable(std::cout,
             {"bridge", "port", "interface", "ofport", "ifindex", "mac", "vm", "operstate",
              "in_bps", "in_pps", "out_bps", "out_pps"},
             rows, {false, false, false, true, true, false, false, false, true, true, true, true});
  std::cout << "\n(in = traffic entering the switch through the port; rates from the flows of the "
               "last step, else from sFlow counters)\n";
  return 0;
}

struct EventsArgs {
  std::string since;
  std::string until;
  std::string port;
  std::string vm;
  std::string dir;
  size_t limit = 0;
  bool json = false;
  bool follow = false;
};

void printEvent(const events::Event& e, bool json) {
  if (json) {
    std::cout << events::toJson(e).dump() << "\n";
  } else {
    std::cout << formatTime(e.start_ns) << "  " << events::formatLine(e, e.end_ns.has_value())
              << "\n";
  }
}

std::string eventDir(const std::string& config_path, const std::string& dir) {
  if (!dir.empty()) {
    return dir;
  }
  std::string path = config_path.empty() ? "/etc/net-collector/net-collector.yaml" : config_path;
  auto res = config::loadFile(path);
  if (!res.ok()) {
    throw std::runtime_error(res.errors.front().toString());
  }
  return res.config.store.path + "/events";
}

int cmdEvents(const std::string& config_path, const std::function<std::string()>& socket,
              const EventsArgs& a) {
  const uint64_t now = unixNowNs();
  nlohmann::json req = {{"cmd", "events"}};
  events::Query q;
  std::string why;
  if (!a.since.empty()) {
    if (!query::parseTimeSpec(a.since, now, q.since_ns, &why)) {
      std::cerr << "net-collector: --since: " << why << "\n";
      return 2;
    }
    req["since"] = q.since_ns;
  }
  if (!a.until.empty()) {
    if (!query::parseTimeSpec(a.until, now, q.until_ns, &why)) {
      std::cerr << "net-collector: --until: " << why << "\n";
      return 2;
    }
    req["until"] = q.until_ns;
  }
  q.port = a.port;
  q.vm = a.vm;
  q.limit = a.limit;
  if (!a.port.empty()) {
    req["port"] = a.port;
  }
  if (!a.vm.empty()) {
    req["vm"] = a.vm;
  }
  if (a.limit != 0) {
    req["limit"] = a.limit;
  }
  std::vector<events::Event> list;
  bool from_daemon = false;
  if (a.dir.empty()) {
    try {
      auto ans = control::request(socket(), req);
      if (!ans.value("ok", false)) {
        std::cerr << "net-collector: daemon error: " << ans.value("error", "?") << "\n";
        return 1;
      }
      for (const auto& j : ans["result"]) {
        events::Event e;
        if (events::fromJson(j, e, &why)) {
          list.push_back(std::move(e));
        }
      }
      from_daemon = true;
    } catch (const std::exception& e) {
      if (a.follow) {
        throw;
      }
      // The daemon is not running: read its event log from disk.
    }
  }
  if (!from_daemon) {
    list = events::queryDir(eventDir(config_path, a.dir), q);
  }
  for (const auto& e : list) {
    printEvent(e, a.json);
  }
  if (!a.follow) {
    if (list.empty() && !a.json) {
      std::cerr << "no events\n";
    }
    return 0;
  }
  std::cout.flush();
  nlohmann::json sub = {{"cmd", "events.follow"}};
  if (!a.port.empty()) {
    sub["port"] = a.port;
  }
  if (!a.vm.empty()) {
    sub["vm"] = a.vm;
  }
  int rc = 0;
  control::subscribe(socket(), sub, [&](const nlohmann::json& m) {
    if (!m.value("ok", false)) {
      std::cerr << "net-collector: daemon error: " << m.value("error", "?") << "\n";
      rc = 1;
      return false;
    }
    events::Event e;
    if (events::fromJson(m["event"], e, &why)) {
      if (a.json) {
        nlohmann::json j = events::toJson(e);
        j["state"] = m["event"].value("state", std::string());
        std::cout << j.dump() << "\n";
      } else {
        printEvent(e, false);
      }
      std::cout.flush();
    }
    return true;
  });
  return rc;
}

}  // namespace

void addCorrelationCommands(CLI::App& app, std::string& config_path,
                            std::function<std::string()> socket, int& rc) {
  auto* ports = app.add_subcommand(
      "ports", "Open vSwitch ports on this host: bridge, ofport, ifindex, MAC, VM, state, rates");
  auto ports_json = std::make_shared<bool>(false);
  ports->add_flag("--json", *ports_json, "one JSON object per port (JSON lines)");
  ports->footer(
      "\nPorts come from OVSDB (Bridge/Port/Interface) joined with Linux netlink; the VM is the "
      "interface's external_ids vm-uuid, else vm-id, else iface-id. Rates are from the flows "
      "(correlation.enabled) or the ports' sFlow counters.");
  ports->callback([ports_json, socket, &rc] { rc = cmdPorts(socket(), *ports_json); });

  auto* ev = app.add_subcommand(
      "events", "traffic-spike events: which port, VM and peers, with the link's state");
  auto a = std::make_shared<EventsArgs>();
  ev->add_option("--since", a->since,
                 "events that overlap this time or later (RFC 3339, -1h, @UNIX, ...)");
  ev->add_option("--until", a->until, "events that started before this time");
  ev->add_option("--port", a->port, "only events of this port (name or glob)");
  ev->add_option("--vm", a->vm, "only events of this VM (vm-uuid / iface-id, or a glob)");
  ev->add_option("-n,--limit", a->limit, "the latest N events (0 = all)");
  ev->add_flag("--json", a->json, "one JSON object per event (JSON lines)");
  ev->add_flag("-f,--follow", a->follow, "then print new events as they start and end");
  ev->add_option("--dir", a->dir,
                 "read this event log directory instead of asking the daemon "
                 "(default when the daemon is not running: <store.path>/events of --config)");
  ev->footer(
      "\nEvents come from the daemon's spike detection (correlation.enabled). Each names the "
      "port or address, its bridge, ofport, ifindex, MAC and VM, the observed rate against the "
      "learned baseline, the top contributors (addresses and 5-tuples) with their share of the "
      "excess, and the link's recent changes (netlink).");
  ev->callback([a, &config_path, socket, &rc] { rc = cmdEvents(config_path, socket, *a); });
}

}  // namespace nc::cli
