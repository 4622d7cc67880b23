#include "collector/record/fields.hpp"

#include <fmt/format.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "collector/record/names.hpp"

namespace nc {
namespace {

using nlohmann::json;

template <typename T>
bool readUnsigned(const json& v, T& out) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    return false;
  }
  uint64_t x = v.get<uint64_t>();
  if (x > std::numeric_limits<T>::max()) {
    return false;
  }
  out = static_cast<T>(x);
  return true;
}

bool readAddr(const json& v, IpAddr& out) {
  return v.is_string() && IpAddr::parse(v.get_ref<const std::string&>(), out);
}

// X-macro style table: name, type, doc, member, json writer, json reader, text.
#define NC_UINT_FIELD(NAME, TYPE, DOC, MEMBER, OMIT_ZERO)                               \
  FieldDef {                                                                            \
    NAME, TYPE, DOC,                                                                    \
        [](const FlowRecord& r, json& o) {                                              \
          if ((OMIT_ZERO) && r.MEMBER == 0)                                             \
            return false;                                                               \
          o[NAME] = r.MEMBER;                                                           \
          return true;                                                                  \
        },                                                                              \
        [](const json& v, FlowRecord& r) { return readUnsigned(v, r.MEMBER); },         \
        [](const FlowRecord& r) { return fmt::format("{}", r.MEMBER); }, Column::MEMBER \
  }

#define NC_ADDR_FIELD(NAME, DOC, MEMBER, OMIT_ZERO)                             \
  FieldDef {                                                                    \
    NAME, FieldType::kAddr, DOC,                                                \
        [](const FlowRecord& r, json& o) {                                      \
          if ((OMIT_ZERO) && r.MEMBER.isZero())                                 \
            return false;                                                       \
          o[NAME] = r.MEMBER.toString();                                        \
          return true;                                                          \
        },                                                                      \
        [](const json& v, FlowRecord& r) { return readAddr(v, r.MEMBER); },     \
        [](const FlowRecord& r) { return r.MEMBER.toString(); }, Column::MEMBER \
  }

#define NC_MAC_FIELD(NAME, DOC, MEMBER)                                                \
  FieldDef {                                                                           \
    NAME, FieldType::kMac, DOC,                                                        \
        [](const FlowRecord& r, json& o) {                                             \
          if (r.MEMBER == 0)                                                           \
            return false;                                                              \
          o[NAME] = formatMac(r.MEMBER);                                               \
          return true;                                                                 \
        },                                                                             \
        [](const json& v, FlowRecord& r) {                                             \
          return v.is_string() && parseMac(v.get_ref<const std::string&>(), r.MEMBER); \
        },                                                                             \
        [](const FlowRecord& r) { return formatMac(r.MEMBER); }, Column::MEMBER        \
  }

#define NC_TIME_FIELD(NAME, DOC, MEMBER)                                                \
  FieldDef {                                                                            \
    NAME, FieldType::kTime, DOC,                                                        \
        [](const FlowRecord& r, json& o) {                                              \
          o[NAME] = formatTime(r.MEMBER);                                               \
          return true;                                                                  \
        },                                                                              \
        [](const json& v, FlowRecord& r) {                                              \
          return v.is_string() && parseTime(v.get_ref<const std::string&>(), r.MEMBER); \
        },                                                                              \
        [](const FlowRecord& r) { return formatTime(r.MEMBER); }, Column::MEMBER        \
  }

// A NameTable id, shown as its text; absent when unknown (0).
#define NC_NAME_FIELD(NAME, DOC, MEMBER)                                                  \
  FieldDef {                                                                              \
    NAME, FieldType::kName, DOC,                                                          \
        [](const FlowRecord& r, json& o) {                                                \
          if (r.MEMBER == 0)                                                              \
            return false;                                                                 \
          o[NAME] = std::string(nameOf(r.MEMBER));                                        \
          return true;                                                                    \
        },                                                                                \
        [](const json& v, FlowRecord& r) {                                                \
          if (!v.is_string())                                                             \
            return false;                                                                 \
          r.MEMBER = internName(v.get_ref<const std::string&>());                         \
          return true;                                                                    \
        },                                                                                \
        [](const FlowRecord& r) { return std::string(nameOf(r.MEMBER)); }, Column::MEMBER \
  }

// ICMP type/code: present for ICMP and ICMPv6 flows (where 0 is meaningful), absent otherwise.
#define NC_ICMP_FIELD(NAME, DOC, MEMBER)                                                \
  FieldDef {                                                                            \
    NAME, FieldType::kU8, DOC,                                                          \
        [](const FlowRecord& r, json& o) {                                              \
          if (r.proto != 1 && r.proto != 58)                                            \
            return false;                                                               \
          o[NAME] = r.MEMBER;                                                           \
          return true;                                                                  \
        },                                                                              \
        [](const json& v, FlowRecord& r) { return readUnsigned(v, r.MEMBER); },         \
        [](const FlowRecord& r) { return fmt::format("{}", r.MEMBER); }, Column::MEMBER \
  }

