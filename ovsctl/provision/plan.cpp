#include "ovsctl/provision/plan.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

namespace nc::ovsctl {

const char* toString(Protocol p) {
  switch (p) {
    case Protocol::Sflow:
      return "sflow";
    case Protocol::Ipfix:
      return "ipfix";
    case Protocol::Netflow:
      return "netflow";
    case Protocol::IpfixFlow:
      return "ipfix_flow";
  }
  return "?";
}

const char* toString(Action a) {
  switch (a) {
    case Action::Ok:
      return "ok";
    case Action::Create:
      return "create";
    case Action::Update:
      return "update";
    case Action::TakeOver:
      return "takeover";
    case Action::Refresh:
      return "refresh";
    case Action::Remove:
      return "remove";
    case Action::Foreign:
      return "foreign";
    case Action::Unmanaged:
      return "unmanaged";
  }
  return "?";
}

namespace {
bool isChange(Action a) {
  return a == Action::Create || a == Action::Update || a == Action::TakeOver ||
         a == Action::Refresh || a == Action::Remove;
}
}  // namespace

size_t Plan::changeCount() const {
  size_t n = 0;
  for (const auto& b : bridges) {
    for (const auto& p : b.protocols) {
      n += isChange(p.action) ? 1 : 0;
    }
  }
  return n;
}

std::string defaultOwnerId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    return "net-collector";
  }
  return std::string("net-collector@") + host;
}

Target targetFromListeners(const config::CollectorConfig& collector) {
  Target t;
  auto fmtAddr = [](const config::ListenAddr& l) {
    std::string a = l.address;
    if (a.empty() || a == "0.0.0.0") {
      a = "127.0.0.1";
    } else if (a == "::") {
      a = "::1";
    }
    if (a.find(':') != std::string::npos) {
      a = "[" + a + "]";
    }
    return fmt::format("{}:{}", a, l.port);
  };
  for (const auto& l : collector.listen) {
    if (l.port == 6343 && t.sflow.empty()) {
      t.sflow = fmtAddr(l);
    } else if (l.port == 4739 && t.ipfix.empty()) {
      t.ipfix = fmtAddr(l);
    } else if (l.port == 2055 && t.netflow.empty()) {
      t.netflow = fmtAddr(l);
    }
  }
  for (const auto& l : collector.listen) {
    if (l.port == 0) {
      continue;
    }
    for (std::string* s : {&t.sflow, &t.ipfix, &t.netflow}) {
      if (s->empty()) {
        *s = fmtAddr(l);
      }
    }
  }
  return t;
}

std::string formatPlan(const Plan& plan) {
  std::ostringstream out;
  out << "OVSDB " << (plan.endpoint.empty() ? "?" : plan.endpoint) << ", owner " << plan.owner_id
      << "\n";
  if (plan.bridges.empty()) {
    out << "  (no bridge matches a rule and none has rows owned by us)\n";
  }
  for (const auto& b : plan.bridges) {
    out << "bridge " << b.name
        << (b.rule >= 0 ? fmt::format(" (rule {})", b.rule) : std::string(" (no rule)")) << "\n";
    if (b.protocols.empty()) {
      out << "  (no exports wanted, none present)\n";
    }
    for (const auto& p : b.protocols) {
      std::string row = p.row_uuid.empty() ? "-" : p.row_uuid.substr(0, 8);
      out << fmt::format("  {:<10} {:<9} {:<8}", toString(p.protocol), toString(p.action), row);
      std::string detail;
      for (size_t i = 0; i < p.changes.size(); ++i) {
        detail += (i ? ", " : "") + p.changes[i];
      }
      if (!p.note.empty()) {
        detail += (detail.empty() ? "" : "; ") + p.note;
      }
      out << (detail.empty() ? "" : "  " + detail) << "\n";
    }
  }
  for (const auto& w : plan.warnings) {
    out << "warning: " << w << "\n";
  }
  for (const auto& e : plan.errors) {
    out << "error: " << e << "\n";
  }
  const size_t n = plan.changeCount();
  if (!plan.ok()) {
    out << fmt::format("{} error(s): nothing will be written\n", plan.errors.size());
  } else if (n == 0) {
    out << "up to date: nothing to change\n";
  } else {
    out << fmt::format("{} change(s) in one transaction\n", n);
  }
  return out.str();
}

