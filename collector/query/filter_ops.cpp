// The operation table (filter_program.hpp): for every leaf kind, the columns it reads, its
// evaluation over a chunk of rows, its verdict over a block's min/max summary and its line in
// Filter::dump(). One section per operation, then kOps.
//
// Evaluation kernels write one 0/1 byte per row; they run once per leaf per chunk of kChunk rows,
// so the table's indirect call is amortized and the loops themselves stay branch-free over one
// column type (they vectorize).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "collector/query/column_access.hpp"
#include "collector/query/filter_program.hpp"
#include "collector/query/name_match.hpp"

namespace nc::query::detail {

using detail::visitColumn;

// ---------------------------------------------------------------------------------------------
// Shared helpers

const char* cmpText(Cmp c) {
  switch (c) {
    case Cmp::kEq:
      return "==";
    case Cmp::kLt:
      return "<";
    case Cmp::kGt:
      return ">";
    case Cmp::kLe:
      return "<=";
    case Cmp::kGe:
      return ">=";
  }
  return "?";
}

const char* columnName(Column col) {
  switch (col) {
#define NC_NAME(type, name) \
  case Column::name:        \
    return #name;
    NC_FLOW_COLUMNS(NC_NAME)
#undef NC_NAME
  }
  return "?";
}

Prefix makePrefix(const IpAddr& addr, unsigned bits) {
  Prefix p;
  p.bits = static_cast<uint8_t>(addr.isV4() ? bits + 96 : bits);
  p.net = addr;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = p.bits > i * 8 ? std::min(8u, p.bits - i * 8) : 0;
    uint8_t m = keep == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    p.net.bytes[i] &= m;
  }
  return p;
}

IpAddr prefixLast(const Prefix& p) {
  IpAddr a = p.net;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = p.bits > i * 8 ? std::min(8u, p.bits - i * 8u) : 0;
    a.bytes[i] |= static_cast<uint8_t>(keep >= 8 ? 0 : (0xff >> keep));
  }
  return a;
}

Program Program::any() {
  Program p;
  p.leaves.push_back(Leaf{});
  p.code.push_back({Instr::Kind::kLeaf, 0});
  return p;
}

void Program::computeDepth() {
  size_t depth = 0;
  max_depth = 1;
  for (const auto& in : code) {
    if (in.kind == Instr::Kind::kLeaf) {
      ++depth;
    } else if (in.kind != Instr::Kind::kNot) {
      --depth;
    }
    max_depth = std::max(max_depth, depth);
  }
}

namespace {

void prefixMask(uint8_t bits, uint64_t& hi, uint64_t& lo) {
  uint8_t m[16];
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = bits > i * 8 ? std::min(8u, bits - i * 8u) : 0;
    m[i] = keep == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
  std::memcpy(&hi, m, 8);
  std::memcpy(&lo, m + 8, 8);
}

inline bool inPrefix(const IpAddr& a, uint64_t mhi, uint64_t mlo, uint64_t nhi, uint64_t nlo) {
  uint64_t hi;
  uint64_t lo;
  std::memcpy(&hi, a.bytes.data(), 8);
  std::memcpy(&lo, a.bytes.data() + 8, 8);
  return ((hi & mhi) == nhi) & ((lo & mlo) == nlo);
}

inline bool cmpOne(uint64_t a, Cmp cmp, uint64_t v) {
  switch (cmp) {
    case Cmp::kEq:
      return a == v;
    case Cmp::kLt:
      return a < v;
    case Cmp::kGt:
      return a > v;
    case Cmp::kLe:
      return a <= v;
    case Cmp::kGe:
      return a >= v;
  }
  return false;
}

template <typename T>
void cmpLoop(const T* p, size_t n, Cmp cmp, uint64_t v, uint8_t* out) {
  if constexpr (sizeof(T) < 8) {
    // Values above the column's range: compare in 64 bits would be the same, but keep the loop
    // in T's width so it vectorizes.
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      bool above = cmp == Cmp::kLt || cmp == Cmp::kLe;
      std::memset(out, above ? 1 : 0, n);
      return;
    }
  }
  const T x = static_cast<T>(v);
  switch (cmp) {
    case Cmp::kEq:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] == x;
      }
      break;
    case Cmp::kLt:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] < x;
      }
      break;
    case Cmp::kGt:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] > x;
      }
      break;
    case Cmp::kLe:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] <= x;
      }
      break;
    case Cmp::kGe:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] >= x;
      }
      break;
  }
}

