// Template plans and the template cache: IE → op table, compile, replay, limits, expiry,
// withdrawal and persistence.
//
// Persistence file (all integers little-endian, fixed width):
//
//   +--------------------+------------+-----------+------------------------------+-----------+
//   | magic "NCTMPL\0\0" | version u32| count u32 | count x template entry       | fnv64 u64 |
//   +--------------------+------------+-----------+------------------------------+-----------+
//   entry: exporter[16] proto_version u8 options u8 template_id u16 domain u32 scope_count u16
//          field_count u16 refreshed_ns u64, then field_count x (id u16, length u16, pen u32)
//
// The checksum (FNV-1a 64) covers everything before it. Loading re-validates every template with
// the same rules as the wire path, so a hand-edited file cannot smuggle in a hostile template.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "collector/decode/decoder_impl.hpp"

namespace nc::decode {

Op opForElement(uint16_t id) {
  switch (id) {
    case 1:
      return Op::kOctetDelta;
    case 2:
      return Op::kPacketDelta;
    case 4:
      return Op::kProto;
    case 5:
      return Op::kTos;
    case 6:
      return Op::kTcpFlags;
    case 7:
      return Op::kSrcPort;
    case 8:
      return Op::kSrcV4;
    case 9:
      return Op::kSrcMask;
    case 10:
      return Op::kInIf;
    case 11:
      return Op::kDstPort;
    case 12:
      return Op::kDstV4;
    case 13:
      return Op::kDstMask;
    case 14:
      return Op::kOutIf;
    case 15:
      return Op::kNextHopV4;
    case 16:
      return Op::kSrcAs;
    case 17:
      return Op::kDstAs;
    case 18:
      return Op::kBgpNextHopV4;
    case 21:
      return Op::kLastUptime;
    case 22:
      return Op::kFirstUptime;
    case 27:
      return Op::kSrcV6;
    case 28:
      return Op::kDstV6;
    case 29:
      return Op::kSrcMask;  // sourceIPv6PrefixLength
    case 30:
      return Op::kDstMask;  // destinationIPv6PrefixLength
    case 32:
      return Op::kIcmpTypeCode;  // icmpTypeCodeIPv4
    case 34:
      return Op::kSamplingInterval;
    case 38:
      return Op::kEngineType;
    case 39:
      return Op::kEngineId;
    case 48:
      return Op::kSamplerId;
    case 50:
      return Op::kSamplerRandomInterval;
    case 56:
      return Op::kSrcMac;
    case 57:
      return Op::kPostDstMac;
    case 58:
      return Op::kVlan;
    case 60:
      return Op::kIpVersion;
    case 61:
      return Op::kDirection;
    case 62:
      return Op::kNextHopV6;
    case 63:
      return Op::kBgpNextHopV6;
    case 80:
      return Op::kDstMac;
    case 81:
      return Op::kPostSrcMac;
    case 85:
      return Op::kOctetTotal;
    case 86:
      return Op::kPacketTotal;
    case 136:
      return Op::kEndReason;
    case 139:
      return Op::kIcmpTypeCode;  // icmpTypeCodeIPv6
    case 150:
      return Op::kStartSec;
    case 151:
      return Op::kEndSec;
    case 152:
      return Op::kStartMs;
    case 153:
      return Op::kEndMs;
    case 154:
      return Op::kStartUs;
    case 155:
      return Op::kEndUs;
    case 156:
      return Op::kStartNs;
    case 157:
      return Op::kEndNs;
    case 158:
      return Op::kStartDeltaUs;
    case 159:
      return Op::kEndDeltaUs;
    case 160:
      return Op::kSysInitMs;
    case 176:
      return Op::kIcmpType;  // icmpTypeIPv4
    case 177:
      return Op::kIcmpCode;  // icmpCodeIPv4
    case 178:
      return Op::kIcmpType;  // icmpTypeIPv6
    case 179:
      return Op::kIcmpCode;  // icmpCodeIPv6
    case 243:
      return Op::kDot1qVlan;
    case 302:
      return Op::kSamplerId;  // selectorId
    case 305:
      return Op::kSamplingPacketInterval;
    case 306:
      return Op::kSamplingPacketSpace;
    case 309:
      return Op::kSamplingSize;
    case 310:
      return Op::kSamplingPopulation;
    default:
      return Op::kSkip;
  }
}

namespace {

template <typename T, typename M>
uint16_t offsetIn(M T::*member) {
  static const T object{};
  return static_cast<uint16_t>(reinterpret_cast<const char*>(&(object.*member)) -
                               reinterpret_cast<const char*>(&object));
}

struct MoveDest {
  uint8_t base = 0;   // 0 FlowRecord, 1 RecordScratch
  uint8_t width = 0;  // bytes stored; 0 = not a plain move
  uint16_t offset = 0;
  uint32_t present = 0;
};

template <typename M>
MoveDest toRecord(M FlowRecord::*member, uint32_t present = 0) {
  return MoveDest{0, sizeof(M), offsetIn(member), present};
}
template <typename M>
MoveDest toScratch(M RecordScratch::*member, uint32_t present) {
  return MoveDest{1, sizeof(M), offsetIn(member), present};
}

// Where applyOp() would store the field's value untouched (truncated to the member), or width 0
// when the op does more (checks, scaling, masks, several members, or a member another op of the
// same template may also write: icmp type/code next to icmpTypeCode).
MoveDest moveFor(Op op, uint16_t length, bool has_type_code) {
  using S = RecordScratch;
  switch (op) {
    case Op::kOctetDelta:
      return toScratch(&S::octet_delta, S::kHasOctetDelta);
    case Op::kPacketDelta:
      return toScratch(&S::packet_delta, S::kHasPacketDelta);
    case Op::kOctetTotal:
      return toScratch(&S::octet_total, S::kHasOctetTotal);
    case Op::kPacketTotal:
      return toScratch(&S::packet_total, S::kHasPacketTotal);
    case Op::kProto:
      return toRecord(&FlowRecord::proto);
    case Op::kTos:
      return toRecord(&FlowRecord::tos);
    case Op::kTcpFlags:
      return toRecord(&FlowRecord::tcp_flags);
    case Op::kSrcPort:
      return toRecord(&FlowRecord::src_port);
    case Op::kDstPort:
      return toRecord(&FlowRecord::dst_port);
    case Op::kSrcV4:
      return length == 4 ? toScratch(&S::src4, S::kHasV4) : MoveDest{};
    case Op::kDstV4:
      return length == 4 ? toScratch(&S::dst4, S::kHasV4) : MoveDest{};
    case Op::kSrcMask:
      return toRecord(&FlowRecord::src_mask);
    case Op::kDstMask:
      return toRecord(&FlowRecord::dst_mask);
    case Op::kInIf:
      return toRecord(&FlowRecord::in_if);
    case Op::kOutIf:
      return toRecord(&FlowRecord::out_if);
    case Op::kSrcAs:
      return toRecord(&FlowRecord::src_as);
    case Op::kDstAs:
      return toRecord(&FlowRecord::dst_as);
    case Op::kFirstUptime:
      return toScratch(&S::start_uptime_ms, S::kHasStartUptime);
    case Op::kLastUptime:
      return toScratch(&S::end_uptime_ms, S::kHasEndUptime);
    case Op::kIcmpType:
      return has_type_code ? MoveDest{} : toRecord(&FlowRecord::icmp_type, S::kHasIcmp);
    case Op::kIcmpCode:
      return has_type_code ? MoveDest{} : toRecord(&FlowRecord::icmp_code, S::kHasIcmp);
    case Op::kSrcMac:
      return length == 6 ? toRecord(&FlowRecord::src_mac, S::kHasSrcMac) : MoveDest{};
    case Op::kDstMac:
      return length == 6 ? toRecord(&FlowRecord::dst_mac, S::kHasDstMac) : MoveDest{};
    case Op::kPostSrcMac:
      return length == 6 ? toScratch(&S::mac_post_src, 0) : MoveDest{};
    case Op::kPostDstMac:
      return length == 6 ? toScratch(&S::mac_post_dst, 0) : MoveDest{};
    case Op::kDirection:
      return toRecord(&FlowRecord::direction, S::kHasDirection);
    case Op::kIpVersion:
      return toRecord(&FlowRecord::ip_version);
    case Op::kEndReason:
      return toRecord(&FlowRecord::flow_end_reason);
    case Op::kEngineType:
      return toRecord(&FlowRecord::engine_type);
    case Op::kEngineId:
      return toRecord(&FlowRecord::engine_id);
    case Op::kSamplerId:
      return toScratch(&S::sampler_id, S::kHasSamplerId);
    case Op::kSamplingInterval:
    case Op::kSamplerRandomInterval:
      return toScratch(&S::sampling_interval, S::kHasSamplingInterval);
    case Op::kSamplingPacketInterval:
      return toScratch(&S::packet_interval, S::kHasPacketInterval);
    case Op::kSamplingPacketSpace:
      return toScratch(&S::packet_space, 0);
    case Op::kSamplingSize:
      return toScratch(&S::sampling_size, S::kHasSamplingSize);
    case Op::kSamplingPopulation:
      return toScratch(&S::sampling_population, 0);
    case Op::kStartDeltaUs:
      return toScratch(&S::start_delta_us, S::kHasStartDelta);
    case Op::kEndDeltaUs:
      return toScratch(&S::end_delta_us, S::kHasEndDelta);
    case Op::kSysInitMs:
      return toScratch(&S::sys_init_ms, S::kHasSysInit);
    default:
      return MoveDest{};
  }
}

// Splits a fixed-length plan into moves (by stored width) and the remaining steps.
void compileMoves(Template& t) {
  t.moves.clear();
  t.others.clear();
  t.move_present = 0;
  bool has_type_code = std::any_of(t.steps.begin(), t.steps.end(),
                                   [](const Step& st) { return st.op == Op::kIcmpTypeCode; });
  std::array<std::vector<Move>, 4> by_width;
  uint32_t offset = 0;
  for (const Step& st : t.steps) {
    offset += st.gap;
    MoveDest d = moveFor(st.op, st.length, has_type_code);
    int slot = d.width == 1 ? 0 : d.width == 2 ? 1 : d.width == 4 ? 2 : d.width == 8 ? 3 : -1;
    if (slot >= 0) {
      by_width[static_cast<size_t>(slot)].push_back(
          Move{static_cast<uint16_t>(offset + st.load_offset), d.offset, st.shift, d.base});
      t.move_present |= d.present;
    } else {
      Step other = st;
      other.gap = static_cast<uint16_t>(offset);
      t.others.push_back(other);
    }
    offset += st.length;
  }
  for (size_t w = 0; w < by_width.size(); ++w) {
    t.moves.insert(t.moves.end(), by_width[w].begin(), by_width[w].end());
    if (w < t.move_end.size()) {
      t.move_end[w] = static_cast<uint16_t>(t.moves.size());
    }
  }
}

Step makeStep(uint32_t gap, uint16_t length, Op op) {
  Step st;
  st.gap = static_cast<uint16_t>(gap);
  st.length = length;
  st.op = op;
  if (length != kVarLen && length > 8) {
    st.load_offset = static_cast<uint16_t>(length - 8);
  } else if (length != kVarLen) {
    st.shift = static_cast<uint8_t>(64 - 8 * length);
  }
  return st;
}

}  // namespace

DecodeError compileTemplate(std::span<const FieldSpec> fields, uint16_t scope_count, bool options,
                            uint8_t version, uint32_t max_fields, Template& out) {
  if (fields.empty() || fields.size() > max_fields || scope_count > fields.size()) {
    return DecodeError::kBadTemplate;
  }
  out.fields.assign(fields.begin(), fields.end());
  out.steps.clear();
  out.scope_count = scope_count;
  out.options = options;
  out.varlen = false;
  std::bitset<static_cast<size_t>(Op::kCount)> seen;
  uint32_t fixed = 0;
  uint32_t varlen_fields = 0;
  uint32_t gap = 0;
  Op last_if = Op::kSkip;
  for (size_t i = 0; i < fields.size(); ++i) {
    const FieldSpec& f = fields[i];
    Op op = Op::kSkip;
    // NetFlow v9 options scope fields carry scope *types* (1 system, 2 interface, ...), not IEs.
    bool v9_scope = version == 9 && options && i < scope_count;
    if (!v9_scope && f.pen == 0) {
      op = opForElement(f.id);
      if (f.id == 82) {  // interfaceName names the interface field before it (OVS: in, then out)
        op = last_if == Op::kOutIf ? Op::kOutIfName : Op::kInIfName;
      } else if (f.id == 83) {
        op = last_if == Op::kOutIf ? Op::kOutIfDesc : Op::kInIfDesc;
      }
    } else if (v9_scope && f.id == 2) {
      op = Op::kInIf;  // v9 scope type 2 "Interface": the options record describes this ifIndex
    }
    if (op == Op::kInIf || op == Op::kOutIf) {
      last_if = op;
    }
    if (op != Op::kSkip && seen.test(static_cast<size_t>(op))) {
      op = Op::kSkip;  // duplicated IE (OVS repeats interfaceName): the first one wins
    }
    if (f.length == kVarLen) {
      if (gap > 0xfffe) {
        return DecodeError::kBadTemplate;
      }
      out.steps.push_back(makeStep(gap, kVarLen, op));
      gap = 0;
      ++varlen_fields;
      out.varlen = true;
    } else if (op == Op::kSkip || f.length == 0) {
      gap += f.length;
    } else {
      if (gap > 0xfffe) {
        return DecodeError::kBadTemplate;
      }
      out.steps.push_back(makeStep(gap, f.length, op));
      gap = 0;
    }
    if (op != Op::kSkip) {
      seen.set(static_cast<size_t>(op));
    }
    if (f.length != kVarLen) {
      fixed += f.length;
    }
  }
  if (gap > 0xfffe) {
    return DecodeError::kBadTemplate;
  }
  out.tail_gap = static_cast<uint16_t>(gap);
  out.min_length = fixed + varlen_fields;
  // A record of length 0 would make a data set loop forever; a record longer than a set can be
  // (65535 - 4 header bytes) can never appear.
  if (out.min_length == 0 || out.min_length > 65531) {
    return DecodeError::kBadTemplate;
  }
  if (!out.varlen) {
    compileMoves(out);
  }
  out.ovs_layout = fields.size() >= 2 && fields[0].id == 138 && fields[0].pen == 0 &&
                   fields[1].id == 61 && fields[1].pen == 0;
  return DecodeError::kNone;
}

namespace {

constexpr uint64_t kNtpToUnixSeconds = 2208988800ull;

uint64_t ntpToUnixNs(const uint8_t* p, size_t len) {
  if (len != 8) {
    return 0;
  }
  uint64_t sec = loadBe32(p);
  uint64_t frac = loadBe32(p + 4);
  if (sec < kNtpToUnixSeconds) {
    return 0;
  }
  return (sec - kNtpToUnixSeconds) * 1'000'000'000 + ((frac * 1'000'000'000) >> 32);
}

