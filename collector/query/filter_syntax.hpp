#pragma once
// Internal to collector/query: the filter's front end. Tokens and literal values
// (filter_lexer.cpp), and the keyword docs the parser's primitive table carries
// (filter_parse.cpp) for filterKeywords() (filter_docs.cpp). See filter_program.hpp for the map
// of the filter's files.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "collector/query/filter.hpp"

namespace nc::query::detail {

struct Token {
  enum class Kind {
    kWord,
    kString,
    kLParen,
    kRParen,
    kLBracket,
    kRBracket,
    kComma,
    kCmp,
    kNot,
    kAnd,
    kOr,
    kEnd
  };
  Kind kind = Kind::kEnd;
  std::string text;   // as written (kWord, kString)
  std::string lower;  // lower case (keywords are case-insensitive)
  Cmp cmp = Cmp::kEq;
  size_t offset = 0;
};

// Splits `s` into tokens ending with a kEnd token; false (and `err`) on a bad character or an
// unterminated string.
bool lex(std::string_view s, std::vector<Token>& out, FilterError& err);
// The token as an error message quotes it.
std::string describe(const Token& t);
std::string lowerOf(std::string_view s);

// Unsigned number with an optional k/M/G/T (x1000) scaling suffix; "0x" hex accepted.
bool parseNumber(std::string_view text, uint64_t& out);
// TCP flag letters (F S R P A U E C, X = FSRPAU) into a mask.
bool parseTcpFlags(std::string_view text, uint64_t& out);

// The documented primitives, in the order of `net-collector filters` (before the operators and
// the registry's fields).
std::vector<FilterKeywordDoc> primitiveDocs();

}  // namespace nc::query::detail
