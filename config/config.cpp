#include "config/config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>

#include "collector/query/filter.hpp"
#include "collector/query/query.hpp"
#include "common/units.hpp"

namespace nc::config {
namespace {

// Walks the YAML tree, reads typed values and records every error with its position and key path.
class Reader {
 public:
  Reader(std::string file, std::vector<ConfigError>& errors)
      : file_(std::move(file)), errors_(errors) {}

  void error(const YAML::Node& at, const std::string& path, std::string message) {
    ConfigError e;
    e.file = file_;
    if (at.IsDefined()) {
      YAML::Mark m = at.Mark();
      if (m.line >= 0) {
        e.line = m.line + 1;
        e.column = m.column + 1;
      }
    }
    e.path = path;
    e.message = std::move(message);
    errors_.push_back(std::move(e));
  }

  size_t errorCount() const { return errors_.size(); }

  // An error `column_offset` characters right of `at` (a position inside a scalar).
  void errorAt(const YAML::Node& at, const std::string& path, std::string message,
               int column_offset) {
    error(at, path, std::move(message));
    if (errors_.back().line > 0) {
      errors_.back().column += column_offset;
    }
  }

  // True when `n` is a map (or null/absent = empty map). Reports keys not in `allowed`.
  bool map(const YAML::Node& n, const std::string& path,
           std::initializer_list<std::string_view> allowed) {
    if (!n.IsDefined() || n.IsNull()) {
      return false;
    }
    if (!n.IsMap()) {
      error(n, path, "must be a mapping (key: value)");
      return false;
    }
    std::set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      if (!seen.insert(key).second) {
        error(it->first, join(path, key), "duplicate key (it is already set above)");
      }
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto a : allowed) {
          list += list.empty() ? "" : ", ";
          list += a;
        }
        error(it->first, join(path, key), fmt::format("unknown key (known keys: {})", list));
      }
    }
    return true;
  }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }

  bool scalar(const YAML::Node& n, const std::string& path) {
    if (!n.IsScalar()) {
      error(n, path, "must be a single value");
      return false;
    }
    return true;
  }

  // Whether n = parent[key] holds a scalar (its key path in `p`): false when the key is absent or
  // null (its default stays) or not a scalar (an error is recorded).
  bool present(const YAML::Node& n, std::string_view key, const std::string& path, std::string& p) {
    if (!n.IsDefined() || n.IsNull()) {
      return false;
    }
    p = join(path, key);
    return scalar(n, p);
  }

  void string(const YAML::Node& parent, std::string_view key, const std::string& path,
              std::string& out) {
    YAML::Node n = parent[std::string(key)];
    if (!n.IsDefined() || n.IsNull()) {
      return;
    }
    if (scalar(n, join(path, key))) {
      out = n.Scalar();
    }
  }

  template <typename T>
  bool uint(const YAML::Node& parent, std::string_view key, const std::string& path, T& out,
            uint64_t min, uint64_t max) {
    YAML::Node n = parent[std::string(key)];
    std::string p;
    if (!present(n, key, path, p)) {
      return false;
    }
    const std::string& s = n.Scalar();
    uint64_t v = 0;
    bool digits = !s.empty() && std::all_of(s.begin(), s.end(), ::isdigit) && s.size() < 20;
    if (!digits) {
      error(n, p, fmt::format("must be a whole number {}..{} (got '{}')", min, max, s));
      return false;
    }
    v = std::stoull(s);
    if (v < min || v > max) {
      error(n, p, fmt::format("must be {}..{} (got {})", min, max, v));
      return false;
    }
    out = static_cast<T>(v);
    return true;
  }

  void boolean(const YAML::Node& parent, std::string_view key, const std::string& path, bool& out) {
    YAML::Node n = parent[std::string(key)];
    std::string p;
    if (!present(n, key, path, p)) {
      return;
    }
    const std::string& s = n.Scalar();
    if (s == "true" || s == "yes" || s == "on") {
      out = true;
    } else if (s == "false" || s == "no" || s == "off") {
      out = false;
    } else {
      error(n, p, fmt::format("must be true or false (got '{}')", s));
    }
  }

  void number(const YAML::Node& parent, std::string_view key, const std::string& path, double& out,
              double min, double max) {
    YAML::Node n = parent[std::string(key)];
    std::string p;
    if (!present(n, key, path, p)) {
      return;
    }
    char* end = nullptr;
    double v = std::strtod(n.Scalar().c_str(), &end);
    if (end == nullptr || *end != '\0' || n.Scalar().empty() || !std::isfinite(v)) {
      error(n, p, fmt::format("must be a number (got '{}')", n.Scalar()));
    } else if (v < min || v > max) {
      error(n, p, fmt::format("must be {}..{} (got {})", min, max, v));
    } else {
      out = v;
    }
  }

  // A rate: a whole number with an optional decimal SI prefix (k, M, G, T) and an optional unit
  // ("bps", "b/s", "pps", "p/s"): 1000000, 1M, 10Mb/s, 500pps.
  void rate(const YAML::Node& parent, std::string_view key, const std::string& path,
            uint64_t& out) {
    YAML::Node n = parent[std::string(key)];
    std::string p;
    if (!present(n, key, path, p)) {
      return;
    }
    std::string s = n.Scalar();
    for (const char* unit : {"bps", "b/s", "pps", "p/s"}) {
      if (s.size() > std::strlen(unit) && s.ends_with(unit)) {
        s.resize(s.size() - std::strlen(unit));
        break;
      }
    }
    uint64_t mult = 1;
    if (!s.empty()) {
      switch (s.back()) {
        case 'k':
        case 'K':
          mult = 1000;
          break;
        case 'M':
          mult = 1000'000;
          break;
        case 'G':
          mult = 1000'000'000;
          break;
        case 'T':
          mult = 1000'000'000'000;
          break;
        default:
          break;
      }
      if (mult != 1) {
        s.pop_back();
      }
    }
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end == nullptr || *end != '\0' || !std::isfinite(v) || v < 0 ||
        v * static_cast<double>(mult) > 1e15) {
      error(n, p,
            fmt::format("must be a rate such as 1000000, 1M or 10Mb/s (got '{}')", n.Scalar()));
      return;
    }
    out = static_cast<uint64_t>(v * static_cast<double>(mult));
  }

  void size(const YAML::Node& parent, std::string_view key, const std::string& path, uint64_t& out,
            uint64_t min, uint64_t max) {
    YAML::Node n = parent[std::string(key)];
    std::string p;
    if (!present(n, key, path, p)) {
      return;
    }
    std::string why;
    auto v = units::parseSize(n.Scalar(), &why);
    if (!v) {
      error(n, p, why);
    } else if (*v < min || *v > max) {
      error(n, p,
            fmt::format("must be {}..{} (got {})", units::formatBytes(min), units::formatBytes(max),
                        n.Scalar()));
    } else {
      out = *v;
    }
  }

  void duration(const YAML::Node& parent, std::string_view key, const std::string& path,
                uint64_t& out_ms, uint64_t min_ms, uint64_t max_ms) {
    YAML::Node n = parent[std::string(key)];
    std::string p;
    if (!present(n, key, path, p)) {
      return;
    }
    std::string why;
    auto v = units::parseDurationMs(n.Scalar(), &why);
    if (!v) {
      error(n, p, why);
    } else if (*v < min_ms || *v > max_ms) {
      error(n, p,
            fmt::format("must be {}..{} (got {})", units::formatDurationMs(min_ms),
                        units::formatDurationMs(max_ms), n.Scalar()));
    } else {
      out_ms = *v;
    }
  }

  // Seconds given as a duration ("60s", "2m") or a bare number of seconds.
  void seconds(const YAML::Node& parent, std::string_view key, const std::string& path,
               uint32_t& out, uint32_t min_s, uint32_t max_s) {
    uint64_t ms = uint64_t{out} * 1000;
    size_t before = errors_.size();
    duration(parent, key, path, ms, uint64_t{min_s} * 1000, uint64_t{max_s} * 1000);
    if (errors_.size() == before) {
      if (ms % 1000 != 0) {
        error(parent[std::string(key)], join(path, key), "must be whole seconds");
        return;
      }
      out = static_cast<uint32_t>(ms / 1000);
    }
  }

  // A list of strings; a single string is accepted as a one-element list.
  void stringList(const YAML::Node& parent, std::string_view key, const std::string& path,
                  std::vector<std::string>& out) {
    YAML::Node n = parent[std::string(key)];
    if (!n.IsDefined() || n.IsNull()) {
      return;
    }
    std::string p = join(path, key);
    if (n.IsScalar()) {
      out = {n.Scalar()};
      return;
    }
    if (!n.IsSequence()) {
      error(n, p, "must be a string or a list of strings");
      return;
    }
    out.clear();
    for (size_t i = 0; i < n.size(); ++i) {
      if (scalar(n[i], fmt::format("{}[{}]", p, i))) {
        out.push_back(n[i].Scalar());
      }
    }
  }

  // A list; each element is read by `fn(node, path)`. Returns false when absent.
  template <typename Fn>
  bool list(const YAML::Node& parent, std::string_view key, const std::string& path, Fn fn) {
    YAML::Node n = parent[std::string(key)];
    if (!n.IsDefined() || n.IsNull()) {
      return false;
    }
    std::string p = join(path, key);
    if (!n.IsSequence()) {
      error(n, p, "must be a list");
      return false;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      fn(n[i], fmt::format("{}[{}]", p, i));
    }
    return true;
  }

 private:
  std::string file_;
  std::vector<ConfigError>& errors_;
};

