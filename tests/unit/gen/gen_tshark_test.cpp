// Integration: what `gen` writes is read by tshark (an independent, widely used dissector) without
// malformed packets or expert warnings/errors, and tshark's record counts and sums of packets /
// octets (sFlow: samples and frame lengths) equal the totals gen reports.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "collector/gen/gen.hpp"
#include "tests/support/support.hpp"

namespace nc::gen {
namespace {

// Runs a shell command and returns its stdout (stderr dropped: tshark warns about running as root).
std::string run(const std::string& cmd, int* status) {
  std::string out;
  std::FILE* p = ::popen((cmd + " 2>/dev/null").c_str(), "r");
  if (p == nullptr) {
    *status = -1;
    return out;
  }
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
    out.append(buf, n);
  }
  *status = ::pclose(p);
  return out;
}

// tshark -T fields output: one line per frame, fields tab-separated, occurrences comma-separated.
using Rows = std::vector<std::vector<std::vector<std::string>>>;

Rows fields(const std::string& pcap, const std::string& decode_as,
            const std::vector<std::string>& names, const std::string& extra = "") {
  std::string cmd = "tshark -n -r '" + pcap + "' -d " + decode_as + " " + extra +
                    " -T fields -E aggregator=, -E separator=/t";
  for (const std::string& n : names) {
    cmd += " -e " + n;
  }
  int status = 0;
  std::string out = run(cmd, &status);
  EXPECT_EQ(status, 0) << cmd;
  Rows rows;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::vector<std::string>> row;
    std::istringstream cols(line);
    std::string col;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!std::getline(cols, col, '\t')) {
        col.clear();
      }
      std::vector<std::string> values;
      std::istringstream vs(col);
      std::string v;
      while (std::getline(vs, v, ',')) {
        if (!v.empty()) {
          values.push_back(v);
        }
      }
      row.push_back(values);
    }
    rows.push_back(row);
  }
  return rows;
}

uint64_t num(const std::string& s) {
  return std::stoull(s, nullptr, 0);
}

