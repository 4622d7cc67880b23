#pragma once
// Profile and channel definitions (nfsen's model) and their validation: the typed values the
// YAML `profiles:` section (config/) and the runtime ProfileStore (profile_store.hpp) share.
//
// A profile groups channels; a channel is a named nfdump filter (collector/query/filter.hpp) with
// a colour, a sign (+ drawn above the time axis, - below), an order (stacking position among the
// channels of its sign, 1 = next to the axis) and the sources it applies to (exporter addresses
// or networks, or Open vSwitch bridge names; none = every flow).
//
// Types, as in nfsen:
//   continuous  counted live from `start` on (default: when committed); a start in the past is
//               built from the stored flows first
//   history     built once from the stored flows over [start, end]; never updated live
//   shadow      a continuous profile that owns no flow data: graphs only (nfsen forces expire
//               and maxsize to 0 for it; so do we)
//
// This module is pure: no files, no RRD. Library nc_profile_def (config/ links it to validate).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nc::profile {

enum class ProfileType : uint8_t { kContinuous, kHistory, kShadow };
std::string_view toString(ProfileType t);
// "continuous" | "history" | "shadow".
bool parseProfileType(std::string_view text, ProfileType& out);

struct ChannelDef {
  std::string name;                  // [A-Za-z0-9_-], 1..64 characters, unique in its profile
  std::string filter = "any";        // nfdump filter syntax
  std::string colour;                // "#rrggbb"; "" = a palette colour chosen by position
  char sign = '+';                   // '+' above the axis, '-' below
  uint32_t order = 0;                // 1 = next to the axis; 0 = after the others of its sign
  std::vector<std::string> sources;  // exporter address or CIDR, or bridge name; empty = all
  bool operator==(const ChannelDef&) const = default;
};

struct ProfileDef {
  std::string name;         // [A-Za-z0-9_-], 1..64 characters, unique among all profiles
  std::string group = ".";  // a label for listings ("." = none); same characters as names
  std::string description;
  ProfileType type = ProfileType::kContinuous;
  // UNIX ns. continuous/shadow: start 0 = when committed, end must be 0. history: both required,
  // start < end <= now.
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint64_t expire_ms = 0;  // continuous only: keep at most this much history (0 = no limit)
  uint64_t maxsize = 0;    // continuous only: bytes (0 = no limit)
  std::vector<ChannelDef> channels;
  bool operator==(const ProfileDef&) const = default;
};

// One problem with a definition: the key path inside it ("channels[2].filter") and the message.
// A filter error's message is FilterError::render()'s text: offset, line and caret.
struct DefError {
  std::string path;
  std::string message;
  size_t filter_offset = 0;  // for filter errors: byte offset in the filter text
  bool is_filter = false;
  std::string toString() const;  // "channels[2].filter: ..."
};

// Limits of one installation (ProfileStore and the YAML loader apply the same).
inline constexpr size_t kMaxNameLength = 64;
inline constexpr size_t kMaxChannelsPerProfile = 256;
inline constexpr size_t kMaxProfiles = 256;
inline constexpr size_t kMaxFilterLength = 16 * 1024;
inline constexpr size_t kMaxSources = 64;

// Each returns true when valid; else false with the reason in `why` (not null).
bool validName(std::string_view name, std::string* why);
bool validColour(std::string_view colour, std::string* why);  // "#rrggbb" (or "")
bool validSource(std::string_view source, std::string* why);
// Compiles `filter`; on error fills `offset` and `why` (FilterError::render()).
bool validFilter(std::string_view filter, size_t* offset, std::string* why);

// Every problem of `def` (names, colours, signs, filters, sources, duplicates, type, times,
// limits). `now_ns` bounds history end times. Empty = valid.
std::vector<DefError> validate(const ProfileDef& def, uint64_t now_ns);
std::vector<DefError> validateChannel(const ChannelDef& ch, const std::string& path);

// The colour a channel is drawn with: its own, else the palette's entry for `index`.
std::string channelColour(const ChannelDef& ch, size_t index);

// Channels in drawing order: '+' channels by order (then position), then '-' ones. Order 0 is
// "after the others of its sign". Returns indices into def.channels.
std::vector<size_t> drawingOrder(const ProfileDef& def);
// Renumbers the orders of each sign to 1..n, keeping drawingOrder() (nfsen does this on every
// add and delete).
void normalizeOrders(ProfileDef& def);

// JSON form (ProfileStore's file and the control socket): {"name", "group", "description",
// "type", "start", "end" (RFC 3339 or omitted), "expire_ms", "maxsize", "channels": [{"name",
// "filter", "colour", "sign", "order", "sources"}]}. fromJson returns false with `why` on a
// missing name or a wrong type; it does not validate() (callers do).
nlohmann::json toJson(const ProfileDef& def);
nlohmann::json toJson(const ChannelDef& ch);
bool fromJson(const nlohmann::json& j, ProfileDef& out, std::string* why);
bool fromJson(const nlohmann::json& j, ChannelDef& out, std::string* why);

}  // namespace nc::profile
