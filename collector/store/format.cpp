#include "collector/store/format.hpp"

#include <lz4.h>
#include <nmmintrin.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <numeric>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "collector/record/names.hpp"

namespace nc::store::format {
namespace {

// ---- little-endian helpers (host order is LE, see the static_assert in format.hpp) ----

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}
template <typename T>
void putAt(std::vector<uint8_t>& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof(T));
}
template <typename T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// ---- crc32c (Castagnoli): SSE4.2 when the CPU has it, else slice-by-8 tables ----

struct CrcTables {
  uint32_t t[8][256];
};

CrcTables makeTables() {
  CrcTables tb{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    tb.t[0][i] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t prev = tb.t[k - 1][i];
      tb.t[k][i] = (prev >> 8) ^ tb.t[0][prev & 0xff];
    }
  }
  return tb;
}

uint32_t crcSoft(uint32_t crc, const uint8_t* p, size_t n) {
  static const CrcTables tb = makeTables();
  const auto& t = tb.t;
  uint32_t c = ~crc;
  while (n >= 8) {
    uint64_t v = get<uint64_t>(p) ^ c;
    c = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^ t[4][(v >> 24) & 0xff] ^
        t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^ t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) {
    c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  }
  return ~c;
}

// One chain of crc32 instructions runs at ~8 bytes per 3 cycles (the instruction's latency); three
// independent chains over three consecutive stretches of kCrcStretch bytes keep the unit busy
// (~3x), and the stretches' registers are then joined with crcShift: the register after
// kCrcStretch zero bytes, a linear function of the register, tabulated per byte.
constexpr size_t kCrcStretch = 1024;

__attribute__((target("sse4.2"))) uint32_t crcZerosHw(uint32_t reg, size_t n) {
  uint64_t c = reg;
  for (size_t i = 0; i < n; i += 8) {
    c = _mm_crc32_u64(c, 0);
  }
  return static_cast<uint32_t>(c);
}

struct CrcShiftTables {
  uint32_t t[4][256];
};

__attribute__((target("sse4.2"))) CrcShiftTables makeShiftTables() {
  CrcShiftTables tb{};
  for (uint32_t k = 0; k < 4; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      tb.t[k][b] = crcZerosHw(b << (8 * k), kCrcStretch);
    }
  }
  return tb;
}

uint32_t crcShift(const CrcShiftTables& tb, uint32_t reg) {
  return tb.t[0][reg & 0xff] ^ tb.t[1][(reg >> 8) & 0xff] ^ tb.t[2][(reg >> 16) & 0xff] ^
         tb.t[3][reg >> 24];
}

__attribute__((target("sse4.2"))) uint32_t crcHw(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = ~crc & 0xffffffffu;
  if (n >= 3 * kCrcStretch) {
    static const CrcShiftTables tb = makeShiftTables();
    while (n >= 3 * kCrcStretch) {
      uint64_t c1 = 0;
      uint64_t c2 = 0;
      for (size_t i = 0; i < kCrcStretch; i += 8) {
        c = _mm_crc32_u64(c, get<uint64_t>(p + i));
        c1 = _mm_crc32_u64(c1, get<uint64_t>(p + kCrcStretch + i));
        c2 = _mm_crc32_u64(c2, get<uint64_t>(p + 2 * kCrcStretch + i));
      }
      // Register after A B C = shift(shift(reg after A) ^ reg of B from 0) ^ reg of C from 0.
      c = crcShift(tb, crcShift(tb, static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1)) ^
          static_cast<uint32_t>(c2);
      p += 3 * kCrcStretch;
      n -= 3 * kCrcStretch;
    }
  }
  while (n >= 8) {
    c = _mm_crc32_u64(c, get<uint64_t>(p));
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (n-- > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
  }
  return ~c32;
}

// ---- per-column metadata from the X-macro ----

constexpr std::array<uint8_t, kColumnCount> kWidth = {
#define NC_WIDTH(type, name) static_cast<uint8_t>(sizeof(type)),
    NC_FLOW_COLUMNS(NC_WIDTH)
#undef NC_WIDTH
};
constexpr std::array<bool, kColumnCount> kIsAddr = {
#define NC_ISADDR(type, name) std::is_same_v<type, IpAddr>,
    NC_FLOW_COLUMNS(NC_ISADDR)
#undef NC_ISADDR
};

// Columns that top-N, aggregation and common filters read on every row (the encoder's zstd
// policy favours decoding speed for them).
constexpr std::array<bool, kColumnCount> kHotColumn = [] {
  std::array<bool, kColumnCount> hot{};
  for (Column c :
       {Column::first_ns, Column::last_ns, Column::packets, Column::bytes, Column::src_addr,
        Column::dst_addr, Column::src_port, Column::dst_port, Column::proto}) {
    hot[static_cast<size_t>(c)] = true;
  }
  return hot;
}();

void fillDefault(FlowColumns& c, size_t id, size_t rows) {
  static const FlowRecord def{};
  switch (id) {
#define NC_FILL(type, name)                           \
  case static_cast<size_t>(Column::name):             \
    c.name.assign(rows, static_cast<type>(def.name)); \
    break;
    NC_FLOW_COLUMNS(NC_FILL)
#undef NC_FILL
    default:
      break;
  }
}

void clearColumn(FlowColumns& c, size_t id) {
  switch (id) {
#define NC_CLEAR(type, name)              \
  case static_cast<size_t>(Column::name): \
    c.name.clear();                       \
    break;
    NC_FLOW_COLUMNS(NC_CLEAR)
#undef NC_CLEAR
    default:
      break;
  }
}

uint64_t zigzag(uint64_t d) {
  return (d << 1) ^ static_cast<uint64_t>(static_cast<int64_t>(d) >> 63);
}
uint64_t unzigzag(uint64_t z) {
  return (z >> 1) ^ (~(z & 1) + 1);
}

// Byte shuffle of w-byte values (all byte 0s, then all byte 1s, ...) and its inverse.
void shuffle(const uint8_t* in, uint8_t* out, size_t n, size_t w) {
  for (size_t b = 0; b < w; ++b) {
    uint8_t* o = out + b * n;
    const uint8_t* s = in + b;
    for (size_t i = 0; i < n; ++i) {
      o[i] = s[i * w];
    }
  }
}
void unshuffle(const uint8_t* in, uint8_t* out, size_t n, size_t w) {
  for (size_t b = 0; b < w; ++b) {
    const uint8_t* s = in + b * n;
    uint8_t* o = out + b;
    for (size_t i = 0; i < n; ++i) {
      o[i * w] = s[i];
    }
  }
}

// Bytes needed to hold v (1..8).
size_t bytesFor(uint64_t v) {
  size_t n = 1;
  while (n < 8 && (v >> (8 * n)) != 0) {
    ++n;
  }
  return n;
}

// The low NB bytes of x[i] - base, shuffled: all byte 0s, then all byte 1s, ...
template <size_t NB>
void packPlanes(const uint64_t* x, size_t n, uint64_t base, uint8_t* out) {
  for (size_t b = 0; b < NB; ++b) {
    uint8_t* o = out + b * n;
    const unsigned shift = static_cast<unsigned>(8 * b);
    for (size_t i = 0; i < n; ++i) {
      o[i] = static_cast<uint8_t>((x[i] - base) >> shift);
    }
  }
}
void packPlanes(const uint64_t* x, size_t n, uint64_t base, uint8_t* out, size_t nb) {
  switch (nb) {
    case 1:
      return packPlanes<1>(x, n, base, out);
    case 2:
      return packPlanes<2>(x, n, base, out);
    case 3:
      return packPlanes<3>(x, n, base, out);
    case 4:
      return packPlanes<4>(x, n, base, out);
    case 5:
      return packPlanes<5>(x, n, base, out);
    case 6:
      return packPlanes<6>(x, n, base, out);
    case 7:
      return packPlanes<7>(x, n, base, out);
    default:
      return packPlanes<8>(x, n, base, out);
  }
}

// Inverse of packPlanes and of the integer transforms, in one pass over the rows: value i is the
// NB-byte little-endian number i, read from shuffled planes (`planar`) or from values stored one
// after another, and out[i] is then (kPlain) base + value, (kPrefix) the running sum of
// unzigzag(value) starting from base (kDelta), or (kPlusFirst) first[i] + unzigzag(value)
// (kMinusFirst). NB is a template argument so the byte loop unrolls.
enum class Undo { kPlain, kPrefix, kPlusFirst };

template <size_t NB, bool Planar>
inline uint64_t loadPacked(const uint8_t* in, size_t n, size_t i) {
  if constexpr (Planar) {
    return [&]<size_t... B>(std::index_sequence<B...>) {
      return ((uint64_t{in[B * n + i]} << (8 * B)) | ...);
    }
    (std::make_index_sequence<NB>{});
  } else {
    uint64_t v = 0;
    std::memcpy(&v, in + i * NB, NB);
    return v;
  }
}

// Every stored value is first multiplied by `mult` (kScale). Without a multiplier (kOne) the loops
// carry no multiply; a 64-bit one is emulated with three 32-bit multiplies (SSE2 has no 64-bit
// multiply, and it cost a third), so values of up to 4 bytes times a multiplier below 2^32 (ms
// or us times, zigzag's factor 2) use one widening 32 x 32 -> 64-bit multiply (kMul32).
enum class Mult { kOne, kMul32, kMul64 };

// With `sel` (late materialization, kPlain and kPlusFirst only): out[j] is row sel[j]'s value,
// for j < k.
template <size_t NB, bool Planar, Undo U, Mult M, typename T>
void unpackUndo(const uint8_t* in, size_t n, uint64_t base, uint64_t mult, const uint64_t* first,
                T* out, const uint32_t* sel, size_t k) {
  const auto mult32 = static_cast<uint32_t>(mult);
  auto load = [&](size_t i) {
    const uint64_t v = loadPacked<NB, Planar>(in, n, i);
    if constexpr (M == Mult::kMul32 && NB <= 4) {
      return uint64_t{static_cast<uint32_t>(v)} * uint64_t{mult32};
    } else if constexpr (M != Mult::kOne) {
      return mult * v;
    } else {
      return v;
    }
  };
  if constexpr (U != Undo::kPrefix) {
    if (sel != nullptr) {
      for (size_t j = 0; j < k; ++j) {
        const size_t i = sel[j];
        if constexpr (U == Undo::kPlain) {
          out[j] = static_cast<T>(base + load(i));
        } else {
          out[j] = static_cast<T>(first[i] + unzigzag(base + load(i)));
        }
      }
      return;
    }
  }
  if constexpr (U == Undo::kPlain) {
    for (size_t i = 0; i < n; ++i) {
      out[i] = static_cast<T>(base + load(i));
    }
  } else if constexpr (U == Undo::kPrefix) {
    uint64_t prev = base;
    for (size_t i = 0; i < n; ++i) {
      prev += unzigzag(load(i));
      out[i] = static_cast<T>(prev);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      out[i] = static_cast<T>(first[i] + unzigzag(base + load(i)));
    }
  }
}

template <Undo U, Mult M, typename T>
void unpackIntsAs(const uint8_t* in, size_t n, size_t nb, bool planar, uint64_t base, uint64_t mult,
                  const uint64_t* first, T* out, const uint32_t* sel, size_t k) {
  switch (nb * 2 + (planar ? 1 : 0)) {
#define NC_UNPACK(b)                                                             \
  case 2 * b:                                                                    \
    return unpackUndo<b, false, U, M, T>(in, n, base, mult, first, out, sel, k); \
  case 2 * b + 1:                                                                \
    return unpackUndo<b, b != 1, U, M, T>(in, n, base, mult, first, out, sel, k);
    NC_UNPACK(1)
    NC_UNPACK(2)
    NC_UNPACK(3)
    NC_UNPACK(4)
    NC_UNPACK(5)
    NC_UNPACK(6)
    NC_UNPACK(7)
    NC_UNPACK(8)
#undef NC_UNPACK
    default:
      return;
  }
}

template <Undo U, typename T>
void unpackInts(const uint8_t* in, size_t n, size_t nb, bool planar, uint64_t base, uint64_t mult,
                const uint64_t* first, T* out, const uint32_t* sel = nullptr, size_t k = 0) {
  if (mult == 1) {
    unpackIntsAs<U, Mult::kOne, T>(in, n, nb, planar, base, mult, first, out, sel, k);
  } else if (nb <= 4 && mult <= UINT32_MAX) {
    unpackIntsAs<U, Mult::kMul32, T>(in, n, nb, planar, base, mult, first, out, sel, k);
  } else {
    unpackIntsAs<U, Mult::kMul64, T>(in, n, nb, planar, base, mult, first, out, sel, k);
  }
}

// Bytes 12..15 (the IPv4 address) of every address, as 4 planes, and back (unpackV4: of rows
// sel[0..k) only, when sel is given).
void packV4(const IpAddr* a, size_t n, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = a[i].bytes[12];
    out[n + i] = a[i].bytes[13];
    out[2 * n + i] = a[i].bytes[14];
    out[3 * n + i] = a[i].bytes[15];
  }
}
void unpackV4(const uint8_t* in, size_t n, bool planar, IpAddr* out, const uint32_t* sel,
              size_t k) {
  const size_t s1 = planar ? n : 1;
  const size_t step = planar ? 1 : 4;
  const size_t m = sel != nullptr ? k : n;
  for (size_t j = 0; j < m; ++j) {
    const size_t i = sel != nullptr ? sel[j] : j;
    const uint8_t* p = in + i * step;
    // Bytes 8..15 of ::ffff:a.b.c.d, little-endian: 00 00 ff ff a b c d.
    uint64_t hi = 0xffff0000ull | uint64_t{p[0]} << 32 | uint64_t{p[s1]} << 40 |
                  uint64_t{p[2 * s1]} << 48 | uint64_t{p[3 * s1]} << 56;
    uint64_t lo = 0;
    std::memcpy(out[j].bytes.data(), &lo, 8);
    std::memcpy(out[j].bytes.data() + 8, &hi, 8);
  }
}

