#include "collector/query/filter.hpp"

#include "collector/query/name_match.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "collector/query/column_access.hpp"
#include "collector/record/fields.hpp"

namespace nc::query {
namespace {

// ---------------------------------------------------------------------------------------------
// Lexer

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

// ---------------------------------------------------------------------------------------------
// Protocol names

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

// ---------------------------------------------------------------------------------------------
// Value helpers

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

// Builds the prefix `addr/bits` (bits in the address family's own length) in 128-bit form.
Prefix makePrefix(const IpAddr& addr, unsigned bits) {
  Prefix p;
  p.bits = static_cast<uint8_t>(addr.isV4() ? bits + 96 : bits);
  p.net = addr;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = p.bits > i * 8 ? std::min(8u, p.bits - i * 8) : 0;
    uint8_t m = keep == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    p.net.bytes[i] &= m;
  }
  return p;
}

void prefixMask(uint8_t bits, uint64_t& hi, uint64_t& lo) {
  uint8_t m[16];
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = bits > i * 8 ? std::min(8u, bits - i * 8u) : 0;
    m[i] = keep == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
  }
  std::memcpy(&hi, m, 8);
  std::memcpy(&lo, m + 8, 8);
}

// Highest address of a prefix.
IpAddr prefixLast(const Prefix& p) {
  IpAddr a = p.net;
  for (unsigned i = 0; i < 16; ++i) {
    unsigned keep = p.bits > i * 8 ? std::min(8u, p.bits - i * 8u) : 0;
    a.bytes[i] |= static_cast<uint8_t>(keep >= 8 ? 0 : (0xff >> keep));
  }
  return a;
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

uint64_t columnMax(Column col) {
  uint64_t m = 0;
  FlowColumns none;
  detail::visitColumn(none, col, [&](const auto& vec) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    if constexpr (std::is_integral_v<T>) {
      m = static_cast<uint64_t>(std::numeric_limits<T>::max());
    }
  });
  return m;
}

using detail::columnValue;
using detail::visitColumn;

const char* cmpText(Cmp c) {
  switch (c) {
    case Cmp::kEq:
      return "==";
    case Cmp::kLt:
      return "<";
    case Cmp::kGt:
      return ">";
    case Cmp::kLe:
      return "<=";
    case Cmp::kGe:
      return ">=";
  }
  return "?";
}

const char* columnName(Column col) {
  switch (col) {
#define NC_NAME(type, name) \
  case Column::name:        \
    return #name;
    NC_FLOW_COLUMNS(NC_NAME)
#undef NC_NAME
  }
  return "?";
}

// Which side(s) a primitive applies to.
enum class Side { kEither, kSrc, kDst };

}  // namespace

// ---------------------------------------------------------------------------------------------
// Compiler: recursive descent emitting postfix code.

class Compiler {
 public:
  Compiler(std::string_view text, Filter& f) : text_(text), f_(f) {}

  bool run(FilterError& err) {
    if (!lex(text_, toks_, err)) {
      return false;
    }
    if (toks_.size() == 1) {  // blank: any
      leaf(Leaf{});
      return true;
    }
    if (!parseOr()) {
      err = err_;
      return false;
    }
    if (peek().kind != Token::Kind::kEnd) {
      err = peek().kind == Token::Kind::kRParen
                ? FilterError{peek().offset, "unbalanced ')'"}
                : FilterError{peek().offset,
                              fmt::format("expected 'and', 'or' or the end of the filter, got '{}'",
                                          describe(peek()))};
      return false;
    }
    return true;
  }

