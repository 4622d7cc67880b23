// libFuzzer target: sflow datagrams (the version field is forced).
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static constexpr uint8_t kVersion[] = {0x00, 0x00, 0x00, 0x05};
  nc::decode::Decoder decoder;
  nc::fuzz::decodeAll(data, size, std::span<const uint8_t>(kVersion, sizeof(kVersion)), decoder);
  return 0;
}
