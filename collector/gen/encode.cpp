// Encoders: FlowRecords -> NetFlow v5 / NetFlow v9 / IPFIX / sFlow v5 datagrams (see gen.hpp).
//
// Each writes one datagram into a buffer sized to state.max_datagram and checks the space before
// adding a record, so nothing is ever written past the end. Record layouts are hand-written per
// template for speed; the field lists below are the templates sent on the wire, and the unit tests
// decode the data with the templates read back from the wire, so the two cannot drift silently.
#include <algorithm>
#include <array>

#include "collector/gen/gen.hpp"
#include "collector/gen/wire.hpp"

namespace nc::gen {
namespace {

using wire::put16;
using wire::put32;
using wire::put64;
using wire::put8;
using wire::putBytes;

constexpr uint64_t kNsPerMs = 1000000;
constexpr uint64_t kNsPerSec = 1000000000;

struct FieldSpec {
  uint16_t id;
  uint16_t length;
};

constexpr uint16_t kTemplateV4 = 256;
constexpr uint16_t kTemplateV6 = 257;
constexpr uint16_t kTemplateOptions = 258;

// NetFlow v9 (RFC 3954 section 8) data templates.
constexpr std::array<FieldSpec, 20> kV9FieldsV4 = {{
    {8, 4},   // IPV4_SRC_ADDR
    {12, 4},  // IPV4_DST_ADDR
    {15, 4},  // IPV4_NEXT_HOP
    {7, 2},   // L4_SRC_PORT
    {11, 2},  // L4_DST_PORT
    {4, 1},   // PROTOCOL
    {5, 1},   // SRC_TOS
    {6, 1},   // TCP_FLAGS
    {9, 1},   // SRC_MASK
    {13, 1},  // DST_MASK
    {10, 4},  // INPUT_SNMP
    {14, 4},  // OUTPUT_SNMP
    {16, 4},  // SRC_AS
    {17, 4},  // DST_AS
    {61, 1},  // DIRECTION
    {32, 2},  // ICMP_TYPE (type * 256 + code)
    {2, 8},   // IN_PKTS
    {1, 8},   // IN_BYTES
    {22, 4},  // FIRST_SWITCHED (sysUptime ms)
    {21, 4},  // LAST_SWITCHED
}};
constexpr std::array<FieldSpec, 20> kV9FieldsV6 = {{
    {27, 16},  // IPV6_SRC_ADDR
    {28, 16},  // IPV6_DST_ADDR
    {62, 16},  // IPV6_NEXT_HOP
    {7, 2},    // L4_SRC_PORT
    {11, 2},   // L4_DST_PORT
    {4, 1},    // PROTOCOL
    {5, 1},    // SRC_TOS
    {6, 1},    // TCP_FLAGS
    {29, 1},   // IPV6_SRC_MASK
    {30, 1},   // IPV6_DST_MASK
    {10, 4},   // INPUT_SNMP
    {14, 4},   // OUTPUT_SNMP
    {16, 4},   // SRC_AS
    {17, 4},   // DST_AS
    {61, 1},   // DIRECTION
    {32, 2},   // ICMP_TYPE
    {2, 8},    // IN_PKTS
    {1, 8},    // IN_BYTES
    {22, 4},   // FIRST_SWITCHED
    {21, 4},   // LAST_SWITCHED
}};
// IPFIX (RFC 7011, IANA IPFIX IEs) data templates.
constexpr std::array<FieldSpec, 20> kIpfixFieldsV4 = {{
    {8, 4},    // sourceIPv4Address
    {12, 4},   // destinationIPv4Address
    {15, 4},   // ipNextHopIPv4Address
    {7, 2},    // sourceTransportPort
    {11, 2},   // destinationTransportPort
    {4, 1},    // protocolIdentifier
    {5, 1},    // ipClassOfService
    {6, 2},    // tcpControlBits
    {9, 1},    // sourceIPv4PrefixLength
    {13, 1},   // destinationIPv4PrefixLength
    {10, 4},   // ingressInterface
    {14, 4},   // egressInterface
    {16, 4},   // bgpSourceAsNumber
    {17, 4},   // bgpDestinationAsNumber
    {61, 1},   // flowDirection
    {32, 2},   // icmpTypeCodeIPv4
    {2, 8},    // packetDeltaCount
    {1, 8},    // octetDeltaCount
    {152, 8},  // flowStartMilliseconds
    {153, 8},  // flowEndMilliseconds
}};
constexpr std::array<FieldSpec, 20> kIpfixFieldsV6 = {{
    {27, 16},  // sourceIPv6Address
    {28, 16},  // destinationIPv6Address
    {62, 16},  // ipNextHopIPv6Address
    {7, 2},    // sourceTransportPort
    {11, 2},   // destinationTransportPort
    {4, 1},    // protocolIdentifier
    {5, 1},    // ipClassOfService
    {6, 2},    // tcpControlBits
    {29, 1},   // sourceIPv6PrefixLength
    {30, 1},   // destinationIPv6PrefixLength
    {10, 4},   // ingressInterface
    {14, 4},   // egressInterface
    {16, 4},   // bgpSourceAsNumber
    {17, 4},   // bgpDestinationAsNumber
    {61, 1},   // flowDirection
    {139, 2},  // icmpTypeCodeIPv6
    {2, 8},    // packetDeltaCount
    {1, 8},    // octetDeltaCount
    {152, 8},  // flowStartMilliseconds
    {153, 8},  // flowEndMilliseconds
}};

template <size_t N>
constexpr size_t recordLength(const std::array<FieldSpec, N>& fields) {
  size_t len = 0;
  for (const FieldSpec& f : fields) {
    len += f.length;
  }
  return len;
}

constexpr size_t kV9RecordV4 = recordLength(kV9FieldsV4);
constexpr size_t kV9RecordV6 = recordLength(kV9FieldsV6);
constexpr size_t kIpfixRecordV4 = recordLength(kIpfixFieldsV4);
constexpr size_t kIpfixRecordV6 = recordLength(kIpfixFieldsV6);

constexpr size_t pad4(size_t n) {
  return (n + 3) & ~size_t{3};
}

uint32_t uptimeMs(uint64_t t_ns, const ExportState& s) {
  return static_cast<uint32_t>((t_ns > s.boot_ns ? t_ns - s.boot_ns : 0) / kNsPerMs);
}

bool templatesDue(const ExportState& s) {
  return s.datagrams == 0 || (s.template_interval > 0 && s.datagrams % s.template_interval == 0);
}

uint16_t icmpTypeCode(const FlowRecord& r) {
  return static_cast<uint16_t>((uint16_t{r.icmp_type} << 8) | r.icmp_code);
}

// Ports as exported: ICMP carries type/code in the IE 32/139 field and zero ports.
uint8_t* putPorts(uint8_t* p, const FlowRecord& r) {
  p = put16(p, r.src_port);
  return put16(p, r.dst_port);
}

template <size_t N>
uint8_t* putTemplate(uint8_t* p, uint16_t id, const std::array<FieldSpec, N>& fields) {
  p = put16(p, id);
  p = put16(p, static_cast<uint16_t>(N));
  for (const FieldSpec& f : fields) {
    p = put16(p, f.id);
    p = put16(p, f.length);
  }
  return p;
}

// Must match kV9FieldsV4 / kV9FieldsV6.
uint8_t* putV9Record(uint8_t* p, const FlowRecord& r, const ExportState& s) {
  bool v4 = r.ip_version != 6;
  if (v4) {
    p = put32(p, r.src_addr.v4());
    p = put32(p, r.dst_addr.v4());
    p = put32(p, r.next_hop.v4());
  } else {
    p = putBytes(p, r.src_addr.bytes.data(), 16);
    p = putBytes(p, r.dst_addr.bytes.data(), 16);
    p = putBytes(p, r.next_hop.bytes.data(), 16);
  }
  p = putPorts(p, r);
  p = put8(p, r.proto);
  p = put8(p, r.tos);
  p = put8(p, r.tcp_flags);
  p = put8(p, r.src_mask);
  p = put8(p, r.dst_mask);
  p = put32(p, r.in_if);
  p = put32(p, r.out_if);
  p = put32(p, r.src_as);
  p = put32(p, r.dst_as);
  p = put8(p, r.direction);
  p = put16(p, icmpTypeCode(r));
  p = put64(p, r.packets);
  p = put64(p, r.bytes);
  p = put32(p, uptimeMs(r.first_ns, s));
  return put32(p, uptimeMs(r.last_ns, s));
}

// Must match kIpfixFieldsV4 / kIpfixFieldsV6.
uint8_t* putIpfixRecord(uint8_t* p, const FlowRecord& r) {
  bool v4 = r.ip_version != 6;
  if (v4) {
    p = put32(p, r.src_addr.v4());
    p = put32(p, r.dst_addr.v4());
    p = put32(p, r.next_hop.v4());
  } else {
    p = putBytes(p, r.src_addr.bytes.data(), 16);
    p = putBytes(p, r.dst_addr.bytes.data(), 16);
    p = putBytes(p, r.next_hop.bytes.data(), 16);
  }
  p = putPorts(p, r);
  p = put8(p, r.proto);
  p = put8(p, r.tos);
  p = put16(p, r.tcp_flags);
  p = put8(p, r.src_mask);
  p = put8(p, r.dst_mask);
  p = put32(p, r.in_if);
  p = put32(p, r.out_if);
  p = put32(p, r.src_as);
  p = put32(p, r.dst_as);
  p = put8(p, r.direction);
  p = put16(p, icmpTypeCode(r));
  p = put64(p, r.packets);
  p = put64(p, r.bytes);
  p = put64(p, r.first_ns / kNsPerMs);
  return put64(p, r.last_ns / kNsPerMs);
}

// Adds records to data sets/flowsets, one set per run of records of the same IP version.
// Returns the number of records taken; `p` ends after the last set (v9 sets padded to 4).
template <typename PutRecord>
size_t putDataSets(std::span<const FlowRecord> records, uint8_t* base, uint8_t*& p, size_t max_len,
                   size_t len_v4, size_t len_v6, bool pad, PutRecord put_record) {
  size_t taken = 0;
  uint8_t* set_start = nullptr;
  bool set_v4 = true;
  auto closeSet = [&] {
    if (set_start != nullptr) {
      size_t len = static_cast<size_t>(p - set_start);
      size_t padded = pad ? pad4(len) : len;
      std::fill(p, set_start + padded, uint8_t{0});
      p = set_start + padded;
      put16(set_start + 2, static_cast<uint16_t>(padded));
      set_start = nullptr;
    }
  };
  for (const FlowRecord& r : records) {
    bool v4 = r.ip_version != 6;
    bool new_set = set_start == nullptr || v4 != set_v4;
    size_t rec_len = v4 ? len_v4 : len_v6;
    size_t used = static_cast<size_t>(p - base);
    size_t open_len = set_start == nullptr ? 0 : static_cast<size_t>(p - set_start);
    // Room needed: this record (+ a set header), and the current set's padding if we close it.
    size_t need = new_set ? (pad ? pad4(open_len) - open_len : 0) + 4 + rec_len : rec_len;
    size_t after = used + need;
    if ((pad ? pad4(after) : after) > max_len) {
      break;
    }
    if (new_set) {
      closeSet();
      set_start = p;
      set_v4 = v4;
      p = put16(p, v4 ? kTemplateV4 : kTemplateV6);
      p = put16(p, 0);  // length, patched by closeSet()
    }
    p = put_record(p, r);
    ++taken;
  }
  closeSet();
  return taken;
}

// --- sFlow raw packet header synthesis ---------------------------------------------------------

// Writes Ethernet + IP + L4 headers for one packet of `frame_len` bytes; returns the length.
size_t putSampledHeader(uint8_t* out, const FlowRecord& r, uint32_t frame_len, uint32_t seq) {
  uint8_t* p = out;
  bool v6 = r.ip_version == 6;
  p = wire::putMac(p, r.dst_mac);
  p = wire::putMac(p, r.src_mac);
  p = put16(p, v6 ? 0x86dd : 0x0800);
  uint32_t ip_len = frame_len > 14 ? frame_len - 14 : 0;
  uint8_t* ip = p;
  size_t ip_header = v6 ? 40 : 20;
  uint32_t l4_len = ip_len > ip_header ? static_cast<uint32_t>(ip_len - ip_header) : 0;
  if (v6) {
    p = put32(p, (6u << 28) | (uint32_t{r.tos} << 20));
    p = put16(p, static_cast<uint16_t>(l4_len));
    p = put8(p, r.proto);
    p = put8(p, 64);
    p = putBytes(p, r.src_addr.bytes.data(), 16);
    p = putBytes(p, r.dst_addr.bytes.data(), 16);
  } else {
    p = put8(p, 0x45);
    p = put8(p, r.tos);
    p = put16(p, static_cast<uint16_t>(ip_len));
    p = put16(p, static_cast<uint16_t>(seq));
    p = put16(p, 0x4000);  // DF
    p = put8(p, 64);
    p = put8(p, r.proto);
    p = put16(p, 0);
    p = put32(p, r.src_addr.v4());
    p = put32(p, r.dst_addr.v4());
    put16(ip + 10, wire::foldChecksum(wire::sum16(ip, 20)));
  }
  uint8_t* l4 = p;
  if (r.proto == 6) {
    p = putPorts(p, r);
    p = put32(p, seq * 2654435761u);  // sequence number
    p = put32(p, (r.tcp_flags & 0x10) != 0 ? seq * 40503u : 0);
    p = put8(p, 5 << 4);  // data offset
    p = put8(p, r.tcp_flags);
    p = put16(p, 65535);  // window
    p = put16(p, 0);      // checksum below
    p = put16(p, 0);      // urgent pointer
  } else if (r.proto == 17) {
    p = putPorts(p, r);
    p = put16(p, static_cast<uint16_t>(l4_len));
    p = put16(p, 0);
  } else if (r.proto == 1 || r.proto == 58) {
    p = put8(p, r.icmp_type);
    p = put8(p, r.icmp_code);
    p = put16(p, 0);
    p = put16(p, static_cast<uint16_t>(r.src_port));
    p = put16(p, static_cast<uint16_t>(seq));
  }
  // The payload is not sampled, so no checksum can be verified; write a plausible non-zero one
  // (a zero UDP checksum is illegal in IPv6).
  size_t l4_header = static_cast<size_t>(p - l4);
  if (l4_header > 0) {
    size_t csum_at = r.proto == 6 ? 16 : (r.proto == 17 ? 6 : 2);
    uint16_t c = wire::foldChecksum(wire::sum16(l4, l4_header, l4_len));
    put16(l4 + csum_at, c == 0 ? 0xffff : c);
  }
  return static_cast<size_t>(p - out);
}

}  // namespace

size_t encodeNetflowV5(std::span<const FlowRecord> records, ExportState& state,
                       std::vector<uint8_t>& out) {
  constexpr size_t kHeader = 24;
  constexpr size_t kRecord = 48;
  size_t room = state.max_datagram > kHeader ? (state.max_datagram - kHeader) / kRecord : 0;
  size_t n = std::min({records.size(), size_t{30}, room});
  for (size_t i = 0; i < n; ++i) {
    if (records[i].ip_version == 6) {
      n = i;  // v5 carries IPv4 only
      break;
    }
  }
  out.resize(kHeader + n * kRecord);
  if (n == 0) {
    out.clear();
    return 0;
  }
  uint8_t* p = out.data();
  // Cisco NetFlow v5 header (24 bytes), then 48-byte records.
  p = put16(p, 5);
  p = put16(p, static_cast<uint16_t>(n));
  p = put32(p, uptimeMs(state.export_ns, state));
  p = put32(p, static_cast<uint32_t>(state.export_ns / kNsPerSec));
  p = put32(p, static_cast<uint32_t>(state.export_ns % kNsPerSec));
  p = put32(p, state.sequence);
  p = put8(p, static_cast<uint8_t>(state.domain >> 8));  // engine_type
  p = put8(p, static_cast<uint8_t>(state.domain));       // engine_id
  // Sampling: 2-bit mode (1 = deterministic 1-in-N) and a 14-bit interval.
  p = put16(p,
            state.sampling > 1 ? static_cast<uint16_t>((1u << 14) | (state.sampling & 0x3fff)) : 0);
  for (size_t i = 0; i < n; ++i) {
    const FlowRecord& r = records[i];
    p = put32(p, r.src_addr.v4());
    p = put32(p, r.dst_addr.v4());
    p = put32(p, r.next_hop.v4());
    p = put16(p, static_cast<uint16_t>(r.in_if));
    p = put16(p, static_cast<uint16_t>(r.out_if));
    p = put32(p, static_cast<uint32_t>(r.packets));
    p = put32(p, static_cast<uint32_t>(r.bytes));
    p = put32(p, uptimeMs(r.first_ns, state));
    p = put32(p, uptimeMs(r.last_ns, state));
    bool icmp = r.proto == 1;
    p = put16(p, icmp ? 0 : r.src_port);
    p = put16(p, icmp ? icmpTypeCode(r) : r.dst_port);  // ICMP type/code in dstport (convention)
    p = put8(p, 0);
    p = put8(p, r.tcp_flags);
    p = put8(p, r.proto);
    p = put8(p, r.tos);
    p = put16(p, static_cast<uint16_t>(r.src_as));
    p = put16(p, static_cast<uint16_t>(r.dst_as));
    p = put8(p, r.src_mask);
    p = put8(p, r.dst_mask);
    p = put16(p, 0);
  }
  state.sequence += static_cast<uint32_t>(n);
  ++state.datagrams;
  state.last_templates = 0;
  return n;
}

size_t encodeNetflowV9(std::span<const FlowRecord> records, ExportState& state,
                       std::vector<uint8_t>& out) {
  constexpr size_t kHeader = 20;
  size_t max_len = state.max_datagram;
  out.assign(max_len, 0);
  uint8_t* base = out.data();
  uint8_t* p = base + kHeader;
  uint32_t count = 0;
  uint32_t templates = 0;
  if (templatesDue(state)) {
    uint8_t* set = p;
    p = put16(p, 0);  // template flowset
    p = put16(p, 0);
    p = putTemplate(p, kTemplateV4, kV9FieldsV4);
    p = putTemplate(p, kTemplateV6, kV9FieldsV6);
    put16(set + 2, static_cast<uint16_t>(p - set));
    templates += 2;
    if (state.sampling > 1) {
      // Options template (RFC 3954 section 6.1): scope System, SAMPLING_INTERVAL/ALGORITHM.
      set = p;
      p = put16(p, 1);
      p = put16(p, 0);
      p = put16(p, kTemplateOptions);
      p = put16(p, 4);  // option scope length (bytes)
      p = put16(p, 8);  // option length (bytes)
      p = put16(p, 1);  // scope: System
      p = put16(p, 4);
      p = put16(p, 34);  // SAMPLING_INTERVAL
      p = put16(p, 4);
      p = put16(p, 35);  // SAMPLING_ALGORITHM
      p = put16(p, 1);
      p = set + pad4(static_cast<size_t>(p - set));
      put16(set + 2, static_cast<uint16_t>(p - set));
      ++templates;
      // Its data record.
      set = p;
      p = put16(p, kTemplateOptions);
      p = put16(p, 0);
      p = put32(p, state.domain);
      p = put32(p, state.sampling);
      p = put8(p, 1);  // deterministic
      p = set + pad4(static_cast<size_t>(p - set));
      put16(set + 2, static_cast<uint16_t>(p - set));
      ++count;
    }
  }
  size_t taken =
      putDataSets(records, base, p, max_len, kV9RecordV4, kV9RecordV6, true,
                  [&state](uint8_t* q, const FlowRecord& r) { return putV9Record(q, r, state); });
  count += templates + static_cast<uint32_t>(taken);
  if (taken == 0 && !records.empty()) {
    out.clear();
    return 0;
  }
  out.resize(static_cast<size_t>(p - base));
  uint8_t* h = base;
  h = put16(h, 9);
  h = put16(h, static_cast<uint16_t>(count));
  h = put32(h, uptimeMs(state.export_ns, state));
  h = put32(h, static_cast<uint32_t>(state.export_ns / kNsPerSec));
  h = put32(h, state.sequence);
  put32(h, state.domain);
  ++state.sequence;
  ++state.datagrams;
  state.last_templates = templates;
  return taken;
}

size_t encodeIpfix(std::span<const FlowRecord> records, ExportState& state,
                   std::vector<uint8_t>& out) {
  constexpr size_t kHeader = 16;
  size_t max_len = state.max_datagram;
  out.assign(max_len, 0);
  uint8_t* base = out.data();
  uint8_t* p = base + kHeader;
  uint32_t data_records = 0;
  uint32_t templates = 0;
  if (templatesDue(state)) {
    uint8_t* set = p;
    p = put16(p, 2);  // template set
    p = put16(p, 0);
    p = putTemplate(p, kTemplateV4, kIpfixFieldsV4);
    p = putTemplate(p, kTemplateV6, kIpfixFieldsV6);
    put16(set + 2, static_cast<uint16_t>(p - set));
    templates += 2;
    if (state.sampling > 1) {
      // Options template (RFC 7011 section 3.4.2.2), scope observationDomainId.
      set = p;
      p = put16(p, 3);
      p = put16(p, 0);
      p = put16(p, kTemplateOptions);
      p = put16(p, 5);    // field count
      p = put16(p, 1);    // scope field count
      p = put16(p, 149);  // observationDomainId
      p = put16(p, 4);
      p = put16(p, 34);  // samplingInterval
      p = put16(p, 4);
      p = put16(p, 35);  // samplingAlgorithm
      p = put16(p, 1);
      p = put16(p, 305);  // samplingPacketInterval
      p = put16(p, 4);
      p = put16(p, 306);  // samplingPacketSpace
      p = put16(p, 4);
      put16(set + 2, static_cast<uint16_t>(p - set));
      ++templates;
      set = p;
      p = put16(p, kTemplateOptions);
      p = put16(p, 0);
      p = put32(p, state.domain);
      p = put32(p, state.sampling);
      p = put8(p, 1);  // deterministic
      p = put32(p, 1);
      p = put32(p, state.sampling - 1);
      put16(set + 2, static_cast<uint16_t>(p - set));
      ++data_records;
    }
  }
  size_t taken = putDataSets(records, base, p, max_len, kIpfixRecordV4, kIpfixRecordV6, false,
                             [](uint8_t* q, const FlowRecord& r) { return putIpfixRecord(q, r); });
  if (taken == 0 && !records.empty()) {
    out.clear();
    return 0;
  }
  data_records += static_cast<uint32_t>(taken);
  out.resize(static_cast<size_t>(p - base));
  uint8_t* h = base;
  h = put16(h, 10);
  h = put16(h, static_cast<uint16_t>(out.size()));
  h = put32(h, static_cast<uint32_t>(state.export_ns / kNsPerSec));
  h = put32(h, state.sequence);  // data records sent before this message
  put32(h, state.domain);
  state.sequence += data_records;
  ++state.datagrams;
  state.last_templates = templates;
  return taken;
}

size_t encodeSflow(std::span<const FlowRecord> records, ExportState& state,
                   std::vector<uint8_t>& out) {
  size_t max_len = state.max_datagram;
  out.assign(max_len, 0);
  uint8_t* base = out.data();
  bool agent_v4 = state.agent.isV4();
  size_t header_len = agent_v4 ? 28 : 40;
  uint8_t* p = base + header_len;
  uint8_t scratch[128];
  size_t taken = 0;
  // Counters sample: tag, length, sequence, source, 1 record; record tag, length, 88 bytes.
  constexpr size_t kCountersSampleLen = 12 + 8 + 88;
  uint8_t* counters_at = nullptr;
  if (state.counters_interval > 0 && state.datagrams % state.counters_interval == 0 &&
      header_len + 8 + kCountersSampleLen <= max_len) {
    counters_at = p;  // filled in below, once this datagram's samples are counted
    p += 8 + kCountersSampleLen;
  }
  for (const FlowRecord& r : records) {
    uint32_t frame_len = wire::sflowFrameLength(r);
    uint32_t seq = state.sample_sequence + 1;
    size_t hdr = std::min<size_t>(putSampledHeader(scratch, r, frame_len, seq), frame_len);
    // sample: tag, length, 8 words, then the raw-header record: tag, length, 4 words, header.
    size_t record_len = 16 + pad4(hdr);
    size_t sample_len = 32 + 8 + record_len;
    if (static_cast<size_t>(p - base) + 8 + sample_len > max_len) {
      break;
    }
    p = put32(p, 1);  // enterprise 0, format 1: flow sample
    p = put32(p, static_cast<uint32_t>(sample_len));
    p = put32(p, seq);
    p = put32(p, state.sflow_source_index & 0xffffff);  // source id class 0 (ifIndex)
    p = put32(p, state.sampling);
    p = put32(p, seq * state.sampling);  // sample pool
    p = put32(p, 0);                     // drops
    p = put32(p, r.in_if);
    p = put32(p, r.out_if);
    p = put32(p, 1);  // one flow record
    p = put32(p, 1);  // enterprise 0, format 1: raw packet header
    p = put32(p, static_cast<uint32_t>(record_len));
    p = put32(p, 1);  // header protocol: Ethernet
    p = put32(p, frame_len);
    p = put32(p, 0);  // stripped
    p = put32(p, static_cast<uint32_t>(hdr));
    p = putBytes(p, scratch, hdr);
    std::fill(p, p + (pad4(hdr) - hdr), uint8_t{0});
    p += pad4(hdr) - hdr;
    state.sample_sequence = seq;
    state.if_in_octets += uint64_t{frame_len} * state.sampling;
    state.if_in_packets += state.sampling;
    ++taken;
  }
  if (taken == 0 && !records.empty()) {
    out.clear();
    return 0;
  }
  if (counters_at != nullptr) {
    uint8_t* c = counters_at;
    c = put32(c, 2);  // enterprise 0, format 2: counters sample
    c = put32(c, static_cast<uint32_t>(kCountersSampleLen));
    c = put32(c, ++state.counter_sequence);
    c = put32(c, state.sflow_source_index & 0xffffff);  // source id class 0 (ifIndex)
    c = put32(c, 1);                                    // one counter record
    c = put32(c, 1);                                    // enterprise 0, format 1: generic if
    c = put32(c, 88);
    c = put32(c, state.sflow_source_index);  // ifIndex
    c = put32(c, 6);                         // ifType: ethernetCsmacd
    c = put64(c, 10'000'000'000ULL);         // ifSpeed
    c = put32(c, 1);                         // ifDirection: full duplex
    c = put32(c, 3);                         // ifStatus: admin up, oper up
    c = put64(c, state.if_in_octets);
    c = put32(c, static_cast<uint32_t>(state.if_in_packets));  // ifInUcastPkts
    c = put32(c, 0);                                           // ifInMulticastPkts
    c = put32(c, 0);                                           // ifInBroadcastPkts
    c = put32(c, 0);                                           // ifInDiscards
    c = put32(c, 0);                                           // ifInErrors
    c = put32(c, 0xffffffff);                                  // ifInUnknownProtos: unknown
    c = put64(c, 0);                                           // ifOutOctets
    for (int k = 0; k < 5; ++k) {  // out unicast, multicast, broadcast, discards, errors
      c = put32(c, 0);
    }
    put32(c, 0);  // ifPromiscuousMode
  }
  out.resize(static_cast<size_t>(p - base));
  uint8_t* h = base;
  ++state.sequence;
  h = put32(h, 5);
  h = put32(h, agent_v4 ? 1 : 2);
  if (agent_v4) {
    h = put32(h, state.agent.v4());
  } else {
    h = putBytes(h, state.agent.bytes.data(), 16);
  }
  h = put32(h, state.domain);
  h = put32(h, state.sequence);
  h = put32(h, uptimeMs(state.export_ns, state));
  put32(h, static_cast<uint32_t>(taken + (counters_at != nullptr ? 1 : 0)));
  ++state.datagrams;
  state.last_templates = 0;
  return taken;
}

size_t encode(Format format, std::span<const FlowRecord> records, ExportState& state,
              std::vector<uint8_t>& out) {
  switch (format) {
    case Format::kNetflowV5:
      return encodeNetflowV5(records, state, out);
    case Format::kNetflowV9:
      return encodeNetflowV9(records, state, out);
    case Format::kIpfix:
      return encodeIpfix(records, state, out);
    case Format::kSflow:
      return encodeSflow(records, state, out);
  }
  return 0;
}

}  // namespace nc::gen