 private:
  // --- token access
  const Token& peek(size_t ahead = 0) const {
    size_t i = std::min(pos_ + ahead, toks_.size() - 1);
    return toks_[i];
  }
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) {
      ++pos_;
    }
    return t;
  }
  bool peekWord(std::string_view w, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.kind == Token::Kind::kWord && t.lower == w;
  }
  bool acceptWord(std::string_view w) {
    if (peekWord(w)) {
      next();
      return true;
    }
    return false;
  }
  static std::string describe(const Token& t) {
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
  bool fail(const Token& at, std::string msg) {
    if (!failed_) {
      err_ = {at.offset, std::move(msg)};
      failed_ = true;
    }
    return false;
  }
  bool expectValue(const Token*& out, std::string_view what) {
    const Token& t = peek();
    if (t.kind != Token::Kind::kWord && t.kind != Token::Kind::kString) {
      return fail(t, fmt::format("expected {}, got '{}'", what, describe(t)));
    }
    out = &next();
    return true;
  }

  // --- code emission
  void leaf(const Leaf& l) {
    f_.leaves_.push_back(l);
    f_.program_.push_back({Instr::Kind::kLeaf, static_cast<uint32_t>(f_.leaves_.size() - 1)});
  }
  void op(Instr::Kind k) { f_.program_.push_back({k, 0}); }

  // Emits the leaf built by `make(col)` for one or both columns.
  template <typename Make>
  void sides(Side side, Column src, Column dst, Make make) {
    if (side == Side::kSrc) {
      leaf(make(src));
    } else if (side == Side::kDst) {
      leaf(make(dst));
    } else {
      leaf(make(src));
      leaf(make(dst));
      op(Instr::Kind::kOr);
    }
  }

  // --- grammar
  bool parseOr() {
    if (!parseAnd()) {
      return false;
    }
    while (peek().kind == Token::Kind::kOr) {
      next();
      if (!parseAnd()) {
        return false;
      }
      op(Instr::Kind::kOr);
    }
    return true;
  }
  bool parseAnd() {
    if (!parseNot()) {
      return false;
    }
    while (peek().kind == Token::Kind::kAnd) {
      next();
      if (!parseNot()) {
        return false;
      }
      op(Instr::Kind::kAnd);
    }
    return true;
  }
  bool parseNot() {
    const Token& t = peek();
    if (t.kind == Token::Kind::kNot) {
      next();
      negated_ = !negated_;
      bool ok = parseNot();
      negated_ = !negated_;
      if (!ok) {
        return false;
      }
      op(Instr::Kind::kNot);
      return true;
    }
    if (t.kind == Token::Kind::kLParen) {
      next();
      if (!parseOr()) {
        return false;
      }
      if (peek().kind != Token::Kind::kRParen) {
        return fail(peek(), fmt::format("expected ')' to close the '(' at column {}, got '{}'",
                                        t.offset + 1, describe(peek())));
      }
      next();
      return true;
    }
    if (t.kind == Token::Kind::kEnd) {
      return fail(t, "unexpected end of filter: expected a filter primitive");
    }
    if (t.kind != Token::Kind::kWord) {
      return fail(t, fmt::format("expected a filter primitive, got '{}'", describe(t)));
    }
    return parsePrimitive();
  }

  // Optional comparator (default ==) then a number in [0, max] with k/M/G scaling.
  bool parseCmpNumber(Cmp& cmp, uint64_t& v, uint64_t max, std::string_view what) {
    cmp = Cmp::kEq;
    if (peek().kind == Token::Kind::kCmp) {
      cmp = next().cmp;
    }
    const Token* t = nullptr;
    if (!expectValue(t, fmt::format("a number ({})", what))) {
      return false;
    }
    if (!parseNumber(t->text, v)) {
      return fail(*t, fmt::format("expected a number ({}), got '{}'", what, t->text));
    }
    if (v > max) {
      return fail(*t, fmt::format("{} out of range 0..{} (got {})", what, max, t->text));
    }
    return true;
  }

  // `[ a b, c ]` list of numbers into a new set.
  bool parseNumberList(uint64_t max, std::string_view what, uint32_t& index) {
    const Token& open = peek();
    if (open.kind != Token::Kind::kLBracket) {
      return fail(open, fmt::format("expected '[' to start a list of {}", what));
    }
    next();
    std::vector<uint64_t> set;
    while (true) {
      const Token& t = peek();
      if (t.kind == Token::Kind::kComma) {
        next();
        continue;
      }
      if (t.kind == Token::Kind::kRBracket) {
        next();
        break;
      }
      if (t.kind != Token::Kind::kWord) {
        return fail(t, fmt::format("expected a {} or ']', got '{}'", what, describe(t)));
      }
      uint64_t v = 0;
      if (!parseNumber(t.text, v)) {
        return fail(t, fmt::format("expected a {}, got '{}'", what, t.text));
      }
      if (v > max) {
        return fail(t, fmt::format("{} out of range 0..{} (got {})", what, max, t.text));
      }
      set.push_back(v);
      next();
    }
    if (set.empty()) {
      return fail(open, fmt::format("empty list of {}", what));
    }
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
    f_.sets_.push_back(std::move(set));
    index = static_cast<uint32_t>(f_.sets_.size() - 1);
    return true;
  }

  // An address, optionally "/bits" (when allow_prefix).
  bool parseAddrToken(const Token& t, bool allow_prefix, Prefix& out) {
    std::string_view s = t.text;
    size_t slash = s.find('/');
    std::string_view addr = s.substr(0, slash);
    IpAddr a;
    if (!IpAddr::parse(addr, a)) {
      return fail(t, fmt::format("expected an IPv4 or IPv6 address, got '{}' (host names are "
                                 "not resolved)",
                                 t.text));
    }
    unsigned max = a.isV4() ? 32 : 128;
    unsigned bits = max;
    if (slash != std::string_view::npos) {
      if (!allow_prefix) {
        return fail(t,
                    fmt::format("expected an address without '/', got '{}' (use 'net')", t.text));
      }
      uint64_t b = 0;
      std::string_view bt = s.substr(slash + 1);
      if (bt.empty() ||
          !std::all_of(bt.begin(), bt.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
          !parseNumber(bt, b) || b > max) {
        return fail(t, fmt::format("prefix length must be 0..{} (got '{}')", max, bt));
      }
      bits = static_cast<unsigned>(b);
    }
    out = makePrefix(a, bits);
    return true;
  }

  // `[ addr addr/bits, ... ]`
  bool parseAddrList(uint32_t& index) {
    const Token& open = next();  // '['
    std::vector<Prefix> list;
    while (true) {
      const Token& t = peek();
      if (t.kind == Token::Kind::kComma) {
        next();
        continue;
      }
      if (t.kind == Token::Kind::kRBracket) {
        next();
        break;
      }
      if (t.kind != Token::Kind::kWord) {
        return fail(t, fmt::format("expected an address or ']', got '{}'", describe(t)));
      }
      Prefix p;
      if (!parseAddrToken(t, true, p)) {
        return false;
      }
      list.push_back(p);
      next();
    }
    if (list.empty()) {
      return fail(open, "empty address list");
    }
    f_.prefix_lists_.push_back(std::move(list));
    index = static_cast<uint32_t>(f_.prefix_lists_.size() - 1);
    return true;
  }

  // After `ip`/`host`/`net`/...: address tests on (src, dst) columns.
  bool parseAddress(Side side, Column src, Column dst, bool net) {
    if (!net && peekWord("in")) {  // ip in [list]
      next();
      if (peek().kind != Token::Kind::kLBracket) {
        return fail(peek(), "expected '[' to start an address list");
      }
    }
    if (peek().kind == Token::Kind::kLBracket) {
      uint32_t idx = 0;
      if (!parseAddrList(idx)) {
        return false;
      }
      sides(side, src, dst, [&](Column c) {
        Leaf l;
        l.op = Leaf::Op::kPrefixList;
        l.col = c;
        l.index = idx;
        return l;
      });
      return true;
    }
    const Token* t = nullptr;
    if (!expectValue(t, net ? "a network (a.b.c.d/bits or a.b.c.d m.m.m.m)" : "an IP address")) {
      return false;
    }
    Prefix p;
    if (net) {
      bool has_slash = t->text.find('/') != std::string::npos;
      if (!parseAddrToken(*t, true, p)) {
        return false;
      }
      if (!has_slash) {  // net a.b.c.d m.m.m.m
        const Token& m = peek();
        IpAddr mask;
        if (m.kind != Token::Kind::kWord || !IpAddr::parse(m.text, mask) ||
            mask.isV4() != p.net.isV4()) {
          return fail(m, fmt::format("expected '/bits' after the network or a netmask, got '{}'",
                                     describe(m)));
        }
        unsigned bits = 0;
        bool ended = false;
        for (unsigned i = mask.isV4() ? 12 : 0; i < 16; ++i) {
          for (int b = 7; b >= 0; --b) {
            bool set = (mask.bytes[i] >> b) & 1;
            if (set && ended) {
              return fail(m, fmt::format("netmask '{}' is not contiguous", m.text));
            }
            if (set) {
              ++bits;
            } else {
              ended = true;
            }
          }
        }
        next();
        IpAddr a = t->text.empty() ? IpAddr{} : p.net;
        p = makePrefix(a, bits);
      }
    } else if (!parseAddrToken(*t, false, p)) {
      return false;
    }
    sides(side, src, dst, [&](Column c) {
      Leaf l;
      l.op = Leaf::Op::kPrefix;
      l.col = c;
      l.net = p.net;
      l.bits = p.bits;
      return l;
    });
    return true;
  }

  // After `port` / `as`: comparator + number, or `in [list]`.
  bool parseNumeric(Side side, Column src, Column dst, uint64_t max, std::string_view what) {
    if (acceptWord("in")) {
      uint32_t idx = 0;
      if (!parseNumberList(max, what, idx)) {
        return false;
      }
      sides(side, src, dst, [&](Column c) {
        Leaf l;
        l.op = c == Column::dst_port ? Leaf::Op::kDstPortSet : Leaf::Op::kInSet;
        l.col = c;
        l.index = idx;
        return l;
      });
      return true;
    }
    Cmp cmp;
    uint64_t v = 0;
    if (!parseCmpNumber(cmp, v, max, what)) {
      return false;
    }
    sides(side, src, dst, [&](Column c) {
      Leaf l;
      l.op = c == Column::dst_port ? Leaf::Op::kDstPort : Leaf::Op::kCmp;
      l.col = c;
      l.cmp = cmp;
      l.value = v;
      return l;
    });
    return true;
  }

  bool parseMac(Side side, const Token& kw) {
    const Token* t = nullptr;
    if (!expectValue(t, "a MAC address (aa:bb:cc:dd:ee:ff)")) {
      return false;
    }
    uint64_t mac = 0;
    if (!nc::parseMac(t->text, mac)) {
      return fail(*t, fmt::format("expected a MAC address (aa:bb:cc:dd:ee:ff), got '{}'", t->text));
    }
    (void)kw;
    sides(side, Column::src_mac, Column::dst_mac, [&](Column c) {
      Leaf l;
      l.op = Leaf::Op::kCmp;
      l.col = c;
      l.value = mac;
      return l;
    });
    return true;
  }

  // NAME-or-GLOB for a name column; `=`/`==` may precede it.
  bool parseName(Column col, std::string_view what) {
    if (peek().kind == Token::Kind::kCmp) {
      const Token& c = next();
      if (c.cmp != Cmp::kEq) {
        return fail(c, fmt::format("names compare with '=' only (expected {})", what));
      }
    }
    const Token* t = nullptr;
    if (!expectValue(t, what)) {
      return false;
    }
    Leaf l;
    l.op = Leaf::Op::kName;
    l.col = col;
    l.index = static_cast<uint32_t>(f_.names_.size());
    f_.names_.push_back(std::make_shared<const NameMatcher>(t->text));
    leaf(l);
    return true;
  }

  void cmpLeaf(Column col, Cmp cmp, uint64_t v, Leaf::Op o = Leaf::Op::kCmp) {
    Leaf l;
    l.op = o;
    l.col = col;
    l.cmp = cmp;
    l.value = v;
    leaf(l);
  }

  bool unsupported(const Token& t, std::string_view why) {
    return fail(t, fmt::format("'{}' is not supported: {}", t.text, why));
  }

  // A registry field name used as a keyword: NAME [cmp] VALUE, NAME in [list].
  bool parseRegistryField(const FieldDef& def, const Token& kw) {
    Column col = def.column;
    switch (def.type) {
      case FieldType::kAddr:
        return parseAddress(Side::kSrc, col, col,
                            peek().kind != Token::Kind::kLBracket && !peekWord("in") &&
                                peek().text.find('/') != std::string::npos);
      case FieldType::kMac: {
        const Token* t = nullptr;
        if (!expectValue(t, "a MAC address (aa:bb:cc:dd:ee:ff)")) {
          return false;
        }
        uint64_t mac = 0;
        if (!nc::parseMac(t->text, mac)) {
          return fail(*t, fmt::format("expected a MAC address, got '{}'", t->text));
        }
        cmpLeaf(col, Cmp::kEq, mac);
        return true;
      }
      case FieldType::kName:
        return parseName(col, "a name or a glob");
      case FieldType::kTime:
      case FieldType::kText: {
        Cmp cmp = Cmp::kEq;
        if (peek().kind == Token::Kind::kCmp) {
          cmp = next().cmp;
        }
        const Token* t = nullptr;
        if (!expectValue(t, def.type == FieldType::kTime ? "a time (RFC 3339, quoted if it has "
                                                           "a space)"
                                                         : "a value")) {
          return false;
        }
        FlowRecord r;
        std::string text = t->text;
        if (def.type == FieldType::kTime && text.find(' ') == std::string::npos &&
            text.size() == 19) {
          // accept "YYYY-MM-DDTHH:MM:SS" without zone as UTC (parseTime does)
        }
        if (!def.fromJson(nlohmann::json(text), r)) {
          std::string allowed;
          if (def.type == FieldType::kText) {
            allowed = fmt::format(" (see `net-collector fields`: {})", def.doc);
          }
          return fail(*t, fmt::format("bad value '{}' for {}{}", t->text, def.name, allowed));
        }
        cmpLeaf(col, cmp, columnValue(r, col));
        return true;
      }
      default: {
        if (acceptWord("in")) {
          uint32_t idx = 0;
          if (!parseNumberList(columnMax(col), std::string(def.name) + " value", idx)) {
            return false;
          }
          Leaf l;
          l.op = Leaf::Op::kInSet;
          l.col = col;
          l.index = idx;
          leaf(l);
          return true;
        }
        Cmp cmp;
        uint64_t v = 0;
        if (!parseCmpNumber(cmp, v, columnMax(col), std::string(def.name))) {
          return false;
        }
        (void)kw;
        cmpLeaf(col, cmp, v);
        return true;
      }
    }
  }

  bool parsePrimitive() {
    const Token& kw = next();
    const std::string& w = kw.lower;
    // Qualifiers: in/out (interfaces, MACs), src/dst.
    if (w == "in" || w == "out") {
      bool in = w == "in";
      Side mac_side = Side::kEither;
      if (acceptWord("src")) {
        mac_side = Side::kSrc;
      } else if (acceptWord("dst")) {
        mac_side = Side::kDst;
      }
      const Token& k = peek();
      if ((peekWord("ifname") || peekWord("vm")) && mac_side == Side::kEither) {
        const bool vm = next().lower == "vm";
        return parseName(
            in ? (vm ? Column::in_vm : Column::in_ifname)
               : (vm ? Column::out_vm : Column::out_ifname),
            vm ? "a VM id (vm-uuid, vm-id or iface-id) or a glob" : "an interface name or a glob");
      }
      if (peekWord("if") && mac_side == Side::kEither) {
        next();
        Cmp cmp;
        uint64_t v = 0;
        if (!parseCmpNumber(cmp, v, UINT32_MAX, "interface number")) {
          return false;
        }
        cmpLeaf(in ? Column::in_if : Column::out_if, cmp, v);
        return true;
      }
      if (peekWord("mac")) {
        next();
        // Records carry one source and one destination MAC; in/out select nothing more.
        return parseMac(mac_side, k);
      }
      if ((peekWord("packets") || peekWord("bytes")) && mac_side == Side::kEither) {
        const Token& what = next();
        if (!in) {
          return unsupported(kw, "flows are unidirectional (no out packets/bytes)");
        }
        Cmp cmp;
        uint64_t v = 0;
        if (!parseCmpNumber(cmp, v, UINT64_MAX, what.lower)) {
          return false;
        }
        cmpLeaf(what.lower == "packets" ? Column::packets : Column::bytes, cmp, v);
        return true;
      }
      return fail(k, fmt::format("expected 'if', 'ifname', 'vm', 'mac', 'packets' or 'bytes' "
                                 "after '{}', got '{}'",
                                 kw.text, describe(k)));
    }
    Side side = Side::kEither;
    const Token* kwp = &kw;
    if (w == "src" || w == "dst") {
      side = w == "src" ? Side::kSrc : Side::kDst;
      if (peek().kind != Token::Kind::kWord) {
        return fail(peek(), fmt::format("expected a keyword after '{}' (ip, host, net, port, as, "
                                        "mask, vlan, tos, mac), got '{}'",
                                        kw.text, describe(peek())));
      }
      kwp = &next();
      if (kwp->lower == "in" && peekWord("ip")) {  // nfdump's "src in ip [list]"
        next();
        if (peek().kind != Token::Kind::kLBracket) {
          return fail(peek(), "expected '[' to start an address list");
        }
        return parseAddress(side, Column::src_addr, Column::dst_addr, false);
      }
    }
    const std::string& k = kwp->lower;
    bool qualified = side != Side::kEither;

    if (k == "ip" || k == "host") {
      return parseAddress(side, Column::src_addr, Column::dst_addr, false);
    }
    if (k == "net") {
      return parseAddress(side, Column::src_addr, Column::dst_addr, true);
    }
    if (k == "port") {
      return parseNumeric(side, Column::src_port, Column::dst_port, 65535, "port");
    }
    if (k == "as") {
      return parseNumeric(side, Column::src_as, Column::dst_as, UINT32_MAX, "AS number");
    }
    if (k == "mask") {
      return parseNumeric(side, Column::src_mask, Column::dst_mask, 128, "mask bits");
    }
    if (k == "mac") {
      return parseMac(side, *kwp);
    }
    if (k == "vlan" || k == "tos") {  // one vlan / tos per record: src and dst are the same
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, k == "vlan" ? 4095 : 255, k)) {
        return false;
      }
      cmpLeaf(k == "vlan" ? Column::vlan : Column::tos, cmp, v);
      return true;
    }
    if (qualified) {
      if (k == "geo" || k == "tunip" || k == "xip" || k == "xnet" || k == "xport" || k == "nip" ||
          k == "nport") {
        return unsupported(*kwp, "net-collector records carry no such field");
      }
      return fail(*kwp, fmt::format("'{}' cannot follow '{}' (expected ip, host, net, port, as, "
                                    "mask, vlan, tos or mac)",
                                    kwp->text, kw.text));
    }

    if (k == "any") {
      leaf(Leaf{});
      return true;
    }
    if (k == "inet" || k == "ipv4" || k == "inet6" || k == "ipv6") {
      cmpLeaf(Column::ip_version, Cmp::kEq, k == "inet" || k == "ipv4" ? 4 : 6);
      return true;
    }
    if (k == "proto") {
      Cmp cmp = Cmp::kEq;
      if (peek().kind == Token::Kind::kCmp) {
        cmp = next().cmp;
      }
      const Token* t = nullptr;
      if (!expectValue(t, "a protocol name or number")) {
        return false;
      }
      uint64_t v = 0;
      int n = protoNumber(t->lower);
      if (n >= 0) {
        v = static_cast<uint64_t>(n);
      } else if (!parseNumber(t->text, v) || v > 255) {
        return fail(*t, fmt::format("unknown protocol '{}' (a name such as tcp, udp, icmp, icmp6, "
                                    "gre, esp, or a number 0..255)",
                                    t->text));
      }
      cmpLeaf(Column::proto, cmp, v);
      return true;
    }
    if (k == "icmp-type" || k == "icmp-code") {
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, 255, k == "icmp-type" ? "ICMP type" : "ICMP code")) {
        return false;
      }
      cmpLeaf(Column::proto, Cmp::kEq, 1);
      cmpLeaf(Column::proto, Cmp::kEq, 58);
      op(Instr::Kind::kOr);
      cmpLeaf(k == "icmp-type" ? Column::icmp_type : Column::icmp_code, cmp, v);
      op(Instr::Kind::kAnd);
      return true;
    }
    if (k == "engine-type" || k == "engine-id" || k == "engine_type" || k == "engine_id") {
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, 255, k)) {
        return false;
      }
      cmpLeaf(k.find("type") != std::string::npos ? Column::engine_type : Column::engine_id, cmp,
              v);
      return true;
    }
    if (k == "ifname" || k == "vm") {
      const bool vm = k == "vm";
      const Token& at = peek();
      if (!parseName(vm ? Column::in_vm : Column::in_ifname,
                     vm ? "a VM id (vm-uuid, vm-id or iface-id) or a glob"
                        : "an interface name or a glob")) {
        return false;
      }
      (void)at;
      Leaf other = f_.leaves_.back();
      other.col = vm ? Column::out_vm : Column::out_ifname;
      leaf(other);
      op(Instr::Kind::kOr);
      return true;
    }
    if (k == "bridge") {
      return parseName(Column::bridge, "a bridge name or a glob");
    }
    if (k == "if") {
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, UINT32_MAX, "interface number")) {
        return false;
      }
      cmpLeaf(Column::in_if, cmp, v);
      cmpLeaf(Column::out_if, cmp, v);
      op(Instr::Kind::kOr);
      return true;
    }
    if (k == "flags") {
      if (peek().kind == Token::Kind::kCmp ||
          (peek().kind == Token::Kind::kWord &&
           std::isdigit(static_cast<unsigned char>(peek().text[0])))) {
        Cmp cmp;
        uint64_t v = 0;
        if (!parseCmpNumber(cmp, v, 255, "TCP flags")) {
          return false;
        }
        cmpLeaf(Column::tcp_flags, cmp, v);
        return true;
      }
      const Token* t = nullptr;
      if (!expectValue(t, "TCP flags (letters of FSRPAUEC, X = all)")) {
        return false;
      }
      uint64_t m = 0;
      if (!parseTcpFlags(t->text, m)) {
        return fail(*t, fmt::format("bad TCP flags '{}' (letters of F S R P A U E C, X = all, or "
                                    "a number)",
                                    t->text));
      }
      // nfdump: "flags AS" = all of A and S; under a negation the test becomes "any of", so
      // "not flags AFRPU" = none of them (the man page's SYN-only example relies on it).
      Leaf l;
      l.op = negated_ ? Leaf::Op::kMaskAny : Leaf::Op::kMaskAll;
      l.col = Column::tcp_flags;
      l.mask = m;
      leaf(l);
      return true;
    }
    if (k == "router" || k == "next" || k == "bgpnext") {
      if (k == "bgpnext") {
        return unsupported(*kwp, "records carry no BGP next hop");
      }
      const Token& sub = peek();
      if (k == "next" && sub.kind == Token::Kind::kWord && sub.lower == "as") {
        return unsupported(*kwp, "records carry no next AS");
      }
      if (!(acceptWord("ip") || (k == "next" && acceptWord("hop")))) {
        return fail(sub,
                    fmt::format("expected 'ip' after '{}', got '{}'", kwp->text, describe(sub)));
      }
      Column c = k == "router" ? Column::exporter : Column::next_hop;
      if (peek().kind == Token::Kind::kWord && peek().text.find('/') != std::string::npos) {
        return parseAddress(Side::kSrc, c, c, true);
      }
      return parseAddress(Side::kSrc, c, c, false);
    }
    if (k == "packets" || k == "bytes") {
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, UINT64_MAX, k)) {
        return false;
      }
      cmpLeaf(k == "packets" ? Column::packets : Column::bytes, cmp, v);
      return true;
    }
    if (k == "flows") {  // every record is one flow
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, UINT64_MAX, "flows")) {
        return false;
      }
      bool t = cmp == Cmp::kEq   ? v == 1
               : cmp == Cmp::kLt ? 1 < v
               : cmp == Cmp::kGt ? 1 > v
               : cmp == Cmp::kLe ? 1 <= v
                                 : 1 >= v;
      Leaf l;
      l.op = t ? Leaf::Op::kTrue : Leaf::Op::kFalse;
      leaf(l);
      return true;
    }
    if (k == "duration" || k == "pps" || k == "bps" || k == "bpp") {
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, UINT64_MAX, k == "duration" ? "milliseconds" : k)) {
        return false;
      }
      cmpLeaf(Column::first_ns, cmp, v,
              k == "duration" ? Leaf::Op::kDuration
              : k == "pps"    ? Leaf::Op::kPps
              : k == "bps"    ? Leaf::Op::kBps
                              : Leaf::Op::kBpp);
      return true;
    }
    if (k == "flowdir") {
      const Token* t = nullptr;
      if (!expectValue(t, "a direction (ingress, egress, 0 or 1)")) {
        return false;
      }
      uint64_t v = 0;
      if (t->lower == "ingress" || t->lower == "0") {
        v = 0;
      } else if (t->lower == "egress" || t->lower == "1") {
        v = 1;
      } else {
        return fail(*t, fmt::format("expected ingress, egress, 0 or 1, got '{}'", t->text));
      }
      cmpLeaf(Column::direction, Cmp::kEq, v);
      return true;
    }
    if (k == "observation") {
      if (!acceptWord("domain")) {
        return fail(peek(), peekWord("point") ? "'observation point' is not supported: records "
                                                "carry no observation point id"
                                              : "expected 'domain' after 'observation'");
      }
      acceptWord("id");
      Cmp cmp;
      uint64_t v = 0;
      if (!parseCmpNumber(cmp, v, UINT32_MAX, "observation domain id")) {
        return false;
      }
      cmpLeaf(Column::observation_domain, cmp, v);
      return true;
    }
    if (k == "direction" && (peekWord("ingress") || peekWord("egress"))) {
      cmpLeaf(Column::direction, Cmp::kEq, next().lower == "ingress" ? 0 : 1);
      return true;
    }
    if (k == "sampled") {  // flows with a sampling rate above 1
      cmpLeaf(Column::sampling_rate, Cmp::kGt, 1);
      return true;
    }
    if (const FieldDef* def = findField(k)) {
      return parseRegistryField(*def, *kwp);
    }
    static const char* const kNotRecorded[] = {
        "count",  "ident",  "sysid",  "geo",    "tunip", "tun",     "mpls",  "payload",
        "asa",    "nat",    "xip",    "xnet",   "xport", "nip",     "nport", "ingress",
        "egress", "pblock", "client", "server", "vrf",   "latency", "prev",  "flow"};
    for (const char* nr : kNotRecorded) {
      if (k == nr) {
        if (k == "flow") {
          return fail(*kwp, "unknown keyword 'flow' (did you mean 'flows'?)");
        }
        return unsupported(*kwp,
                           "net-collector records carry no such field (see "
                           "docs/filters.md)");
      }
    }
    return fail(*kwp, fmt::format("unknown filter keyword '{}' (see `net-collector flows --help` "
                                  "or `net-collector fields`)",
                                  kwp->text));
  }

  std::string_view text_;
  Filter& f_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  FilterError err_;
  bool failed_ = false;
  bool negated_ = false;  // inside an odd number of NOTs
};

