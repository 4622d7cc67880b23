#pragma once
// Flow inputs that are not the store: JSON files read into FlowColumns.
//
// Accepted, detected per object:
//   - net-collector's own JSON (`flows --format json`): one object per line, registry names;
//   - nfdump's `nfdump -o json`: one array of objects ("first", "src4_addr", "in_packets", ...).
//     nfdump prints local time without a zone: read it as local time (TZ) like nfdump wrote it.
//     ICMP flows get dst_port = type * 256 + code, as nfdump stores them, so `port` filters agree.
// Either may be a JSON array or a stream of objects (one per line or concatenated).
// An object with none of the flow fields (`net-collector fields`) is an error naming its line,
// like a bad value: unknown keys beside known ones are ignored.
#include <iosfwd>
#include <string>

#include "collector/record/columns.hpp"

namespace nc::query {

// Reads flows from `path` ("-" = stdin) and appends them to `out`. Throws std::runtime_error with
// "path:line: reason" on unreadable files and bad objects.
void readFlowsFile(const std::string& path, FlowColumns& out);
// The same from a stream (`name` is used in messages).
void readFlows(std::istream& in, const std::string& name, FlowColumns& out);

}  // namespace nc::query
