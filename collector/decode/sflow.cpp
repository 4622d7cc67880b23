// sFlow v5 (sflow_version_5.txt): flow samples (0:1, expanded 0:3) become FlowRecords (one per
// sample, packets = 1, bytes = frame length, sampling_rate = the sample's rate); counter samples
// (0:2, expanded 0:4) become InterfaceCounters. Unknown samples and records are skipped by length.
//
//   datagram: version(4)=5 agent_type(4: 1 v4, 2 v6) agent(4|16) sub_agent seq uptime nsamples
//   sample:   format(4: enterprise << 12 | type) length(4) body
//   flow sample: seq source_id rate pool drops input output nrecords records...
//   expanded:    seq src_type src_index rate pool drops in_fmt in_val out_fmt out_val nrecords ...
//   record:   format(4) length(4) body (padded to 4)
//
// The record's exporter is the agent address and observation_domain the sub-agent id. Sequence
// gaps: datagrams per (agent, sub-agent), samples per (agent, sub-agent, data source).
#include <algorithm>

#include "collector/decode/decoder_impl.hpp"

namespace nc::decode {
namespace {

// Cap on counts taken from the wire before looping (goflow2 uses 1000 as well).
constexpr uint32_t kMaxSamples = 1000;
constexpr uint32_t kMaxRecords = 1000;

// sFlow marks a counter it does not maintain as all ones; it must not enter a sum.
uint64_t knownCounter(uint32_t v) {
  return v == UINT32_MAX ? 0 : v;
}

uint32_t agentHash(const IpAddr& a) {
  return static_cast<uint32_t>(IpAddrHash()(a));
}

// Parses a sampled packet header starting at the Ethernet header (or at IP for header protocol
// 11/12) and fills what it finds. Stops quietly where the header is cut.
void parseSampledHeader(const uint8_t* p, size_t n, uint32_t header_proto, FlowRecord& f) {
  ByteReader r(p, n);
  uint16_t ethertype = 0;
  if (header_proto == 1) {  // ISO 8023 / Ethernet
    const uint8_t* eth = r.bytes(14);
    if (eth == nullptr) {
      return;
    }
    f.dst_mac = loadBeN(eth, 6);
    f.src_mac = loadBeN(eth + 6, 6);
    ethertype = loadBe16(eth + 12);
    // 802.1Q / 802.1ad (QinQ): keep the outer VLAN id, walk to the inner ethertype.
    for (int tags = 0;
         tags < 4 && (ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100); ++tags) {
      uint16_t tci = r.u16();
      ethertype = r.u16();
      if (!r.ok()) {
        return;
      }
      if (tags == 0) {
        f.vlan = tci & 0x0fff;
      }
    }
    if (ethertype == 0x8847 || ethertype == 0x8848) {  // MPLS: skip the label stack
      for (int labels = 0; labels < 16; ++labels) {
        uint32_t label = r.u32();
        if (!r.ok()) {
          return;
        }
        if (label & 0x100) {
          break;
        }
      }
      if (r.remaining() == 0) {
        return;
      }
      uint8_t nibble = r.current()[0] >> 4;
      ethertype = nibble == 4 ? 0x0800 : nibble == 6 ? 0x86dd : 0;
    }
  } else if (header_proto == 11) {
    ethertype = 0x0800;
  } else if (header_proto == 12) {
    ethertype = 0x86dd;
  } else {
    return;
  }

  uint8_t l4 = 0;
  bool first_fragment = true;
  if (ethertype == 0x0800) {
    const uint8_t* ip = r.bytes(20);
    if (ip == nullptr || (ip[0] >> 4) != 4) {
      return;
    }
    size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    f.ip_version = 4;
    f.tos = ip[1];
    l4 = ip[9];
    f.proto = l4;
    f.src_addr = IpAddr::fromV4(loadBe32(ip + 12));
    f.dst_addr = IpAddr::fromV4(loadBe32(ip + 16));
    first_fragment = (loadBe16(ip + 6) & 0x1fff) == 0;
    if (ihl < 20 || !r.skip(ihl - 20)) {
      return;
    }
  } else if (ethertype == 0x86dd) {
    const uint8_t* ip = r.bytes(40);
    if (ip == nullptr || (ip[0] >> 4) != 6) {
      return;
    }
    f.ip_version = 6;
    f.tos = static_cast<uint8_t>((loadBe16(ip) >> 4) & 0xff);
    f.src_addr = IpAddr::fromV6(ip + 8);
    f.dst_addr = IpAddr::fromV6(ip + 24);
    l4 = ip[6];
    // Walk the common extension headers (hop-by-hop, routing, fragment, destination options).
    for (int ext = 0; ext < 8 && (l4 == 0 || l4 == 43 || l4 == 44 || l4 == 60); ++ext) {
      const uint8_t* eh = r.bytes(8);
      if (eh == nullptr) {
        f.proto = l4;
        return;
      }
      if (l4 == 44) {
        first_fragment = (loadBe16(eh + 2) & 0xfff8) == 0;
        l4 = eh[0];
        continue;
      }
      size_t len = (size_t{eh[1]} + 1) * 8;
      l4 = eh[0];
      if (!r.skip(len - 8)) {
        f.proto = l4;
        return;
      }
    }
    f.proto = l4;
  } else {
    return;
  }
  if (!first_fragment) {
    return;
  }
  if (l4 == 6 || l4 == 17 || l4 == 132) {  // TCP, UDP, SCTP
    const uint8_t* t = r.bytes(4);
    if (t == nullptr) {
      return;
    }
    f.src_port = loadBe16(t);
    f.dst_port = loadBe16(t + 2);
    if (l4 == 6 && r.skip(9)) {  // sequence, acknowledgement, data offset
      f.tcp_flags = r.u8();
    }
  } else if (l4 == 1 || l4 == 58) {  // ICMP, ICMPv6
    const uint8_t* c = r.bytes(2);
    if (c == nullptr) {
      return;
    }
    f.icmp_type = c[0];
    f.icmp_code = c[1];
  }
}

IpAddr readAddress(ByteReader& r) {
  uint32_t type = r.u32();
  if (type == 1) {
    return IpAddr::fromV4(r.u32());
  }
  if (type == 2) {
    const uint8_t* p = r.bytes(16);
    return p == nullptr ? IpAddr{} : IpAddr::fromV6(p);
  }
  r.fail();  // unknown address type: the layout after it is unknown
  return IpAddr{};
}

}  // namespace

DecodeError Decoder::Impl::decodeSflow(ByteReader r, ExporterState& ex) {
  r.u32();  // version
  IpAddr agent = readAddress(r);
  uint32_t sub_agent = r.u32();
  uint32_t dg_seq = r.u32();
  r.u32();  // uptime
  uint32_t nsamples = r.u32();
  if (!r.ok()) {
    error(ex, DecodeError::kTruncated);
    return DecodeError::kTruncated;
  }
  const uint32_t ahash = agentHash(agent) ^ sub_agent;
  trackSequence(ex, seqKey(50, ahash, sub_agent), dg_seq, 1, false);
  if (!ex.has_config && !configs_.empty() && agent != meta_->exporter) {
    // Configuration may name the agent address rather than the UDP source.
    auto cfg = configs_.find(agent);
    if (cfg != configs_.end()) {
      ex.has_config = true;
      ex.config = cfg->second;
    }
  }

  DecodeError first = DecodeError::kNone;
  auto fail = [&](DecodeError e) {
    error(ex, e);
    if (first == DecodeError::kNone) {
      first = e;
    }
  };
  // Each sample is at least 8 bytes: a count the datagram cannot hold is a lie, not a loop bound.
  if (nsamples > kMaxSamples || size_t{nsamples} * 8 > r.remaining()) {
    fail(DecodeError::kBadLength);
    nsamples = static_cast<uint32_t>(std::min<size_t>(r.remaining() / 8, kMaxSamples));
  }
  const ExporterConfig& cfg = configFor(ex);

  for (uint32_t i = 0; i < nsamples && r.remaining() >= 8; ++i) {
    uint32_t format = r.u32();
    uint32_t length = r.u32();
    if (length > r.remaining()) {
      fail(DecodeError::kTruncated);
      break;
    }
    ByteReader s = r.sub(length);
    uint32_t enterprise = format >> 12;
    uint32_t type = format & 0xfff;
    if (enterprise != 0 || type < 1 || type > 4) {
      continue;  // discard samples (5), vendor samples: skipped by length
    }
    bool expanded = type == 3 || type == 4;
    bool is_flow = type == 1 || type == 3;
    uint32_t seq = s.u32();
    uint32_t source_id = 0;
    if (expanded) {
      uint32_t src_type = s.u32();
      uint32_t src_index = s.u32();
      source_id = (src_type << 24) | (src_index & 0xffffff);
    } else {
      source_id = s.u32();
    }

    if (!is_flow) {
      // Counter sample.
      uint32_t nrec = s.u32();
      if (!s.ok() || nrec > kMaxRecords || size_t{nrec} * 8 > s.remaining()) {
        fail(DecodeError::kBadSample);
        continue;
      }
      trackSequence(ex, seqKey(52, ahash, source_id), seq, 1, true);
      ++ex.st().counter_samples;
      InterfaceCounters c;
      c.agent = agent;
      c.exporter = meta_->exporter;
      c.received_ns = meta_->received_ns;
      c.sub_agent = sub_agent;
      c.source_id = source_id;
      c.sequence = seq;
      bool bad = false;
      for (uint32_t k = 0; k < nrec; ++k) {
        uint32_t rfmt = s.u32();
        uint32_t rlen = s.u32();
        if (!s.ok() || rlen > s.remaining()) {
          bad = true;
          break;
        }
        ByteReader rec = s.sub(rlen);
        if (rfmt == 1 && rlen >= 88) {  // generic interface counters
          c.has_generic = true;
          c.if_index = rec.u32();
          c.if_type = rec.u32();
          c.if_speed = rec.u64();
          c.if_direction = rec.u32();
          c.if_status = rec.u32();
          c.in_octets = rec.u64();
          c.in_packets = knownCounter(rec.u32());
          c.in_packets += knownCounter(rec.u32());
          c.in_packets += knownCounter(rec.u32());
          c.in_discards = rec.u32();
          c.in_errors = rec.u32();
          rec.u32();  // unknown protos
          c.out_octets = rec.u64();
          c.out_packets = knownCounter(rec.u32());
          c.out_packets += knownCounter(rec.u32());
          c.out_packets += knownCounter(rec.u32());
          c.out_discards = rec.u32();
          c.out_errors = rec.u32();
        } else if (rfmt == 2) {
          c.has_ethernet = true;
        } else if (rfmt == 1004 && rlen >= 12) {  // OpenFlow port (Open vSwitch)
          c.has_openflow = true;
          c.of_dpid = rec.u64();
          c.of_port = rec.u32();
          ex.detected_ovs = true;
        } else if (rfmt == 1005) {  // port name
          uint32_t len = rec.u32();
          if (rec.ok() && len <= rec.remaining()) {
            c.has_port_name = true;
            size_t keep = std::min<size_t>(len, c.port_name.size());
            const uint8_t* name = rec.bytes(keep);
            for (size_t j = 0; j < keep; ++j) {
              c.port_name[j] = static_cast<char>(name[j]);
            }
            c.port_name_len = static_cast<uint8_t>(keep);
          }
        } else if (rfmt == 2207) {  // OVS datapath performance counters
          ex.detected_ovs = true;
        }
      }
      if (bad) {
        fail(DecodeError::kBadSample);
      }
      if (c.has_generic || c.has_ethernet || c.has_openflow || c.has_port_name) {
        sink_->onCounters(c);
        ++counters_;
      }
      continue;
    }

    // Flow sample.
    uint32_t rate = s.u32();
    s.u32();  // sample pool
    const uint32_t drops = s.u32();
    uint32_t in_if = 0;
    uint32_t out_if = 0;
    if (expanded) {
      uint32_t in_fmt = s.u32();
      uint32_t in_val = s.u32();
      uint32_t out_fmt = s.u32();
      uint32_t out_val = s.u32();
      in_if = in_fmt == 0 ? in_val : 0;
      out_if = out_fmt == 0 ? out_val : 0;
    } else {
      uint32_t in = s.u32();
      uint32_t out = s.u32();
      // Top two bits: 0 ifIndex, 1 discard reason, 2 multiple outputs (count in low bits).
      in_if = (in >> 30) == 0 ? in : 0;
      out_if = (out >> 30) == 0 ? out : 0;
    }
    uint32_t nrec = s.u32();
    if (!s.ok() || nrec > kMaxRecords || size_t{nrec} * 8 > s.remaining()) {
      fail(DecodeError::kBadSample);
      continue;
    }
    SeqState& ds = ex.seq[seqKey(51, ahash, source_id)];
    trackSequence(ex, ds, seq, 1, true);
    // `drops` counts, per data source since the agent started, samples it dropped for lack of
    // resources: add the increase (a decrease is a restart: start over from the new value).
    if (ds.drops_valid && drops >= ds.drops) {
      ex.st().sampler_drops += drops - ds.drops;
    }
    ds.drops = drops;
    ds.drops_valid = true;

    FlowRecord& f = slot();
    f.received_ns = meta_->received_ns;
    f.first_ns = f.last_ns = meta_->received_ns;
    f.exporter = agent.isZero() ? meta_->exporter : agent;
    f.exporter_port = meta_->port;
    f.flow_proto = FlowProto::kSflowV5;
    f.observation_domain = sub_agent;
    f.in_if = in_if;
    f.out_if = out_if;
    f.packets = 1;
    f.direction = 0xff;
    f.sampling_rate = cfg.sampling_rate > 0 ? cfg.sampling_rate : (rate == 0 ? 1 : rate);
    bool have_header = false;
    bool bad = false;
    uint16_t switch_vlan = 0;
    for (uint32_t k = 0; k < nrec; ++k) {
      uint32_t rfmt = s.u32();
      uint32_t rlen = s.u32();
      if (!s.ok() || rlen > s.remaining()) {
        bad = true;
        break;
      }
      ByteReader rec = s.sub(rlen);
      switch (rfmt) {
        case 1: {  // raw packet header
          uint32_t hproto = rec.u32();
          uint32_t frame_len = rec.u32();
          rec.u32();  // stripped
          uint32_t hlen = rec.u32();
          if (!rec.ok() || hlen > rec.remaining()) {
            bad = true;
            break;
          }
          f.bytes = frame_len;
          parseSampledHeader(rec.current(), hlen, hproto, f);
          have_header = true;
          break;
        }
        case 3:    // sampled IPv4
        case 4: {  // sampled IPv6
          if (have_header) {
            break;
          }
          uint32_t len = rec.u32();
          uint32_t proto = rec.u32();
          if (rfmt == 3) {
            f.src_addr = IpAddr::fromV4(rec.u32());
            f.dst_addr = IpAddr::fromV4(rec.u32());
            f.ip_version = 4;
          } else {
            const uint8_t* a = rec.bytes(32);
            if (a != nullptr) {
              f.src_addr = IpAddr::fromV6(a);
              f.dst_addr = IpAddr::fromV6(a + 16);
            }
            f.ip_version = 6;
          }
          f.src_port = static_cast<uint16_t>(rec.u32());
          f.dst_port = static_cast<uint16_t>(rec.u32());
          f.tcp_flags = static_cast<uint8_t>(rec.u32());
          f.tos = static_cast<uint8_t>(rec.u32());
          f.proto = static_cast<uint8_t>(proto);
          f.bytes = len;
          if (!rec.ok()) {
            bad = true;
          }
          break;
        }
        case 1001: {  // extended switch
          switch_vlan = static_cast<uint16_t>(rec.u32() & 0x0fff);
          break;
        }
        case 1002: {  // extended router
          IpAddr nh = readAddress(rec);
          uint32_t src_mask = rec.u32();
          uint32_t dst_mask = rec.u32();
          if (rec.ok()) {
            f.next_hop = nh;
            f.src_mask = static_cast<uint8_t>(src_mask);
            f.dst_mask = static_cast<uint8_t>(dst_mask);
          }
          break;
        }
        case 1003: {  // extended gateway
          IpAddr nh = readAddress(rec);
          rec.u32();  // router's own AS
          uint32_t src_as = rec.u32();
          rec.u32();  // src peer AS
          uint32_t nseg = rec.u32();
          uint32_t dst_as = 0;
          for (uint32_t g = 0; g < nseg && g < 64 && rec.ok(); ++g) {
            rec.u32();  // segment type
            uint32_t nas = rec.u32();
            if (size_t{nas} * 4 > rec.remaining()) {
              rec.fail();
              break;
            }
            for (uint32_t a = 0; a < nas; ++a) {
              dst_as = rec.u32();  // the last AS of the path is the origin
            }
          }
          if (rec.ok()) {
            f.src_as = src_as;
            f.dst_as = dst_as;
            if (f.next_hop.isZero()) {
              f.next_hop = nh;
            }
          }
          break;
        }
        default:
          break;  // unknown records are skipped by length
      }
      if (bad) {
        break;
      }
    }
    if (f.vlan == 0) {
      f.vlan = switch_vlan;
    }
    if (bad) {
      fail(DecodeError::kBadSample);
    }
    f.if_kind = ifKindFor(ex, FlowProto::kSflowV5);
    commit();
  }
  return first;
}

}  // namespace nc::decode
