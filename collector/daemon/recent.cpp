#include "collector/daemon/recent.hpp"

#include <algorithm>

namespace nc::daemon {

void RecentRing::add(std::span<const FlowRecord> records) {
  if (ring_.empty()) {
    return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const FlowRecord& r : records) {
    ring_[next_] = r;
    next_ = (next_ + 1) % ring_.size();
    size_ = std::min(size_ + 1, ring_.size());
  }
}

void RecentRing::copyTo(std::vector<FlowRecord>& out, size_t max) const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = std::min(max, size_);
  size_t start = (next_ + ring_.size() - n) % ring_.size();
  for (size_t i = 0; i < n; ++i) {
    out.push_back(ring_[(start + i) % ring_.size()]);
  }
}

}  // namespace nc::daemon