// `v` is the field as an unsigned big-endian number (its last 8 bytes when longer); `present`
// stands for s.present, held by the caller where the compiler can keep it in a register.
[[gnu::always_inline]] inline void applyOp(Op op, const uint8_t* p, size_t len, uint64_t v,
                                           FlowRecord& f, RecordScratch& s, uint32_t& present) {
  switch (op) {
    case Op::kSkip:
    case Op::kCount:
      break;
    case Op::kOctetDelta:
      s.octet_delta = v;
      present |= RecordScratch::kHasOctetDelta;
      break;
    case Op::kPacketDelta:
      s.packet_delta = v;
      present |= RecordScratch::kHasPacketDelta;
      break;
    case Op::kOctetTotal:
      s.octet_total = v;
      present |= RecordScratch::kHasOctetTotal;
      break;
    case Op::kPacketTotal:
      s.packet_total = v;
      present |= RecordScratch::kHasPacketTotal;
      break;
    case Op::kProto:
      f.proto = static_cast<uint8_t>(v);
      break;
    case Op::kTos:
      f.tos = static_cast<uint8_t>(v);
      break;
    case Op::kTcpFlags:
      f.tcp_flags = static_cast<uint8_t>(v);  // 2-byte form: low byte holds the classic flags
      break;
    case Op::kSrcPort:
      f.src_port = static_cast<uint16_t>(v);
      break;
    case Op::kDstPort:
      f.dst_port = static_cast<uint16_t>(v);
      break;
    case Op::kSrcV4:
      if (len == 4) {
        s.src4 = static_cast<uint32_t>(v);
        present |= RecordScratch::kHasV4;
      }
      break;
    case Op::kDstV4:
      if (len == 4) {
        s.dst4 = static_cast<uint32_t>(v);
        present |= RecordScratch::kHasV4;
      }
      break;
    case Op::kSrcV6:
      if (len == 16) {
        s.src6 = IpAddr::fromV6(p);
        present |= RecordScratch::kHasV6;
      }
      break;
    case Op::kDstV6:
      if (len == 16) {
        s.dst6 = IpAddr::fromV6(p);
        present |= RecordScratch::kHasV6;
      }
      break;
    case Op::kSrcMask:
      f.src_mask = static_cast<uint8_t>(v);
      break;
    case Op::kDstMask:
      f.dst_mask = static_cast<uint8_t>(v);
      break;
    case Op::kInIf:
      f.in_if = static_cast<uint32_t>(v);
      break;
    case Op::kInIfName:
      s.in_name = p;
      s.in_name_len = static_cast<uint16_t>(len);
      break;
    case Op::kOutIfName:
      s.out_name = p;
      s.out_name_len = static_cast<uint16_t>(len);
      break;
    case Op::kInIfDesc:
      s.in_desc = p;
      s.in_desc_len = static_cast<uint16_t>(len);
      break;
    case Op::kOutIfDesc:
      s.out_desc = p;
      s.out_desc_len = static_cast<uint16_t>(len);
      break;
    case Op::kOutIf:
      f.out_if = static_cast<uint32_t>(v);
      break;
    case Op::kNextHopV4:
    case Op::kBgpNextHopV4:
      // ipNextHop wins over bgpNextHop when both are present and non-zero.
      if (len == 4 && (!(present & RecordScratch::kHasNextHop) || f.next_hop.v4() == 0)) {
        f.next_hop = IpAddr::fromV4(static_cast<uint32_t>(v));
        present |= RecordScratch::kHasNextHop;
      }
      break;
    case Op::kNextHopV6:
    case Op::kBgpNextHopV6:
      if (len == 16 && (!(present & RecordScratch::kHasNextHop) || f.next_hop.isZero())) {
        f.next_hop = IpAddr::fromV6(p);
        present |= RecordScratch::kHasNextHop;
      }
      break;
    case Op::kSrcAs:
      f.src_as = static_cast<uint32_t>(v);
      break;
    case Op::kDstAs:
      f.dst_as = static_cast<uint32_t>(v);
      break;
    case Op::kFirstUptime:
      s.start_uptime_ms = static_cast<uint32_t>(v);
      present |= RecordScratch::kHasStartUptime;
      break;
    case Op::kLastUptime:
      s.end_uptime_ms = static_cast<uint32_t>(v);
      present |= RecordScratch::kHasEndUptime;
      break;
    case Op::kIcmpTypeCode:
      f.icmp_type = static_cast<uint8_t>(v >> 8);
      f.icmp_code = static_cast<uint8_t>(v);
      present |= RecordScratch::kHasIcmp;
      break;
    case Op::kIcmpType:
      f.icmp_type = static_cast<uint8_t>(v);
      present |= RecordScratch::kHasIcmp;
      break;
    case Op::kIcmpCode:
      f.icmp_code = static_cast<uint8_t>(v);
      present |= RecordScratch::kHasIcmp;
      break;
    case Op::kSrcMac:
      if (len == 6) {
        f.src_mac = v;
        present |= RecordScratch::kHasSrcMac;
      }
      break;
    case Op::kDstMac:
      if (len == 6) {
        f.dst_mac = v;
        present |= RecordScratch::kHasDstMac;
      }
      break;
    case Op::kPostSrcMac:
      if (len == 6) {
        s.mac_post_src = v;
      }
      break;
    case Op::kPostDstMac:
      if (len == 6) {
        s.mac_post_dst = v;
      }
      break;
    case Op::kVlan:
      f.vlan = static_cast<uint16_t>(v & 0x0fff);
      present |= RecordScratch::kHasVlan;
      break;
    case Op::kDot1qVlan:
      s.dot1q_vlan = static_cast<uint16_t>(v & 0x0fff);
      break;
    case Op::kDirection:
      f.direction = static_cast<uint8_t>(v);
      present |= RecordScratch::kHasDirection;
      break;
    case Op::kIpVersion:
      f.ip_version = static_cast<uint8_t>(v);
      break;
    case Op::kEndReason:
      f.flow_end_reason = static_cast<uint8_t>(v);
      break;
    case Op::kEngineType:
      f.engine_type = static_cast<uint8_t>(v);
      break;
    case Op::kEngineId:
      f.engine_id = static_cast<uint8_t>(v);
      break;
    case Op::kSamplerId:
      s.sampler_id = v;
      present |= RecordScratch::kHasSamplerId;
      break;
    case Op::kSamplingInterval:
    case Op::kSamplerRandomInterval:
      s.sampling_interval = v;
      present |= RecordScratch::kHasSamplingInterval;
      break;
    case Op::kSamplingPacketInterval:
      s.packet_interval = v;
      present |= RecordScratch::kHasPacketInterval;
      break;
    case Op::kSamplingPacketSpace:
      s.packet_space = v;
      break;
    case Op::kSamplingSize:
      s.sampling_size = v;
      present |= RecordScratch::kHasSamplingSize;
      break;
    case Op::kSamplingPopulation:
      s.sampling_population = v;
      break;
    case Op::kStartSec:
      s.start_abs_ns = v * 1'000'000'000;
      present |= RecordScratch::kHasStartAbs;
      break;
    case Op::kEndSec:
      s.end_abs_ns = v * 1'000'000'000;
      present |= RecordScratch::kHasEndAbs;
      break;
    case Op::kStartMs:
      s.start_abs_ns = v * 1'000'000;
      present |= RecordScratch::kHasStartAbs;
      break;
    case Op::kEndMs:
      s.end_abs_ns = v * 1'000'000;
      present |= RecordScratch::kHasEndAbs;
      break;
    case Op::kStartUs:
    case Op::kStartNs:
      s.start_abs_ns = ntpToUnixNs(p, len);
      present |= RecordScratch::kHasStartAbs;
      break;
    case Op::kEndUs:
    case Op::kEndNs:
      s.end_abs_ns = ntpToUnixNs(p, len);
      present |= RecordScratch::kHasEndAbs;
      break;
    case Op::kStartDeltaUs:
      s.start_delta_us = static_cast<uint32_t>(v);
      present |= RecordScratch::kHasStartDelta;
      break;
    case Op::kEndDeltaUs:
      s.end_delta_us = static_cast<uint32_t>(v);
      present |= RecordScratch::kHasEndDelta;
      break;
    case Op::kSysInitMs:
      s.sys_init_ms = v;
      present |= RecordScratch::kHasSysInit;
      break;
  }
}

}  // namespace

