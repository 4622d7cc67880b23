#include "collector/profile/definition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "collector/query/filter.hpp"
#include "collector/record/fields.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::profile {
namespace {

// nfsen's default colours are random; these are distinguishable on white and stack well.
constexpr std::string_view kPalette[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39",
};

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// "ADDR" or "ADDR/BITS".
bool parseNetwork(std::string_view s, std::string* why) {
  const size_t slash = s.find('/');
  IpAddr a;
  if (!IpAddr::parse(s.substr(0, slash), a)) {
    return false;
  }
  if (slash == std::string_view::npos) {
    return true;
  }
  const std::string_view bits = s.substr(slash + 1);
  unsigned v = 0;
  const auto [p, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), v);
  const unsigned max = a.isV4() ? 32 : 128;
  if (bits.empty() || ec != std::errc() || p != bits.data() + bits.size() || v > max) {
    *why = fmt::format("'{}' has a bad prefix length (0..{})", s, max);
    return false;
  }
  return true;
}

std::string timeText(uint64_t ns) {
  return ns == 0 ? std::string() : formatTime(ns);
}

}  // namespace

std::string_view toString(ProfileType t) {
  switch (t) {
    case ProfileType::kContinuous:
      return "continuous";
    case ProfileType::kHistory:
      return "history";
    case ProfileType::kShadow:
      return "shadow";
  }
  return "?";
}

bool parseProfileType(std::string_view text, ProfileType& out) {
  for (ProfileType t : {ProfileType::kContinuous, ProfileType::kHistory, ProfileType::kShadow}) {
    if (text == toString(t)) {
      out = t;
      return true;
    }
  }
  return false;
}

std::string DefError::toString() const {
  return path.empty() ? message : path + ": " + message;
}

bool validName(std::string_view name, std::string* why) {
  if (name.empty()) {
    *why = "must not be empty";
    return false;
  }
  if (name.size() > kMaxNameLength) {
    *why = fmt::format("is longer than {} characters", kMaxNameLength);
    return false;
  }
  for (char c : name) {
    if (!isNameChar(c)) {
      *why = fmt::format("'{}' may only contain letters, digits, '_' and '-'", name);
      return false;
    }
  }
  return true;
}

bool validColour(std::string_view colour, std::string* why) {
  if (colour.empty()) {
    return true;
  }
  bool ok = colour.size() == 7 && colour[0] == '#';
  for (size_t i = 1; ok && i < colour.size(); ++i) {
    ok = std::isxdigit(static_cast<unsigned char>(colour[i])) != 0;
  }
  if (!ok) {
    *why = fmt::format("'{}' is not a colour: use '#rrggbb' (six hex digits)", colour);
  }
  return ok;
}

bool validSource(std::string_view source, std::string* why) {
  if (source.empty()) {
    *why = "must not be empty";
    return false;
  }
  std::string net_why;
  if (parseNetwork(source, &net_why)) {
    return true;
  }
  if (!net_why.empty()) {
    *why = net_why;
    return false;
  }
  // A bridge name: what Open vSwitch accepts in practice, without spaces, quotes or slashes.
  if (source.size() > 255) {
    *why = "is longer than 255 characters";
    return false;
  }
  for (char c : source) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '\'' || c == '/' || c == ',' || c == '*' ||
        c == '?' || c == '[') {
      *why = fmt::format(
          "'{}' is neither an exporter address or network nor a bridge name (no spaces, quotes, "
          "'/', ',' or globs)",
          source);
      return false;
    }
  }
  return true;
}

bool validFilter(std::string_view filter, size_t* offset, std::string* why) {
  if (filter.size() > kMaxFilterLength) {
    *offset = 0;
    *why = fmt::format("is longer than {} bytes", kMaxFilterLength);
    return false;
  }
  query::FilterError err;
  if (query::Filter::compile(filter, &err)) {
    return true;
  }
  *offset = err.offset;
  *why = err.render(filter);
  return false;
}

