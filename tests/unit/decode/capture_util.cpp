#include "tests/unit/decode/capture_util.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "collector/record/fields.hpp"

#include "tests/support/support.hpp"

namespace nc::test {

std::filesystem::path captureDir() {
  return sourceDir() / "tests" / "data" / "captures";
}

decode::ExporterStats sumStats(const decode::Decoder& decoder) {
  decode::ExporterStats t;
  for (const decode::ExporterStats& s : decoder.stats()) {
    t.add(s);
  }
  return t;
}

CaptureRun runCapture(const std::string& name, decode::Decoder& decoder) {
  CaptureRun run;
  run.read_ok = readUdpCapture((captureDir() / name).string(), run.datagrams, &run.why);
  for (const UdpDatagram& d : run.datagrams) {
    decode::DatagramMeta meta;
    meta.exporter = d.src;
    meta.port = d.src_port;
    meta.received_ns = d.ts_ns;
    run.statuses.push_back(decoder.decode(d.payload, meta, run.sink));
  }
  run.total = sumStats(decoder);
  return run;
}

std::vector<std::map<std::string, std::string>> readTelegraf(const std::string& name) {
  std::vector<std::map<std::string, std::string>> out;
  std::ifstream in(captureDir() / name);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    // measurement,tag=v,... field=v,... timestamp ; split on unquoted ',' and ' '.
    std::map<std::string, std::string> kv;
    std::string token;
    bool quoted = false;
    std::vector<std::string> tokens;
    for (char c : line) {
      if (c == '"') {
        quoted = !quoted;
        continue;
      }
      if (!quoted && (c == ',' || c == ' ')) {
        tokens.push_back(token);
        token.clear();
        continue;
      }
      token.push_back(c);
    }
    tokens.push_back(token);
    for (const std::string& t : tokens) {
      size_t eq = t.find('=');
      if (eq == std::string::npos) {
        continue;
      }
      std::string v = t.substr(eq + 1);
      if (!v.empty() && v.back() == 'u' &&
          v.find_first_not_of("0123456789u") == std::string::npos) {
        v.pop_back();
      }
      kv[t.substr(0, eq)] = v;
    }
    out.push_back(std::move(kv));
  }
  return out;
}

size_t expectMatchesNetgauze(const std::string& name, const std::vector<FlowRecord>& records) {
  std::ifstream in(captureDir() / name);
  std::string line;
  std::set<std::pair<uint32_t, int>> options_ids;  // (domain, template id)
  size_t k = 0;
  while (std::getline(in, line)) {
    nlohmann::json msg = nlohmann::json::parse(line, nullptr, false);
    if (msg.is_discarded()) {
      ADD_FAILURE() << "bad json line in " << name;
      return k;
    }
    const nlohmann::json& m = msg.contains("IPFIX") ? msg["IPFIX"] : msg["NetFlowV9"];
    uint32_t domain = m.contains("observation_domain_id")
                          ? m["observation_domain_id"].get<uint32_t>()
                          : m["source_id"].get<uint32_t>();
    for (const nlohmann::json& set : m["sets"]) {
      if (set.contains("OptionsTemplate")) {
        for (const nlohmann::json& t : set["OptionsTemplate"]) {
          options_ids.insert({domain, t["id"].get<int>()});
        }
      }
      if (!set.contains("Data")) {
        continue;
      }
      const nlohmann::json& data = set["Data"];
      if (options_ids.count({domain, data["id"].get<int>()})) {
        continue;
      }
      for (const nlohmann::json& rec : data["records"]) {
        if (k >= records.size()) {
          ADD_FAILURE() << name << ": golden has more records than decoded (" << records.size()
                        << ")";
          return k;
        }
        const FlowRecord& r = records[k];
        SCOPED_TRACE(name + " record " + std::to_string(k));
        EXPECT_EQ(r.observation_domain, domain);
        for (const nlohmann::json& field : rec["fields"]) {
          for (const auto& [key, v] : field.items()) {
            if (key == "sourceIPv4Address" && r.ip_version == 4) {
              EXPECT_EQ(r.src_addr.toString(), v.get<std::string>());
            } else if (key == "destinationIPv4Address" && r.ip_version == 4) {
              EXPECT_EQ(r.dst_addr.toString(), v.get<std::string>());
            } else if (key == "sourceIPv6Address" && r.ip_version == 6) {
              EXPECT_EQ(r.src_addr.toString(), v.get<std::string>());
            } else if (key == "destinationIPv6Address" && r.ip_version == 6) {
              EXPECT_EQ(r.dst_addr.toString(), v.get<std::string>());
            } else if (key == "sourceTransportPort") {
              EXPECT_EQ(r.src_port, v.get<uint16_t>());
            } else if (key == "destinationTransportPort") {
              EXPECT_EQ(r.dst_port, v.get<uint16_t>());
            } else if (key == "octetDeltaCount") {
              EXPECT_EQ(r.bytes, v.get<uint64_t>());
            } else if (key == "packetDeltaCount") {
              EXPECT_EQ(r.packets, v.get<uint64_t>());
            } else if (key == "ingressInterface") {
              EXPECT_EQ(r.in_if, v.get<uint32_t>());
            } else if (key == "egressInterface") {
              EXPECT_EQ(r.out_if, v.get<uint32_t>());
            } else if (key == "protocolIdentifier") {
              static const std::map<std::string, int> kNames = {
                  {"TCP", 6}, {"UDP", 17}, {"ICMP", 1}, {"IPv6-ICMP", 58}, {"GRE", 47}};
              if (v.is_number()) {
                EXPECT_EQ(r.proto, v.get<int>());
              } else if (kNames.count(v.get<std::string>())) {
                EXPECT_EQ(r.proto, kNames.at(v.get<std::string>()));
              }
            } else if (key == "flowStartMilliseconds" || key == "flowEndMilliseconds") {
              uint64_t ns = 0;
              EXPECT_TRUE(parseTime(v.get<std::string>(), ns)) << v;
              EXPECT_EQ(key == "flowStartMilliseconds" ? r.first_ns : r.last_ns, ns) << key;
            } else if (key == "flowDirection" && v.is_string()) {
              EXPECT_EQ(r.direction, v.get<std::string>() == "ingress" ? 0 : 1);
            }
          }
        }
        ++k;
      }
    }
  }
  EXPECT_EQ(k, records.size()) << name;
  return k;
}

const nlohmann::json& manifest() {
  static const nlohmann::json m = [] {
    std::ifstream in(captureDir() / "manifest.json");
    return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  }();
  return m;
}

const nlohmann::json& manifestEntry(const std::string& file) {
  static const nlohmann::json null_json;
  for (const nlohmann::json& e : manifest()) {
    if (e.value("file", "") == file) {
      return e;
    }
  }
  return null_json;
}

}  // namespace nc::test
