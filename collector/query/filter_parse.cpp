// The filter's parser: recursive descent over the tokens (filter_lexer.cpp) emitting the postfix
// program (filter_program.hpp). Every keyword is one row of kPrimitives: its spellings, the
// qualifiers it takes (src/dst, in/out), its parse rule and its line in `net-collector filters`.
// A registry field name (collector/record/fields.hpp) that is no keyword is a primitive too.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "collector/query/column_access.hpp"
#include "collector/query/filter.hpp"
#include "collector/query/filter_program.hpp"
#include "collector/query/filter_syntax.hpp"
#include "collector/query/name_match.hpp"
#include "collector/record/fields.hpp"

namespace nc::query {
namespace detail {
namespace {

uint64_t columnMax(Column col) {
  uint64_t m = 0;
  FlowColumns none;
  visitColumn(none, col, [&](const auto& vec) {
    using T = typename std::decay_t<decltype(vec)>::value_type;
    if constexpr (std::is_integral_v<T>) {
      m = static_cast<uint64_t>(std::numeric_limits<T>::max());
    }
  });
  return m;
}

// Which side(s) a primitive applies to.
enum class Side { kEither, kSrc, kDst };
// The interface direction written before a keyword.
enum class Dir { kNone, kIn, kOut };

// The qualifiers written before a keyword: `in`/`out`, then `src`/`dst`.
struct Qual {
  Dir dir = Dir::kNone;
  Side side = Side::kEither;
  const Token* dir_tok = nullptr;
};

// Which qualifiers a keyword takes (PrimitiveDef::quals).
constexpr uint8_t kNoQual = 0;
constexpr uint8_t kSrcDst = 1;
constexpr uint8_t kInOut = 2;

}  // namespace

class Compiler {
 public:
  Compiler(std::string_view text, Program& p) : text_(text), p_(p) {}

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
    p_.leaves.push_back(l);
    p_.code.push_back({Instr::Kind::kLeaf, static_cast<uint32_t>(p_.leaves.size() - 1)});
  }
  void op(Instr::Kind k) { p_.code.push_back({k, 0}); }

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
    p_.sets.push_back(std::move(set));
    index = static_cast<uint32_t>(p_.sets.size() - 1);
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
    p_.prefix_lists.push_back(std::move(list));
    index = static_cast<uint32_t>(p_.prefix_lists.size() - 1);
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

  bool parseMac(Side side) {
    const Token* t = nullptr;
    if (!expectValue(t, "a MAC address (aa:bb:cc:dd:ee:ff)")) {
      return false;
    }
    uint64_t mac = 0;
    if (!nc::parseMac(t->text, mac)) {
      return fail(*t, fmt::format("expected a MAC address (aa:bb:cc:dd:ee:ff), got '{}'", t->text));
    }
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
    l.index = static_cast<uint32_t>(p_.names.size());
    p_.names.push_back(std::make_shared<const NameMatcher>(t->text));
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
  bool parseRegistryField(const FieldDef& def) {
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
        FlowRecord r;  // (a time without a zone is UTC: parseTime)
        if (!def.fromJson(nlohmann::json(t->text), r)) {
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
        cmpLeaf(col, cmp, v);
        return true;
      }
    }
  }
  // --- primitives: the table and its driver

  using ParseFn = bool (Compiler::*)(const Qual& q, const Token& kw);
  struct PrimitiveDef {
    const char* words;    // spellings, space-separated; "" for a docs-only row
    uint8_t quals;        // kSrcDst | kInOut: the qualifiers it takes
    ParseFn parse;        // called after the keyword (and its qualifiers) were read
    const char* syntax;   // `net-collector filters`; nullptr: not listed
    const char* meaning;  //
  };
  static const PrimitiveDef kPrimitives[];

  static const PrimitiveDef* findPrimitive(const Token& t) {
    if (t.kind != Token::Kind::kWord) {
      return nullptr;
    }
    for (const PrimitiveDef* d = kPrimitives; d->words != nullptr; ++d) {
      std::string_view words = d->words;
      while (!words.empty()) {
        size_t sp = words.find(' ');
        if (words.substr(0, sp) == t.lower) {
          return d;
        }
        words = sp == std::string_view::npos ? std::string_view() : words.substr(sp + 1);
      }
    }
    return nullptr;
  }