uint64_t RecordScratch::ownSamplingRate() const {
  if ((present & kHasSamplingInterval) && sampling_interval > 0) {
    return sampling_interval;
  }
  if ((present & kHasPacketInterval) && packet_interval > 0) {
    return (packet_interval + packet_space) / packet_interval;
  }
  if ((present & kHasSamplingSize) && sampling_size > 0 && sampling_population > 0) {
    return sampling_population / sampling_size;
  }
  return 0;
}

namespace {

// The 8 bytes at p as a big-endian number, shifted right: a field of 1..8 bytes in one load when
// the 8 bytes are readable (applyTemplate checks that 7 bytes follow the record).
[[gnu::always_inline]] inline uint64_t loadBe64Shifted(const uint8_t* p, unsigned shift) {
  uint64_t raw;
  std::memcpy(&raw, p, sizeof raw);
  return __builtin_bswap64(raw) >> shift;
}

// Runs moves [m, end), storing each value's low sizeof(T) bytes.
template <typename T>
[[gnu::always_inline]] inline void runMoves(const Move* m, const Move* end, const uint8_t* rec,
                                            uint8_t* const bases[2]) {
  for (; m < end; ++m) {
    const auto v = static_cast<T>(loadBe64Shifted(rec + m->src, m->shift));
    std::memcpy(bases[m->base] + m->dst, &v, sizeof v);
  }
}

}  // namespace

