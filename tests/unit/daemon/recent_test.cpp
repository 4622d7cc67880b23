// RecentRing: the newest records of a shard, oldest first, across wrap-around and batches larger
// than the ring, against a plain list of everything added.
#include <gtest/gtest.h>

#include <random>

#include "collector/daemon/recent.hpp"

namespace nc::daemon {
namespace {

TEST(RecentRing, KeepsTheNewestInOrderAcrossWrapAndLargeBatches) {
  std::mt19937 rng(7);
  for (size_t capacity : {1u, 5u, 64u}) {
    RecentRing ring(capacity);
    std::vector<uint64_t> added;
    uint64_t next_id = 1;
    for (int round = 0; round < 200; ++round) {
      size_t batch = rng() % (capacity * 3 + 2);  // 0, smaller and larger than the ring
      std::vector<FlowRecord> records(batch);
      for (auto& r : records) {
        r.received_ns = next_id;
        added.push_back(next_id++);
      }
      ring.add(records);
      size_t max = 1 + rng() % (capacity + 3);
      std::vector<FlowRecord> out;
      ring.copyTo(out, max);
      size_t expect = std::min({max, capacity, added.size()});
      ASSERT_EQ(out.size(), expect) << "capacity " << capacity << " round " << round;
      for (size_t i = 0; i < expect; ++i) {
        EXPECT_EQ(out[i].received_ns, added[added.size() - expect + i])
            << "capacity " << capacity << " round " << round << " index " << i;
      }
    }
  }
}

TEST(RecentRing, ZeroCapacityKeepsNothing) {
  RecentRing ring(0);
  std::vector<FlowRecord> records(3);
  ring.add(records);
  std::vector<FlowRecord> out;
  ring.copyTo(out, 10);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace nc::daemon
