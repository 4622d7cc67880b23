#pragma once
// Shared by the store tests: every column of a flow as bytes, so two rows compare equal iff all
// their fields are equal.
#include <string>

#include "collector/record/columns.hpp"

namespace nc::test {

inline std::string rowKey(const FlowRecord& r) {
  std::string k;
#define NC_KEY(type, name)                                  \
  {                                                         \
    auto v = static_cast<type>(r.name);                     \
    k.append(reinterpret_cast<const char*>(&v), sizeof(v)); \
  }
  NC_FLOW_COLUMNS(NC_KEY)
#undef NC_KEY
  return k;
}

}  // namespace nc::test
