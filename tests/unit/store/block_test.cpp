// Flow-block encoding (format version 2 transforms: constant, v4 only, narrow) and column
// projection: blocks round-trip exactly at the edges of every transform, version-1 blocks still
// decode, unknown transform bits make a block corrupt, and a projected scan decodes only the
// columns it was asked for.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>

#include "collector/store/format.hpp"
#include "collector/store/store.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/store/row_key.hpp"

namespace nc::store {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBase = 1'800'000'000'000'000'000ull;
constexpr size_t kEntryAt = format::kFrameHeaderSize + 24;  // column table (format.hpp)

std::string key(const FlowRecord& r) {
  return nc::test::rowKey(r);
}

std::vector<std::string> rowsOf(const FlowColumns& c) {
  std::vector<std::string> out;
  for (size_t i = 0; i < c.size(); ++i) {
    out.push_back(key(c.row(i)));
  }
  return out;
}

// Column table entry of column `id` in an encoded frame: transform bits and stored width.
struct Entry {
  uint8_t codec = 0;
  uint8_t xf = 0;
  uint8_t width = 0;
};
// Bytes of a column entry in the frame's block version (format.hpp).
size_t entryLen(const std::vector<uint8_t>& frame) {
  uint16_t v = 0;
  std::memcpy(&v, frame.data() + 6, 2);
  return v >= 3 ? 16 : 12;
}
Entry entryOf(const std::vector<uint8_t>& frame, Column col) {
  for (size_t k = 0; k < kColumnCount; ++k) {
    const uint8_t* e = frame.data() + kEntryAt + k * entryLen(frame);
    if (e[0] == static_cast<uint8_t>(col)) {
      return {e[1], e[2], e[3]};
    }
  }
  ADD_FAILURE() << "column not in block";
  return {};
}

void fixCrc(std::vector<uint8_t>& frame) {
  format::resealFrame(frame);
}

// `c` encoded as one flow-block frame of block version `version` with `codec`.
std::vector<uint8_t> encodeAs(const FlowColumns& c, StoreOptions::Compression codec,
                              uint16_t version) {
  format::BlockEncoder enc(codec, 1);
  enc.setVersion(version);
  std::vector<uint8_t> frame;
  enc.encode(c, frame);
  return frame;
}

// Rows that exercise the edges: constant columns, v4-only and mixed addresses, narrowed ranges
// next to 0 and UINT64_MAX, negative durations, full-width ranges.
FlowColumns edgeBlock(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<FlowRecord> rs(n);
  for (size_t i = 0; i < n; ++i) {
    FlowRecord& r = rs[i];
    r.first_ns = kBase + i * 1000;                              // narrow (FOR, no delta)
    r.last_ns = i % 3 == 0 ? r.first_ns - 5 : r.first_ns + i;   // negative and positive
    r.received_ns = UINT64_MAX - (rng() % 1000);                // near the top: zigzag wraps
    r.packets = i % 2 == 0 ? 0 : UINT64_MAX;                    // full range: not narrowed
    r.bytes = UINT64_MAX - (rng() % 200);                       // narrow to 1 byte, base near max
    r.exporter = IpAddr::fromV4(0x7f000001);                    // constant address
    r.src_addr = IpAddr::fromV4(static_cast<uint32_t>(rng()));  // v4 only
    IpAddr v6;
    for (auto& b : v6.bytes) {
      b = static_cast<uint8_t>(rng());
    }
    r.dst_addr = i % 5 == 0 ? v6 : IpAddr::fromV4(static_cast<uint32_t>(rng()));  // mixed
    r.next_hop = IpAddr{};                                                        // constant ::
    r.src_mac = rng() % 256;                                                      // 1 byte of 8
    r.dst_mac = 0xffffffffffffull;                                                // constant
    r.sampling_rate = 1000;
    r.observation_domain = UINT32_MAX - static_cast<uint32_t>(rng() % 70000);  // 3 bytes
    r.in_if = static_cast<uint32_t>(i);
    r.out_if = static_cast<uint32_t>(rng());
    r.src_as = 0;
    r.dst_as = UINT32_MAX;
    r.src_port = static_cast<uint16_t>(rng());
    r.dst_port = static_cast<uint16_t>(65535 - (rng() % 3));
    r.vlan = static_cast<uint16_t>(rng() % 2);
    r.proto = static_cast<uint8_t>(rng());
    r.tcp_flags = 0xff;
    r.ip_version = 4;
    r.flags = static_cast<uint8_t>(rng() % 2);
  }
  FlowColumns c;
  c.append(rs);
  format::sortByFirstNs(c);
  return c;
}

TEST(block, EdgeValuesRoundTripWithEveryCodecAndVersion) {
  for (size_t n : {1ul, 2ul, 17ul, 1000ul, 16384ul}) {
    FlowColumns c = edgeBlock(n, n);
    for (auto codec : {StoreOptions::Compression::kZstd, StoreOptions::Compression::kLz4,
                       StoreOptions::Compression::kNone}) {
      for (uint16_t version : {1, 2, 3, 4}) {
        const std::vector<uint8_t> frame = encodeAs(c, codec, version);
        FlowColumns out;
        std::string why;
        format::BlockDecoder dec;
        ASSERT_TRUE(dec.decode(frame, out, &why)) << why;
        EXPECT_EQ(rowsOf(out), rowsOf(c)) << n << " rows, version " << version;
        uint16_t v = 0;
        std::memcpy(&v, frame.data() + 6, 2);
        EXPECT_EQ(v, version);
      }
    }
  }
}

// `frame` decodes (all columns) to exactly the rows of `c`.
void expectDecodesTo(const std::vector<uint8_t>& frame, const FlowColumns& c) {
  FlowColumns out;
  std::string why;
  format::BlockDecoder dec;
  ASSERT_TRUE(dec.decode(frame, out, &why)) << why;
  EXPECT_EQ(rowsOf(out), rowsOf(c));
}

TEST(block, EncodingWithTheSummaryGivesTheSameBytes) {
  // The writer hands the block summary to the encoder so it does not scan the rows for ranges
  // again; the frame must not depend on it. All-IPv6 and all-constant blocks cover the address
  // shortcuts (both ends of the range v4-mapped means all rows are).
  std::vector<FlowColumns> blocks = {edgeBlock(1, 1), edgeBlock(1000, 7), edgeBlock(16384, 9)};
  FlowColumns v6 = edgeBlock(100, 4);
  for (auto& a : v6.src_addr) {
    a.bytes[0] = 0x20;
  }
  v6.dst_addr.assign(v6.size(), IpAddr::fromV4(0x0a000001));
  v6.dst_addr.back() = IpAddr{};  // :: sorts below every v4-mapped address
  blocks.push_back(v6);
  for (const FlowColumns& c : blocks) {
    BlockSummary sum;
    sum.compute(c);
    for (auto codec : {StoreOptions::Compression::kZstd, StoreOptions::Compression::kNone}) {
      format::BlockEncoder plain(codec, 1);
      format::BlockEncoder with(codec, 1);
      std::vector<uint8_t> a;
      std::vector<uint8_t> b;
      plain.encode(c, a);
      with.encode(c, b, &sum);
      EXPECT_EQ(a, b) << c.size() << " rows";
      expectDecodesTo(b, c);
    }
  }
}

TEST(block, OneEncoderSwitchingCodecsBetweenBlocks) {
  // The writer switches codec per block when it falls behind (zstd -> lz4 -> none and back).
  using C = StoreOptions::Compression;
  format::BlockEncoder enc(C::kZstd, 1);
  FlowColumns c = edgeBlock(2000, 11);
  for (C codec : {C::kZstd, C::kLz4, C::kNone, C::kZstd, C::kNone, C::kLz4}) {
    enc.setCodec(codec);
    std::vector<uint8_t> frame;
    enc.encode(c, frame);
    // in_if (0, 1, 2, ...) compresses with either codec: its entry says which one was used.
    Entry e = entryOf(frame, Column::in_if);
    EXPECT_EQ(e.codec, codec == C::kZstd  ? format::kCodecZstd
                       : codec == C::kLz4 ? format::kCodecLz4
                                          : format::kCodecNone);
    expectDecodesTo(frame, c);
  }
}

TEST(block, Version2PicksConstantV4AndNarrow) {
  FlowColumns c = edgeBlock(1000, 3);
  std::vector<uint8_t> frame;
  format::BlockEncoder enc(StoreOptions::Compression::kZstd, 1);
  enc.setVersion(2);
  enc.encode(c, frame);
  using format::kConstant;
  using format::kNarrow;
  using format::kShuffle;
  using format::kV4Only;
  EXPECT_EQ(entryOf(frame, Column::exporter).xf, kConstant);
  EXPECT_EQ(entryOf(frame, Column::next_hop).xf, kConstant);
  EXPECT_EQ(entryOf(frame, Column::sampling_rate).xf, kConstant);
  EXPECT_EQ(entryOf(frame, Column::dst_mac).xf, kConstant);
  EXPECT_EQ(entryOf(frame, Column::src_addr).xf, kV4Only | kShuffle);
  EXPECT_EQ(entryOf(frame, Column::src_addr).width, 4);
  EXPECT_EQ(entryOf(frame, Column::dst_addr).xf, kShuffle);  // mixed v4/v6: 16 bytes
  EXPECT_EQ(entryOf(frame, Column::dst_addr).width, 16);
  EXPECT_EQ(entryOf(frame, Column::bytes).xf, kNarrow);
  EXPECT_EQ(entryOf(frame, Column::bytes).width, 1);
  EXPECT_EQ(entryOf(frame, Column::packets).xf, kShuffle);  // 0 and UINT64_MAX: full width
  EXPECT_EQ(entryOf(frame, Column::packets).width, 8);
  EXPECT_EQ(entryOf(frame, Column::observation_domain).xf, kNarrow | kShuffle);
  EXPECT_EQ(entryOf(frame, Column::observation_domain).width, 3);
  EXPECT_EQ(entryOf(frame, Column::first_ns).xf, format::kDelta | kNarrow | kShuffle);
  EXPECT_EQ(entryOf(frame, Column::first_ns).width, 2);  // gaps of 1000 ns, zigzag: 2 bytes
  EXPECT_EQ(entryOf(frame, Column::last_ns).xf & format::kMinusFirst, format::kMinusFirst);
  EXPECT_EQ(entryOf(frame, Column::src_mac).width, 1);
}

// Encoder policy (format.hpp): with zstd, a column stays raw unless zstd saves at least a fifth
// of it (reading it in place is faster than decompressing it), and the columns most queries read
// are never zstd-compressed: one-byte ones with few values are bit-packed instead. All decode
// the same.
TEST(block, ColumnsZstdBarelyShrinksAreStoredRaw) {
  std::mt19937_64 rng(5);
  std::vector<FlowRecord> rs(16384);
  for (size_t i = 0; i < rs.size(); ++i) {
    rs[i].first_ns = kBase + i * 1000;
    rs[i].in_if = static_cast<uint32_t>(rng() % 200);     // ~7.6 bits a byte: saves ~5 %
    rs[i].out_if = static_cast<uint32_t>(rng() % 4);      // 2 bits a byte: saves ~70 %
    rs[i].src_port = static_cast<uint16_t>(rng() % 200);  // hot, 200 values: one raw byte
    rs[i].dst_port = static_cast<uint16_t>(rng() % 4);    // hot, 4 values: 2 bits
  }
  FlowColumns c;
  c.append(rs);
  std::vector<uint8_t> frame;
  format::BlockEncoder(StoreOptions::Compression::kZstd, 1).encode(c, frame);
  EXPECT_EQ(entryOf(frame, Column::in_if).codec, format::kCodecNone);
  EXPECT_EQ(entryOf(frame, Column::in_if).width, 1);
  EXPECT_EQ(entryOf(frame, Column::out_if).codec, format::kCodecZstd);
  EXPECT_EQ(entryOf(frame, Column::src_port).codec, format::kCodecNone);
  EXPECT_EQ(entryOf(frame, Column::src_port).xf, format::kNarrow);
  EXPECT_EQ(entryOf(frame, Column::dst_port).codec, format::kCodecNone);
  EXPECT_EQ(entryOf(frame, Column::dst_port).xf, format::kNarrow | format::kBits);
  FlowColumns back;
  format::BlockDecoder dec;
  std::string why;
  ASSERT_TRUE(dec.decode(frame, back, &why)) << why;
  EXPECT_EQ(rowsOf(back), rowsOf(c));
}

// A column the codec could not shrink in one block is stored raw untried in the next
// kSkipAfterMiss blocks, tried again after them, and tried again at once after a codec change;
// every block still decodes to its rows, and a compressible column keeps being compressed.
TEST(block, AColumnThatDidNotCompressIsNotTriedAgainForABit) {
  std::mt19937_64 rng(11);
  auto block = [&] {
    std::vector<FlowRecord> rs(4096);
    for (size_t i = 0; i < rs.size(); ++i) {
      rs[i].first_ns = kBase + i * 1000;
      rs[i].src_mac = rng() & 0xffffffffffffull;        // random: no codec shrinks it
      rs[i].out_if = static_cast<uint32_t>(rng() % 4);  // compresses well
    }
    FlowColumns c;
    c.append(rs);
    return c;
  };
  for (auto codec : {StoreOptions::Compression::kZstd, StoreOptions::Compression::kLz4}) {
    format::BlockEncoder enc(codec, 1);
    const uint8_t want =
        codec == StoreOptions::Compression::kZstd ? format::kCodecZstd : format::kCodecLz4;
    uint64_t skipped_before = 0;
    for (size_t k = 0; k < 2 * (format::BlockEncoder::kSkipAfterMiss + 1); ++k) {
      FlowColumns c = block();
      std::vector<uint8_t> frame;
      enc.encode(c, frame);
      EXPECT_EQ(entryOf(frame, Column::src_mac).codec, format::kCodecNone) << k;
      EXPECT_EQ(entryOf(frame, Column::out_if).codec, want) << k;
      // Blocks 0 and 16 try src_mac (and miss); the 15 after each skip it.
      const bool tried = k % (format::BlockEncoder::kSkipAfterMiss + 1) == 0;
      EXPECT_EQ(enc.tries().skipped - skipped_before, tried ? 0u : 1u) << k;
      skipped_before = enc.tries().skipped;
      FlowColumns back;
      format::BlockDecoder dec;
      std::string why;
      ASSERT_TRUE(dec.decode(frame, back, &why)) << why;
      EXPECT_EQ(rowsOf(back), rowsOf(c));
    }
    EXPECT_EQ(enc.tries().missed, 2u);
    // A third miss starts another 15 blocks; another codec tries the column at once.
    std::vector<uint8_t> frame;
    FlowColumns c = block();
    enc.encode(c, frame);
    EXPECT_EQ(enc.tries().missed, 3u);
    enc.setCodec(codec == StoreOptions::Compression::kZstd ? StoreOptions::Compression::kLz4
                                                           : StoreOptions::Compression::kZstd);
    c = block();
    enc.encode(c, frame);
    EXPECT_EQ(enc.tries().missed, 4u);
  }
}

// first_ns spread wider than 2^56 ns cannot be narrowed: it falls back to delta + shuffle.
TEST(block, WideFirstNsUsesDelta) {
  std::vector<FlowRecord> rs(3);
  rs[0].first_ns = 5;
  rs[1].first_ns = kBase;
  rs[2].first_ns = UINT64_MAX;
  rs[2].last_ns = 0;
  FlowColumns c;
  c.append(rs);
  std::vector<uint8_t> frame;
  format::BlockEncoder(StoreOptions::Compression::kNone, 1).encode(c, frame);
  EXPECT_EQ(entryOf(frame, Column::first_ns).xf, format::kDelta | format::kShuffle);
  FlowColumns out;
  std::string why;
  ASSERT_TRUE(format::BlockDecoder().decode(frame, out, &why)) << why;
  EXPECT_EQ(rowsOf(out), rowsOf(c));
}

// Sorted times near 0 and near UINT64_MAX, with repeated values (delta 0): narrowed deltas from
// the first value.
TEST(block, NarrowedDeltasAtTheEdges) {
  for (uint64_t start : {uint64_t{0}, UINT64_MAX - 100000, kBase}) {
    for (uint64_t step : {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{70000}}) {
      std::vector<FlowRecord> rs(40);
      for (size_t i = 0; i < rs.size(); ++i) {
        rs[i].first_ns = start + (i / 2) * step;  // pairs of equal times
        rs[i].last_ns = rs[i].first_ns + i;
      }
      FlowColumns c;
      c.append(rs);
      for (auto codec : {StoreOptions::Compression::kZstd, StoreOptions::Compression::kNone}) {
        std::vector<uint8_t> frame;
        format::BlockEncoder(codec, 1).encode(c, frame);
        const Entry e = entryOf(frame, Column::first_ns);
        if (step == 0) {
          EXPECT_EQ(e.xf, format::kConstant);
        } else {
          EXPECT_EQ(e.xf & (format::kDelta | format::kNarrow), format::kDelta | format::kNarrow);
        }
        FlowColumns out;
        std::string why;
        ASSERT_TRUE(format::BlockDecoder().decode(frame, out, &why)) << why;
        EXPECT_EQ(out.first_ns, c.first_ns) << start << " + i * " << step;
        EXPECT_EQ(out.last_ns, c.last_ns);
      }
    }
  }
}

// Version 3: times in whole milliseconds are stored divided by their common factor (kScale),
// IPv4 addresses of a few networks narrowed to their range; each column has its own checksum,
// so a damaged column fails only the decodes that read it.
TEST(block, Version3ScalesTimesNarrowsAddressesAndChecksumsColumns) {  // (written as version 3)
  std::mt19937_64 rng(5);
  std::vector<FlowRecord> rs(5000);
  for (size_t i = 0; i < rs.size(); ++i) {
    FlowRecord& r = rs[i];
    r.first_ns = kBase + (i / 3) * 1'000'000;                    // ms, repeated
    r.last_ns = r.first_ns + (rng() % 60000) * 1'000'000;        // durations up to a minute
    r.received_ns = kBase + rng() % 1'000'000'000;               // ns: no common factor
    r.bytes = 64 * (1 + rng() % 1500);                           // multiples of 64
    r.packets = 1 + rng() % 100;                                 // no factor
    r.src_addr = IpAddr::fromV4(0x0a010000 | (rng() & 0xffff));  // 10.1.0.0/16
    r.dst_addr = IpAddr::fromV4(0xc0a80100 | (rng() & 0x7f));    // 192.168.1.0/25
    r.next_hop = IpAddr::fromV4(static_cast<uint32_t>(rng()));   // anywhere: 4 bytes
    r.proto = 6;
  }
  FlowColumns c;
  c.append(rs);
  format::sortByFirstNs(c);
  for (auto codec : {StoreOptions::Compression::kZstd, StoreOptions::Compression::kLz4,
                     StoreOptions::Compression::kNone}) {
    const std::vector<uint8_t> frame = encodeAs(c, codec, 3);
    using format::kNarrow;
    using format::kScale;
    using format::kShuffle;
    using format::kV4Only;
    EXPECT_EQ(entryOf(frame, Column::first_ns).xf, format::kDelta | kNarrow | kScale);
    EXPECT_EQ(entryOf(frame, Column::first_ns).width, 1);  // 0 or 1 ms apart
    EXPECT_EQ(entryOf(frame, Column::last_ns).xf,
              format::kMinusFirst | kNarrow | kScale | kShuffle);
    EXPECT_EQ(entryOf(frame, Column::last_ns).width, 2);  // < 60000 ms; zigzag's 2 divided out
    EXPECT_EQ(entryOf(frame, Column::received_ns).xf & kScale, 0);
    EXPECT_EQ(entryOf(frame, Column::bytes).xf, kNarrow | kScale | kShuffle);
    EXPECT_EQ(entryOf(frame, Column::bytes).width, 2);
    EXPECT_EQ(entryOf(frame, Column::packets).xf, kNarrow);
    EXPECT_EQ(entryOf(frame, Column::src_addr).xf, kV4Only | kNarrow | kShuffle);
    EXPECT_EQ(entryOf(frame, Column::src_addr).width, 2);
    EXPECT_EQ(entryOf(frame, Column::dst_addr).xf, kV4Only | kNarrow);
    EXPECT_EQ(entryOf(frame, Column::dst_addr).width, 1);
    EXPECT_EQ(entryOf(frame, Column::next_hop).xf, kV4Only | kShuffle);
    expectDecodesTo(frame, c);

    // Damage the last byte of the bytes column's stored data: decodes that read the column
    // fail and name it; a projection without it still decodes (its columns are intact).
    size_t at = kEntryAt + kColumnCount * 16 + 4;
    size_t end = 0;
    for (size_t k = 0; k < kColumnCount; ++k) {
      uint32_t len = 0;
      std::memcpy(&len, frame.data() + kEntryAt + k * 16 + 4, 4);
      if (frame[kEntryAt + k * 16] == static_cast<uint8_t>(Column::bytes)) {
        end = at + len;
      }
      at += len;
    }
    ASSERT_GT(end, 0u);
    std::vector<uint8_t> bad = frame;
    bad[end - 1] ^= 0x10;
    FlowColumns out;
    std::string why;
    format::BlockDecoder dec;
    EXPECT_FALSE(dec.decode(bad, out, &why));
    EXPECT_NE(why.find("column 4"), std::string::npos) << why;
    ColumnSet some;
    addColumn(some, Column::src_addr);
    addColumn(some, Column::last_ns);
    ASSERT_TRUE(dec.decode(bad, out, &why, some)) << why;
    EXPECT_EQ(out.src_addr, c.src_addr);
    EXPECT_EQ(out.last_ns, c.last_ns);
    // The column table has its own checksum: a changed column width is caught even when the
    // column is not read.
    bad = frame;
    bad[kEntryAt + 16 * 5 + 3] ^= 1;  // column 5 (exporter), not in the projection
    EXPECT_FALSE(dec.decode(bad, out, &why, some));
    EXPECT_NE(why.find("checksum"), std::string::npos) << why;

    // The reader's ranges for that projection: first_ns, last_ns and src_addr only, inside the
    // frame and past the table.
    std::vector<format::ByteRange> ranges;
    ASSERT_TRUE(format::columnRanges(frame, static_cast<uint32_t>(frame.size()), some, 0, ranges));
    ASSERT_FALSE(ranges.empty());
    size_t total = 0;
    for (const auto& r : ranges) {
      EXPECT_GE(r.offset, kEntryAt + kColumnCount * 16 + 4);
      EXPECT_LE(size_t{r.offset} + r.length, frame.size() - 4);
      total += r.length;
    }
    EXPECT_LT(total, frame.size() / 2);
    // Decoding a frame in which only those ranges (and the head) were filled in gives the
    // same columns.
    std::vector<uint8_t> sparse(frame.size(), 0);
    std::copy_n(frame.begin(), kEntryAt + kColumnCount * 16 + 4, sparse.begin());
    for (const auto& r : ranges) {
      std::copy_n(frame.begin() + r.offset, r.length, sparse.begin() + r.offset);
    }
    ASSERT_TRUE(dec.decode(sparse, out, &why, some)) << why;
    EXPECT_EQ(out.first_ns, c.first_ns);
    EXPECT_EQ(out.last_ns, c.last_ns);
    EXPECT_EQ(out.src_addr, c.src_addr);
  }
  // One odd nanosecond: the deltas keep only zigzag's factor 2 (up to 1 ms + 1 ns: 3 bytes).
  c.first_ns.back() += 1;
  const std::vector<uint8_t> frame = encodeAs(c, StoreOptions::Compression::kZstd, 3);
  EXPECT_EQ(entryOf(frame, Column::first_ns).width, 3);
  expectDecodesTo(frame, c);
}

// Where a column's encoded bytes are in a version 3 or 4 frame: {offset, length}.
std::pair<size_t, size_t> storedBytes(const std::vector<uint8_t>& frame, Column col) {
  size_t at = kEntryAt + kColumnCount * 16 + 4;
  for (size_t k = 0; k < kColumnCount; ++k) {
    uint32_t len = 0;
    std::memcpy(&len, frame.data() + kEntryAt + k * 16 + 4, 4);
    if (frame[kEntryAt + k * 16] == static_cast<uint8_t>(col)) {
      return {at, len};
    }
    at += len;
  }
  ADD_FAILURE() << "column not in block";
  return {0, 0};
}

// Version 4: the hot one-byte columns are bit-packed (1, 2 or 4 bits a row), as they are or
// through a small dictionary; row counts that do not fill the last byte, and damaged streams.
TEST(block, Version4PacksSmallHotColumnsToBits) {
  for (size_t n : {1ul, 3ul, 5ul, 7ul, 4097ul, 16384ul}) {
    std::mt19937_64 rng(n);
    std::vector<FlowRecord> rs(n);
    const uint8_t protos[3] = {1, 6, 17};
    for (size_t i = 0; i < n; ++i) {
      FlowRecord& r = rs[i];
      r.first_ns = kBase + (i / 3) * 1'000'000;                 // 0 or 1 ms apart: 1 bit
      r.last_ns = r.first_ns + (rng() % 60) * 1'000'000;        // 2 bytes (zigzag)
      r.proto = protos[rng() % 3];                              // dictionary of 3: 2 bits
      r.dst_port = static_cast<uint16_t>(8080 + rng() % 16);    // narrowed: 4 bits
      r.packets = 1 + rng() % 200;                              // 200 values: a byte
      r.src_addr = IpAddr::fromV4(0x0a000000 | (rng() & 0xf));  // addresses: not packed
    }
    FlowColumns c;
    c.append(rs);
    format::sortByFirstNs(c);
    for (auto codec : {StoreOptions::Compression::kZstd, StoreOptions::Compression::kLz4,
                       StoreOptions::Compression::kNone}) {
      std::vector<uint8_t> frame;
      format::BlockEncoder(codec, 1).encode(c, frame);
      uint16_t version = 0;
      std::memcpy(&version, frame.data() + 6, 2);
      EXPECT_EQ(version, 4);
      expectDecodesTo(frame, c);
      if (n < 4097) {
        continue;  // a few rows: a few values, other widths (the round trip is the check)
      }
      using format::kBits;
      using format::kNarrow;
      EXPECT_EQ(entryOf(frame, Column::first_ns).xf & kBits, kBits) << n;
      EXPECT_EQ(entryOf(frame, Column::dst_port).xf, kNarrow | kBits) << n;
      EXPECT_EQ(entryOf(frame, Column::dst_port).codec, format::kCodecNone);
      EXPECT_EQ(entryOf(frame, Column::proto).xf, kBits) << n;
      EXPECT_EQ(entryOf(frame, Column::packets).xf & kBits, 0);
      EXPECT_EQ(entryOf(frame, Column::src_addr).xf & kBits, 0);
      auto [at, len] = storedBytes(frame, Column::proto);
      EXPECT_EQ(frame[at], 2);      // b
      EXPECT_EQ(frame[at + 1], 3);  // k
      EXPECT_EQ(len, 2 + 3 + (n * 2 + 7) / 8);
      std::tie(at, len) = storedBytes(frame, Column::dst_port);
      EXPECT_EQ(len, 8 + 2 + (n * 4 + 7) / 8);  // base, b, k = 0, codes
      if (n != 4097 || codec != StoreOptions::Compression::kNone) {
        continue;
      }
      // Damage, each resealed so the checksums pass: a code past the 3-entry dictionary, a bit
      // width that is not 1, 2 or 4, a dictionary longer than the codes allow.
      std::tie(at, len) = storedBytes(frame, Column::proto);
      // (k = 0 with the dictionary's bytes still there: the length no longer matches.)
      std::vector<std::pair<size_t, uint8_t>> damages = {
          {at + 5 + 100, 0xff}, {at, 3}, {at + 1, 6}, {at + 1, 0}};
      ColumnSet only;
      addColumn(only, Column::proto);
      for (auto [off, value] : damages) {
        std::vector<uint8_t> bad = frame;
        bad[off] = value;
        format::resealFrame(bad);
        FlowColumns out;
        std::string why;
        format::BlockDecoder dec;
        EXPECT_FALSE(dec.decode(bad, out, &why, only)) << off - at;
        EXPECT_NE(why.find("column 21"), std::string::npos) << why;
        EXPECT_NE(why.find("bit-packed"), std::string::npos) << why;
        // A projection without the column still decodes.
        ColumnSet other;
        addColumn(other, Column::packets);
        ASSERT_TRUE(dec.decode(bad, out, &why, other)) << why;
        EXPECT_EQ(out.packets, c.packets);
      }
    }
  }
}

// sortByFirstNs orders the rows of every column by first_ns, equal times in their original order
// (a stable sort), whatever the span of the block's times: radix passes over 32-bit and 64-bit
// offsets, and the comparison sort for spans over 44 bits; checked against std::stable_sort.
// sortByFirstNs(rs) equals std::stable_sort by first_ns (in_if holds each row's position).
void expectStableSort(const std::vector<FlowRecord>& rs, const std::string& what) {
  std::vector<FlowRecord> want = rs;
  std::stable_sort(want.begin(), want.end(), [](const FlowRecord& a, const FlowRecord& b) {
    return a.first_ns < b.first_ns;
  });
  FlowColumns c;
  c.append(rs);
  format::sortByFirstNs(c);
  ASSERT_EQ(c.size(), rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    ASSERT_EQ(c.first_ns[i], want[i].first_ns) << what << " row " << i;
    ASSERT_EQ(c.in_if[i], want[i].in_if) << what << " row " << i;
  }
}

TEST(block, SortByFirstNsIsAStableSortForEverySpan) {
  for (uint64_t span : {uint64_t{1}, uint64_t{5000}, uint64_t{1} << 31, uint64_t{1} << 32,
                        uint64_t{1} << 40, uint64_t{1} << 44, uint64_t{1} << 50, UINT64_MAX}) {
    for (size_t n : {2ul, 3ul, 1000ul, 16384ul}) {
      std::mt19937_64 rng(span ^ n);
      std::vector<FlowRecord> rs(n);
      for (size_t i = 0; i < n; ++i) {
        // Few distinct times (many ties) for half the spans; the extremes of the span included.
        const uint64_t off = span == UINT64_MAX ? rng() : rng() % (span + 1);
        rs[i].first_ns = (span == UINT64_MAX ? 0 : kBase) + ((span & 1) ? off : off & ~0xffull);
        rs[i].in_if = static_cast<uint32_t>(i);  // the original position
      }
      rs[n / 2].first_ns = span == UINT64_MAX ? UINT64_MAX : kBase + span;
      rs[n - 1].first_ns = span == UINT64_MAX ? 0 : kBase;
      expectStableSort(rs, "span " + std::to_string(span));
    }
  }
}

// Times of one resolution (ms, us) sort on their quotient: the same stable order, also when one
// time breaks the resolution.
TEST(block, SortByFirstNsOfMillisecondsAndMicroseconds) {
  for (uint64_t unit : {uint64_t{1'000}, uint64_t{1'000'000}}) {
    for (uint64_t units : {uint64_t{10}, uint64_t{5'000}, uint64_t{60'000}, uint64_t{1} << 30}) {
      for (bool odd : {false, true}) {
        std::mt19937_64 rng(unit ^ units ^ (odd ? 1 : 0));
        std::vector<FlowRecord> rs(3000);
        for (size_t i = 0; i < rs.size(); ++i) {
          rs[i].first_ns = kBase + (rng() % (units + 1)) * unit;  // many ties for small spans
          rs[i].in_if = static_cast<uint32_t>(i);
        }
        rs[7].first_ns = kBase + units * unit;
        rs[9].first_ns = kBase;
        if (odd) {
          rs[11].first_ns += 1;
        }
        expectStableSort(rs, "unit " + std::to_string(unit) + " units " + std::to_string(units) +
                                 (odd ? " odd" : ""));
      }
    }
  }
}

// Late materialization: decoding some columns, then the others only at selected rows, gives
// what a full decode gives at those rows, for every block version, codec and column form, with
// selections empty, sparse, dense and complete.
TEST(block, DecodeRowsEqualsFullDecodeAtTheSelectedRows) {
  for (size_t n : {1ul, 17ul, 1000ul, 16384ul}) {
    FlowColumns c = edgeBlock(n, n + 3);
    for (auto codec : {StoreOptions::Compression::kZstd, StoreOptions::Compression::kLz4,
                       StoreOptions::Compression::kNone}) {
      for (uint16_t version : {1, 2, 3, 4}) {
        const std::vector<uint8_t> frame = encodeAs(c, codec, version);
        format::BlockDecoder dec;
        FlowColumns full;
        std::string why;
        ASSERT_TRUE(dec.decode(frame, full, &why)) << why;
        std::mt19937_64 rng(n * 10 + version);
        // Rows kept: none, all, 3 in 4 (dense: whole columns decoded, then kept), 1 in 3,
        // 1 in 97 (picked one by one), and an empty selection.
        for (unsigned every : {0u, 1u, 4u, 3u, 97u, 100000u}) {
          std::vector<uint32_t> sel;
          for (uint32_t i = 0; i < n && every != 100000; ++i) {
            const bool keep =
                every == 4 ? rng() % 4 != 0 : every == 1 || (every != 0 && rng() % every == 0);
            if (keep) {
              sel.push_back(i);
            }
          }
          ColumnSet first;  // a filter's columns
          addColumn(first, Column::proto);
          addColumn(first, Column::dst_port);
          addColumn(first, Column::src_addr);
          FlowColumns out;
          ASSERT_TRUE(dec.decode(frame, out, &why, first)) << why;
          ASSERT_TRUE(dec.decodeRows(frame, out, &why, first, allColumns(), sel)) << why;
          ASSERT_EQ(out.size(), sel.size());
          for (size_t j = 0; j < sel.size(); ++j) {
            ASSERT_EQ(key(out.row(j)), key(full.row(sel[j])))
                << n << " rows, version " << version << ", codec " << int(codec) << ", row "
                << sel[j];
          }
          // A projection: columns outside `first` and `more` stay empty.
          ColumnSet more;
          addColumn(more, Column::bytes);
          addColumn(more, Column::last_ns);
          ASSERT_TRUE(dec.decode(frame, out, &why, first)) << why;
          ASSERT_TRUE(dec.decodeRows(frame, out, &why, first, more, sel)) << why;
          ASSERT_EQ(out.bytes.size(), sel.size())
              << n << " v" << version << " every " << every << " codec " << int(codec);
          EXPECT_TRUE(out.packets.empty());
          for (size_t j = 0; j < sel.size(); ++j) {
            ASSERT_EQ(out.bytes[j], full.bytes[sel[j]]);
            ASSERT_EQ(out.last_ns[j], full.last_ns[sel[j]]);
            ASSERT_EQ(out.dst_port[j], full.dst_port[sel[j]]);
          }
        }
        // A selection out of order or past the block is refused.
        FlowColumns out;
        ASSERT_TRUE(dec.decode(frame, out, &why, ColumnSet{}));
        std::vector<uint32_t> bad = {static_cast<uint32_t>(n)};
        EXPECT_FALSE(dec.decodeRows(frame, out, &why, ColumnSet{}, allColumns(), bad));
      }
    }
  }
}

TEST(block, UnknownTransformBitsAreCorrupt) {
  FlowColumns c = edgeBlock(100, 9);
  for (uint16_t version : {1, 2, 3}) {
    const std::vector<uint8_t> frame = encodeAs(c, StoreOptions::Compression::kZstd, version);
    // Bits of later versions (0x80: kBits, version 4).
    for (uint8_t bit : {uint8_t{0x80}, uint8_t{format::kScale}, uint8_t{format::kConstant}}) {
      if ((version >= 2 && bit == format::kConstant) || (version >= 3 && bit == format::kScale)) {
        continue;
      }
      std::vector<uint8_t> bad = frame;
      bad[kEntryAt + 5 * entryLen(frame) + 2] |= bit;  // column 5's transform bits
      fixCrc(bad);
      FlowColumns out;
      std::string why;
      EXPECT_FALSE(format::BlockDecoder().decode(bad, out, &why)) << int{bit};
      EXPECT_NE(why.find("transform"), std::string::npos) << why;
      // Also when the column is projected out.
      ColumnSet only;
      addColumn(only, Column::bytes);
      EXPECT_FALSE(format::BlockDecoder().decode(bad, out, &why, only));
    }
  }
}

TEST(block, ProjectionDecodesOnlyTheSet) {
  FlowColumns c = edgeBlock(500, 4);
  std::vector<uint8_t> frame;
  format::BlockEncoder(StoreOptions::Compression::kZstd, 1).encode(c, frame);
  ColumnSet set;
  addColumn(set, Column::src_addr);
  addColumn(set, Column::bytes);
  addColumn(set, Column::last_ns);
  FlowColumns out;
  std::string why;
  format::BlockDecoder dec;
  ASSERT_TRUE(dec.decode(frame, out, &why)) << why;  // full first: stale vectors must go
  ASSERT_TRUE(dec.decode(frame, out, &why, set)) << why;
  EXPECT_EQ(out.size(), c.size());
  EXPECT_EQ(out.first_ns, c.first_ns);  // always decoded
  EXPECT_EQ(out.src_addr, c.src_addr);
  EXPECT_EQ(out.bytes, c.bytes);
  EXPECT_EQ(out.last_ns, c.last_ns);
  EXPECT_TRUE(out.dst_addr.empty());
  EXPECT_TRUE(out.packets.empty());
  EXPECT_TRUE(out.received_ns.empty());
  EXPECT_TRUE(out.flags.empty());
}

std::vector<FlowRecord> flows(size_t n, uint64_t seed, uint64_t t0) {
  std::mt19937_64 rng(seed);
  std::vector<FlowRecord> rs(n);
  for (size_t i = 0; i < n; ++i) {
    FlowRecord& r = rs[i];
    r.first_ns = t0 + rng() % 60'000'000'000ull;
    r.last_ns = r.first_ns + rng() % 10'000'000'000ull;
    r.src_addr = IpAddr::fromV4(0x0a000000u + static_cast<uint32_t>(rng() % 300));
    r.dst_addr = IpAddr::fromV4(0xc0a80000u + static_cast<uint32_t>(rng() % 300));
    r.dst_port = static_cast<uint16_t>(rng() % 4 == 0 ? 443 : rng());
    r.packets = 1 + rng() % 100;
    r.bytes = r.packets * (40 + rng() % 1400);
    r.proto = 6;
  }
  return rs;
}

// Projected scans (sealed and `.open` segments, time windows that trim blocks, may_match on a
// column outside the set) hand out exactly the projected columns of the full scan's rows.
TEST(block, ProjectedScanMatchesFullScan) {
  test::TempDir dir("store-proj");
  StoreOptions o;
  o.path = dir.path().string();
  o.block_rows = 700;
  Writer w(o);
  auto rs = flows(5000, 1, kBase);
  w.append(rs);
  w.flush();
  ColumnSet set;
  addColumn(set, Column::src_addr);
  addColumn(set, Column::bytes);
  auto project = [](const FlowColumns& c, size_t i) {
    return std::to_string(c.first_ns[i]) + "/" + c.src_addr[i].toString() + "/" +
           std::to_string(c.bytes[i]);
  };
  auto run = [&](const ScanRequest& req, bool check_empty) {
    std::mutex mu;
    std::vector<std::string> got;
    Reader(o.path).scan(req, [&](const FlowColumns& c, unsigned) {
      std::lock_guard lk(mu);
      if (check_empty) {
        EXPECT_TRUE(c.dst_addr.empty());
        EXPECT_TRUE(c.packets.empty());
        EXPECT_TRUE(c.dst_port.empty());
        EXPECT_EQ(c.src_addr.size(), c.size());
        EXPECT_EQ(c.bytes.size(), c.size());
      }
      for (size_t i = 0; i < c.size(); ++i) {
        got.push_back(project(c, i));
      }
    });
    std::sort(got.begin(), got.end());
    return got;
  };
  auto check = [&](const char* what) {
    ScanRequest full;
    full.since_ns = kBase + 10'000'000'000ull;
    full.until_ns = kBase + 40'000'000'000ull;
    // Prunes on dst_port, which the projection does not load: `.open` blocks must not be
    // dropped because of it.
    full.may_match = [](const BlockSummary& s) { return s[Column::dst_port].min <= 443; };
    ScanRequest proj = full;
    proj.columns = set;
    auto a = run(full, false);
    auto b = run(proj, true);
    EXPECT_FALSE(a.empty()) << what;
    EXPECT_EQ(a, b) << what;
  };
  check("open segment");
  w.close();
  check("sealed segment");
}

// Blocks left in arrival order (the writer does so while behind) say so in their flags, carry
// their true time range (not their first and last rows'), and read back right through every
// path of a time-windowed scan: pruning by the block's range, trimming, late selection.
TEST(block, UnsortedBlocksKeepTheirOrderAndTrueTimeRange) {
  test::TempDir dir("store-unsorted");
  auto rs = flows(4000, 5, kBase);  // times at random over 60 s
  format::FileHeader h;
  h.column_count = kColumnCount;
  auto bytes = format::encodeHeader(h);
  format::BlockEncoder enc(StoreOptions::Compression::kLz4, 1);
  for (size_t at = 0; at < rs.size(); at += 1000) {
    // Each block's first and last rows are neither its earliest nor its latest.
    std::vector<FlowRecord> part(rs.begin() + static_cast<ptrdiff_t>(at),
                                 rs.begin() + static_cast<ptrdiff_t>(at + 1000));
    auto [mn, mx] = std::minmax_element(part.begin(), part.end(),
                                        [](auto& a, auto& b) { return a.first_ns < b.first_ns; });
    const uint64_t lo = mn->first_ns;
    const uint64_t hi = mx->first_ns;
    part.front().first_ns = lo + 1;
    part.back().first_ns = hi - 1;
    std::copy(part.begin(), part.end(), rs.begin() + static_cast<ptrdiff_t>(at));
    FlowColumns c;
    c.append(part);
    std::vector<uint8_t> frame;
    enc.encode(c, frame);
    EXPECT_EQ(frame[format::kFrameHeaderSize + 6], 0) << "flags: not sorted";
    format::FlowBlockInfo info;
    ASSERT_TRUE(format::peekFlowBlock(frame, info, nullptr));
    EXPECT_EQ(info.min_first_ns, lo);
    EXPECT_EQ(info.max_first_ns, hi);
    format::BlockDecoder dec;
    FlowColumns back;
    std::string why;
    ASSERT_TRUE(dec.decode(frame, back, &why)) << why;
    EXPECT_EQ(rowsOf(back), rowsOf(c)) << "arrival order kept";
    bytes.insert(bytes.end(), frame.begin(), frame.end());
  }
  std::ofstream(dir.path() / "flows-20270101T000000.000Z.ncseg.open", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  // Windows that take the extremes of blocks and cut through them.
  std::vector<std::pair<uint64_t, uint64_t>> windows = {{0, UINT64_MAX}};
  for (size_t at = 0; at < rs.size(); at += 1000) {
    uint64_t lo = UINT64_MAX;
    uint64_t hi = 0;
    for (size_t i = at; i < at + 1000; ++i) {
      lo = std::min(lo, rs[i].first_ns);
      hi = std::max(hi, rs[i].first_ns);
    }
    windows.emplace_back(lo, lo + 1);
    windows.emplace_back(hi, hi + 1);
    windows.emplace_back(lo + (hi - lo) / 3, hi - (hi - lo) / 3);
  }
  for (auto [since, until] : windows) {
    std::vector<std::string> want;
    for (const auto& r : rs) {
      if (r.first_ns >= since && r.first_ns < until && r.dst_port == 443) {
        want.push_back(key(r));
      }
    }
    std::sort(want.begin(), want.end());
    for (bool late : {false, true}) {
      ScanRequest req;
      req.since_ns = since;
      req.until_ns = until;
      if (late) {
        addColumn(req.select_columns, Column::dst_port);
        req.select = [&](const FlowColumns& b, size_t begin, size_t end, bool in_window,
                         std::vector<uint32_t>& keep) {
          for (size_t i = begin; i < end; ++i) {
            if (b.dst_port[i] == 443 &&
                (in_window || (b.first_ns[i] >= since && b.first_ns[i] < until))) {
              keep.push_back(static_cast<uint32_t>(i));
            }
          }
        };
      }
      std::mutex mu;
      std::vector<std::string> got;
      Reader(dir.path().string()).scan(req, [&](const FlowColumns& c, unsigned) {
        std::lock_guard lk(mu);
        for (size_t i = 0; i < c.size(); ++i) {
          if (late || c.dst_port[i] == 443) {
            got.push_back(key(c.row(i)));
          }
        }
      });
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, want) << "window [" << since - kBase << ", " << until - kBase << ")"
                           << (late ? " late" : "");
    }
  }
}

// A segment written with version-1 blocks (before the version-2 transforms) reads the same.
TEST(block, Version1SegmentStillReads) {
  test::TempDir dir("store-v1");
  auto rs = flows(3000, 2, kBase);
  format::FileHeader h;
  h.column_count = kColumnCount;
  auto bytes = format::encodeHeader(h);
  format::BlockEncoder enc(StoreOptions::Compression::kZstd, 1);
  enc.setVersion(1);
  for (size_t at = 0; at < rs.size(); at += 1000) {
    FlowColumns c;
    c.append(std::span(rs).subspan(at, 1000));
    format::sortByFirstNs(c);
    std::vector<uint8_t> frame;
    enc.encode(c, frame);
    bytes.insert(bytes.end(), frame.begin(), frame.end());
  }
  std::ofstream(dir.path() / "flows-20270101T000000.000Z.ncseg.open", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  std::mutex mu;
  std::vector<std::string> got;
  ScanStats st = Reader(dir.path().string()).scan({}, [&](const FlowColumns& c, unsigned) {
    std::lock_guard lk(mu);
    auto r = rowsOf(c);
    got.insert(got.end(), r.begin(), r.end());
  });
  std::vector<std::string> want;
  for (const auto& r : rs) {
    want.push_back(key(r));
  }
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(st.corrupt_blocks, 0u);
  EXPECT_EQ(st.unknown_blocks, 0u);
}

}  // namespace
}  // namespace nc::store
