#pragma once
// Output of flow lists and aggregates: aligned tables with human units, CSV, JSON lines.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "collector/query/aggregate.hpp"
#include "collector/query/query.hpp"
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

// Aggregated groups `idx` of `agg`: key columns, then flows, packets, bytes, pps, bps, bpp (and
// shares of the totals `t` in tables). `times` adds the first/last columns to tables (CSV and
// JSON always carry them).
void printGroups(std::ostream& out, const query::Aggregator& agg, const std::vector<size_t>& idx,
                 Format format, const query::ScanTotals& t, bool times);

// A time series (aggregation keyed by "time" alone): oldest first, empty buckets as zeros.
void printSeries(std::ostream& out, const query::Aggregator& agg, uint64_t bucket_ns,
                 Format format);

// "Summary: ..." line (table), or one JSON object / CSV row with the same numbers.
void printSummary(std::ostream& out, const query::ScanTotals& t, bool scaled, Format format);

}  // namespace nc::cli
