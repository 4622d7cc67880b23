#include "collector/cli/cli.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "collector/cli/output.hpp"
#include "collector/control/control.hpp"
#include "collector/gen/gen.hpp"
#include "collector/record/fields.hpp"
#include "common/units.hpp"
#include "common/version.hpp"
#include "config/config.hpp"

namespace nc::cli {
namespace {

constexpr const char* kDefaultSocket = "/run/net-collector/control.sock";

struct Common {
  std::string socket;
  std::string config_path;
};

// The control socket: --socket, else control.socket of --config, else the default.
std::string controlSocket(const Common& c) {
  if (!c.socket.empty()) {
    return c.socket;
  }
  if (!c.config_path.empty()) {
    auto res = config::loadFile(c.config_path);
    if (!res.ok()) {
      throw std::runtime_error(res.errors.front().toString());
    }
    return res.config.control.socket;
  }
  return kDefaultSocket;
}

// Reads JSON lines (net-collector's own `flows --format json` output) from a file or "-".
std::vector<FlowRecord> readJsonLines(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) {
      throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    }
    in = &file;
  }
  std::vector<FlowRecord> out;
  std::string line;
  size_t lineno = 0;
  while (std::getline(*in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      throw std::runtime_error(fmt::format("{}:{}: not valid JSON", path, lineno));
    }
    FlowRecord r;
    std::string why;
    if (!fromJson(j, r, &why)) {
      throw std::runtime_error(fmt::format("{}:{}: {}", path, lineno, why));
    }
    out.push_back(r);
  }
  return out;
}

std::vector<FlowRecord> loadFlows(const std::string& input) {
  if (input.empty()) {
    throw std::runtime_error(
        "no input: the on-disk flow store is not available in this version yet; use --live for "
        "the daemon's newest flows, or --input FILE (- for stdin) for JSON lines");
  }
  return readJsonLines(input);
}

int cmdStatus(const Common& c, bool json) {
  std::string sock = controlSocket(c);
  auto ans = control::request(sock, {{"cmd", "status"}});
  if (!ans.value("ok", false)) {
    std::cerr << "net-collector: daemon error: " << ans.value("error", "?") << "\n";
    return 1;
  }
  auto ex = control::request(sock, {{"cmd", "exporters"}});
  nlohmann::json r = ans["result"];
  r["exporters"] = ex.value("ok", false) ? ex["result"] : nlohmann::json::array();
  if (json) {
    std::cout << r.dump() << "\n";
    return 0;
  }
  std::cout << fmt::format("net-collectord {} (pid {}), up {}\n", r.value("version", "?"),
                           r.value("pid", 0),
                           units::formatDurationMs(r.value("uptime_s", uint64_t{0}) * 1000));
  std::string cfg = r.value("config", std::string());
  std::cout << fmt::format("config:   {}\n", cfg.empty() ? "(built-in defaults)" : cfg);
  std::cout << "listen:  ";
  for (const auto& l : r["listen"]) {
    std::string a = l.value("address", "");
    std::cout << (a.find(':') != std::string::npos ? fmt::format(" [{}]:{}", a, l.value("port", 0))
                                                   : fmt::format(" {}:{}", a, l.value("port", 0)));
  }
  std::cout << "\n";
  const auto& in = r["ingest"];
  auto num = [&](const char* k) { return in.value(k, uint64_t{0}); };
  std::cout << fmt::format(
      "ingest:   {} datagrams ({}), {} records, {} counter samples; now {} datagrams/s, {} "
      "records/s\n",
      num("datagrams"), units::formatBytes(num("bytes")), num("records"), num("counter_samples"),
      units::formatCount(in.value("datagrams_per_s", 0.0)),
      units::formatCount(in.value("records_per_s", 0.0)));
  std::cout << fmt::format(
      "drops:    {} decode errors, {} kernel (socket buffer full), {} denied (allow-list), {} "
      "truncated\n",
      num("decode_errors"), num("kernel_drops"), num("denied"), num("truncated"));
  std::cout << fmt::format("store:    {}\n", r.value("store", ""));
  std::cout << fmt::format("ovsdb:    {} ({})\n", r["ovsdb"].value("endpoint", ""),
                           r["ovsdb"].value("enabled", false) ? "enabled" : "disabled");
  if (!r["exporters"].empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : r["exporters"]) {
      uint64_t errors = 0;
      for (const auto& [k, v] : e["errors"].items()) {
        errors += v.get<uint64_t>();
      }
      rows.push_back({e.value("exporter", ""), e.value("protocol", ""), e.value("flavor", ""),
                      std::to_string(e.value("datagrams", uint64_t{0})),
                      std::to_string(e.value("records", uint64_t{0})),
                      std::to_string(e.value("lost_datagrams", uint64_t{0})),
                      std::to_string(e.value("lost_records", uint64_t{0})), std::to_string(errors),
                      std::to_string(e.value("templates_known", 0)), e.value("last_seen", "")});
    }
    std::cout << "\n";
    printTable(std::cout,
               {"exporter", "protocol", "kind", "datagrams", "records", "lost_dgrams",
                "lost_records", "errors", "templates", "last_seen"},
               rows, {false, false, false, true, true, true, true, true, true, false});
  }
  return 0;
}

