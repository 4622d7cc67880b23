#include "collector/cli/output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
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

namespace nc::cli {
namespace {

void printCsvRow(std::ostream& out, const std::vector<std::string>& cells) {
  for (size_t i = 0; i < cells.size(); ++i) {
    const std::string& c = cells[i];
    out << (i ? "," : "");
    if (c.find_first_of(",\"\n") != std::string::npos) {
      std::string q = "\"";
      for (char ch : c) {
        q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      }
      out << q << '"';
    } else {
      out << c;
    }
  }
  out << '\n';
}

std::string share(uint64_t part, uint64_t total) {
  return total == 0 ? "" : fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / total);
}

std::string bits(uint64_t bps) {
  return units::formatCount(static_cast<double>(bps)) + "bit/s";
}

}  // namespace

void printGroups(std::ostream& out, const query::Aggregator& agg, const std::vector<size_t>& idx,
                 Format format, const query::ScanTotals& t, bool times) {
  std::vector<std::string> keys = agg.keyNames();
  if (format == Format::kJson) {
    for (size_t g : idx) {
      nlohmann::json o = nlohmann::json::object();
      agg.keyJson(agg.key(g), o);
      const auto c = agg.counters(g);
      o["flows"] = c.flows;
      o["packets"] = c.packets;
      o["bytes"] = c.bytes;
      o["pps"] = c.pps();
      o["bps"] = c.bps();
      o["bpp"] = c.bpp();
      o["first"] = formatTime(c.first_ns);
      o["last"] = formatTime(c.last_ns);
      out << o.dump() << '\n';
    }
    return;
  }
  if (format == Format::kCsv) {
    std::vector<std::string> header = keys;
    for (const char* m : {"flows", "packets", "bytes", "pps", "bps", "bpp", "first", "last"}) {
      header.emplace_back(m);
    }
    printCsvRow(out, header);
    for (size_t g : idx) {
      std::vector<std::string> row = agg.keyText(agg.key(g));
      const auto c = agg.counters(g);
      for (uint64_t v : {c.flows, c.packets, c.bytes, c.pps(), c.bps(), c.bpp()}) {
        row.push_back(std::to_string(v));
      }
      row.push_back(formatTime(c.first_ns));
      row.push_back(formatTime(c.last_ns));
      printCsvRow(out, row);
    }
    return;
  }
  std::vector<std::string> header;
  std::vector<bool> numeric;
  if (times) {
    header = {"first", "duration"};
    numeric = {false, true};
  }
  for (const auto& k : keys) {
    header.push_back(k);
    numeric.push_back(false);
  }
  for (const char* m : {"flows", "%", "packets", "%", "bytes", "%", "pps", "bps", "bpp"}) {
    header.emplace_back(m);
    numeric.push_back(true);
  }
  std::vector<std::vector<std::string>> rows;
  for (size_t g : idx) {
    const auto c = agg.counters(g);
    std::vector<std::string> row;
    if (times) {
      row.push_back(formatTime(c.first_ns));
      row.push_back(fmt::format("{:.3f}", static_cast<double>(c.durationMs()) / 1000));
    }
    for (auto& k : agg.keyText(agg.key(g))) {
      row.push_back(std::move(k));
    }
    row.push_back(units::formatCount(static_cast<double>(c.flows)));
    row.push_back(share(c.flows, t.flows));
    row.push_back(units::formatCount(static_cast<double>(c.packets)));
    row.push_back(share(c.packets, t.packets));
    row.push_back(units::formatBytes(c.bytes));
    row.push_back(share(c.bytes, t.bytes));
    row.push_back(units::formatCount(static_cast<double>(c.pps())));
    row.push_back(bits(c.bps()));
    row.push_back(std::to_string(c.bpp()));
    rows.push_back(std::move(row));
  }
  printTable(out, header, rows, numeric);
}