bool validIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// "10.0.0.0/8", "2001:db8::/32" or a bare address.
bool validCidr(const std::string& s, std::string* why) {
  auto slash = s.find('/');
  std::string addr = s.substr(0, slash);
  if (!validIp(addr)) {
    *why = fmt::format("'{}' is not an IP address or CIDR network", s);
    return false;
  }
  if (slash != std::string::npos) {
    std::string len = s.substr(slash + 1);
    int max = addr.find(':') != std::string::npos ? 128 : 32;
    if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit) ||
        std::stoi(len) > max) {
      *why = fmt::format("'{}' has a bad prefix length (0..{})", s, max);
      return false;
    }
  }
  return true;
}

// "host:port" or "[v6]:port"; host may be a name.
bool validHostPort(const std::string& s, std::string* why, bool allow_zero = false) {
  std::string host;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find("]:");
    if (close == std::string::npos) {
      *why = fmt::format("'{}' must look like [ADDR]:PORT", s);
      return false;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (!validIp(host)) {
      *why = fmt::format("'{}' has a bad IPv6 address", s);
      return false;
    }
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || s.find(':') != colon) {
      *why = fmt::format("'{}' must look like HOST:PORT (IPv6 as [ADDR]:PORT)", s);
      return false;
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
      std::stoi(port) < (allow_zero ? 0 : 1) || std::stoi(port) > 65535) {
    *why = fmt::format("'{}' has a bad port ({}..65535)", s, allow_zero ? 0 : 1);
    return false;
  }
  return true;
}