// kV4Only | kNarrow (version 3): row i is ::ffff: followed by the big-endian bytes of base + the
// NB-byte value i.
template <size_t NB, bool Planar>
void unpackV4NarrowN(const uint8_t* in, size_t n, uint64_t base, IpAddr* out, const uint32_t* sel,
                     size_t k) {
  auto one = [&](size_t i, IpAddr& o) {
    const auto a = static_cast<uint32_t>(base + loadPacked<NB, Planar>(in, n, i));
    const uint64_t hi = 0xffff0000ull | uint64_t{__builtin_bswap32(a)} << 32;
    const uint64_t lo = 0;
    std::memcpy(o.bytes.data(), &lo, 8);
    std::memcpy(o.bytes.data() + 8, &hi, 8);
  };
  if (sel != nullptr) {
    for (size_t j = 0; j < k; ++j) {
      one(sel[j], out[j]);
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    one(i, out[i]);
  }
}
void unpackV4Narrow(const uint8_t* in, size_t n, size_t nb, bool planar, uint64_t base, IpAddr* out,
                    const uint32_t* sel, size_t k) {
  if (nb == 1) {
    unpackV4NarrowN<1, false>(in, n, base, out, sel, k);
  } else if (nb == 2) {
    planar ? unpackV4NarrowN<2, true>(in, n, base, out, sel, k)
           : unpackV4NarrowN<2, false>(in, n, base, out, sel, k);
  } else if (nb == 3) {
    planar ? unpackV4NarrowN<3, true>(in, n, base, out, sel, k)
           : unpackV4NarrowN<3, false>(in, n, base, out, sel, k);
  }
}

// v = v[perm[0]], v[perm[1]], ... through a per-thread scratch vector of the same type (its
// capacity is kept, so sorting block after block allocates nothing).
template <typename T>
void gather(std::vector<T>& v, const std::vector<uint32_t>& perm) {
  thread_local std::vector<T> out;
  out.resize(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    out[i] = v[perm[i]];
  }
  v.swap(out);
}

void setWhy(std::string* why, std::string text) {
  if (why != nullptr) {
    *why = std::move(text);
  }
}

constexpr size_t kBlockBodyHead = 24;
constexpr size_t kColumnEntry = 12;    // versions 1 and 2
constexpr size_t kColumnEntryV3 = 16;  // + u32 crc32c of the column's stored bytes

}  // namespace

uint32_t crc32c(const void* data, size_t len, uint32_t crc) {
  static const bool hw = __builtin_cpu_supports("sse4.2");
  const auto* p = static_cast<const uint8_t*>(data);
  return hw ? crcHw(crc, p, len) : crcSoft(crc, p, len);
}

size_t rowBytes() {
  size_t n = 0;
  for (uint8_t w : kWidth) {
    n += w;
  }
  return n;
}

std::vector<uint8_t> encodeHeader(const FileHeader& h) {
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize);
  out.insert(out.end(), kFileMagic, kFileMagic + 8);
  put<uint16_t>(out, h.version);
  put<uint16_t>(out, kHeaderSize);
  put<uint8_t>(out, h.compression);
  put<uint8_t>(out, 0);
  put<uint16_t>(out, h.column_count);
  put<uint64_t>(out, h.created_ns);
  put<uint64_t>(out, h.partition_ns);
  put<uint64_t>(out, h.rotate_ms);
  put<uint32_t>(out, h.block_rows);
  out.resize(60, 0);
  put<uint32_t>(out, crc32c(out.data(), 60));
  return out;
}

bool decodeHeader(std::span<const uint8_t> b, FileHeader& h, std::string* why) {
  if (b.size() < kHeaderSize) {
    setWhy(why, "file shorter than its header");
    return false;
  }
  if (std::memcmp(b.data(), kFileMagic, 8) != 0) {
    setWhy(why, "bad file magic (not a segment)");
    return false;
  }
  if (get<uint32_t>(b.data() + 60) != crc32c(b.data(), 60)) {
    setWhy(why, "file header checksum mismatch");
    return false;
  }
  h.version = get<uint16_t>(b.data() + 8);
  if (h.version != kFormatVersion || get<uint16_t>(b.data() + 10) != kHeaderSize) {
    setWhy(why, fmt::format("unsupported format version {}", h.version));
    return false;
  }
  h.compression = b[12];
  h.column_count = get<uint16_t>(b.data() + 14);
  h.created_ns = get<uint64_t>(b.data() + 16);
  h.partition_ns = get<uint64_t>(b.data() + 24);
  h.rotate_ms = get<uint64_t>(b.data() + 32);
  h.block_rows = get<uint32_t>(b.data() + 40);
  return true;
}

bool decodeFrameHeader(std::span<const uint8_t> b, FrameHeader& h, std::string* why) {
  if (b.size() < kFrameHeaderSize) {
    setWhy(why, "truncated frame header");
    return false;
  }
  if (get<uint32_t>(b.data()) != kFrameMagic) {
    setWhy(why, "bad block magic");
    return false;
  }
  h.type = get<uint16_t>(b.data() + 4);
  h.version = get<uint16_t>(b.data() + 6);
  h.length = get<uint32_t>(b.data() + 8);
  if (h.length < kFrameOverhead || h.length > kMaxFrameSize) {
    setWhy(why, fmt::format("implausible block length {}", h.length));
    return false;
  }
  return true;
}