const FieldDef kFields[] = {
    NC_TIME_FIELD("first", "flow start, RFC 3339 UTC with milliseconds", first_ns),
    NC_TIME_FIELD("last", "flow end, RFC 3339 UTC with milliseconds", last_ns),
    NC_ADDR_FIELD("exporter", "address of the exporter (datagram source or sFlow agent)", exporter,
                  false),
    NC_ADDR_FIELD("src_addr", "source IP address", src_addr, false),
    NC_ADDR_FIELD("dst_addr", "destination IP address", dst_addr, false),
    NC_UINT_FIELD("src_port", FieldType::kU16, "source port (TCP/UDP/SCTP)", src_port, false),
    NC_UINT_FIELD("dst_port", FieldType::kU16, "destination port (TCP/UDP/SCTP)", dst_port, false),
    NC_UINT_FIELD("proto", FieldType::kU8, "IP protocol number (6 TCP, 17 UDP, 1 ICMP, ...)", proto,
                  false),
    NC_UINT_FIELD("tcp_flags", FieldType::kU8, "OR of TCP flags seen (FIN=1 SYN=2 RST=4 PSH=8 ...)",
                  tcp_flags, false),
    NC_UINT_FIELD("tos", FieldType::kU8, "IP type of service / traffic class byte", tos, false),
    NC_ICMP_FIELD("icmp_type", "ICMP type (ICMP/ICMPv6 flows only)", icmp_type),
    NC_ICMP_FIELD("icmp_code", "ICMP code (ICMP/ICMPv6 flows only)", icmp_code),
    NC_UINT_FIELD("packets", FieldType::kU64, "packets, as exported (see sampling_rate)", packets,
                  false),
    NC_UINT_FIELD("bytes", FieldType::kU64, "bytes, as exported (see sampling_rate)", bytes, false),
    NC_UINT_FIELD("in_if", FieldType::kU32, "input interface number (see if_kind)", in_if, false),
    NC_UINT_FIELD("out_if", FieldType::kU32, "output interface number (see if_kind)", out_if,
                  false),
    NC_NAME_FIELD("in_ifname",
                  "input interface name: the Open vSwitch port (host inventory) or the name the "
                  "exporter sent (IPFIX/v9 interfaceName, sFlow port name)",
                  in_ifname),
    NC_NAME_FIELD("out_ifname", "output interface name (as in_ifname)", out_ifname),
    NC_NAME_FIELD("bridge", "Open vSwitch bridge of the flow's port (host inventory)", bridge),
    NC_NAME_FIELD("in_vm",
                  "VM behind the input port: its external_ids vm-uuid, else vm-id, else iface-id",
                  in_vm),
    NC_NAME_FIELD("out_vm", "VM behind the output port (as in_vm)", out_vm),
    FieldDef{"if_kind", FieldType::kText,
             "numbering of in_if/out_if: snmp, ifindex (Linux), ofport (OpenFlow), unknown",
             [](const FlowRecord& r, json& o) {
               if (r.if_kind == IfKind::kUnknown)
                 return false;
               o["if_kind"] = std::string(toString(r.if_kind));
               return true;
             },
             [](const json& v, FlowRecord& r) {
               if (!v.is_string())
                 return false;
               const auto& s = v.get_ref<const std::string&>();
               for (IfKind k : {IfKind::kUnknown, IfKind::kSnmp, IfKind::kLinuxIfindex,
                                IfKind::kOpenFlowPort}) {
                 if (toString(k) == s) {
                   r.if_kind = k;
                   return true;
                 }
               }
               return false;
             },
             [](const FlowRecord& r) { return std::string(toString(r.if_kind)); }, Column::if_kind},
    NC_UINT_FIELD("sampling_rate", FieldType::kU32,
                  "1-in-N sampling rate that applies to packets/bytes (1 = unsampled or unknown)",
                  sampling_rate, false),
    NC_UINT_FIELD("src_as", FieldType::kU32, "source AS number", src_as, true),
    NC_UINT_FIELD("dst_as", FieldType::kU32, "destination AS number", dst_as, true),
    NC_ADDR_FIELD("next_hop", "IP next hop", next_hop, true),
    NC_UINT_FIELD("src_mask", FieldType::kU8, "source prefix length", src_mask, true),
    NC_UINT_FIELD("dst_mask", FieldType::kU8, "destination prefix length", dst_mask, true),
    NC_UINT_FIELD("vlan", FieldType::kU16, "802.1Q VLAN id", vlan, true),
    NC_MAC_FIELD("src_mac", "source MAC address", src_mac),
    NC_MAC_FIELD("dst_mac", "destination MAC address", dst_mac),
    NC_UINT_FIELD("observation_domain", FieldType::kU32,
                  "IPFIX observation domain / NetFlow v9 source id", observation_domain, true),
    NC_UINT_FIELD("engine_type", FieldType::kU8, "NetFlow engine type", engine_type, true),
    NC_UINT_FIELD("engine_id", FieldType::kU8, "NetFlow engine id", engine_id, true),
    FieldDef{"direction", FieldType::kU8,
             "IPFIX flowDirection: 0 ingress, 1 egress (absent when the exporter does not say)",
             [](const FlowRecord& r, json& o) {
               if (r.direction == 0xff)
                 return false;
               o["direction"] = r.direction;
               return true;
             },
             [](const json& v, FlowRecord& r) { return readUnsigned(v, r.direction); },
             [](const FlowRecord& r) {
               return r.direction == 0xff ? std::string() : std::to_string(r.direction);
             },
             Column::direction},
    NC_UINT_FIELD("flow_end_reason", FieldType::kU8,
                  "IPFIX flowEndReason (1 idle, 2 active, 3 end detected, 4 forced, 5 resources)",
                  flow_end_reason, true),
    FieldDef{"export_proto", FieldType::kText, "export protocol: netflow5, netflow9, ipfix, sflow5",
             [](const FlowRecord& r, json& o) {
               if (r.flow_proto == FlowProto::kUnknown)
                 return false;
               o["export_proto"] = std::string(toString(r.flow_proto));
               return true;
             },
             [](const json& v, FlowRecord& r) {
               if (!v.is_string())
                 return false;
               const auto& s = v.get_ref<const std::string&>();
               for (FlowProto p : {FlowProto::kNetflowV5, FlowProto::kNetflowV9, FlowProto::kIpfix,
                                   FlowProto::kSflowV5}) {
                 if (toString(p) == s) {
                   r.flow_proto = p;
                   return true;
                 }
               }
               return false;
             },
             [](const FlowRecord& r) { return std::string(toString(r.flow_proto)); },
             Column::flow_proto},
};

