#pragma once
// Helpers the hand-timed benchmarks share (nc-bench-correlate, nc-bench-profile).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>

namespace nc::bench {

// The measured calls' time: this thread's CPU time (what the figures use; other processes on the
// machine do not inflate it) and wall time (what a preempted thread also waits).
struct Lap {
  double cpu = 0;
  double wall = 0;
};

class Stopwatch {
 public:
  Stopwatch() : cpu_(cpuNow()), wall_(std::chrono::steady_clock::now()) {}
  Lap lap() const {
    return {cpuNow() - cpu_,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_).count()};
  }

 private:
  static double cpuNow() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  }
  double cpu_;
  std::chrono::steady_clock::time_point wall_;
};

// This process's resident set size in bytes (0 when /proc is unreadable).
inline uint64_t rssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) {
    return 0;
  }
  unsigned long size = 0;
  unsigned long resident = 0;
  if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) {
    resident = 0;
  }
  std::fclose(f);
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace nc::bench
