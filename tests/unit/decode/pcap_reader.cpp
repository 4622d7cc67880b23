#include "tests/unit/decode/pcap_reader.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>

namespace nc::test {
namespace {

constexpr uint32_t kLinkEthernet = 1;
constexpr uint32_t kLinkRaw = 101;
constexpr uint32_t kLinkSll = 113;

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

struct Endian {
  bool swap = false;
  uint16_t u16(const uint8_t* p) const {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return swap ? static_cast<uint16_t>((v >> 8) | (v << 8)) : v;
  }
  uint32_t u32(const uint8_t* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
  }
};

// Parses one link-layer frame; appends a datagram when it is UDP over IPv4/IPv6.
void parseFrame(uint32_t link, const uint8_t* p, size_t n, uint64_t ts_ns,
                std::vector<UdpDatagram>& out) {
  uint16_t ethertype = 0;
  size_t off = 0;
  if (link == kLinkEthernet) {
    if (n < 14) {
      return;
    }
    ethertype = be16(p + 12);
    off = 14;
    while ((ethertype == 0x8100 || ethertype == 0x88a8) && n >= off + 4) {
      ethertype = be16(p + off + 2);
      off += 4;
    }
  } else if (link == kLinkSll) {
    if (n < 16) {
      return;
    }
    ethertype = be16(p + 14);
    off = 16;
  } else if (link == kLinkRaw) {
    if (n < 1) {
      return;
    }
    ethertype = (p[0] >> 4) == 6 ? 0x86dd : 0x0800;
  } else {
    return;
  }
  UdpDatagram d;
  d.ts_ns = ts_ns;
  size_t l4 = 0;
  size_t l4_end = n;
  if (ethertype == 0x0800) {
    if (n < off + 20) {
      return;
    }
    const uint8_t* ip = p + off;
    size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    size_t total = be16(ip + 2);
    if (ip[9] != 17 || (be16(ip + 6) & 0x3fff) != 0 || n < off + ihl) {
      return;  // not UDP, or a fragment
    }
    d.src = IpAddr::fromV4(be32(ip + 12));
    d.dst = IpAddr::fromV4(be32(ip + 16));
    l4 = off + ihl;
    if (total >= ihl && off + total <= n) {
      l4_end = off + total;  // ignore Ethernet trailer padding
    }
  } else if (ethertype == 0x86dd) {
    if (n < off + 40) {
      return;
    }
    const uint8_t* ip = p + off;
    if (ip[6] != 17) {
      return;
    }
    d.src = IpAddr::fromV6(ip + 8);
    d.dst = IpAddr::fromV6(ip + 24);
    l4 = off + 40;
    size_t plen = be16(ip + 4);
    if (l4 + plen <= n) {
      l4_end = l4 + plen;
    }
  } else {
    return;
  }
  if (l4_end < l4 + 8) {
    return;
  }
  const uint8_t* udp = p + l4;
  d.src_port = be16(udp);
  d.dst_port = be16(udp + 2);
  size_t ulen = be16(udp + 4);
  size_t end = l4_end;
  if (ulen >= 8 && l4 + ulen <= l4_end) {
    end = l4 + ulen;
  }
  d.payload.assign(p + l4 + 8, p + end);
  out.push_back(std::move(d));
}

bool readClassic(const std::vector<uint8_t>& f, std::vector<UdpDatagram>& out, std::string* why) {
  uint32_t magic = be32(f.data());
  Endian e;
  bool nanos = false;
  switch (magic) {
    case 0xa1b2c3d4:
      e.swap = std::endian::native == std::endian::little;
      break;
    case 0xd4c3b2a1:
      e.swap = std::endian::native == std::endian::big;
      break;
    case 0xa1b23c4d:
      e.swap = std::endian::native == std::endian::little;
      nanos = true;
      break;
    case 0x4d3cb2a1:
      e.swap = std::endian::native == std::endian::big;
      nanos = true;
      break;
    default:
      *why = "not a pcap file";
      return false;
  }
  uint32_t link = e.u32(f.data() + 20);
  size_t off = 24;
  while (off + 16 <= f.size()) {
    uint64_t sec = e.u32(f.data() + off);
    uint64_t frac = e.u32(f.data() + off + 4);
    size_t caplen = e.u32(f.data() + off + 8);
    off += 16;
    if (caplen > f.size() - off) {
      *why = "truncated record";
      return false;
    }
    parseFrame(link, f.data() + off, caplen, sec * 1'000'000'000 + frac * (nanos ? 1 : 1000), out);
    off += caplen;
  }
  return true;
}

bool readNg(const std::vector<uint8_t>& f, std::vector<UdpDatagram>& out, std::string* why) {
  Endian e;
  std::vector<uint32_t> links;
  std::vector<uint64_t> ts_div;  // ticks per second per interface
  size_t off = 0;
  while (off + 12 <= f.size()) {
    uint32_t type;
    std::memcpy(&type, f.data() + off, 4);
    if (type == 0x0a0d0d0a) {
      uint32_t bom;
      std::memcpy(&bom, f.data() + off + 8, 4);
      e.swap = bom != 0x1a2b3c4d;
      links.clear();
      ts_div.clear();
    }
    type = e.u32(f.data() + off);
    uint32_t len = e.u32(f.data() + off + 4);
    if (len < 12 || len > f.size() - off) {
      *why = "bad pcapng block length";
      return false;
    }
    const uint8_t* b = f.data() + off + 8;
    size_t body = len - 12;
    if (type == 1 && body >= 8) {  // IDB
      links.push_back(e.u16(b));
      uint64_t div = 1'000'000;
      // Options: look for if_tsresol (9).
      size_t o = 8;
      while (o + 4 <= body) {
        uint16_t code = e.u16(b + o);
        uint16_t olen = e.u16(b + o + 2);
        if (code == 0) {
          break;
        }
        if (code == 9 && olen >= 1 && o + 4 < body) {
          uint8_t r = b[o + 4];
          div = 1;
          for (int i = 0; i < (r & 0x7f); ++i) {
            div *= (r & 0x80) ? 2 : 10;
          }
        }
        o += 4 + ((olen + 3u) & ~3u);
      }
      ts_div.push_back(div);
    } else if (type == 6 && body >= 20) {  // EPB
      uint32_t ifid = e.u32(b);
      uint64_t ts = (uint64_t{e.u32(b + 4)} << 32) | e.u32(b + 8);
      size_t caplen = e.u32(b + 12);
      if (ifid < links.size() && caplen <= body - 20) {
        uint64_t div = ts_div[ifid];
        uint64_t ns = ts / div * 1'000'000'000 + (ts % div) * 1'000'000'000 / div;
        parseFrame(links[ifid], b + 20, caplen, ns, out);
      }
    } else if (type == 3 && body >= 4 && !links.empty()) {  // SPB
      size_t plen = e.u32(b);
      parseFrame(links[0], b + 4, std::min(plen, body - 4), 0, out);
    }
    off += len;
  }
  return true;
}

}  // namespace

bool readUdpCapture(const std::string& path, std::vector<UdpDatagram>& out, std::string* why) {
  std::string dummy;
  if (why == nullptr) {
    why = &dummy;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = "cannot open " + path;
    return false;
  }
  std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (f.size() < 24) {
    *why = "file too short";
    return false;
  }
  if (be32(f.data()) == 0x0a0d0d0a) {
    return readNg(f, out, why);
  }
  return readClassic(f, out, why);
}

}  // namespace nc::test
