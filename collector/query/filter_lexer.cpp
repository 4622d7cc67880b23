// The filter's lexer and literal values: tokens, numbers with k/M/G scaling, TCP flag letters,
// protocol names.
#include <fmt/format.h>

#include <cctype>

#include "collector/query/filter_program.hpp"
#include "collector/query/filter_syntax.hpp"

namespace nc::query {
namespace detail {

// '*' and '?' let name globs go unquoted (in ifname tap*); other keywords reject them as values.
bool isWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '/' ||
         c == '-' || c == '_' || c == '+' || c == '*' || c == '?';
}

std::string lowerOf(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool lex(std::string_view s, std::vector<Token>& out, FilterError& err) {
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '#') {  // comment to end of line
      while (i < s.size() && s[i] != '\n') {
        ++i;
      }
      continue;
    }
    Token t;
    t.offset = i;
    auto two = [&](char a, char b) { return c == a && i + 1 < s.size() && s[i + 1] == b; };
    if (c == '(') {
      t.kind = Token::Kind::kLParen;
      ++i;
    } else if (c == ')') {
      t.kind = Token::Kind::kRParen;
      ++i;
    } else if (c == '[') {
      t.kind = Token::Kind::kLBracket;
      ++i;
    } else if (c == ']') {
      t.kind = Token::Kind::kRBracket;
      ++i;
    } else if (c == ',') {
      t.kind = Token::Kind::kComma;
      ++i;
    } else if (two('&', '&')) {
      t.kind = Token::Kind::kAnd;
      i += 2;
    } else if (two('|', '|')) {
      t.kind = Token::Kind::kOr;
      i += 2;
    } else if (two('=', '=')) {
      t.kind = Token::Kind::kCmp;
      t.cmp = Cmp::kEq;
      i += 2;
    } else if (two('>', '=')) {
      t.kind = Token::Kind::kCmp;
      t.cmp = Cmp::kGe;
      i += 2;
    } else if (two('<', '=')) {
      t.kind = Token::Kind::kCmp;
      t.cmp = Cmp::kLe;
      i += 2;
    } else if (c == '=' || c == '<' || c == '>') {
      t.kind = Token::Kind::kCmp;
      t.cmp = c == '=' ? Cmp::kEq : c == '<' ? Cmp::kLt : Cmp::kGt;
      ++i;
    } else if (c == '!') {
      t.kind = Token::Kind::kNot;
      ++i;
    } else if (c == '\'' || c == '"') {
      size_t close = s.find(c, i + 1);
      if (close == std::string_view::npos) {
        err = {i, "unterminated quoted string"};
        return false;
      }
      t.kind = Token::Kind::kString;
      t.text = std::string(s.substr(i + 1, close - i - 1));
      t.lower = lowerOf(t.text);
      i = close + 1;
    } else if (isWordChar(c)) {
      size_t j = i;
      while (j < s.size() && isWordChar(s[j])) {
        ++j;
      }
      t.text = std::string(s.substr(i, j - i));
      t.lower = lowerOf(t.text);
      i = j;
      if (t.lower == "and") {
        t.kind = Token::Kind::kAnd;
      } else if (t.lower == "or") {
        t.kind = Token::Kind::kOr;
      } else if (t.lower == "not") {
        t.kind = Token::Kind::kNot;
      } else if (t.lower == "eq" || t.lower == "lt" || t.lower == "gt" || t.lower == "le" ||
                 t.lower == "ge") {
        t.kind = Token::Kind::kCmp;
        t.cmp = t.lower == "eq"   ? Cmp::kEq
                : t.lower == "lt" ? Cmp::kLt
                : t.lower == "gt" ? Cmp::kGt
                : t.lower == "le" ? Cmp::kLe
                                  : Cmp::kGe;
      } else {
        t.kind = Token::Kind::kWord;
      }
    } else {
      err = {i, fmt::format("unexpected character '{}'", c)};
      return false;
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.kind = Token::Kind::kEnd;
  end.offset = s.size();
  out.push_back(end);
  return true;
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Token::Kind::kWord:
    case Token::Kind::kString:
      return t.text;
    case Token::Kind::kLParen:
      return "(";
    case Token::Kind::kRParen:
      return ")";
    case Token::Kind::kLBracket:
      return "[";
    case Token::Kind::kRBracket:
      return "]";
    case Token::Kind::kComma:
      return ",";
    case Token::Kind::kCmp:
      return cmpText(t.cmp);
    case Token::Kind::kNot:
      return "not";
    case Token::Kind::kAnd:
      return "and";
    case Token::Kind::kOr:
      return "or";
    case Token::Kind::kEnd:
      return "end of filter";
  }
  return "?";
}

// Unsigned number with an optional k/M/G (x1000) scaling suffix; "0x" hex accepted.
bool parseNumber(std::string_view text, uint64_t& out) {
  if (text.empty()) {
    return false;
  }
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    uint64_t v = 0;
    for (char c : text.substr(2)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) || v >> 60) {
        return false;
      }
      v = v * 16 +
          static_cast<uint64_t>(std::isdigit(static_cast<unsigned char>(c))
                                    ? c - '0'
                                    : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
    }
    out = v;
    return true;
  }
  uint64_t scale = 1;
  char last = static_cast<char>(std::tolower(static_cast<unsigned char>(text.back())));
  if (last == 'k' || last == 'm' || last == 'g' || last == 't') {
    scale = last == 'k'   ? 1000ULL
            : last == 'm' ? 1000000ULL
            : last == 'g' ? 1000000000ULL
                          : 1000000000000ULL;
    text.remove_suffix(1);
  }
  if (text.empty()) {
    return false;
  }
  uint64_t whole = 0;
  size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    if (whole > (UINT64_MAX - 9) / 10) {
      return false;
    }
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  if (i == 0) {
    return false;
  }
  double frac = 0;
  if (i < text.size() && text[i] == '.') {
    double f = 0.1;
    ++i;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      frac += (text[i] - '0') * f;
      f /= 10;
    }
  }
  if (i != text.size()) {
    return false;
  }
  if (scale != 1 && whole > UINT64_MAX / scale) {
    return false;
  }
  out = whole * scale + static_cast<uint64_t>(frac * static_cast<double>(scale));
  return true;
}