// Set membership of n values, short sets by comparing with every entry (no branches), long
// ones by binary search.
template <typename T>
void inSetLoop(const T* p, size_t n, const std::vector<uint64_t>& set, uint8_t* out) {
  if (set.size() <= 8) {
    for (size_t i = 0; i < n; ++i) {
      uint8_t hit = 0;
      for (uint64_t v : set) {
        hit |= static_cast<uint64_t>(p[i]) == v;
      }
      out[i] = hit;
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      out[i] = std::binary_search(set.begin(), set.end(), static_cast<uint64_t>(p[i]));
    }
  }
}

// Runs f(const T* rows) over the chunk of an integer column; zeroes `out` for other columns.
template <typename F>
void integralColumn(const Leaf& l, const Chunk& ch, uint8_t* out, F&& f) {
  visitColumn(ch.c, l.col, [&](const auto& vec) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    if constexpr (std::is_integral_v<T>) {
      f(vec.data() + ch.base);
    } else {
      std::memset(out, 0, ch.n);
    }
  });
}

// [min, max] of a block's column, or Tri{} (unknown) when the block recorded no range.
Tri cmpRange(uint64_t lo, uint64_t hi, Cmp cmp, uint64_t v) {
  if (lo > hi) {  // no range recorded: stay conservative
    return {};
  }
  switch (cmp) {
    case Cmp::kEq:
      return {lo <= v && v <= hi, !(lo == v && hi == v)};
    case Cmp::kLt:
      return {lo < v, hi >= v};
    case Cmp::kGt:
      return {hi > v, lo <= v};
    case Cmp::kLe:
      return {lo <= v, hi > v};
    case Cmp::kGe:
      return {hi >= v, lo < v};
  }
  return {};
}

Tri inSetRange(const ColumnStats& s, const std::vector<uint64_t>& set) {
  Tri r;
  if (s.min > s.max) {
    return r;
  }
  auto it = std::lower_bound(set.begin(), set.end(), s.min);
  r.t = it != set.end() && *it <= s.max;
  return r;
}

// Common row pieces.
void colsNone(const Leaf&, ColumnSet&) {}
void colsOwn(const Leaf& l, ColumnSet& s) {
  addColumn(s, l.col);
}
Tri pruneUnknown(const Program&, const Leaf&, const BlockSummary&) {
  return {};
}

// ---------------------------------------------------------------------------------------------
// kTrue / kFalse

void evalTrue(const Program&, const Leaf&, const Chunk& ch, uint8_t* out) {
  std::memset(out, 1, ch.n);
}
Tri pruneTrue(const Program&, const Leaf&, const BlockSummary&) {
  return {true, false};
}
std::string printTrue(const Program&, const Leaf&) {
  return "TRUE";
}

void evalFalse(const Program&, const Leaf&, const Chunk& ch, uint8_t* out) {
  std::memset(out, 0, ch.n);
}
Tri pruneFalse(const Program&, const Leaf&, const BlockSummary&) {
  return {false, true};
}
std::string printFalse(const Program&, const Leaf&) {
  return "FALSE";
}

// ---------------------------------------------------------------------------------------------
// kCmp: column <cmp> value

void evalCmp(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  integralColumn(l, ch, out, [&](const auto* p) {
    using T = std::remove_cv_t<std::remove_pointer_t<decltype(p)>>;
    cmpLoop<T>(p, ch.n, l.cmp, l.value, out);
  });
}
Tri pruneCmp(const Program&, const Leaf& l, const BlockSummary& b) {
  const ColumnStats& s = b[l.col];
  return cmpRange(s.min, s.max, l.cmp, l.value);
}
std::string printCmp(const Program&, const Leaf& l) {
  return fmt::format("{} {} {}", columnName(l.col), cmpText(l.cmp), l.value);
}

// ---------------------------------------------------------------------------------------------
// kMaskAll: (column & mask) == mask; kMaskAny: (column & mask) != 0

void evalMaskAll(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  integralColumn(l, ch, out, [&](const auto* p) {
    using T = std::remove_cv_t<std::remove_pointer_t<decltype(p)>>;
    const T m = static_cast<T>(l.mask);
    for (size_t i = 0; i < ch.n; ++i) {
      out[i] = (p[i] & m) == m;
    }
  });
}
Tri pruneMaskAll(const Program&, const Leaf& l, const BlockSummary& b) {
  const ColumnStats& s = b[l.col];
  Tri r;
  if (s.min <= s.max && s.max < l.mask) {  // every value below the mask cannot contain it
    r.t = (s.max & l.mask) == l.mask;
  }
  return r;
}
std::string printMaskAll(const Program&, const Leaf& l) {
  return fmt::format("{} & {:#x} == {:#x}", columnName(l.col), l.mask, l.mask);
}

