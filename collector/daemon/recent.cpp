#include "collector/daemon/recent.hpp"

#include <algorithm>

namespace nc::daemon {

void RecentRing::add(std::span<const FlowRecord> records) {
  if (ring_.empty()) {
    return;
  }
  if (records.size() > ring_.size()) {
    records = records.last(ring_.size());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  // At most two contiguous copies (up to the end of the ring, then from its start): this runs for
  // every decoded record on the receive thread, so no per-record division or branch.
  size_t first = std::min(records.size(), ring_.size() - next_);
  std::copy(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(first),
            ring_.begin() + static_cast<std::ptrdiff_t>(next_));
  std::copy(records.begin() + static_cast<std::ptrdiff_t>(first), records.end(), ring_.begin());
  next_ = (next_ + records.size()) % ring_.size();
  size_ = std::min(size_ + records.size(), ring_.size());
}

void RecentRing::copyTo(std::vector<FlowRecord>& out, size_t max) const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = std::min(max, size_);
  if (n == 0) {
    return;
  }
  size_t start = (next_ + ring_.size() - n) % ring_.size();
  for (size_t i = 0; i < n; ++i) {
    out.push_back(ring_[(start + i) % ring_.size()]);
  }
}

}  // namespace nc::daemon
