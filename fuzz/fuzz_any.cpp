// libFuzzer target: any datagram; the decoder picks the protocol from the first bytes.
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nc::decode::Decoder decoder;
  nc::fuzz::decodeAll(data, size, {}, decoder);
  return 0;
}
