#include "collector/query/aggregate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <type_traits>

#include "collector/query/column_access.hpp"
#include "collector/record/fields.hpp"

namespace nc::query {
namespace {

using detail::columnWidth;
using detail::visitColumn;

struct Alias {
  const char* name;
  Column col;
  Column dst_col;
  bool either;
  const char* out;  // output name
};

// nfdump -A / -s names that map to one column (or a pair for either-side statistics).
constexpr Alias kAliases[] = {
    {"srcip", Column::src_addr, Column::src_addr, false, "src_addr"},
    {"dstip", Column::dst_addr, Column::dst_addr, false, "dst_addr"},
    {"ip", Column::src_addr, Column::dst_addr, true, "ip"},
    {"srcport", Column::src_port, Column::src_port, false, "src_port"},
    {"dstport", Column::dst_port, Column::dst_port, false, "dst_port"},
    {"port", Column::src_port, Column::dst_port, true, "port"},
    {"srcas", Column::src_as, Column::src_as, false, "src_as"},
    {"dstas", Column::dst_as, Column::dst_as, false, "dst_as"},
    {"as", Column::src_as, Column::dst_as, true, "as"},
    {"inif", Column::in_if, Column::in_if, false, "in_if"},
    {"outif", Column::out_if, Column::out_if, false, "out_if"},
    {"if", Column::in_if, Column::out_if, true, "if"},
    {"ifname", Column::in_ifname, Column::out_ifname, true, "ifname"},
    {"vm", Column::in_vm, Column::out_vm, true, "vm"},
    {"srcmask", Column::src_mask, Column::src_mask, false, "src_mask"},
    {"dstmask", Column::dst_mask, Column::dst_mask, false, "dst_mask"},
    {"mask", Column::src_mask, Column::dst_mask, true, "mask"},
    {"srctos", Column::tos, Column::tos, false, "tos"},
    {"dsttos", Column::tos, Column::tos, false, "tos"},
    {"srcvlan", Column::vlan, Column::vlan, false, "vlan"},
    {"dstvlan", Column::vlan, Column::vlan, false, "vlan"},
    {"next", Column::next_hop, Column::next_hop, false, "next_hop"},
    {"nhip", Column::next_hop, Column::next_hop, false, "next_hop"},
    {"router", Column::exporter, Column::exporter, false, "exporter"},
    {"insrcmac", Column::src_mac, Column::src_mac, false, "src_mac"},
    {"outsrcmac", Column::src_mac, Column::src_mac, false, "src_mac"},
    {"srcmac", Column::src_mac, Column::src_mac, false, "src_mac"},
    {"indstmac", Column::dst_mac, Column::dst_mac, false, "dst_mac"},
    {"outdstmac", Column::dst_mac, Column::dst_mac, false, "dst_mac"},
    {"dstmac", Column::dst_mac, Column::dst_mac, false, "dst_mac"},
    {"odid", Column::observation_domain, Column::observation_domain, false, "observation_domain"},
    {"dir", Column::direction, Column::direction, false, "direction"},
};

const FieldDef* fieldOfColumn(Column col) {
  for (const auto& f : fields()) {
    if (f.column == col) {
      return &f;
    }
  }
  return nullptr;
}

bool parseBits(std::string_view s, unsigned max, uint8_t& out) {
  if (s.empty() || s.size() > 3) {
    return false;
  }
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) {
    return false;
  }
  out = static_cast<uint8_t>(v);
  return true;
}

// The t < 8 bytes at p as a little-endian number. Built from register loads: a memcpy into a
// zeroed uint64_t becomes narrow stores followed by a wide load of the same stack slot, which
// cannot be store-forwarded and stalled the hash of 4-, 6- and 18-byte keys.
inline uint64_t loadTail(const uint8_t* p, size_t t) {
  uint64_t x = 0;
  size_t o = 0;
  if (t & 4) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    x = v;
    o = 4;
  }
  if (t & 2) {
    uint16_t v;
    std::memcpy(&v, p + o, 2);
    x |= uint64_t{v} << (8 * o);
    o += 2;
  }
  if (t & 1) {
    x |= uint64_t{p[o]} << (8 * o);
  }
  return x;
}

