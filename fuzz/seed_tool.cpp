// nc_fuzz_seeds <capture dir> <corpus dir>: writes the fuzz seed corpora from the checked-in
// captures. For every capture and each protocol it holds, one seed with all its datagrams of that
// protocol joined by the separator (so templates precede their data), plus one seed per datagram
// (first 20 per capture). Layout: <corpus dir>/<netflow_v5|netflow_v9|ipfix|sflow|any>/<name>.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.hpp"
#include "tests/unit/decode/pcap_reader.hpp"

namespace fs = std::filesystem;

namespace {

std::string protocolOf(const std::vector<uint8_t>& p) {
  if (p.size() < 4) {
    return "";
  }
  uint16_t v16 = static_cast<uint16_t>((p[0] << 8) | p[1]);
  if (v16 == 5) {
    return "netflow_v5";
  }
  if (v16 == 9) {
    return "netflow_v9";
  }
  if (v16 == 10) {
    return "ipfix";
  }
  if (p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 5) {
    return "sflow";
  }
  return "";
}

void write(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: nc_fuzz_seeds <capture dir> <corpus dir>\n";
    return 2;
  }
  fs::path out(argv[2]);
  for (const char* p : {"netflow_v5", "netflow_v9", "ipfix", "sflow", "any"}) {
    fs::create_directories(out / p);
  }
  size_t written = 0;
  for (const auto& entry : fs::directory_iterator(argv[1])) {
    if (entry.path().extension() != ".pcap") {
      continue;
    }
    std::vector<nc::test::UdpDatagram> dgs;
    std::string why;
    if (!nc::test::readUdpCapture(entry.path().string(), dgs, &why)) {
      std::cerr << entry.path() << ": " << why << "\n";
      continue;
    }
    std::string stem = entry.path().stem().string();
    std::map<std::string, std::vector<uint8_t>> joined;
    size_t n = 0;
    for (const auto& d : dgs) {
      std::string proto = protocolOf(d.payload);
      if (proto.empty()) {
        continue;
      }
      std::vector<uint8_t>& j = joined[proto];
      if (!j.empty()) {
        j.insert(j.end(), nc::fuzz::kSeparator, nc::fuzz::kSeparator + 4);
      }
      j.insert(j.end(), d.payload.begin(), d.payload.end());
      if (n < 20) {
        write(out / proto / (stem + "-" + std::to_string(n)), d.payload);
        ++written;
      }
      ++n;
    }
    for (const auto& [proto, bytes] : joined) {
      // Large captures are cut to keep seeds small (the fuzzer prefers inputs under 64 KiB).
      std::vector<uint8_t> seed(bytes.begin(),
                                bytes.begin() + std::min<size_t>(bytes.size(), 60000));
      write(out / proto / (stem + "-all"), seed);
      write(out / "any" / (stem + "-" + proto + "-all"), seed);
      written += 2;
    }
  }
  std::cout << "wrote " << written << " seeds to " << out << "\n";
  return 0;
}