bool applyTemplate(const Template& t, ByteReader& r, RecordScratch& s) {
  FlowRecord& f = *s.rec;
  uint32_t present = s.present;
  if (!t.varlen) {
    // Fixed-length record (most templates): one bounds check for all of it (min_length is its
    // whole length, tail gap included), then the steps walk a plain pointer. When 7 more bytes
    // follow the record, every field is read with one 8-byte load (loadBe64Shifted): the plain
    // ones as moves, the others through applyOp.
    bool wide = r.remaining() >= size_t{t.min_length} + 7;
    const uint8_t* p = r.bytes(t.min_length);
    if (p == nullptr) {
      return false;
    }
    if (wide) {
      uint8_t* const bases[2] = {reinterpret_cast<uint8_t*>(&f), reinterpret_cast<uint8_t*>(&s)};
      const Move* const m = t.moves.data();
      runMoves<uint8_t>(m, m + t.move_end[0], p, bases);
      runMoves<uint16_t>(m + t.move_end[0], m + t.move_end[1], p, bases);
      runMoves<uint32_t>(m + t.move_end[1], m + t.move_end[2], p, bases);
      runMoves<uint64_t>(m + t.move_end[2], m + t.moves.size(), p, bases);
      present |= t.move_present;
      for (const Step& st : t.others) {
        const uint8_t* q = p + st.gap;
        applyOp(st.op, q, st.length, loadBe64Shifted(q + st.load_offset, st.shift), f, s, present);
      }
    } else {
      for (const Step& st : t.steps) {
        p += st.gap;
        applyOp(st.op, p, st.length, loadBeN(p, st.length), f, s, present);
        p += st.length;
      }
    }
    s.present = present;
    return true;
  }
  for (const Step& st : t.steps) {
    if (!r.skip(st.gap)) {
      return false;
    }
    size_t len = st.length;
    if (len == kVarLen) {
      len = r.u8();
      if (len == 255) {
        len = r.u16();
      }
    }
    const uint8_t* p = r.bytes(len);
    if (p == nullptr) {
      return false;
    }
    if (st.op != Op::kSkip) {
      applyOp(st.op, p, len, loadBeN(p, len), f, s, present);
    }
  }
  s.present = present;
  return r.skip(t.tail_gap);
}