std::vector<DefError> validateChannel(const ChannelDef& ch, const std::string& path) {
  std::vector<DefError> out;
  auto add = [&](std::string key, std::string message) {
    out.push_back({path + "." + key, std::move(message)});
  };
  std::string why;
  if (!validName(ch.name, &why)) {
    add("name", why);
  }
  if (!validColour(ch.colour, &why)) {
    add("colour", why);
  }
  if (ch.sign != '+' && ch.sign != '-') {
    add("sign", fmt::format("must be '+' or '-' (got '{}')", std::string(1, ch.sign)));
  }
  if (ch.order > kMaxChannelsPerProfile) {
    add("order", fmt::format("must be 0..{} (got {})", kMaxChannelsPerProfile, ch.order));
  }
  size_t offset = 0;
  if (!validFilter(ch.filter, &offset, &why)) {
    DefError e{path + ".filter", why, offset, true};
    out.push_back(std::move(e));
  }
  if (ch.sources.size() > kMaxSources) {
    add("sources", fmt::format("at most {} sources", kMaxSources));
  }
  for (size_t i = 0; i < ch.sources.size() && i < kMaxSources; ++i) {
    if (!validSource(ch.sources[i], &why)) {
      add(fmt::format("sources[{}]", i), why);
    }
  }
  return out;
}

std::vector<DefError> validate(const ProfileDef& def, uint64_t now_ns) {
  std::vector<DefError> out;
  std::string why;
  if (!validName(def.name, &why)) {
    out.push_back({"name", why});
  }
  if (def.group != "." && !validName(def.group, &why)) {
    out.push_back({"group", why + " (or '.' for none)"});
  }
  if (def.description.size() > 4096) {
    out.push_back({"description", "is longer than 4096 bytes"});
  }
  if (def.type == ProfileType::kHistory) {
    if (def.start_ns == 0 || def.end_ns == 0) {
      out.push_back({def.start_ns == 0 ? "start" : "end", "a history profile needs start and end"});
    } else if (def.start_ns >= def.end_ns) {
      out.push_back({"end", "must be after start"});
    } else if (def.end_ns > now_ns) {
      out.push_back({"end", "a history profile must end in the past (use continuous)"});
    }
    if (def.expire_ms != 0 || def.maxsize != 0) {
      out.push_back({def.expire_ms != 0 ? "expire" : "maxsize",
                     "applies to continuous profiles only (as in nfsen)"});
    }
  } else {
    if (def.end_ns != 0) {
      out.push_back(
          {"end", fmt::format("a {} profile has no end (use history)", toString(def.type))});
    }
    if (def.start_ns > now_ns + 60'000'000'000ull) {
      out.push_back({"start", "is in the future"});
    }
    if (def.type == ProfileType::kShadow && (def.expire_ms != 0 || def.maxsize != 0)) {
      out.push_back({def.expire_ms != 0 ? "expire" : "maxsize",
                     "a shadow profile owns no flow data: no expire or maxsize (as in nfsen)"});
    }
  }
  if (def.channels.size() > kMaxChannelsPerProfile) {
    out.push_back({"channels", fmt::format("at most {} channels", kMaxChannelsPerProfile)});
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < def.channels.size(); ++i) {
    const std::string path = fmt::format("channels[{}]", i);
    auto errs = validateChannel(def.channels[i], path);
    out.insert(out.end(), errs.begin(), errs.end());
    if (!seen.insert(def.channels[i].name).second) {
      out.push_back(
          {path + ".name", fmt::format("duplicate channel name '{}'", def.channels[i].name)});
    }
  }
  return out;
}

std::string channelColour(const ChannelDef& ch, size_t index) {
  if (!ch.colour.empty()) {
    return ch.colour;
  }
  return std::string(kPalette[index % std::size(kPalette)]);
}

std::vector<size_t> drawingOrder(const ProfileDef& def) {
  std::vector<size_t> idx(def.channels.size());
  for (size_t i = 0; i < idx.size(); ++i) {
    idx[i] = i;
  }
  auto key = [&](size_t i) {
    const ChannelDef& c = def.channels[i];
    const uint32_t order = c.order == 0 ? UINT32_MAX : c.order;
    return std::tuple(c.sign == '-' ? 1 : 0, order, i);
  };
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  return idx;
}

void normalizeOrders(ProfileDef& def) {
  uint32_t pos = 0;
  uint32_t neg = 0;
  for (size_t i : drawingOrder(def)) {
    ChannelDef& c = def.channels[i];
    c.order = c.sign == '-' ? ++neg : ++pos;
  }
}

