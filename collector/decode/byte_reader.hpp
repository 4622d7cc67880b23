#pragma once
// ByteReader: a bounds-checked, zero-copy cursor over a datagram with big-endian getters and a
// sticky error. Once a read runs past the end, every later read returns 0 and ok() stays false, so
// parsers can read a whole header and check once. Internal to nc_decode.
#include <cstddef>
#include <cstdint>
#include <span>

namespace nc::decode {

// Big-endian loads from a pointer known to hold enough bytes.
inline uint16_t loadBe16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t loadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t loadBe64(const uint8_t* p) {
  return (uint64_t{loadBe32(p)} << 32) | loadBe32(p + 4);
}
// Unsigned big-endian integer of 1..8 bytes (IPFIX reduced-size encoding); longer fields keep
// their last 8 bytes.
inline uint64_t loadBeN(const uint8_t* p, size_t n) {
  if (n > 8) {
    p += n - 8;
    n = 8;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

class ByteReader {
 public:
  ByteReader() = default;
  explicit ByteReader(std::span<const uint8_t> data) : data_(data.data()), size_(data.size()) {}
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return size_ - pos_; }
  size_t position() const { return pos_; }
  bool empty() const { return pos_ >= size_; }
  const uint8_t* current() const { return data_ + pos_; }
  void fail() { ok_ = false; }

  // True (and nothing consumed) when n bytes are available; otherwise sets the sticky error.
  bool need(size_t n) {
    if (!ok_ || n > size_ - pos_) {
      ok_ = false;
      return false;
    }
    return true;
  }
  uint8_t u8() {
    if (!need(1)) {
      return 0;
    }
    return data_[pos_++];
  }
  uint16_t u16() {
    if (!need(2)) {
      return 0;
    }
    uint16_t v = loadBe16(data_ + pos_);
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4)) {
      return 0;
    }
    uint32_t v = loadBe32(data_ + pos_);
    pos_ += 4;
    return v;
  }
  uint64_t u64() {
    if (!need(8)) {
      return 0;
    }
    uint64_t v = loadBe64(data_ + pos_);
    pos_ += 8;
    return v;
  }
  // Returns a pointer to n bytes and advances, or nullptr (sticky error) when they are not there.
  const uint8_t* bytes(size_t n) {
    if (!need(n)) {
      return nullptr;
    }
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  bool skip(size_t n) { return bytes(n) != nullptr; }
  // A sub-reader over the next n bytes (advancing this one), or an empty failed reader.
  ByteReader sub(size_t n) {
    const uint8_t* p = bytes(n);
    if (p == nullptr) {
      ByteReader bad;
      bad.ok_ = false;
      return bad;
    }
    return ByteReader(p, n);
  }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace nc::decode
