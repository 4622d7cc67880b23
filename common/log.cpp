#include "common/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace nc::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::mutex g_mutex;

// True when stderr is the journal stream systemd handed us (see systemd.exec(5), $JOURNAL_STREAM).
bool stderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr) {
    return false;
  }
  unsigned long dev = 0;
  unsigned long ino = 0;
  if (std::sscanf(js, "%lu:%lu", &dev, &ino) != 2) {
    return false;
  }
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) {
    return false;
  }
  return st.st_dev == dev && st.st_ino == ino;
}

const bool g_journal = stderrIsJournal();

const char* levelName(Level l) {
  switch (l) {
    case Level::Debug:
      return "DEBUG";
    case Level::Info:
      return "INFO ";
    case Level::Warning:
      return "WARN ";
    case Level::Error:
      return "ERROR";
  }
  return "?";
}

int syslogPriority(Level l) {
  switch (l) {
    case Level::Debug:
      return 7;
    case Level::Info:
      return 6;
    case Level::Warning:
      return 4;
    case Level::Error:
      return 3;
  }
  return 6;
}

}  // namespace

bool parseLevel(std::string_view text, Level& out) {
  if (text == "debug") {
    out = Level::Debug;
  } else if (text == "info") {
    out = Level::Info;
  } else if (text == "warning" || text == "warn") {
    out = Level::Warning;
  } else if (text == "error") {
    out = Level::Error;
  } else {
    return false;
  }
  return true;
}

void setLevel(Level l) {
  g_level.store(static_cast<int>(l), std::memory_order_relaxed);
}
Level level() {
  return static_cast<Level>(g_level.load(std::memory_order_relaxed));
}
bool enabled(Level l) {
  return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed);
}

void write(Level l, std::string_view component, std::string_view message) {
  std::string line;
  if (g_journal) {
    line = fmt::format("<{}>{}: {}\n", syslogPriority(l), component, message);
  } else {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    std::tm tm{};
    gmtime_r(&ts.tv_sec, &tm);
    line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {}: {}\n", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       ts.tv_nsec / 1000000, levelName(l), component, message);
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace nc::log