bool parseTcpFlags(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 10) {
    return false;
  }
  uint64_t v = 0;
  for (char c : text) {
    switch (std::toupper(static_cast<unsigned char>(c))) {
      case 'F':
        v |= 0x01;
        break;
      case 'S':
        v |= 0x02;
        break;
      case 'R':
        v |= 0x04;
        break;
      case 'P':
        v |= 0x08;
        break;
      case 'A':
        v |= 0x10;
        break;
      case 'U':
        v |= 0x20;
        break;
      case 'E':
        v |= 0x40;
        break;
      case 'C':
        v |= 0x80;
        break;
      case 'X':
        v |= 0x3f;
        break;
      default:
        return false;
    }
  }
  out = v;
  return true;
}

}  // namespace detail

namespace {

struct ProtoName {
  const char* name;
  uint8_t number;
};
constexpr ProtoName kProtos[] = {
    {"icmp", 1},   {"igmp", 2},     {"ggp", 3},     {"ipip", 4},   {"st", 5},         {"tcp", 6},
    {"cbt", 7},    {"egp", 8},      {"igp", 9},     {"pup", 12},   {"udp", 17},       {"idp", 22},
    {"rdp", 27},   {"dccp", 33},    {"ipv6", 41},   {"sdrp", 42},  {"rsvp", 46},      {"gre", 47},
    {"esp", 50},   {"ah", 51},      {"mobile", 55}, {"icmp6", 58}, {"ipv6-icmp", 58}, {"eigrp", 88},
    {"ospf", 89},  {"etherip", 97}, {"encap", 98},  {"pim", 103},  {"ipcomp", 108},   {"vrrp", 112},
    {"l2tp", 115}, {"isis", 124},   {"sctp", 132},  {"fc", 133},   {"udplite", 136},  {"mpls", 137},
};

}  // namespace

int protoNumber(std::string_view name) {
  std::string l = detail::lowerOf(name);
  for (const auto& p : kProtos) {
    if (l == p.name) {
      return p.number;
    }
  }
  return -1;
}

std::string protoName(uint8_t proto) {
  for (const auto& p : kProtos) {
    if (p.number == proto) {
      std::string n = p.name;
      for (char& c : n) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      return n;
    }
  }
  return std::to_string(proto);
}

}  // namespace nc::query
