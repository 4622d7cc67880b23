#include "common/units.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace nc::units {
namespace {

// Splits "12.5MiB" into 12.5 and "MiB"; false when there is no leading number.
bool splitNumber(std::string_view text, double& number, std::string_view& suffix) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) {
    return false;
  }
  std::string digits(text.substr(0, i));
  char* end = nullptr;
  number = std::strtod(digits.c_str(), &end);
  if (end == nullptr || *end != '\0') {
    return false;
  }
  suffix = text.substr(i);
  while (!suffix.empty() && suffix.front() == ' ') {
    suffix.remove_prefix(1);
  }
  return true;
}

void setWhy(std::string* why, std::string text) {
  if (why != nullptr) {
    *why = std::move(text);
  }
}

}  // namespace

std::optional<uint64_t> parseSize(std::string_view text, std::string* why) {
  double n = 0;
  std::string_view suf;
  if (!splitNumber(text, n, suf)) {
    setWhy(why, fmt::format("'{}' is not a size (examples: 4096, 32MiB, 50GiB, 1.5G)", text));
    return std::nullopt;
  }
  struct Unit {
    std::string_view name;
    double factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"k", 1e3},
      {"K", 1e3},
      {"kB", 1e3},
      {"KB", 1e3},
      {"KiB", 1024.0},
      {"M", 1e6},
      {"MB", 1e6},
      {"MiB", 1024.0 * 1024},
      {"G", 1e9},
      {"GB", 1e9},
      {"GiB", 1024.0 * 1024 * 1024},
      {"T", 1e12},
      {"TB", 1e12},
      {"TiB", 1024.0 * 1024 * 1024 * 1024},
  };
  for (const auto& u : kUnits) {
    if (suf == u.name) {
      double v = n * u.factor;
      if (v > static_cast<double>(std::numeric_limits<uint64_t>::max() / 2)) {
        setWhy(why, fmt::format("'{}' is too large", text));
        return std::nullopt;
      }
      return static_cast<uint64_t>(std::llround(v));
    }
  }
  setWhy(why,
         fmt::format("'{}' has an unknown size unit '{}' (use B, KiB, MiB, GiB, TiB, k, M, G, T)",
                     text, suf));
  return std::nullopt;
}

std::optional<uint64_t> parseDurationMs(std::string_view text, std::string* why) {
  double n = 0;
  std::string_view suf;
  if (!splitNumber(text, n, suf)) {
    setWhy(why, fmt::format("'{}' is not a duration (examples: 500ms, 60s, 5m, 2h, 30d)", text));
    return std::nullopt;
  }
  double factor = 0;
  if (suf.empty() || suf == "s") {
    factor = 1000;
  } else if (suf == "ms") {
    factor = 1;
  } else if (suf == "m" || suf == "min") {
    factor = 60e3;
  } else if (suf == "h") {
    factor = 3600e3;
  } else if (suf == "d") {
    factor = 86400e3;
  } else if (suf == "w") {
    factor = 7 * 86400e3;
  } else {
    setWhy(why, fmt::format("'{}' has an unknown duration unit '{}' (use ms, s, m, h, d, w)", text,
                            suf));
    return std::nullopt;
  }
  double v = n * factor;
  if (v > 1e15) {
    setWhy(why, fmt::format("'{}' is too long", text));
    return std::nullopt;
  }
  return static_cast<uint64_t>(std::llround(v));
}

std::string formatBytes(uint64_t bytes) {
  static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= 1024 && i < 5) {
    v /= 1024;
    ++i;
  }
  if (i == 0) {
    return fmt::format("{} B", bytes);
  }
  return fmt::format("{:.1f} {}", v, kNames[i]);
}

std::string formatCount(double value) {
  static constexpr const char* kNames[] = {"", " k", " M", " G", " T"};
  int i = 0;
  while (std::fabs(value) >= 1000 && i < 4) {
    value /= 1000;
    ++i;
  }
  if (i == 0) {
    return fmt::format("{:.0f}", value);
  }
  return fmt::format("{:.1f}{}", value, kNames[i]);
}

std::string formatDurationMs(uint64_t ms) {
  if (ms % 1000 != 0) {
    return fmt::format("{}ms", ms);
  }
  uint64_t s = ms / 1000;
  if (s != 0 && s % 86400 == 0) {
    return fmt::format("{}d", s / 86400);
  }
  if (s != 0 && s % 3600 == 0) {
    return fmt::format("{}h", s / 3600);
  }
  if (s != 0 && s % 60 == 0) {
    return fmt::format("{}m", s / 60);
  }
  return fmt::format("{}s", s);
}

}  // namespace nc::units