  bool parsePrimitive() {
    const Token& kw = next();
    const std::string& w = kw.lower;
    Qual q;
    // in/out [src|dst] KEYWORD (interfaces, MACs, counters)
    if (w == "in" || w == "out") {
      q.dir = w == "in" ? Dir::kIn : Dir::kOut;
      q.dir_tok = &kw;
      if (acceptWord("src")) {
        q.side = Side::kSrc;
      } else if (acceptWord("dst")) {
        q.side = Side::kDst;
      }
      const Token& k = peek();
      const PrimitiveDef* def = findPrimitive(k);
      if (def == nullptr || (def->quals & kInOut) == 0 ||
          (q.side != Side::kEither && (def->quals & kSrcDst) == 0)) {
        return fail(k, fmt::format("expected 'if', 'ifname', 'vm', 'mac', 'packets' or 'bytes' "
                                   "after '{}', got '{}'",
                                   kw.text, describe(k)));
      }
      return (this->*def->parse)(q, next());
    }
    // src/dst KEYWORD
    if (w == "src" || w == "dst") {
      q.side = w == "src" ? Side::kSrc : Side::kDst;
      if (peek().kind != Token::Kind::kWord) {
        return fail(peek(), fmt::format("expected a keyword after '{}' (ip, host, net, port, as, "
                                        "mask, vlan, tos, mac), got '{}'",
                                        kw.text, describe(peek())));
      }
      const Token& k = next();
      if (k.lower == "in" && peekWord("ip")) {  // nfdump's "src in ip [list]"
        next();
        if (peek().kind != Token::Kind::kLBracket) {
          return fail(peek(), "expected '[' to start an address list");
        }
        return parseAddress(q.side, Column::src_addr, Column::dst_addr, false);
      }
      const PrimitiveDef* def = findPrimitive(k);
      if (def == nullptr || (def->quals & kSrcDst) == 0) {
        static const char* const kNoSuchField[] = {"geo",   "tunip", "xip",  "xnet",
                                                   "xport", "nip",   "nport"};
        for (const char* nf : kNoSuchField) {
          if (k.lower == nf) {
            return unsupported(k, "net-collector records carry no such field");
          }
        }
        return fail(k, fmt::format("'{}' cannot follow '{}' (expected ip, host, net, port, as, "
                                   "mask, vlan, tos or mac)",
                                   k.text, kw.text));
      }
      return (this->*def->parse)(q, k);
    }
    if (const PrimitiveDef* def = findPrimitive(kw)) {
      return (this->*def->parse)(q, kw);
    }
    if (const FieldDef* def = findField(w)) {
      return parseRegistryField(*def);
    }
    return unknownKeyword(kw);
  }

  bool unknownKeyword(const Token& kw) {
    return fail(kw, fmt::format("unknown filter keyword '{}' (see `net-collector flows --help` "
                                "or `net-collector fields`)",
                                kw.text));
  }

  // --- primitives: parse rules (rows of kPrimitives)