// --- cache --------------------------------------------------------------------------------------

DecodeError Decoder::Impl::addTemplate(ExporterState& ex, const TemplateKey& key,
                                       std::span<const FieldSpec> fields, uint16_t scope_count,
                                       bool options, uint64_t now_ns) {
  auto it = templates_.find(key);
  if (it != templates_.end()) {
    Template& t = it->second;
    if (t.options == options && t.scope_count == scope_count && t.fields.size() == fields.size() &&
        std::equal(fields.begin(), fields.end(), t.fields.begin())) {
      t.refreshed_ns = now_ns;  // plain refresh: no allocation, no recompile
      ++ex.by_proto[templateSlot(key.version)].templates_received;
      return DecodeError::kNone;
    }
  } else if (ex.templateCount() >= options_.max_templates_per_exporter ||
             templates_.size() >= options_.max_templates_total) {
    return DecodeError::kTemplateLimit;
  }
  Template compiled;
  DecodeError e = compileTemplate(fields, scope_count, options, key.version,
                                  options_.max_template_fields, compiled);
  if (e != DecodeError::kNone) {
    return e;
  }
  compiled.refreshed_ns = now_ns;
  if (compiled.ovs_layout) {
    ex.detected_ovs = true;
  }
  if (it != templates_.end()) {
    it->second = std::move(compiled);
  } else {
    templates_.emplace(key, std::move(compiled));
    ++ex.by_proto[templateSlot(key.version)].templates_known;
  }
  ++ex.by_proto[templateSlot(key.version)].templates_received;
  return DecodeError::kNone;
}