void readTargets(Reader& r, const YAML::Node& n, const std::string& path,
                 std::vector<std::string>& out) {
  r.stringList(n, "targets", path, out);
  YAML::Node tn = n["targets"];
  for (size_t i = 0; i < out.size(); ++i) {
    std::string why;
    if (!validHostPort(out[i], &why)) {
      r.error(tn.IsSequence() ? tn[i] : tn, fmt::format("{}.targets[{}]", path, i), why);
    }
  }
}

void readCollector(Reader& r, const YAML::Node& n, CollectorConfig& c) {
  const std::string path = "collector";
  if (!r.map(n, path, {"listen", "threads", "rcvbuf", "allow", "templates", "exporters"})) {
    return;
  }
  std::vector<ListenAddr> listen;
  bool have = r.list(n, "listen", path, [&](const YAML::Node& e, const std::string& p) {
    ListenAddr a;
    const size_t errors_before = r.errorCount();
    if (e.IsScalar()) {
      // "ADDR:PORT", "[V6]:PORT" or a bare port.
      std::string s = e.Scalar();
      std::string why;
      if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
        s = "0.0.0.0:" + s;
      }
      if (!validHostPort(s, &why, /*allow_zero=*/true)) {
        r.error(e, p, why);
        return;
      }
      auto colon = s.rfind(':');
      a.address = s.substr(0, colon);
      if (a.address.front() == '[') {
        a.address = a.address.substr(1, a.address.size() - 2);
      }
      // The daemon binds literals only (no name resolution), so a host name is an error here
      // rather than a start-up failure.
      if (!validIp(a.address)) {
        r.error(e, p,
                fmt::format("'{}' is not an IPv4 or IPv6 address (host names are not resolved; "
                            "use e.g. 0.0.0.0:2055 or [::]:2055)",
                            a.address));
        return;
      }
      a.port = static_cast<uint16_t>(std::stoi(s.substr(colon + 1)));
    } else {
      if (!r.map(e, p, {"address", "port"})) {
        r.error(e, p, "must be {address: ADDR, port: PORT} or \"ADDR:PORT\"");
        return;
      }
      r.string(e, "address", p, a.address);
      r.uint(e, "port", p, a.port, 0, 65535);
      if (!validIp(a.address)) {
        r.error(e["address"], p + ".address",
                fmt::format("'{}' is not an IPv4 or IPv6 address", a.address));
      }
    }
    if (r.errorCount() != errors_before) {
      return;  // a broken entry is reported once, not also as a duplicate of a default
    }
    if (std::find(listen.begin(), listen.end(), a) != listen.end()) {
      r.error(e, p, fmt::format("duplicate listener {}:{}", a.address, a.port));
      return;
    }
    listen.push_back(a);
  });
  if (have) {
    if (n["listen"].size() == 0) {
      r.error(n["listen"], "collector.listen", "needs at least one listener");
    }
    c.listen = std::move(listen);
  }
  YAML::Node t = n["threads"];
  if (t.IsDefined() && !t.IsNull()) {
    if (t.IsScalar() && t.Scalar() == "auto") {
      c.threads = 0;
    } else {
      r.uint(n, "threads", path, c.threads, 1, 256);
    }
  }
  r.size(n, "rcvbuf", path, c.rcvbuf, 64 * 1024, 2ull * 1024 * 1024 * 1024);
  r.stringList(n, "allow", path, c.allow);
  for (size_t i = 0; i < c.allow.size(); ++i) {
    std::string why;
    if (!validCidr(c.allow[i], &why)) {
      r.error(n["allow"].IsSequence() ? n["allow"][i] : n["allow"],
              fmt::format("collector.allow[{}]", i), why);
    }
  }
  r.string(n, "templates", path, c.templates);
  r.list(n, "exporters", path, [&](const YAML::Node& e, const std::string& p) {
    ExporterOverride o;
    if (!r.map(e, p, {"network", "sampling_rate", "interfaces", "kind"})) {
      r.error(e, p, "must be a mapping with at least 'network'");
      return;
    }
    r.string(e, "network", p, o.network);
    std::string why;
    if (o.network.empty()) {
      r.error(e, p + ".network", "is required");
    } else if (!validCidr(o.network, &why)) {
      r.error(e["network"], p + ".network", why);
    }
    r.uint(e, "sampling_rate", p, o.sampling_rate, 1, 1u << 30);
    o.interfaces = "auto";
    r.string(e, "interfaces", p, o.interfaces);
    if (o.interfaces != "auto" && o.interfaces != "snmp" && o.interfaces != "ifindex" &&
        o.interfaces != "ofport") {
      r.error(e["interfaces"], p + ".interfaces",
              fmt::format("must be auto, snmp, ifindex or ofport (got '{}')", o.interfaces));
    }
    o.kind = "auto";
    r.string(e, "kind", p, o.kind);
    if (o.kind != "auto" && o.kind != "ovs" && o.kind != "router") {
      r.error(e["kind"], p + ".kind",
              fmt::format("must be auto, ovs or router (got '{}')", o.kind));
    }
    c.exporters.push_back(o);
  });
}

