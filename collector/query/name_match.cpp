#include "collector/query/name_match.hpp"

#include <array>

#include "collector/record/names.hpp"

namespace nc::query {

NameMatcher::NameMatcher(std::string pattern) : pattern_(std::move(pattern)) {}

bool NameMatcher::slow(uint32_t id) const {
  std::lock_guard lock(mu_);
  if (id < cache_.size() && cache_[id] != 0) {
    return cache_[id] == 2;
  }
  const bool yes = id != 0 && globMatch(pattern_, nameOf(id));
  if (id >= cache_.size()) {
    cache_.resize(std::max<size_t>(id + 1, cache_.size() * 2), 0);
  }
  cache_[id] = yes ? 2 : 1;
  return yes;
}

bool NameMatcher::matches(uint32_t id) const {
  return slow(id);
}

void NameMatcher::matchRows(const uint32_t* ids, size_t n, uint8_t* out) const {
  // A small direct-mapped cache of this call's answers keeps the mutex out of the loop.
  constexpr size_t kSlots = 32;
  std::array<uint32_t, kSlots> key;
  std::array<uint8_t, kSlots> val{};
  key.fill(UINT32_MAX);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t id = ids[i];
    const size_t s = id & (kSlots - 1);
    if (key[s] != id) {
      key[s] = id;
      val[s] = slow(id) ? 1 : 0;
    }
    out[i] = val[s];
  }
}

}  // namespace nc::query