// ---------------------------------------------------------------------------------------------
// Evaluation

namespace {

constexpr size_t kChunk = 2048;

template <typename T>
void cmpLoop(const T* p, size_t n, Cmp cmp, uint64_t v, uint8_t* out) {
  if constexpr (sizeof(T) < 8) {
    // Values above the column's range: compare in 64 bits would be the same, but keep the loop
    // in T's width so it vectorizes.
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      bool above = cmp == Cmp::kLt || cmp == Cmp::kLe;
      std::memset(out, above ? 1 : 0, n);
      return;
    }
  }
  const T x = static_cast<T>(v);
  switch (cmp) {
    case Cmp::kEq:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] == x;
      }
      break;
    case Cmp::kLt:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] < x;
      }
      break;
    case Cmp::kGt:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] > x;
      }
      break;
    case Cmp::kLe:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] <= x;
      }
      break;
    case Cmp::kGe:
      for (size_t i = 0; i < n; ++i) {
        out[i] = p[i] >= x;
      }
      break;
  }
}

// a[i] &= b[i] / a[i] |= b[i] over two distinct stack slots (restrict: so the loops vectorize).
void andBytes(uint8_t* __restrict a, const uint8_t* __restrict b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    a[i] &= b[i];
  }
}
void orBytes(uint8_t* __restrict a, const uint8_t* __restrict b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    a[i] |= b[i];
  }
}

