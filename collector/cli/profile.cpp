#include "collector/cli/profile.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "collector/cli/output.hpp"
#include "collector/control/control.hpp"
#include "collector/query/query.hpp"
#include "collector/record/fields.hpp"
#include "common/clock.hpp"
#include "common/units.hpp"

namespace nc::cli {
namespace {

// Sends {"cmd": "profile", ...} and returns the result; prints the daemon's error and returns
// nullopt when the request failed.
std::optional<nlohmann::json> ask(const std::string& socket, nlohmann::json req) {
  req["cmd"] = "profile";
  nlohmann::json ans = control::request(socket, req);
  if (!ans.value("ok", false)) {
    std::cerr << "net-collector: " << ans.value("error", std::string("?")) << "\n";
    return std::nullopt;
  }
  return ans["result"];
}

std::string text(const nlohmann::json& j, const char* key, const char* none = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty())) {
    return none;
  }
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string bytesText(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) {
    return "-";
  }
  return units::formatBytes(it->get<uint64_t>());
}

// "PROFILE/CHANNEL" -> the two names.
bool splitPath(const std::string& path, std::string& profile, std::string& channel) {
  const size_t slash = path.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == path.size()) {
    std::cerr << "net-collector: expected PROFILE/CHANNEL, got '" << path << "'\n";
    return false;
  }
  profile = path.substr(0, slash);
  channel = path.substr(slash + 1);
  return true;
}

// What `nfsen -l NAME` shows: one "key value" line each, then a line per channel.
void printProfile(const nlohmann::json& p) {
  const std::vector<std::pair<const char*, std::string>> lines = {
      {"name", text(p, "name")},
      {"group", text(p, "group") == "." ? "(nogroup)" : text(p, "group")},
      {"description", text(p, "description", "")},
      {"created", text(p, "created")},
      {"start", text(p, "start")},
      {"end", text(p, "end")},
      {"updated", text(p, "updated")},
      {"expire", text(p, "expire")},
      {"size", bytesText(p, "size")},
      {"maxsize", p.value("maxsize", uint64_t{0}) == 0 ? "unlimited" : bytesText(p, "maxsize")},
      {"type", text(p, "type")},
      {"source", p.value("declared", false) ? "configuration" : "runtime (net-collector profile)"},
      {"status", text(p, "status") + (p.value("staged", false) ? " (uncommitted changes)" : "")},
  };
  for (const auto& [k, v] : lines) {
    std::cout << fmt::format("{:<12} {}\n", k, v);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : p.value("channels", nlohmann::json::array())) {
    std::string sources;
    for (const auto& s : c.value("sources", nlohmann::json::array())) {
      sources += (sources.empty() ? "" : ",") + s.get<std::string>();
    }
    rows.push_back({text(c, "name"), text(c, "sign"), text(c, "colour"), text(c, "order"),
                    sources.empty() ? "all" : sources, bytesText(c, "size"), text(c, "filter"),
                    text(c, "error", "")});
  }
  std::cout << "\n";
  if (rows.empty()) {
    std::cout << "no channels (add one: net-collector profile channel add " << text(p, "name")
              << "/NAME --filter '...')\n";
    return;
  }
  printTable(std::cout,
             {"channel", "sign", "colour", "order", "sources", "size", "filter", "error"}, rows,
             {false, false, false, true, false, true, false, false});
}

int cmdList(const std::string& socket, const std::string& name, bool json) {
  nlohmann::json req = {{"op", "list"}};
  if (!name.empty()) {
    req["profile"] = name;
  }
  auto res = ask(socket, req);
  if (!res) {
    return 1;
  }
  if (json) {
    std::cout << res->dump(2) << "\n";
    return 0;
  }
  if (!name.empty()) {
    if (res->empty()) {
      std::cerr << "net-collector: no profile '" << name << "'\n";
      return 1;
    }
    printProfile(res->at(0));
    return 0;
  }
  if (res->empty()) {
    std::cout << "no profiles (declare them under `profiles:` in the config, or: net-collector "
                 "profile add NAME)\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : *res) {
    rows.push_back({text(p, "name"), text(p, "group"), text(p, "type"),
                    std::to_string(p.value("channels", nlohmann::json::array()).size()),
                    bytesText(p, "size"), text(p, "start"), text(p, "updated"),
                    text(p, "status") + (p.value("staged", false) ? " (uncommitted)" : "")});
  }
  printTable(std::cout,
             {"profile", "group", "type", "channels", "size", "start", "updated", "status"}, rows,
             {false, false, false, true, true, false, false, false});
  return 0;
}

