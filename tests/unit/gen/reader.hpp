#pragma once
// A small, independent reader for what nc_gen writes: NetFlow v5, NetFlow v9, IPFIX, sFlow v5 and
// classic pcap. Written from the specifications (Cisco v5 layout, RFC 3954, RFC 7011, sFlow v5),
// not from the encoders, and generic over templates (fields are decoded by IE id from the
// templates read off the wire), so the tests catch an encoder that disagrees with its template.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "collector/record/flow_record.hpp"

namespace nc::gen::test {

class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> data) : data_(data) {}
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  size_t left() const { return ok_ ? data_.size() - pos_ : 0; }
  uint64_t uint(size_t n) {
    if (!need(n)) {
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      v = (v << 8) | data_[pos_ + i];
    }
    pos_ += n;
    return v;
  }
  uint8_t u8() { return static_cast<uint8_t>(uint(1)); }
  uint16_t u16() { return static_cast<uint16_t>(uint(2)); }
  uint32_t u32() { return static_cast<uint32_t>(uint(4)); }
  std::span<const uint8_t> bytes(size_t n) {
    if (!need(n)) {
      return {};
    }
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  void skip(size_t n) { bytes(n); }

 private:
  bool need(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// What the tests compare against FlowRecords.
struct Flow {
  IpAddr src;
  IpAddr dst;
  IpAddr next_hop;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t proto = 0;
  uint8_t tos = 0;
  uint16_t tcp_flags = 0;
  uint32_t in_if = 0;
  uint32_t out_if = 0;
  uint32_t src_as = 0;
  uint32_t dst_as = 0;
  uint8_t src_mask = 0;
  uint8_t dst_mask = 0;
  uint16_t icmp = 0;  // type * 256 + code
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t first = 0;  // v5/v9: sysUptime ms; IPFIX: UNIX ms
  uint64_t last = 0;
  uint16_t template_id = 0;
};

// ---- NetFlow v5 ----------------------------------------------------------------------------

struct V5Packet {
  uint16_t version = 0;
  uint16_t count = 0;
  uint32_t uptime = 0;
  uint32_t secs = 0;
  uint32_t nsecs = 0;
  uint32_t sequence = 0;
  uint8_t engine_type = 0;
  uint8_t engine_id = 0;
  uint16_t sampling = 0;
  std::vector<Flow> flows;
};

inline bool parseV5(std::span<const uint8_t> d, V5Packet& p, std::string& err) {
  Cursor c(d);
  p.version = c.u16();
  p.count = c.u16();
  p.uptime = c.u32();
  p.secs = c.u32();
  p.nsecs = c.u32();
  p.sequence = c.u32();
  p.engine_type = c.u8();
  p.engine_id = c.u8();
  p.sampling = c.u16();
  if (!c.ok() || p.version != 5) {
    err = "bad v5 header";
    return false;
  }
  if (d.size() != 24 + 48 * size_t{p.count}) {
    err = "v5 length does not match count";
    return false;
  }
  for (int i = 0; i < p.count; ++i) {
    Flow f;
    f.src = IpAddr::fromV4(c.u32());
    f.dst = IpAddr::fromV4(c.u32());
    f.next_hop = IpAddr::fromV4(c.u32());
    f.in_if = c.u16();
    f.out_if = c.u16();
    f.packets = c.u32();
    f.bytes = c.u32();
    f.first = c.u32();
    f.last = c.u32();
    f.src_port = c.u16();
    f.dst_port = c.u16();
    c.skip(1);
    f.tcp_flags = c.u8();
    f.proto = c.u8();
    f.tos = c.u8();
    f.src_as = c.u16();
    f.dst_as = c.u16();
    f.src_mask = c.u8();
    f.dst_mask = c.u8();
    c.skip(2);
    p.flows.push_back(f);
  }
  return c.ok();
}

// ---- NetFlow v9 and IPFIX ------------------------------------------------------------------

struct FieldDef {
  uint16_t id;
  uint16_t length;
};

struct TemplatePacket {
  uint16_t version = 0;
  uint16_t count = 0;   // v9: records in the packet
  uint16_t length = 0;  // IPFIX: message length
  uint32_t uptime = 0;  // v9
  uint32_t secs = 0;
  uint32_t sequence = 0;
  uint32_t domain = 0;  // v9 source id / IPFIX observation domain
  uint32_t template_records = 0;
  uint32_t options_template_records = 0;
  uint32_t options_data_records = 0;
  std::vector<uint16_t> set_ids;
  std::vector<uint16_t> set_lengths;
  std::map<uint16_t, uint64_t> options_values;  // IE -> value from options data
  std::vector<Flow> flows;
};

inline void applyField(Flow& f, uint16_t id, std::span<const uint8_t> v) {
  uint64_t n = 0;
  if (v.size() <= 8) {
    for (uint8_t b : v) {
      n = (n << 8) | b;
    }
  }
  switch (id) {
    case 8:
      f.src = IpAddr::fromV4(static_cast<uint32_t>(n));
      break;
    case 12:
      f.dst = IpAddr::fromV4(static_cast<uint32_t>(n));
      break;
    case 15:
      f.next_hop = IpAddr::fromV4(static_cast<uint32_t>(n));
      break;
    case 27:
      f.src = IpAddr::fromV6(v.data());
      break;
    case 28:
      f.dst = IpAddr::fromV6(v.data());
      break;
    case 62:
      f.next_hop = IpAddr::fromV6(v.data());
      break;
    case 7:
      f.src_port = static_cast<uint16_t>(n);
      break;
    case 11:
      f.dst_port = static_cast<uint16_t>(n);
      break;
    case 4:
      f.proto = static_cast<uint8_t>(n);
      break;
    case 5:
      f.tos = static_cast<uint8_t>(n);
      break;
    case 6:
      f.tcp_flags = static_cast<uint16_t>(n);
      break;
    case 9:
    case 29:
      f.src_mask = static_cast<uint8_t>(n);
      break;
    case 13:
    case 30:
      f.dst_mask = static_cast<uint8_t>(n);
      break;
    case 10:
      f.in_if = static_cast<uint32_t>(n);
      break;
    case 14:
      f.out_if = static_cast<uint32_t>(n);
      break;
    case 16:
      f.src_as = static_cast<uint32_t>(n);
      break;
    case 17:
      f.dst_as = static_cast<uint32_t>(n);
      break;
    case 32:
    case 139:
      f.icmp = static_cast<uint16_t>(n);
      break;
    case 2:
      f.packets = n;
      break;
    case 1:
      f.bytes = n;
      break;
    case 22:
    case 152:
      f.first = n;
      break;
    case 21:
    case 153:
      f.last = n;
      break;
    default:
      break;
  }
}

// Keeps templates across datagrams, like a collector (one exporter, one domain).
class TemplateReader {
 public:
  explicit TemplateReader(bool ipfix) : ipfix_(ipfix) {}

  bool parse(std::span<const uint8_t> d, TemplatePacket& p, std::string& err) {
    Cursor c(d);
    p.version = c.u16();
    if (ipfix_) {
      p.length = c.u16();
      p.secs = c.u32();
      p.sequence = c.u32();
      p.domain = c.u32();
      if (!c.ok() || p.version != 10 || p.length != d.size()) {
        err = "bad IPFIX header or length";
        return false;
      }
    } else {
      p.count = c.u16();
      p.uptime = c.u32();
      p.secs = c.u32();
      p.sequence = c.u32();
      p.domain = c.u32();
      if (!c.ok() || p.version != 9) {
        err = "bad v9 header";
        return false;
      }
    }
    while (c.left() > 0) {
      uint16_t set_id = c.u16();
      uint16_t set_len = c.u16();
      if (!c.ok() || set_len < 4 || set_len - 4u > c.left()) {
        err = "bad set length";
        return false;
      }
      p.set_ids.push_back(set_id);
      p.set_lengths.push_back(set_len);
      Cursor s(c.bytes(set_len - 4u));
      uint16_t tmpl_set = ipfix_ ? 2 : 0;
      uint16_t opt_set = ipfix_ ? 3 : 1;
      if (set_id == tmpl_set) {
        while (s.left() >= 4) {
          uint16_t id = s.u16();
          uint16_t n = s.u16();
          std::vector<FieldDef> fields;
          for (int i = 0; i < n; ++i) {
            FieldDef f{s.u16(), s.u16()};
            if (ipfix_ && (f.id & 0x8000) != 0) {
              s.skip(4);  // enterprise number
              f.id &= 0x7fff;
            }
            fields.push_back(f);
          }
          if (!s.ok()) {
            err = "truncated template";
            return false;
          }
          templates_[id] = fields;
          ++p.template_records;
        }
      } else if (set_id == opt_set) {
        uint16_t id = s.u16();
        std::vector<FieldDef> fields;
        if (ipfix_) {
          uint16_t n = s.u16();
          s.u16();  // scope count
          for (int i = 0; i < n; ++i) {
            fields.push_back({s.u16(), s.u16()});
          }
        } else {
          uint16_t scope_len = s.u16();
          uint16_t opt_len = s.u16();
          for (int i = 0; i < (scope_len + opt_len) / 4; ++i) {
            fields.push_back({s.u16(), s.u16()});
          }
          if (!fields.empty()) {
            fields[0].id = 0xffff;  // the scope; not an IE
          }
        }
        if (!s.ok()) {
          err = "truncated options template";
          return false;
        }
        templates_[id] = fields;
        options_.insert(id);
        ++p.options_template_records;
      } else if (set_id >= 256) {
        auto it = templates_.find(set_id);
        if (it == templates_.end()) {
          err = "data set before its template";
          return false;
        }
        size_t rec_len = 0;
        for (const FieldDef& f : it->second) {
          rec_len += f.length;
        }
        while (s.left() >= rec_len && rec_len > 0) {
          Flow f;
          f.template_id = set_id;
          for (const FieldDef& fd : it->second) {
            auto v = s.bytes(fd.length);
            if (options_.count(set_id) != 0) {
              uint64_t n = 0;
              for (uint8_t b : v) {
                n = (n << 8) | b;
              }
              p.options_values[fd.id] = n;
            } else {
              applyField(f, fd.id, v);
            }
          }
          if (options_.count(set_id) != 0) {
            ++p.options_data_records;
          } else {
            p.flows.push_back(f);
          }
        }
        // Whatever is left must be padding (zeros, less than one record).
        for (uint8_t b : s.bytes(s.left())) {
          if (b != 0) {
            err = "non-zero padding";
            return false;
          }
        }
      } else {
        err = "unexpected set id " + std::to_string(set_id);
        return false;
      }
    }
    return c.ok();
  }

 private:
  bool ipfix_;
  std::map<uint16_t, std::vector<FieldDef>> templates_;
  std::set<uint16_t> options_;
};

// ---- sFlow v5 ------------------------------------------------------------------------------

struct SflowSample {
  uint32_t sequence = 0;
  uint32_t source_id = 0;
  uint32_t sampling_rate = 0;
  uint32_t sample_pool = 0;
  uint32_t drops = 0;
  uint32_t input = 0;
  uint32_t output = 0;
  uint32_t header_protocol = 0;
  uint32_t frame_length = 0;
  uint32_t stripped = 0;
  std::vector<uint8_t> header;
  // Decoded from `header`.
  uint16_t ethertype = 0;
  Flow flow;
};

// A counters sample (0:2) and its generic interface record (0:1), when present.
struct SflowCounters {
  uint32_t sequence = 0;
  uint32_t source_id = 0;
  bool generic = false;
  uint32_t if_index = 0;
  uint32_t if_type = 0;
  uint64_t if_speed = 0;
  uint32_t if_status = 0;
  uint64_t in_octets = 0;
  uint32_t in_ucast = 0;
};

struct SflowDatagram {
  uint32_t version = 0;
  IpAddr agent;
  uint32_t sub_agent = 0;
  uint32_t sequence = 0;
  uint32_t uptime = 0;
  uint32_t num_samples = 0;
  std::vector<SflowSample> samples;     // flow samples
  std::vector<SflowCounters> counters;  // counters samples
};

inline void decodeSampledHeader(SflowSample& s) {
  Cursor c(s.header);
  c.skip(12);
  s.ethertype = c.u16();
  Flow& f = s.flow;
  if (s.ethertype == 0x0800) {
    uint8_t vihl = c.u8();
    f.tos = c.u8();
    c.skip(7);
    f.proto = c.u8();
    c.skip(2);
    f.src = IpAddr::fromV4(c.u32());
    f.dst = IpAddr::fromV4(c.u32());
    c.skip(((vihl & 0xf) - 5u) * 4);
  } else if (s.ethertype == 0x86dd) {
    uint32_t w = c.u32();
    f.tos = static_cast<uint8_t>(w >> 20);
    c.skip(2);
    f.proto = c.u8();
    c.skip(1);
    f.src = IpAddr::fromV6(c.bytes(16).data());
    f.dst = IpAddr::fromV6(c.bytes(16).data());
  }
  if (f.proto == 6 || f.proto == 17) {
    f.src_port = c.u16();
    f.dst_port = c.u16();
    if (f.proto == 6) {
      c.skip(9);
      f.tcp_flags = c.u8();
    }
  } else if (f.proto == 1 || f.proto == 58) {
    f.icmp = c.u16();
  }
}

inline bool parseSflow(std::span<const uint8_t> d, SflowDatagram& g, std::string& err) {
  Cursor c(d);
  g.version = c.u32();
  uint32_t agent_type = c.u32();
  if (agent_type == 1) {
    g.agent = IpAddr::fromV4(c.u32());
  } else if (agent_type == 2) {
    auto b = c.bytes(16);
    if (c.ok()) {
      g.agent = IpAddr::fromV6(b.data());
    }
  } else {
    err = "bad agent address type";
    return false;
  }
  g.sub_agent = c.u32();
  g.sequence = c.u32();
  g.uptime = c.u32();
  g.num_samples = c.u32();
  if (!c.ok() || g.version != 5) {
    err = "bad sFlow header";
    return false;
  }
  for (uint32_t i = 0; i < g.num_samples; ++i) {
    uint32_t tag = c.u32();
    uint32_t len = c.u32();
    if (!c.ok() || len > c.left()) {
      err = "bad sample length";
      return false;
    }
    Cursor s(c.bytes(len));
    if (tag == 2) {
      SflowCounters cs;
      cs.sequence = s.u32();
      cs.source_id = s.u32();
      uint32_t nrec = s.u32();
      for (uint32_t k = 0; k < nrec && s.ok(); ++k) {
        uint32_t rtag = s.u32();
        uint32_t rlen = s.u32();
        if (!s.ok() || rlen > s.left()) {
          err = "bad counter record length";
          return false;
        }
        Cursor r(s.bytes(rlen));
        if (rtag == 1 && rlen == 88) {
          cs.generic = true;
          cs.if_index = r.u32();
          cs.if_type = r.u32();
          cs.if_speed = uint64_t{r.u32()} << 32;
          cs.if_speed |= r.u32();
          r.u32();  // direction
          cs.if_status = r.u32();
          cs.in_octets = uint64_t{r.u32()} << 32;
          cs.in_octets |= r.u32();
          cs.in_ucast = r.u32();
        }
      }
      if (!s.ok()) {
        err = "bad counters sample";
        return false;
      }
      g.counters.push_back(cs);
      continue;
    }
    if (tag != 1) {
      err = "not a flow or counters sample";
      return false;
    }
    SflowSample fs;
    fs.sequence = s.u32();
    fs.source_id = s.u32();
    fs.sampling_rate = s.u32();
    fs.sample_pool = s.u32();
    fs.drops = s.u32();
    fs.input = s.u32();
    fs.output = s.u32();
    uint32_t nrec = s.u32();
    for (uint32_t r = 0; r < nrec; ++r) {
      uint32_t rtag = s.u32();
      uint32_t rlen = s.u32();
      if (!s.ok() || rlen > s.left()) {
        err = "bad flow record length";
        return false;
      }
      Cursor rc(s.bytes(rlen));
      if (rtag == 1) {
        fs.header_protocol = rc.u32();
        fs.frame_length = rc.u32();
        fs.stripped = rc.u32();
        uint32_t hlen = rc.u32();
        auto h = rc.bytes(hlen);
        fs.header.assign(h.begin(), h.end());
        rc.skip((4 - hlen % 4) % 4);
        if (!rc.ok() || rc.left() != 0) {
          err = "bad raw header record";
          return false;
        }
        decodeSampledHeader(fs);
      }
    }
    if (!s.ok() || s.left() != 0) {
      err = "sample length mismatch";
      return false;
    }
    g.samples.push_back(std::move(fs));
  }
  if (c.left() != 0) {
    err = "trailing bytes";
    return false;
  }
  return true;
}

// ---- pcap ----------------------------------------------------------------------------------

struct PcapPacket {
  uint32_t ts_sec = 0;
  uint32_t ts_usec = 0;
  std::vector<uint8_t> frame;
  std::span<const uint8_t> payload() const {
    if (frame.size() < 14) {
      return {};
    }
    size_t ip = (frame[12] == 0x86 && frame[13] == 0xdd) ? 40 : 20;
    return std::span<const uint8_t>(frame).subspan(std::min(frame.size(), 14 + ip + 8));
  }
};

// Reads a classic little-endian (host order on x86) pcap; empty on error.
inline std::vector<PcapPacket> readPcap(const std::string& path, uint32_t* linktype = nullptr) {
  std::ifstream in(path, std::ios::binary);
  uint32_t gh[6];
  std::vector<PcapPacket> out;
  if (!in.read(reinterpret_cast<char*>(gh), sizeof(gh)) || gh[0] != 0xa1b2c3d4) {
    return out;
  }
  if (linktype != nullptr) {
    *linktype = gh[5];
  }
  uint32_t rh[4];
  while (in.read(reinterpret_cast<char*>(rh), sizeof(rh))) {
    PcapPacket p;
    p.ts_sec = rh[0];
    p.ts_usec = rh[1];
    p.frame.resize(rh[2]);
    if (!in.read(reinterpret_cast<char*>(p.frame.data()), rh[2])) {
      break;
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace nc::gen::test
