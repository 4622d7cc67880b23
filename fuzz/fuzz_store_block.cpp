// libFuzzer target: the store's flow-block decoder (collector/store/format.cpp) on hostile
// blocks. Segment files are checked with crc32c, but a crafted file can carry a valid crc, so the
// decoder must survive any body. Rather than discover the layout from nothing, each input mutates
// a valid block: byte 0 picks one of six encodings of the same rows (version 4 with zstd, lz4
// and none, versions 1, 2 and 3 with zstd), byte 1 a column set (projection) and whether to cut the
// frame short, and every following 3 bytes XOR one byte (u16 offset, u8 value). The rows carry
// name columns too (their per-block dictionaries are parsed). The crc is then
// fixed so the decoder sees the mutated body. A decode that succeeds must give equally long
// columns.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "collector/record/names.hpp"
#include "collector/store/format.hpp"

namespace {

using nc::FlowColumns;
using nc::FlowRecord;
using nc::IpAddr;
namespace format = nc::store::format;

std::vector<uint8_t> encoded(int which) {
  std::vector<FlowRecord> rows(300);
  uint64_t x = 12345;
  auto next = [&x] {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x >> 17;
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    FlowRecord& r = rows[i];
    r.first_ns = 1'700'000'000'000'000'000ull + next() % 60'000'000'000ull;
    r.last_ns = r.first_ns + next() % 1000;
    r.received_ns = r.last_ns + 5;
    r.packets = next() % 100;
    r.bytes = r.packets * 64 + next() % 64;
    r.exporter = IpAddr::fromV4(0x7f000001);
    r.src_addr = IpAddr::fromV4(static_cast<uint32_t>(next()));
    if (i % 7 == 0) {
      for (auto& b : r.dst_addr.bytes) {
        b = static_cast<uint8_t>(next());
      }
    } else {
      r.dst_addr = IpAddr::fromV4(static_cast<uint32_t>(next()));
    }
    r.src_port = static_cast<uint16_t>(next());
    r.dst_port = static_cast<uint16_t>(443 + i % 4);  // version 4: narrowed, then 2 bits
    r.proto = i % 3 == 0 ? 17 : 6;                    // version 4: a dictionary, 1 bit
    r.in_if = static_cast<uint32_t>(i % 5);
    r.sampling_rate = 1;
    // Name columns: a dictionary of a few names (several per block), one constant, one empty.
    static const uint32_t names[4] = {nc::internName("vnet0"), nc::internName("tap-a1b2"),
                                      nc::internName("h1-ovs"), 0};
    r.in_ifname = names[i % 4];
    r.out_ifname = names[(i / 3) % 4];
    r.bridge = names[0];
    r.in_vm = names[next() % 4];
  }
  FlowColumns c;
  c.append(rows);
  format::sortByFirstNs(c);
  using C = nc::store::StoreOptions::Compression;
  // Version 4 with each codec, then versions 1, 2 and 3.
  const C codecs[6] = {C::kZstd, C::kLz4, C::kNone, C::kZstd, C::kZstd, C::kZstd};
  const uint16_t versions[6] = {4, 4, 4, 1, 2, 3};
  format::BlockEncoder enc(codecs[which], 1);
  enc.setVersion(versions[which]);
  std::vector<uint8_t> frame;
  enc.encode(c, frame);
  return frame;
}

const std::vector<uint8_t>& base(int which) {
  static const std::vector<uint8_t> frames[6] = {encoded(0), encoded(1), encoded(2),
                                                 encoded(3), encoded(4), encoded(5)};
  return frames[which];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) {
    return 0;
  }
  std::vector<uint8_t> frame = base(data[0] % 6);
  const uint8_t mode = data[1];
  for (size_t i = 2; i + 2 < size; i += 3) {
    const size_t off = (size_t{data[i]} | size_t{data[i + 1]} << 8) % frame.size();
    frame[off] ^= data[i + 2];
  }
  if (mode & 0x80) {  // cut the frame short (a truncated copy with a fresh crc)
    frame.resize(format::kFrameOverhead +
                 (frame.size() - format::kFrameOverhead) * (mode & 0x3f) / 64);
  }
  // Fresh length and checksums (versions 3 and 4: the table's and the columns' too) so the damage
  // reaches the decoder's other checks; with mode bit 0x20 a version 3 or 4 frame keeps its stale
  // column checksums, which must then be what rejects it.
  if (mode & 0x20) {
    if (frame.size() >= format::kFrameOverhead) {
      const uint32_t len = static_cast<uint32_t>(frame.size());
      std::memcpy(frame.data() + 8, &len, 4);
      const uint32_t crc = format::crc32c(frame.data(), frame.size() - 4);
      std::memcpy(frame.data() + frame.size() - 4, &crc, 4);
    }
  } else {
    format::resealFrame(frame);
  }
  nc::ColumnSet set = nc::allColumns();
  if (mode & 0x40) {  // a projection: every third column from an offset
    set.reset();
    for (size_t k = mode % 3; k < nc::kColumnCount; k += 3) {
      set.set(k);
    }
  }
  format::BlockDecoder dec;
  FlowColumns out;
  std::string why;
  if (dec.decode(frame, out, &why, set)) {
    const size_t n = out.size();
#define NC_CHECK(type, name)                          \
  if (!out.name.empty() && out.name.size() != n) {    \
    std::abort(); /* columns of one block disagree */ \
  }
    NC_FLOW_COLUMNS(NC_CHECK)
#undef NC_CHECK
    // Late materialization: the rest of the columns at every third row (from an offset the
    // input picks) must come out as long as the selection.
    std::vector<uint32_t> sel;
    for (size_t i = data[0] % 3; i < n; i += 3) {
      sel.push_back(static_cast<uint32_t>(i));
    }
    if (dec.decodeRows(frame, out, &why, set, nc::allColumns(), sel)) {
#define NC_CHECK_SEL(type, name)                            \
  if (!out.name.empty() && out.name.size() != sel.size()) { \
    std::abort(); /* a column not cut to the selection */   \
  }
      NC_FLOW_COLUMNS(NC_CHECK_SEL)
#undef NC_CHECK_SEL
    }
  }
  return 0;
}
