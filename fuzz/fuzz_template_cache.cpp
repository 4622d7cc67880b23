// libFuzzer target for the template cache:
//  1. the input as a template cache file: loadTemplates() must reject or accept it without harm;
//  2. the input as IPFIX then NetFlow v9 datagrams (small cache limits, short expiry), then a
//     save / load round trip into a fresh Decoder that must end with the same template count.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fuzz/fuzz_common.hpp"

namespace {

const std::string& tempPath() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir != nullptr ? dir : "/tmp") + "/nc-fuzz-templates-" +
           std::to_string(::getpid()) + ".bin";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = tempPath();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  {
    nc::decode::Decoder d;
    (void)d.loadTemplates(path);
  }

  nc::decode::DecoderOptions opt;
  opt.max_templates_per_exporter = 8;
  opt.max_templates_total = 16;
  opt.template_timeout_ns = 3'000'000'000;  // the driver advances 1 s per datagram
  nc::decode::Decoder d(opt);
  static constexpr uint8_t kIpfix[] = {0x00, 0x0a};
  static constexpr uint8_t kV9[] = {0x00, 0x09};
  nc::fuzz::decodeAll(data, size, kIpfix, d);
  nc::fuzz::decodeAll(data, size, kV9, d);
  if (!d.saveTemplates(path)) {
    std::abort();
  }
  nc::decode::Decoder restored(opt);
  if (!restored.loadTemplates(path) || restored.templateCount() != d.templateCount()) {
    std::abort();
  }
  std::remove(path.c_str());
  return 0;
}