struct Case {
  const char* name;
  Format format;
  bool ipv6_flows;
  bool ipv6_transport;
  uint32_t sampling;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class GenTshark : public ::testing::TestWithParam<Case> {};

TEST_P(GenTshark, DissectsCleanlyAndTotalsMatch) {
  NC_REQUIRE_TOOL("tshark");
  const Case& c = GetParam();
  ::nc::test::TempDir dir("gen-tshark");
  GenOptions o;
  o.format = c.format;
  o.fixed_time = true;
  o.quiet = true;
  o.count = 60;  // v9/IPFIX templates go out in datagrams 0, 20 and 40
  o.sampling = c.sampling;
  o.flows = 300;
  if (c.ipv6_transport) {
    o.target_host = "::1";
    o.source = "::1";
  }
  Cidr net;
  ASSERT_TRUE(parseCidr("10.0.0.0/8", net));
  o.src_nets = {net};
  ASSERT_TRUE(parseCidr("192.168.0.0/16", net));
  o.dst_nets = {net};
  if (c.ipv6_flows) {
    ASSERT_TRUE(parseCidr("2001:db8:a::/48", net));
    o.src_nets.push_back(net);
    ASSERT_TRUE(parseCidr("2001:db8:b::/48", net));
    o.dst_nets.push_back(net);
  }
  o.pcap = (dir.path() / (std::string(c.name) + ".pcap")).string();
  GenStats stats;
  ASSERT_EQ(runGen(o, &stats), 0);
  ASSERT_EQ(stats.datagrams, 60u);

  bool sflow = c.format == Format::kSflow;
  uint16_t port = defaultPort(c.format);
  std::string decode_as = "udp.port==" + std::to_string(port) + (sflow ? ",sflow" : ",cflow");

  // 1. No malformed packets, no expert info at warning level or above, and the outer IP/UDP
  //    checksums verify.
  Rows expert = fields(o.pcap, decode_as, {"frame.number", "_ws.expert.severity", "_ws.malformed"},
                       "-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE");
  ASSERT_EQ(expert.size(), 60u);
  for (const auto& row : expert) {
    std::string frame = row[0].empty() ? "?" : row[0][0];
    EXPECT_TRUE(row[2].empty()) << "malformed packet in frame " << frame;
    for (const std::string& sev : row[1]) {
      EXPECT_LT(num(sev), 0x600000u)
          << "expert warning/error (severity " << sev << ") in frame " << frame;
    }
  }

  if (sflow) {
    // 2. sFlow: samples, sequence numbers, sampling rate and frame lengths.
    Rows rows = fields(
        o.pcap, decode_as,
        {"sflow_245.sequence_number", "sflow_245.numsamples", "sflow.flow_sample.sequence_number",
         "sflow.flow_sample.sampling_rate", "sflow_245.header.frame_length",
         "sflow.flow_sample.sample_pool", "sflow.counters_sample.sequence_number",
         "sflow_245.ifindex", "sflow_245.ifspeed", "sflow_245.ifinoct"});
    ASSERT_EQ(rows.size(), 60u);
    uint64_t samples = 0;
    uint64_t frame_bytes = 0;
    uint64_t expected_sample_seq = 1;
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      ASSERT_EQ(r[0].size(), 1u);
      EXPECT_EQ(num(r[0][0]), i + 1) << "datagram sequence";
      // A counters sample (generic interface counters) in datagrams 0, 10, 20, ... (gen's
      // default --counters-interval); the rest are flow samples.
      const size_t counters = i % 10 == 0 ? 1 : 0;
      ASSERT_EQ(r[6].size(), counters) << "datagram " << i;
      if (counters == 1) {
        EXPECT_EQ(num(r[6][0]), i / 10 + 1) << "counters sample sequence";
        ASSERT_EQ(r[7].size(), 1u);
        EXPECT_EQ(num(r[7][0]), 1u);
        EXPECT_EQ(num(r[8][0]), 10'000'000'000ULL);
        EXPECT_GT(num(r[9][0]), 0u);
      }
      uint64_t n = num(r[1][0]) - counters;
      EXPECT_EQ(r[2].size(), n);
      EXPECT_EQ(r[4].size(), n);
      samples += n;
      for (const std::string& s : r[2]) {
        EXPECT_EQ(num(s), expected_sample_seq++);
      }
      for (const std::string& s : r[3]) {
        EXPECT_EQ(num(s), c.sampling);
      }
      for (size_t k = 0; k < r[5].size(); ++k) {
        EXPECT_EQ(num(r[5][k]), num(r[2][k]) * c.sampling);
      }
      for (const std::string& s : r[4]) {
        frame_bytes += num(s);
      }
    }
    EXPECT_EQ(samples, stats.records);
    EXPECT_EQ(samples, stats.flow_packets);
    EXPECT_EQ(frame_bytes, stats.flow_bytes);
    return;
  }

  // 2. NetFlow / IPFIX: one cflow.packets and cflow.octets per flow record.
  Rows rows =
      fields(o.pcap, decode_as,
             {"cflow.packets", "cflow.octets", "cflow.sequence", "cflow.count", "cflow.template_id",
              "cflow.sampling_interval", "cflow.samplerate", "cflow.sampling_packet_space"});
  ASSERT_EQ(rows.size(), 60u);
  uint64_t records = 0;
  uint64_t packets = 0;
  uint64_t octets = 0;
  uint64_t ipfix_seq = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    ASSERT_EQ(r[0].size(), r[1].size()) << "frame " << i + 1;
    ASSERT_FALSE(r[0].empty()) << "no flow records decoded in frame " << i + 1;
    for (size_t k = 0; k < r[0].size(); ++k) {
      packets += num(r[0][k]);
      octets += num(r[1][k]);
    }
    ASSERT_EQ(r[2].size(), 1u);
    uint64_t seq = num(r[2][0]);
    bool templates_due = i % 20 == 0;
    bool options = templates_due && c.sampling > 1;
    switch (c.format) {
      case Format::kNetflowV5:
        EXPECT_EQ(seq, records) << "v5 flow_sequence counts flows";
        EXPECT_EQ(num(r[3][0]), r[0].size());
        if (c.sampling > 1) {
          ASSERT_EQ(r[6].size(), 1u);
          EXPECT_EQ(num(r[6][0]), c.sampling);
        }
        break;
      case Format::kNetflowV9:
        EXPECT_EQ(seq, i) << "v9 sequence counts export packets";
        EXPECT_EQ(num(r[3][0]), r[0].size() + (templates_due ? 2 : 0) + (options ? 2 : 0));
        break;
      case Format::kIpfix:
        EXPECT_EQ(seq, ipfix_seq) << "IPFIX sequence counts data records";
        ipfix_seq += r[0].size() + (options ? 1 : 0);
        break;
      default:
        break;
    }
    if (c.format != Format::kNetflowV5) {
      // Templates 256 + 257 (+ options template 258) exactly when due.
      EXPECT_EQ(r[4].size(), templates_due ? (options ? 3u : 2u) : 0u) << "frame " << i + 1;
      if (options) {
        ASSERT_EQ(r[5].size(), 1u);
        EXPECT_EQ(num(r[5][0]), c.sampling);
      }
      if (options && c.format == Format::kIpfix) {
        ASSERT_EQ(r[7].size(), 1u);
        EXPECT_EQ(num(r[7][0]), c.sampling - 1);
      }
    }
    records += r[0].size();
  }
  EXPECT_EQ(records, stats.records);
  EXPECT_EQ(packets, stats.flow_packets);
  EXPECT_EQ(octets, stats.flow_bytes);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, GenTshark,
    ::testing::Values(Case{"v5", Format::kNetflowV5, false, false, 1},
                      Case{"v5_sampled", Format::kNetflowV5, false, false, 100},
                      Case{"v9_v4v6", Format::kNetflowV9, true, false, 1},
                      Case{"v9_v4v6_sampled_over_ipv6", Format::kNetflowV9, true, true, 64},
                      Case{"ipfix_v4v6", Format::kIpfix, true, false, 1},
                      Case{"ipfix_v4v6_sampled", Format::kIpfix, true, false, 1000},
                      Case{"ipfix_sampled_over_ipv6", Format::kIpfix, true, true, 10},
                      Case{"sflow_v4v6_sampled", Format::kSflow, true, false, 512},
                      Case{"sflow_v4v6_over_ipv6", Format::kSflow, true, true, 2}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace nc::gen
