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

#include <fmt/format.h>

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

__attribute__((target("sse4.2"))) uint32_t crcHw(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = ~crc & 0xffffffffu;
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

const uint8_t* columnData(const FlowColumns& c, size_t id) {
  switch (id) {
#define NC_DATA(type, name)               \
  case static_cast<size_t>(Column::name): \
    return reinterpret_cast<const uint8_t*>(c.name.data());
    NC_FLOW_COLUMNS(NC_DATA)
#undef NC_DATA
    default:
      return nullptr;
  }
}

uint8_t* resizeColumn(FlowColumns& c, size_t id, size_t rows) {
  switch (id) {
#define NC_RESIZE(type, name)             \
  case static_cast<size_t>(Column::name): \
    c.name.resize(rows);                  \
    return reinterpret_cast<uint8_t*>(c.name.data());
    NC_FLOW_COLUMNS(NC_RESIZE)
#undef NC_RESIZE
    default:
      return nullptr;
  }
}

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

uint8_t transformFor(size_t id) {
  if (id == static_cast<size_t>(Column::first_ns)) {
    return kDelta | kShuffle;
  }
  if (id == static_cast<size_t>(Column::last_ns) ||
      id == static_cast<size_t>(Column::received_ns)) {
    return kMinusFirst | kShuffle;
  }
  return kWidth[id] > 1 ? kShuffle : 0;
}

uint64_t zigzag(uint64_t d) {
  return (d << 1) ^ static_cast<uint64_t>(static_cast<int64_t>(d) >> 63);
}
uint64_t unzigzag(uint64_t z) {
  return (z >> 1) ^ (~(z & 1) + 1);
}

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

template <typename T>
void gather(std::vector<T>& v, const std::vector<uint32_t>& perm) {
  std::vector<T> out(v.size());
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
constexpr size_t kColumnEntry = 12;

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

void sortByFirstNs(FlowColumns& c) {
  if (std::is_sorted(c.first_ns.begin(), c.first_ns.end())) {
    return;
  }
  std::vector<uint32_t> perm(c.size());
  std::iota(perm.begin(), perm.end(), 0u);
  std::stable_sort(perm.begin(), perm.end(),
                   [&](uint32_t a, uint32_t b) { return c.first_ns[a] < c.first_ns[b]; });
#define NC_GATHER(type, name) gather(c.name, perm);
  NC_FLOW_COLUMNS(NC_GATHER)
#undef NC_GATHER
}

// ---- BlockEncoder ----

BlockEncoder::BlockEncoder(StoreOptions::Compression compression, int zstd_level)
    : codec_(compression == StoreOptions::Compression::kZstd  ? kCodecZstd
             : compression == StoreOptions::Compression::kLz4 ? kCodecLz4
                                                              : kCodecNone),
      level_(zstd_level) {
  if (codec_ == kCodecZstd) {
    zctx_ = ZSTD_createCCtx();
  }
}

BlockEncoder::~BlockEncoder() {
  ZSTD_freeCCtx(zctx_);
}

void BlockEncoder::encode(const FlowColumns& c, std::vector<uint8_t>& frame) {
  const size_t rows = c.size();
  frame.clear();
  put<uint32_t>(frame, kFrameMagic);
  put<uint16_t>(frame, kTypeFlowBlock);
  put<uint16_t>(frame, kFlowBlockVersion);
  put<uint32_t>(frame, 0);  // length, patched below
  put<uint32_t>(frame, 0);
  put<uint32_t>(frame, static_cast<uint32_t>(rows));
  put<uint16_t>(frame, static_cast<uint16_t>(kColumnCount));
  put<uint8_t>(frame, 1);  // sorted by first_ns
  put<uint8_t>(frame, 0);
  put<uint64_t>(frame, rows ? c.first_ns.front() : 0);
  put<uint64_t>(frame, rows ? c.first_ns.back() : 0);
  const size_t table_at = frame.size();
  frame.resize(table_at + kColumnEntry * kColumnCount);
  packed_.clear();
  for (size_t id = 0; id < kColumnCount; ++id) {
    const size_t w = kWidth[id];
    const size_t raw_len = rows * w;
    const uint8_t xf = transformFor(id);
    raw_.resize(raw_len);
    if (raw_len > 0) {
      std::memcpy(raw_.data(), columnData(c, id), raw_len);
    }
    if (xf & (kDelta | kMinusFirst)) {
      auto* v = reinterpret_cast<uint64_t*>(raw_.data());
      uint64_t prev = 0;
      for (size_t i = 0; i < rows; ++i) {
        uint64_t x = v[i];
        uint64_t base = (xf & kDelta) ? prev : c.first_ns[i];
        v[i] = zigzag(x - base);
        prev = x;
      }
    }
    const uint8_t* src = raw_.data();
    if (xf & kShuffle) {
      tmp_.resize(raw_len);
      shuffle(raw_.data(), tmp_.data(), rows, w);
      src = tmp_.data();
    }
    uint8_t codec = codec_;
    size_t at = packed_.size();
    size_t enc_len = 0;
    if (codec == kCodecZstd && raw_len > 0) {
      packed_.resize(at + ZSTD_compressBound(raw_len));
      size_t r =
          ZSTD_compressCCtx(zctx_, packed_.data() + at, packed_.size() - at, src, raw_len, level_);
      if (ZSTD_isError(r) || r >= raw_len) {
        codec = kCodecNone;
      } else {
        enc_len = r;
      }
    } else if (codec == kCodecLz4 && raw_len > 0) {
      packed_.resize(at + static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw_len))));
      int r = LZ4_compress_default(
          reinterpret_cast<const char*>(src), reinterpret_cast<char*>(packed_.data() + at),
          static_cast<int>(raw_len), static_cast<int>(packed_.size() - at));
      if (r <= 0 || static_cast<size_t>(r) >= raw_len) {
        codec = kCodecNone;
      } else {
        enc_len = static_cast<size_t>(r);
      }
    } else {
      codec = kCodecNone;
    }
    if (codec == kCodecNone) {
      packed_.resize(at + raw_len);
      if (raw_len > 0) {
        std::memcpy(packed_.data() + at, src, raw_len);
      }
      enc_len = raw_len;
    }
    packed_.resize(at + enc_len);
    size_t e = table_at + id * kColumnEntry;
    frame[e] = static_cast<uint8_t>(id);
    frame[e + 1] = codec;
    frame[e + 2] = xf;
    frame[e + 3] = static_cast<uint8_t>(w);
    putAt<uint32_t>(frame, e + 4, static_cast<uint32_t>(enc_len));
    putAt<uint32_t>(frame, e + 8, static_cast<uint32_t>(raw_len));
  }
  frame.insert(frame.end(), packed_.begin(), packed_.end());
  putAt<uint32_t>(frame, 8, static_cast<uint32_t>(frame.size() + 4));
  put<uint32_t>(frame, crc32c(frame.data(), frame.size()));
}