void readStore(Reader& r, const YAML::Node& n, StoreConfig& s) {
  const std::string path = "store";
  if (!r.map(n, path, {"path", "rotate", "retention", "compression", "queue"})) {
    return;
  }
  r.string(n, "path", path, s.path);
  if (s.path.empty()) {
    r.error(n["path"], "store.path", "must not be empty");
  }
  r.duration(n, "rotate", path, s.rotate_ms, 1000, 86400 * 1000);
  YAML::Node ret = n["retention"];
  if (r.map(ret, "store.retention", {"max_age", "max_size"})) {
    r.duration(ret, "max_age", "store.retention", s.retention.max_age_ms, 60 * 1000,
               3650ull * 86400 * 1000);
    r.size(ret, "max_size", "store.retention", s.retention.max_size, 1024 * 1024, 1ull << 60);
    if (s.retention.max_age_ms < s.rotate_ms) {
      r.error(ret["max_age"], "store.retention.max_age",
              "must be at least store.rotate (a segment would expire before it closes)");
    }
  }
  r.string(n, "compression", path, s.compression);
  if (s.compression != "zstd" && s.compression != "lz4" && s.compression != "none") {
    r.error(n["compression"], "store.compression",
            fmt::format("must be zstd, lz4 or none (got '{}')", s.compression));
  }
  r.size(n, "queue", path, s.queue_size, 1024 * 1024, 64ull << 30);
}

void readOvsdb(Reader& r, const YAML::Node& n, OvsdbConfig& o) {
  if (!r.map(n, "ovsdb", {"enabled", "endpoint"})) {
    return;
  }
  r.boolean(n, "enabled", "ovsdb", o.enabled);
  r.string(n, "endpoint", "ovsdb", o.endpoint);
  std::string why;
  if (o.endpoint.rfind("unix:", 0) == 0) {
    if (o.endpoint.size() == 5) {
      r.error(n["endpoint"], "ovsdb.endpoint", "unix: needs a socket path");
    }
  } else if (o.endpoint.rfind("tcp:", 0) == 0) {
    if (!validHostPort(o.endpoint.substr(4), &why)) {
      r.error(n["endpoint"], "ovsdb.endpoint", why);
    }
  } else {
    r.error(n["endpoint"], "ovsdb.endpoint",
            fmt::format("must be unix:PATH or tcp:HOST:PORT (got '{}')", o.endpoint));
  }
}

void readBridges(Reader& r, const YAML::Node& root, std::vector<BridgeRule>& out) {
  r.list(root, "bridges", "", [&](const YAML::Node& n, const std::string& p) {
    BridgeRule b;
    if (!r.map(n, p, {"match", "takeover", "sflow", "ipfix", "netflow"})) {
      r.error(n, p, "must be a mapping with 'match' and at least one of sflow, ipfix, netflow");
      return;
    }
    r.stringList(n, "match", p, b.match);
    if (b.match.empty()) {
      r.error(n["match"], p + ".match", "needs at least one bridge name or pattern");
    }
    for (size_t i = 0; i < b.match.size(); ++i) {
      if (b.match[i].empty() || b.match[i].find_first_of(" \t\"'") != std::string::npos) {
        r.error(n["match"], fmt::format("{}.match[{}]", p, i),
                fmt::format("'{}' is not a bridge name or glob pattern", b.match[i]));
      }
    }
    r.boolean(n, "takeover", p, b.takeover);
    YAML::Node s = n["sflow"];
    if (s.IsDefined()) {
      std::string sp = p + ".sflow";
      b.sflow.emplace();
      if (r.map(s, sp, {"sampling", "polling", "header", "agent", "targets"})) {
        r.uint(s, "sampling", sp, b.sflow->sampling, 1, 1u << 30);
        r.seconds(s, "polling", sp, b.sflow->polling, 0, 3600);
        r.uint(s, "header", sp, b.sflow->header, 18, 512);
        r.string(s, "agent", sp, b.sflow->agent);
        readTargets(r, s, sp, b.sflow->targets);
      }
    }
    YAML::Node i = n["ipfix"];
    if (i.IsDefined()) {
      std::string ip = p + ".ipfix";
      b.ipfix.emplace();
      if (r.map(i, ip,
                {"sampling", "obs_domain_id", "obs_point_id", "cache_active_timeout",
                 "cache_max_flows", "targets", "collector_set_id"})) {
        r.uint(i, "sampling", ip, b.ipfix->sampling, 1, 0xffffffffu);
        r.uint(i, "obs_domain_id", ip, b.ipfix->obs_domain_id, 0, 0xffffffffu);
        r.uint(i, "obs_point_id", ip, b.ipfix->obs_point_id, 0, 0xffffffffu);
        r.seconds(i, "cache_active_timeout", ip, b.ipfix->cache_active_timeout, 1, 4200);
        b.ipfix->cache_active_timeout_given = i["cache_active_timeout"].IsDefined();
        r.uint(i, "cache_max_flows", ip, b.ipfix->cache_max_flows, 1, 4294967295u);
        readTargets(r, i, ip, b.ipfix->targets);
        uint32_t id = 0;
        if (r.uint(i, "collector_set_id", ip, id, 0, 0xffffffffu)) {
          b.ipfix->collector_set_id = id;
        }
      }
    }
    YAML::Node f = n["netflow"];
    if (f.IsDefined()) {
      std::string fp = p + ".netflow";
      b.netflow.emplace();
      if (r.map(f, fp,
                {"active_timeout", "engine_type", "engine_id", "add_id_to_interface", "targets"})) {
        r.seconds(f, "active_timeout", fp, b.netflow->active_timeout, 1, 3600);
        b.netflow->active_timeout_given = f["active_timeout"].IsDefined();
        uint32_t v = 0;
        if (r.uint(f, "engine_type", fp, v, 0, 255)) {
          b.netflow->engine_type = v;
        }
        if (r.uint(f, "engine_id", fp, v, 0, 255)) {
          b.netflow->engine_id = v;
        }
        r.boolean(f, "add_id_to_interface", fp, b.netflow->add_id_to_interface);
        readTargets(r, f, fp, b.netflow->targets);
      }
    }
    if (!b.sflow && !b.ipfix && !b.netflow) {
      r.error(n, p, "declares no export: add sflow, ipfix and/or netflow");
    }
    out.push_back(std::move(b));
  });
}

