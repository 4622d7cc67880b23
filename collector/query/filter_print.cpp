// Printing: the compiled program one instruction per line (`flows --explain`, like nfdump -X),
// each leaf through its kOps row (filter_ops.cpp); compile errors with a caret under the offset.
#include <fmt/format.h>

#include <algorithm>

#include "collector/query/filter.hpp"
#include "collector/query/filter_program.hpp"

namespace nc::query {

using detail::Instr;

std::string Filter::dump() const {
  const detail::Program& prog = *prog_;
  std::string out;
  for (size_t i = 0; i < prog.code.size(); ++i) {
    const Instr& in = prog.code[i];
    out += fmt::format("{:3}  ", i);
    switch (in.kind) {
      case Instr::Kind::kAnd:
        out += "AND\n";
        break;
      case Instr::Kind::kOr:
        out += "OR\n";
        break;
      case Instr::Kind::kNot:
        out += "NOT\n";
        break;
      case Instr::Kind::kLeaf: {
        const detail::Leaf& l = prog.leaves[in.leaf];
        out += detail::opDef(l.op).print(prog, l);
        out += '\n';
        break;
      }
    }
  }
  return out;
}

std::string FilterError::render(std::string_view filter) const {
  // The line holding the offset, and a caret under it.
  size_t line_start = 0;
  if (offset > 0) {
    size_t nl = filter.rfind('\n', offset - 1);
    line_start = nl == std::string_view::npos ? 0 : nl + 1;
  }
  size_t line_end = filter.find('\n', offset);
  std::string_view line =
      filter.substr(line_start, line_end == std::string_view::npos ? std::string_view::npos
                                                                   : line_end - line_start);
  size_t lineno =
      1 + static_cast<size_t>(std::count(filter.begin(), filter.begin() + line_start, '\n'));
  size_t col = offset - line_start;
  return fmt::format("filter:{}:{}: {}\n  {}\n  {}^", lineno, col + 1, message, line,
                     std::string(col, ' '));
}

}  // namespace nc::query
