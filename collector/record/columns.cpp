#include "collector/record/columns.hpp"

#include <algorithm>
#include <cstring>

namespace nc {
namespace {

template <typename T>
T toColumn(T v) {
  return v;
}
inline uint8_t toColumn(IfKind v) {
  return static_cast<uint8_t>(v);
}
inline uint8_t toColumn(FlowProto v) {
  return static_cast<uint8_t>(v);
}

template <typename Field, typename Col>
void fromColumn(Field& out, const Col& v) {
  out = static_cast<Field>(v);
}

}  // namespace

void FlowColumns::clear() {
#define NC_CLEAR(type, name) name.clear();
  NC_FLOW_COLUMNS(NC_CLEAR)
#undef NC_CLEAR
}

void FlowColumns::reserve(size_t n) {
#define NC_RESERVE(type, name) name.reserve(n);
  NC_FLOW_COLUMNS(NC_RESERVE)
#undef NC_RESERVE
}

void FlowColumns::append(const FlowRecord& r) {
#define NC_APPEND(type, name) name.push_back(toColumn(r.name));
  NC_FLOW_COLUMNS(NC_APPEND)
#undef NC_APPEND
}

void FlowColumns::append(std::span<const FlowRecord> rs) {
  for (const auto& r : rs) {
    append(r);
  }
}

namespace {

// Sizes every column of c to n rows.
void resizeAll(FlowColumns& c, size_t n) {
#define NC_RESIZE(type, name) c.name.resize(n);
  NC_FLOW_COLUMNS(NC_RESIZE)
#undef NC_RESIZE
}

// Column rows [from, to) = rows[order[from]], ... (the columns already have order.size() rows).
void gatherRows(FlowColumns& c, std::span<const FlowRecord> rows, std::span<const uint32_t> order,
                size_t from, size_t to) {
  const size_t n = order.size();
  constexpr size_t kAhead = 8;  // rows are read in `order`, i.e. at random: fetch them early
  for (size_t i = from; i < to; ++i) {
    if (i + kAhead < n) {
      const char* next = reinterpret_cast<const char*>(&rows[order[i + kAhead]]);
      for (size_t at = 0; at < sizeof(FlowRecord); at += 64) {
        __builtin_prefetch(next + at);
      }
    }
    const FlowRecord& r = rows[order[i]];
#define NC_SET(type, name) c.name[i] = toColumn(r.name);
    NC_FLOW_COLUMNS(NC_SET)
#undef NC_SET
  }
}

}  // namespace

FlowRecord FlowColumns::row(size_t i) const {
  FlowRecord r;
#define NC_ROW(type, name) fromColumn(r.name, name[i]);
  NC_FLOW_COLUMNS(NC_ROW)
#undef NC_ROW
  return r;
}

namespace {

// Widens s to the range of v[0, n) (s.min/s.max start at UINT64_MAX/0, so ranges merge).
template <typename T>
void rangeOf(const T* v, size_t n, ColumnStats& s, bool& /*have*/) {
  if (n == 0) {
    return;
  }
  T mn = v[0];
  T mx = v[0];
  if constexpr (sizeof(T) == 8) {
    // No 64-bit vector compare in baseline x86-64: four independent chains of scalar compares
    // instead of one (each compare waits for the one before it in a chain).
    T lo[4] = {mn, mn, mn, mn};
    T hi[4] = {mx, mx, mx, mx};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      for (size_t k = 0; k < 4; ++k) {
        lo[k] = v[i + k] < lo[k] ? v[i + k] : lo[k];
        hi[k] = v[i + k] > hi[k] ? v[i + k] : hi[k];
      }
    }
    for (; i < n; ++i) {
      lo[0] = v[i] < lo[0] ? v[i] : lo[0];
      hi[0] = v[i] > hi[0] ? v[i] : hi[0];
    }
    mn = std::min(std::min(lo[0], lo[1]), std::min(lo[2], lo[3]));
    mx = std::max(std::max(hi[0], hi[1]), std::max(hi[2], hi[3]));
  } else {
    // In T's width, in locals: the loop vectorizes.
    for (size_t i = 0; i < n; ++i) {
      const T x = v[i];
      mn = x < mn ? x : mn;
      mx = x > mx ? x : mx;
    }
  }
  s.min = std::min<uint64_t>(s.min, static_cast<uint64_t>(mn));
  s.max = std::max<uint64_t>(s.max, static_cast<uint64_t>(mx));
}

// Byte-wise order of 16-byte addresses as two big-endian words (no memcmp call per row).
struct Addr128 {
  uint64_t hi;
  uint64_t lo;
  bool operator<(const Addr128& o) const { return hi != o.hi ? hi < o.hi : lo < o.lo; }
};
inline Addr128 toWords(const IpAddr& a) {
  uint64_t hi;
  uint64_t lo;
  std::memcpy(&hi, a.bytes.data(), 8);
  std::memcpy(&lo, a.bytes.data() + 8, 8);
  return {__builtin_bswap64(hi), __builtin_bswap64(lo)};
}

// The smallest and largest address of v[0, n) (byte-wise order), merged into s.amin/s.amax
// when `have` says they already hold a range.
void rangeOf(const IpAddr* v, size_t n, ColumnStats& s, bool& have) {
  if (n == 0) {
    return;
  }
  auto merge = [&](const IpAddr& lo, const IpAddr& hi) {
    if (!have || toWords(lo) < toWords(s.amin)) {
      s.amin = lo;
    }
    if (!have || toWords(s.amax) < toWords(hi)) {
      s.amax = hi;
    }
    have = true;
  };
  {
    // Usually every address is IPv4-mapped (::ffff:a.b.c.d): their order is that of the IPv4
    // addresses, one 32-bit compare each.
    uint64_t not_v4 = 0;
    uint32_t mn = UINT32_MAX;
    uint32_t mx = 0;
    for (size_t i = 0; i < n; ++i) {
      const IpAddr& a = v[i];
      uint64_t w0;
      uint32_t w2;
      uint32_t w3;
      std::memcpy(&w0, a.bytes.data(), 8);
      std::memcpy(&w2, a.bytes.data() + 8, 4);
      std::memcpy(&w3, a.bytes.data() + 12, 4);
      static constexpr uint8_t kMapped[4] = {0, 0, 0xff, 0xff};
      uint32_t mapped;
      std::memcpy(&mapped, kMapped, 4);
      not_v4 |= w0 | (w2 ^ mapped);
      const uint32_t x = __builtin_bswap32(w3);
      mn = x < mn ? x : mn;
      mx = x > mx ? x : mx;
    }
    if (not_v4 == 0) {
      merge(IpAddr::fromV4(mn), IpAddr::fromV4(mx));
      return;
    }
  }
  size_t imin = 0;
  size_t imax = 0;
  Addr128 mn = toWords(v[0]);
  Addr128 mx = mn;
  for (size_t i = 1; i < n; ++i) {
    const Addr128 a = toWords(v[i]);
    if (a < mn) {
      mn = a;
      imin = i;
    }
    if (mx < a) {
      mx = a;
      imax = i;
    }
  }
  merge(v[imin], v[imax]);
}

}  // namespace

