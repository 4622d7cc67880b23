#include "collector/cli/output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>

#include "collector/record/fields.hpp"
#include "common/units.hpp"

namespace nc::cli {

bool parseFormat(const std::string& text, Format& out) {
  if (text == "auto") {
    out = ::isatty(STDOUT_FILENO) ? Format::kTable : Format::kJson;
  } else if (text == "table") {
    out = Format::kTable;
  } else if (text == "csv") {
    out = Format::kCsv;
  } else if (text == "json") {
    out = Format::kJson;
  } else {
    return false;
  }
  return true;
}

void printTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows,
                const std::vector<bool>& numeric) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) {
    width[i] = header[i].size();
  }
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      if (i != 0) {
        s += "  ";
      }
      bool right = i < numeric.size() && numeric[i];
      s += right ? fmt::format("{:>{}}", cells[i], width[i])
                 : fmt::format("{:<{}}", cells[i], width[i]);
    }
    while (!s.empty() && s.back() == ' ') {
      s.pop_back();
    }
    out << s << '\n';
  };
  line(header);
  for (const auto& r : rows) {
    line(r);
  }
}

namespace {

std::string endpoint(const IpAddr& a, uint16_t port, uint8_t proto) {
  bool ports = proto == 6 || proto == 17 || proto == 132;
  if (a.isV4()) {
    return ports ? fmt::format("{}:{}", a.toString(), port) : a.toString();
  }
  return ports ? fmt::format("[{}]:{}", a.toString(), port) : a.toString();
}

std::string protoName(uint8_t p) {
  switch (p) {
    case 1:
      return "ICMP";
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 47:
      return "GRE";
    case 50:
      return "ESP";
    case 58:
      return "ICMP6";
    case 132:
      return "SCTP";
    default:
      return std::to_string(p);
  }
}

}  // namespace

void printFlows(std::ostream& out, const std::vector<FlowRecord>& flows, Format format) {
  if (format == Format::kJson) {
    for (const auto& f : flows) {
      out << toJson(f).dump() << '\n';
    }
    return;
  }
  if (format == Format::kCsv) {
    bool first = true;
    for (const auto& def : fields()) {
      out << (first ? "" : ",") << def.name;
      first = false;
    }
    out << '\n';
    for (const auto& f : flows) {
      first = true;
      for (const auto& def : fields()) {
        out << (first ? "" : ",") << def.toText(f);
        first = false;
      }
      out << '\n';
    }
    return;
  }
  std::vector<std::vector<std::string>> rows;
  rows.reserve(flows.size());
  for (const auto& f : flows) {
    double dur = f.last_ns > f.first_ns ? static_cast<double>(f.last_ns - f.first_ns) / 1e9 : 0;
    rows.push_back({formatTime(f.first_ns), fmt::format("{:.3f}", dur), protoName(f.proto),
                    endpoint(f.src_addr, f.src_port, f.proto),
                    endpoint(f.dst_addr, f.dst_port, f.proto),
                    units::formatCount(static_cast<double>(f.scaledPackets())),
                    units::formatBytes(f.scaledBytes()), std::to_string(f.sampling_rate),
                    f.exporter.toString()});
  }
  printTable(
      out, {"first", "duration", "proto", "src", "dst", "packets", "bytes", "sampling", "exporter"},
      rows, {false, true, false, false, false, true, true, true, false});
}

}  // namespace nc::cli