// The newest flows the daemon decoded (kept in memory per receive shard).
std::vector<FlowRecord> liveFlows(const Common& c, size_t limit) {
  auto ans = control::request(controlSocket(c), {{"cmd", "recent"}, {"limit", limit}});
  if (!ans.value("ok", false)) {
    throw std::runtime_error("daemon error: " + ans.value("error", std::string("?")));
  }
  std::vector<FlowRecord> out;
  for (const auto& j : ans["result"]) {
    FlowRecord r;
    std::string why;
    if (!fromJson(j, r, &why)) {
      throw std::runtime_error("daemon sent a bad flow: " + why);
    }
    out.push_back(r);
  }
  return out;
}

int cmdFlows(const Common& c, bool live, const std::string& input, const std::string& format,
             size_t limit) {
  Format f;
  if (!parseFormat(format, f)) {
    throw CLI::ValidationError("--format", "must be auto, table, csv or json");
  }
  if (live && !input.empty()) {
    throw CLI::ValidationError("--live", "cannot be combined with --input");
  }
  auto flows = live ? liveFlows(c, limit != 0 ? limit : 100) : loadFlows(input);
  std::sort(flows.begin(), flows.end(),
            [](const FlowRecord& a, const FlowRecord& b) { return a.first_ns < b.first_ns; });
  if (limit != 0 && flows.size() > limit) {
    flows.resize(limit);
  }
  printFlows(std::cout, flows, f);
  if (f == Format::kTable) {
    std::cout << fmt::format("{} flow(s)\n", flows.size());
  }
  return 0;
}

int cmdTop(const std::string& input, const std::string& by, const std::string& order,
           const std::string& format, size_t limit) {
  Format f;
  if (!parseFormat(format, f)) {
    throw CLI::ValidationError("--format", "must be auto, table, csv or json");
  }
  std::vector<const FieldDef*> keys;
  std::stringstream ss(by);
  std::string k;
  while (std::getline(ss, k, ',')) {
    const FieldDef* def = findField(k);
    if (def == nullptr) {
      throw CLI::ValidationError("--by", fmt::format("unknown field '{}' (see `net-collector "
                                                     "fields`)",
                                                     k));
    }
    keys.push_back(def);
  }
  if (keys.empty()) {
    throw CLI::ValidationError("--by", "needs at least one field");
  }
  if (order != "bytes" && order != "packets" && order != "flows") {
    throw CLI::ValidationError("--order", "must be bytes, packets or flows");
  }
  struct Agg {
    std::vector<std::string> key;
    uint64_t flows = 0;
    uint64_t packets = 0;
    uint64_t bytes = 0;
  };
  std::map<std::string, Agg> groups;
  for (const auto& r : loadFlows(input)) {
    std::vector<std::string> key;
    std::string joined;
    for (const auto* d : keys) {
      key.push_back(d->toText(r));
      joined += key.back();
      joined += '\x1f';
    }
    auto& a = groups[joined];
    if (a.key.empty()) {
      a.key = std::move(key);
    }
    a.flows += 1;
    a.packets += r.scaledPackets();
    a.bytes += r.scaledBytes();
  }
  std::vector<Agg> sorted;
  sorted.reserve(groups.size());
  for (auto& [_, a] : groups) {
    sorted.push_back(std::move(a));
  }
  auto metric = [&](const Agg& a) {
    return order == "bytes" ? a.bytes : order == "packets" ? a.packets : a.flows;
  };
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](const Agg& a, const Agg& b) { return metric(a) > metric(b); });
  if (limit != 0 && sorted.size() > limit) {
    sorted.resize(limit);
  }
  if (f == Format::kJson) {
    for (const auto& a : sorted) {
      nlohmann::json o;
      for (size_t i = 0; i < keys.size(); ++i) {
        o[std::string(keys[i]->name)] = a.key[i];
      }
      o["flows"] = a.flows;
      o["packets"] = a.packets;
      o["bytes"] = a.bytes;
      std::cout << o.dump() << "\n";
    }
    return 0;
  }
  std::vector<std::string> header;
  std::vector<bool> numeric;
  for (const auto* d : keys) {
    header.emplace_back(d->name);
    numeric.push_back(false);
  }
  for (const char* m : {"flows", "packets", "bytes"}) {
    header.emplace_back(m);
    numeric.push_back(true);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : sorted) {
    std::vector<std::string> row = a.key;
    if (f == Format::kCsv) {
      row.push_back(std::to_string(a.flows));
      row.push_back(std::to_string(a.packets));
      row.push_back(std::to_string(a.bytes));
    } else {
      row.push_back(units::formatCount(static_cast<double>(a.flows)));
      row.push_back(units::formatCount(static_cast<double>(a.packets)));
      row.push_back(units::formatBytes(a.bytes));
    }
    rows.push_back(std::move(row));
  }
  if (f == Format::kCsv) {
    for (size_t i = 0; i < header.size(); ++i) {
      std::cout << (i ? "," : "") << header[i];
    }
    std::cout << "\n";
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) {
        std::cout << (i ? "," : "") << r[i];
      }
      std::cout << "\n";
    }
    return 0;
  }
  printTable(std::cout, header, rows, numeric);
  return 0;
}