// ---- BlockDecoder ----

BlockDecoder::BlockDecoder() : dctx_(ZSTD_createDCtx()) {}
BlockDecoder::~BlockDecoder() {
  ZSTD_freeDCtx(dctx_);
}

bool BlockDecoder::decode(std::span<const uint8_t> f, FlowColumns& out, std::string* why) {
  FrameHeader fh;
  if (!decodeFrameHeader(f, fh, why)) {
    return false;
  }
  if (fh.type != kTypeFlowBlock || fh.version != kFlowBlockVersion || fh.length != f.size()) {
    setWhy(why, "not a version 1 flow block");
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
  if (kBlockBodyHead + ncols * kColumnEntry > body_len) {
    setWhy(why, "column table past the end of the block");
    return false;
  }
  size_t data_at = kBlockBodyHead + ncols * kColumnEntry;
  std::array<bool, kColumnCount> seen{};
  for (size_t k = 0; k < ncols; ++k) {
    const uint8_t* e = body + kBlockBodyHead + k * kColumnEntry;
    const size_t id = e[0];
    const uint8_t codec = e[1];
    const uint8_t xf = e[2];
    const size_t w = e[3];
    const size_t enc_len = get<uint32_t>(e + 4);
    const size_t raw_len = get<uint32_t>(e + 8);
    if (enc_len > body_len - data_at) {
      setWhy(why, fmt::format("column {} past the end of the block", id));
      return false;
    }
    const uint8_t* src = body + data_at;
    data_at += enc_len;
    if (id >= kColumnCount) {
      continue;  // a column added by a newer writer
    }
    if (seen[id] || w != kWidth[id] || raw_len != rows * w) {
      setWhy(why, fmt::format("column {}: inconsistent width or length", id));
      return false;
    }
    seen[id] = true;
    raw_.resize(raw_len);
    if (codec == kCodecNone) {
      if (enc_len != raw_len) {
        setWhy(why, fmt::format("column {}: stored length mismatch", id));
        return false;
      }
      if (raw_len > 0) {
        std::memcpy(raw_.data(), src, raw_len);
      }
    } else if (codec == kCodecZstd) {
      size_t r = ZSTD_decompressDCtx(dctx_, raw_.data(), raw_len, src, enc_len);
      if (ZSTD_isError(r) || r != raw_len) {
        setWhy(why, fmt::format("column {}: zstd: {}", id,
                                ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short output"));
        return false;
      }
    } else if (codec == kCodecLz4) {
      int r = LZ4_decompress_safe(reinterpret_cast<const char*>(src),
                                  reinterpret_cast<char*>(raw_.data()), static_cast<int>(enc_len),
                                  static_cast<int>(raw_len));
      if (r < 0 || static_cast<size_t>(r) != raw_len) {
        setWhy(why, fmt::format("column {}: lz4 decompression failed", id));
        return false;
      }
    } else {
      setWhy(why, fmt::format("column {}: unknown codec {}", id, codec));
      return false;
    }
    uint8_t* dst = resizeColumn(out, id, rows);
    if (xf & kShuffle) {
      unshuffle(raw_.data(), dst, rows, w);
    } else if (raw_len > 0) {
      std::memcpy(dst, raw_.data(), raw_len);
    }
    if (xf & (kDelta | kMinusFirst)) {
      if (w != 8 || ((xf & kMinusFirst) && !seen[static_cast<size_t>(Column::first_ns)])) {
        setWhy(why, fmt::format("column {}: bad transform", id));
        return false;
      }
      auto* v = reinterpret_cast<uint64_t*>(dst);
      uint64_t prev = 0;
      for (size_t i = 0; i < rows; ++i) {
        uint64_t base = (xf & kDelta) ? prev : out.first_ns[i];
        v[i] = base + unzigzag(v[i]);
        prev = v[i];
      }
    }
  }
  for (size_t id = 0; id < kColumnCount; ++id) {
    if (!seen[id]) {
      fillDefault(out, id, rows);
    }
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