// Prints a change's answer: JSON, or the next step for the operator.
int done(const std::optional<nlohmann::json>& res, bool json, const std::string& what) {
  if (!res) {
    return 1;
  }
  if (json) {
    std::cout << res->dump(2) << "\n";
  } else {
    std::cout << what << "\n";
  }
  return 0;
}

std::optional<std::string> decodeBase64(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    if (ch == '=') {
      break;
    }
    const size_t v = kAlphabet.find(ch);
    if (v == std::string_view::npos) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

struct GraphArgs {
  std::string profile;
  std::vector<std::string> channels;
  std::string since = "-1d";
  std::string until = "now";
  std::string metric = "traffic";
  std::string proto = "any";
  std::string output;
  std::string title;
  unsigned width = 576;
  unsigned height = 200;
};

int cmdGraph(const std::string& socket, const GraphArgs& a) {
  std::string format = "png";
  if (a.output.size() > 4 && a.output.compare(a.output.size() - 4, 4, ".svg") == 0) {
    format = "svg";
  } else if (!(a.output.size() > 4 && a.output.compare(a.output.size() - 4, 4, ".png") == 0)) {
    std::cerr << "net-collector: graph: -o must name a .png or .svg file\n";
    return 2;
  }
  nlohmann::json req = {{"op", "graph"},    {"profile", a.profile}, {"start", a.since},
                        {"end", a.until},   {"metric", a.metric},   {"proto", a.proto},
                        {"format", format}, {"width", a.width},     {"height", a.height},
                        {"title", a.title}};
  if (!a.channels.empty()) {
    req["channels"] = a.channels;
  }
  auto res = ask(socket, req);
  if (!res) {
    return 1;
  }
  auto image = decodeBase64(res->value("image_base64", std::string()));
  if (!image || image->empty()) {
    std::cerr << "net-collector: graph: the daemon sent no image\n";
    return 1;
  }
  std::ofstream f(a.output, std::ios::binary | std::ios::trunc);
  f.write(image->data(), static_cast<std::streamsize>(image->size()));
  f.close();
  if (!f) {
    std::cerr << "net-collector: graph: cannot write " << a.output << "\n";
    return 1;
  }
  std::cout << fmt::format("wrote {} ({}, {})\n", a.output, format,
                           units::formatBytes(image->size()));
  return 0;
}

struct AddArgs {
  std::string name;
  std::string group;
  std::string description;
  std::string type = "continuous";
  std::string start;
  std::string end;
  std::string expire;
  std::string maxsize;
};

struct ChannelArgs {
  std::string path;  // PROFILE/CHANNEL
  std::string filter = "any";
  std::string colour;
  std::string sign = "+";
  uint32_t order = 0;
  std::vector<std::string> sources;
};

// Common limits: "--expire 30d", "--maxsize 10G" into the request's units. False on a bad value.
bool addLimits(nlohmann::json& req, const std::string& expire, const std::string& maxsize) {
  std::string why;
  if (!expire.empty()) {
    auto ms = units::parseDurationMs(expire, &why);
    if (!ms) {
      std::cerr << "net-collector: --expire: " << why << "\n";
      return false;
    }
    req["expire_ms"] = *ms;
  }
  if (!maxsize.empty()) {
    auto b = units::parseSize(maxsize, &why);
    if (!b) {
      std::cerr << "net-collector: --maxsize: " << why << "\n";
      return false;
    }
    req["maxsize"] = *b;
  }
  return true;
}

}  // namespace

