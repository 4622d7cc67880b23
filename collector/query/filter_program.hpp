#pragma once
// Internal to collector/query: the compiled filter, as a plain data structure, and the operation
// table that gives every leaf kind its evaluation, block pruning and printing.
//
//   filter_syntax.hpp  text -> tokens, literals, the keyword docs       (front end)
//   filter_parse.cpp   tokens -> Program (one row per keyword, PrimitiveDef)
//   filter_program.hpp Program + OpDef table (this file)                 (the tree)
//   filter_ops.cpp     kOps: one row per Leaf::Op (columns, eval, prune, print)
//   filter_eval.cpp    Filter::select: the postfix stack machine over column chunks
//   filter_prune.cpp   Filter::mayMatch: the same program in three-valued logic over BlockSummary
//   filter_print.cpp   Filter::dump, FilterError::render
//   filter_docs.cpp    filterKeywords(): the primitive table's docs + the field registry
//
// Adding an operation: a Leaf::Op value here, one row in kOps (filter_ops.cpp), and the parse
// rule that emits it (a row of kPrimitives in filter_parse.cpp, with its docs). The compiler
// checks that kOps has a row for every Op, in order.
//
// Backends. The program is a postfix sequence over leaves with no pointers into evaluation state,
// so other backends walk it the same way select() and mayMatch() do: a stack of partial results,
// leaves pushed, AND/OR combining the two topmost, NOT flipping the top. The ClickHouse backend
// (issue 15) becomes one more OpDef member, `sql` (a leaf -> a SQL boolean expression over the
// column names, sets and prefix lists written as IN (...) / isIPAddressInRange), and one more
// driver beside dump() that joins the stack with AND/OR/NOT; nothing here changes shape.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collector/query/filter.hpp"
#include "collector/record/columns.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::query {

class NameMatcher;

namespace detail {

// A network in the 128-bit (v4-mapped) form; `net` is already masked.
struct Prefix {
  IpAddr net;
  uint8_t bits = 128;
};

// One test of the program. Which members matter depends on `op`.
struct Leaf {
  enum class Op : uint8_t {
    kTrue,
    kFalse,
    kCmp,         // column <cmp> value
    kMaskAll,     // (column & mask) == mask            (tcp flags)
    kMaskAny,     // (column & mask) != 0               (tcp flags under an odd number of NOTs)
    kInSet,       // column in sets[index]              (port/as lists, sorted)
    kPrefix,      // address column in net/bits
    kPrefixList,  // address column in any of prefix_lists[index]
    kDuration,    // (last - first) in ms <cmp> value
    kPps,         // 1000 * packets / duration_ms <cmp> value (0 when duration is 0)
    kBps,         // 8000 * bytes / duration_ms <cmp> value
    kBpp,         // bytes / packets <cmp> value
    kDstPort,     // dst port, for ICMP/ICMPv6 flows type * 256 + code (nfdump) <cmp> value
    kDstPortSet,  // the same in sets[index]
    kName,        // name column (NameTable ids) matches names[index] (a name or a glob)
    kCount        // (not an operation: the number of them)
  };
  Op op = Op::kTrue;
  Column col = Column::first_ns;
  Cmp cmp = Cmp::kEq;
  uint64_t value = 0;
  uint64_t mask = 0;
  uint32_t index = 0;
  IpAddr net;        // kPrefix: network, already masked
  uint8_t bits = 0;  // kPrefix: prefix length in the 128-bit (v4-mapped) form
};

struct Instr {
  enum class Kind : uint8_t { kLeaf, kAnd, kOr, kNot };
  Kind kind = Kind::kLeaf;
  uint32_t leaf = 0;
};

// A compiled filter: immutable once built and shared between copies of a Filter.
struct Program {
  std::vector<Leaf> leaves;
  std::vector<Instr> code;  // postfix
  std::vector<std::vector<uint64_t>> sets;
  std::vector<std::vector<Prefix>> prefix_lists;
  std::vector<std::shared_ptr<const NameMatcher>> names;
  size_t max_depth = 1;  // deepest evaluation stack
  // Filter::restrictTime: code[0, untimed_len) is the program before the window's instructions.
  static constexpr size_t kNoWindow = SIZE_MAX;
  size_t untimed_len = kNoWindow;
  uint64_t since_ns = 0;
  uint64_t until_ns = UINT64_MAX;

  // "any": one kTrue leaf.
  static Program any();
  void computeDepth();
  bool matchesAll() const { return code.size() == 1 && leaves[code[0].leaf].op == Leaf::Op::kTrue; }
};

// Three-valued result of a leaf over a block summary: may some row make it true / false.
struct Tri {
  bool t = true;
  bool f = true;
};

// One chunk of rows for an evaluation kernel: rows [base, base + n) of `c`.
struct Chunk {
  const FlowColumns& c;
  size_t base;
  size_t n;
};

// Rows per evaluation chunk (the byte masks of one chunk stay in L1).
inline constexpr size_t kChunk = 2048;

// The operation table: everything one leaf kind means, in one row.
struct OpDef {
  Leaf::Op op;
  const char* name;
  // Adds the columns the leaf reads (the scan's projection).
  void (*columns)(const Leaf& l, ColumnSet& s);
  // Writes 0/1 for each row of the chunk into out[0, n).
  void (*eval)(const Program& p, const Leaf& l, const Chunk& ch, uint8_t* out);
  // What the block summary allows; Tri{} (true, true) when it cannot tell.
  Tri (*prune)(const Program& p, const Leaf& l, const BlockSummary& b);
  // One line of Filter::dump() (without the newline).
  std::string (*print)(const Program& p, const Leaf& l);
  // (issue 15: `sql`, the leaf as a SQL boolean expression, goes here.)
};
const OpDef& opDef(Leaf::Op op);

// Shared helpers (filter_ops.cpp).
const char* cmpText(Cmp c);
const char* columnName(Column col);
// The prefix `addr/bits` (bits in the address family's own length) in 128-bit form.
Prefix makePrefix(const IpAddr& addr, unsigned bits);
// Highest address of a prefix.
IpAddr prefixLast(const Prefix& p);

}  // namespace detail
}  // namespace nc::query