  bool pAny(const Qual&, const Token&) {
    leaf(Leaf{});
    return true;
  }
  bool pFamily(const Qual&, const Token& kw) {
    cmpLeaf(Column::ip_version, Cmp::kEq, kw.lower == "inet" || kw.lower == "ipv4" ? 4 : 6);
    return true;
  }
  bool pProto(const Qual&, const Token&) {
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
  bool pIp(const Qual& q, const Token&) {
    return parseAddress(q.side, Column::src_addr, Column::dst_addr, false);
  }
  bool pNet(const Qual& q, const Token&) {
    return parseAddress(q.side, Column::src_addr, Column::dst_addr, true);
  }
  bool pPort(const Qual& q, const Token&) {
    return parseNumeric(q.side, Column::src_port, Column::dst_port, 65535, "port");
  }
  bool pAs(const Qual& q, const Token&) {
    return parseNumeric(q.side, Column::src_as, Column::dst_as, UINT32_MAX, "AS number");
  }
  bool pMask(const Qual& q, const Token&) {
    return parseNumeric(q.side, Column::src_mask, Column::dst_mask, 128, "mask bits");
  }
  bool pMac(const Qual& q, const Token&) {
    // Records carry one source and one destination MAC; in/out select nothing more.
    return parseMac(q.side);
  }
  // One vlan / tos per record: src and dst are the same.
  bool pVlanTos(const Qual&, const Token& kw) {
    const bool vlan = kw.lower == "vlan";
    Cmp cmp;
    uint64_t v = 0;
    if (!parseCmpNumber(cmp, v, vlan ? 4095 : 255, kw.lower)) {
      return false;
    }
    cmpLeaf(vlan ? Column::vlan : Column::tos, cmp, v);
    return true;
  }
  // icmp-type N, icmp-code N; current nfdump's `icmp type N`, `icmp code N`.
  bool pIcmp(const Qual&, const Token& kw) {
    bool type = kw.lower == "icmp-type";
    if (kw.lower == "icmp") {
      if (!peekWord("type") && !peekWord("code")) {
        return fail(peek(), fmt::format("expected 'type' or 'code' after 'icmp', got '{}'",
                                        describe(peek())));
      }
      type = next().lower == "type";
    }
    Cmp cmp;
    uint64_t v = 0;
    if (!parseCmpNumber(cmp, v, 255, type ? "ICMP type" : "ICMP code")) {
      return false;
    }
    cmpLeaf(Column::proto, Cmp::kEq, 1);
    cmpLeaf(Column::proto, Cmp::kEq, 58);
    op(Instr::Kind::kOr);
    cmpLeaf(type ? Column::icmp_type : Column::icmp_code, cmp, v);
    op(Instr::Kind::kAnd);
    return true;
  }
  // engine-type N, engine-id N (and engine_type, engine_id); current nfdump's `engine type N`,
  // `engine id N`.
  bool pEngine(const Qual&, const Token& kw) {
    bool type = kw.lower.find("type") != std::string::npos;
    std::string what = kw.lower;
    if (kw.lower == "engine") {
      if (!peekWord("type") && !peekWord("id")) {
        return fail(peek(), fmt::format("expected 'type' or 'id' after 'engine', got '{}'",
                                        describe(peek())));
      }
      type = next().lower == "type";
      what = type ? "engine type" : "engine id";
    }
    Cmp cmp;
    uint64_t v = 0;
    if (!parseCmpNumber(cmp, v, 255, what)) {
      return false;
    }
    cmpLeaf(type ? Column::engine_type : Column::engine_id, cmp, v);
    return true;
  }
  // ifname / vm: in, out, or either port's name.
  bool pPortName(const Qual& q, const Token& kw) {
    const bool vm = kw.lower == "vm";
    const char* what =
        vm ? "a VM id (vm-uuid, vm-id or iface-id) or a glob" : "an interface name or a glob";
    const Column in = vm ? Column::in_vm : Column::in_ifname;
    const Column out = vm ? Column::out_vm : Column::out_ifname;
    if (!parseName(q.dir == Dir::kOut ? out : in, what)) {
      return false;
    }
    if (q.dir == Dir::kNone) {
      Leaf other = p_.leaves.back();
      other.col = out;
      leaf(other);
      op(Instr::Kind::kOr);
    }
    return true;
  }
  bool pBridge(const Qual&, const Token&) {
    return parseName(Column::bridge, "a bridge name or a glob");
  }
  bool pIf(const Qual& q, const Token&) {
    Cmp cmp;
    uint64_t v = 0;
    if (!parseCmpNumber(cmp, v, UINT32_MAX, "interface number")) {
      return false;
    }
    if (q.dir != Dir::kOut) {
      cmpLeaf(Column::in_if, cmp, v);
    }
    if (q.dir != Dir::kIn) {
      cmpLeaf(Column::out_if, cmp, v);
    }
    if (q.dir == Dir::kNone) {
      op(Instr::Kind::kOr);
    }
    return true;
  }
  bool pFlags(const Qual&, const Token&) {
    auto isNumber = [](const Token& t) {
      return t.kind == Token::Kind::kWord && std::isdigit(static_cast<unsigned char>(t.text[0]));
    };
    // `flags =SA`: exactly these flags (current nfdump), the byte compared with their mask.
    if (peek().kind == Token::Kind::kCmp && peek(1).kind == Token::Kind::kWord &&
        !isNumber(peek(1))) {
      const Token& c = next();
      const Token& t = next();
      if (c.cmp != Cmp::kEq) {
        return fail(c, "TCP flag letters compare with '=' only ('flags =SA': exactly S and A)");
      }
      uint64_t m = 0;
      if (!parseTcpFlags(t.text, m)) {
        return fail(
            t, fmt::format("bad TCP flags '{}' (letters of F S R P A U E C, X = all)", t.text));
      }
      cmpLeaf(Column::tcp_flags, Cmp::kEq, m);
      return true;
    }
    if (peek().kind == Token::Kind::kCmp || isNumber(peek())) {
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
  // router ip ADDR, exporter ip ADDR (current nfdump), next ip ADDR, next hop ADDR (a network
  // with '/'). `exporter` without `ip` is the registry field.
  bool pNextRouter(const Qual&, const Token& kw) {
    const Token& sub = peek();
    if (kw.lower == "exporter" && !peekWord("ip")) {
      return registryField(kw);
    }
    if (kw.lower == "next" && sub.kind == Token::Kind::kWord && sub.lower == "as") {
      return unsupported(kw, "records carry no next AS");
    }
    if (!(acceptWord("ip") || (kw.lower == "next" && acceptWord("hop")))) {
      return fail(sub, fmt::format("expected 'ip' after '{}', got '{}'", kw.text, describe(sub)));
    }
    Column c = kw.lower == "next" ? Column::next_hop : Column::exporter;
    const bool net =
        peek().kind == Token::Kind::kWord && peek().text.find('/') != std::string::npos;
    return parseAddress(Side::kSrc, c, c, net);
  }
  bool pBgpNext(const Qual&, const Token& kw) {
    return unsupported(kw, "records carry no BGP next hop");
  }
  // packets / bytes, `in packets` / `in bytes` (the same: flows are unidirectional).
  bool pCounter(const Qual& q, const Token& kw) {
    if (q.dir == Dir::kOut) {
      return unsupported(*q.dir_tok, "flows are unidirectional (no out packets/bytes)");
    }
    Cmp cmp;
    uint64_t v = 0;
    if (!parseCmpNumber(cmp, v, UINT64_MAX, kw.lower)) {
      return false;
    }
    cmpLeaf(kw.lower == "packets" ? Column::packets : Column::bytes, cmp, v);
    return true;
  }
  bool pFlows(const Qual&, const Token&) {  // every record is one flow
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
  // duration, pps, bps, bpp: values derived from the times and counters.
  bool pDerived(const Qual&, const Token& kw) {
    const std::string& k = kw.lower;
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
  bool pFlowdir(const Qual&, const Token&) {
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
  bool pObservation(const Qual&, const Token&) {
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
  bool pSampled(const Qual&, const Token&) {  // flows with a sampling rate above 1
    cmpLeaf(Column::sampling_rate, Cmp::kGt, 1);
    return true;
  }
  // `direction ingress|egress`; otherwise the registry field `direction [CMP] N`.
  bool pDirection(const Qual&, const Token& kw) {
    if (peekWord("ingress") || peekWord("egress")) {
      cmpLeaf(Column::direction, Cmp::kEq, next().lower == "ingress" ? 0 : 1);
      return true;
    }
    return registryField(kw);
  }
  // The registry field named like the keyword (a keyword row that only claims some of its uses).
  bool registryField(const Token& kw) {
    if (const FieldDef* def = findField(kw.lower)) {
      return parseRegistryField(*def);
    }
    return unknownKeyword(kw);
  }
  // `first seen`, `last seen`, `received` [CMP] TIME, as current nfdump: the time in whole
  // milliseconds compared with TIME (RFC 3339 or nfdump's 2024/07/11.09:15:10.010; UTC unless it
  // names a zone). Compiled to ranges of the nanosecond column, so blocks prune by time.
  // `first` / `last` without `seen` are the registry fields (nanosecond times).
  bool pSeen(const Qual&, const Token& kw) {
    Column col = Column::received_ns;
    if (kw.lower != "received") {
      if (!peekWord("seen")) {
        return registryField(kw);
      }
      next();
      col = kw.lower == "first" ? Column::first_ns : Column::last_ns;
    }
    Cmp cmp = Cmp::kEq;
    if (peek().kind == Token::Kind::kCmp) {
      cmp = next().cmp;
    }
    const Token* t = nullptr;
    if (!expectValue(t, "a time (2024-07-11T09:15:10.010, quoted if it has a space)")) {
      return false;
    }
    std::string text = t->text;
    // nfdump's yyyy/mm/dd.hh:mm:ss[.mmm]
    if (text.size() > 11 && text[4] == '/' && text[7] == '/' && text[10] == '.') {
      text[4] = text[7] = '-';
      text[10] = 'T';
    }
    uint64_t ns = 0;
    if (!parseTime(text, ns)) {
      return fail(*t, fmt::format("bad time '{}' (expected 2024-07-11T09:15:10.010, "
                                  "'2024-07-11 09:15:10' or 2024/07/11.09:15:10)",
                                  t->text));
    }
    constexpr uint64_t kMs = 1000000;
    const uint64_t lo = ns / kMs * kMs;  // the millisecond TIME names: [lo, hi)
    const uint64_t hi = lo + kMs;
    switch (cmp) {
      case Cmp::kEq:
        cmpLeaf(col, Cmp::kGe, lo);
        cmpLeaf(col, Cmp::kLt, hi);
        op(Instr::Kind::kAnd);
        break;
      case Cmp::kLt:
        cmpLeaf(col, Cmp::kLt, lo);
        break;
      case Cmp::kLe:
        cmpLeaf(col, Cmp::kLt, hi);
        break;
      case Cmp::kGt:
        cmpLeaf(col, Cmp::kGe, hi);
        break;
      case Cmp::kGe:
        cmpLeaf(col, Cmp::kGe, lo);
        break;
    }
    return true;
  }
  bool pFlowTypo(const Qual&, const Token& kw) {
    return fail(kw, "unknown keyword 'flow' (did you mean 'flows'?)");
  }
  bool pNotRecorded(const Qual&, const Token& kw) {
    return unsupported(kw, "net-collector records carry no such field (see docs/filters.md)");
  }

  std::string_view text_;
  Program& p_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  FilterError err_;
  bool failed_ = false;
  bool negated_ = false;  // inside an odd number of NOTs

  friend std::vector<FilterKeywordDoc> primitiveDocs();
};

// clang-format off
// The keywords, in the order `net-collector filters` lists them.
const Compiler::PrimitiveDef Compiler::kPrimitives[] = {
    // words, qualifiers, parse rule, syntax, meaning
    {"any", kNoQual, &Compiler::pAny, "any", "every flow"},
    {"inet ipv4 inet6 ipv6", kNoQual, &Compiler::pFamily,
     "inet | ipv4, inet6 | ipv6", "IPv4 / IPv6 flows"},
    {"proto", kNoQual, &Compiler::pProto, "proto NAME|NUMBER",
     "IP protocol: tcp, udp, icmp, icmp6, gre, esp, ah, sctp, ... or 0..255"},
    {"ip host", kSrcDst, &Compiler::pIp, "[src|dst] ip|host ADDR",
     "address equals ADDR (IPv4 or IPv6; no DNS)"},
    {"", kNoQual, nullptr, "[src|dst] ip in [ADDR ADDR/BITS, ...]",
     "address in a list of addresses and networks"},
    {"net", kSrcDst, &Compiler::pNet, "[src|dst] net ADDR/BITS, [src|dst] net ADDR MASK",
     "address in a network"},
    {"port", kSrcDst, &Compiler::pPort, "[src|dst] port [CMP] N, [src|dst] port in [N N ...]",
     "port compare or list (ICMP/ICMPv6 flows: dst port is type*256+code, as in nfdump)"},
    {"icmp-type icmp-code icmp", kNoQual, &Compiler::pIcmp,
     "icmp-type|icmp type [CMP] N, icmp-code|icmp code [CMP] N",
     "ICMP/ICMPv6 type or code (implies ICMP)"},
    {"flags", kNoQual, &Compiler::pFlags, "flags LETTERS",
     "all the given TCP flags are set: F S R P A U E C, X = FSRPAU ('not flags AF' = none of "
     "them, as in nfdump)"},
    {"", kNoQual, nullptr, "flags =LETTERS",
     "exactly the given TCP flags ('flags =SA': SYN and ACK and no other flag)"},
    {"", kNoQual, nullptr, "flags CMP N",
     "TCP flags byte compared as a number ('flags 2' = exactly SYN)"},
    {"tos", kSrcDst, &Compiler::pVlanTos, "[src|dst] tos [CMP] N", "type of service byte"},
    {"packets bytes", kInOut, &Compiler::pCounter, "packets|bytes [CMP] N[k|M|G]",
     "counters as exported (not multiplied by sampling_rate)"},
    {"", kNoQual, nullptr, "in packets|in bytes [CMP] N", "same as packets / bytes"},
    {"pps bps bpp", kNoQual, &Compiler::pDerived, "pps|bps|bpp [CMP] N[k|M|G]",
     "packets/s, bits/s over the flow duration (0 when it is 0); bytes per packet"},
    {"duration", kNoQual, &Compiler::pDerived, "duration [CMP] MS",
     "last - first in milliseconds"},
    {"first last received", kNoQual, &Compiler::pSeen,
     "first seen|last seen|received [CMP] TIME",
     "flow start / end / arrival at the collector, in whole milliseconds, compared with TIME "
     "(2024-07-11T09:15:10.010, '2024-07-11 09:15:10' or 2024/07/11.09:15:10; UTC unless "
     "TIME names a zone)"},
    {"flows", kNoQual, &Compiler::pFlows, "flows [CMP] N", "flow count of a record (always 1)"},
    {"if", kInOut, &Compiler::pIf, "in if N, out if N, if N",
     "input / output / either interface number (see if_kind)"},
    {"vlan", kSrcDst, &Compiler::pVlanTos, "[src|dst] vlan N", "802.1Q VLAN id"},
    {"mac", kSrcDst | kInOut, &Compiler::pMac, "[in|out] [src|dst] mac MAC",
     "MAC address (records carry one source and one destination)"},
    {"as", kSrcDst, &Compiler::pAs, "[src|dst] as [CMP] N, [src|dst] as in [N ...]",
     "AS number"},
    {"mask", kSrcDst, &Compiler::pMask, "[src|dst] mask N", "prefix length"},
    {"next", kNoQual, &Compiler::pNextRouter, "next ip ADDR, next hop ADDR",
     "IP next hop (next_hop)"},
    {"router exporter", kNoQual, &Compiler::pNextRouter, "router ip ADDR, exporter ip ADDR",
     "exporter address"},
    {"engine-type engine-id engine_type engine_id engine", kNoQual, &Compiler::pEngine,
     "engine-type|engine type [CMP] N, engine-id|engine id [CMP] N", "NetFlow engine type / id"},
    {"ifname", kInOut, &Compiler::pPortName, "in ifname NAME, out ifname NAME, ifname NAME",
     "input / output / either interface name (Open vSwitch port or the exporter's name); "
     "globs (*, ?, [..]) allowed"},
    {"bridge", kNoQual, &Compiler::pBridge, "bridge NAME",
     "Open vSwitch bridge of the flow's port; globs allowed"},
    {"vm", kInOut, &Compiler::pPortName, "in vm ID, out vm ID, vm ID",
     "VM behind the input / output / either port (vm-uuid, vm-id or iface-id); globs allowed"},
    {"flowdir", kNoQual, &Compiler::pFlowdir, "flowdir ingress|egress|0|1",
     "IPFIX flowDirection"},
    {"observation", kNoQual, &Compiler::pObservation, "observation domain id [CMP] N",
     "IPFIX observation domain / v9 source id"},
    {"sampled", kNoQual, &Compiler::pSampled, "sampled", "flows with sampling_rate > 1"},
    // Spellings not listed on their own.
    {"direction", kNoQual, &Compiler::pDirection, nullptr, nullptr},
    {"bgpnext", kNoQual, &Compiler::pBgpNext, nullptr, nullptr},
    {"flow", kNoQual, &Compiler::pFlowTypo, nullptr, nullptr},
    {"count ident sysid geo tun mpls payload asa nat xip xnet xport nip nport ingress egress "
     "pblock client server vrf latency prev",
     kNoQual, &Compiler::pNotRecorded, nullptr, nullptr},
    {nullptr, kNoQual, nullptr, nullptr, nullptr},
};
// clang-format on

std::vector<FilterKeywordDoc> primitiveDocs() {
  std::vector<FilterKeywordDoc> out;
  for (const auto* d = Compiler::kPrimitives; d->words != nullptr; ++d) {
    if (d->syntax != nullptr) {
      out.push_back({d->syntax, d->meaning});
    }
  }
  return out;
}

}  // namespace detail

std::optional<Filter> Filter::compile(std::string_view text, FilterError* err) {
  auto p = std::make_shared<detail::Program>();
  detail::Compiler c(text, *p);
  FilterError e;
  if (!c.run(e)) {
    if (err != nullptr) {
      *err = e;
    }
    return std::nullopt;
  }
  p->computeDepth();
  return Filter(std::string(text), std::move(p));
}

}  // namespace nc::query
