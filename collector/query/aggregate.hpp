#pragma once
// Aggregation: group selected flows by a key made of columns (nfdump -A / -s) and sum flows,
// packets and bytes per group in an open-addressing hash table over fixed-width byte keys.
//
// Keys are named by the field registry (src_addr, dst_port, ...) or by nfdump's names (srcip,
// dstport, srcnet/24, inif, router, ...); "ip", "port", "as", "if", "mask" count each flow once for
// its source and once for its destination side, like nfdump -s ip; "time" is the start of the
// --bucket the flow's first packet falls in.
//
// Counters are summed scaled by sampling_rate (FlowRecord::scaledPackets/Bytes) unless the
// aggregator is built with scaled = false (nfdump's behaviour: raw).
//
// One Aggregator per worker thread; merge() them at the end.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/record/columns.hpp"

namespace nc::query {

struct KeyPart {
  enum class Kind : uint8_t {
    kColumn,      // the column's value
    kMaskedAddr,  // address with a fixed prefix length applied (srcnet/24, srcip4/16)
    kRecordNet,   // address with the record's own src_mask/dst_mask applied (nfdump srcnet)
    kTimeBucket,  // first_ns rounded down to bucket_ns
    kV4Addr,      // bytes 12..15 (a.b.c.d) of an address column whose rows are all IPv4-mapped:
                  // the 4-byte form of a kColumn address part (v4KeySpec)
  };
  Kind kind = Kind::kColumn;
  Column col = Column::src_addr;      // source side (or the only side)
  Column dst_col = Column::dst_addr;  // destination side when `either`
  Column mask_col = Column::src_mask;
  Column dst_mask_col = Column::dst_mask;
  bool either = false;  // counted for both sides (-s ip, port, as, if, mask)
  uint8_t v4_bits = 32;
  uint8_t v6_bits = 128;
  uint64_t bucket_ns = 60'000'000'000ULL;
  std::string name;  // output column name
  uint8_t width = 0;
  uint8_t offset = 0;
};

struct KeySpec {
  std::vector<KeyPart> parts;
  size_t width = 0;
  bool either = false;
};

// Parses a comma-separated key list: registry names, nfdump -A/-s names (srcip, dstip, ip, srcport,
// dstport, port, proto, srcas, dstas, as, inif, outif, if, srcnet[/bits[/v6bits]], dstnet[...],
// srcip4/bits, srcip6/bits, dstip4/bits, dstip6/bits, srcmask, dstmask, mask, tos, srcvlan,
// dstvlan, vlan, next, nhip, router, insrcmac, outdstmac, indstmac, outsrcmac, odid, dir,
// engine) and "time" (bucketed by bucket_ns). On error returns nullopt and sets `why`.
std::optional<KeySpec> parseKeys(std::string_view text, uint64_t bucket_ns, std::string* why);

// IPv4 fast path. Most blocks hold only IPv4 addresses (the store keeps such columns as 4 bytes a
// row). Aggregating them under 4-byte keys instead of 16-byte ones makes keys cheaper to build,
// hash and compare, and the groups smaller. v4KeySpec(spec) is `spec` with every kColumn part over
// an address column turned into a 4-byte kV4Addr part (nullopt when there is none); rows for which
// rowsAreV4() holds may be added to an Aggregator over that compact spec instead, and
// Aggregator::mergeCompact() then folds its groups back under the full keys: the result is the
// same as adding every row to the full aggregator.
std::optional<KeySpec> v4KeySpec(const KeySpec& spec);
// True when every address column a kV4Addr part of `compact` reads (both sides when `either`)
// holds an IPv4-mapped address in each of rows[0..n) of `c`.
bool rowsAreV4(const FlowColumns& c, const KeySpec& compact, const uint32_t* rows, size_t n);

// Columns an aggregation by `spec` reads: the key columns and the counter columns (first_ns,
// last_ns, packets, bytes; sampling_rate and flags when `scaled`).
ColumnSet keyColumns(const KeySpec& spec, bool scaled);

struct Counters {
  uint64_t flows = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t first_ns = UINT64_MAX;
  uint64_t last_ns = 0;