// The destination port as filters see it: ICMP (proto 1 and 58) rows carry type << 8 | code.
// Masks instead of a branch, restrict pointers: the loop vectorizes.
void effectivePorts(const uint8_t* __restrict pr, const uint16_t* __restrict dp,
                    const uint8_t* __restrict ty, const uint8_t* __restrict co, size_t n,
                    uint32_t* __restrict out) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t icmp = 0u - static_cast<uint32_t>((pr[i] == 1) | (pr[i] == 58));
    out[i] = ((uint32_t{ty[i]} << 8 | co[i]) & icmp) | (uint32_t{dp[i]} & ~icmp);
  }
}

inline bool cmpOne(uint64_t a, Cmp cmp, uint64_t v) {
  switch (cmp) {
    case Cmp::kEq:
      return a == v;
    case Cmp::kLt:
      return a < v;
    case Cmp::kGt:
      return a > v;
    case Cmp::kLe:
      return a <= v;
    case Cmp::kGe:
      return a >= v;
  }
  return false;
}

inline bool inPrefix(const IpAddr& a, uint64_t mhi, uint64_t mlo, uint64_t nhi, uint64_t nlo) {
  uint64_t hi;
  uint64_t lo;
  std::memcpy(&hi, a.bytes.data(), 8);
  std::memcpy(&lo, a.bytes.data() + 8, 8);
  return ((hi & mhi) == nhi) & ((lo & mlo) == nlo);
}