void addProfileCommands(CLI::App& app, std::function<std::string()> socket, int& rc) {
  auto* prof = app.add_subcommand(
      "profile",
      "nfsen-style profiles of channels (named filters) kept as time series: list, add, channel "
      "add/delete, modify, commit, discard, delete");
  prof->require_subcommand(1);
  prof->footer(
      "\nChanges are staged until `profile commit NAME`, as in nfsen; committed profiles persist "
      "in <profiles.path>/profiles.json across restarts. Profiles declared in the config file "
      "cannot be changed here.\nExample:\n"
      "  net-collector profile add web --group zone1\n"
      "  net-collector profile channel add web/https --filter 'proto tcp and port 443' "
      "--colour '#48C6FF'\n"
      "  net-collector profile channel add web/dns --filter 'port 53' --sign -\n"
      "  net-collector profile commit web\n"
      "  net-collector graph web --since -1h -o web.png");
  auto json = std::make_shared<bool>(false);
  prof->add_flag("--json", *json, "print the daemon's JSON answers");

  auto* list = prof->add_subcommand("list", "list profiles, or one profile as `nfsen -l` does");
  auto list_name = std::make_shared<std::string>();
  auto list_json = std::make_shared<bool>(false);
  list->add_option("name", *list_name, "a profile name (default: all, as a table)");
  list->add_flag("--json", *list_json, "print the JSON answer");
  list->callback([=, &rc] { rc = cmdList(socket(), *list_name, *list_json || *json); });

  auto* add = prof->add_subcommand("add", "stage a new profile (then add channels and commit)");
  auto a = std::make_shared<AddArgs>();
  add->add_option("name", a->name, "profile name ([A-Za-z0-9_-], up to 64)")->required();
  add->add_option("--group", a->group, "group label for listings");
  add->add_option("--description", a->description, "free text");
  add->add_option("--type", a->type, "continuous | history | shadow")->capture_default_str();
  add->add_option("--start", a->start,
                  "start time (continuous: default the commit; history: required), e.g. -7d, "
                  "2026-12-01T00:00:00Z");
  add->add_option("--end", a->end, "end time (history profiles)");
  add->add_option("--expire", a->expire, "keep at most this much history, e.g. 30d (0 = no limit)");
  add->add_option("--maxsize", a->maxsize, "size limit, e.g. 10G (0 = no limit)");
  add->callback([=, &rc] {
    nlohmann::json req = {{"op", "add"}, {"name", a->name}, {"type", a->type}};
    if (!a->group.empty()) {
      req["group"] = a->group;
    }
    if (!a->description.empty()) {
      req["description"] = a->description;
    }
    const uint64_t now = unixNowNs();
    for (const auto& [key, value] : {std::pair{"start", a->start}, std::pair{"end", a->end}}) {
      if (value.empty()) {
        continue;
      }
      uint64_t t = 0;
      std::string why;
      if (!query::parseTimeSpec(value, now, t, &why)) {
        std::cerr << "net-collector: --" << key << ": " << why << "\n";
        rc = 2;
        return;
      }
      req[key] = formatTime(t);
    }
    if (!addLimits(req, a->expire, a->maxsize)) {
      rc = 2;
      return;
    }
    rc = done(ask(socket(), req), *json,
              fmt::format("profile {} staged: add channels (net-collector profile channel add "
                          "{}/NAME --filter '...'), then: net-collector profile commit {}",
                          a->name, a->name, a->name));
  });

  auto* chan = prof->add_subcommand("channel", "add or delete a channel of a profile");
  chan->require_subcommand(1);
  auto* cadd = chan->add_subcommand("add", "stage a new channel PROFILE/CHANNEL");
  auto c = std::make_shared<ChannelArgs>();
  cadd->add_option("path", c->path, "PROFILE/CHANNEL")->required();
  cadd->add_option("-f,--filter", c->filter, "nfdump filter (`net-collector filters`)")
      ->capture_default_str();
  cadd->add_option("--colour,--color", c->colour, "#rrggbb (default: from a palette)");
  cadd->add_option("--sign", c->sign, "+ (above the time axis) or - (below)")
      ->capture_default_str();
  cadd->add_option("--order", c->order, "stacking position among its sign (1 = at the axis)");
  cadd->add_option("--source", c->sources,
                   "exporter address/CIDR or bridge name it applies to (repeatable; default all)");
  cadd->callback([=, &rc] {
    std::string p;
    std::string ch;
    if (!splitPath(c->path, p, ch)) {
      rc = 2;
      return;
    }
    nlohmann::json channel = {{"name", ch},      {"filter", c->filter}, {"colour", c->colour},
                              {"sign", c->sign}, {"order", c->order},   {"sources", c->sources}};
    rc = done(
        ask(socket(), {{"op", "channel-add"}, {"profile", p}, {"channel", channel}}), *json,
        fmt::format("channel {}/{} staged; apply with: net-collector profile commit {}", p, ch, p));
  });
  auto* cdel = chan->add_subcommand("delete", "stage the removal of PROFILE/CHANNEL");
  auto cdel_path = std::make_shared<std::string>();
  cdel->add_option("path", *cdel_path, "PROFILE/CHANNEL")->required();
  cdel->callback([=, &rc] {
    std::string p;
    std::string ch;
    if (!splitPath(*cdel_path, p, ch)) {
      rc = 2;
      return;
    }
    rc = done(ask(socket(), {{"op", "channel-delete"}, {"profile", p}, {"channel", ch}}), *json,
              fmt::format("removal of {}/{} staged; apply with: net-collector profile commit {}", p,
                          ch, p));
  });

  auto* mod = prof->add_subcommand("modify", "stage changes to a profile's group, limits, text");
  auto m = std::make_shared<AddArgs>();
  mod->add_option("name", m->name, "profile")->required();
  mod->add_option("--group", m->group, "group label");
  mod->add_option("--description", m->description, "free text");
  mod->add_option("--expire", m->expire, "keep at most this much history (0 = no limit)");
  mod->add_option("--maxsize", m->maxsize, "size limit (0 = no limit)");
  mod->callback([=, &rc] {
    nlohmann::json req = {{"op", "modify"}, {"profile", m->name}};
    if (!m->group.empty()) {
      req["group"] = m->group;
    }
    if (!m->description.empty()) {
      req["description"] = m->description;
    }
    if (!addLimits(req, m->expire, m->maxsize)) {
      rc = 2;
      return;
    }
    rc = done(ask(socket(), req), *json,
              fmt::format("changes to {} staged; apply with: net-collector profile commit {}",
                          m->name, m->name));
  });

  auto* commit = prof->add_subcommand("commit", "apply a profile's staged changes (persisted)");
  auto commit_name = std::make_shared<std::string>();
  commit->add_option("name", *commit_name, "profile")->required();
  commit->callback([=, &rc] {
    auto res = ask(socket(), {{"op", "commit"}, {"profile", *commit_name}});
    if (!res) {
      rc = 1;
      return;
    }
    if (*json) {
      std::cout << res->dump(2) << "\n";
    } else {
      printProfile(*res);
    }
    rc = 0;
  });

  auto* discard = prof->add_subcommand("discard", "drop a profile's staged changes");
  auto discard_name = std::make_shared<std::string>();
  discard->add_option("name", *discard_name, "profile")->required();
  discard->callback([=, &rc] {
    rc = done(ask(socket(), {{"op", "discard"}, {"profile", *discard_name}}), *json,
              fmt::format("staged changes of {} discarded", *discard_name));
  });

  auto* del = prof->add_subcommand("delete", "delete a profile and its RRD files");
  auto del_name = std::make_shared<std::string>();
  del->add_option("name", *del_name, "profile")->required();
  del->callback([=, &rc] {
    rc = done(ask(socket(), {{"op", "delete"}, {"profile", *del_name}}), *json,
              fmt::format("profile {} deleted", *del_name));
  });

  auto* graph = app.add_subcommand(
      "graph", "draw a profile's channels (stacked, in their colours) as a PNG or SVG file");
  auto g = std::make_shared<GraphArgs>();
  graph->add_option("profile", g->profile, "profile name")->required();
  graph->add_option("-c,--channel", g->channels, "only these channels (repeatable; default all)");
  graph->add_option("--since", g->since, "start: -1h, -7d, RFC 3339, ...")->capture_default_str();
  graph->add_option("--until", g->until, "end")->capture_default_str();
  graph->add_option("--metric", g->metric, "traffic (bits/s) | packets | flows")
      ->capture_default_str();
  graph->add_option("--proto", g->proto, "any | tcp | udp | icmp | other")->capture_default_str();
  graph->add_option("--width", g->width, "plot width in pixels")->capture_default_str();
  graph->add_option("--height", g->height, "plot height in pixels")->capture_default_str();
  graph->add_option("--title", g->title, "title (default: metric and protocol)");
  graph->add_option("-o,--output", g->output, "FILE.png or FILE.svg")->required();
  graph->callback([=, &rc] { rc = cmdGraph(socket(), *g); });
}

}  // namespace nc::cli
