// `net-collector filters` and docs/filters.md: the primitive table's docs (filter_parse.cpp),
// the operators, then one line per registry field.
#include <fmt/format.h>

#include "collector/query/filter.hpp"
#include "collector/query/filter_syntax.hpp"
#include "collector/record/fields.hpp"

namespace nc::query {

std::vector<FilterKeywordDoc> filterKeywords() {
  std::vector<FilterKeywordDoc> out = detail::primitiveDocs();
  const FilterKeywordDoc kOperators[] = {
      {"EXPR and EXPR, EXPR && EXPR", "both"},
      {"EXPR or EXPR, EXPR || EXPR", "either"},
      {"not EXPR, ! EXPR, ( EXPR )", "negation, grouping; '#' starts a comment"},
      {"CMP", "=, ==, <, >, <=, >=, eq, lt, gt, le, ge (default ==)"},
  };
  out.insert(out.end(), std::begin(kOperators), std::end(kOperators));
  for (const auto& f : fields()) {
    std::string syntax;
    switch (f.type) {
      case FieldType::kAddr:
        syntax = fmt::format("{0} ADDR[/BITS], {0} in [ADDR ...]", f.name);
        break;
      case FieldType::kMac:
        syntax = fmt::format("{} MAC", f.name);
        break;
      case FieldType::kTime:
        syntax = fmt::format("{} [CMP] TIME", f.name);
        break;
      case FieldType::kText:
        syntax = fmt::format("{} NAME", f.name);
        break;
      case FieldType::kName:
        syntax = fmt::format("{} NAME-OR-GLOB", f.name);
        break;
      default:
        syntax = fmt::format("{0} [CMP] N, {0} in [N ...]", f.name);
        break;
    }
    out.push_back({syntax, std::string(f.doc)});
  }
  return out;
}

std::string filterKeywordsMarkdown() {
  std::string out = "| filter | matches |\n|---|---|\n";
  for (const auto& k : filterKeywords()) {
    std::string s = k.syntax;
    std::string escaped;
    for (char c : s) {
      if (c == '|') {
        escaped += "\\|";
      } else {
        escaped += c;
      }
    }
    out += fmt::format("| `{}` | {} |\n", escaped, k.meaning);
  }
  return out;
}

}  // namespace nc::query