inline uint64_t hashKey(const uint8_t* k, size_t w) {
  if (w <= 4) {
    // Keys held in the slot (v4 addresses, ports, protocols): one multiply; the upper half of the
    // product, folded down, depends on every key bit.
    const uint64_t h = (loadTail(k, w) ^ (w << 40)) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 32);
  }
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ w;
  size_t i = 0;
  for (; i + 8 <= w; i += 8) {
    uint64_t x;
    std::memcpy(&x, k + i, 8);
    h = (h ^ x) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  if (i < w) {
    const uint64_t x = loadTail(k + i, w - i);
    h = (h ^ x) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
  }
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

void maskAddr(uint8_t* a, unsigned bits128) {
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = bits128 > i * 8 ? std::min(8u, bits128 - i * 8) : 0;
    a[i] &= keep == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
}

bool isV4Mapped(const uint8_t* a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kPrefix, 12) == 0;
}

}  // namespace

std::optional<KeySpec> parseKeys(std::string_view text, uint64_t bucket_ns, std::string* why) {
  KeySpec spec;
  size_t start = 0;
  auto bad = [&](std::string msg) -> std::optional<KeySpec> {
    if (why != nullptr) {
      *why = std::move(msg);
    }
    return std::nullopt;
  };
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    while (!item.empty() && item.front() == ' ') {
      item.remove_prefix(1);
    }
    while (!item.empty() && item.back() == ' ') {
      item.remove_suffix(1);
    }
    if (item.empty()) {
      return bad("empty key name");
    }
    std::string lower(item);
    for (char& c : lower) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    KeyPart p;
    std::string_view base = lower;
    std::string_view suffix;
    if (size_t slash = base.find('/'); slash != std::string_view::npos) {
      suffix = base.substr(slash + 1);
      base = base.substr(0, slash);
    }
    bool found = false;
    if (base == "srcnet" || base == "dstnet" || base == "srcip4" || base == "dstip4" ||
        base == "srcip6" || base == "dstip6") {
      bool src = base[0] == 's';
      p.col = p.dst_col = src ? Column::src_addr : Column::dst_addr;
      p.mask_col = p.dst_mask_col = src ? Column::src_mask : Column::dst_mask;
      p.name = src ? "src_net" : "dst_net";
      if (base.ends_with("net") && suffix.empty()) {
        p.kind = KeyPart::Kind::kRecordNet;
        p.width = 17;
      } else {
        p.kind = KeyPart::Kind::kMaskedAddr;
        p.width = 16;
        std::string_view v4 = suffix.substr(0, suffix.find('/'));
        std::string_view v6 = suffix.find('/') == std::string_view::npos
                                  ? std::string_view()
                                  : suffix.substr(suffix.find('/') + 1);
        if (base.ends_with("ip6")) {
          if (!parseBits(v4, 128, p.v6_bits)) {
            return bad(fmt::format("'{}': expected {}/BITS with BITS 0..128", item, base));
          }
        } else {
          if (!parseBits(v4, 32, p.v4_bits)) {
            return bad(fmt::format("'{}': expected {}/BITS with BITS 0..32", item, base));
          }
          p.v6_bits = base.ends_with("ip4") ? 128 : 64;
          if (!v6.empty() && !parseBits(v6, 128, p.v6_bits)) {
            return bad(fmt::format("'{}': IPv6 prefix length must be 0..128", item));
          }
        }
      }
      found = true;
    } else if (!suffix.empty()) {
      return bad(fmt::format("'{}': only srcnet, dstnet, srcip4/6, dstip4/6 take /BITS", item));
    } else if (base == "time") {
      if (bucket_ns == 0) {
        return bad("'time' needs a bucket length greater than 0");
      }
      p.kind = KeyPart::Kind::kTimeBucket;
      p.col = p.dst_col = Column::first_ns;
      p.bucket_ns = bucket_ns;
      p.width = 8;
      p.name = "time";
      found = true;
    } else if (const FieldDef* def = findField(base)) {
      p.col = p.dst_col = def->column;
      p.name = std::string(def->name);
      p.width = static_cast<uint8_t>(columnWidth(p.col));
      found = true;
    } else {
      for (const auto& a : kAliases) {
        if (base == a.name) {
          p.col = a.col;
          p.dst_col = a.dst_col;
          p.either = a.either;
          p.name = a.out;
          p.width = static_cast<uint8_t>(columnWidth(p.col));
          found = true;
          break;
        }
      }
    }
    if (!found) {
      return bad(
          fmt::format("unknown key '{}' (field names from `net-collector fields`, or "
                      "nfdump's srcip, dstip, ip, srcport, dstport, port, proto, srcas, "
                      "dstas, as, inif, outif, if, srcnet[/BITS], dstnet[/BITS], router, "
                      "next, time, ...)",
                      item));
    }
    if (p.either) {
      spec.either = true;
    }
    p.offset = static_cast<uint8_t>(spec.width);
    spec.width += p.width;
    spec.parts.push_back(std::move(p));
  }
  if (spec.either && spec.parts.size() != 1) {
    return bad("ip, port, as, if and mask (either side) must be the only key");
  }
  if (spec.width > 255) {
    return bad("too many keys");
  }
  return spec;
}

