#pragma once
// Internal helpers of collector/query: reach a FlowColumns column (or a FlowRecord field) by its
// Column id. The switch is over NC_FLOW_COLUMNS, so it follows the column list.
#include <cstring>
#include <type_traits>

#include "collector/record/columns.hpp"

namespace nc::query::detail {

// Calls f(vector) with the column `col` of `c`.
template <typename F>
void visitColumn(const FlowColumns& c, Column col, F&& f) {
  switch (col) {
#define NC_VISIT(type, name) \
  case Column::name:         \
    f(c.name);               \
    return;
    NC_FLOW_COLUMNS(NC_VISIT)
#undef NC_VISIT
  }
}

// Size in bytes of one value of `col`.
inline size_t columnWidth(Column col) {
  size_t w = 0;
  FlowColumns none;
  visitColumn(none, col, [&](const auto& vec) { w = sizeof(vec[0]); });
  return w;
}

// True when `col` holds integers (not addresses).
inline bool columnIsIntegral(Column col) {
  bool integral = false;
  FlowColumns none;
  visitColumn(none, col, [&](const auto& vec) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    integral = std::is_integral_v<T>;
  });
  return integral;
}

// Integer value of `col` of `r` (0 for address columns).
inline uint64_t columnValue(const FlowRecord& r, Column col) {
  FlowColumns one;
  one.append(r);
  uint64_t v = 0;
  visitColumn(one, col, [&](const auto& vec) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    if constexpr (std::is_integral_v<T>) {
      v = static_cast<uint64_t>(vec[0]);
    }
  });
  return v;
}

// Sets field `col` of `r` from `width` raw bytes (the column's in-memory representation).
inline void setColumnBytes(FlowRecord& r, Column col, const uint8_t* bytes) {
  FlowColumns one;
  one.append(r);
  switch (col) {
#define NC_SET(type, name)                          \
  case Column::name:                                \
    std::memcpy(&one.name[0], bytes, sizeof(type)); \
    break;
    NC_FLOW_COLUMNS(NC_SET)
#undef NC_SET
  }
  r = one.row(0);
}

}  // namespace nc::query::detail
