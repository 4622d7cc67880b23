#pragma once
// The wall clock as UNIX nanoseconds (the unit of every time in FlowRecord and events).
#include <chrono>
#include <cstdint>

namespace nc {

inline uint64_t unixNowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace nc