bool verifyFrame(std::span<const uint8_t> f) {
  if (f.size() < kFrameOverhead) {
    return false;
  }
  return get<uint32_t>(f.data() + f.size() - 4) == crc32c(f.data(), f.size() - 4);
}

void resealFrame(std::vector<uint8_t>& f) {
  if (f.size() < kFrameOverhead) {
    return;
  }
  putAt<uint32_t>(f, 8, static_cast<uint32_t>(f.size()));
  const uint16_t type = get<uint16_t>(f.data() + 4);
  const uint16_t version = get<uint16_t>(f.data() + 6);
  const size_t body_end = f.size() - 4;
  if (type == kTypeFlowBlock && checksumsPerColumn(version) &&
      kFrameHeaderSize + kBlockBodyHead <= body_end) {
    const size_t ncols = get<uint16_t>(f.data() + kFrameHeaderSize + 4);
    const size_t table_end = kFrameHeaderSize + kBlockBodyHead + ncols * kColumnEntryV3;
    if (table_end + 4 <= body_end) {
      size_t at = table_end + 4;
      for (size_t k = 0; k < ncols; ++k) {
        const size_t e = kFrameHeaderSize + kBlockBodyHead + k * kColumnEntryV3;
        const size_t len = get<uint32_t>(f.data() + e + 4);
        if (len > body_end - at) {
          break;
        }
        putAt<uint32_t>(f, e + 12, crc32c(f.data() + at, len));
        at += len;
      }
      putAt<uint32_t>(f, table_end, crc32c(f.data(), table_end));
    }
  }
  putAt<uint32_t>(f, f.size() - 4, crc32c(f.data(), f.size() - 4));
}

bool peekFlowBlock(std::span<const uint8_t> f, FlowBlockInfo& info, std::string* why) {
  if (f.size() < kFrameOverhead + kBlockBodyHead) {
    setWhy(why, "flow block too short");
    return false;
  }
  const uint8_t* body = f.data() + kFrameHeaderSize;
  info.rows = get<uint32_t>(body);
  info.min_first_ns = get<uint64_t>(body + 8);
  info.max_first_ns = get<uint64_t>(body + 16);
  if (info.rows > kMaxBlockRows) {
    setWhy(why, fmt::format("implausible row count {}", info.rows));
    return false;
  }
  return true;
}

namespace {

template <uint64_t D>
bool allDivisible(const uint64_t* x, size_t n, uint64_t base);

// Keys (times[i] - base) / D, as K: D a constant, so no division instruction.
template <uint64_t D, typename K>
void quotients(std::span<const uint64_t> times, uint64_t base, std::vector<K>& key) {
  key.resize(times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    key[i] = static_cast<K>((times[i] - base) / D);
  }
}

// Stable LSD radix sort of rows 0..n-1 by key[i] (11-bit digits, `passes` of them; digits all
// rows share are skipped): the permutation goes to `perm`. K is uint32_t when the keys fit.
template <typename K>
void radixPermutation(std::vector<K>& key, unsigned passes, std::vector<uint32_t>& perm) {
  constexpr unsigned kBits = 11;
  constexpr size_t kBuckets = size_t{1} << kBits;
  const size_t n = key.size();
  thread_local std::vector<uint32_t> counts;
  counts.assign(kBuckets * passes, 0);
  for (size_t i = 0; i < n; ++i) {
    for (unsigned p = 0; p < passes; ++p) {
      ++counts[p * kBuckets + ((key[i] >> (p * kBits)) & (kBuckets - 1))];
    }
  }
  thread_local std::vector<K> key2;
  thread_local std::vector<uint32_t> perm2;
  key2.resize(n);
  perm2.resize(n);
  perm.resize(n);
  for (size_t i = 0; i < n; ++i) {
    perm[i] = static_cast<uint32_t>(i);
  }
  for (unsigned p = 0; p < passes; ++p) {
    uint32_t* cnt = counts.data() + p * kBuckets;
    const unsigned shift = p * kBits;
    if (cnt[(key[0] >> shift) & (kBuckets - 1)] == n) {
      continue;  // every row has this digit
    }
    uint32_t at = 0;
    for (size_t d = 0; d < kBuckets; ++d) {
      const uint32_t c = cnt[d];
      cnt[d] = at;
      at += c;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint32_t pos = cnt[(key[i] >> shift) & (kBuckets - 1)]++;
      key2[pos] = key[i];
      perm2[pos] = perm[i];
    }
    key.swap(key2);
    perm.swap(perm2);
  }
}

}  // namespace

void stableOrder(std::span<const uint64_t> times, std::vector<uint32_t>& perm) {
  const size_t n = times.size();
  if (std::is_sorted(times.begin(), times.end())) {  // the identity (also for n = 0)
    perm.resize(n);
    for (size_t i = 0; i < n; ++i) {
      perm[i] = static_cast<uint32_t>(i);
    }
    return;
  }
  // Radix sort of the times minus the smallest (a block spans seconds at most: 3 or 4 passes);
  // stable, so equal times keep their order. Spans wider than 44 bits (hours of ns): (time, row)
  // pairs through std::sort, the row breaking ties (the same order).
  const auto [lo, hi] = std::minmax_element(times.begin(), times.end());
  const uint64_t base = *lo;
  // Times of one resolution (NetFlow and IPFIX milliseconds, Open vSwitch's microseconds) sort
  // on their quotient, which has fewer bits: a minute of milliseconds takes 2 passes, not 4.
  uint64_t unit = 1;
  if (*hi - base >= (uint64_t{1} << 22)) {
    if (allDivisible<1'000'000>(times.data(), n, base)) {
      unit = 1'000'000;
    } else if (allDivisible<1'000>(times.data(), n, base)) {
      unit = 1'000;
    }
  }
  const unsigned bits = static_cast<unsigned>(std::bit_width((*hi - base) / unit));
  const unsigned passes = (bits + 10) / 11;
  auto sortOn = [&](auto& key) {
    if (unit == 1'000'000) {
      quotients<1'000'000>(times, base, key);
    } else if (unit == 1'000) {
      quotients<1'000>(times, base, key);
    } else {
      quotients<1>(times, base, key);
    }
    radixPermutation(key, passes, perm);
  };
  if (bits <= 32) {
    thread_local std::vector<uint32_t> key;
    sortOn(key);
  } else if (passes <= 4) {
    thread_local std::vector<uint64_t> key;
    sortOn(key);
  } else {
    thread_local std::vector<std::pair<uint64_t, uint32_t>> keyed;
    keyed.resize(n);
    for (size_t i = 0; i < n; ++i) {
      keyed[i] = {times[i], static_cast<uint32_t>(i)};
    }
    std::sort(keyed.begin(), keyed.end());
    perm.resize(n);
    for (size_t i = 0; i < n; ++i) {
      perm[i] = keyed[i].second;
    }
  }
}

void sortByFirstNs(FlowColumns& c) {
  if (std::is_sorted(c.first_ns.begin(), c.first_ns.end())) {
    return;
  }
  thread_local std::vector<uint32_t> perm;
  stableOrder(c.first_ns, perm);
#define NC_GATHER(type, name) gather(c.name, perm);
  NC_FLOW_COLUMNS(NC_GATHER)
#undef NC_GATHER
}

// ---- BlockEncoder ----

BlockEncoder::BlockEncoder(StoreOptions::Compression compression, int zstd_level)
    : codec_(compression == StoreOptions::Compression::kZstd  ? kCodecZstd
             : compression == StoreOptions::Compression::kLz4 ? kCodecLz4
                                                              : kCodecNone),
      level_(zstd_level),
      version_(kFlowBlockVersion) {
  if (codec_ == kCodecZstd) {
    zctx_ = ZSTD_createCCtx();
  }
}

void BlockEncoder::setCodec(StoreOptions::Compression compression) {
  const uint8_t before = codec_;
  codec_ = compression == StoreOptions::Compression::kZstd  ? kCodecZstd
           : compression == StoreOptions::Compression::kLz4 ? kCodecLz4
                                                            : kCodecNone;
  if (codec_ == kCodecZstd && zctx_ == nullptr) {
    zctx_ = ZSTD_createCCtx();
  }
  if (codec_ != before) {
    skip_ = {};  // what one codec could not shrink, another may
  }
}

BlockEncoder::~BlockEncoder() {
  ZSTD_freeCCtx(zctx_);
}

