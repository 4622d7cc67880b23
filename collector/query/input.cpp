#include "collector/query/input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "collector/record/fields.hpp"

namespace nc::query {
namespace {

using nlohmann::json;

// nfdump's "2026-11-26T16:13:45.015" (local time, no zone) -> UNIX ns.
bool parseNfdumpTime(const std::string& s, uint64_t& out) {
  std::tm tm{};
  int ms = 0;
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return false;
  }
  size_t i = static_cast<size_t>(consumed);
  if (i < s.size() && s[i] == '.') {
    int scale = 100;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      ms += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i < s.size()) {  // a zone: our own format
    return parseTime(s, out);
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  time_t t = std::mktime(&tm);
  if (t < 0) {
    return false;
  }
  out = static_cast<uint64_t>(t) * 1000000000ULL + static_cast<uint64_t>(ms) * 1000000ULL;
  return true;
}

// "...AP.SF" -> bits (C E U A P R S F from the left), or a number.
bool parseNfdumpFlags(const json& v, uint8_t& out) {
  if (v.is_number_unsigned()) {
    out = static_cast<uint8_t>(v.get<uint64_t>());
    return true;
  }
  if (!v.is_string()) {
    return false;
  }
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 8) {
    return false;
  }
  out = 0;
  for (size_t i = 0; i < 8; ++i) {
    if (s[i] != '.') {
      out |= static_cast<uint8_t>(0x80 >> i);
    }
  }
  return true;
}

bool isNfdumpObject(const json& o) {
  return o.contains("in_packets") || o.contains("src4_addr") || o.contains("src6_addr") ||
         (o.contains("type") && o["type"].is_string());
}

template <typename T>
bool num(const json& o, const char* key, T& out) {
  auto it = o.find(key);
  if (it == o.end()) {
    return true;
  }
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
    return false;
  }
  out = static_cast<T>(it->get<uint64_t>());
  return true;
}

bool addr(const json& o, const char* key, IpAddr& out) {
  auto it = o.find(key);
  if (it == o.end()) {
    return true;
  }
  return it->is_string() && IpAddr::parse(it->get_ref<const std::string&>(), out);
}

bool mac(const json& o, const char* key, uint64_t& out) {
  auto it = o.find(key);
  if (it == o.end()) {
    return true;
  }
  return it->is_string() && parseMac(it->get_ref<const std::string&>(), out);
}

// One nfdump -o json object. Returns false with `why` on a bad value; skips non-flow records.
bool fromNfdump(const json& o, FlowRecord& r, bool& skip, std::string& why) {
  skip = false;
  if (auto t = o.find("type"); t != o.end() && t->is_string() && *t != "FLOW") {
    skip = true;
    return true;
  }
  for (const char* k : {"first", "last", "received"}) {
    auto it = o.find(k);
    if (it == o.end()) {
      continue;
    }
    uint64_t ns = 0;
    if (!it->is_string() || !parseNfdumpTime(it->get_ref<const std::string&>(), ns)) {
      why = fmt::format("nfdump field '{}' has a bad value: {}", k, it->dump());
      return false;
    }
    (k[0] == 'f' ? r.first_ns : k[0] == 'l' ? r.last_ns : r.received_ns) = ns;
  }
  bool ok = num(o, "in_packets", r.packets) && num(o, "in_bytes", r.bytes) &&
            num(o, "proto", r.proto) && num(o, "src_port", r.src_port) &&
            num(o, "dst_port", r.dst_port) && num(o, "src_tos", r.tos) &&
            num(o, "icmp_type", r.icmp_type) && num(o, "icmp_code", r.icmp_code) &&
            num(o, "input_snmp", r.in_if) && num(o, "output_snmp", r.out_if) &&
            num(o, "src_mask", r.src_mask) && num(o, "dst_mask", r.dst_mask) &&
            num(o, "src_as", r.src_as) && num(o, "dst_as", r.dst_as) &&
            num(o, "src_vlan", r.vlan) && num(o, "engine_type", r.engine_type) &&
            num(o, "engine_id", r.engine_id) && addr(o, "src4_addr", r.src_addr) &&
            addr(o, "dst4_addr", r.dst_addr) && addr(o, "src6_addr", r.src_addr) &&
            addr(o, "dst6_addr", r.dst_addr) && addr(o, "ip4_next_hop", r.next_hop) &&
            addr(o, "ip6_next_hop", r.next_hop) && addr(o, "ip4_router", r.exporter) &&
            addr(o, "ip6_router", r.exporter) && mac(o, "in_src_mac", r.src_mac) &&
            mac(o, "out_dst_mac", r.dst_mac) && mac(o, "in_dst_mac", r.dst_mac);
  if (!ok) {
    why = "nfdump object has a field with a bad value";
    return false;
  }
  if (auto it = o.find("tcp_flags"); it != o.end() && !parseNfdumpFlags(*it, r.tcp_flags)) {
    why = fmt::format("nfdump field 'tcp_flags' has a bad value: {}", it->dump());
    return false;
  }
  if (auto it = o.find("direction"); it != o.end()) {
    if (!num(o, "direction", r.direction)) {
      why = "nfdump field 'direction' has a bad value";
      return false;
    }
  }
  uint32_t sampling = 0;
  if (num(o, "sampling_interval", sampling) && sampling > 1) {
    r.sampling_rate = sampling;
  }
  if (r.proto == 1 || r.proto == 58) {
    // nfdump keeps type/code in the destination port; so does a NetFlow exporter.
    r.src_port = 0;
    r.dst_port = static_cast<uint16_t>(r.icmp_type << 8 | r.icmp_code);
  }
  r.ip_version = r.src_addr.isV4() ? 4 : 6;
  if (r.last_ns == 0) {
    r.last_ns = r.first_ns;
  }
  return true;
}