inline uint64_t durationMs(uint64_t first_ns, uint64_t last_ns) {
  uint64_t f = first_ns / 1000000;
  uint64_t l = last_ns / 1000000;
  return l > f ? l - f : 0;
}

}  // namespace

Filter::Filter() {
  leaves_.push_back(Leaf{});
  program_.push_back({Instr::Kind::kLeaf, 0});
}

std::optional<Filter> Filter::compile(std::string_view text, FilterError* err) {
  Filter f;
  f.leaves_.clear();
  f.program_.clear();
  f.text_ = std::string(text);
  Compiler c(text, f);
  FilterError e;
  if (!c.run(e)) {
    if (err != nullptr) {
      *err = e;
    }
    return std::nullopt;
  }
  f.computeDepth();
  return f;
}

void Filter::restrictTime(uint64_t since_ns, uint64_t until_ns) {
  bool was_any = matchesAll();
  if (was_any) {
    leaves_.clear();
    program_.clear();
  }
  if (untimed_len_ == kNoWindow) {  // a second window narrows the first: keep the first prefix
    untimed_len_ = program_.size();
    since_ns_ = since_ns;
    until_ns_ = until_ns;
  } else {
    since_ns_ = std::max(since_ns_, since_ns);
    until_ns_ = std::min(until_ns_, until_ns);
  }
  auto add = [&](Cmp cmp, uint64_t v) {
    Leaf l;
    l.op = Leaf::Op::kCmp;
    l.col = Column::first_ns;
    l.cmp = cmp;
    l.value = v;
    leaves_.push_back(l);
    bool first = program_.empty();
    program_.push_back({Instr::Kind::kLeaf, static_cast<uint32_t>(leaves_.size() - 1)});
    if (!first) {
      program_.push_back({Instr::Kind::kAnd, 0});
    }
  };
  if (since_ns > 0) {
    add(Cmp::kGe, since_ns);
  }
  if (until_ns != UINT64_MAX) {
    add(Cmp::kLt, until_ns);
  }
  if (program_.empty()) {
    leaves_.push_back(Leaf{});
    program_.push_back({Instr::Kind::kLeaf, 0});
    untimed_len_ = kNoWindow;  // (no window after all: "any")
  }
  computeDepth();
}