namespace {

// kBits (version 4): one-byte values packed to b = 1, 2 or 4 bits, as they are when they fit, else
// through a dictionary of at most 16 values (format.hpp); false when neither fits 4 bits.
unsigned bitsFor(unsigned max_value) {
  return max_value < 2 ? 1 : max_value < 4 ? 2 : max_value < 16 ? 4 : 8;
}
bool packBits(const uint8_t* v, size_t n, std::vector<uint8_t>& out) {
  uint8_t any = 0;
  std::array<uint8_t, 256> seen{};
  for (size_t i = 0; i < n; ++i) {
    any |= v[i];
    seen[v[i]] = 1;
  }
  std::array<uint8_t, 256> code{};
  uint8_t dict[16];
  size_t k = 0;
  for (unsigned x = 0; x < 256; ++x) {
    if (seen[x] != 0) {
      if (k == 16) {
        k = 17;  // too many for a dictionary
        break;
      }
      code[x] = static_cast<uint8_t>(k);
      dict[k++] = static_cast<uint8_t>(x);
    }
  }
  const unsigned direct = bitsFor(std::bit_width(any) == 0 ? 0 : (1u << std::bit_width(any)) - 1);
  const unsigned coded = k <= 16 ? bitsFor(static_cast<unsigned>(k == 0 ? 0 : k - 1)) : 8;
  const bool use_dict = coded < direct;
  const unsigned b = use_dict ? coded : direct;
  if (b > 4) {
    return false;
  }
  if (!use_dict) {
    k = 0;
  }
  const unsigned per = 8 / b;
  out.assign(2 + k + (n * b + 7) / 8, 0);
  out[0] = static_cast<uint8_t>(b);
  out[1] = static_cast<uint8_t>(k);
  std::memcpy(out.data() + 2, dict, k);
  uint8_t* p = out.data() + 2 + k;
  for (size_t i = 0; i < n; ++i) {
    const unsigned c = use_dict ? code[v[i]] : v[i];
    p[i / per] = static_cast<uint8_t>(p[i / per] | (c << ((i % per) * b)));
  }
  return true;
}

// How one column is stored: transform bits, stored value width, the kNarrow base, and the bytes to
// compress (rows x width, or the single value of a kConstant column).
struct ColumnPlan {
  uint8_t xf = 0;
  uint8_t width = 0;
  bool has_base = false;
  uint64_t base = 0;
  uint64_t mult = 1;  // kScale: the stored values are divided by it
  const uint8_t* data = nullptr;
  size_t len = 0;
};

// kScale (version 3): the common factor m of x[i] - base over the rows, when it is a decimal time
// unit (10^3, 10^6 or 10^9: ms or us timestamps in ns) times a power of two, or a power of two
// alone; 1 when there is none. Divisions are by constants (multiplies), and the divisibility tests
// stop at the first block of rows that fails, so a column without a factor costs one short pass.
template <uint64_t D>
bool allDivisible(const uint64_t* x, size_t n, uint64_t base) {
  constexpr size_t kChunk = 256;
  for (size_t at = 0; at < n; at += kChunk) {
    const size_t end = std::min(n, at + kChunk);
    uint64_t bad = 0;
    for (size_t i = at; i < end; ++i) {
      bad |= (x[i] - base) % D;
    }
    if (bad != 0) {
      return false;
    }
  }
  return true;
}
template <uint64_t D>
uint64_t orOfQuotients(const uint64_t* x, size_t n, uint64_t base) {
  uint64_t any = 0;
  for (size_t i = 0; i < n; ++i) {
    any |= (x[i] - base) / D;
  }
  return any;
}
struct Scale {
  uint64_t dec = 1;  // 1, 10^3, 10^6 or 10^9
  unsigned shift = 0;
  uint64_t mult() const { return dec << shift; }
};
Scale commonScale(const uint64_t* x, size_t n, uint64_t base) {
  Scale sc;
  if (n == 0) {
    return sc;
  }
  uint64_t any = 0;
  if (!allDivisible<1'000>(x, n, base)) {
    any = orOfQuotients<1>(x, n, base);
  } else if (!allDivisible<1'000'000>(x, n, base)) {
    sc.dec = 1'000;
    any = orOfQuotients<1'000>(x, n, base);
  } else if (!allDivisible<1'000'000'000>(x, n, base)) {
    sc.dec = 1'000'000;
    any = orOfQuotients<1'000'000>(x, n, base);
  } else {
    sc.dec = 1'000'000'000;
    any = orOfQuotients<1'000'000'000>(x, n, base);
  }
  if (any == 0) {
    return {};  // every value equals the base: nothing to scale
  }
  sc.shift = static_cast<unsigned>(std::countr_zero(any));
  // A shift that leaves the low bits of the 64-bit multiplier would not round-trip.
  if (sc.shift >= 64 || (sc.dec << sc.shift) >> sc.shift != sc.dec) {
    return {};
  }
  return sc;
}

// The low NB bytes of (x[i] - base) / m, shuffled (kScale's packing; m = sc.mult()).
template <uint64_t D>
void divideInto(const uint64_t* x, size_t n, uint64_t base, unsigned shift, uint64_t* out) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = ((x[i] - base) / D) >> shift;
  }
}
void packScaled(const uint64_t* x, size_t n, uint64_t base, Scale sc, uint8_t* out, size_t nb,
                std::vector<uint64_t>& tmp) {
  tmp.resize(n);
  switch (sc.dec) {
    case 1'000:
      divideInto<1'000>(x, n, base, sc.shift, tmp.data());
      break;
    case 1'000'000:
      divideInto<1'000'000>(x, n, base, sc.shift, tmp.data());
      break;
    case 1'000'000'000:
      divideInto<1'000'000'000>(x, n, base, sc.shift, tmp.data());
      break;
    default:
      divideInto<1>(x, n, base, sc.shift, tmp.data());
      break;
  }
  packPlanes(tmp.data(), n, 0, out, nb);
}

template <typename T>
void planIntColumn(const std::vector<T>& v, size_t id, const FlowColumns& c, uint16_t version,
                   const ColumnStats* known, std::vector<uint64_t>& x, std::vector<uint8_t>& buf,
                   std::vector<uint64_t>& scratch, ColumnPlan& plan) {
  constexpr size_t kW = sizeof(T);
  const bool v1 = version == 1;
  const bool v3 = version >= 3;
  const size_t rows = v.size();
  const bool is_first = id == static_cast<size_t>(Column::first_ns);
  const bool minus_first =
      id == static_cast<size_t>(Column::last_ns) || id == static_cast<size_t>(Column::received_ns);
  uint64_t mn = UINT64_MAX;
  uint64_t mx = 0;
  if (!v1) {
    if (known != nullptr) {  // the block summary has the range already
      mn = known->min;
      mx = known->max;
    } else {
      for (const T& e : v) {
        const auto u = static_cast<uint64_t>(e);
        mn = u < mn ? u : mn;
        mx = u > mx ? u : mx;
      }
    }
    if (rows > 0 && mn == mx) {
      plan.xf = kConstant;
      plan.width = static_cast<uint8_t>(kW);
      plan.data = reinterpret_cast<const uint8_t*>(v.data());
      plan.len = kW;
      return;
    }
  }
  x.resize(rows);
  uint8_t xf = 0;
  bool transformed = false;
  if (is_first) {
    // Deltas from the previous row; version 2 starts from the first value (x[0] = 0) so sorted
    // times narrow to the width of the largest gap, the first value being the base.
    uint64_t prev = v1 || rows == 0 ? 0 : static_cast<uint64_t>(v[0]);
    uint64_t widest = 0;
    for (size_t i = 0; i < rows; ++i) {
      x[i] = zigzag(v[i] - prev);
      prev = v[i];
      widest = x[i] > widest ? x[i] : widest;
    }
    xf |= kDelta;
    if (!v1 && rows > 0 && bytesFor(widest) < kW) {
      const Scale sc = v3 ? commonScale(x.data(), rows, 0) : Scale{};
      const uint64_t m = sc.mult();
      const size_t nb = bytesFor(widest / m);
      xf |= kNarrow | (nb > 1 ? kShuffle : 0);
      buf.resize(rows * nb);
      if (m > 1) {
        xf |= kScale;
        packScaled(x.data(), rows, 0, sc, buf.data(), nb, scratch);
      } else {
        packPlanes(x.data(), rows, 0, buf.data(), nb);
      }
      plan.mult = m;
      plan.xf = xf;
      plan.width = static_cast<uint8_t>(nb);
      plan.has_base = true;
      plan.base = static_cast<uint64_t>(v[0]);
      plan.data = buf.data();
      plan.len = buf.size();
      return;
    }
    if (!v1 && rows > 0) {  // deltas from 0 when they do not narrow (the version 1 rule)
      x[0] = zigzag(static_cast<uint64_t>(v[0]));
    }
    transformed = true;
  } else if (minus_first) {
    for (size_t i = 0; i < rows; ++i) {
      x[i] = zigzag(v[i] - c.first_ns[i]);
    }
    xf |= kMinusFirst;
    transformed = true;
  } else {
    for (size_t i = 0; i < rows; ++i) {
      x[i] = static_cast<uint64_t>(v[i]);
    }
  }
  size_t width = kW;
  Scale sc;
  uint64_t base = 0;
  if (!v1 && rows > 0 && !is_first) {
    if (transformed) {
      mn = UINT64_MAX;
      mx = 0;
      for (uint64_t e : x) {
        mn = e < mn ? e : mn;
        mx = e > mx ? e : mx;
      }
    }
    sc = v3 ? commonScale(x.data(), rows, mn) : Scale{};
    const uint64_t m = sc.mult();
    const size_t nb = bytesFor((mx - mn) / m);
    if (nb < kW) {
      xf |= kNarrow;
      width = nb;
      base = mn;
      if (m > 1) {
        xf |= kScale;
        plan.mult = m;
      }
    }
  }
  if (width > 1) {
    xf |= kShuffle;
  }
  buf.resize(rows * width);
  if (xf & kScale) {
    packScaled(x.data(), rows, base, sc, buf.data(), width, scratch);
  } else {
    packPlanes(x.data(), rows, base, buf.data(), width);
  }
  plan.xf = xf;
  plan.width = static_cast<uint8_t>(width);
  plan.has_base = (xf & kNarrow) != 0;
  plan.base = base;
  plan.data = buf.data();
  plan.len = buf.size();
}

