#pragma once
// One comparison of two aggregation groups' counters for the query tests.
#include <gtest/gtest.h>

#include <string>

#include "collector/query/aggregate.hpp"

namespace nc::test {

inline void expectSameCounters(const query::Counters& a, const query::Counters& b,
                               const std::string& what) {
  EXPECT_EQ(a.flows, b.flows) << what;
  EXPECT_EQ(a.packets, b.packets) << what;
  EXPECT_EQ(a.bytes, b.bytes) << what;
  EXPECT_EQ(a.first_ns, b.first_ns) << what;
  EXPECT_EQ(a.last_ns, b.last_ns) << what;
}

}  // namespace nc::test
