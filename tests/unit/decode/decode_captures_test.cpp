// Every capture of tests/data/captures/manifest.json through one Decoder: no crash, no over-read
// (run this under ASan), and record counts equal to tshark 4.0.17's (sFlow: sample counts) unless
// the capture is malformed or listed in kExceptions with the reason.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/unit/decode/capture_util.hpp"

namespace nc::test {
namespace {

using decode::DecodeError;

struct Counts {
  int64_t flows = 0;            // v5 records + v9/IPFIX data records + sFlow flow samples
  int64_t options = 0;          // v9/IPFIX options data records
  int64_t counter_samples = 0;  // sFlow counter samples
  int64_t no_template = 0;      // data sets with no known template
};

Counts oracleCounts(const nlohmann::json& entry) {
  Counts c;
  const nlohmann::json& t = entry["tshark_4_0_17"];
  const nlohmann::json& counts = t["counts"];
  c.flows = counts.value("v5_records", 0) + counts.value("data_records", 0);
  c.options = counts.value("options_records", 0);
  c.no_template = counts.value("sets_without_template", 0);
  if (t.contains("sflow")) {
    for (const auto& [name, n] : t["sflow"]["sample_types"].items()) {
      if (name.rfind("1:", 0) == 0 || name.rfind("3:", 0) == 0) {
        c.flows += n.get<int64_t>();
      } else if (name.rfind("2:", 0) == 0 || name.rfind("4:", 0) == 0) {
        c.counter_samples += n.get<int64_t>();
      }
    }
  }
  return c;
}

// Captures where our counts differ from tshark's on purpose. Each entry gives the counts we expect
// and why tshark's are not the truth for this file.
struct Exception {
  Counts expect;
  const char* why;
};
const std::map<std::string, Exception>& exceptions() {
  static const std::map<std::string, Exception> m = {
      {"unknown-nfv5-bogus-count.pcap",
       {{30, 0, 0, 0},
        "header count says 55582; the datagram holds 30 records, which we decode (like tshark) "
        "and count one bad_length error"}},
      {"unknown-nfv9-invalid-flowsets.pcap",
       {{2, 1, 0, 0},
        "tshark stops after the v9 header's Count (2) records, so it shows only the two templates; "
        "the datagram also holds a valid options template (sampling 100), its options record and "
        "one IPv6 and one IPv4 data record, then 2 stray bytes that we ignore"}},
      {"cisco-ipfix-options-map-reassignment-pmacct112.pcap",
       {{9, 76, 0, 4},
        "template 347 arrives from UDP port 61853, its data from port 65156 of the same address: "
        "tshark keys templates by address+port and finds none (6 sets without template); we key "
        "by exporter address as DESIGN.md says and decode the 9 flows (pmacct's golden output "
        "also has 9); 4 sets (341, 313, 348, 342) really have no template in the capture"}},
      // Captures marked malformed (tshark malformed frames, or fuzzed): what we decode instead.
      {"h3c-netstream-nfv9-varstring.pcap",
       {{1, 0, 0, 0},
        "tshark flags IE 130 with length 2 as malformed; the field length 65535 is decoded as an "
        "IPFIX-style variable-length field (like logstash/beats) and the one record comes out"}},
      {"hp-sflow5-counters-30pdus-with-nfv5.pcap",
       {{7, 0, 144, 0},
        "tshark misparses unknown counter records (its blind spot); sflowtool's 144 counter "
        "samples are the oracle, plus the 7 records of the 5 stray NetFlow v5 datagrams"}},
      {"libnetflow9-nfv9-malformed-1.pcap",
       {{0, 0, 0, 3},
        "fuzzed: each template has field count 0 (rejected as bad_template, 3x), so its 3 data "
        "sets have no template"}},
      {"libnetflow9-nfv9-malformed-2.pcap",
       {{0, 12, 0, 0},
        "fuzzed: each datagram defines options template 4096 twice; the second copy has one "
        "zero-length scope field (0-byte records would loop) and is rejected as bad_template "
        "(16x); the 12 options records tshark shows decode against the first copies"}},
      {"libnetflow9-nfv9-malformed-options-template.pcap",
       {{0, 0, 0, 1},
        "fuzzed options template rejected as bad_template; its data set has no template"}},
      {"tcpdump-sflow5-malformed-segv.pcap",
       {{0, 0, 0, 0}, "fuzzed datagram that crashed tcpdump: counted as truncated, nothing out"}},
  };
  return m;
}

bool isMalformed(const nlohmann::json& entry) {
  std::string quirk = entry.value("quirk", "");
  return entry["tshark_4_0_17"].value("malformed_frames", 0) > 0 ||
         quirk.find("malformed") != std::string::npos ||
         entry.value("exporter", "").find("fuzzed") != std::string::npos;
}

class DecodeAllCaptures : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeAllCaptures, DecodesLikeTheOracle) {
  const std::string file = GetParam();
  const nlohmann::json& entry = manifestEntry(file);
  ASSERT_FALSE(entry.is_null());
  decode::Decoder decoder;
  CaptureRun run = runCapture(file, decoder);
  ASSERT_TRUE(run.read_ok) << run.why;
  ASSERT_FALSE(run.datagrams.empty());

  // Every record is sane whatever the input.
  for (const FlowRecord& r : run.sink.records) {
    EXPECT_GE(r.sampling_rate, 1u);
    EXPECT_NE(r.flow_proto, FlowProto::kUnknown);
  }
  EXPECT_EQ(run.total.flow_records, run.sink.records.size());
  EXPECT_EQ(run.total.datagrams, run.datagrams.size());

  Counts got;
  got.flows = static_cast<int64_t>(run.sink.records.size());
  got.options = static_cast<int64_t>(run.total.options_records);
  got.counter_samples = static_cast<int64_t>(run.total.counter_samples);
  got.no_template = static_cast<int64_t>(errorCount(run.total, DecodeError::kUnknownTemplate));

  Counts want = oracleCounts(entry);
  auto ex = exceptions().find(file);
  if (ex != exceptions().end()) {
    want = ex->second.expect;
    RecordProperty("exception", ex->second.why);
  } else {
    ASSERT_FALSE(isMalformed(entry)) << file << " is malformed: list it in exceptions() with why";
  }
  for (const FlowRecord& r : run.sink.records) {
    // The bogus-count file's records are junk after the header; their times are too.
    if (file != "unknown-nfv5-bogus-count.pcap") {
      EXPECT_LE(r.first_ns, r.last_ns) << file;
    }
  }
  EXPECT_EQ(got.flows, want.flows) << file;
  EXPECT_EQ(got.options, want.options) << file;
  EXPECT_EQ(got.counter_samples, want.counter_samples) << file;
  EXPECT_EQ(got.no_template, want.no_template) << file;
}

std::vector<std::string> allFiles() {
  std::vector<std::string> files;
  for (const nlohmann::json& e : manifest()) {
    files.push_back(e.value("file", ""));
  }
  return files;
}

std::string testName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n;
  for (char c : info.param.substr(0, info.param.size() - 5)) {
    n.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Manifest, DecodeAllCaptures, ::testing::ValuesIn(allFiles()), testName);

TEST(DecodeAllCapturesManifest, HasAll62) {
  EXPECT_EQ(allFiles().size(), 62u);
}

}  // namespace
}  // namespace nc::test