void planAddrColumn(const std::vector<IpAddr>& v, uint16_t version, const ColumnStats* known,
                    std::vector<uint64_t>& x, std::vector<uint8_t>& buf, ColumnPlan& plan) {
  const bool v1 = version == 1;
  const size_t rows = v.size();
  bool all_equal = rows > 0 && !v1;
  bool all_v4 = !v1;
  if (known != nullptr && rows > 0 && !v1) {
    // From the block's byte-wise min and max: IPv4-mapped addresses are one contiguous range
    // (::ffff:0.0.0.0 .. ::ffff:255.255.255.255), so both ends inside it means every row is.
    all_equal = known->amin == known->amax;
    all_v4 = known->amin.isV4() && known->amax.isV4();
  } else {
    uint64_t first[2] = {0, 0};
    if (rows > 0) {
      std::memcpy(first, v[0].bytes.data(), 16);
    }
    for (size_t i = 0; i < rows && (all_equal || all_v4); ++i) {
      uint64_t a[2];
      std::memcpy(a, v[i].bytes.data(), 16);
      all_equal = all_equal && a[0] == first[0] && a[1] == first[1];
      all_v4 = all_v4 && v[i].isV4();
    }
  }
  if (all_equal) {
    plan.xf = kConstant;
    plan.width = 16;
    plan.data = v[0].bytes.data();
    plan.len = 16;
    return;
  }
  if (all_v4 && version >= 3) {
    // a.b.c.d as the number a<<24|b<<16|c<<8|d; narrowed to the block's range when it is
    // smaller than 2^24 (addresses of a few networks).
    x.resize(rows);
    uint64_t mn = UINT64_MAX;
    uint64_t mx = 0;
    for (size_t i = 0; i < rows; ++i) {
      x[i] = v[i].v4();
      mn = x[i] < mn ? x[i] : mn;
      mx = x[i] > mx ? x[i] : mx;
    }
    const size_t nb = bytesFor(mx - mn);
    if (nb < 4) {
      buf.resize(rows * nb);
      packPlanes(x.data(), rows, mn, buf.data(), nb);
      plan.xf = kV4Only | kNarrow | (nb > 1 ? kShuffle : 0);
      plan.width = static_cast<uint8_t>(nb);
      plan.has_base = true;
      plan.base = mn;
      plan.data = buf.data();
      plan.len = buf.size();
      return;
    }
  }
  if (all_v4) {
    buf.resize(rows * 4);
    packV4(v.data(), rows, buf.data());
    plan.xf = kV4Only | kShuffle;
    plan.width = 4;
  } else {
    buf.resize(rows * 16);
    shuffle(reinterpret_cast<const uint8_t*>(v.data()), buf.data(), rows, 16);
    plan.xf = kShuffle;
    plan.width = 16;
  }
  plan.data = buf.data();
  plan.len = buf.size();
}

template <typename T>
void planColumn(const std::vector<T>& v, size_t id, const FlowColumns& c, uint16_t version,
                const ColumnStats* known, std::vector<uint64_t>& x, std::vector<uint8_t>& buf,
                std::vector<uint64_t>& scratch, ColumnPlan& plan) {
  planIntColumn<T>(v, id, c, version, known, x, buf, scratch, plan);
}
void planColumn(const std::vector<IpAddr>& v, size_t /*id*/, const FlowColumns& /*c*/,
                uint16_t version, const ColumnStats* known, std::vector<uint64_t>& x,
                std::vector<uint8_t>& buf, std::vector<uint64_t>& /*scratch*/, ColumnPlan& plan) {
  planAddrColumn(v, version, known, x, buf, plan);
}

const std::vector<uint32_t>& nameColumn(const FlowColumns& c, size_t id) {
  switch (static_cast<Column>(id)) {
    case Column::in_ifname:
      return c.in_ifname;
    case Column::out_ifname:
      return c.out_ifname;
    case Column::bridge:
      return c.bridge;
    case Column::in_vm:
      return c.in_vm;
    default:
      return c.out_vm;
  }
}
std::vector<uint32_t>& nameColumn(FlowColumns& c, size_t id) {
  return const_cast<std::vector<uint32_t>&>(nameColumn(static_cast<const FlowColumns&>(c), id));
}

// A name column as dictionary codes (format.hpp, "Name columns"): `codes` gets one code a row and
// `dict` the stored dictionary. Blocks usually hold a few names, often one for every row (the
// summary says so: no pass over the rows then); a direct-mapped cache of recent ids keeps the
// per-row cost to a compare when they are several.
void encodeNames(const std::vector<uint32_t>& v, const ColumnStats* known,
                 std::vector<uint32_t>& codes, std::vector<uint8_t>& dict) {
  const size_t rows = v.size();
  std::vector<uint32_t> ids;  // dictionary, code c = ids[c - 1]
  codes.resize(rows);
  const bool constant =
      known != nullptr
          ? known->min == known->max
          : rows > 0 && std::all_of(v.begin(), v.end(), [&](uint32_t x) { return x == v[0]; });
  if (rows == 0) {
  } else if (constant) {
    const uint32_t id = v[0];
    if (id != 0) {
      ids.push_back(id);
    }
    std::fill(codes.begin(), codes.end(), id != 0 ? 1u : 0u);
  } else {
    constexpr size_t kCache = 64;
    std::array<uint32_t, kCache> cache_id{};
    std::array<uint32_t, kCache> cache_code{};
    std::unordered_map<uint32_t, uint32_t> more;
    for (size_t i = 0; i < rows; ++i) {
      const uint32_t id = v[i];
      if (id == 0) {
        codes[i] = 0;
        continue;
      }
      const size_t slot = id & (kCache - 1);
      if (cache_id[slot] == id) {
        codes[i] = cache_code[slot];
        continue;
      }
      auto [it, added] = more.emplace(id, static_cast<uint32_t>(ids.size() + 1));
      if (added) {
        ids.push_back(id);
      }
      cache_id[slot] = id;
      cache_code[slot] = it->second;
      codes[i] = it->second;
    }
  }
  dict.clear();
  put<uint32_t>(dict, 0);  // length, patched below
  put<uint32_t>(dict, static_cast<uint32_t>(ids.size()));
  for (uint32_t id : ids) {
    std::string_view text = nameOf(id);
    text = text.substr(0, std::min<size_t>(text.size(), 255));
    dict.push_back(static_cast<uint8_t>(text.size()));
    dict.insert(dict.end(), text.begin(), text.end());
  }
  putAt<uint32_t>(dict, 0, static_cast<uint32_t>(dict.size()));
}

}  // namespace

void BlockEncoder::encode(const FlowColumns& c, std::vector<uint8_t>& frame,
                          const BlockSummary* summary) {
  const size_t rows = c.size();
  const bool v3 = version_ >= 3;
  const size_t entry_len = v3 ? kColumnEntryV3 : kColumnEntry;
  frame.clear();
  put<uint32_t>(frame, kFrameMagic);
  put<uint16_t>(frame, kTypeFlowBlock);
  put<uint16_t>(frame, version_);
  put<uint32_t>(frame, 0);  // length, patched below
  put<uint32_t>(frame, 0);
  put<uint32_t>(frame, static_cast<uint32_t>(rows));
  put<uint16_t>(frame, static_cast<uint16_t>(kColumnCount));
  // The writer sorts blocks by first_ns, except while it is behind (see Writer).
  const bool sorted = std::is_sorted(c.first_ns.begin(), c.first_ns.end());
  uint64_t lo = 0;
  uint64_t hi = 0;
  if (sorted && rows > 0) {
    lo = c.first_ns.front();
    hi = c.first_ns.back();
  } else if (rows > 0) {
    const auto [mn, mx] = std::minmax_element(c.first_ns.begin(), c.first_ns.end());
    lo = *mn;
    hi = *mx;
  }
  put<uint8_t>(frame, sorted ? 1 : 0);
  put<uint8_t>(frame, 0);
  put<uint64_t>(frame, lo);
  put<uint64_t>(frame, hi);
  const size_t table_at = frame.size();
  frame.resize(table_at + entry_len * kColumnCount + (v3 ? 4 : 0));
  packed_.clear();
  for (size_t id = 0; id < kColumnCount; ++id) {
    ColumnPlan plan;
    const bool is_name = isNameColumn(id);
    if (is_name) {
      encodeNames(nameColumn(c, id), summary ? &summary->cols[id] : nullptr, name_codes_,
                  name_dict_);
      planColumn(name_codes_, id, c, version_, nullptr, wide_, tmp_, scratch_, plan);
    } else
      switch (id) {
#define NC_PLAN(type, name)                                                                  \
  case static_cast<size_t>(Column::name):                                                    \
    planColumn(c.name, id, c, version_, summary ? &summary->cols[id] : nullptr, wide_, tmp_, \
               scratch_, plan);                                                              \
    break;
        NC_FLOW_COLUMNS(NC_PLAN)
#undef NC_PLAN
        default:
          break;
      }
    // Version 4: the hot one-byte columns bit-packed when that halves them at least, and the hot
    // columns never zstd-compressed (format.hpp, "Encoder policy").
    const bool v4 = version_ >= 4;
    if (v4 && kHotColumn[id] && !kIsAddr[id] && plan.width == 1 && rows > 0 &&
        (plan.xf & (kConstant | kShuffle | kV4Only)) == 0 && packBits(plan.data, rows, bits_)) {
      plan.xf |= kBits;
      plan.data = bits_.data();
      plan.len = bits_.size();
    }
    const size_t raw_len = plan.len;
    const uint8_t* src = plan.data;
    size_t at = packed_.size();
    if (is_name) {
      packed_.insert(packed_.end(), name_dict_.begin(), name_dict_.end());
    }
    if (plan.has_base) {
      put<uint64_t>(packed_, plan.base);
    }
    if (plan.xf & kScale) {
      put<uint64_t>(packed_, plan.mult);
    }
    const size_t stream_at = packed_.size();
    uint8_t codec = (plan.xf & (kConstant | kBits)) ||
                            (v4 && kHotColumn[id] && (codec_ == kCodecZstd || hot_raw_))
                        ? uint8_t{kCodecNone}
                        : codec_;
    size_t enc_len = 0;
    if (codec != kCodecNone && raw_len > 0 && skip_[id] > 0) {
      --skip_[id];
      ++tries_.skipped;
      codec = kCodecNone;
    }
    if (codec == kCodecZstd && raw_len > 0) {
      packed_.resize(stream_at + ZSTD_compressBound(raw_len));
      size_t r = ZSTD_compressCCtx(zctx_, packed_.data() + stream_at, packed_.size() - stream_at,
                                   src, raw_len, level_);
      // Stored raw unless zstd saves at least a fifth (a third for the columns most queries
      // read): a raw column is read in place, and zstd decompression of a stream it barely
      // shrinks (Huffman-coded literals, ~0.5-1 ns a byte) was the largest cost of a query after
      // the aggregation (format.hpp, "Encoder policy").
      const bool keep = kHotColumn[id] ? r * 3 <= raw_len * 2 : r * 5 <= raw_len * 4;
      if (ZSTD_isError(r) || !keep) {
        codec = kCodecNone;
        skip_[id] = kSkipAfterMiss;
        ++tries_.missed;
      } else {
        enc_len = r;
      }
    } else if (codec == kCodecLz4 && raw_len > 0) {
      packed_.resize(stream_at + static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw_len))));
      int r = LZ4_compress_default(
          reinterpret_cast<const char*>(src), reinterpret_cast<char*>(packed_.data() + stream_at),
          static_cast<int>(raw_len), static_cast<int>(packed_.size() - stream_at));
      if (r <= 0 || static_cast<size_t>(r) >= raw_len) {
        codec = kCodecNone;
        skip_[id] = kSkipAfterMiss;
        ++tries_.missed;
      } else {
        enc_len = static_cast<size_t>(r);
      }
    } else {
      codec = kCodecNone;
    }
    if (codec == kCodecNone) {
      packed_.resize(stream_at + raw_len);
      if (raw_len > 0) {
        std::memcpy(packed_.data() + stream_at, src, raw_len);
      }
      enc_len = raw_len;
    }
    packed_.resize(stream_at + enc_len);
    size_t e = table_at + id * entry_len;
    frame[e] = static_cast<uint8_t>(id);
    frame[e + 1] = codec;
    frame[e + 2] = plan.xf;
    frame[e + 3] = plan.width;
    putAt<uint32_t>(frame, e + 4, static_cast<uint32_t>(packed_.size() - at));
    putAt<uint32_t>(frame, e + 8, static_cast<uint32_t>(raw_len));
    if (v3) {
      putAt<uint32_t>(frame, e + 12, crc32c(packed_.data() + at, packed_.size() - at));
    }
  }
  frame.insert(frame.end(), packed_.begin(), packed_.end());
  putAt<uint32_t>(frame, 8, static_cast<uint32_t>(frame.size() + 4));
  if (v3) {  // the table's own checksum: frame header (with the length), body head, entries
    const size_t table_end = table_at + entry_len * kColumnCount;
    putAt<uint32_t>(frame, table_end, crc32c(frame.data(), table_end));
  }
  put<uint32_t>(frame, crc32c(frame.data(), frame.size()));
}