void addObject(const json& o, const std::string& where, FlowColumns& out) {
  FlowRecord r;
  std::string why;
  if (o.is_object() && isNfdumpObject(o)) {
    bool skip = false;
    if (!fromNfdump(o, r, skip, why)) {
      throw std::runtime_error(fmt::format("{}: {}", where, why));
    }
    if (!skip) {
      out.append(r);
    }
    return;
  }
  // An object that names no flow field is a mistake (a wrong file, a typo in every key), not
  // a flow from :: to :: in 1970: stop and name it, as nfdump stops on a file it cannot read.
  // Unknown keys beside known ones are ignored (newer writers may add fields).
  if (o.is_object() && std::none_of(o.items().begin(), o.items().end(), [](const auto& kv) {
        return findField(kv.key()) != nullptr;
      })) {
    throw std::runtime_error(fmt::format(
        "{}: no flow field in {} (expected JSON lines as written by `flows --format json`, "
        "e.g. {{\"src_addr\":\"10.0.0.1\",\"bytes\":60}}, or nfdump -o json output)",
        where, o.dump().substr(0, 80)));
  }
  if (!fromJson(o, r, &why)) {
    throw std::runtime_error(fmt::format("{}: {}", where, why));
  }
  out.append(r);
}

}  // namespace

void readFlows(std::istream& in, const std::string& name, FlowColumns& out) {
  // Peek the first non-blank character: '[' = one JSON array (nfdump -o json), else objects.
  int c = 0;
  while ((c = in.peek()) != EOF && std::isspace(c)) {
    in.get();
  }
  if (c == EOF) {
    return;
  }
  if (c == '[') {
    json doc = json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.is_array()) {
      throw std::runtime_error(fmt::format("{}: not a valid JSON array", name));
    }
    size_t i = 0;
    for (const auto& o : doc) {
      addObject(o, fmt::format("{}: element {}", name, i++), out);
    }
    return;
  }
  std::string line;
  size_t lineno = 0;
  std::string pending;  // objects spanning several lines
  size_t pending_start = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (pending.empty() && line.find_first_not_of(" \t\r") == std::string::npos) {
      continue;
    }
    if (pending.empty()) {
      pending_start = lineno;
    }
    pending += line;
    pending += '\n';
    json j = json::parse(pending, nullptr, false);
    if (j.is_discarded()) {
      // An object split across lines (nfdump prints one member per line): keep reading.
      bool object = pending[pending.find_first_not_of(" \t\r\n")] == '{';
      if (!object || lineno - pending_start > 500 || pending.size() > (1u << 20)) {
        throw std::runtime_error(fmt::format("{}:{}: not valid JSON", name, pending_start));
      }
      continue;
    }
    addObject(j, fmt::format("{}:{}", name, pending_start), out);
    pending.clear();
  }
  if (!pending.empty()) {
    throw std::runtime_error(fmt::format("{}:{}: not valid JSON", name, pending_start));
  }
}

void readFlowsFile(const std::string& path, FlowColumns& out) {
  if (path == "-") {
    readFlows(std::cin, "-", out);
    return;
  }
  std::ifstream file(path);
  if (!file) {
    throw std::runtime_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  readFlows(file, path, out);
}

}  // namespace nc::query
