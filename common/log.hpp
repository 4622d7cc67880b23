#pragma once
// Logging to stderr for daemons and tools.
//
// One line per message. When stderr is connected to the systemd journal (JOURNAL_STREAM is set and
// matches stderr), each line starts with a sd-daemon priority prefix such as "<6>" so journald
// stores the level; otherwise lines look like
//   2026-11-26T15:37:34.123Z INFO  collector: listening on 0.0.0.0:2055
// Thread-safe; never use it per packet (see DESIGN.md).
#include <fmt/format.h>

#include <string_view>

namespace nc::log {

enum class Level { Debug = 0, Info = 1, Warning = 2, Error = 3 };

// Parses "debug", "info", "warning" (or "warn"), "error". Returns false on anything else.
bool parseLevel(std::string_view text, Level& out);
void setLevel(Level level);
Level level();
bool enabled(Level level);
// Writes one line with the given component tag. Use the helpers below instead.
void write(Level level, std::string_view component, std::string_view message);

template <typename... Args>
void debug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Debug)) {
    write(Level::Debug, component, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void info(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Info)) {
    write(Level::Info, component, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void warn(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::Warning)) {
    write(Level::Warning, component, fmt::format(f, std::forward<Args>(args)...));
  }
}
template <typename... Args>
void error(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  write(Level::Error, component, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace nc::log