// ---- BlockDecoder ----

BlockDecoder::BlockDecoder() : dctx_(ZSTD_createDCtx()) {}
BlockDecoder::~BlockDecoder() {
  ZSTD_freeDCtx(dctx_);
}

namespace {

// Checks one column entry against the rules of format.hpp; "" when it is consistent.
std::string checkEntry(uint16_t version, size_t id, uint8_t codec, uint8_t xf, size_t w,
                       size_t enc_len, size_t raw_len, size_t rows) {
  const uint8_t known = version == 1   ? kTransformsV1
                        : version == 2 ? kTransformsV2
                        : version == 3 ? kTransformsV3
                                       : kTransformsV4;
  if ((xf & ~known) != 0) {
    return fmt::format("column {}: unknown transform bits {:#04x}", id, xf & ~known);
  }
  if (codec != kCodecNone && codec != kCodecZstd && codec != kCodecLz4) {
    return fmt::format("column {}: unknown codec {}", id, codec);
  }
  const size_t full = kWidth[id];
  if (xf & kConstant) {
    if (xf != kConstant || codec != kCodecNone || w != full || raw_len != w || enc_len != w) {
      return fmt::format("column {}: bad constant column", id);
    }
    return "";
  }
  if ((xf & kV4Only) &&
      (!kIsAddr[id] || (xf & (kDelta | kMinusFirst | kScale)) ||
       ((xf & kNarrow) ? version < 3 || w == 0 || w >= 4 || enc_len < 8 : w != 4))) {
    return fmt::format("column {}: bad v4-only column", id);
  }
  if ((xf & kNarrow) && ((kIsAddr[id] && !(xf & kV4Only)) || w == 0 || w >= full ||
                         enc_len < ((xf & kScale) ? 16u : 8u))) {
    return fmt::format("column {}: bad narrowed column", id);
  }
  if ((xf & kScale) && !(xf & kNarrow)) {
    return fmt::format("column {}: bad scaled column", id);
  }
  if (!(xf & (kV4Only | kNarrow)) && w != full) {
    return fmt::format("column {}: inconsistent width or length", id);
  }
  if ((xf & (kDelta | kMinusFirst)) &&
      (full != 8 || kIsAddr[id] || (xf & kDelta && xf & kMinusFirst))) {
    return fmt::format("column {}: bad transform", id);
  }
  if (xf & kBits) {  // the exact length is checked against b and k when the column is decoded
    if (kIsAddr[id] || w != 1 || (xf & (kShuffle | kConstant | kV4Only)) || raw_len < 2 ||
        raw_len > 2 + 16 + (rows * 4 + 7) / 8) {
      return fmt::format("column {}: bad bit-packed column", id);
    }
    return "";
  }
  if (raw_len != rows * w) {
    return fmt::format("column {}: inconsistent width or length", id);
  }
  return "";
}

// Undoes kBits: one byte a row into `out` (at least `rows` bytes; a little more, rounded to whole
// code bytes). An empty string when the stream is consistent, else why not.
template <typename W>
void expandCodes(const uint8_t* codes, size_t nbytes, const std::array<W, 256>& tab, uint8_t* out) {
  for (size_t i = 0; i < nbytes; ++i) {
    std::memcpy(out + i * sizeof(W), &tab[codes[i]], sizeof(W));
  }
}
template <typename W>
void codeTable(unsigned b, const uint8_t* map, std::array<W, 256>& tab) {
  constexpr unsigned kPer = sizeof(W);
  for (unsigned x = 0; x < 256; ++x) {
    W v = 0;
    for (unsigned j = 0; j < kPer; ++j) {
      v |= static_cast<W>(W{map[(x >> (j * b)) & ((1u << b) - 1)]} << (8 * j));
    }
    tab[x] = v;
  }
}
std::string expandBits(const uint8_t* s, size_t len, size_t rows, std::vector<uint8_t>& out) {
  const unsigned b = s[0];
  const size_t k = s[1];
  if ((b != 1 && b != 2 && b != 4) || k > (1u << b) || len != 2 + k + (rows * b + 7) / 8) {
    return "bad bit-packed column";
  }
  const uint8_t* codes = s + 2 + k;
  const size_t nbytes = (rows * b + 7) / 8;
  if (k != 0 && k < (1u << b)) {  // codes past the dictionary
    std::array<uint8_t, 256> bad{};
    for (unsigned x = 0; x < 256; ++x) {
      for (unsigned j = 0; j < 8 / b; ++j) {
        bad[x] = static_cast<uint8_t>(bad[x] | (((x >> (j * b)) & ((1u << b) - 1)) >= k));
      }
    }
    uint8_t any = 0;
    for (size_t i = 0; i < nbytes; ++i) {
      any |= bad[codes[i]];
    }
    if (any != 0) {
      return "bit-packed code past its dictionary";
    }
  }
  uint8_t map[16];
  for (unsigned c = 0; c < (1u << b); ++c) {
    map[c] = k == 0 ? static_cast<uint8_t>(c) : c < k ? s[2 + c] : 0;
  }
  out.resize(nbytes * (8 / b));
  if (b == 1) {
    std::array<uint64_t, 256> tab;
    codeTable(b, map, tab);
    expandCodes(codes, nbytes, tab, out.data());
  } else if (b == 2) {
    std::array<uint32_t, 256> tab;
    codeTable(b, map, tab);
    expandCodes(codes, nbytes, tab, out.data());
  } else {
    std::array<uint16_t, 256> tab;
    codeTable(b, map, tab);
    expandCodes(codes, nbytes, tab, out.data());
  }
  return "";
}

// `sel` (late materialization): only rows sel[0..k) are decoded, into out[0..k).
template <typename T>
void decodeIntColumn(std::vector<T>& out, const uint8_t* data, size_t rows, size_t w, uint8_t xf,
                     uint64_t base, uint64_t mult, const std::vector<uint64_t>& first,
                     const uint32_t* sel, size_t k) {
  out.resize(sel != nullptr ? k : rows);
  if (xf & kConstant) {
    T v;
    std::memcpy(&v, data, sizeof(T));
    std::fill(out.begin(), out.end(), v);
    return;
  }
  // Narrowed deltas are stored as they are and start from the base (format.hpp); without
  // kNarrow, base is 0.
  const bool planar = (xf & kShuffle) != 0;
  if constexpr (sizeof(T) == 8) {
    if (xf & kDelta) {  // a running sum: every row, then the selected ones
      const uint64_t from = (xf & kNarrow) ? base : 0;
      if (sel == nullptr) {
        return unpackInts<Undo::kPrefix, T>(data, rows, w, planar, from, mult, nullptr, out.data());
      }
      thread_local std::vector<T> all;
      all.resize(rows);
      unpackInts<Undo::kPrefix, T>(data, rows, w, planar, from, mult, nullptr, all.data());
      for (size_t j = 0; j < k; ++j) {
        out[j] = all[sel[j]];
      }
      return;
    }
    if (xf & kMinusFirst) {
      return unpackInts<Undo::kPlusFirst, T>(data, rows, w, planar, base, mult, first.data(),
                                             out.data(), sel, k);
    }
  }
  unpackInts<Undo::kPlain, T>(data, rows, w, planar, base, mult, nullptr, out.data(), sel, k);
}

void decodeAddrColumn(std::vector<IpAddr>& out, const uint8_t* data, size_t rows, size_t w,
                      uint8_t xf, uint64_t base, const uint32_t* sel, size_t k) {
  out.resize(sel != nullptr ? k : rows);
  const size_t m = out.size();
  if ((xf & kV4Only) && (xf & kNarrow)) {
    unpackV4Narrow(data, rows, w, (xf & kShuffle) != 0, base, out.data(), sel, k);
  } else if (xf & kConstant) {
    IpAddr v;
    std::memcpy(v.bytes.data(), data, 16);
    std::fill(out.begin(), out.end(), v);
  } else if (xf & kV4Only) {
    unpackV4(data, rows, (xf & kShuffle) != 0, out.data(), sel, k);
  } else if (xf & kShuffle) {
    if (sel == nullptr) {
      unshuffle(data, reinterpret_cast<uint8_t*>(out.data()), rows, 16);
    } else {
      for (size_t j = 0; j < m; ++j) {
        for (size_t b = 0; b < 16; ++b) {
          out[j].bytes[b] = data[b * rows + sel[j]];
        }
      }
    }
  } else if (sel != nullptr) {
    for (size_t j = 0; j < m; ++j) {
      std::memcpy(out[j].bytes.data(), data + size_t{sel[j]} * 16, 16);
    }
  } else if (rows > 0) {
    std::memcpy(out.data(), data, rows * 16);
  }
}

template <typename T>
void decodeColumn(std::vector<T>& out, const uint8_t* data, size_t rows, size_t w, uint8_t xf,
                  uint64_t base, uint64_t mult, const std::vector<uint64_t>& first,
                  const uint32_t* sel, size_t k) {
  decodeIntColumn<T>(out, data, rows, w, xf, base, mult, first, sel, k);
}
void decodeColumn(std::vector<IpAddr>& out, const uint8_t* data, size_t rows, size_t w, uint8_t xf,
                  uint64_t base, uint64_t /*mult*/, const std::vector<uint64_t>& /*first*/,
                  const uint32_t* sel, size_t k) {
  decodeAddrColumn(out, data, rows, w, xf, base, sel, k);
}

// Keeps rows sel[0..k) of a decoded column, in that order.
// Reads a name column's dictionary (`dict`, `len` bytes, its length already checked) into ids of
// this process's NameTable and replaces the codes in `col` by them. False when the dictionary is
// malformed or a code is past it.
bool namesToIds(const uint8_t* dict, size_t len, std::vector<uint32_t>& col,
                std::vector<uint32_t>& ids) {
  const uint32_t k = get<uint32_t>(dict + 4);
  if (k > (len - 8)) {  // every entry takes a byte at least
    return false;
  }
  ids.assign(1, 0);
  size_t at = 8;
  for (uint32_t i = 0; i < k; ++i) {
    if (at >= len || dict[at] > len - at - 1) {
      return false;
    }
    const size_t n = dict[at];
    ids.push_back(NameTable::global().intern(
        std::string_view(reinterpret_cast<const char*>(dict + at + 1), n)));
    at += 1 + n;
  }
  if (at != len) {
    return false;
  }
  const uint32_t limit = k;
  uint32_t bad = 0;
  for (uint32_t& v : col) {
    bad |= v > limit ? 1u : 0u;
    v = ids[v <= limit ? v : 0];
  }
  return bad == 0;
}

template <typename T>
void keepRows(std::vector<T>& v, const uint32_t* sel, size_t k) {
  for (size_t j = 0; j < k; ++j) {
    v[j] = v[sel[j]];  // sel ascending: j <= sel[j], so nothing is overwritten before it is read
  }
  v.resize(k);
}

}  // namespace

