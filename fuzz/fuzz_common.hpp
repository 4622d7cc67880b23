#pragma once
// Shared driver for the decoder fuzz targets. An input is one or more datagrams separated by the
// 4-byte marker kSeparator (the seed tool writes whole captures that way), so a template and the
// data that uses it can arrive in separate datagrams. Each input gets a fresh Decoder, so a crash
// reproduces from its input file alone. `version` (if non-empty) overwrites the first bytes of each
// datagram so the fuzzer spends its time inside one protocol.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "collector/decode/decoder.hpp"

namespace nc::fuzz {

inline constexpr uint8_t kSeparator[4] = {0xf0, 0x0d, 0xfa, 0xce};

inline void decodeAll(const uint8_t* data, size_t size, std::span<const uint8_t> version,
                      decode::Decoder& decoder) {
  decode::CountingSink sink;
  decode::DatagramMeta meta;
  IpAddr::parse("192.0.2.1", meta.exporter);
  meta.port = 2055;
  std::vector<uint8_t> dg;
  size_t start = 0;
  uint64_t now = 1'700'000'000'000'000'000;
  for (size_t i = 0; i <= size; ++i) {
    bool end = i == size;
    bool sep = !end && i + 4 <= size && std::memcmp(data + i, kSeparator, 4) == 0;
    if (!end && !sep) {
      continue;
    }
    dg.assign(data + start, data + i);
    if (!version.empty() && dg.size() >= version.size()) {
      std::memcpy(dg.data(), version.data(), version.size());
    }
    meta.received_ns = now;
    now += 1'000'000'000;
    decoder.decode(dg, meta, sink);
    start = i + 4;
    i += 3;
  }
  (void)decoder.stats();
}

}  // namespace nc::fuzz