nlohmann::json toJson(const ChannelDef& ch) {
  return {{"name", ch.name},     {"filter", ch.filter},
          {"colour", ch.colour}, {"sign", std::string(1, ch.sign)},
          {"order", ch.order},   {"sources", ch.sources}};
}

nlohmann::json toJson(const ProfileDef& def) {
  nlohmann::json j = {{"name", def.name},
                      {"group", def.group},
                      {"description", def.description},
                      {"type", std::string(toString(def.type))},
                      {"expire_ms", def.expire_ms},
                      {"maxsize", def.maxsize}};
  if (def.start_ns != 0) {
    j["start"] = timeText(def.start_ns);
  }
  if (def.end_ns != 0) {
    j["end"] = timeText(def.end_ns);
  }
  j["channels"] = nlohmann::json::array();
  for (const auto& c : def.channels) {
    j["channels"].push_back(toJson(c));
  }
  return j;
}

namespace {

bool getString(const nlohmann::json& j, const char* key, std::string& out, std::string* why) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return true;
  }
  if (!it->is_string()) {
    *why = fmt::format("'{}' must be a string", key);
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool getUint(const nlohmann::json& j, const char* key, uint64_t& out, std::string* why) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return true;
  }
  if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<int64_t>() < 0)) {
    *why = fmt::format("'{}' must be a whole number >= 0", key);
    return false;
  }
  out = it->get<uint64_t>();
  return true;
}

bool getTime(const nlohmann::json& j, const char* key, uint64_t& out, std::string* why) {
  std::string text;
  if (!getString(j, key, text, why)) {
    return false;
  }
  if (text.empty()) {
    return true;
  }
  if (!parseTime(text, out)) {
    *why = fmt::format("'{}' is not an RFC 3339 time (got '{}')", key, text);
    return false;
  }
  return true;
}

}  // namespace

bool fromJson(const nlohmann::json& j, ChannelDef& out, std::string* why) {
  if (!j.is_object()) {
    *why = "a channel must be an object";
    return false;
  }
  ChannelDef c;
  std::string sign = "+";
  uint64_t order = 0;
  if (!getString(j, "name", c.name, why) || !getString(j, "filter", c.filter, why) ||
      !getString(j, "colour", c.colour, why) || !getString(j, "sign", sign, why) ||
      !getUint(j, "order", order, why)) {
    return false;
  }
  if (sign.size() != 1) {
    *why = fmt::format("'sign' must be '+' or '-' (got '{}')", sign);
    return false;
  }
  c.sign = sign[0];
  c.order = static_cast<uint32_t>(std::min<uint64_t>(order, UINT32_MAX));
  auto it = j.find("sources");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      *why = "'sources' must be a list of strings";
      return false;
    }
    for (const auto& s : *it) {
      if (!s.is_string()) {
        *why = "'sources' must be a list of strings";
        return false;
      }
      c.sources.push_back(s.get<std::string>());
    }
  }
  if (c.name.empty()) {
    *why = "a channel needs a 'name'";
    return false;
  }
  out = std::move(c);
  return true;
}

bool fromJson(const nlohmann::json& j, ProfileDef& out, std::string* why) {
  if (!j.is_object()) {
    *why = "a profile must be an object";
    return false;
  }
  ProfileDef d;
  std::string type = "continuous";
  if (!getString(j, "name", d.name, why) || !getString(j, "group", d.group, why) ||
      !getString(j, "description", d.description, why) || !getString(j, "type", type, why) ||
      !getTime(j, "start", d.start_ns, why) || !getTime(j, "end", d.end_ns, why) ||
      !getUint(j, "expire_ms", d.expire_ms, why) || !getUint(j, "maxsize", d.maxsize, why)) {
    return false;
  }
  if (d.name.empty()) {
    *why = "a profile needs a 'name'";
    return false;
  }
  if (d.group.empty()) {
    d.group = ".";
  }
  if (!parseProfileType(type, d.type)) {
    *why = fmt::format("'type' must be continuous, history or shadow (got '{}')", type);
    return false;
  }
  auto it = j.find("channels");
  if (it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      *why = "'channels' must be a list";
      return false;
    }
    for (const auto& cj : *it) {
      ChannelDef c;
      if (!fromJson(cj, c, why)) {
        return false;
      }
      d.channels.push_back(std::move(c));
    }
  }
  out = std::move(d);
  return true;
}

}  // namespace nc::profile
