#pragma once
// RecentFlows: the last N decoded flows of each receive shard, kept in memory so that
// `net-collector flows --live` can show what is arriving right now. Bounded: a ring per shard.
// The shard thread takes the ring's mutex once per batch (never per datagram); readers copy out.
#include <mutex>
#include <span>
#include <vector>

#include "collector/decode/decoder.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::daemon {

class RecentRing {
 public:
  explicit RecentRing(size_t capacity) : ring_(capacity) {}
  void add(std::span<const FlowRecord> records);
  // Appends up to the newest `max` records (oldest first) to `out`.
  void copyTo(std::vector<FlowRecord>& out, size_t max) const;

 private:
  mutable std::mutex mutex_;
  std::vector<FlowRecord> ring_;
  size_t next_ = 0;
  size_t size_ = 0;
};

}  // namespace nc::daemon