const Template* Decoder::Impl::findTemplate(ExporterState& ex, const TemplateKey& key,
                                            uint64_t now_ns) {
  auto it = templates_.find(key);
  if (it == templates_.end()) {
    return nullptr;
  }
  if (now_ns > it->second.refreshed_ns &&
      now_ns - it->second.refreshed_ns > options_.template_timeout_ns) {
    templates_.erase(it);
    --ex.by_proto[templateSlot(key.version)].templates_known;
    ++ex.by_proto[templateSlot(key.version)].templates_expired;
    return nullptr;
  }
  return &it->second;
}

void Decoder::Impl::withdrawTemplate(ExporterState& ex, const TemplateKey& key) {
  if (templates_.erase(key) > 0) {
    --ex.by_proto[templateSlot(key.version)].templates_known;
    ++ex.by_proto[templateSlot(key.version)].templates_withdrawn;
  }
}

void Decoder::Impl::withdrawAll(ExporterState& ex, const IpAddr& exporter, uint8_t version,
                                uint32_t domain, bool /*options_only_kind*/, bool options) {
  for (auto it = templates_.begin(); it != templates_.end();) {
    const TemplateKey& k = it->first;
    if (k.exporter == exporter && k.version == version && k.domain == domain &&
        it->second.options == options) {
      it = templates_.erase(it);
      --ex.by_proto[templateSlot(version)].templates_known;
      ++ex.by_proto[templateSlot(version)].templates_withdrawn;
    } else {
      ++it;
    }
  }
}

