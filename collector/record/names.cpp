#include "collector/record/names.hpp"

#include <fnmatch.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace nc {

// Entries live in chunks that never move: get() reads a chunk pointer and an entry with acquire
// loads, so it needs no lock while intern() appends under the mutex.
class NameTable::Impl {
 public:
  static constexpr uint32_t kChunkBits = 12;
  static constexpr uint32_t kChunk = 1u << kChunkBits;
  static constexpr uint32_t kChunks = kMaxNames / kChunk;

  struct Entry {
    std::atomic<const char*> text{nullptr};
    uint32_t len = 0;
  };

  Impl() { size_.store(1); }
  ~Impl() {
    for (auto& c : chunks_) {
      delete[] c.load();
    }
  }

  uint32_t intern(std::string_view name) {
    if (name.empty()) {
      return 0;
    }
    if (name.size() > kMaxNameLength) {
      name = name.substr(0, kMaxNameLength);
    }
    std::lock_guard lock(mu_);
    if (auto it = ids_.find(std::string(name)); it != ids_.end()) {
      return it->second;
    }
    const uint32_t id = size_.load(std::memory_order_relaxed);
    if (id >= kMaxNames) {
      ++refused_;
      return 0;
    }
    Entry*& chunk_slot = local_[id >> kChunkBits];
    if (chunk_slot == nullptr) {
      chunk_slot = new Entry[kChunk];
      chunks_[id >> kChunkBits].store(chunk_slot, std::memory_order_release);
    }
    storage_.push_back(std::make_unique<char[]>(name.size()));
    std::copy(name.begin(), name.end(), storage_.back().get());
    Entry& e = chunk_slot[id & (kChunk - 1)];
    e.len = static_cast<uint32_t>(name.size());
    e.text.store(storage_.back().get(), std::memory_order_release);
    ids_.emplace(std::string(name), id);
    size_.store(id + 1, std::memory_order_release);
    return id;
  }

  uint32_t find(std::string_view name) const {
    if (name.empty()) {
      return 0;
    }
    std::lock_guard lock(mu_);
    auto it = ids_.find(std::string(name.substr(0, kMaxNameLength)));
    return it == ids_.end() ? 0 : it->second;
  }

  std::string_view get(uint32_t id) const {
    if (id == 0 || id >= kMaxNames) {
      return {};
    }
    const Entry* chunk = chunks_[id >> kChunkBits].load(std::memory_order_acquire);
    if (chunk == nullptr) {
      return {};
    }
    const Entry& e = chunk[id & (kChunk - 1)];
    const char* p = e.text.load(std::memory_order_acquire);
    return p == nullptr ? std::string_view() : std::string_view(p, e.len);
  }

  uint32_t size() const { return size_.load(std::memory_order_acquire); }
  uint64_t refused() const {
    std::lock_guard lock(mu_);
    return refused_;
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<std::unique_ptr<char[]>> storage_;
  std::array<std::atomic<Entry*>, kChunks> chunks_{};
  std::array<Entry*, kChunks> local_{};  // the same pointers, for the writer (under mu_)
  std::atomic<uint32_t> size_{1};
  uint64_t refused_ = 0;
};

NameTable& NameTable::global() {
  static NameTable* table = new NameTable();  // never destroyed: ids may be read at exit
  return *table;
}

NameTable::NameTable() : impl_(new Impl()) {}
NameTable::~NameTable() {
  delete impl_;
}
uint32_t NameTable::intern(std::string_view name) {
  return impl_->intern(name);
}
uint32_t NameTable::find(std::string_view name) const {
  return impl_->find(name);
}
std::string_view NameTable::get(uint32_t id) const {
  return impl_->get(id);
}
uint32_t NameTable::size() const {
  return impl_->size();
}
uint64_t NameTable::refused() const {
  return impl_->refused();
}

bool hasGlob(std::string_view pattern) {
  return pattern.find_first_of("*?[") != std::string_view::npos;
}

bool globMatch(std::string_view pattern, std::string_view text) {
  if (!hasGlob(pattern)) {
    return pattern == text;
  }
  return fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

}  // namespace nc
