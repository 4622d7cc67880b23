#pragma once
// Flow filters: nfdump's filter language (man nfdump, FILTER), extended with every field name of
// the registry (collector/record/fields.hpp), compiled once into a flat postfix program and
// evaluated column by column over FlowColumns.
//
//   text --lexer--> tokens --recursive descent--> postfix program: [leaf, leaf, AND, leaf, OR, NOT]
//
// The files: filter_syntax.hpp / filter_lexer.cpp (tokens, literals), filter_parse.cpp (one row
// per keyword: its parse rule and docs), filter_program.hpp (the program and the operation table),
// filter_ops.cpp (one row per leaf kind: columns, evaluation, pruning, printing), filter_eval.cpp,
// filter_prune.cpp, filter_print.cpp (the drivers over the program), filter_docs.cpp.
//
// A leaf is one test on one column (compare, mask, set membership, address prefix) or on a value
// derived from a few columns (duration, pps, bps, bpp). Evaluation runs each leaf as a tight loop
// over a column slice into a byte mask, and combines masks with AND/OR/NOT: no per-row virtual
// call, no string work. mayMatch() runs the same program over a block's min/max summary in
// three-valued logic so the store can skip blocks that cannot match.
//
// Counters: like nfdump, `packets`, `bytes`, `pps`, `bps` and `bpp` test the counters as exported
// (unscaled by sampling_rate). Aggregations rank by scaled counters unless asked for raw ones
// (collector/query/aggregate.hpp).
//
// This module stops at selection: it knows nothing of inputs (store, JSON) or output.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/record/columns.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::query {

// A compile error: a message and the 0-based byte offset in the filter text it points at.
struct FilterError {
  size_t offset = 0;
  std::string message;
  // "filter:1:13: port out of range 0..65535 (got 70000)\n  src port 70000\n              ^"
  std::string render(std::string_view filter) const;
};

enum class Cmp : uint8_t { kEq, kLt, kGt, kLe, kGe };

namespace detail {
struct Program;  // the compiled tree (collector/query/filter_program.hpp, internal)
}

class Filter {
 public:
  // Matches everything.
  Filter();

  // Compiles `text`; empty or blank text matches everything. On error returns nullopt and fills
  // `err` (when not null).
  static std::optional<Filter> compile(std::string_view text, FilterError* err = nullptr);

  // ANDs `since_ns <= first_ns < until_ns` onto the program. select() skips those
  // instructions for chunks of rows that all lie inside the window.
  void restrictTime(uint64_t since_ns, uint64_t until_ns);

  // Appends to `rows` the indices in [begin, end) of rows of `c` that match.
  // `in_window`: the caller knows every row lies inside the restrictTime window.
  void select(const FlowColumns& c, size_t begin, size_t end, std::vector<uint32_t>& rows,
              bool in_window = false) const;
  // One record (tests and small inputs; builds a one-row batch).
  bool matches(const FlowRecord& r) const;
  // False only when the summary proves that no row of the block can match.
  bool mayMatch(const BlockSummary& b) const;
  // True when the program is the constant "any".
  bool matchesAll() const;
  // True when every row inside the restrictTime window matches: the program is "any" or only
  // the window.
  bool matchesAllInWindow() const;
  // Every column select() and mayMatch() read (the scan's column projection).
  ColumnSet columns() const;

  // The program, one instruction per line (like nfdump -X).
  std::string dump() const;
  const std::string& text() const { return text_; }

  // The compiled program, for backends that translate it (filter_program.hpp; issue 15's SQL).
  const detail::Program& program() const { return *prog_; }

 private:
  Filter(std::string text, std::shared_ptr<const detail::Program> prog);
  std::string text_;
  // Immutable and shared by copies; restrictTime() replaces it.
  std::shared_ptr<const detail::Program> prog_;
};

// The filter keywords, one line each: syntax and meaning. Generated from the nfdump keyword table
// and the field registry; shown by `net-collector flows --help` and in docs/filters.md.
struct FilterKeywordDoc {
  std::string syntax;
  std::string meaning;
};
std::vector<FilterKeywordDoc> filterKeywords();
// Markdown table of filterKeywords() (docs/filters.md contains it; a test keeps it in step).
std::string filterKeywordsMarkdown();

// IP protocol number for a name ("tcp" -> 6), or -1.
int protoNumber(std::string_view name);
// "tcp", "udp", ... or the number.
std::string protoName(uint8_t proto);

}  // namespace nc::query
