#pragma once
// Builds IPFIX messages byte by byte for tests: header, sets, template records and raw values.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace nc::test {

class IpfixBuilder {
 public:
  struct Field {
    uint16_t id = 0;
    uint16_t length = 0;
    uint32_t pen = 0;
  };

  IpfixBuilder(uint32_t export_time, uint32_t sequence, uint32_t domain) {
    u16(10);
    u16(0);  // length, set by finish()
    u32(export_time);
    u32(sequence);
    u32(domain);
  }
  void u8(uint8_t v) { b_.push_back(v); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
  void bytes(std::initializer_list<uint8_t> v) { b_.insert(b_.end(), v); }
  // Variable-length string (one-byte length prefix).
  void str(const std::string& s) {
    u8(static_cast<uint8_t>(s.size()));
    b_.insert(b_.end(), s.begin(), s.end());
  }
  void beginSet(uint16_t id) {
    set_start_ = b_.size();
    u16(id);
    u16(0);
  }
  void endSet() {
    size_t len = b_.size() - set_start_;
    b_[set_start_ + 2] = static_cast<uint8_t>(len >> 8);
    b_[set_start_ + 3] = static_cast<uint8_t>(len);
  }
  void templateRecord(uint16_t id, const std::vector<Field>& fields) {
    u16(id);
    u16(static_cast<uint16_t>(fields.size()));
    putFields(fields);
  }
  void optionsTemplateRecord(uint16_t id, uint16_t scope_count, const std::vector<Field>& fields) {
    u16(id);
    u16(static_cast<uint16_t>(fields.size()));
    u16(scope_count);
    putFields(fields);
  }
  std::vector<uint8_t> finish() {
    std::vector<uint8_t> out = b_;
    out[2] = static_cast<uint8_t>(out.size() >> 8);
    out[3] = static_cast<uint8_t>(out.size());
    return out;
  }

 private:
  void putFields(const std::vector<Field>& fields) {
    for (const Field& f : fields) {
      u16(f.pen != 0 ? static_cast<uint16_t>(f.id | 0x8000) : f.id);
      u16(f.length);
      if (f.pen != 0) {
        u32(f.pen);
      }
    }
  }
  std::vector<uint8_t> b_;
  size_t set_start_ = 0;
};

}  // namespace nc::test
