#pragma once
// FlowColumns: a batch of flows stored column by column (structure of arrays). The store writes
// and reads blocks of it, and queries evaluate filters and aggregations over its vectors, so both
// agree on one layout. The column list is one X-macro, NC_FLOW_COLUMNS, matching FlowRecord's
// fields one to one (tests/unit/record/columns_test.cpp checks every field round-trips).
#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "collector/record/flow_record.hpp"

namespace nc {

// X(type, name): one column per FlowRecord field, same name and type. Enum fields are stored as
// their underlying uint8_t. A column's id is its position here and is written to disk: new
// columns go at the end. The name columns (isNameColumn) hold NameTable ids.
#define NC_FLOW_COLUMNS(X)        \
  X(uint64_t, first_ns)           \
  X(uint64_t, last_ns)            \
  X(uint64_t, received_ns)        \
  X(uint64_t, packets)            \
  X(uint64_t, bytes)              \
  X(IpAddr, exporter)             \
  X(IpAddr, src_addr)             \
  X(IpAddr, dst_addr)             \
  X(IpAddr, next_hop)             \
  X(uint64_t, src_mac)            \
  X(uint64_t, dst_mac)            \
  X(uint32_t, sampling_rate)      \
  X(uint32_t, observation_domain) \
  X(uint32_t, in_if)              \
  X(uint32_t, out_if)             \
  X(uint32_t, src_as)             \
  X(uint32_t, dst_as)             \
  X(uint16_t, src_port)           \
  X(uint16_t, dst_port)           \
  X(uint16_t, vlan)               \
  X(uint16_t, exporter_port)      \
  X(uint8_t, proto)               \
  X(uint8_t, tcp_flags)           \
  X(uint8_t, tos)                 \
  X(uint8_t, icmp_type)           \
  X(uint8_t, icmp_code)           \
  X(uint8_t, src_mask)            \
  X(uint8_t, dst_mask)            \
  X(uint8_t, ip_version)          \
  X(uint8_t, flow_end_reason)     \
  X(uint8_t, direction)           \
  X(uint8_t, engine_type)         \
  X(uint8_t, engine_id)           \
  X(uint8_t, if_kind)             \
  X(uint8_t, flow_proto)          \
  X(uint8_t, flags)               \
  X(uint32_t, in_ifname)          \
  X(uint32_t, out_ifname)         \
  X(uint32_t, bridge)             \
  X(uint32_t, in_vm)              \
  X(uint32_t, out_vm)

// Column ids, in NC_FLOW_COLUMNS order: Column::first_ns, Column::src_addr, ...
enum class Column : uint8_t {
#define NC_COLUMN_ID(type, name) name,
  NC_FLOW_COLUMNS(NC_COLUMN_ID)
#undef NC_COLUMN_ID
};
inline constexpr size_t kColumnCount = 0
#define NC_COLUMN_COUNT(type, name) +1
    NC_FLOW_COLUMNS(NC_COLUMN_COUNT)
#undef NC_COLUMN_COUNT
    ;

// A set of columns, bit i = column id i. Store scans decode only the columns of a set
// (store::ScanRequest::columns); queries compute the set they read (collector/query).
using ColumnSet = std::bitset<kColumnCount>;
inline ColumnSet allColumns() {
  return ColumnSet().set();
}
inline ColumnSet& addColumn(ColumnSet& s, Column c) {
  return s.set(static_cast<size_t>(c));
}
inline bool hasColumn(const ColumnSet& s, Column c) {
  return s.test(static_cast<size_t>(c));
}

// Columns of NameTable ids (collector/record/names.hpp): stored with a dictionary per block,
// never pruned by value ranges (ids differ from one process to the next).
inline constexpr bool isNameColumn(Column c) {
  return c == Column::in_ifname || c == Column::out_ifname || c == Column::bridge ||
         c == Column::in_vm || c == Column::out_vm;
}
inline constexpr bool isNameColumn(size_t id) {
  return id < kColumnCount && isNameColumn(static_cast<Column>(id));
}

// A batch of flows. size() is the length of first_ns: a batch decoded with a column set (see
// ColumnSet) always has first_ns; the columns outside the set are EMPTY vectors, not defaults.
struct BlockSummary;

struct FlowColumns {
#define NC_DECLARE_COLUMN(type, name) std::vector<type> name;
  NC_FLOW_COLUMNS(NC_DECLARE_COLUMN)
#undef NC_DECLARE_COLUMN

  size_t size() const {
    return first_ns.size();
  }
  bool empty() const {
    return first_ns.empty();
  }
  void clear();
  void reserve(size_t n);
  void append(const FlowRecord& r);
  void append(std::span<const FlowRecord> rs);
  // Replaces the contents with rows[order[0]], rows[order[1]], ...: a transpose and a permutation
  // in one pass (the store's writer sorts a block of records by time this way), and sets
  // `summary` to the BlockSummary of the result, taken on the way (cheaper than
  // BlockSummary::compute afterwards).
  void assign(std::span<const FlowRecord> rows, std::span<const uint32_t> order,
              BlockSummary& summary);
  FlowRecord row(size_t i) const;
};

// Minimum and maximum of one column over a block. Integer columns use min/max; address columns
// use amin/amax (byte-wise order of the 16-byte form, so IPv4 sorts inside ::ffff:0:0/96).
struct ColumnStats {
  uint64_t min = UINT64_MAX;
  uint64_t max = 0;
  IpAddr amin;
  IpAddr amax;
};

// What a store keeps per block so a query can skip blocks that cannot match (the "footer
// index"): row count and per-column ranges. Empty blocks have rows == 0 and meaningless ranges.
struct BlockSummary {
  uint32_t rows = 0;
  std::array<ColumnStats, kColumnCount> cols{};
  const ColumnStats& operator[](Column c) const { return cols[static_cast<size_t>(c)]; }
  // Computes the summary of `c` (replacing this one).
  void compute(const FlowColumns& c);
};

}  // namespace nc