void evalMaskAny(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  integralColumn(l, ch, out, [&](const auto* p) {
    using T = std::remove_cv_t<std::remove_pointer_t<decltype(p)>>;
    const T m = static_cast<T>(l.mask);
    for (size_t i = 0; i < ch.n; ++i) {
      out[i] = (p[i] & m) != 0;
    }
  });
}
std::string printMaskAny(const Program&, const Leaf& l) {
  return fmt::format("{} & {:#x} != 0", columnName(l.col), l.mask);
}

// ---------------------------------------------------------------------------------------------
// kInSet: column in sets[index]

void evalInSet(const Program& p, const Leaf& l, const Chunk& ch, uint8_t* out) {
  const auto& set = p.sets[l.index];
  integralColumn(l, ch, out, [&](const auto* v) { inSetLoop(v, ch.n, set, out); });
}
Tri pruneInSet(const Program& p, const Leaf& l, const BlockSummary& b) {
  return inSetRange(b[l.col], p.sets[l.index]);
}
std::string printInSet(const Program& p, const Leaf& l) {
  return fmt::format("{} in set#{} ({} values)", columnName(l.col), l.index,
                     p.sets[l.index].size());
}

// ---------------------------------------------------------------------------------------------
// kPrefix: address column in net/bits; kPrefixList: in any of prefix_lists[index]

const IpAddr* addrColumn(const Leaf& l, const Chunk& ch) {
  const std::vector<IpAddr>* vec = nullptr;
  visitColumn(ch.c, l.col, [&](const auto& v) {
    using T = typename std::decay_t<decltype(v)>::value_type;
    if constexpr (std::is_same_v<T, IpAddr>) {
      vec = &v;
    }
  });
  return vec == nullptr ? nullptr : vec->data() + ch.base;
}

void prefixLoop(const IpAddr* p, size_t n, const Prefix& pf, bool accumulate, uint8_t* out) {
  uint64_t mhi, mlo, nhi, nlo;
  prefixMask(pf.bits, mhi, mlo);
  std::memcpy(&nhi, pf.net.bytes.data(), 8);
  std::memcpy(&nlo, pf.net.bytes.data() + 8, 8);
  if (accumulate) {
    for (size_t i = 0; i < n; ++i) {
      out[i] |= inPrefix(p[i], mhi, mlo, nhi, nlo);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      out[i] = inPrefix(p[i], mhi, mlo, nhi, nlo);
    }
  }
}

// Some address of [amin, amax] may lie in the prefixes / all of them lie in one.
Tri prefixRange(const ColumnStats& s, const Prefix* list, size_t n) {
  bool t = false;
  bool all_inside = false;
  for (size_t i = 0; i < n; ++i) {
    const Prefix& p = list[i];
    IpAddr last = prefixLast(p);
    if (!(s.amax < p.net) && !(last < s.amin)) {
      t = true;
    }
    if (!(s.amin < p.net) && !(last < s.amax)) {
      all_inside = true;
    }
  }
  return {t, !all_inside};
}

void evalPrefix(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  const IpAddr* p = addrColumn(l, ch);
  if (p == nullptr) {
    std::memset(out, 0, ch.n);
    return;
  }
  prefixLoop(p, ch.n, Prefix{l.net, l.bits}, false, out);
}
Tri prunePrefix(const Program&, const Leaf& l, const BlockSummary& b) {
  const Prefix one{l.net, l.bits};
  return prefixRange(b[l.col], &one, 1);
}
std::string printPrefix(const Program&, const Leaf& l) {
  return fmt::format("{} in {}/{}", columnName(l.col), l.net.toString(),
                     l.net.isV4() ? l.bits - 96 : l.bits);
}

void evalPrefixList(const Program& pr, const Leaf& l, const Chunk& ch, uint8_t* out) {
  const IpAddr* p = addrColumn(l, ch);
  std::memset(out, 0, ch.n);
  if (p == nullptr) {
    return;
  }
  for (const Prefix& pf : pr.prefix_lists[l.index]) {
    prefixLoop(p, ch.n, pf, true, out);
  }
}
Tri prunePrefixList(const Program& p, const Leaf& l, const BlockSummary& b) {
  const auto& list = p.prefix_lists[l.index];
  return prefixRange(b[l.col], list.data(), list.size());
}
std::string printPrefixList(const Program& p, const Leaf& l) {
  return fmt::format("{} in list#{} ({} prefixes)", columnName(l.col), l.index,
                     p.prefix_lists[l.index].size());
}