bool BlockDecoder::decode(std::span<const uint8_t> f, FlowColumns& out, std::string* why,
                          const ColumnSet& columns) {
  return decodeImpl(f, out, why, columns, ColumnSet{}, {});
}

bool BlockDecoder::decodeRows(std::span<const uint8_t> f, FlowColumns& out, std::string* why,
                              const ColumnSet& decoded, const ColumnSet& more,
                              std::span<const uint32_t> sel) {
  ColumnSet have = decoded;
  addColumn(have, Column::first_ns);
  for (size_t j = 1; j < sel.size(); ++j) {
    if (sel[j] <= sel[j - 1]) {
      setWhy(why, "row selection not ascending");
      return false;
    }
  }
  if (!sel.empty() && sel.back() >= out.size()) {
    setWhy(why, "row selection past the block");
    return false;
  }
  return decodeImpl(f, out, why, more | have, have, sel);
}

bool BlockDecoder::decodeImpl(std::span<const uint8_t> f, FlowColumns& out, std::string* why,
                              const ColumnSet& columns, const ColumnSet& have,
                              std::span<const uint32_t> sel_rows) {
  // `have`: columns `out` holds already, every row (decodeRows); with sel_rows the others are
  // decoded only at those rows, and `have` kept at them, once the new ones are done (a
  // kMinusFirst column needs every first_ns).
  const bool late = have.any();
  static const uint32_t kNoRow = 0;  // an empty selection still selects (none): not nullptr
  const size_t nsel = sel_rows.size();
  // Half the rows or more: decoding whole columns and keeping the rows is faster than picking
  // the rows one by one.
  const bool dense = late && nsel * 2 >= out.first_ns.size();
  const uint32_t* sel = !late || dense ? nullptr : sel_rows.empty() ? &kNoRow : sel_rows.data();
  ColumnSet keep = have;  // columns decoded whole, kept at sel_rows at the end
  FrameHeader fh;
  if (!decodeFrameHeader(f, fh, why)) {
    return false;
  }
  if (fh.type != kTypeFlowBlock || !isKnownFlowBlockVersion(fh.version) || fh.length != f.size()) {
    setWhy(why, "not a version 1 to 4 flow block");
    return false;
  }
  FlowBlockInfo info;
  if (!peekFlowBlock(f, info, why)) {
    return false;
  }
  const uint8_t* body = f.data() + kFrameHeaderSize;
  const size_t body_len = f.size() - kFrameOverhead;
  const size_t rows = info.rows;
  const size_t ncols = get<uint16_t>(body + 4);
  const bool v3 = fh.version >= 3;
  const size_t entry_len = v3 ? kColumnEntryV3 : kColumnEntry;
  const size_t table_len = ncols * entry_len + (v3 ? 4 : 0);
  if (kBlockBodyHead + table_len > body_len) {
    setWhy(why, "column table past the end of the block");
    return false;
  }
  if (v3) {
    const size_t table_end = kFrameHeaderSize + kBlockBodyHead + ncols * entry_len;
    if (get<uint32_t>(f.data() + table_end) != crc32c(f.data(), table_end)) {
      setWhy(why, "block checksum mismatch (column table)");
      return false;
    }
  }
  ColumnSet want = columns;
  addColumn(want, Column::first_ns);
  size_t data_at = kBlockBodyHead + table_len;
  std::array<bool, kColumnCount> seen{};
  bool first_done = false;  // first_ns decoded (kMinusFirst columns need it)
  for (size_t k = 0; k < ncols; ++k) {
    const uint8_t* e = body + kBlockBodyHead + k * entry_len;
    const size_t id = e[0];
    const uint8_t codec = e[1];
    const uint8_t xf = e[2];
    const size_t w = e[3];
    size_t enc_len = get<uint32_t>(e + 4);
    const size_t raw_len = get<uint32_t>(e + 8);
    if (enc_len > body_len - data_at) {
      setWhy(why, fmt::format("column {} past the end of the block", id));
      return false;
    }
    const uint8_t* src = body + data_at;
    const uint8_t* const stored = src;
    const size_t stored_len = enc_len;
    data_at += enc_len;
    if (id >= kColumnCount) {
      continue;  // a column added by a newer writer
    }
    if (seen[id]) {
      setWhy(why, fmt::format("column {}: stored twice", id));
      return false;
    }
    seen[id] = true;
    size_t dict_len = 0;
    if (isNameColumn(id)) {  // the dictionary comes first (format.hpp, "Name columns")
      if (!want.test(id) || have.test(id)) {
        continue;  // its bytes may not have been read (Reader::scan reads wanted columns only)
      }
      if (enc_len < 8 || (dict_len = get<uint32_t>(src)) < 8 || dict_len > enc_len) {
        setWhy(why, fmt::format("column {}: bad name dictionary", id));
        return false;
      }
      src += dict_len;
      enc_len -= dict_len;
    }
    if (std::string bad = checkEntry(fh.version, id, codec, xf, w, enc_len, raw_len, rows);
        !bad.empty()) {
      setWhy(why, std::move(bad));
      return false;
    }
    if (!want.test(id) || have.test(id)) {
      continue;  // projected out (left empty below), or decoded before (decodeRows)
    }
    if (dense) {
      keep.set(id);
    }
    if ((xf & kMinusFirst) && !first_done && !have.test(static_cast<size_t>(Column::first_ns))) {
      setWhy(why, fmt::format("column {}: bad transform (before first_ns)", id));
      return false;
    }
    if (v3 && get<uint32_t>(e + 12) != crc32c(stored, stored_len)) {
      setWhy(why, fmt::format("block checksum mismatch (column {})", id));
      return false;
    }
    uint64_t base = 0;
    uint64_t mult = 1;
    if (xf & kNarrow) {
      base = get<uint64_t>(src);
      src += 8;
      enc_len -= 8;
    }
    if (xf & kScale) {
      mult = get<uint64_t>(src);
      src += 8;
      enc_len -= 8;
      if (mult < 2) {
        setWhy(why, fmt::format("column {}: bad scale {}", id, mult));
        return false;
      }
    }
    const uint8_t* data = src;
    if (codec == kCodecNone) {
      if (enc_len != raw_len) {
        setWhy(why, fmt::format("column {}: stored length mismatch", id));
        return false;
      }
    } else if (codec == kCodecZstd) {
      raw_.resize(raw_len);
      size_t r = ZSTD_decompressDCtx(dctx_, raw_.data(), raw_len, src, enc_len);
      if (ZSTD_isError(r) || r != raw_len) {
        setWhy(why, fmt::format("column {}: zstd: {}", id,
                                ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short output"));
        return false;
      }
      data = raw_.data();
    } else {
      raw_.resize(raw_len);
      int r = LZ4_decompress_safe(reinterpret_cast<const char*>(src),
                                  reinterpret_cast<char*>(raw_.data()), static_cast<int>(enc_len),
                                  static_cast<int>(raw_len));
      if (r < 0 || static_cast<size_t>(r) != raw_len) {
        setWhy(why, fmt::format("column {}: lz4 decompression failed", id));
        return false;
      }
      data = raw_.data();
    }
    if (xf & kBits) {
      if (std::string bad = expandBits(data, raw_len, rows, codes_); !bad.empty()) {
        setWhy(why, fmt::format("column {}: {}", id, bad));
        return false;
      }
      data = codes_.data();
    }
    const uint8_t undo = xf & static_cast<uint8_t>(~kBits);
    switch (id) {
#define NC_DECODE(type, name)                                                         \
  case static_cast<size_t>(Column::name):                                             \
    decodeColumn(out.name, data, rows, w, undo, base, mult, out.first_ns, sel, nsel); \
    break;
      NC_FLOW_COLUMNS(NC_DECODE)
#undef NC_DECODE
      default:
        break;
    }
    if (dict_len != 0 && !namesToIds(stored, dict_len, nameColumn(out, id), name_ids_)) {
      setWhy(why, fmt::format("column {}: bad name dictionary or code", id));
      return false;
    }
    first_done = first_done || id == static_cast<size_t>(Column::first_ns);
  }
  for (size_t id = 0; id < kColumnCount; ++id) {
    if (!want.test(id)) {
      clearColumn(out, id);
    } else if (!seen[id]) {
      fillDefault(out, id, late ? nsel : rows);
    } else if (late && keep.test(id)) {
      switch (id) {
#define NC_KEEP(type, name)                    \
  case static_cast<size_t>(Column::name):      \
    keepRows(out.name, sel_rows.data(), nsel); \
    break;
        NC_FLOW_COLUMNS(NC_KEEP)
#undef NC_KEEP
        default:
          break;
      }
    }
  }
  return true;
}

bool columnRanges(std::span<const uint8_t> head, uint32_t frame_length, const ColumnSet& columns,
                  uint32_t merge_gap, std::vector<ByteRange>& out) {
  out.clear();
  FrameHeader fh;
  if (!decodeFrameHeader(head, fh, nullptr) || fh.type != kTypeFlowBlock ||
      !checksumsPerColumn(fh.version) || !isKnownFlowBlockVersion(fh.version) ||
      fh.length != frame_length || head.size() < kFrameHeaderSize + kBlockBodyHead) {
    return false;
  }
  const uint8_t* body = head.data() + kFrameHeaderSize;
  const size_t ncols = get<uint16_t>(body + 4);
  const size_t data_at = kFrameHeaderSize + kBlockBodyHead + ncols * kColumnEntryV3 + 4;
  if (data_at > head.size() || data_at > frame_length) {
    return false;
  }
  ColumnSet want = columns;
  addColumn(want, Column::first_ns);
  uint64_t at = data_at;
  const uint64_t end = frame_length - 4;  // the frame checksum is not read
  for (size_t k = 0; k < ncols; ++k) {
    const uint8_t* e = body + kBlockBodyHead + k * kColumnEntryV3;
    const uint64_t len = get<uint32_t>(e + 4);
    if (at + len > end) {
      return false;
    }
    if (e[0] < kColumnCount && want.test(e[0]) && len > 0) {
      if (!out.empty() && at - (out.back().offset + out.back().length) < merge_gap) {
        out.back().length = static_cast<uint32_t>(at + len - out.back().offset);
      } else {
        out.push_back({static_cast<uint32_t>(at), static_cast<uint32_t>(len)});
      }
    }
    at += len;
  }
  return true;
}

// ---- footer and trailer ----

namespace {
size_t entryLength(size_t columns) {
  size_t n = 16;
  for (size_t id = 0; id < columns; ++id) {
    n += kIsAddr[id] ? 32 : 16;
  }
  return n;
}
}  // namespace

std::vector<uint8_t> encodeFooterAndTrailer(const Footer& f, uint64_t offset) {
  std::vector<uint8_t> out;
  const size_t entry_len = entryLength(kColumnCount);
  out.reserve(kFrameOverhead + 32 + f.blocks.size() * entry_len + kTrailerSize);
  put<uint32_t>(out, kFrameMagic);
  put<uint16_t>(out, kTypeFooter);
  put<uint16_t>(out, kFooterVersion);
  put<uint32_t>(out, 0);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, f.min_first_ns);
  put<uint64_t>(out, f.max_first_ns);
  put<uint64_t>(out, f.rows);
  put<uint32_t>(out, static_cast<uint32_t>(f.blocks.size()));
  put<uint16_t>(out, static_cast<uint16_t>(kColumnCount));
  put<uint16_t>(out, static_cast<uint16_t>(entry_len));
  for (const auto& b : f.blocks) {
    put<uint64_t>(out, b.offset);
    put<uint32_t>(out, b.length);
    put<uint32_t>(out, b.summary.rows);
    for (size_t id = 0; id < kColumnCount; ++id) {
      const ColumnStats& s = b.summary.cols[id];
      if (kIsAddr[id]) {
        out.insert(out.end(), s.amin.bytes.begin(), s.amin.bytes.end());
        out.insert(out.end(), s.amax.bytes.begin(), s.amax.bytes.end());
      } else if (isNameColumn(id)) {  // ids of this process: "any value" on disk
        put<uint64_t>(out, 0);
        put<uint64_t>(out, UINT64_MAX);
      } else {
        put<uint64_t>(out, s.min);
        put<uint64_t>(out, s.max);
      }
    }
  }
  const auto frame_len = static_cast<uint32_t>(out.size() + 4);
  putAt<uint32_t>(out, 8, frame_len);
  put<uint32_t>(out, crc32c(out.data(), out.size()));
  const size_t t = out.size();
  put<uint64_t>(out, offset);
  put<uint32_t>(out, frame_len);
  put<uint32_t>(out, crc32c(out.data() + t, 12));
  out.insert(out.end(), kTrailerMagic, kTrailerMagic + 8);
  return out;
}

bool decodeTrailer(std::span<const uint8_t> b, Trailer& t, std::string* why) {
  if (b.size() != kTrailerSize || std::memcmp(b.data() + 16, kTrailerMagic, 8) != 0) {
    setWhy(why, "no trailer (segment truncated or not sealed)");
    return false;
  }
  if (get<uint32_t>(b.data() + 12) != crc32c(b.data(), 12)) {
    setWhy(why, "trailer checksum mismatch");
    return false;
  }
  t.footer_offset = get<uint64_t>(b.data());
  t.footer_length = get<uint32_t>(b.data() + 8);
  return true;
}

bool decodeFooter(std::span<const uint8_t> f, Footer& out, std::string* why) {
  FrameHeader fh;
  if (!decodeFrameHeader(f, fh, why)) {
    return false;
  }
  if (fh.length != f.size() || !verifyFrame(f)) {
    setWhy(why, "footer checksum mismatch");
    return false;
  }
  if (fh.type != kTypeFooter || fh.version != kFooterVersion) {
    setWhy(why, fmt::format("unknown footer type {} version {}", fh.type, fh.version));
    return false;
  }
  const uint8_t* body = f.data() + kFrameHeaderSize;
  const size_t body_len = f.size() - kFrameOverhead;
  if (body_len < 32) {
    setWhy(why, "footer too short");
    return false;
  }
  out.min_first_ns = get<uint64_t>(body);
  out.max_first_ns = get<uint64_t>(body + 8);
  out.rows = get<uint64_t>(body + 16);
  const size_t count = get<uint32_t>(body + 24);
  const size_t cols = get<uint16_t>(body + 28);
  const size_t entry_len = get<uint16_t>(body + 30);
  const size_t known = std::min(cols, kColumnCount);
  if (entry_len < entryLength(known) || count * entry_len > body_len - 32) {
    setWhy(why, "footer index inconsistent");
    return false;
  }
  out.blocks.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* e = body + 32 + i * entry_len;
    IndexEntry& ie = out.blocks[i];
    ie.offset = get<uint64_t>(e);
    ie.length = get<uint32_t>(e + 8);
    ie.summary.rows = get<uint32_t>(e + 12);
    const uint8_t* p = e + 16;
    for (size_t id = 0; id < kColumnCount; ++id) {
      ColumnStats& s = ie.summary.cols[id];
      if (id >= known) {
        s.min = 0;
        s.max = UINT64_MAX;
        s.amin = IpAddr{};
        s.amax.bytes.fill(0xff);
      } else if (kIsAddr[id]) {
        std::memcpy(s.amin.bytes.data(), p, 16);
        std::memcpy(s.amax.bytes.data(), p + 16, 16);
        p += 32;
      } else {
        s.min = get<uint64_t>(p);
        s.max = get<uint64_t>(p + 8);
        p += 16;
      }
    }
  }
  return true;
}

std::string segmentStem(uint64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  return fmt::format("flows-{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

}  // namespace nc::store::format