void printSeries(std::ostream& out, const query::Aggregator& agg, uint64_t bucket_ns,
                 Format format) {
  std::vector<size_t> idx = agg.byKey();
  struct Row {
    uint64_t t;
    query::Counters c;
  };
  std::vector<Row> rows;
  for (size_t g : idx) {
    uint64_t t;
    std::memcpy(&t, agg.key(g), 8);
    while (!rows.empty() && rows.back().t + bucket_ns < t && rows.size() < 10'000'000) {
      rows.push_back({rows.back().t + bucket_ns, {}});
    }
    rows.push_back({t, agg.counters(g)});
  }
  const double secs = static_cast<double>(bucket_ns) / 1e9;
  auto rate = [&](uint64_t v, double mul) {
    return static_cast<uint64_t>(static_cast<double>(v) * mul / secs);
  };
  if (format == Format::kJson) {
    for (const auto& r : rows) {
      nlohmann::json o = {{"time", formatTime(r.t)},     {"flows", r.c.flows},
                          {"packets", r.c.packets},      {"bytes", r.c.bytes},
                          {"pps", rate(r.c.packets, 1)}, {"bps", rate(r.c.bytes, 8)}};
      out << o.dump() << '\n';
    }
    return;
  }
  if (format == Format::kCsv) {
    out << "time,flows,packets,bytes,pps,bps\n";
    for (const auto& r : rows) {
      out << fmt::format("{},{},{},{},{},{}\n", formatTime(r.t), r.c.flows, r.c.packets, r.c.bytes,
                         rate(r.c.packets, 1), rate(r.c.bytes, 8));
    }
    return;
  }
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : rows) {
    cells.push_back(
        {formatTime(r.t), units::formatCount(static_cast<double>(r.c.flows)),
         units::formatCount(static_cast<double>(r.c.packets)), units::formatBytes(r.c.bytes),
         units::formatCount(static_cast<double>(rate(r.c.packets, 1))), bits(rate(r.c.bytes, 8))});
  }
  printTable(out, {"time", "flows", "packets", "bytes", "pps", "bps"}, cells,
             {false, true, true, true, true, true});
}

void printSummary(std::ostream& out, const query::ScanTotals& t, bool scaled, Format format) {
  std::string first = t.flows == 0 ? "" : formatTime(t.first_ns);
  std::string last = t.flows == 0 ? "" : formatTime(t.last_ns);
  if (format == Format::kJson) {
    nlohmann::json o = {{"flows", t.flows},
                        {"packets", t.packets},
                        {"bytes", t.bytes},
                        {"scaled", scaled},
                        {"first", first},
                        {"last", last},
                        {"rows_scanned", t.rows_scanned},
                        {"blocks", t.blocks},
                        {"blocks_skipped", t.blocks_skipped},
                        {"segments", t.segments},
                        {"bytes_read", t.bytes_read},
                        {"corrupt_blocks", t.corrupt_blocks},
                        {"seconds", t.seconds}};
    out << o.dump() << '\n';
    return;
  }
  if (format == Format::kCsv) {
    out << "flows,packets,bytes,scaled,first,last,rows_scanned,blocks,blocks_skipped\n";
    out << fmt::format("{},{},{},{},{},{},{},{},{}\n", t.flows, t.packets, t.bytes, scaled, first,
                       last, t.rows_scanned, t.blocks, t.blocks_skipped);
    return;
  }
  out << fmt::format(
      "Summary: {} flows, {} packets, {} ({}); window {} - {}; {} rows scanned, {} of {} blocks "
      "skipped, {:.2f} s\n",
      t.flows, t.packets, units::formatBytes(t.bytes),
      scaled ? "scaled by sampling rate" : "raw counters", first.empty() ? "-" : first,
      last.empty() ? "-" : last, t.rows_scanned, t.blocks_skipped, t.blocks + t.blocks_skipped,
      t.seconds);
}

}  // namespace nc::cli