// A profile's start or end: an absolute time (RFC 3339, "YYYY-MM-DD[ HH:MM[:SS]]", "@UNIX");
// relative forms would move at every reload.
void readProfileTime(Reader& r, const YAML::Node& n, std::string_view key, const std::string& path,
                     uint64_t& out) {
  YAML::Node t = n[std::string(key)];
  std::string p;
  if (!r.present(t, key, path, p)) {
    return;
  }
  const std::string& s = t.Scalar();
  uint64_t v = 0;
  std::string why;
  if (s.empty() || s == "now" || s[0] == '-' || !query::parseTimeSpec(s, 0, v, &why)) {
    r.error(t, p,
            fmt::format("must be an absolute time such as \"2026-11-01T00:00:00Z\" or "
                        "\"2026-11-01 08:00\" (got '{}')",
                        s));
    return;
  }
  out = v;
}

// The YAML node a definition error's path ("channels[2].sources[1]") points at.
YAML::Node nodeAt(const YAML::Node& prof, const std::string& def_path) {
  // Node::operator= would assign through to the tree: rebind with reset() instead.
  YAML::Node n;
  n.reset(prof);
  size_t at = 0;
  while (at < def_path.size() && n.IsDefined()) {
    size_t dot = def_path.find('.', at);
    std::string part = def_path.substr(at, dot == std::string::npos ? std::string::npos : dot - at);
    at = dot == std::string::npos ? def_path.size() : dot + 1;
    const size_t br = part.find('[');
    YAML::Node next = n.IsMap() ? n[part.substr(0, br)] : YAML::Node();
    if (!next.IsDefined()) {
      return n;
    }
    n.reset(next);
    if (br != std::string::npos) {
      const size_t i = std::stoul(part.substr(br + 1));
      if (!n.IsSequence() || i >= n.size()) {
        return n;
      }
      n.reset(n[i]);
    }
  }
  return n;
}

void readChannel(Reader& r, const YAML::Node& c, const std::string& cp, profile::ChannelDef& ch) {
  if (!r.map(c, cp, {"name", "filter", "colour", "sign", "order", "sources"})) {
    r.error(c, cp, "must be a mapping with 'name' and 'filter'");
    return;
  }
  r.string(c, "name", cp, ch.name);
  r.string(c, "filter", cp, ch.filter);
  r.string(c, "colour", cp, ch.colour);
  std::string sign = "+";
  r.string(c, "sign", cp, sign);
  if (sign == "+" || sign == "-") {
    ch.sign = sign[0];
  } else {
    r.error(c["sign"], cp + ".sign", fmt::format("must be '+' or '-' (got '{}')", sign));
  }
  r.uint(c, "order", cp, ch.order, 0, profile::kMaxChannelsPerProfile);
  r.stringList(c, "sources", cp, ch.sources);
  if (ch.name.empty()) {
    r.error(c, cp + ".name", "is required");
  }
}

void readDeclared(Reader& r, const YAML::Node& parent, std::string_view key,
                  const std::string& path, std::vector<profile::ProfileDef>& out) {
  const uint64_t now = static_cast<uint64_t>(std::time(nullptr)) * 1'000'000'000ull;
  r.list(parent, key, path, [&](const YAML::Node& n, const std::string& p) {
    profile::ProfileDef prof;
    if (!r.map(n, p,
               {"name", "group", "description", "type", "start", "end", "expire", "maxsize",
                "channels"})) {
      r.error(n, p, "must be a mapping with 'name' and 'channels'");
      return;
    }
    r.string(n, "name", p, prof.name);
    if (prof.name.empty()) {
      r.error(n, p + ".name", "is required");
    }
    r.string(n, "group", p, prof.group);
    if (prof.group.empty()) {
      prof.group = ".";
    }
    r.string(n, "description", p, prof.description);
    std::string type = "continuous";
    r.string(n, "type", p, type);
    if (!profile::parseProfileType(type, prof.type)) {
      r.error(n["type"], p + ".type",
              fmt::format("must be continuous, history or shadow (got '{}')", type));
    }
    readProfileTime(r, n, "start", p, prof.start_ns);
    readProfileTime(r, n, "end", p, prof.end_ns);
    r.duration(n, "expire", p, prof.expire_ms, 0, 100ull * 365 * 86400 * 1000);
    r.size(n, "maxsize", p, prof.maxsize, 0, UINT64_MAX);
    const size_t before = r.errorCount();
    r.list(n, "channels", p, [&](const YAML::Node& c, const std::string& cp) {
      profile::ChannelDef ch;
      readChannel(r, c, cp, ch);
      prof.channels.push_back(ch);
    });
    // The profile module's rules (names, colours, filters, sources, type and times), reported at
    // the key they concern; only when reading found nothing (no second report of one problem).
    if (r.errorCount() == before && !prof.name.empty()) {
      for (const profile::DefError& e : profile::validate(prof, now)) {
        YAML::Node at = nodeAt(n, e.path);
        if (e.is_filter) {
          // Point at the character the filter compiler points at (one line, plain or quoted).
          query::FilterError fe;
          const std::string& text = at.Scalar();
          query::Filter::compile(text, &fe);
          r.errorAt(at, p + "." + e.path, fmt::format("bad filter: {} (in '{}')", fe.message, text),
                    text.find('\n') == std::string::npos
                        ? static_cast<int>(fe.offset) + (at.Tag() == "!" ? 1 : 0)
                        : 0);
        } else {
          r.error(at, p + "." + e.path, e.message);
        }
      }
    }
    for (const auto& other : out) {
      if (other.name == prof.name) {
        r.error(n["name"], p + ".name", fmt::format("duplicate profile name '{}'", prof.name));
      }
    }
    out.push_back(std::move(prof));
  });
}