void Filter::computeDepth() {
  size_t depth = 0;
  max_depth_ = 1;
  for (const auto& in : program_) {
    if (in.kind == Instr::Kind::kLeaf) {
      ++depth;
    } else if (in.kind != Instr::Kind::kNot) {
      --depth;
    }
    max_depth_ = std::max(max_depth_, depth);
  }
}

bool Filter::matchesAll() const {
  return program_.size() == 1 && leaves_[program_[0].leaf].op == Leaf::Op::kTrue;
}

ColumnSet Filter::columns() const {
  ColumnSet s;
  for (const Instr& in : program_) {
    if (in.kind != Instr::Kind::kLeaf) {
      continue;
    }
    const Leaf& l = leaves_[in.leaf];
    switch (l.op) {
      case Leaf::Op::kTrue:
      case Leaf::Op::kFalse:
        break;
      case Leaf::Op::kDstPort:
      case Leaf::Op::kDstPortSet:
        addColumn(s, Column::dst_port);
        addColumn(s, Column::proto);
        addColumn(s, Column::icmp_type);
        addColumn(s, Column::icmp_code);
        break;
      case Leaf::Op::kDuration:
      case Leaf::Op::kPps:
      case Leaf::Op::kBps:
      case Leaf::Op::kBpp:
        addColumn(s, Column::first_ns);
        addColumn(s, Column::last_ns);
        addColumn(s, Column::packets);
        addColumn(s, Column::bytes);
        break;
      default:
        addColumn(s, l.col);
        break;
    }
  }
  return s;
}

void Filter::select(const FlowColumns& c, size_t begin, size_t end, std::vector<uint32_t>& rows,
                    bool in_window) const {
  if (matchesAll()) {
    for (size_t i = begin; i < end; ++i) {
      rows.push_back(static_cast<uint32_t>(i));
    }
    return;
  }
  thread_local std::vector<uint8_t> stack_mem;
  const size_t depth = max_depth_ + 1;
  if (stack_mem.size() < depth * kChunk) {
    stack_mem.resize(depth * kChunk);
  }
  for (size_t base = begin; base < end; base += kChunk) {
    const size_t n = std::min(kChunk, end - base);
    // A chunk whose rows all lie inside the time window (restrictTime) runs the program without
    // the window's instructions, appended last: the store hands over whole blocks inside it.
    size_t plen = program_.size();
    if (untimed_len_ != kNoWindow && in_window) {
      plen = untimed_len_;
    } else if (untimed_len_ != kNoWindow) {
      const uint64_t* t = c.first_ns.data() + base;
      uint64_t lo = UINT64_MAX;
      uint64_t hi = 0;
      for (size_t i = 0; i < n; ++i) {
        lo = std::min(lo, t[i]);
        hi = std::max(hi, t[i]);
      }
      if (lo >= since_ns_ && hi < until_ns_) {
        plen = untimed_len_;
      }
    }
    if (plen == 0) {  // no condition but the window
      const size_t at = rows.size();
      rows.resize(at + n);
      for (size_t i = 0; i < n; ++i) {
        rows[at + i] = static_cast<uint32_t>(base + i);
      }
      continue;
    }
    size_t sp = 0;
    auto top = [&](size_t k) { return stack_mem.data() + (sp - k) * kChunk; };
    for (size_t pc = 0; pc < plen; ++pc) {
      const Instr& in = program_[pc];
      switch (in.kind) {
        case Instr::Kind::kAnd:
          andBytes(top(2), top(1), n);
          --sp;
          break;
        case Instr::Kind::kOr:
          orBytes(top(2), top(1), n);
          --sp;
          break;
        case Instr::Kind::kNot: {
          uint8_t* a = top(1);
          for (size_t i = 0; i < n; ++i) {
            a[i] ^= 1;
          }
          break;
        }
        case Instr::Kind::kLeaf: {
          ++sp;
          uint8_t* out = top(1);
          const Leaf& l = leaves_[in.leaf];
          switch (l.op) {
            case Leaf::Op::kTrue:
              std::memset(out, 1, n);
              break;
            case Leaf::Op::kFalse:
              std::memset(out, 0, n);
              break;
            case Leaf::Op::kCmp:
              visitColumn(c, l.col, [&](const auto& vec) {
                using T = typename std::decay_t<decltype(vec)>::value_type;
                if constexpr (std::is_integral_v<T>) {
                  cmpLoop<T>(vec.data() + base, n, l.cmp, l.value, out);
                } else {
                  std::memset(out, 0, n);
                }
              });
              break;
            case Leaf::Op::kMaskAll:
              visitColumn(c, l.col, [&](const auto& vec) {
                using T = typename std::decay_t<decltype(vec)>::value_type;
                if constexpr (std::is_integral_v<T>) {
                  const T m = static_cast<T>(l.mask);
                  const T* p = vec.data() + base;
                  for (size_t i = 0; i < n; ++i) {
                    out[i] = (p[i] & m) == m;
                  }
                } else {
                  std::memset(out, 0, n);
                }
              });
              break;
            case Leaf::Op::kMaskAny:
              visitColumn(c, l.col, [&](const auto& vec) {
                using T = typename std::decay_t<decltype(vec)>::value_type;
                if constexpr (std::is_integral_v<T>) {
                  const T m = static_cast<T>(l.mask);
                  const T* p = vec.data() + base;
                  for (size_t i = 0; i < n; ++i) {
                    out[i] = (p[i] & m) != 0;
                  }
                } else {
                  std::memset(out, 0, n);
                }
              });
              break;
            case Leaf::Op::kInSet: {
              const auto& set = sets_[l.index];
              visitColumn(c, l.col, [&](const auto& vec) {
                using T = typename std::decay_t<decltype(vec)>::value_type;
                if constexpr (std::is_integral_v<T>) {
                  const T* p = vec.data() + base;
                  if (set.size() <= 8) {
                    for (size_t i = 0; i < n; ++i) {
                      uint8_t hit = 0;
                      for (uint64_t v : set) {
                        hit |= static_cast<uint64_t>(p[i]) == v;
                      }
                      out[i] = hit;
                    }
                  } else {
                    for (size_t i = 0; i < n; ++i) {
                      out[i] =
                          std::binary_search(set.begin(), set.end(), static_cast<uint64_t>(p[i]));
                    }
                  }
                } else {
                  std::memset(out, 0, n);
                }
              });
              break;
            }
            case Leaf::Op::kName: {
              const NameMatcher& m = *names_[l.index];
              visitColumn(c, l.col, [&](const auto& vec) {
                using T = typename std::decay_t<decltype(vec)>::value_type;
                if constexpr (std::is_same_v<T, uint32_t>) {
                  m.matchRows(vec.data() + base, n, out);
                } else {
                  std::memset(out, 0, n);
                }
              });
              break;
            }
            case Leaf::Op::kPrefix:
            case Leaf::Op::kPrefixList: {
              const std::vector<IpAddr>* vec = nullptr;
              visitColumn(c, l.col, [&](const auto& v) {
                using T = typename std::decay_t<decltype(v)>::value_type;
                if constexpr (std::is_same_v<T, IpAddr>) {
                  vec = &v;
                }
              });
              if (vec == nullptr) {
                std::memset(out, 0, n);
                break;
              }
              const IpAddr* p = vec->data() + base;
              if (l.op == Leaf::Op::kPrefix) {
                uint64_t mhi, mlo, nhi, nlo;
                prefixMask(l.bits, mhi, mlo);
                std::memcpy(&nhi, l.net.bytes.data(), 8);
                std::memcpy(&nlo, l.net.bytes.data() + 8, 8);
                for (size_t i = 0; i < n; ++i) {
                  out[i] = inPrefix(p[i], mhi, mlo, nhi, nlo);
                }
              } else {
                std::memset(out, 0, n);
                for (const Prefix& pf : prefix_lists_[l.index]) {
                  uint64_t mhi, mlo, nhi, nlo;
                  prefixMask(pf.bits, mhi, mlo);
                  std::memcpy(&nhi, pf.net.bytes.data(), 8);
                  std::memcpy(&nlo, pf.net.bytes.data() + 8, 8);
                  for (size_t i = 0; i < n; ++i) {
                    out[i] |= inPrefix(p[i], mhi, mlo, nhi, nlo);
                  }
                }
              }
              break;
            }
            case Leaf::Op::kDstPort:
            case Leaf::Op::kDstPortSet: {
              // ICMP type/code live in the destination port, whatever the exporter sent.
              const uint16_t* dp = c.dst_port.data() + base;
              const uint8_t* pr = c.proto.data() + base;
              const uint8_t* ty = c.icmp_type.data() + base;
              const uint8_t* co = c.icmp_code.data() + base;
              static const std::vector<uint64_t> kNoSet;
              const auto& set = l.op == Leaf::Op::kDstPortSet ? sets_[l.index] : kNoSet;
              // The effective port of each row first (a loop without branches that vectorizes),
              // then the comparison over those values like any 32-bit column (the comparison
              // chosen once per chunk, not per row).
              thread_local std::vector<uint32_t> port_mem;
              port_mem.resize(kChunk);
              uint32_t* pv = port_mem.data();
              effectivePorts(pr, dp, ty, co, n, pv);
              if (l.op == Leaf::Op::kDstPort) {
                cmpLoop<uint32_t>(pv, n, l.cmp, l.value, out);
              } else if (set.size() <= 8) {
                // Short lists: compare with every entry (no branches) instead of a binary search.
                for (size_t i = 0; i < n; ++i) {
                  uint8_t hit = 0;
                  for (uint64_t e : set) {
                    hit |= pv[i] == e;
                  }
                  out[i] = hit;
                }
              } else {
                for (size_t i = 0; i < n; ++i) {
                  out[i] = std::binary_search(set.begin(), set.end(), uint64_t{pv[i]});
                }
              }
              break;
            }
            case Leaf::Op::kDuration:
            case Leaf::Op::kPps:
            case Leaf::Op::kBps:
            case Leaf::Op::kBpp: {
              const uint64_t* f = c.first_ns.data() + base;
              const uint64_t* la = c.last_ns.data() + base;
              const uint64_t* pk = c.packets.data() + base;
              const uint64_t* by = c.bytes.data() + base;
              for (size_t i = 0; i < n; ++i) {
                uint64_t d = durationMs(f[i], la[i]);
                uint64_t v = 0;
                switch (l.op) {
                  case Leaf::Op::kDuration:
                    v = d;
                    break;
                  case Leaf::Op::kPps:
                    v = d == 0 ? 0 : 1000 * pk[i] / d;
                    break;
                  case Leaf::Op::kBps:
                    v = d == 0 ? 0 : 8000 * by[i] / d;
                    break;
                  default:
                    v = pk[i] == 0 ? 0 : by[i] / pk[i];
                    break;
                }
                out[i] = cmpOne(v, l.cmp, l.value);
              }
              break;
            }
          }
          break;
        }
      }
    }
    // Compaction, 8 rows at a time: their 0/1 bytes gathered into an 8-bit mask (one multiply),
    // then one index written per set bit, so the cost follows the matches, not the rows.
    const uint8_t* m = stack_mem.data();
    const size_t at = rows.size();
    rows.resize(at + n);
    uint32_t* o = rows.data() + at;
    size_t k = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, m + i, 8);
      auto bits =
          static_cast<unsigned>(((w & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56);
      while (bits != 0) {
        o[k++] = static_cast<uint32_t>(base + i + static_cast<size_t>(std::countr_zero(bits)));
        bits &= bits - 1;
      }
    }
    for (; i < n; ++i) {
      o[k] = static_cast<uint32_t>(base + i);
      k += m[i] & 1;
    }
    rows.resize(at + k);
  }
}