int cmdFields(bool markdown) {
  if (markdown) {
    std::cout << "| name | description |\n|---|---|\n";
    for (const auto& f : fields()) {
      std::cout << "| `" << f.name << "` | " << f.doc << " |\n";
    }
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : fields()) {
    rows.push_back({std::string(f.name), std::string(f.doc)});
  }
  printTable(std::cout, {"field", "description"}, rows, {false, false});
  return 0;
}

int cmdCheckConfig(const std::string& path) {
  auto res = config::loadFile(path);
  for (const auto& e : res.errors) {
    std::cerr << e.toString() << "\n";
  }
  if (!res.ok()) {
    std::cerr << fmt::format("{}: {} error(s)\n", path, res.errors.size());
    return 1;
  }
  std::cout << path << ": OK\n";
  return 0;
}

}  // namespace

int runCli(int argc, char** argv) {
  CLI::App app{
      "net-collector: query flows and control net-collectord.\n"
      "Run `net-collector <command> --help` for the options of each command."};
  app.set_version_flag("--version", fmt::format("net-collector {} ({})", kVersion, kGitRevision));
  app.require_subcommand(1);
  Common common;
  app.add_option("--socket", common.socket,
                 fmt::format("control socket of the daemon (default: control.socket of --config, "
                             "else {})",
                             kDefaultSocket));
  app.add_option("--config", common.config_path, "daemon config file to take the socket from");

  int rc = 0;

  auto* status = app.add_subcommand("status", "show the running daemon's status");
  bool status_json = false;
  status->add_flag("--json", status_json, "print the raw JSON answer");
  status->callback([&] { rc = cmdStatus(common, status_json); });

  auto* flows = app.add_subcommand("flows", "list flows");
  std::string flows_input;
  std::string flows_format = "auto";
  size_t flows_limit = 0;
  bool flows_live = false;
  flows->add_flag("--live", flows_live,
                  "the newest flows the running daemon decoded (from memory; default limit 100)");
  flows->add_option("-i,--input", flows_input,
                    "read flows from a JSON lines file ('-' = stdin), as written by --format json");
  flows->add_option("-f,--format", flows_format, "auto | table | csv | json (JSON lines)")
      ->capture_default_str();
  flows->add_option("-n,--limit", flows_limit, "print at most N flows (0 = all)");
  flows->callback(
      [&] { rc = cmdFlows(common, flows_live, flows_input, flows_format, flows_limit); });

  auto* top = app.add_subcommand("top", "rank flows aggregated by one or more fields");
  std::string top_input;
  std::string top_by = "src_addr";
  std::string top_order = "bytes";
  std::string top_format = "auto";
  size_t top_limit = 10;
  top->add_option("-i,--input", top_input, "read flows from a JSON lines file ('-' = stdin)");
  top->add_option("-b,--by", top_by, "comma-separated fields to group by (see `fields`)")
      ->capture_default_str();
  top->add_option("-o,--order", top_order, "bytes | packets | flows")->capture_default_str();
  top->add_option("-f,--format", top_format, "auto | table | csv | json")->capture_default_str();
  top->add_option("-n,--limit", top_limit, "number of rows (0 = all)")->capture_default_str();
  top->callback([&] { rc = cmdTop(top_input, top_by, top_order, top_format, top_limit); });

  auto* fields_cmd = app.add_subcommand("fields", "list the flow fields and their JSON names");
  bool markdown = false;
  fields_cmd->add_flag("--markdown", markdown, "print a Markdown table (docs/fields.md)");
  fields_cmd->callback([&] { rc = cmdFields(markdown); });

  auto* check = app.add_subcommand("check-config", "validate a daemon config file");
  std::string check_path;
  check->add_option("file", check_path, "YAML config file")->required();
  check->callback([&] { rc = cmdCheckConfig(check_path); });

  gen::addGenCommand(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "net-collector: " << e.what() << "\n";
    return 1;
  }
  return rc;
}

}  // namespace nc::cli
