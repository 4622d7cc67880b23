#pragma once
// NameMatcher: a name or glob (`h1-*`, `vm-[0-9]*`) tested against NameTable ids
// (collector/record/names.hpp), the values of the name columns. The answer for each id is
// computed once (a glob over the id's text) and kept, so a filter over millions of rows does a
// handful of string matches. Thread-safe: the query's threads share one matcher.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace nc::query {

class NameMatcher {
 public:
  explicit NameMatcher(std::string pattern);
  const std::string& pattern() const { return pattern_; }
  bool matches(uint32_t id) const;
  // out[i] = matches(ids[i]), for n rows; runs of one id (the usual case) cost a compare.
  void matchRows(const uint32_t* ids, size_t n, uint8_t* out) const;

 private:
  bool slow(uint32_t id) const;
  std::string pattern_;
  mutable std::mutex mu_;
  mutable std::vector<uint8_t> cache_;  // by id: 0 not yet known, 1 no, 2 yes
};

}  // namespace nc::query
