#pragma once
// Names: the process-wide table of interned strings behind the name columns (in_ifname,
// out_ifname, bridge, in_vm, out_vm). A FlowRecord carries a 32-bit id per name; 0 means none.
//
// Ids are dense, start at 1, are never reused or freed, and mean something only inside one
// process: the store writes each block's names as a small dictionary next to the column
// (collector/store/format.hpp) and a reader interns them again in its own process. So the data
// path copies 4-byte ids, queries compare and group integers, and text appears only at output.
//
// Thread-safety: get() is lock-free (any thread, any time, for an id obtained from intern() or
// from a record); intern() and find() take a mutex and are meant for rare events (an inventory
// change, a block read from disk), not per record.
//
// Bounded: at most kMaxNames names (intern() then returns 0 and counts the refusal) of at most
// kMaxNameLength bytes each (longer names are cut).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nc {

class NameTable {
 public:
  static constexpr uint32_t kMaxNames = 1u << 22;  // ~4 M names
  static constexpr size_t kMaxNameLength = 255;

  // The one table of this process.
  static NameTable& global();

  NameTable();
  ~NameTable();
  NameTable(const NameTable&) = delete;
  NameTable& operator=(const NameTable&) = delete;

  // The id of `name` (added when new); "" -> 0. 0 also when the table is full.
  uint32_t intern(std::string_view name);
  // The id of `name`, 0 when it was never interned.
  uint32_t find(std::string_view name) const;
  // The text of `id`; "" for 0 and for ids this table never gave out.
  std::string_view get(uint32_t id) const;
  // Ids handed out so far + 1 (ids are 1 .. size()-1).
  uint32_t size() const;
  // intern() calls refused because the table was full.
  uint64_t refused() const;

 private:
  class Impl;
  Impl* impl_;
};

inline uint32_t internName(std::string_view name) {
  return NameTable::global().intern(name);
}
inline std::string_view nameOf(uint32_t id) {
  return NameTable::global().get(id);
}

// Shell-style glob (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`) over the whole text; case-sensitive.
bool globMatch(std::string_view pattern, std::string_view text);
bool hasGlob(std::string_view pattern);

}  // namespace nc
