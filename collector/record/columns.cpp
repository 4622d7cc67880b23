#include "collector/record/columns.hpp"

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

FlowRecord FlowColumns::row(size_t i) const {
  FlowRecord r;
#define NC_ROW(type, name) fromColumn(r.name, name[i]);
  NC_FLOW_COLUMNS(NC_ROW)
#undef NC_ROW
  return r;
}

namespace {

template <typename T>
void rangeOf(const std::vector<T>& v, ColumnStats& s) {
  for (const T& x : v) {
    uint64_t u = static_cast<uint64_t>(x);
    s.min = u < s.min ? u : s.min;
    s.max = u > s.max ? u : s.max;
  }
}

void rangeOf(const std::vector<IpAddr>& v, ColumnStats& s) {
  if (v.empty()) {
    return;
  }
  s.amin = v[0];
  s.amax = v[0];
  for (const IpAddr& a : v) {
    if (a < s.amin) {
      s.amin = a;
    }
    if (s.amax < a) {
      s.amax = a;
    }
  }
}

}  // namespace

void BlockSummary::compute(const FlowColumns& c) {
  rows = static_cast<uint32_t>(c.size());
  cols = {};
#define NC_RANGE(type, name) rangeOf(c.name, cols[static_cast<size_t>(Column::name)]);
  NC_FLOW_COLUMNS(NC_RANGE)
#undef NC_RANGE
}

}  // namespace nc