nlohmann::json toJson(const Plan& plan) {
  nlohmann::json j;
  j["owner"] = plan.owner_id;
  j["endpoint"] = plan.endpoint;
  j["ok"] = plan.ok();
  j["changes"] = plan.changeCount();
  j["errors"] = plan.errors;
  j["warnings"] = plan.warnings;
  j["bridges"] = nlohmann::json::array();
  for (const auto& b : plan.bridges) {
    nlohmann::json jb = {{"name", b.name}, {"uuid", b.uuid}, {"rule", b.rule}};
    jb["protocols"] = nlohmann::json::object();
    for (const auto& p : b.protocols) {
      std::string key = toString(p.protocol);
      if (jb["protocols"].contains(key)) {
        key += "#" + p.row_uuid.substr(0, 8);
      }
      jb["protocols"][key] = {{"action", toString(p.action)},
                              {"row", p.row_uuid},
                              {"owner", p.row_owner},
                              {"actual", p.actual},
                              {"desired", p.desired},
                              {"changes", p.changes},
                              {"note", p.note}};
    }
    j["bridges"].push_back(std::move(jb));
  }
  j["transaction"] = plan.transaction;
  return j;
}

nlohmann::json toJson(const ApplyResult& r) {
  return {{"ok", r.ok},
          {"changes", r.changes},
          {"attempts", r.attempts},
          {"conflicts", r.conflicts},
          {"error", r.error},
          {"plan", toJson(r.plan)}};
}

}  // namespace nc::ovsctl

namespace nc::ovsctl::provision {

using ovsdb::Json;

namespace {

struct ProtoInfo {
  Protocol protocol;
  const char* table;   // "sFlow"
  const char* column;  // Bridge column: "sflow"
};
constexpr const char* kCollectorSetTable = "Flow_Sample_Collector_Set";
// IPFIX columns that apply to flow-based sampling (sampling and the observation ids come from the
// OpenFlow sample action; ovs-vswitchd.conf.db(5), IPFIX table).
constexpr const char* kFlowIpfixColumns[] = {"targets", "cache_active_timeout", "cache_max_flows"};
constexpr ProtoInfo kProtocols[] = {
    {Protocol::Sflow, "sFlow", "sflow"},
    {Protocol::Ipfix, "IPFIX", "ipfix"},
    {Protocol::Netflow, "NetFlow", "netflow"},
};

Json opt(uint64_t v) {
  return Json::array({"set", Json::array({v})});
}
Json strSet(const std::vector<std::string>& v) {
  Json arr = Json::array();
  for (const auto& s : v) {
    arr.push_back(s);
  }
  return Json::array({"set", arr});
}

bool validHostName(const std::string& h) {
  if (h.empty() || h.size() > 253) {
    return false;
  }
  return std::all_of(h.begin(), h.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
  });
}

}  // namespace

bool validTarget(const std::string& s, std::string* why) {
  std::string host;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find("]:");
    in6_addr a6{};
    if (close == std::string::npos ||
        inet_pton(AF_INET6, s.substr(1, close - 1).c_str(), &a6) != 1) {
      *why = fmt::format("target '{}' must look like [IPV6]:PORT", s);
      return false;
    }
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || s.find(':') != colon) {
      *why = fmt::format("target '{}' must look like HOST:PORT (IPv6 as [ADDR]:PORT)", s);
      return false;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    in_addr a4{};
    const bool numeric = std::all_of(host.begin(), host.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '.';
    });
    if (numeric ? inet_pton(AF_INET, host.c_str(), &a4) != 1 : !validHostName(host)) {
      *why = fmt::format("target '{}' has a bad host '{}'", s, host);
      return false;
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(),
                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }) ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    *why = fmt::format("target '{}' has a bad port (must be 1..65535)", s);
    return false;
  }
  return true;
}

ovsdb::MonitorSpec monitorSpec() {
  return {
      {"Open_vSwitch", {"bridges", "cur_cfg", "next_cfg"}},
      {"Bridge", {"name", "sflow", "ipfix", "netflow", "ports", "datapath_type", "external_ids"}},
      {"Port", {"name", "interfaces"}},
      {"Interface", {"name", "type", "ofport", "ifindex", "external_ids"}},
      {"sFlow", {"targets", "sampling", "polling", "header", "agent", "external_ids"}},
      {"IPFIX",
       {"targets", "sampling", "obs_domain_id", "obs_point_id", "cache_active_timeout",
        "cache_max_flows", "other_config", "external_ids"}},
      {"NetFlow",
       {"targets", "active_timeout", "engine_type", "engine_id", "add_id_to_interface",
        "external_ids"}},
      // Always monitored (not only when a rule has collector_set_id): dropping the key, or
      // `provision remove` with no rules, must still see the sets we own to delete them. The
      // table is small (one row per bridge and collector set id).
      {kCollectorSetTable, {"id", "bridge", "ipfix", "external_ids"}},
  };
}

