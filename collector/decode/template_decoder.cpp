// NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): template, options template and data sets. Both share
// the compiled-plan replay (templates.cpp) and the record finishing below.
//
//   v9 header (20 B):    version count sys_uptime_ms unix_secs sequence source_id
//   IPFIX header (16 B): version length export_time sequence observation_domain
//   set:                 id(2) length(2) body   (v9: 0 template, 1 options; IPFIX: 2, 3; >=256
//   data)
//
// Sequence semantics: v9 counts export packets per source id; IPFIX counts data records (flow and
// options) per observation domain. A message with a data set we could not decode leaves the record
// count unknown, so the next IPFIX gap is not judged.
#include <algorithm>

#include "collector/decode/decoder_impl.hpp"

namespace nc::decode {
namespace {

constexpr size_t kV9HeaderLen = 20;
constexpr size_t kIpfixHeaderLen = 16;
constexpr size_t kSetHeaderLen = 4;
constexpr uint32_t kMaxWithdrawAllPerMessage = 4;

bool allZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Decoder::Impl::finishFlow(const SetContext& ctx, RecordScratch& s) {
  FlowRecord& f = *s.rec;
  f.packets = (s.present & RecordScratch::kHasPacketDelta) ? s.packet_delta : s.packet_total;
  f.bytes = (s.present & RecordScratch::kHasOctetDelta) ? s.octet_delta : s.octet_total;
  if (!(s.present & RecordScratch::kHasSrcMac)) {
    f.src_mac = s.mac_post_src;
  }
  if (!(s.present & RecordScratch::kHasDstMac)) {
    f.dst_mac = s.mac_post_dst;
  }
  if (!(s.present & RecordScratch::kHasVlan)) {
    f.vlan = s.dot1q_vlan;
  }
  // Address family: the one present with non-zero addresses (Cisco v9 templates may carry both).
  bool has4 = s.present & RecordScratch::kHasV4;
  bool has6 = s.present & RecordScratch::kHasV6;
  bool v6_set = has6 && !(s.src6.isZero() && s.dst6.isZero());
  bool v4_set = has4 && (s.src4 != 0 || s.dst4 != 0);
  bool use6 = has6 && (v6_set || !has4) && !(v4_set && !v6_set);
  if (f.ip_version == 4 && has4) {  // ipVersion (60) decides when present
    use6 = false;
  } else if (f.ip_version == 6 && has6) {
    use6 = true;
  }
  if (use6) {
    f.src_addr = s.src6;
    f.dst_addr = s.dst6;
  } else if (has4) {
    f.src_addr = IpAddr::fromV4(s.src4);
    f.dst_addr = IpAddr::fromV4(s.dst4);
  }
  if (f.ip_version != 4 && f.ip_version != 6) {
    f.ip_version = use6 ? 6 : has4 ? 4 : 0;
  }
  if (!(s.present & RecordScratch::kHasDirection)) {
    f.direction = 0xff;
  }
  if (!(s.present & RecordScratch::kHasIcmp) && (f.proto == 1 || f.proto == 58) &&
      f.dst_port != 0) {
    f.icmp_type = static_cast<uint8_t>(f.dst_port >> 8);
    f.icmp_code = static_cast<uint8_t>(f.dst_port & 0xff);
    f.flags |= FlowRecord::kFlagIcmpFromPort;
  }

  // Timestamps: absolute (150-157) > delta before export time (158/159, OVS) > sys-uptime (21/22).
  uint64_t first = (s.present & RecordScratch::kHasStartAbs) ? s.start_abs_ns : 0;
  uint64_t last = (s.present & RecordScratch::kHasEndAbs) ? s.end_abs_ns : 0;
  auto beforeExport = [&](uint64_t delta_ns) {
    return delta_ns > ctx.export_ns ? 0 : ctx.export_ns - delta_ns;
  };
  if (first == 0 && (s.present & RecordScratch::kHasStartDelta)) {
    first = beforeExport(uint64_t{s.start_delta_us} * 1000);
  }
  if (last == 0 && (s.present & RecordScratch::kHasEndDelta)) {
    last = beforeExport(uint64_t{s.end_delta_us} * 1000);
  }
  bool has_start_up = s.present & RecordScratch::kHasStartUptime;
  bool has_end_up = s.present & RecordScratch::kHasEndUptime;
  if ((first == 0 && has_start_up) || (last == 0 && has_end_up)) {
    // v9: relative to the header's sys uptime. IPFIX: relative to systemInitTimeMilliseconds (in
    // the record or from options data); without it, assume the flow ended at export time.
    bool have_init = false;
    uint64_t init_ms = 0;
    if (ctx.proto == FlowProto::kIpfix) {
      if (s.present & RecordScratch::kHasSysInit) {
        have_init = true;
        init_ms = s.sys_init_ms;
      } else {
        for (const DomainTime& d : ctx.ex->sys_init) {
          if (d.domain == ctx.domain) {
            have_init = true;
            init_ms = d.sys_init_ms;
          }
        }
      }
    }
    uint32_t anchor = ctx.proto == FlowProto::kIpfix
                          ? (has_end_up ? s.end_uptime_ms : s.start_uptime_ms)
                          : ctx.sys_uptime_ms;
    auto fromUptime = [&](uint32_t at_ms) -> uint64_t {
      if (have_init) {
        return (init_ms + at_ms) * 1'000'000;
      }
      int64_t ago_ms = static_cast<int32_t>(anchor - at_ms);
      int64_t ns = static_cast<int64_t>(ctx.export_ns) - ago_ms * 1'000'000;
      return ns < 0 ? 0 : static_cast<uint64_t>(ns);
    };
    if (first == 0 && has_start_up) {
      first = fromUptime(s.start_uptime_ms);
    }
    if (last == 0 && has_end_up) {
      last = fromUptime(s.end_uptime_ms);
    }
  }
  if (first == 0 && last == 0) {
    first = last = ctx.export_ns;
  } else if (first == 0) {
    first = last;
  } else if (last == 0) {
    last = first;
  }
  f.first_ns = first;
  f.last_ns = last;

  // Sampling: per-exporter override > the record's own rate > sampler table by id > domain-wide
  // rate from options data > 1.
  const ExporterConfig& cfg = configFor(*ctx.ex);
  uint64_t rate = cfg.sampling_rate;
  if (rate == 0) {
    rate = s.ownSamplingRate();
  }
  if (rate == 0 && (s.present & RecordScratch::kHasSamplerId)) {
    rate = findSampler(*ctx.ex, ctx.domain, s.sampler_id);
  }
  if (rate == 0) {
    rate = findSampler(*ctx.ex, ctx.domain, kAnySampler);
  }
  f.sampling_rate = rate == 0 ? 1 : static_cast<uint32_t>(rate > UINT32_MAX ? UINT32_MAX : rate);
  f.if_kind = ctx.if_kind;
  f.flags |= ctx.flags;
}

void Decoder::Impl::finishOptions(const SetContext& ctx, RecordScratch& s) {
  ++ctx.ex->st().options_records;
  uint64_t rate = s.ownSamplingRate();
  if (rate > 0) {
    uint64_t id = (s.present & RecordScratch::kHasSamplerId) ? s.sampler_id : kAnySampler;
    setSampler(*ctx.ex, ctx.domain, id,
               static_cast<uint32_t>(rate > UINT32_MAX ? UINT32_MAX : rate));
  }
  if (s.present & RecordScratch::kHasSysInit) {
    for (DomainTime& d : ctx.ex->sys_init) {
      if (d.domain == ctx.domain) {
        d.sys_init_ms = s.sys_init_ms;
        return;
      }
    }
    if (ctx.ex->sys_init.size() < kMaxSamplers) {
      ctx.ex->sys_init.push_back(DomainTime{ctx.domain, s.sys_init_ms});
    }
  }
}

void Decoder::Impl::noteIfNames(const SetContext& ctx, const RecordScratch& s, uint32_t in_if,
                                uint32_t out_if) {
  if (s.in_name != nullptr) {
    noteIfName(ctx, in_if, s.in_name, s.in_name_len);
  } else if (s.in_desc != nullptr) {
    noteIfName(ctx, in_if, s.in_desc, s.in_desc_len);
  }
  if (s.out_name != nullptr) {
    noteIfName(ctx, out_if, s.out_name, s.out_name_len);
  } else if (s.out_desc != nullptr) {
    noteIfName(ctx, out_if, s.out_desc, s.out_desc_len);
  }
}

void Decoder::Impl::noteIfName(const SetContext& ctx, uint32_t if_index, const uint8_t* name,
                               size_t len) {
  // Strings are often NUL-padded to a fixed length (Cisco IF_NAME is 32 bytes).
  while (len > 0 && (name[len - 1] == 0 || name[len - 1] == ' ')) {
    --len;
  }
  if (len == 0) {
    return;
  }
  len = std::min(len, kMaxIfNameLength);
  std::string_view text(reinterpret_cast<const char*>(name), len);
  auto& names = ctx.ex->if_names;
  auto it = names.find(if_index);
  if (it != names.end()) {
    if (it->second == text) {
      return;  // the steady state: one lookup and a compare per record
    }
    it->second.assign(text);
  } else {
    if (names.size() >= kMaxIfNames) {
      return;
    }
    names.emplace(if_index, std::string(text));
  }
  InterfaceName n;
  n.exporter = meta_->exporter;
  n.domain = ctx.domain;
  n.if_index = if_index;
  n.if_kind = ctx.if_kind;
  n.proto = ctx.proto;
  n.name = text;
  n.received_ns = meta_->received_ns;
  flush();  // records before the name keep their order relative to it
  sink_->onInterfaceName(n);
}

DecodeError Decoder::Impl::decodeDataSet(const SetContext& ctx, const Template& t, ByteReader set,
                                         uint32_t& records_out) {
  // Stop when what is left cannot hold a record: that is padding (RFC 7011 3.3.1, RFC 3954 5.3).
  while (set.remaining() >= t.min_length) {
    RecordScratch s;
    if (t.options) {
      FlowRecord scratch_record;
      s.rec = &scratch_record;
      if (!applyTemplate(t, set, s)) {
        return DecodeError::kBadLength;
      }
      finishOptions(ctx, s);
      if (s.hasIfText()) {
        noteIfNames(ctx, s, scratch_record.in_if, scratch_record.out_if);
      }
    } else {
      FlowRecord& f = slot();
      f.received_ns = meta_->received_ns;
      f.exporter = meta_->exporter;
      f.exporter_port = meta_->port;
      f.flow_proto = ctx.proto;
      f.observation_domain = ctx.domain;
      s.rec = &f;
      if (!applyTemplate(t, set, s)) {
        return DecodeError::kBadLength;
      }
      finishFlow(ctx, s);
      commit();
      if (s.hasIfText()) {
        noteIfNames(ctx, s, f.in_if, f.out_if);
      }
    }
    ++records_out;
  }
  return DecodeError::kNone;
}

// --- NetFlow v9 ---------------------------------------------------------------------------------

DecodeError Decoder::Impl::decodeV9(ByteReader r, ExporterState& ex) {
  if (r.remaining() < kV9HeaderLen) {
    error(ex, DecodeError::kTruncated);
    return DecodeError::kTruncated;
  }
  r.u16();  // version
  r.u16();  // count: template + data records; not trusted, sets are walked by length
  uint32_t sys_uptime = r.u32();
  uint32_t unix_secs = r.u32();
  uint32_t sequence = r.u32();
  uint32_t source_id = r.u32();
  if (!r.ok()) {
    error(ex, DecodeError::kTruncated);
    return DecodeError::kTruncated;
  }
  trackSequence(ex, seqKey(9, 0, source_id), sequence, 1, false);

  SetContext ctx;
  ctx.ex = &ex;
  ctx.proto = FlowProto::kNetflowV9;
  ctx.domain = source_id;
  ctx.export_ns = uint64_t{unix_secs} * 1'000'000'000;
  ctx.sys_uptime_ms = sys_uptime;
  const uint64_t now = meta_->received_ns;
  TemplateKey key;
  key.exporter = meta_->exporter;
  key.version = 9;
  key.domain = source_id;

  DecodeError first = DecodeError::kNone;
  auto fail = [&](DecodeError e) {
    error(ex, e);
    if (first == DecodeError::kNone) {
      first = e;
    }
  };

  while (r.remaining() >= kSetHeaderLen) {
    const uint8_t* set_start = r.current();
    uint16_t set_id = r.u16();
    uint16_t set_len = r.u16();
    if (set_len < kSetHeaderLen) {
      // Trailing zero fill (Cisco ACI pads datagrams) ends the packet quietly; anything else
      // with a length that cannot advance is an error, never a loop.
      if (!allZero(set_start, r.remaining() + kSetHeaderLen)) {
        fail(DecodeError::kBadLength);
      }
      break;
    }
    if (set_len - kSetHeaderLen > r.remaining()) {
      fail(DecodeError::kTruncated);
      break;
    }
    ByteReader set = r.sub(set_len - kSetHeaderLen);

    if (set_id == 0) {
      // Template flowset: {template id, field count, count x {type, length}}.
      while (set.remaining() >= 4) {
        uint16_t tid = set.u16();
        uint16_t nfields = set.u16();
        if (tid == 0 && nfields == 0) {
          break;  // padding
        }
        if (tid < 256 || nfields == 0 || nfields > options_.max_template_fields ||
            size_t{nfields} * 4 > set.remaining()) {
          fail(DecodeError::kBadTemplate);
          break;
        }
        field_buf_.clear();
        for (uint16_t i = 0; i < nfields; ++i) {
          FieldSpec f;
          f.id = set.u16();
          f.length = set.u16();
          field_buf_.push_back(f);
        }
        key.id = tid;
        DecodeError e = addTemplate(ex, key, field_buf_, 0, false, now);
        if (e != DecodeError::kNone) {
          fail(e);
        }
      }
    } else if (set_id == 1) {
      // Options template flowset: {template id, scope bytes, option bytes, fields}.
      while (set.remaining() >= 6) {
        uint16_t tid = set.u16();
        uint16_t scope_len = set.u16();
        uint16_t option_len = set.u16();
        if (tid == 0 && scope_len == 0 && option_len == 0) {
          break;  // padding
        }
        if (tid < 256 || scope_len % 4 != 0 || option_len % 4 != 0 ||
            size_t{scope_len} + option_len == 0 ||
            size_t{scope_len} + option_len > set.remaining() ||
            (size_t{scope_len} + option_len) / 4 > options_.max_template_fields) {
          fail(DecodeError::kBadTemplate);
          break;
        }
        uint16_t nscope = scope_len / 4;
        uint16_t nfields = static_cast<uint16_t>((scope_len + option_len) / 4);
        field_buf_.clear();
        for (uint16_t i = 0; i < nfields; ++i) {
          FieldSpec f;
          f.id = set.u16();
          f.length = set.u16();
          field_buf_.push_back(f);
        }
        key.id = tid;
        DecodeError e = addTemplate(ex, key, field_buf_, nscope, true, now);
        if (e != DecodeError::kNone) {
          fail(e);
        }
      }
    } else if (set_id < 256) {
      fail(DecodeError::kBadSet);
    } else {
      key.id = set_id;
      const Template* t = findTemplate(ex, key, now);
      if (t == nullptr) {
        fail(DecodeError::kUnknownTemplate);
        continue;
      }
      ctx.if_kind = ifKindFor(ex, FlowProto::kNetflowV9);
      uint32_t n = 0;
      DecodeError e = decodeDataSet(ctx, *t, set, n);
      if (e != DecodeError::kNone) {
        fail(e);
      }
    }
  }
  return first;
}

// --- IPFIX --------------------------------------------------------------------------------------

DecodeError Decoder::Impl::decodeIpfix(ByteReader whole, ExporterState& ex) {
  ByteReader h = whole;
  h.u16();  // version
  uint16_t length = h.u16();
  uint32_t export_time = h.u32();
  uint32_t sequence = h.u32();
  uint32_t domain = h.u32();
  if (!h.ok()) {
    error(ex, DecodeError::kTruncated);
    return DecodeError::kTruncated;
  }
  DecodeError first = DecodeError::kNone;
  auto fail = [&](DecodeError e) {
    error(ex, e);
    if (first == DecodeError::kNone) {
      first = e;
    }
  };
  if (length < kIpfixHeaderLen) {
    fail(DecodeError::kBadLength);
    return first;
  }
  size_t msg_len = length;
  if (msg_len > whole.remaining()) {
    fail(DecodeError::kTruncated);
    msg_len = whole.remaining();
  }
  ByteReader r = whole.sub(msg_len);
  r.skip(kIpfixHeaderLen);

  SetContext ctx;
  ctx.ex = &ex;
  ctx.proto = FlowProto::kIpfix;
  ctx.domain = domain;
  ctx.export_ns = uint64_t{export_time} * 1'000'000'000;
  const uint64_t now = meta_->received_ns;
  TemplateKey key;
  key.exporter = meta_->exporter;
  key.version = 10;
  key.domain = domain;
  uint32_t data_records = 0;
  uint32_t withdraw_all_scans = 0;
  bool count_known = first == DecodeError::kNone;

  while (r.remaining() >= kSetHeaderLen) {
    uint16_t set_id = r.u16();
    uint16_t set_len = r.u16();
    if (set_len < kSetHeaderLen) {
      fail(DecodeError::kBadLength);
      count_known = false;
      break;
    }
    if (set_len - kSetHeaderLen > r.remaining()) {
      fail(DecodeError::kTruncated);
      count_known = false;
      break;
    }
    ByteReader set = r.sub(set_len - kSetHeaderLen);

    if (set_id == 2 || set_id == 3) {
      bool options = set_id == 3;
      while (set.remaining() >= 4) {
        uint16_t tid = set.u16();
        uint16_t nfields = set.u16();
        if (nfields == 0) {
          // Template withdrawal (RFC 7011 8.1); id 2 / 3 withdraws every template of that kind.
          if (tid == set_id) {
            // Each withdraw-all scans the cache: allow a few per message, not thousands.
            if (++withdraw_all_scans > kMaxWithdrawAllPerMessage) {
              fail(DecodeError::kBadTemplate);
              break;
            }
            if (ex.templateCount() > 0) {
              withdrawAll(ex, key.exporter, 10, domain, true, options);
            }
          } else if (tid >= 256) {
            key.id = tid;
            withdrawTemplate(ex, key);
          } else if (tid == 0) {
            break;  // padding
          } else {
            fail(DecodeError::kBadTemplate);
            break;
          }
          continue;
        }
        uint16_t nscope = 0;
        if (options) {
          nscope = set.u16();
          if (!set.ok() || nscope > nfields) {
            fail(DecodeError::kBadTemplate);
            break;
          }
        }
        // Every field needs 4 bytes at least: check before looping.
        if (tid < 256 || nfields > options_.max_template_fields ||
            size_t{nfields} * 4 > set.remaining()) {
          fail(DecodeError::kBadTemplate);
          break;
        }
        field_buf_.clear();
        for (uint16_t i = 0; i < nfields; ++i) {
          FieldSpec f;
          uint16_t id = set.u16();
          f.length = set.u16();
          if (id & 0x8000) {
            f.id = id & 0x7fff;
            f.pen = set.u32();
          } else {
            f.id = id;
          }
          field_buf_.push_back(f);
        }
        if (!set.ok()) {
          fail(DecodeError::kBadTemplate);
          break;
        }
        key.id = tid;
        DecodeError e = addTemplate(ex, key, field_buf_, nscope, options, now);
        if (e != DecodeError::kNone) {
          fail(e);
        }
      }
    } else if (set_id < 256) {
      fail(DecodeError::kBadSet);
    } else {
      key.id = set_id;
      const Template* t = findTemplate(ex, key, now);
      if (t == nullptr) {
        fail(DecodeError::kUnknownTemplate);
        count_known = false;
        continue;
      }
      bool ovs = flavorOf(ex) == ExporterFlavor::kOvs;
      ctx.if_kind = ifKindFor(ex, FlowProto::kIpfix);
      // Open vSwitch scales packet/octet counts by the sampling rate before export
      // (ofproto-dpif-ipfix.c: packet_delta_count = UINT32_MAX / probability).
      ctx.flags = ovs ? FlowRecord::kFlagScaledByExporter : 0;
      DecodeError e = decodeDataSet(ctx, *t, set, data_records);
      if (e != DecodeError::kNone) {
        fail(e);
        count_known = false;
      }
    }
  }
  uint64_t seq_key = seqKey(10, 0, domain);
  trackSequence(ex, seq_key, sequence, data_records, true);
  if (!count_known) {
    forgetSequence(ex, seq_key);
  }
  return first;
}

}  // namespace nc::decode