// `profiles:` is a mapping {path, step, delay, max_span, declared: [...]}; a bare list is read as
// the declared profiles (the shape of earlier versions).
void readProfiles(Reader& r, const YAML::Node& root, ProfilesConfig& out) {
  YAML::Node n = root["profiles"];
  if (!n.IsDefined() || n.IsNull()) {
    return;
  }
  if (n.IsSequence()) {
    readDeclared(r, root, "profiles", "", out.declared);
    return;
  }
  const std::string path = "profiles";
  if (!r.map(n, path, {"path", "step", "delay", "max_span", "declared"})) {
    return;
  }
  r.string(n, "path", path, out.path);
  if (out.path.empty()) {
    r.error(n["path"], "profiles.path", "must not be empty");
  }
  r.duration(n, "step", path, out.step_ms, 1000, 3600 * 1000);
  if (out.step_ms % 1000 != 0) {
    r.error(n["step"], "profiles.step", "must be whole seconds");
  }
  r.duration(n, "delay", path, out.delay_ms, 0, 3600 * 1000);
  r.duration(n, "max_span", path, out.max_span_ms, 0, 24 * 3600 * 1000);
  readDeclared(r, n, "declared", path, out.declared);
  if (out.declared.size() > profile::kMaxProfiles) {
    r.error(n["declared"], "profiles.declared",
            fmt::format("at most {} profiles", profile::kMaxProfiles));
  }
}

void readTop(Reader& r, const YAML::Node& root, Config& c) {
  if (!root.IsDefined() || root.IsNull()) {
    return;  // empty file: all defaults
  }
  if (!r.map(root, "",
             {"collector", "store", "ovsdb", "bridges", "profiles", "correlation", "control",
              "http", "log"})) {
    return;
  }
  readCollector(r, root["collector"], c.collector);
  readStore(r, root["store"], c.store);
  readOvsdb(r, root["ovsdb"], c.ovsdb);
  readBridges(r, root, c.bridges);
  readProfiles(r, root, c.profiles);
  YAML::Node corr = root["correlation"];
  if (r.map(corr, "correlation",
            {"enabled", "step", "warmup", "sensitivity", "min_bps", "min_pps", "cooldown",
             "active_timeout", "webhook", "retention"})) {
    auto& k = c.correlation;
    r.boolean(corr, "enabled", "correlation", k.enabled);
    r.duration(corr, "step", "correlation", k.step_ms, 1000, 3600 * 1000);
    r.duration(corr, "warmup", "correlation", k.warmup_ms, 0, 7 * 86400 * 1000ull);
    r.number(corr, "sensitivity", "correlation", k.sensitivity, 0.5, 100.0);
    r.rate(corr, "min_bps", "correlation", k.min_bps);
    r.rate(corr, "min_pps", "correlation", k.min_pps);
    r.duration(corr, "cooldown", "correlation", k.cooldown_ms, 0, 86400 * 1000);
    r.seconds(corr, "active_timeout", "correlation", k.active_timeout, 1, 3600);
    r.string(corr, "webhook", "correlation", k.webhook);
    if (!k.webhook.empty() && k.webhook.rfind("http://", 0) != 0) {
      r.error(corr["webhook"], "correlation.webhook",
              fmt::format("must be an http://host:port/path URL (got '{}'; https is not "
                          "supported)",
                          k.webhook));
    }
    r.duration(corr, "retention", "correlation", k.retention_ms, 3600 * 1000,
               3650ull * 86400 * 1000);
    if (k.step_ms % 1000 != 0) {
      r.error(corr["step"], "correlation.step", "must be whole seconds");
    }
  }
  YAML::Node ctl = root["control"];
  if (r.map(ctl, "control", {"socket"})) {
    r.string(ctl, "socket", "control", c.control.socket);
    if (c.control.socket.empty()) {
      r.error(ctl["socket"], "control.socket", "must not be empty");
    }
  }
  YAML::Node http = root["http"];
  if (r.map(http, "http", {"enabled", "listen", "token", "token_file"})) {
    r.boolean(http, "enabled", "http", c.http.enabled);
    r.string(http, "listen", "http", c.http.listen);
    r.string(http, "token", "http", c.http.token);
    r.string(http, "token_file", "http", c.http.token_file);
    std::string why;
    if (!validHostPort(c.http.listen, &why)) {
      r.error(http["listen"], "http.listen", why);
    }
    if (!c.http.token.empty() && !c.http.token_file.empty()) {
      r.error(http["token_file"], "http.token_file", "give either token or token_file, not both");
    }
  }
  YAML::Node lg = root["log"];
  if (r.map(lg, "log", {"level"})) {
    r.string(lg, "level", "log", c.log.level);
    if (c.log.level != "debug" && c.log.level != "info" && c.log.level != "warning" &&
        c.log.level != "error") {
      r.error(lg["level"], "log.level",
              fmt::format("must be debug, info, warning or error (got '{}')", c.log.level));
    }
  }
}

}  // namespace

