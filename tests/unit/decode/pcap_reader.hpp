#pragma once
// A tiny capture reader for decoder tests: classic libpcap (µs or ns, either byte order) and pcapng
// (SHB/IDB/EPB/SPB), link types Ethernet (with 802.1Q/QinQ tags), Linux cooked (SLL) and raw IP;
// IPv4 and IPv6 (unfragmented) carrying UDP. Everything else (TCP, ARP, ...) is skipped.
#include <cstdint>
#include <string>
#include <vector>

#include "collector/record/flow_record.hpp"

namespace nc::test {

struct UdpDatagram {
  IpAddr src;
  IpAddr dst;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint64_t ts_ns = 0;
  std::vector<uint8_t> payload;
};

// Reads every UDP datagram of `path` in file order. Returns false and sets `why` when the file
// cannot be read or is not a capture.
bool readUdpCapture(const std::string& path, std::vector<UdpDatagram>& out, std::string* why);

}  // namespace nc::test
