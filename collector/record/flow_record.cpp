#include "collector/record/flow_record.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

namespace nc {

std::string IpAddr::toString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (isV4()) {
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

bool IpAddr::parse(std::string_view text, IpAddr& out) {
  std::string s(text);
  uint8_t buf[16] = {};
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    out = fromV4((uint32_t{buf[0]} << 24) | (uint32_t{buf[1]} << 16) | (uint32_t{buf[2]} << 8) |
                 buf[3]);
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    out = fromV6(buf);
    return true;
  }
  return false;
}

std::string_view toString(IfKind kind) {
  switch (kind) {
    case IfKind::kUnknown:
      return "unknown";
    case IfKind::kSnmp:
      return "snmp";
    case IfKind::kLinuxIfindex:
      return "ifindex";
    case IfKind::kOpenFlowPort:
      return "ofport";
  }
  return "unknown";
}

std::string_view toString(FlowProto proto) {
  switch (proto) {
    case FlowProto::kUnknown:
      return "unknown";
    case FlowProto::kNetflowV5:
      return "netflow5";
    case FlowProto::kNetflowV9:
      return "netflow9";
    case FlowProto::kIpfix:
      return "ipfix";
    case FlowProto::kSflowV5:
      return "sflow5";
  }
  return "unknown";
}

std::string formatMac(uint64_t mac) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (mac >> 40) & 0xff,
                     (mac >> 32) & 0xff, (mac >> 24) & 0xff, (mac >> 16) & 0xff, (mac >> 8) & 0xff,
                     mac & 0xff);
}

bool parseMac(std::string_view text, uint64_t& out) {
  unsigned v[6];
  std::string s(text);
  char tail = 0;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                  &tail) != 6) {
    return false;
  }
  out = 0;
  for (unsigned b : v) {
    out = (out << 8) | b;
  }
  return true;
}

}  // namespace nc