// ---------------------------------------------------------------------------------------------
// kDuration, kPps, kBps, kBpp: values derived from first/last/packets/bytes, never pruned

void colsDerived(const Leaf&, ColumnSet& s) {
  addColumn(s, Column::first_ns);
  addColumn(s, Column::last_ns);
  addColumn(s, Column::packets);
  addColumn(s, Column::bytes);
}

inline uint64_t durationMs(uint64_t first_ns, uint64_t last_ns) {
  uint64_t f = first_ns / 1000000;
  uint64_t l = last_ns / 1000000;
  return l > f ? l - f : 0;
}

// `value(duration_ms, packets, bytes)` of each row compared with the leaf's value.
template <typename V>
void derivedLoop(const Leaf& l, const Chunk& ch, uint8_t* out, V value) {
  const uint64_t* f = ch.c.first_ns.data() + ch.base;
  const uint64_t* la = ch.c.last_ns.data() + ch.base;
  const uint64_t* pk = ch.c.packets.data() + ch.base;
  const uint64_t* by = ch.c.bytes.data() + ch.base;
  for (size_t i = 0; i < ch.n; ++i) {
    out[i] = cmpOne(value(durationMs(f[i], la[i]), pk[i], by[i]), l.cmp, l.value);
  }
}

void evalDuration(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  derivedLoop(l, ch, out, [](uint64_t d, uint64_t, uint64_t) { return d; });
}
std::string printDuration(const Program&, const Leaf& l) {
  return fmt::format("duration_ms {} {}", cmpText(l.cmp), l.value);
}

void evalPps(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  derivedLoop(l, ch, out,
              [](uint64_t d, uint64_t pk, uint64_t) { return d == 0 ? 0 : 1000 * pk / d; });
}
std::string printPps(const Program&, const Leaf& l) {
  return fmt::format("pps {} {}", cmpText(l.cmp), l.value);
}

void evalBps(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  derivedLoop(l, ch, out,
              [](uint64_t d, uint64_t, uint64_t by) { return d == 0 ? 0 : 8000 * by / d; });
}
std::string printBps(const Program&, const Leaf& l) {
  return fmt::format("bps {} {}", cmpText(l.cmp), l.value);
}

void evalBpp(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  derivedLoop(l, ch, out, [](uint64_t, uint64_t pk, uint64_t by) { return pk == 0 ? 0 : by / pk; });
}
std::string printBpp(const Program&, const Leaf& l) {
  return fmt::format("bpp {} {}", cmpText(l.cmp), l.value);
}

// ---------------------------------------------------------------------------------------------
// kDstPort, kDstPortSet: the destination port as nfdump sees it (ICMP type << 8 | code for
// ICMP/ICMPv6 rows, whatever the exporter sent)

void colsDstPort(const Leaf&, ColumnSet& s) {
  addColumn(s, Column::dst_port);
  addColumn(s, Column::proto);
  addColumn(s, Column::icmp_type);
  addColumn(s, Column::icmp_code);
}

// Masks instead of a branch, restrict pointers: the loop vectorizes.
void effectivePorts(const uint8_t* __restrict pr, const uint16_t* __restrict dp,
                    const uint8_t* __restrict ty, const uint8_t* __restrict co, size_t n,
                    uint32_t* __restrict out) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t icmp = 0u - static_cast<uint32_t>((pr[i] == 1) | (pr[i] == 58));
    out[i] = ((uint32_t{ty[i]} << 8 | co[i]) & icmp) | (uint32_t{dp[i]} & ~icmp);
  }
}

// The effective port of each row of the chunk (a loop without branches that vectorizes); the
// comparison then runs over those values like over any 32-bit column.
const uint32_t* effectivePorts(const Chunk& ch) {
  thread_local std::vector<uint32_t> port_mem;
  port_mem.resize(kChunk);
  const FlowColumns& c = ch.c;
  effectivePorts(c.proto.data() + ch.base, c.dst_port.data() + ch.base,
                 c.icmp_type.data() + ch.base, c.icmp_code.data() + ch.base, ch.n, port_mem.data());
  return port_mem.data();
}

