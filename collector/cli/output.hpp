#pragma once
// Output of flow lists and aggregates: aligned tables with human units, CSV, JSON lines.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "collector/record/flow_record.hpp"

namespace nc::cli {

enum class Format { kTable, kCsv, kJson };

// "table", "csv", "json"; "auto" = table on a terminal, JSON lines otherwise.
bool parseFormat(const std::string& text, Format& out);

// A simple text table: header row + rows, columns right-aligned when numeric.
void printTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows,
                const std::vector<bool>& numeric);

void printFlows(std::ostream& out, const std::vector<FlowRecord>& flows, Format format);

}  // namespace nc::cli
