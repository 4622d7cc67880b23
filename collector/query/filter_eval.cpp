// Filter evaluation: the postfix program run over chunks of column rows. Each leaf writes a 0/1
// byte per row through its kOps kernel (filter_ops.cpp) onto a stack of byte masks; AND/OR/NOT
// combine the masks; the final mask is compacted into row indices.
#include <algorithm>
#include <bit>
#include <cstring>

#include "collector/query/filter.hpp"
#include "collector/query/filter_program.hpp"
#include "collector/query/name_match.hpp"

namespace nc::query {

using detail::Chunk;
using detail::Instr;
using detail::kChunk;
using detail::Leaf;
using detail::Program;

namespace {

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

const std::shared_ptr<const Program>& anyProgram() {
  static const auto any = std::make_shared<const Program>(Program::any());
  return any;
}

}  // namespace

Filter::Filter() : prog_(anyProgram()) {}

Filter::Filter(std::string text, std::shared_ptr<const Program> prog)
    : text_(std::move(text)), prog_(std::move(prog)) {}

void Filter::restrictTime(uint64_t since_ns, uint64_t until_ns) {
  auto p = std::make_shared<Program>(*prog_);
  if (p->matchesAll()) {
    p->leaves.clear();
    p->code.clear();
  }
  if (p->untimed_len == Program::kNoWindow) {  // a second window narrows the first
    p->untimed_len = p->code.size();
    p->since_ns = since_ns;
    p->until_ns = until_ns;
  } else {
    p->since_ns = std::max(p->since_ns, since_ns);
    p->until_ns = std::min(p->until_ns, until_ns);
  }
  auto add = [&](Cmp cmp, uint64_t v) {
    Leaf l;
    l.op = Leaf::Op::kCmp;
    l.col = Column::first_ns;
    l.cmp = cmp;
    l.value = v;
    p->leaves.push_back(l);
    bool first = p->code.empty();
    p->code.push_back({Instr::Kind::kLeaf, static_cast<uint32_t>(p->leaves.size() - 1)});
    if (!first) {
      p->code.push_back({Instr::Kind::kAnd, 0});
    }
  };
  if (since_ns > 0) {
    add(Cmp::kGe, since_ns);
  }
  if (until_ns != UINT64_MAX) {
    add(Cmp::kLt, until_ns);
  }
  if (p->code.empty()) {
    p->leaves.push_back(Leaf{});
    p->code.push_back({Instr::Kind::kLeaf, 0});
    p->untimed_len = Program::kNoWindow;  // (no window after all: "any")
  }
  p->computeDepth();
  prog_ = std::move(p);
}

bool Filter::matchesAll() const {
  return prog_->matchesAll();
}

bool Filter::matchesAllInWindow() const {
  return matchesAll() || prog_->untimed_len == 0;
}

ColumnSet Filter::columns() const {
  ColumnSet s;
  for (const Instr& in : prog_->code) {
    if (in.kind == Instr::Kind::kLeaf) {
      const Leaf& l = prog_->leaves[in.leaf];
      detail::opDef(l.op).columns(l, s);
    }
  }
  return s;
}

void Filter::select(const FlowColumns& c, size_t begin, size_t end, std::vector<uint32_t>& rows,
                    bool in_window) const {
  const Program& prog = *prog_;
  if (prog.matchesAll()) {
    for (size_t i = begin; i < end; ++i) {
      rows.push_back(static_cast<uint32_t>(i));
    }
    return;
  }
  thread_local std::vector<uint8_t> stack_mem;
  const size_t depth = prog.max_depth + 1;
  if (stack_mem.size() < depth * kChunk) {
    stack_mem.resize(depth * kChunk);
  }
  for (size_t base = begin; base < end; base += kChunk) {
    const size_t n = std::min(kChunk, end - base);
    // A chunk whose rows all lie inside the time window (restrictTime) runs the program without
    // the window's instructions, appended last: the store hands over whole blocks inside it.
    size_t plen = prog.code.size();
    if (prog.untimed_len != Program::kNoWindow && in_window) {
      plen = prog.untimed_len;
    } else if (prog.untimed_len != Program::kNoWindow) {
      const uint64_t* t = c.first_ns.data() + base;
      uint64_t lo = UINT64_MAX;
      uint64_t hi = 0;
      for (size_t i = 0; i < n; ++i) {
        lo = std::min(lo, t[i]);
        hi = std::max(hi, t[i]);
      }
      if (lo >= prog.since_ns && hi < prog.until_ns) {
        plen = prog.untimed_len;
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
    const Chunk chunk{c, base, n};
    size_t sp = 0;
    auto top = [&](size_t k) { return stack_mem.data() + (sp - k) * kChunk; };
    for (size_t pc = 0; pc < plen; ++pc) {
      const Instr& in = prog.code[pc];
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
          const Leaf& l = prog.leaves[in.leaf];
          detail::opDef(l.op).eval(prog, l, chunk, top(1));
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

}  // namespace nc::query
