#pragma once
// Internal to nc_gen: big-endian writers and the sizes shared by the encoders, FlowSource and the
// pcap writer.
#include <cstdint>
#include <cstring>

#include "collector/record/flow_record.hpp"

namespace nc::gen::wire {

inline uint8_t* put8(uint8_t* p, uint8_t v) {
  *p = v;
  return p + 1;
}
inline uint8_t* put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
  return p + 2;
}
inline uint8_t* put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
  return p + 4;
}
inline uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint8_t* put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  return put32(p + 4, static_cast<uint32_t>(v));
}
inline uint8_t* putBytes(uint8_t* p, const void* data, size_t len) {
  std::memcpy(p, data, len);
  return p + len;
}
inline uint8_t* putMac(uint8_t* p, uint64_t mac) {
  for (int i = 5; i >= 0; --i) {
    *p++ = static_cast<uint8_t>(mac >> (8 * i));
  }
  return p;
}

// One's-complement sum of 16-bit big-endian words (RFC 1071), not yet folded or inverted.
inline uint32_t sum16(const uint8_t* data, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) {
    sum += (uint32_t{data[i]} << 8) | data[i + 1];
  }
  if (len % 2 == 1) {
    sum += uint32_t{data[len - 1]} << 8;
  }
  return sum;
}
inline uint16_t foldChecksum(uint32_t sum) {
  while (sum >> 16) {
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

// Bytes of the headers the sFlow encoder synthesises for a record (Ethernet + IP + L4).
inline uint32_t sampledHeaderLength(const FlowRecord& r) {
  uint32_t len = 14 + (r.ip_version == 6 ? 40 : 20);
  if (r.proto == 6) {
    len += 20;
  } else if (r.proto == 17 || r.proto == 1 || r.proto == 58) {
    len += 8;
  }
  return len;
}

// sFlow frame length of a record: one sampled packet of the record's average size.
inline uint32_t sflowFrameLength(const FlowRecord& r) {
  uint64_t len = r.packets > 0 ? r.bytes / r.packets : r.bytes;
  return static_cast<uint32_t>(len > 0 ? len : 1);
}

}  // namespace nc::gen::wire
