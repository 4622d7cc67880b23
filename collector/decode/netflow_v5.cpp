// NetFlow v5: fixed 24-byte header + `count` fixed 48-byte records (Cisco's v5 format).
//
//   header: version(2) count(2) sys_uptime_ms(4) unix_secs(4) unix_nsecs(4) flow_sequence(4)
//           engine_type(1) engine_id(1) sampling_interval(2: mode in top 2 bits, interval in 14)
//   record: srcaddr dstaddr nexthop(4 each) input output(2) dPkts dOctets first last(4)
//           srcport dstport(2) pad(1) tcp_flags prot tos(1) src_as dst_as(2) src_mask dst_mask(1)
//           pad(2)
//
// flow_sequence counts records, so gaps are estimated lost records per (engine type, engine id).
#include "collector/decode/decoder_impl.hpp"

namespace nc::decode {
namespace {

constexpr size_t kV5HeaderLen = 24;
constexpr size_t kV5RecordLen = 48;

// UNIX ns of a sys-uptime-relative timestamp, given the header's uptime and wall-clock time.
uint64_t uptimeToUnixNs(uint64_t export_ns, uint32_t sys_uptime_ms, uint32_t at_ms) {
  int64_t ago_ms = static_cast<int32_t>(sys_uptime_ms - at_ms);  // modulo 2^32, may be negative
  int64_t ns = static_cast<int64_t>(export_ns) - ago_ms * 1'000'000;
  return ns < 0 ? 0 : static_cast<uint64_t>(ns);
}

}  // namespace

DecodeError Decoder::Impl::decodeV5(ByteReader r, ExporterState& ex) {
  if (r.remaining() < kV5HeaderLen) {
    error(ex, DecodeError::kTruncated);
    return DecodeError::kTruncated;
  }
  r.u16();  // version
  uint16_t count = r.u16();
  uint32_t sys_uptime = r.u32();
  uint32_t unix_secs = r.u32();
  uint32_t unix_nsecs = r.u32();
  uint32_t sequence = r.u32();
  uint8_t engine_type = r.u8();
  uint8_t engine_id = r.u8();
  uint16_t sampling = r.u16();
  if (!r.ok()) {
    error(ex, DecodeError::kTruncated);
    return DecodeError::kTruncated;
  }
  DecodeError result = DecodeError::kNone;
  size_t available = r.remaining() / kV5RecordLen;
  size_t n = count;
  if (n > available) {
    // Never trust the header count: decode what is really there and count the lie.
    n = available;
    result = DecodeError::kBadLength;
    error(ex, result);
  }
  uint32_t rate = sampling & 0x3fff;
  const ExporterConfig& cfg = configFor(ex);
  if (cfg.sampling_rate > 0) {
    rate = cfg.sampling_rate;
  }
  if (rate == 0) {
    rate = 1;
  }
  uint64_t export_ns = uint64_t{unix_secs} * 1'000'000'000 + unix_nsecs;
  IfKind if_kind = ifKindFor(ex, FlowProto::kNetflowV5);
  // Open vSwitch (ofproto/netflow.c) rewrites flow_seq for every record it adds, so its header
  // carries the number of the datagram's LAST flow, not of the flow before its first: taken as
  // it is, every datagram of another size than the one before looked like loss or a restart.
  if (flavorOf(ex) == ExporterFlavor::kOvs && n > 0) {
    sequence -= static_cast<uint32_t>(n - 1);
  }
  trackSequence(ex, seqKey(5, 0, uint32_t{engine_type} << 8 | engine_id), sequence,
                static_cast<uint32_t>(n), true);

  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = r.bytes(kV5RecordLen);  // cannot fail: n <= available
    if (p == nullptr) {
      break;
    }
    FlowRecord& f = slot();
    f.received_ns = meta_->received_ns;
    f.exporter = meta_->exporter;
    f.exporter_port = meta_->port;
    f.flow_proto = FlowProto::kNetflowV5;
    f.ip_version = 4;
    f.src_addr = IpAddr::fromV4(loadBe32(p));
    f.dst_addr = IpAddr::fromV4(loadBe32(p + 4));
    f.next_hop = IpAddr::fromV4(loadBe32(p + 8));
    f.in_if = loadBe16(p + 12);
    f.out_if = loadBe16(p + 14);
    f.packets = loadBe32(p + 16);
    f.bytes = loadBe32(p + 20);
    f.first_ns = uptimeToUnixNs(export_ns, sys_uptime, loadBe32(p + 24));
    f.last_ns = uptimeToUnixNs(export_ns, sys_uptime, loadBe32(p + 28));
    f.src_port = loadBe16(p + 32);
    f.dst_port = loadBe16(p + 34);
    f.tcp_flags = p[37];
    f.proto = p[38];
    f.tos = p[39];
    f.src_as = loadBe16(p + 40);
    f.dst_as = loadBe16(p + 42);
    f.src_mask = p[44];
    f.dst_mask = p[45];
    f.engine_type = engine_type;
    f.engine_id = engine_id;
    f.sampling_rate = rate;
    f.if_kind = if_kind;
    f.direction = 0xff;
    if (f.proto == 1) {
      // ICMP type/code travel in the destination port (type * 256 + code).
      f.icmp_type = static_cast<uint8_t>(f.dst_port >> 8);
      f.icmp_code = static_cast<uint8_t>(f.dst_port & 0xff);
      f.flags |= FlowRecord::kFlagIcmpFromPort;
    }
    commit();
  }
  return result;
}

}  // namespace nc::decode