bool Filter::matches(const FlowRecord& r) const {
  FlowColumns one;
  one.append(r);
  std::vector<uint32_t> rows;
  select(one, 0, 1, rows);
  return !rows.empty();
}

bool Filter::mayMatch(const BlockSummary& b) const {
  if (b.rows == 0) {
    return false;
  }
  // Three-valued: each entry says whether some row may make it true / may make it false.
  struct Tri {
    bool t = true;
    bool f = true;
  };
  std::vector<Tri> st;
  st.reserve(max_depth_ + 1);
  for (const Instr& in : program_) {
    if (in.kind == Instr::Kind::kAnd || in.kind == Instr::Kind::kOr) {
      Tri y = st.back();
      st.pop_back();
      Tri& x = st.back();
      if (in.kind == Instr::Kind::kAnd) {
        x = {x.t && y.t, x.f || y.f};
      } else {
        x = {x.t || y.t, x.f && y.f};
      }
      continue;
    }
    if (in.kind == Instr::Kind::kNot) {
      std::swap(st.back().t, st.back().f);
      continue;
    }
    const Leaf& l = leaves_[in.leaf];
    Tri r;
    const ColumnStats& s = b[l.col];
    Leaf::Op op = l.op;
    if (op == Leaf::Op::kDstPort || op == Leaf::Op::kDstPortSet) {
      const ColumnStats& p = b[Column::proto];
      bool icmp_possible =
          p.min > p.max || (p.min <= 1 && 1 <= p.max) || (p.min <= 58 && 58 <= p.max);
      if (icmp_possible) {
        st.push_back(r);
        continue;
      }
      op = op == Leaf::Op::kDstPort ? Leaf::Op::kCmp : Leaf::Op::kInSet;
    }
    switch (op) {
      case Leaf::Op::kTrue:
        r = {true, false};
        break;
      case Leaf::Op::kFalse:
        r = {false, true};
        break;
      case Leaf::Op::kCmp: {
        uint64_t lo = s.min;
        uint64_t hi = s.max;
        if (lo > hi) {  // no range recorded: stay conservative
          break;
        }
        switch (l.cmp) {
          case Cmp::kEq:
            r = {lo <= l.value && l.value <= hi, !(lo == l.value && hi == l.value)};
            break;
          case Cmp::kLt:
            r = {lo < l.value, hi >= l.value};
            break;
          case Cmp::kGt:
            r = {hi > l.value, lo <= l.value};
            break;
          case Cmp::kLe:
            r = {lo <= l.value, hi > l.value};
            break;
          case Cmp::kGe:
            r = {hi >= l.value, lo < l.value};
            break;
        }
        break;
      }
      case Leaf::Op::kInSet: {
        if (s.min > s.max) {
          break;
        }
        const auto& set = sets_[l.index];
        auto it = std::lower_bound(set.begin(), set.end(), s.min);
        r.t = it != set.end() && *it <= s.max;
        break;
      }
      case Leaf::Op::kPrefix:
      case Leaf::Op::kPrefixList: {
        std::vector<Prefix> one;
        const std::vector<Prefix>* list = &one;
        if (l.op == Leaf::Op::kPrefix) {
          one.push_back({l.net, l.bits});
        } else {
          list = &prefix_lists_[l.index];
        }
        bool t = false;
        bool all_inside = false;
        for (const Prefix& p : *list) {
          IpAddr last = prefixLast(p);
          if (!(s.amax < p.net) && !(last < s.amin)) {
            t = true;
          }
          if (!(s.amin < p.net) && !(last < s.amax)) {
            all_inside = true;
          }
        }
        r = {t, !all_inside};
        break;
      }
      case Leaf::Op::kMaskAll:
        if (s.min <= s.max && s.max < l.mask) {  // every value below the mask cannot contain it
          r.t = (s.max & l.mask) == l.mask;
        }
        break;
      default:
        break;
    }
    st.push_back(r);
  }
  return st.empty() || st.back().t;
}