std::vector<BridgeRule> effectiveBridgeRules(const Config& c) {
  std::vector<BridgeRule> rules = c.bridges;
  if (!c.correlation.enabled) {
    return rules;
  }
  for (auto& r : rules) {
    if (r.netflow && !r.netflow->active_timeout_given) {
      r.netflow->active_timeout = c.correlation.active_timeout;
    }
    if (r.ipfix && !r.ipfix->cache_active_timeout_given) {
      r.ipfix->cache_active_timeout = c.correlation.active_timeout;
    }
  }
  return rules;
}

std::string ConfigError::toString() const {
  if (line > 0) {
    return fmt::format("{}:{}:{}: {}: {}", file, line, column, path.empty() ? "(top)" : path,
                       message);
  }
  return fmt::format("{}: {}: {}", file, path.empty() ? "(top)" : path, message);
}

LoadResult loadString(std::string_view yaml, const std::string& name) {
  LoadResult res;
  Reader r(name, res.errors);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::ParserException& e) {
    ConfigError err;
    err.file = name;
    err.line = e.mark.line + 1;
    err.column = e.mark.column + 1;
    err.message = "YAML syntax error: " + e.msg;
    res.errors.push_back(err);
    return res;
  }
  try {
    readTop(r, root, res.config);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on odd shapes (e.g. a key that is itself a map); report, do not crash.
    ConfigError err;
    err.file = name;
    err.line = e.mark.line + 1;
    err.column = e.mark.column + 1;
    err.message = std::string("cannot read: ") + e.msg;
    res.errors.push_back(err);
  }
  std::stable_sort(res.errors.begin(), res.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                   });
  return res;
}

LoadResult loadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    LoadResult res;
    ConfigError e;
    e.file = path;
    e.message = fmt::format("cannot read the file: {}", std::strerror(errno));
    res.errors.push_back(e);
    return res;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return loadString(ss.str(), path);
}

