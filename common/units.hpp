#pragma once
// Parsing of the human units used in YAML and on the command line:
//   sizes      "32MiB", "50GiB", "1.5G", "4096"        (IEC and SI suffixes; bare number = bytes)
//   durations  "60s", "500ms", "5m", "2h", "30d", "1w" (bare number = seconds)
// and their formatting for output.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nc::units {

// Returns the number of bytes, or nullopt with a reason in `why`.
std::optional<uint64_t> parseSize(std::string_view text, std::string* why = nullptr);
// Returns the duration in milliseconds, or nullopt with a reason in `why`.
std::optional<uint64_t> parseDurationMs(std::string_view text, std::string* why = nullptr);

// "1.5 GiB", "512 B".
std::string formatBytes(uint64_t bytes);
// "1.2 M", "950", for counts; SI (1000) steps.
std::string formatCount(double value);
// "60s", "1h30m", "30d".
std::string formatDurationMs(uint64_t ms);

}  // namespace nc::units
