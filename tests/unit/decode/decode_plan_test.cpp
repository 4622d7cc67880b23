// The two replays of a fixed-length template agree: the split plan (plain moves grouped by width,
// then the other fields) that runs when 7 bytes follow a record, and the field-by-field replay in
// template order that runs for the last record of a set. Random templates over every IE the
// decoder knows (reduced and odd lengths, duplicates, icmp type/code next to icmpTypeCode,
// unknown IEs as gaps) and random values; each record is decoded once in the middle of a set and
// once alone in its message.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "collector/record/fields.hpp"
#include "tests/unit/decode/capture_util.hpp"
#include "tests/unit/decode/ipfix_builder.hpp"

namespace nc::test {
namespace {

struct Ie {
  uint16_t id;
  std::vector<uint16_t> lengths;
};

// Every IANA element with an op (templates.cpp opForElement), at its own and at other lengths.
const std::vector<Ie>& knownElements() {
  static const std::vector<Ie> ies = {
      {1, {8, 4, 2, 3}}, {2, {8, 4, 1}}, {4, {1, 2}},   {5, {1}},
      {6, {1, 2}},       {7, {2, 1}},    {8, {4, 3}},   {9, {1}},
      {10, {4, 2}},      {11, {2}},      {12, {4, 5}},  {13, {1}},
      {14, {4, 2}},      {15, {4}},      {16, {4, 2}},  {17, {4}},
      {18, {4}},         {21, {4}},      {22, {4}},     {27, {16}},
      {28, {16, 4}},     {29, {1}},      {30, {1}},     {32, {2}},
      {34, {4, 8}},      {38, {1}},      {39, {1}},     {48, {1, 2}},
      {50, {4}},         {56, {6, 4}},   {57, {6}},     {58, {2}},
      {60, {1}},         {61, {1}},      {62, {16}},    {63, {16}},
      {80, {6}},         {81, {6}},      {85, {8, 4}},  {86, {8}},
      {136, {1}},        {139, {2}},     {150, {4}},    {151, {4}},
      {152, {8}},        {153, {8}},     {154, {8}},    {155, {8}},
      {156, {8}},        {157, {8}},     {158, {4}},    {159, {4}},
      {160, {8}},        {176, {1}},     {177, {1}},    {178, {1}},
      {179, {1}},        {243, {2}},     {302, {4, 2}}, {305, {4}},
      {306, {4}},        {309, {4}},     {310, {4}},    {99, {3, 1, 9}},
      {10, {12}},  // longer than 8: its last 8 bytes
  };
  return ies;
}

bool sameRecord(const FlowRecord& a, const FlowRecord& b, std::string& why) {
  nlohmann::json ja = toJson(a);
  nlohmann::json jb = toJson(b);
  if (ja != jb) {
    why = ja.dump() + "\n  vs " + jb.dump();
    return false;
  }
  if (a.first_ns != b.first_ns || a.last_ns != b.last_ns || a.flags != b.flags ||
      a.ip_version != b.ip_version || a.direction != b.direction) {
    why = "time, flags, ip version or direction differ";
    return false;
  }
  return true;
}

TEST(DecodePlan, SplitPlanAndFieldByFieldReplayAgree) {
  std::mt19937 rng(20261127);
  const auto& ies = knownElements();
  size_t compared = 0;
  size_t split_templates = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<IpfixBuilder::Field> fields;
    size_t nfields = 1 + rng() % 24;
    for (size_t i = 0; i < nfields; ++i) {
      const Ie& ie = ies[rng() % ies.size()];
      fields.push_back({ie.id, ie.lengths[rng() % ie.lengths.size()], 0});
    }
    size_t record_len = 0;
    for (const auto& f : fields) {
      record_len += f.length;
    }
    if (record_len >= 7) {
      ++split_templates;
    }
    const int records = 6;
    std::vector<std::vector<uint8_t>> values(records);
    for (auto& v : values) {
      v.resize(record_len);
      for (auto& byte : v) {
        // Mostly small values and zeros, so that zero checks and precedence rules matter.
        uint32_t pick = rng() % 4;
        byte = pick == 0   ? 0
               : pick == 1 ? static_cast<uint8_t>(rng() % 3)
                           : static_cast<uint8_t>(rng());
      }
    }
    auto message = [&](int from, int to) {
      IpfixBuilder b(1'700'000'000, 0, 7);
      b.beginSet(2);
      b.templateRecord(300, fields);
      b.endSet();
      b.beginSet(300);
      for (int i = from; i < to; ++i) {
        for (uint8_t byte : values[static_cast<size_t>(i)]) {
          b.u8(byte);
        }
      }
      b.endSet();
      return b.finish();
    };
    decode::DatagramMeta meta;
    IpAddr::parse("192.0.2.9", meta.exporter);
    meta.port = 4739;
    meta.received_ns = 1'700'000'000'000'000'000;

    decode::Decoder together;
    CollectingSink all;
    together.decode(message(0, records), meta, all);
    ASSERT_EQ(all.records.size(), size_t{records}) << "round " << round;
    for (int i = 0; i < records; ++i) {
      decode::Decoder alone;
      CollectingSink one;
      alone.decode(message(i, i + 1), meta, one);
      ASSERT_EQ(one.records.size(), 1u);
      std::string why;
      EXPECT_TRUE(sameRecord(all.records[static_cast<size_t>(i)], one.records[0], why))
          << "round " << round << " record " << i << ": " << why;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 300u * 6);
  EXPECT_GT(split_templates, 250u);
}

}  // namespace
}  // namespace nc::test
