#pragma once
// The field registry: one table naming every FlowRecord field that users see. It drives the JSON
// and CSV output (`net-collector flows --format json`), the table columns, `net-collector fields`,
// filter keywords and aggregation keys (collector/query/). docs/fields.md is generated from it
// (`net-collector fields --markdown`), so names cannot drift.
#include <nlohmann/json_fwd.hpp>

#include <span>
#include <string>
#include <string_view>

#include "collector/record/columns.hpp"
#include "collector/record/flow_record.hpp"

namespace nc {

// kName: a NameTable id (collector/record/names.hpp) shown as its text; filters take a name or a
// glob, aggregations group by it.
enum class FieldType { kTime, kAddr, kU64, kU32, kU16, kU8, kMac, kText, kName };

struct FieldDef {
  std::string_view name;  // stable snake_case JSON / CSV name
  FieldType type;
  std::string_view doc;
  // Writes the field of `r` into `out[name]`; returns false when the value is unknown and omitted.
  bool (*toJson)(const FlowRecord& r, nlohmann::json& out);
  // Reads the field from a JSON value; returns false when it has the wrong type or range.
  bool (*fromJson)(const nlohmann::json& v, FlowRecord& r);
  // Plain text for tables and CSV.
  std::string (*toText)(const FlowRecord& r);
  // The FlowColumns column holding the field: queries filter and aggregate on it
  // (collector/query/filter.hpp: every field name is also a filter keyword and aggregation key).
  Column column;
};

std::span<const FieldDef> fields();
const FieldDef* findField(std::string_view name);

// One JSON object with every known field of `r` (fields whose value is unknown are left out).
nlohmann::json toJson(const FlowRecord& r);
// Fills `r` from a JSON object written by toJson(). Unknown names are ignored; returns false and
// sets `why` when a known field has a bad value.
bool fromJson(const nlohmann::json& obj, FlowRecord& r, std::string* why);

// RFC 3339 UTC with milliseconds: "2026-11-26T15:37:34.123Z".
std::string formatTime(uint64_t unix_ns);
bool parseTime(std::string_view text, uint64_t& unix_ns);

}  // namespace nc