std::string Filter::dump() const {
  std::string out;
  for (size_t i = 0; i < program_.size(); ++i) {
    const Instr& in = program_[i];
    out += fmt::format("{:3}  ", i);
    switch (in.kind) {
      case Instr::Kind::kAnd:
        out += "AND\n";
        continue;
      case Instr::Kind::kOr:
        out += "OR\n";
        continue;
      case Instr::Kind::kNot:
        out += "NOT\n";
        continue;
      case Instr::Kind::kLeaf:
        break;
    }
    const Leaf& l = leaves_[in.leaf];
    switch (l.op) {
      case Leaf::Op::kTrue:
        out += "TRUE\n";
        break;
      case Leaf::Op::kFalse:
        out += "FALSE\n";
        break;
      case Leaf::Op::kCmp:
        out += fmt::format("{} {} {}\n", columnName(l.col), cmpText(l.cmp), l.value);
        break;
      case Leaf::Op::kMaskAll:
        out += fmt::format("{} & {:#x} == {:#x}\n", columnName(l.col), l.mask, l.mask);
        break;
      case Leaf::Op::kMaskAny:
        out += fmt::format("{} & {:#x} != 0\n", columnName(l.col), l.mask);
        break;
      case Leaf::Op::kInSet:
        out += fmt::format("{} in set#{} ({} values)\n", columnName(l.col), l.index,
                           sets_[l.index].size());
        break;
      case Leaf::Op::kPrefix:
        out += fmt::format("{} in {}/{}\n", columnName(l.col), l.net.toString(),
                           l.net.isV4() ? l.bits - 96 : l.bits);
        break;
      case Leaf::Op::kPrefixList:
        out += fmt::format("{} in list#{} ({} prefixes)\n", columnName(l.col), l.index,
                           prefix_lists_[l.index].size());
        break;
      case Leaf::Op::kDuration:
        out += fmt::format("duration_ms {} {}\n", cmpText(l.cmp), l.value);
        break;
      case Leaf::Op::kPps:
        out += fmt::format("pps {} {}\n", cmpText(l.cmp), l.value);
        break;
      case Leaf::Op::kBps:
        out += fmt::format("bps {} {}\n", cmpText(l.cmp), l.value);
        break;
      case Leaf::Op::kBpp:
        out += fmt::format("bpp {} {}\n", cmpText(l.cmp), l.value);
        break;
      case Leaf::Op::kDstPort:
        out += fmt::format("dst_port|icmp {} {}\n", cmpText(l.cmp), l.value);
        break;
      case Leaf::Op::kDstPortSet:
        out += fmt::format("dst_port|icmp in set#{} ({} values)\n", l.index, sets_[l.index].size());
        break;
      case Leaf::Op::kName:
        out += fmt::format("{} matches '{}'\n", columnName(l.col), names_[l.index]->pattern());
        break;
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

int protoNumber(std::string_view name) {
  std::string l = lowerOf(name);
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

std::vector<FilterKeywordDoc> filterKeywords() {
  std::vector<FilterKeywordDoc> out = {
      {"any", "every flow"},
      {"inet | ipv4, inet6 | ipv6", "IPv4 / IPv6 flows"},
      {"proto NAME|NUMBER",
       "IP protocol: tcp, udp, icmp, icmp6, gre, esp, ah, sctp, ... or 0..255"},
      {"[src|dst] ip|host ADDR", "address equals ADDR (IPv4 or IPv6; no DNS)"},
      {"[src|dst] ip in [ADDR ADDR/BITS, ...]", "address in a list of addresses and networks"},
      {"[src|dst] net ADDR/BITS, [src|dst] net ADDR MASK", "address in a network"},
      {"[src|dst] port [CMP] N, [src|dst] port in [N N ...]",
       "port compare or list (ICMP/ICMPv6 flows: dst port is type*256+code, as in nfdump)"},
      {"icmp-type [CMP] N, icmp-code [CMP] N", "ICMP/ICMPv6 type or code (implies ICMP)"},
      {"flags LETTERS",
       "all the given TCP flags are set: F S R P A U E C, X = FSRPAU ('not flags "
       "AF' = none of them, as in nfdump)"},
      {"flags CMP N", "TCP flags byte compared as a number ('flags 2' = exactly SYN)"},
      {"[src|dst] tos [CMP] N", "type of service byte"},
      {"packets|bytes [CMP] N[k|M|G]", "counters as exported (not multiplied by sampling_rate)"},
      {"in packets|in bytes [CMP] N", "same as packets / bytes"},
      {"pps|bps|bpp [CMP] N[k|M|G]",
       "packets/s, bits/s over the flow duration (0 when it is 0); bytes per packet"},
      {"duration [CMP] MS", "last - first in milliseconds"},
      {"flows [CMP] N", "flow count of a record (always 1)"},
      {"in if N, out if N, if N", "input / output / either interface number (see if_kind)"},
      {"[src|dst] vlan N", "802.1Q VLAN id"},
      {"[in|out] [src|dst] mac MAC", "MAC address (records carry one source and one destination)"},
      {"[src|dst] as [CMP] N, [src|dst] as in [N ...]", "AS number"},
      {"[src|dst] mask N", "prefix length"},
      {"next ip ADDR, next hop ADDR", "IP next hop (next_hop)"},
      {"router ip ADDR", "exporter address"},
      {"engine-type N, engine-id N", "NetFlow engine type / id"},
      {"in ifname NAME, out ifname NAME, ifname NAME",
       "input / output / either interface name (Open vSwitch port or the exporter's name); "
       "globs (*, ?, [..]) allowed"},
      {"bridge NAME", "Open vSwitch bridge of the flow's port; globs allowed"},
      {"in vm ID, out vm ID, vm ID",
       "VM behind the input / output / either port (vm-uuid, vm-id or iface-id); globs allowed"},
      {"flowdir ingress|egress|0|1", "IPFIX flowDirection"},
      {"observation domain id [CMP] N", "IPFIX observation domain / v9 source id"},
      {"sampled", "flows with sampling_rate > 1"},
      {"EXPR and EXPR, EXPR && EXPR", "both"},
      {"EXPR or EXPR, EXPR || EXPR", "either"},
      {"not EXPR, ! EXPR, ( EXPR )", "negation, grouping; '#' starts a comment"},
      {"CMP", "=, ==, <, >, <=, >=, eq, lt, gt, le, ge (default ==)"},
  };
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