namespace {

// Wanted columns for one protocol (natural encodings; normalized against the schema later), or
// errors.
Json desiredColumns(const config::BridgeRule& rule, Protocol p, const Target& target,
                    std::vector<std::string>& errors, const std::string& where) {
  auto targetsOr = [&](const std::vector<std::string>& t, const std::string& dflt) {
    std::vector<std::string> out = t.empty() ? std::vector<std::string>{} : t;
    if (out.empty() && !dflt.empty()) {
      out.push_back(dflt);
    }
    if (out.empty()) {
      errors.push_back(where + ": no targets and no local listener for this protocol");
    }
    for (const auto& s : out) {
      std::string why;
      if (!validTarget(s, &why)) {
        errors.push_back(where + ": " + why);
      }
    }
    return out;
  };
  Json cols = Json::object();
  switch (p) {
    case Protocol::Sflow: {
      const auto& s = *rule.sflow;
      if (s.sampling == 0) {
        errors.push_back(where + ": sampling must be >= 1");
      }
      if (s.header == 0) {
        errors.push_back(where + ": header must be >= 1");
      }
      cols["targets"] = strSet(targetsOr(s.targets, target.sflow));
      cols["sampling"] = opt(s.sampling);
      cols["polling"] = opt(s.polling);
      cols["header"] = opt(s.header);
      cols["agent"] = s.agent.empty() ? strSet({}) : strSet({s.agent});
      break;
    }
    case Protocol::Ipfix: {
      const auto& x = *rule.ipfix;
      if (x.sampling == 0) {
        errors.push_back(where + ": sampling must be >= 1");
      }
      if (x.cache_max_flows == 0) {
        errors.push_back(where +
                         ": cache_max_flows must be >= 1 (0 disables the OVS flow cache: one "
                         "message per sampled packet)");
      }
      if (x.cache_active_timeout > 4200) {
        errors.push_back(where + ": cache_active_timeout must be <= 4200");
      }
      cols["targets"] = strSet(targetsOr(x.targets, target.ipfix));
      cols["sampling"] = opt(x.sampling);
      cols["obs_domain_id"] = opt(x.obs_domain_id);
      cols["obs_point_id"] = opt(x.obs_point_id);
      cols["cache_active_timeout"] = opt(x.cache_active_timeout);
      cols["cache_max_flows"] = opt(x.cache_max_flows);
      break;
    }
    case Protocol::Netflow: {
      const auto& n = *rule.netflow;
      if (n.engine_type && *n.engine_type > 255) {
        errors.push_back(where + ": engine_type must be 0..255");
      }
      if (n.engine_id && *n.engine_id > 255) {
        errors.push_back(where + ": engine_id must be 0..255");
      }
      cols["targets"] = strSet(targetsOr(n.targets, target.netflow));
      cols["active_timeout"] = n.active_timeout;
      cols["engine_type"] = n.engine_type ? opt(*n.engine_type) : strSet({});
      cols["engine_id"] = n.engine_id ? opt(*n.engine_id) : strSet({});
      cols["add_id_to_interface"] = n.add_id_to_interface;
      break;
    }
    case Protocol::IpfixFlow:
      break;  // planCollectorSet()
  }
  return cols;
}

bool wants(const config::BridgeRule& rule, Protocol p) {
  switch (p) {
    case Protocol::Sflow:
      return rule.sflow.has_value();
    case Protocol::Ipfix:
      return rule.ipfix.has_value();
    case Protocol::Netflow:
      return rule.netflow.has_value();
    case Protocol::IpfixFlow:
      return rule.ipfix.has_value() && rule.ipfix->collector_set_id.has_value();
  }
  return false;
}

std::string compact(const Json& j) {
  return j.is_null() ? "none" : j.dump();
}

Json waitOp(const std::string& table, const std::string& uuid, const Json& row) {
  Json columns = Json::array();
  for (const auto& [c, v] : row.items()) {
    columns.push_back(c);
  }
  return {{"op", "wait"},
          {"table", table},
          {"timeout", 0},
          {"where", Json::array({Json::array({"_uuid", "==", ovsdb::uuidAtom(uuid)})})},
          {"columns", columns},
          {"until", "=="},
          {"rows", Json::array({row})}};
}

Json uuidWhere(const std::string& uuid) {
  return Json::array({Json::array({"_uuid", "==", ovsdb::uuidAtom(uuid)})});
}

// Everything planCollectorSet() needs from computePlan().
struct CollectorSetCtx {
  const ovsdb::Replica& replica;
  const PlanInput& input;
  Plan& plan;
  BridgePlan& bp;
  const config::BridgeRule* rule;
  const std::vector<std::string>& sets;          // Flow_Sample_Collector_Set rows of the bridge
  const std::map<std::string, int>& ipfix_refs;  // IPFIX row uuid -> references to it
  int& named;
  Json& guard_ops;
  Json& change_ops;
};

// Per-flow IPFIX of one bridge: the wanted Flow_Sample_Collector_Set (ipfix.collector_set_id) and
// the IPFIX row it references, flattened into one entry {id, targets, cache_*}. An owned set with
// another id is re-used (id updated in place); other owned sets are deleted (the IPFIX row they
// reference goes with them: it is not a root row).
void planCollectorSet(CollectorSetCtx& c) {
  const auto& replica = c.replica;
  const auto& schema = replica.schema();
  const config::BridgeRule* rule = c.rule;
  const bool want = rule != nullptr && wants(*rule, Protocol::IpfixFlow);
  const std::string where = fmt::format("bridge {} {}", c.bp.name, toString(Protocol::IpfixFlow));
  if (schema.tables.count(kCollectorSetTable) == 0 || schema.tables.count("IPFIX") == 0) {
    if (want) {
      c.plan.warnings.push_back(where +
                                ": no Flow_Sample_Collector_Set table in this OVS "
                                "schema; collector_set_id ignored");
    }
    return;
  }
  const std::string table = kCollectorSetTable;
  auto idOf = [&](const ovsdb::Row& row) {
    auto el = ovsdb::setElements(replica.get(table, row, "id"));
    return el.empty() || !el[0].is_number_integer() ? int64_t{-1} : el[0].get<int64_t>();
  };
  auto ownerOf = [&](const ovsdb::Row& row) {
    auto ext = ovsdb::stringMap(replica.get(table, row, "external_ids"));
    return ext.count(kOwnerKey) != 0 ? ext[kOwnerKey] : std::string();
  };
  auto ipfixOf = [&](const ovsdb::Row& row) {
    auto refs = ovsdb::setElements(replica.get(table, row, "ipfix"));
    return refs.empty() ? std::string() : ovsdb::uuidString(refs[0]);
  };
  auto plain = [&](const std::string& col, const Json& v) {
    const ovsdb::ColumnType* ct = schema.column(col == "id" ? table : "IPFIX", col);
    return ct != nullptr ? ovsdb::toPlain(*ct, v) : v;
  };
  auto plainRow = [&](const Json& row) {
    Json out = Json::object();
    for (const auto& [col, v] : row.items()) {
      out[col] = plain(col, v);
    }
    return out;
  };
  // Actual flattened columns of a set: its id + its IPFIX row's flow columns.
  auto actualOf = [&](const ovsdb::Row& row) {
    Json a = Json::object();
    a["id"] = replica.get(table, row, "id");
    const ovsdb::Row* irow = replica.row("IPFIX", ipfixOf(row));
    for (const char* col : kFlowIpfixColumns) {
      if (schema.column("IPFIX", col) != nullptr) {
        a[col] = irow != nullptr ? replica.get("IPFIX", *irow, col) : Json();
      }
    }
    return a;
  };
  auto fcsGuard = [&](const std::string& uuid, const ovsdb::Row& row) {
    Json g = Json::object();
    for (const char* col : {"id", "bridge", "ipfix", "external_ids"}) {
      g[col] = replica.get(table, row, col);
    }
    return waitOp(table, uuid, g);
  };

  // The bridge's sets: the one with the wanted id, the other owned ones, the foreign ones.
  const int64_t want_id = want ? static_cast<int64_t>(*rule->ipfix->collector_set_id) : -1;
  std::string ruuid;
  std::vector<std::string> owned_others;
  std::vector<std::string> foreign_ids;
  for (const auto& uuid : c.sets) {
    const ovsdb::Row& row = *replica.row(table, uuid);
    if (want && idOf(row) == want_id) {
      ruuid = uuid;
    } else if (ownerOf(row) == c.input.owner_id) {
      owned_others.push_back(uuid);
    } else {
      foreign_ids.push_back(std::to_string(idOf(row)));
    }
  }
  if (want && ruuid.empty() && !owned_others.empty()) {
    ruuid = owned_others.front();  // ours with an old id: update the id in place
    owned_others.erase(owned_others.begin());
  }

  if (want) {
    ProtocolPlan pp;
    pp.protocol = Protocol::IpfixFlow;
    // Desired: the id plus the per-bridge IPFIX export's targets and cache settings (its errors
    // are reported by the ipfix entry already).
    std::vector<std::string> dup_errors;
    Json natural = desiredColumns(*rule, Protocol::Ipfix, c.input.target, dup_errors, where);
    Json desired = Json::object();
    desired["id"] = ovsdb::normalize(*schema.column(table, "id"), Json(want_id));
    for (const char* col : kFlowIpfixColumns) {
      if (const ovsdb::ColumnType* ct = schema.column("IPFIX", col)) {
        desired[col] = ovsdb::normalize(*ct, natural[col]);
      }
    }
    Json ipfix_desired = desired;
    ipfix_desired.erase("id");
    pp.desired = plainRow(desired);

    const ovsdb::Row* arow = ruuid.empty() ? nullptr : replica.row(table, ruuid);
    std::map<std::string, std::string> tag = {{kOwnerKey, c.input.owner_id}};
    const std::string uuid_name = fmt::format("nc_{}_ipfix_flow", c.named++);
    if (arow == nullptr) {
      pp.action = Action::Create;
      for (const auto& [col, v] : desired.items()) {
        pp.changes.push_back(fmt::format("{}: {}", col, compact(plain(col, v))));
      }
      // Guard: still no set with this id on the bridge (the (id, bridge) index would reject it).
      c.guard_ops.push_back(
          {{"op", "wait"},
           {"table", table},
           {"timeout", 0},
           {"where", Json::array({Json::array({"id", "==", desired["id"]}),
                                  Json::array({"bridge", "==", ovsdb::uuidAtom(c.bp.uuid)})})},
           {"columns", Json::array({"id"})},
           {"until", "=="},
           {"rows", Json::array()}});
      Json irow = ipfix_desired;
      irow["external_ids"] = ovsdb::makeStringMap(tag);
      c.change_ops.push_back(
          {{"op", "insert"}, {"table", "IPFIX"}, {"uuid-name", uuid_name}, {"row", irow}});
      c.change_ops.push_back({{"op", "insert"},
                              {"table", table},
                              {"row",
                               {{"id", desired["id"]},
                                {"bridge", ovsdb::uuidAtom(c.bp.uuid)},
                                {"ipfix", ovsdb::namedUuid(uuid_name)},
                                {"external_ids", ovsdb::makeStringMap(tag)}}}});
    } else {
      pp.row_uuid = ruuid;
      pp.row_owner = ownerOf(*arow);
      const bool owned = pp.row_owner == c.input.owner_id;
      Json actual = actualOf(*arow);
      pp.actual = plainRow(actual);
      std::vector<std::string> changed;
      for (const auto& [col, v] : desired.items()) {
        if (actual[col] != v) {
          changed.push_back(col);
          pp.changes.push_back(fmt::format("{}: {} -> {}", col, compact(plain(col, actual[col])),
                                           compact(plain(col, v))));
        }
      }
      const std::string iuuid = ipfixOf(*arow);
      const ovsdb::Row* irow = replica.row("IPFIX", iuuid);
      // An IPFIX row someone else also points at (e.g. a Bridge.ipfix) is never changed: the set
      // gets an IPFIX row of its own.
      const bool shared = irow != nullptr && c.ipfix_refs.at(iuuid) > 1;
      const bool new_ipfix = irow == nullptr || shared;
      if (owned || rule->takeover) {
        if (!owned) {
          pp.action = Action::TakeOver;
          pp.note = pp.row_owner.empty()
                        ? "collector set created by someone else; taken over (takeover: true)"
                        : fmt::format("collector set owned by '{}'; taken over (takeover: true)",
                                      pp.row_owner);
        } else {
          pp.action = changed.empty() && !new_ipfix ? Action::Ok : Action::Update;
        }
        if (shared) {
          pp.note += (pp.note.empty() ? "" : "; ") +
                     std::string("its IPFIX row is shared: the set gets its own");
        }
      } else {
        pp.action = Action::Foreign;
        pp.note = pp.row_owner.empty()
                      ? "collector set created by someone else; left alone (takeover: true "
                        "manages it)"
                      : fmt::format(
                            "collector set owned by '{}'; left alone (takeover: true "
                            "manages it)",
                            pp.row_owner);
      }
      if (pp.action == Action::Update || pp.action == Action::TakeOver) {
        c.guard_ops.push_back(fcsGuard(ruuid, *arow));
        Json fcs_update = Json::object();
        if (actual["id"] != desired["id"]) {
          fcs_update["id"] = desired["id"];
        }
        if (new_ipfix) {
          Json row = ipfix_desired;
          row["external_ids"] = ovsdb::makeStringMap(tag);
          c.change_ops.push_back(
              {{"op", "insert"}, {"table", "IPFIX"}, {"uuid-name", uuid_name}, {"row", row}});
          fcs_update["ipfix"] = ovsdb::namedUuid(uuid_name);
        } else {
          Json guard = Json::object();
          Json row = Json::object();
          for (const auto& [col, v] : ipfix_desired.items()) {
            guard[col] = actual[col];
            if (actual[col] != v) {
              row[col] = v;
            }
          }
          auto iext = ovsdb::stringMap(replica.get("IPFIX", *irow, "external_ids"));
          guard["external_ids"] = replica.get("IPFIX", *irow, "external_ids");
          if (iext[kOwnerKey] != c.input.owner_id) {
            iext[kOwnerKey] = c.input.owner_id;
            row["external_ids"] = ovsdb::makeStringMap(iext);
          }
          c.guard_ops.push_back(waitOp("IPFIX", iuuid, guard));
          if (!row.empty()) {
            c.change_ops.push_back(
                {{"op", "update"}, {"table", "IPFIX"}, {"where", uuidWhere(iuuid)}, {"row", row}});
          }
        }
        if (!owned) {
          auto ext = ovsdb::stringMap(replica.get(table, *arow, "external_ids"));
          ext[kOwnerKey] = c.input.owner_id;
          fcs_update["external_ids"] = ovsdb::makeStringMap(ext);
        }
        if (!fcs_update.empty()) {
          c.change_ops.push_back({{"op", "update"},
                                  {"table", table},
                                  {"where", uuidWhere(ruuid)},
                                  {"row", fcs_update}});
        }
      }
    }
    c.bp.protocols.push_back(std::move(pp));
  }

  // Owned sets not (or no longer) wanted: delete them.
  for (const auto& uuid : owned_others) {
    const ovsdb::Row& row = *replica.row(table, uuid);
    ProtocolPlan pp;
    pp.protocol = Protocol::IpfixFlow;
    pp.action = Action::Remove;
    pp.row_uuid = uuid;
    pp.row_owner = c.input.owner_id;
    pp.actual = plainRow(actualOf(row));
    pp.note = want              ? fmt::format("collector set id {} no longer wanted", idOf(row))
              : rule != nullptr ? fmt::format("not in rule {}", c.bp.rule)
                                : "no rule matches";
    c.guard_ops.push_back(fcsGuard(uuid, row));
    c.change_ops.push_back({{"op", "delete"}, {"table", table}, {"where", uuidWhere(uuid)}});
    c.bp.protocols.push_back(std::move(pp));
  }
  if (!want && owned_others.empty() && rule != nullptr && !foreign_ids.empty()) {
    ProtocolPlan pp;
    pp.protocol = Protocol::IpfixFlow;
    pp.action = Action::Unmanaged;
    std::string ids;
    for (const auto& id : foreign_ids) {
      ids += (ids.empty() ? "" : ", ") + id;
    }
    pp.note = fmt::format("collector set(s) {} not ours and not in the config; left alone", ids);
    c.bp.protocols.push_back(std::move(pp));
  }
}

}  // namespace