#undef NC_UINT_FIELD
#undef NC_ADDR_FIELD
#undef NC_MAC_FIELD
#undef NC_TIME_FIELD
#undef NC_ICMP_FIELD
#undef NC_NAME_FIELD

}  // namespace

std::span<const FieldDef> fields() {
  return kFields;
}

const FieldDef* findField(std::string_view name) {
  for (const auto& f : kFields) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

json toJson(const FlowRecord& r) {
  json o = json::object();
  for (const auto& f : kFields) {
    f.toJson(r, o);
  }
  return o;
}

bool fromJson(const json& obj, FlowRecord& r, std::string* why) {
  if (!obj.is_object()) {
    if (why != nullptr) {
      *why = "not a JSON object";
    }
    return false;
  }
  for (const auto& f : kFields) {
    auto it = obj.find(f.name);
    if (it == obj.end()) {
      continue;
    }
    if (!f.fromJson(*it, r)) {
      if (why != nullptr) {
        *why = fmt::format("field '{}' has a bad value: {}", f.name, it->dump());
      }
      return false;
    }
  }
  r.ip_version = r.src_addr.isV4() ? 4 : 6;
  return true;
}

std::string formatTime(uint64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000ULL);
  unsigned ms = static_cast<unsigned>((unix_ns / 1000000ULL) % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

bool parseTime(std::string_view text, uint64_t& unix_ns) {
  // Accepts YYYY-MM-DDTHH:MM:SS[.fff...][Z|+HH:MM|-HH:MM] and "YYYY-MM-DD HH:MM:SS".
  std::string s(text);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return false;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  size_t i = static_cast<size_t>(consumed);
  uint64_t frac_ns = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    uint64_t scale = 100000000;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      frac_ns += static_cast<uint64_t>(s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
  }
  int64_t offset_s = 0;
  if (i < s.size()) {
    if (s[i] == 'Z' || s[i] == 'z') {
      ++i;
    } else if (s[i] == '+' || s[i] == '-') {
      int hh = 0;
      int mm = 0;
      if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &hh, &mm) != 2) {
        return false;
      }
      offset_s = (hh * 3600 + mm * 60) * (s[i] == '+' ? 1 : -1);
      i += 6;
    }
  }
  if (i != s.size()) {
    return false;
  }
  time_t t = timegm(&tm);
  if (t < 0) {
    return false;
  }
  unix_ns = static_cast<uint64_t>(t - offset_s) * 1000000000ULL + frac_ns;
  return true;
}

}  // namespace nc