size_t Decoder::Impl::expireTemplates(uint64_t now_ns) {
  size_t dropped = 0;
  for (auto it = templates_.begin(); it != templates_.end();) {
    if (now_ns > it->second.refreshed_ns &&
        now_ns - it->second.refreshed_ns > options_.template_timeout_ns) {
      auto ex = exporters_.find(it->first.exporter);
      if (ex != exporters_.end()) {
        ExporterStats& ts = ex->second.by_proto[templateSlot(it->first.version)];
        --ts.templates_known;
        ++ts.templates_expired;
      }
      it = templates_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

// --- persistence --------------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'N', 'C', 'T', 'M', 'P', 'L', 0, 0};
constexpr uint32_t kFileVersion = 1;

uint64_t fnv64(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    h = (h ^ p[i]) * 1099511628211ull;
  }
  return h;
}

void putLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

class LeReader {
 public:
  LeReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  uint64_t get(int bytes) {
    if (!ok_ || static_cast<size_t>(bytes) > n_ - pos_) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) {
      v |= uint64_t{p_[pos_ + i]} << (8 * i);
    }
    pos_ += bytes;
    return v;
  }
  const uint8_t* raw(size_t n) {
    if (!ok_ || n > n_ - pos_) {
      ok_ = false;
      return nullptr;
    }
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  bool ok() const { return ok_; }
  bool atEnd() const { return pos_ == n_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void setWhy(std::string* why, std::string text) {
  if (why != nullptr) {
    *why = std::move(text);
  }
}

}  // namespace

bool Decoder::Impl::saveTemplates(const std::string& path, std::string* why) const {
  std::string buf(kMagic, sizeof(kMagic));
  putLe(buf, kFileVersion, 4);
  putLe(buf, templates_.size(), 4);
  for (const auto& [key, t] : templates_) {
    buf.append(reinterpret_cast<const char*>(key.exporter.bytes.data()), 16);
    putLe(buf, key.version, 1);
    putLe(buf, t.options ? 1 : 0, 1);
    putLe(buf, key.id, 2);
    putLe(buf, key.domain, 4);
    putLe(buf, t.scope_count, 2);
    putLe(buf, t.fields.size(), 2);
    putLe(buf, t.refreshed_ns, 8);
    for (const FieldSpec& f : t.fields) {
      putLe(buf, f.id, 2);
      putLe(buf, f.length, 2);
      putLe(buf, f.pen, 4);
    }
  }
  putLe(buf, fnv64(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()), 8);

  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    setWhy(why, "open " + tmp + ": " + std::strerror(errno));
    return false;
  }
  size_t off = 0;
  while (off < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + off, buf.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      setWhy(why, "write " + tmp + ": " + std::strerror(errno));
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    setWhy(why, "fsync " + tmp + ": " + std::strerror(errno));
    ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    setWhy(why, "rename " + tmp + ": " + std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  // Make the rename itself durable.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) {
    dir = "/";
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

bool Decoder::Impl::loadTemplates(const std::string& path, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    setWhy(why, "cannot open " + path);
    return false;
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  if (data.size() < sizeof(kMagic) + 16 || std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    setWhy(why, path + ": not a template cache file");
    return false;
  }
  size_t body = data.size() - 8;
  LeReader tail(p + body, 8);
  if (tail.get(8) != fnv64(p, body)) {
    setWhy(why, path + ": checksum mismatch");
    return false;
  }
  LeReader r(p + sizeof(kMagic), body - sizeof(kMagic));
  uint32_t version = static_cast<uint32_t>(r.get(4));
  if (version != kFileVersion) {
    setWhy(why, path + ": unsupported format version " + std::to_string(version));
    return false;
  }
  uint32_t count = static_cast<uint32_t>(r.get(4));
  struct Entry {
    TemplateKey key;
    bool options;
    uint16_t scope_count;
    uint64_t refreshed_ns;
    std::vector<FieldSpec> fields;
  };
  std::vector<Entry> entries;
  for (uint32_t i = 0; i < count && r.ok(); ++i) {
    Entry e;
    const uint8_t* addr = r.raw(16);
    if (addr == nullptr) {
      break;
    }
    std::memcpy(e.key.exporter.bytes.data(), addr, 16);
    e.key.version = static_cast<uint8_t>(r.get(1));
    e.options = r.get(1) != 0;
    e.key.id = static_cast<uint16_t>(r.get(2));
    e.key.domain = static_cast<uint32_t>(r.get(4));
    e.scope_count = static_cast<uint16_t>(r.get(2));
    uint16_t nfields = static_cast<uint16_t>(r.get(2));
    e.refreshed_ns = r.get(8);
    if (nfields > options_.max_template_fields) {
      setWhy(why, path + ": template with too many fields");
      return false;
    }
    e.fields.resize(nfields);
    for (FieldSpec& f : e.fields) {
      f.id = static_cast<uint16_t>(r.get(2));
      f.length = static_cast<uint16_t>(r.get(2));
      f.pen = static_cast<uint32_t>(r.get(4));
    }
    entries.push_back(std::move(e));
  }
  if (!r.ok() || !r.atEnd() || entries.size() != count) {
    setWhy(why, path + ": truncated or trailing data");
    return false;
  }
  for (Entry& e : entries) {
    ExporterState* ex = exporterFor(e.key.exporter);
    if (ex == nullptr) {
      continue;
    }
    addTemplate(*ex, e.key, e.fields, e.scope_count, e.options, e.refreshed_ns);
  }
  return true;
}

}  // namespace nc::decode