Plan computePlan(const ovsdb::Replica& replica, const PlanInput& input) {
  Plan plan;
  plan.owner_id = input.owner_id;
  plan.endpoint = input.endpoint;
  const auto& rules = *input.rules;
  const auto& schema = replica.schema();

  // Bridges sorted by name, for stable output and transactions.
  std::vector<std::pair<std::string, std::string>> bridges;  // name, uuid
  for (const auto& [uuid, row] : replica.table("Bridge")) {
    Json name = replica.get("Bridge", row, "name");
    bridges.emplace_back(name.is_string() ? name.get<std::string>() : uuid, uuid);
  }
  std::sort(bridges.begin(), bridges.end());
  // Flow_Sample_Collector_Set rows per bridge, and how many rows reference each IPFIX row.
  std::map<std::string, std::vector<std::string>> sets_of;  // bridge uuid -> set uuids
  std::map<std::string, int> ipfix_refs;
  for (const auto& [uuid, row] : replica.table(kCollectorSetTable)) {
    for (const auto& b : ovsdb::setElements(replica.get(kCollectorSetTable, row, "bridge"))) {
      sets_of[ovsdb::uuidString(b)].push_back(uuid);
    }
    for (const auto& i : ovsdb::setElements(replica.get(kCollectorSetTable, row, "ipfix"))) {
      ++ipfix_refs[ovsdb::uuidString(i)];
    }
  }
  for (const auto& [uuid, row] : replica.table("Bridge")) {
    for (const auto& i : ovsdb::setElements(replica.get("Bridge", row, "ipfix"))) {
      ++ipfix_refs[ovsdb::uuidString(i)];
    }
  }
  static const std::vector<std::string> kNoSets;
  // Bridges in Open_vSwitch.bridges. A Bridge row outside it was deleted (ovs-vsctl del-br) but is
  // kept alive by a Flow_Sample_Collector_Set's strong reference: no rule applies to it, so our
  // sets on it are deleted (and the row with them). Without an Open_vSwitch row (hand-made unit
  // test replicas) every bridge counts.
  std::set<std::string> attached;
  const bool root_known = !replica.table("Open_vSwitch").empty();
  for (const auto& [uuid, row] : replica.table("Open_vSwitch")) {
    for (const auto& b : ovsdb::setElements(replica.get("Open_vSwitch", row, "bridges"))) {
      attached.insert(ovsdb::uuidString(b));
    }
  }

  Json ops = Json::array();
  int named = 0;  // uuid-name counter
  for (const auto& [bname, buuid] : bridges) {
    const ovsdb::Row& brow = *replica.row("Bridge", buuid);
    BridgePlan bp;
    bp.name = bname;
    bp.uuid = buuid;
    const bool detached = root_known && attached.count(buuid) == 0;
    for (size_t i = 0; i < rules.size() && !detached; ++i) {
      bool match = false;
      for (const auto& pat : rules[i].match) {
        match = match || fnmatch(pat.c_str(), bname.c_str(), 0) == 0;
      }
      if (match && bp.rule < 0) {
        bp.rule = static_cast<int>(i);
      } else if (match) {
        plan.warnings.push_back(
            fmt::format("bridge {} also matches rule {}; rule {} applies", bname, i, bp.rule));
      }
    }
    const config::BridgeRule* rule = bp.rule >= 0 ? &rules[bp.rule] : nullptr;

    Json bridge_update = Json::object();
    Json guard_ops = Json::array();
    Json change_ops = Json::array();
    for (size_t pidx = 0; pidx < std::size(kProtocols); ++pidx) {
      const ProtoInfo& pi = kProtocols[pidx];
      const std::string table = pi.table;
      if (schema.column("Bridge", pi.column) == nullptr || schema.tables.count(table) == 0) {
        continue;
      }
      const std::string where = fmt::format("bridge {} {}", bname, toString(pi.protocol));
      ProtocolPlan pp;
      pp.protocol = pi.protocol;
      auto refs = ovsdb::setElements(replica.get("Bridge", brow, pi.column));
      const std::string ruuid = refs.empty() ? "" : ovsdb::uuidString(refs[0]);
      const ovsdb::Row* arow = ruuid.empty() ? nullptr : replica.row(table, ruuid);
      const bool want = rule != nullptr && wants(*rule, pi.protocol);
      if (!want && ruuid.empty()) {
        continue;
      }
      std::map<std::string, std::string> ext;
      if (arow != nullptr) {
        ext = ovsdb::stringMap(replica.get(table, *arow, "external_ids"));
      }
      pp.row_uuid = ruuid;
      pp.row_owner = ext.count(kOwnerKey) != 0 ? ext[kOwnerKey] : "";
      const bool owned = !ruuid.empty() && pp.row_owner == input.owner_id;

      // Desired columns in canonical wire form, restricted to what this schema has.
      Json desired = Json::object();
      if (want) {
        Json natural = desiredColumns(*rule, pi.protocol, input.target, plan.errors, where);
        for (auto& [c, v] : natural.items()) {
          const ovsdb::ColumnType* ct = schema.column(table, c);
          if (ct == nullptr) {
            plan.warnings.push_back(where + ": column " + c + " not in this OVS schema; not set");
            continue;
          }
          desired[c] = ovsdb::normalize(*ct, v);
        }
      }
      // The actual row's values of the same columns (or of every monitored column but
      // external_ids when nothing is wanted).
      Json actual = Json::object();
      if (arow != nullptr) {
        if (want) {
          for (const auto& [c, v] : desired.items()) {
            actual[c] = replica.get(table, *arow, c);
          }
        } else {
          for (const auto& c : replica.spec().at(table)) {
            if (c != "external_ids" && c != "other_config") {
              actual[c] = replica.get(table, *arow, c);
            }
          }
        }
      }
      auto plain = [&](const std::string& c, const Json& v) {
        const ovsdb::ColumnType* ct = schema.column(table, c);
        return ct != nullptr ? ovsdb::toPlain(*ct, v) : v;
      };
      auto plainRow = [&](const Json& row) {
        Json out = Json::object();
        for (const auto& [c, v] : row.items()) {
          out[c] = plain(c, v);
        }
        return out;
      };
      pp.actual = arow != nullptr ? plainRow(actual) : Json();
      pp.desired = want ? plainRow(desired) : Json();

      std::vector<std::string> changed;  // columns
      if (want && arow != nullptr) {
        for (const auto& [c, v] : desired.items()) {
          if (actual[c] != v) {
            changed.push_back(c);
            pp.changes.push_back(
                fmt::format("{}: {} -> {}", c, compact(plain(c, actual[c])), compact(plain(c, v))));
          }
        }
      }

      if (want && ruuid.empty()) {
        pp.action = Action::Create;
        for (const auto& [c, v] : desired.items()) {
          pp.changes.push_back(fmt::format("{}: {}", c, compact(plain(c, v))));
        }
      } else if (want && (owned || rule->takeover)) {
        if (!owned) {
          pp.action = Action::TakeOver;
          pp.note =
              pp.row_owner.empty()
                  ? "row created by someone else; taken over (takeover: true)"
                  : fmt::format("row owned by '{}'; taken over (takeover: true)", pp.row_owner);
        } else if (!changed.empty()) {
          pp.action = Action::Update;
        } else if (pi.protocol == Protocol::Ipfix && input.refresh_ipfix &&
                   input.refresh_ipfix(bname, rule->ipfix->obs_domain_id)) {
          pp.action = Action::Refresh;
          pp.note = fmt::format(
              "collector has no templates for observation domain {}: re-create the row so OVS "
              "sends them now",
              rule->ipfix->obs_domain_id);
        } else {
          pp.action = Action::Ok;
        }
      } else if (want) {
        pp.action = Action::Foreign;
        pp.note = pp.row_owner.empty()
                      ? "row created by someone else; left alone (takeover: true manages it)"
                      : fmt::format("row owned by '{}'; left alone (takeover: true manages it)",
                                    pp.row_owner);
      } else if (owned) {
        pp.action = Action::Remove;
        pp.note = rule != nullptr ? fmt::format("not in rule {}", bp.rule) : "no rule matches";
      } else {
        if (rule == nullptr) {
          continue;
        }
        pp.action = Action::Unmanaged;
        pp.note = "row not ours and not in the config; left alone";
      }

      // Operations.
      const std::string uuid_name = fmt::format("nc_{}_{}", named++, toString(pi.protocol));
      switch (pp.action) {
        case Action::Create:
        case Action::Refresh: {
          Json row = desired;
          std::map<std::string, std::string> tags;
          tags[kOwnerKey] = input.owner_id;
          row["external_ids"] = ovsdb::makeStringMap(tags);
          if (pp.action == Action::Refresh) {
            guard_ops.push_back(waitOp(
                table, ruuid, {{"external_ids", replica.get(table, *arow, "external_ids")}}));
          }
          change_ops.push_back(
              {{"op", "insert"}, {"table", table}, {"uuid-name", uuid_name}, {"row", row}});
          bridge_update[pi.column] = ovsdb::namedUuid(uuid_name);
          break;
        }
        case Action::Update:
        case Action::TakeOver: {
          Json guard = actual;
          guard["external_ids"] = replica.get(table, *arow, "external_ids");
          guard_ops.push_back(waitOp(table, ruuid, guard));
          Json row = Json::object();
          for (const auto& c : changed) {
            row[c] = desired[c];
          }
          if (pp.action == Action::TakeOver) {
            ext[kOwnerKey] = input.owner_id;
            row["external_ids"] = ovsdb::makeStringMap(ext);
          }
          change_ops.push_back(
              {{"op", "update"},
               {"table", table},
               {"where", Json::array({Json::array({"_uuid", "==", ovsdb::uuidAtom(ruuid)})})},
               {"row", row}});
          break;
        }
        case Action::Remove:
          if (arow != nullptr) {
            guard_ops.push_back(waitOp(
                table, ruuid, {{"external_ids", replica.get(table, *arow, "external_ids")}}));
          }
          bridge_update[pi.column] = Json::array({"set", Json::array()});
          break;
        default:
          break;
      }
      bp.protocols.push_back(std::move(pp));
    }
    auto sets = sets_of.find(buuid);
    CollectorSetCtx cs{replica,    input, plan,
                       bp,         rule,  sets == sets_of.end() ? kNoSets : sets->second,
                       ipfix_refs, named, guard_ops,
                       change_ops};
    planCollectorSet(cs);

    if (!guard_ops.empty() || !change_ops.empty() || !bridge_update.empty()) {
      Json bguard = Json::object();
      bguard["name"] = replica.get("Bridge", brow, "name");
      for (const auto& pi : kProtocols) {
        if (schema.column("Bridge", pi.column) != nullptr) {
          bguard[pi.column] = replica.get("Bridge", brow, pi.column);
        }
      }
      ops.push_back(waitOp("Bridge", buuid, bguard));
      for (auto& op : guard_ops) {
        ops.push_back(std::move(op));
      }
      for (auto& op : change_ops) {
        ops.push_back(std::move(op));
      }
      if (!bridge_update.empty()) {
        ops.push_back(
            {{"op", "update"},
             {"table", "Bridge"},
             {"where", Json::array({Json::array({"_uuid", "==", ovsdb::uuidAtom(buuid)})})},
             {"row", bridge_update}});
      }
    }
    if (detached && !bp.protocols.empty()) {
      plan.warnings.push_back(fmt::format(
          "bridge {} ({}) is not in Open_vSwitch.bridges (deleted; kept by a collector set): "
          "removing our rows from it",
          bname, buuid.substr(0, 8)));
    }
    if (bp.rule >= 0 || !bp.protocols.empty()) {
      plan.bridges.push_back(std::move(bp));
    }
  }
  if (!ops.empty()) {
    ops.push_back({{"op", "comment"},
                   {"comment", fmt::format("net-collector {}: {} change(s)", input.owner_id,
                                           plan.changeCount())}});
  }
  plan.transaction = plan.errors.empty() ? ops : Json::array();
  return plan;
}

}  // namespace nc::ovsctl::provision