void FlowColumns::assign(std::span<const FlowRecord> rows, std::span<const uint32_t> order,
                         BlockSummary& summary) {
  const size_t n = order.size();
  resizeAll(*this, n);
  summary.rows = static_cast<uint32_t>(n);
  summary.cols = {};
  std::array<bool, kColumnCount> have{};
  // Tiles of rows: each tile's ranges are taken while its column pieces (~40 KiB) are still in
  // L1, instead of in a pass over the whole block's columns afterwards.
  constexpr size_t kTile = 256;
  for (size_t t = 0; t < n; t += kTile) {
    const size_t end = std::min(n, t + kTile);
    gatherRows(*this, rows, order, t, end);
#define NC_RANGE(type, name)                                                         \
  rangeOf(name.data() + t, end - t, summary.cols[static_cast<size_t>(Column::name)], \
          have[static_cast<size_t>(Column::name)]);
    NC_FLOW_COLUMNS(NC_RANGE)
#undef NC_RANGE
  }
}

void BlockSummary::compute(const FlowColumns& c) {
  rows = static_cast<uint32_t>(c.size());
  cols = {};
  std::array<bool, kColumnCount> have{};
#define NC_RANGE(type, name)                                                     \
  rangeOf(c.name.data(), c.name.size(), cols[static_cast<size_t>(Column::name)], \
          have[static_cast<size_t>(Column::name)]);
  NC_FLOW_COLUMNS(NC_RANGE)
#undef NC_RANGE
}

}  // namespace nc