namespace {

// One declared profile, as `profiles.declared` takes it.
void emitProfile(YAML::Emitter& out, const profile::ProfileDef& p) {
  out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << p.name;
  out << YAML::Key << "group" << YAML::Value << p.group;
  if (!p.description.empty()) {
    out << YAML::Key << "description" << YAML::Value << p.description;
  }
  out << YAML::Key << "type" << YAML::Value << std::string(profile::toString(p.type));
  if (p.start_ns != 0) {
    out << YAML::Key << "start" << YAML::Value << fmt::format("@{}", p.start_ns / 1'000'000'000);
  }
  if (p.end_ns != 0) {
    out << YAML::Key << "end" << YAML::Value << fmt::format("@{}", p.end_ns / 1'000'000'000);
  }
  out << YAML::Key << "expire" << YAML::Value << units::formatDurationMs(p.expire_ms);
  out << YAML::Key << "maxsize" << YAML::Value << p.maxsize;
  out << YAML::Key << "channels" << YAML::Value << YAML::BeginSeq;
  for (const auto& ch : p.channels) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << ch.name
        << YAML::Key << "filter" << YAML::Value << ch.filter;
    if (!ch.colour.empty()) {
      out << YAML::Key << "colour" << YAML::Value << YAML::DoubleQuoted << ch.colour;
    }
    out << YAML::Key << "sign" << YAML::Value << YAML::DoubleQuoted << std::string(1, ch.sign)
        << YAML::Key << "order" << YAML::Value << ch.order;
    if (!ch.sources.empty()) {
      out << YAML::Key << "sources" << YAML::Value << YAML::Flow << ch.sources;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
}

}  // namespace

std::string dumpProfiles(const std::vector<profile::ProfileDef>& profiles) {
  YAML::Emitter out;
  out << YAML::BeginSeq;
  for (const auto& p : profiles) {
    emitProfile(out, p);
  }
  out << YAML::EndSeq;
  return std::string(out.c_str()) + "\n";
}

std::string dump(const Config& c) {
  YAML::Emitter out;
  auto targets = [&](const std::vector<std::string>& t) {
    out << YAML::Key << "targets" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& s : t) {
      out << s;
    }
    out << YAML::EndSeq;
  };
  out << YAML::BeginMap;
  out << YAML::Key << "collector" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "listen" << YAML::Value << YAML::BeginSeq;
  for (const auto& l : c.collector.listen) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "address" << YAML::Value << l.address
        << YAML::Key << "port" << YAML::Value << l.port << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "threads" << YAML::Value;
  if (c.collector.threads == 0) {
    out << "auto";
  } else {
    out << c.collector.threads;
  }
  out << YAML::Key << "rcvbuf" << YAML::Value << c.collector.rcvbuf;
  out << YAML::Key << "allow" << YAML::Value << YAML::Flow << c.collector.allow;
  out << YAML::Key << "templates" << YAML::Value << c.collector.templates;
  out << YAML::Key << "exporters" << YAML::Value << YAML::BeginSeq;
  for (const auto& e : c.collector.exporters) {
    out << YAML::BeginMap << YAML::Key << "network" << YAML::Value << e.network;
    if (e.sampling_rate != 0) {
      out << YAML::Key << "sampling_rate" << YAML::Value << e.sampling_rate;
    }
    out << YAML::Key << "interfaces" << YAML::Value << e.interfaces << YAML::Key << "kind"
        << YAML::Value << e.kind << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;

  out << YAML::Key << "store" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "path" << YAML::Value << c.store.path;
  out << YAML::Key << "rotate" << YAML::Value << units::formatDurationMs(c.store.rotate_ms);
  out << YAML::Key << "retention" << YAML::Value << YAML::BeginMap << YAML::Key << "max_age"
      << YAML::Value << units::formatDurationMs(c.store.retention.max_age_ms) << YAML::Key
      << "max_size" << YAML::Value << c.store.retention.max_size << YAML::EndMap;
  out << YAML::Key << "compression" << YAML::Value << c.store.compression;
  out << YAML::Key << "queue" << YAML::Value << c.store.queue_size;
  out << YAML::EndMap;

  out << YAML::Key << "ovsdb" << YAML::Value << YAML::BeginMap << YAML::Key << "enabled"
      << YAML::Value << c.ovsdb.enabled << YAML::Key << "endpoint" << YAML::Value
      << c.ovsdb.endpoint << YAML::EndMap;

  out << YAML::Key << "bridges" << YAML::Value << YAML::BeginSeq;
  for (const auto& b : c.bridges) {
    out << YAML::BeginMap;
    out << YAML::Key << "match" << YAML::Value << YAML::Flow << b.match;
    out << YAML::Key << "takeover" << YAML::Value << b.takeover;
    if (b.sflow) {
      out << YAML::Key << "sflow" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "sampling" << YAML::Value << b.sflow->sampling;
      out << YAML::Key << "polling" << YAML::Value << b.sflow->polling;
      out << YAML::Key << "header" << YAML::Value << b.sflow->header;
      if (!b.sflow->agent.empty()) {
        out << YAML::Key << "agent" << YAML::Value << b.sflow->agent;
      }
      targets(b.sflow->targets);
      out << YAML::EndMap;
    }
    if (b.ipfix) {
      out << YAML::Key << "ipfix" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "sampling" << YAML::Value << b.ipfix->sampling;
      out << YAML::Key << "obs_domain_id" << YAML::Value << b.ipfix->obs_domain_id;
      out << YAML::Key << "obs_point_id" << YAML::Value << b.ipfix->obs_point_id;
      if (b.ipfix->cache_active_timeout_given) {
        out << YAML::Key << "cache_active_timeout" << YAML::Value << b.ipfix->cache_active_timeout;
      }
      out << YAML::Key << "cache_max_flows" << YAML::Value << b.ipfix->cache_max_flows;
      targets(b.ipfix->targets);
      if (b.ipfix->collector_set_id) {
        out << YAML::Key << "collector_set_id" << YAML::Value << *b.ipfix->collector_set_id;
      }
      out << YAML::EndMap;
    }
    if (b.netflow) {
      out << YAML::Key << "netflow" << YAML::Value << YAML::BeginMap;
      if (b.netflow->active_timeout_given) {
        out << YAML::Key << "active_timeout" << YAML::Value << b.netflow->active_timeout;
      }
      if (b.netflow->engine_type) {
        out << YAML::Key << "engine_type" << YAML::Value << *b.netflow->engine_type;
      }
      if (b.netflow->engine_id) {
        out << YAML::Key << "engine_id" << YAML::Value << *b.netflow->engine_id;
      }
      out << YAML::Key << "add_id_to_interface" << YAML::Value << b.netflow->add_id_to_interface;
      targets(b.netflow->targets);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  {
    const auto& pc = c.profiles;
    out << YAML::Key << "profiles" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "path" << YAML::Value << pc.path;
    out << YAML::Key << "step" << YAML::Value << units::formatDurationMs(pc.step_ms);
    out << YAML::Key << "delay" << YAML::Value << units::formatDurationMs(pc.delay_ms);
    out << YAML::Key << "max_span" << YAML::Value << units::formatDurationMs(pc.max_span_ms);
    out << YAML::Key << "declared" << YAML::Value << YAML::BeginSeq;
    for (const auto& p : pc.declared) {
      emitProfile(out, p);
    }
    out << YAML::EndSeq << YAML::EndMap;
  }

  {
    const auto& k = c.correlation;
    out << YAML::Key << "correlation" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "enabled" << YAML::Value << k.enabled;
    out << YAML::Key << "step" << YAML::Value << units::formatDurationMs(k.step_ms);
    out << YAML::Key << "warmup" << YAML::Value << units::formatDurationMs(k.warmup_ms);
    out << YAML::Key << "sensitivity" << YAML::Value << k.sensitivity;
    out << YAML::Key << "min_bps" << YAML::Value << k.min_bps;
    out << YAML::Key << "min_pps" << YAML::Value << k.min_pps;
    out << YAML::Key << "cooldown" << YAML::Value << units::formatDurationMs(k.cooldown_ms);
    out << YAML::Key << "active_timeout" << YAML::Value
        << units::formatDurationMs(uint64_t{k.active_timeout} * 1000);
    out << YAML::Key << "webhook" << YAML::Value << k.webhook;
    out << YAML::Key << "retention" << YAML::Value << units::formatDurationMs(k.retention_ms);
    out << YAML::EndMap;
  }
  out << YAML::Key << "control" << YAML::Value << YAML::BeginMap << YAML::Key << "socket"
      << YAML::Value << c.control.socket << YAML::EndMap;
  out << YAML::Key << "http" << YAML::Value << YAML::BeginMap << YAML::Key << "enabled"
      << YAML::Value << c.http.enabled << YAML::Key << "listen" << YAML::Value << c.http.listen;
  // The token itself is a secret: the dump only says whether one is set.
  out << YAML::Key << "token" << YAML::Value << (c.http.token.empty() ? "" : "(set)");
  out << YAML::Key << "token_file" << YAML::Value << c.http.token_file << YAML::EndMap;
  out << YAML::Key << "log" << YAML::Value << YAML::BeginMap << YAML::Key << "level" << YAML::Value
      << c.log.level << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace nc::config
