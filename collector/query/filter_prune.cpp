// Block pruning: the program run over a block's min/max summary in three-valued logic (each
// entry: may some row make it true / may some row make it false), each leaf judged by its kOps
// row (filter_ops.cpp). A block is skipped only when no row can make the whole program true.
#include <vector>

#include "collector/query/filter.hpp"
#include "collector/query/filter_program.hpp"

namespace nc::query {

using detail::Instr;
using detail::Leaf;
using detail::Tri;

bool Filter::mayMatch(const BlockSummary& b) const {
  if (b.rows == 0) {
    return false;
  }
  const detail::Program& prog = *prog_;
  std::vector<Tri> st;
  st.reserve(prog.max_depth + 1);
  for (const Instr& in : prog.code) {
    switch (in.kind) {
      case Instr::Kind::kAnd:
      case Instr::Kind::kOr: {
        Tri y = st.back();
        st.pop_back();
        Tri& x = st.back();
        if (in.kind == Instr::Kind::kAnd) {
          x = {x.t && y.t, x.f || y.f};
        } else {
          x = {x.t || y.t, x.f && y.f};
        }
        break;
      }
      case Instr::Kind::kNot:
        std::swap(st.back().t, st.back().f);
        break;
      case Instr::Kind::kLeaf: {
        const Leaf& l = prog.leaves[in.leaf];
        st.push_back(detail::opDef(l.op).prune(prog, l, b));
        break;
      }
    }
  }
  return st.empty() || st.back().t;
}

}  // namespace nc::query