ColumnSet keyColumns(const KeySpec& spec, bool scaled) {
  ColumnSet s;
  addColumn(s, Column::first_ns);
  addColumn(s, Column::last_ns);
  addColumn(s, Column::packets);
  addColumn(s, Column::bytes);
  if (scaled) {
    addColumn(s, Column::sampling_rate);
    addColumn(s, Column::flags);
  }
  for (const KeyPart& p : spec.parts) {
    addColumn(s, p.col);
    addColumn(s, p.dst_col);
    if (p.kind == KeyPart::Kind::kRecordNet) {
      addColumn(s, p.mask_col);
      addColumn(s, p.dst_mask_col);
    }
  }
  return s;
}

namespace {

bool isAddrColumn(Column col) {
  return col == Column::exporter || col == Column::src_addr || col == Column::dst_addr ||
         col == Column::next_hop;
}

const std::vector<IpAddr>& addrColumn(const FlowColumns& c, Column col) {
  switch (col) {
    case Column::exporter:
      return c.exporter;
    case Column::dst_addr:
      return c.dst_addr;
    case Column::next_hop:
      return c.next_hop;
    default:
      return c.src_addr;
  }
}

// Bytes 0..11 of ::ffff:a.b.c.d, as two little-endian words.
constexpr uint64_t kV4Lo = 0;
constexpr uint32_t kV4Mid = 0xffff0000u;

bool columnIsV4(const std::vector<IpAddr>& a, const uint32_t* rows, size_t n) {
  // No early exit inside a run of rows: the loop stays branch-free; a mixed or IPv6 block
  // still stops after its first run.
  constexpr size_t kRun = 256;
  for (size_t at = 0; at < n; at += kRun) {
    const size_t end = std::min(n, at + kRun);
    uint64_t bad = 0;
    for (size_t i = at; i < end; ++i) {
      uint64_t lo;
      uint32_t mid;
      std::memcpy(&lo, a[rows[i]].bytes.data(), 8);
      std::memcpy(&mid, a[rows[i]].bytes.data() + 8, 4);
      bad |= (lo ^ kV4Lo) | (mid ^ kV4Mid);
    }
    if (bad != 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<KeySpec> v4KeySpec(const KeySpec& spec) {
  KeySpec out;
  out.either = spec.either;
  bool any = false;
  for (const KeyPart& p : spec.parts) {
    KeyPart q = p;
    if (p.kind == KeyPart::Kind::kColumn && isAddrColumn(p.col) && isAddrColumn(p.dst_col)) {
      q.kind = KeyPart::Kind::kV4Addr;
      q.width = 4;
      any = true;
    }
    q.offset = static_cast<uint8_t>(out.width);
    out.width += q.width;
    out.parts.push_back(std::move(q));
  }
  if (!any) {
    return std::nullopt;
  }
  return out;
}

bool rowsAreV4(const FlowColumns& c, const KeySpec& compact, const uint32_t* rows, size_t n) {
  for (const KeyPart& p : compact.parts) {
    if (p.kind != KeyPart::Kind::kV4Addr) {
      continue;
    }
    if (!columnIsV4(addrColumn(c, p.col), rows, n)) {
      return false;
    }
    if (p.either && p.dst_col != p.col && !columnIsV4(addrColumn(c, p.dst_col), rows, n)) {
      return false;
    }
  }
  return true;
}

uint64_t Counters::durationMs() const {
  if (first_ns == UINT64_MAX || last_ns / 1000000 <= first_ns / 1000000) {
    return 0;
  }
  return last_ns / 1000000 - first_ns / 1000000;
}
uint64_t Counters::pps() const {
  uint64_t d = durationMs();
  return d == 0 ? 0 : packets * 1000 / d;
}
uint64_t Counters::bps() const {
  uint64_t d = durationMs();
  return d == 0 ? 0 : bytes * 8000 / d;
}
uint64_t Counters::bpp() const {
  return packets == 0 ? 0 : bytes / packets;
}

bool parseMetric(std::string_view text, Metric& out) {
  if (text == "flows") {
    out = Metric::kFlows;
  } else if (text == "packets") {
    out = Metric::kPackets;
  } else if (text == "bytes") {
    out = Metric::kBytes;
  } else if (text == "pps") {
    out = Metric::kPps;
  } else if (text == "bps") {
    out = Metric::kBps;
  } else if (text == "bpp") {
    out = Metric::kBpp;
  } else {
    return false;
  }
  return true;
}

uint64_t metricOf(const Counters& c, Metric m) {
  switch (m) {
    case Metric::kFlows:
      return c.flows;
    case Metric::kPackets:
      return c.packets;
    case Metric::kBytes:
      return c.bytes;
    case Metric::kPps:
      return c.pps();
    case Metric::kBps:
      return c.bps();
    case Metric::kBpp:
      return c.bpp();
  }
  return 0;
}

Aggregator::Aggregator(KeySpec spec, bool scaled, size_t expected_groups)
    : spec_(std::move(spec)), scaled_(scaled) {
  size_t cap = 64;
  while (cap < expected_groups * 2) {
    cap *= 2;
  }
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  key_stride_ = std::max<size_t>(8, (spec_.width + 7) / 8 * 8);
  inline_keys_ = spec_.width <= 4;
  dense_bswap_ = spec_.parts.size() == 1 && spec_.parts[0].kind == KeyPart::Kind::kV4Addr;
  recs_.reserve(expected_groups);
  hashes_.reserve(expected_groups);
  keys_.reserve(expected_groups * key_stride_);
}

uint64_t Aggregator::slotOf(size_t g) const {
  const uint64_t x = inline_keys_ ? loadTail(key(g), spec_.width) : hashes_[g] >> 32;
  return x << 32 | (g + 1);
}

void Aggregator::grow() {
  size_t cap = slots_.size() * 2;
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  for (size_t g = 0; g < hashes_.size(); ++g) {
    size_t s = hashes_[g] & mask_;
    while (slots_[s] != 0) {
      s = (s + 1) & mask_;
    }
    slots_[s] = slotOf(g);
  }
}

size_t Aggregator::insertAt(size_t s, const uint8_t* key, uint64_t hash) {
  const size_t idx = hashes_.size();
  hashes_.push_back(hash);
  keys_.resize(keys_.size() + key_stride_);
  std::memcpy(keys_.data() + idx * key_stride_, key, spec_.width);
  recs_.emplace_back();
  slots_[s] = slotOf(idx);
  return idx;
}

void Aggregator::addCounters(size_t g, const Counters& c) {
  recs_[g].add(c);
}

template <size_t W>
size_t Aggregator::findOrInsert(const uint8_t* key, uint64_t hash) {
  const size_t w = W != 0 ? W : spec_.width;
  const bool inl = W != 0 ? W <= 4 : inline_keys_;
  size_t s = hash & mask_;
  if (inl) {
    const uint64_t want = loadTail(key, w) << 32;
    while (true) {
      const uint64_t e = slots_[s];
      if (e == 0) {
        break;
      }
      if ((e & ~uint64_t{0xffffffffu}) == want) {
        return (e & 0xffffffffu) - 1;
      }
      s = (s + 1) & mask_;
    }
  } else {
    const uint64_t tag = hash >> 32;
    while (true) {
      const uint64_t e = slots_[s];
      if (e == 0) {
        break;
      }
      if ((e >> 32) == tag) {
        const size_t g = (e & 0xffffffffu) - 1;
        if (std::memcmp(keys_.data() + g * key_stride_, key, w) == 0) {
          return g;
        }
      }
      s = (s + 1) & mask_;
    }
  }
  const size_t idx = insertAt(s, key, hash);
  if (hashes_.size() * 2 > slots_.size()) {
    grow();
  }
  return idx;
}

// Keys of up to 4 bytes whose values lie close together (ports, protocols, interfaces, IPv4
// addresses of a few /16s: most flow data) find their group in a direct array indexed by the key's
// value (kDenseMax entries at most, from dense_base_), filled from the hash table on first sight:
// no hashing or probing for the rows after that, and a 256 KB array for a /16 instead of a 1 MB
// slot table. The hash table stays the record of every group (merges use it); the array only
// caches group ids, which never change. Set up by the first batch whose keys span less than half
// of kDenseMax; rows outside its range take the hash path. False (nothing done) when off.
template <size_t W>
bool Aggregator::denseGroups(size_t n) {
  if (dense_state_ == DenseState::kOff || n == 0) {
    return false;
  }
  const uint8_t* kb = batch_keys_.data();
  auto value = [&](size_t i) -> uint64_t {
    const uint64_t v = loadTail(kb + i * W, W);
    if constexpr (W == 4) {
      if (dense_bswap_) {  // an IPv4 address: its bytes in network order, a.b.c.d
        return __builtin_bswap32(static_cast<uint32_t>(v));
      }
    }
    return v;
  };
  if (dense_state_ == DenseState::kUnset) {
    uint64_t lo = UINT64_MAX;
    uint64_t hi = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t v = value(i);
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    if (hi - lo >= kDenseMax / 2) {
      dense_state_ = DenseState::kOff;
      return false;
    }
    size_t size = 1024;
    while (size < 2 * (hi - lo + 1)) {
      size *= 2;
    }
    const uint64_t slack = (size - (hi - lo + 1)) / 2;
    dense_base_ = lo > slack ? lo - slack : 0;
    dense_.assign(size, 0);
    dense_state_ = DenseState::kOn;
  }
  uint32_t* gid = batch_groups_.data();
  const size_t size = dense_.size();
  for (size_t i = 0; i < n; ++i) {
    const uint64_t at = value(i) - dense_base_;  // wraps for values below the base: outside
    if (at < size && dense_[at] != 0) {
      gid[i] = dense_[at] - 1;
      continue;
    }
    const uint8_t* key = kb + i * W;
    gid[i] = static_cast<uint32_t>(findOrInsert<W>(key, hashKey(key, W)));
    if (at < size) {
      dense_[at] = gid[i] + 1;
    }
  }
  return true;
}

// Vectorized: the group of every row of the batch first (hash, then probe), then one pass per
// counter over the batch, each into its own array indexed by group. The slot of key i + 64 (and,
// for keys not held in the slot, the key of the group probably behind key i + 32) is prefetched
// while key i is looked up.
template <size_t W>
void Aggregator::accumulate(const FlowColumns& c, const uint32_t* rows, size_t n) {
  const size_t w = W != 0 ? W : spec_.width;
  const bool inl = W != 0 ? W <= 4 : inline_keys_;
  const uint8_t* kb = batch_keys_.data();
  batch_groups_.resize(n);
  uint32_t* gid = batch_groups_.data();
  if constexpr (W >= 1 && W <= 4) {
    if (denseGroups<W>(n)) {
      addCounterPass(c, rows, n);
      return;
    }
  }
  batch_hashes_.resize(n);
  uint64_t* h = batch_hashes_.data();
  for (size_t i = 0; i < n; ++i) {
    h[i] = hashKey(kb + i * w, w);
  }
  constexpr size_t kAhead = 64;
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) {
      __builtin_prefetch(&slots_[h[i + kAhead] & mask_]);
    }
    if (!inl && i + kAhead / 2 < n) {
      const uint64_t e = slots_[h[i + kAhead / 2] & mask_];
      if (e != 0) {
        __builtin_prefetch(keys_.data() + ((e & 0xffffffffu) - 1) * key_stride_);
      }
    }
    gid[i] = static_cast<uint32_t>(findOrInsert<W>(kb + i * w, h[i]));
  }

  addCounterPass(c, rows, n);
}

// Adds the counters of rows[0..n) of `c` to their groups, batch_groups_[0..n).
void Aggregator::addCounterPass(const FlowColumns& c, const uint32_t* rows, size_t n) {
  const uint32_t* gid = batch_groups_.data();
  // Packets and bytes: multiplied by the row's sampling rate unless scaled_ is false or the
  // exporter scaled them (rowPackets/rowBytes); a batch whose rates are all 1 needs no multiply.
  bool unit = true;
  if (scaled_) {
    const uint32_t* rate = c.sampling_rate.data();
    uint32_t diff = 0;
    for (size_t i = 0; i < n; ++i) {
      diff |= rate[rows[i]] ^ 1u;
    }
    unit = diff == 0;
  }
  const uint64_t* scale = nullptr;
  if (!unit) {
    batch_scale_.resize(n);
    uint64_t* sc = batch_scale_.data();
    const uint32_t* rate = c.sampling_rate.data();
    const uint8_t* flags = c.flags.data();
    for (size_t i = 0; i < n; ++i) {
      const size_t r = rows[i];
      sc[i] = (flags[r] & FlowRecord::kFlagScaledByExporter) ? 1 : rate[r];
    }
    scale = sc;
  }
  auto pass = [&](auto scaled) {
    constexpr size_t kRecAhead = 16;
    const uint64_t* pk = c.packets.data();
    const uint64_t* by = c.bytes.data();
    const uint64_t* fst = c.first_ns.data();
    const uint64_t* lst = c.last_ns.data();
    Counters* rec = recs_.data();
    for (size_t i = 0; i < n; ++i) {
      if (i + kRecAhead < n) {
        const Counters* p = rec + gid[i + kRecAhead];
        __builtin_prefetch(p, 1);
        __builtin_prefetch(reinterpret_cast<const char*>(p) + sizeof(Counters) - 1, 1);
      }
      Counters& a = rec[gid[i]];
      const size_t r = rows[i];
      a.flows += 1;
      if constexpr (decltype(scaled)::value) {
        a.packets += pk[r] * scale[i];
        a.bytes += by[r] * scale[i];
      } else {
        a.packets += pk[r];
        a.bytes += by[r];
      }
      a.first_ns = std::min(a.first_ns, fst[r]);
      a.last_ns = std::max(a.last_ns, lst[r]);
    }
  };
  if (unit) {
    pass(std::false_type{});
  } else {
    pass(std::true_type{});
  }
}

void Aggregator::addPass(const FlowColumns& c, const uint32_t* rows, size_t n, bool dst_side) {
  const size_t w = spec_.width;
  batch_keys_.resize(n * w);
  uint8_t* kb = batch_keys_.data();
  // Build the keys column by column.
  for (const KeyPart& p : spec_.parts) {
    Column col = dst_side ? p.dst_col : p.col;
    switch (p.kind) {
      case KeyPart::Kind::kColumn:
        visitColumn(c, col, [&](const auto& vec) {
          constexpr size_t kw = sizeof(vec[0]);
          for (size_t i = 0; i < n; ++i) {
            std::memcpy(kb + i * w + p.offset, &vec[rows[i]], kw);
          }
        });
        break;
      case KeyPart::Kind::kMaskedAddr:
      case KeyPart::Kind::kRecordNet: {
        const auto& addrs = col == Column::src_addr   ? c.src_addr
                            : col == Column::dst_addr ? c.dst_addr
                                                      : c.next_hop;
        const auto& masks =
            (dst_side ? p.dst_mask_col : p.mask_col) == Column::src_mask ? c.src_mask : c.dst_mask;
        for (size_t i = 0; i < n; ++i) {
          uint8_t* k = kb + i * w + p.offset;
          std::memcpy(k, addrs[rows[i]].bytes.data(), 16);
          bool v4 = isV4Mapped(k);
          unsigned bits = 0;
          if (p.kind == KeyPart::Kind::kMaskedAddr) {
            bits = v4 ? 96u + p.v4_bits : p.v6_bits;
          } else {
            unsigned m = masks[rows[i]];
            bits = v4 ? 96u + std::min(m, 32u) : std::min(m, 128u);
            k[16] = static_cast<uint8_t>(m);
          }
          maskAddr(k, bits);
        }
        break;
      }
      case KeyPart::Kind::kV4Addr: {
        const IpAddr* a = addrColumn(c, col).data();
        for (size_t i = 0; i < n; ++i) {
          std::memcpy(kb + i * w + p.offset, a[rows[i]].bytes.data() + 12, 4);
        }
        break;
      }
      case KeyPart::Kind::kTimeBucket: {
        const uint64_t b = p.bucket_ns;
        for (size_t i = 0; i < n; ++i) {
          uint64_t t = c.first_ns[rows[i]] / b * b;
          std::memcpy(kb + i * w + p.offset, &t, 8);
        }
        break;
      }
    }
  }
  switch (w) {
    case 1:
      return accumulate<1>(c, rows, n);
    case 2:
      return accumulate<2>(c, rows, n);
    case 3:
      return accumulate<3>(c, rows, n);
    case 4:
      return accumulate<4>(c, rows, n);
    case 6:
      return accumulate<6>(c, rows, n);
    case 8:
      return accumulate<8>(c, rows, n);
    case 16:
      return accumulate<16>(c, rows, n);
    case 17:
      return accumulate<17>(c, rows, n);
    case 18:
      return accumulate<18>(c, rows, n);
    case 20:
      return accumulate<20>(c, rows, n);
    case 24:
      return accumulate<24>(c, rows, n);
    case 32:
      return accumulate<32>(c, rows, n);
    default:
      return accumulate<0>(c, rows, n);
  }
}

void Aggregator::add(const FlowColumns& c, const uint32_t* rows, size_t n) {
  addPass(c, rows, n, false);
  if (spec_.either) {
    addPass(c, rows, n, true);
  }
}

void Aggregator::merge(const Aggregator& o) {
  while ((size() + o.size()) * 2 > slots_.size()) {
    grow();
  }
  for (size_t g = 0; g < o.size(); ++g) {
    addCounters(findOrInsert<0>(o.key(g), o.hashes_[g]), o.counters(g));
  }
}

void Aggregator::mergeCompact(const Aggregator& compact) {
  while ((size() + compact.size()) * 2 > slots_.size()) {
    grow();
  }
  // Into an empty table (every batch was IPv4) the keys are all new: no lookups, only inserts.
  const bool fresh = size() == 0;
  recs_.reserve(recs_.size() + compact.size());
  hashes_.reserve(hashes_.size() + compact.size());
  keys_.reserve(keys_.size() + compact.size() * key_stride_);
  std::vector<uint8_t> full(spec_.width);
  for (size_t g = 0; g < compact.size(); ++g) {
    const uint8_t* k = compact.key(g);
    for (size_t i = 0; i < spec_.parts.size(); ++i) {
      const KeyPart& p = spec_.parts[i];
      const KeyPart& q = compact.spec_.parts[i];
      if (q.kind == KeyPart::Kind::kV4Addr) {
        std::memcpy(full.data() + p.offset, &kV4Lo, 8);
        std::memcpy(full.data() + p.offset + 8, &kV4Mid, 4);
        std::memcpy(full.data() + p.offset + 12, k + q.offset, 4);
      } else {
        std::memcpy(full.data() + p.offset, k + q.offset, p.width);
      }
    }
    const uint64_t hash = hashKey(full.data(), full.size());
    if (!fresh) {
      addCounters(findOrInsert<0>(full.data(), hash), compact.counters(g));
      continue;
    }
    size_t s = hash & mask_;
    while (slots_[s] != 0) {
      s = (s + 1) & mask_;
    }
    addCounters(insertAt(s, full.data(), hash), compact.counters(g));
  }
}

std::vector<size_t> Aggregator::top(Metric m, size_t limit) const {
  std::vector<size_t> idx(size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t w = spec_.width;
  auto less = [&](size_t a, size_t b) {
    uint64_t ma = metricOf(counters(a), m);
    uint64_t mb = metricOf(counters(b), m);
    if (ma != mb) {
      return ma > mb;
    }
    return std::memcmp(key(a), key(b), w) < 0;
  };
  if (limit != 0 && limit < idx.size()) {
    std::partial_sort(idx.begin(), idx.begin() + static_cast<ptrdiff_t>(limit), idx.end(), less);
    idx.resize(limit);
  } else {
    std::sort(idx.begin(), idx.end(), less);
  }
  return idx;
}

std::vector<size_t> Aggregator::byKey() const {
  std::vector<size_t> idx(size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t w = spec_.width;
  // Keys hold integers in host (little-endian) order: compare part by part as numbers.
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    for (const KeyPart& p : spec_.parts) {
      const uint8_t* ka = key(a) + p.offset;
      const uint8_t* kb = key(b) + p.offset;
      if (p.kind == KeyPart::Kind::kTimeBucket ||
          (p.kind != KeyPart::Kind::kV4Addr && p.width <= 8 && p.width != 0)) {
        uint64_t va = 0;
        uint64_t vb = 0;
        std::memcpy(&va, ka, std::min<size_t>(p.width, 8));
        std::memcpy(&vb, kb, std::min<size_t>(p.width, 8));
        if (va != vb) {
          return va < vb;
        }
      } else if (int c = std::memcmp(ka, kb, p.width); c != 0) {
        return c < 0;
      }
    }
    (void)w;
    return false;
  });
  return idx;
}

std::vector<std::string> Aggregator::keyNames() const {
  std::vector<std::string> out;
  for (const auto& p : spec_.parts) {
    out.push_back(p.name);
  }
  return out;
}

std::vector<std::string> Aggregator::keyText(const uint8_t* key) const {
  std::vector<std::string> out;
  for (const auto& p : spec_.parts) {
    const uint8_t* k = key + p.offset;
    switch (p.kind) {
      case KeyPart::Kind::kTimeBucket: {
        uint64_t t;
        std::memcpy(&t, k, 8);
        out.push_back(formatTime(t));
        break;
      }
      case KeyPart::Kind::kMaskedAddr:
      case KeyPart::Kind::kRecordNet: {
        IpAddr a = IpAddr::fromV6(k);
        unsigned bits = p.kind == KeyPart::Kind::kRecordNet ? k[16]
                        : a.isV4()                          ? p.v4_bits
                                                            : p.v6_bits;
        out.push_back(fmt::format("{}/{}", a.toString(), bits));
        break;
      }
      case KeyPart::Kind::kV4Addr: {
        uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, k[0], k[1], k[2], k[3]};
        out.push_back(IpAddr::fromV6(v6).toString());
        break;
      }
      case KeyPart::Kind::kColumn: {
        FlowRecord r;
        r.proto = 1;  // ICMP fields print for any key
        detail::setColumnBytes(r, p.col, k);
        const FieldDef* def = fieldOfColumn(p.col);
        out.push_back(def != nullptr ? def->toText(r)
                                     : std::to_string(detail::columnValue(r, p.col)));
        break;
      }
    }
  }
  return out;
}

void Aggregator::keyJson(const uint8_t* key, nlohmann::json& out) const {
  std::vector<std::string> text = keyText(key);
  for (size_t i = 0; i < spec_.parts.size(); ++i) {
    const KeyPart& p = spec_.parts[i];
    bool number = false;
    if (p.kind == KeyPart::Kind::kColumn && detail::columnIsIntegral(p.col)) {
      const FieldDef* def = fieldOfColumn(p.col);
      number = def == nullptr || (def->type != FieldType::kText && def->type != FieldType::kMac &&
                                  def->type != FieldType::kTime && def->type != FieldType::kName);
    }
    if (number) {
      FlowRecord r;
      detail::setColumnBytes(r, p.col, key + p.offset);
      out[p.name] = detail::columnValue(r, p.col);
    } else {
      out[p.name] = text[i];
    }
  }
}

}  // namespace nc::query
