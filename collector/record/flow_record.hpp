#pragma once
// FlowRecord: the one normalized flow that travels from the decoders to every sink (store, time
// series, correlation, forwarding). Fixed layout, no heap members, so batches are plain arrays.
//
// Conventions
// - Addresses are 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) and `ip_version` says 4.
// - Times are UNIX nanoseconds (UTC).
// - `packets`/`bytes` are the counters as exported. `sampling_rate` is the 1-in-N rate that applies
//   to them (1 = unsampled or unknown). When the exporter already scaled its counters (OVS IPFIX),
//   `kFlagScaledByExporter` is set and scaledPackets()/scaledBytes() do not multiply again.
// - `in_if`/`out_if` are raw interface numbers; `if_kind` says which numbering they use
//   (OpenFlow port for OVS NetFlow v5, Linux ifindex for OVS sFlow/IPFIX, SNMP ifIndex for
//   routers).
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace nc {

// An IPv4 or IPv6 address in 16 bytes (IPv4 as ::ffff:a.b.c.d).
struct IpAddr {
  std::array<uint8_t, 16> bytes{};

  static IpAddr fromV4(uint32_t host_order) {
    IpAddr a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    a.bytes[12] = static_cast<uint8_t>(host_order >> 24);
    a.bytes[13] = static_cast<uint8_t>(host_order >> 16);
    a.bytes[14] = static_cast<uint8_t>(host_order >> 8);
    a.bytes[15] = static_cast<uint8_t>(host_order);
    return a;
  }
  static IpAddr fromV6(const uint8_t* sixteen) {
    IpAddr a;
    std::memcpy(a.bytes.data(), sixteen, 16);
    return a;
  }
  bool isV4() const {
    static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(bytes.data(), kPrefix, 12) == 0;
  }
  uint32_t v4() const {
    return (uint32_t{bytes[12]} << 24) | (uint32_t{bytes[13]} << 16) | (uint32_t{bytes[14]} << 8) |
           bytes[15];
  }
  // Two 64-bit halves (the hot paths compare addresses as these, not with memcmp).
  uint64_t half(size_t i) const {
    uint64_t h;
    std::memcpy(&h, bytes.data() + 8 * i, 8);
    return h;
  }
  bool isZero() const { return (half(0) | half(1)) == 0; }
  // "192.0.2.1" or "2001:db8::1"; "" parses to nothing.
  std::string toString() const;
  static bool parse(std::string_view text, IpAddr& out);
  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return ((a.half(0) ^ b.half(0)) | (a.half(1) ^ b.half(1))) == 0;
  }
  friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

// Which numbering in_if/out_if use.
enum class IfKind : uint8_t {
  kUnknown = 0,
  kSnmp = 1,          // SNMP ifIndex (routers; NetFlow/IPFIX default)
  kLinuxIfindex = 2,  // Linux ifindex (OVS sFlow and IPFIX)
  kOpenFlowPort = 3,  // OpenFlow port number (OVS NetFlow v5)
};

// Export protocol a record came from.
enum class FlowProto : uint8_t {
  kUnknown = 0,
  kNetflowV5 = 5,
  kNetflowV9 = 9,
  kIpfix = 10,
  kSflowV5 = 50,
};

struct FlowRecord {
  static constexpr uint8_t kFlagScaledByExporter = 0x01;  // counters already multiplied by exporter
  static constexpr uint8_t kFlagIcmpFromPort = 0x02;      // icmp type/code recovered from dst_port

  uint64_t first_ns = 0;     // flow start
  uint64_t last_ns = 0;      // flow end (= first for a single sampled packet)
  uint64_t received_ns = 0;  // when the collector received the datagram
  uint64_t packets = 0;      // as exported
  uint64_t bytes = 0;        // as exported (layer 3 octets unless the exporter says otherwise)

  IpAddr exporter;  // source address of the datagram (or sFlow agent address)
  IpAddr src_addr;
  IpAddr dst_addr;
  IpAddr next_hop;

  uint64_t src_mac = 0;  // 48-bit, in the low bits, network order value (aa:bb:.. = 0xaabb..)
  uint64_t dst_mac = 0;

  uint32_t sampling_rate = 1;       // 1-in-N that applies to packets/bytes
  uint32_t observation_domain = 0;  // IPFIX observation domain / v9 source id / sFlow sub-agent
  uint32_t in_if = 0;
  uint32_t out_if = 0;
  uint32_t src_as = 0;
  uint32_t dst_as = 0;

  // Names joined to the flow when it is received (the ones valid then), as NameTable ids
  // (collector/record/names.hpp; 0 = unknown): the input/output interface (from the host's
  // Open vSwitch inventory, or the name the exporter sent for the interface), the Open vSwitch
  // bridge, and the VM behind each port (external_ids vm-uuid, else vm-id, else iface-id).
  uint32_t in_ifname = 0;
  uint32_t out_ifname = 0;
  uint32_t bridge = 0;
  uint32_t in_vm = 0;
  uint32_t out_vm = 0;

  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint16_t vlan = 0;  // 802.1Q VLAN id (0 = none)
  uint16_t exporter_port = 0;

  uint8_t proto = 0;  // IP protocol number
  uint8_t tcp_flags = 0;
  uint8_t tos = 0;
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint8_t src_mask = 0;
  uint8_t dst_mask = 0;
  uint8_t ip_version = 0;       // 4, 6, or 0 for non-IP
  uint8_t flow_end_reason = 0;  // IPFIX IE 136 (0 = unknown)
  uint8_t direction = 0xff;     // IPFIX IE 61: 0 ingress, 1 egress; 0xff unknown
  uint8_t engine_type = 0;
  uint8_t engine_id = 0;
  IfKind if_kind = IfKind::kUnknown;
  FlowProto flow_proto = FlowProto::kUnknown;
  uint8_t flags = 0;

  uint64_t scaledPackets() const {
    return (flags & kFlagScaledByExporter) ? packets : packets * sampling_rate;
  }
  uint64_t scaledBytes() const {
    return (flags & kFlagScaledByExporter) ? bytes : bytes * sampling_rate;
  }
};

std::string_view toString(IfKind kind);
std::string_view toString(FlowProto proto);
// "aa:bb:cc:dd:ee:ff"
std::string formatMac(uint64_t mac);
bool parseMac(std::string_view text, uint64_t& out);

}  // namespace nc