// A block that may hold ICMP rows cannot be judged by its dst_port range.
bool icmpPossible(const BlockSummary& b) {
  const ColumnStats& p = b[Column::proto];
  return p.min > p.max || (p.min <= 1 && 1 <= p.max) || (p.min <= 58 && 58 <= p.max);
}

void evalDstPort(const Program&, const Leaf& l, const Chunk& ch, uint8_t* out) {
  cmpLoop<uint32_t>(effectivePorts(ch), ch.n, l.cmp, l.value, out);
}
Tri pruneDstPort(const Program& p, const Leaf& l, const BlockSummary& b) {
  return icmpPossible(b) ? Tri{} : pruneCmp(p, l, b);
}
std::string printDstPort(const Program&, const Leaf& l) {
  return fmt::format("dst_port|icmp {} {}", cmpText(l.cmp), l.value);
}

void evalDstPortSet(const Program& p, const Leaf& l, const Chunk& ch, uint8_t* out) {
  inSetLoop(effectivePorts(ch), ch.n, p.sets[l.index], out);
}
Tri pruneDstPortSet(const Program& p, const Leaf& l, const BlockSummary& b) {
  return icmpPossible(b) ? Tri{} : pruneInSet(p, l, b);
}
std::string printDstPortSet(const Program& p, const Leaf& l) {
  return fmt::format("dst_port|icmp in set#{} ({} values)", l.index, p.sets[l.index].size());
}

// ---------------------------------------------------------------------------------------------
// kName: a name column (NameTable ids) matches names[index]; ids differ between processes, so
// blocks are never pruned by them

void evalName(const Program& p, const Leaf& l, const Chunk& ch, uint8_t* out) {
  const NameMatcher& m = *p.names[l.index];
  visitColumn(ch.c, l.col, [&](const auto& vec) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    if constexpr (std::is_same_v<T, uint32_t>) {
      m.matchRows(vec.data() + ch.base, ch.n, out);
    } else {
      std::memset(out, 0, ch.n);
    }
  });
}
std::string printName(const Program& p, const Leaf& l) {
  return fmt::format("{} matches '{}'", columnName(l.col), p.names[l.index]->pattern());
}

// ---------------------------------------------------------------------------------------------
// The table, in Leaf::Op order.

using Op = Leaf::Op;
constexpr OpDef kOps[] = {
    // op              name            columns      eval            prune            print
    {Op::kTrue, "true", colsNone, evalTrue, pruneTrue, printTrue},
    {Op::kFalse, "false", colsNone, evalFalse, pruneFalse, printFalse},
    {Op::kCmp, "cmp", colsOwn, evalCmp, pruneCmp, printCmp},
    {Op::kMaskAll, "mask_all", colsOwn, evalMaskAll, pruneMaskAll, printMaskAll},
    {Op::kMaskAny, "mask_any", colsOwn, evalMaskAny, pruneUnknown, printMaskAny},
    {Op::kInSet, "in_set", colsOwn, evalInSet, pruneInSet, printInSet},
    {Op::kPrefix, "prefix", colsOwn, evalPrefix, prunePrefix, printPrefix},
    {Op::kPrefixList, "prefix_list", colsOwn, evalPrefixList, prunePrefixList, printPrefixList},
    {Op::kDuration, "duration", colsDerived, evalDuration, pruneUnknown, printDuration},
    {Op::kPps, "pps", colsDerived, evalPps, pruneUnknown, printPps},
    {Op::kBps, "bps", colsDerived, evalBps, pruneUnknown, printBps},
    {Op::kBpp, "bpp", colsDerived, evalBpp, pruneUnknown, printBpp},
    {Op::kDstPort, "dst_port", colsDstPort, evalDstPort, pruneDstPort, printDstPort},
    {Op::kDstPortSet, "dst_port_set", colsDstPort, evalDstPortSet, pruneDstPortSet,
     printDstPortSet},
    {Op::kName, "name", colsOwn, evalName, pruneUnknown, printName},
};

constexpr bool tableInOrder() {
  if (std::size(kOps) != static_cast<size_t>(Op::kCount)) {
    return false;
  }
  for (size_t i = 0; i < std::size(kOps); ++i) {
    if (static_cast<size_t>(kOps[i].op) != i) {
      return false;
    }
  }
  return true;
}
static_assert(tableInOrder(), "kOps needs one row per Leaf::Op, in Leaf::Op order");

}  // namespace

const OpDef& opDef(Leaf::Op op) {
  return kOps[static_cast<size_t>(op)];
}

}  // namespace nc::query::detail
