#pragma once
// JSON for statistics structs declared with NC_STATS_DEFINE (collector/metrics/stats.hpp): the
// daemon's status answers are built with toJson(), the CLI reads them back with counterValue().
// Header-only; needs nlohmann_json.
#include <nlohmann/json.hpp>
#include <string>

#include "collector/metrics/stats.hpp"

namespace nc::metrics {

// {key: value, ...} for every counter of `stats`. A CountsBy counter becomes an object of its
// non-zero exposed slots ({"truncated": 3}), empty when all are 0. A struct with a member
// `template <typename Json> void jsonExtras(Json&) const` adds its other keys after them.
template <typename Stats>
nlohmann::json toJson(const Stats& stats) {
  nlohmann::json out = nlohmann::json::object();
  stats.forEach([&](const MetricInfo& info, const auto& value) {
    using V = std::decay_t<decltype(value)>;
    if constexpr (IsCountsBy<V>::value) {
      nlohmann::json by = nlohmann::json::object();
      for (size_t i = V::LabelType::first; i < value.size(); ++i) {
        if (value[i] != 0) {
          by[std::string(V::LabelType::name(i))] = value[i];
        }
      }
      out[std::string(info.key)] = std::move(by);
    } else {
      out[std::string(info.key)] = value;
    }
  });
  if constexpr (requires { stats.jsonExtras(out); }) {
    stats.jsonExtras(out);  // what a stats struct keeps besides counters (ingest: denied sources)
  }
  return out;
}

// The counter `info` read back from such an object (a labelled one summed over its labels); 0
// when absent or not a number.
inline uint64_t counterValue(const nlohmann::json& object, const MetricInfo& info) {
  auto number = [](const nlohmann::json& v) -> uint64_t {
    if (v.is_number_unsigned()) {
      return v.get<uint64_t>();
    }
    if (v.is_number_integer() && v.get<int64_t>() > 0) {
      return static_cast<uint64_t>(v.get<int64_t>());
    }
    return 0;
  };
  if (!object.is_object()) {
    return 0;
  }
  auto it = object.find(std::string(info.key));
  if (it == object.end()) {
    return 0;
  }
  if (!it->is_object()) {
    return number(*it);
  }
  uint64_t sum = 0;
  for (const auto& v : *it) {
    sum += number(v);
  }
  return sum;
}

}  // namespace nc::metrics