  void add(const Counters& o) {
    flows += o.flows;
    packets += o.packets;
    bytes += o.bytes;
    first_ns = o.first_ns < first_ns ? o.first_ns : first_ns;
    last_ns = o.last_ns > last_ns ? o.last_ns : last_ns;
  }
  // Over the span last - first (0 when the span is 0), like nfdump's statistics.
  uint64_t durationMs() const;
  uint64_t pps() const;
  uint64_t bps() const;
  uint64_t bpp() const;
};

enum class Metric : uint8_t { kFlows, kPackets, kBytes, kPps, kBps, kBpp };
bool parseMetric(std::string_view text, Metric& out);
uint64_t metricOf(const Counters& c, Metric m);

// Packets and bytes of row i, scaled by its sampling rate unless `scaled` is false.
inline uint64_t rowPackets(const FlowColumns& c, size_t i, bool scaled) {
  if (!scaled || (c.flags[i] & FlowRecord::kFlagScaledByExporter)) {
    return c.packets[i];
  }
  return c.packets[i] * c.sampling_rate[i];
}
inline uint64_t rowBytes(const FlowColumns& c, size_t i, bool scaled) {
  if (!scaled || (c.flags[i] & FlowRecord::kFlagScaledByExporter)) {
    return c.bytes[i];
  }
  return c.bytes[i] * c.sampling_rate[i];
}

class Aggregator {
 public:
  Aggregator(KeySpec spec, bool scaled, size_t expected_groups = 1024);

  // Adds rows[0..n) of `c`.
  void add(const FlowColumns& c, const uint32_t* rows, size_t n);
  // Adds every group of `o` (same spec).
  void merge(const Aggregator& o);
  // Adds every group of `compact`, an Aggregator over v4KeySpec(spec()) with the same `scaled`,
  // under its full key (kV4Addr parts as ::ffff:a.b.c.d).
  void mergeCompact(const Aggregator& compact);

  size_t size() const { return hashes_.size(); }
  const KeySpec& spec() const { return spec_; }
  const uint8_t* key(size_t group) const { return keys_.data() + group * key_stride_; }
  Counters counters(size_t group) const { return recs_[group]; }

  // Group indices ordered by `m` descending (ties: key bytes ascending), at most `limit` (0 = all).
  std::vector<size_t> top(Metric m, size_t limit) const;
  // Group indices ordered by key bytes (for time series: time ascending).
  std::vector<size_t> byKey() const;

  // Output of a key: column names, text cells, JSON members.
  std::vector<std::string> keyNames() const;
  std::vector<std::string> keyText(const uint8_t* key) const;
  void keyJson(const uint8_t* key, nlohmann::json& out) const;

 private:
  // W = the key width when known at compile time (common widths), 0 = spec_.width.
  template <size_t W>
  size_t findOrInsert(const uint8_t* key, uint64_t hash);
  template <size_t W>
  void accumulate(const FlowColumns& c, const uint32_t* rows, size_t n);
  template <size_t W>
  bool denseGroups(size_t n);
  void addCounterPass(const FlowColumns& c, const uint32_t* rows, size_t n);
  // Appends a group with `key` and zero counters in the empty slot s (no growth check).
  size_t insertAt(size_t s, const uint8_t* key, uint64_t hash);
  uint64_t slotOf(size_t g) const;
  void grow();
  void addCounters(size_t g, const Counters& c);
  void addPass(const FlowColumns& c, const uint32_t* rows, size_t n, bool dst_side);

  KeySpec spec_;
  bool scaled_;
  // Counters of group g, apart from the keys: a batch first resolves the group of every row
  // (batch_groups_), then adds the rows in one pass that prefetches the record of row i + 16.
  // Measured slower on 20M rows: one array and one pass per counter (-20 % with 155k groups:
  // each pass re-fetches its 1.2 MB array), and {flows, packets, bytes} + {first, last} in two
  // arrays and passes (-3..5 %). Prefetch distances 4..32 (records) and 32..128 (slots): noise.
  std::vector<Counters> recs_;
  // Group g's key at g * key_stride_ (width padded to 8 bytes, zero-filled).
  std::vector<uint8_t> keys_;
  size_t key_stride_ = 8;
  // Keys of width <= 4 are kept in their slot: no second memory access per probe.
  bool inline_keys_ = false;
  std::vector<uint64_t> hashes_;  // of group g
  // Open addressing, linear probing, load <= 1/2. A slot is 0 (empty) or X << 32 | (group + 1)
  // where X is the key itself (as a little-endian number) when inline_keys_, else the upper half
  // of the hash, compared before the key so a probe rarely touches another group's key.
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
  std::vector<uint8_t> batch_keys_;
  std::vector<uint64_t> batch_hashes_;
  std::vector<uint32_t> batch_groups_;
  std::vector<uint64_t> batch_scale_;
  // Group ids of keys near each other (denseGroups): dense_[v - dense_base_] = group + 1, 0
  // unknown.
  static constexpr uint64_t kDenseMax = uint64_t{1} << 18;
  enum class DenseState : uint8_t { kUnset, kOn, kOff };
  DenseState dense_state_ = DenseState::kUnset;
  bool dense_bswap_ = false;  // the key is an IPv4 address (compare its bytes in network order)
  uint64_t dense_base_ = 0;
  std::vector<uint32_t> dense_;
};

}  // namespace nc::query
