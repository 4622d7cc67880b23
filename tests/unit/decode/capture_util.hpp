#pragma once
// Helpers shared by the decoder tests: a sink that keeps everything, and a runner that feeds a
// checked-in capture (tests/data/captures) through a Decoder, one UDP datagram at a time.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "collector/decode/decoder.hpp"
#include "tests/unit/decode/pcap_reader.hpp"

namespace nc::test {

class CollectingSink : public decode::RecordSink {
 public:
  void onRecords(std::span<const FlowRecord> records) override {
    ++batches;
    this->records.insert(this->records.end(), records.begin(), records.end());
  }
  void onCounters(const decode::InterfaceCounters& c) override { counters.push_back(c); }
  void onInterfaceName(const decode::InterfaceName& n) override {
    names.push_back({n.exporter, n.domain, n.if_index, n.if_kind, std::string(n.name)});
  }
  struct Name {
    IpAddr exporter;
    uint32_t domain = 0;
    uint32_t if_index = 0;
    IfKind if_kind = IfKind::kUnknown;
    std::string name;
  };

  std::vector<FlowRecord> records;
  std::vector<decode::InterfaceCounters> counters;
  std::vector<Name> names;
  size_t batches = 0;
};

struct CaptureRun {
  std::vector<UdpDatagram> datagrams;
  std::vector<decode::DecodeStatus> statuses;  // one per datagram
  CollectingSink sink;
  decode::ExporterStats total;  // all exporters summed
  bool read_ok = false;
  std::string why;
};

std::filesystem::path captureDir();
// Reads tests/data/captures/<name> and decodes every UDP datagram (exporter = UDP source).
CaptureRun runCapture(const std::string& name, decode::Decoder& decoder);
decode::ExporterStats sumStats(const decode::Decoder& decoder);
// The manifest.json entry of `file` (null when absent).
const nlohmann::json& manifestEntry(const std::string& file);
const nlohmann::json& manifest();

// Fields of each line of a telegraf line-protocol golden file (tags and fields together; string
// quotes and the integer suffix "u" removed; the trailing timestamp dropped).
std::vector<std::map<std::string, std::string>> readTelegraf(const std::string& name);

// Compares `records` (flow records only, in order) with a NetGauze per-message golden file:
// addresses, ports, protocol, counters, interfaces, direction and millisecond timestamps where the
// golden record has them. Returns the number of records compared; failures are gtest failures.
size_t expectMatchesNetgauze(const std::string& name, const std::vector<FlowRecord>& records);

inline IpAddr ip(const char* text) {
  IpAddr a;
  IpAddr::parse(text, a);
  return a;
}
inline size_t errorCount(const decode::ExporterStats& s, decode::DecodeError e) {
  return s.errors[static_cast<size_t>(e)];
}

}  // namespace nc::test
