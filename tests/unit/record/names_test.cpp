// NameTable: interned names behind the name columns (in_ifname, out_ifname, bridge, in_vm, out_vm).
#include "collector/record/names.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collector/record/fields.hpp"

namespace nc {
namespace {

TEST(Names, InternFindGet) {
  NameTable t;
  EXPECT_EQ(t.intern(""), 0u);
  const uint32_t a = t.intern("h1-ovs");
  const uint32_t b = t.intern("br0");
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(t.intern("h1-ovs"), a);
  EXPECT_EQ(t.find("br0"), b);
  EXPECT_EQ(t.find("nope"), 0u);
  EXPECT_EQ(t.get(a), "h1-ovs");
  EXPECT_EQ(t.get(0), "");
  EXPECT_EQ(t.get(12345), "");  // never given out
  EXPECT_EQ(t.size(), 3u);
}

TEST(Names, LongNamesAreCut) {
  NameTable t;
  std::string longer(400, 'x');
  const uint32_t id = t.intern(longer);
  EXPECT_EQ(t.get(id).size(), NameTable::kMaxNameLength);
  EXPECT_EQ(t.intern(longer.substr(0, NameTable::kMaxNameLength)), id);
}

// Readers on other threads see every id the writer handed out, with its text, while it goes on.
TEST(Names, ConcurrentInternAndGet) {
  NameTable t;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint32_t>> ids(4);
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int i = 0; i < 5000; ++i) {
        const std::string name = "port-" + std::to_string(i % 2500);
        const uint32_t id = t.intern(name);
        ids[static_cast<size_t>(k)].push_back(id);
        ASSERT_EQ(t.get(id), name);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  std::set<uint32_t> distinct;
  for (const auto& v : ids) {
    distinct.insert(v.begin(), v.end());
  }
  EXPECT_EQ(distinct.size(), 2500u);  // the same name got the same id on every thread
  EXPECT_EQ(t.size(), 2501u);
}

TEST(Names, Glob) {
  EXPECT_TRUE(globMatch("h1-ovs", "h1-ovs"));
  EXPECT_FALSE(globMatch("h1-ovs", "h1-ovs2"));
  EXPECT_TRUE(globMatch("h*", "h1-ovs"));
  EXPECT_TRUE(globMatch("tap[0-9]?", "tap42"));
  EXPECT_FALSE(globMatch("tap[!0-9]*", "tap42"));
  EXPECT_TRUE(globMatch("*", ""));
  EXPECT_TRUE(hasGlob("vm-*"));
  EXPECT_FALSE(hasGlob("vm-1"));
}

// The name fields print their text and read it back through the process table.
TEST(Names, FieldsRoundTripAsText) {
  FlowRecord r;
  r.in_ifname = internName("vnet3");
  r.bridge = internName("br-int");
  r.in_vm = internName("6f1c0d2e-vm");
  nlohmann::json j = toJson(r);
  EXPECT_EQ(j["in_ifname"], "vnet3");
  EXPECT_EQ(j["bridge"], "br-int");
  EXPECT_EQ(j["in_vm"], "6f1c0d2e-vm");
  EXPECT_FALSE(j.contains("out_ifname"));  // unknown: left out
  FlowRecord back;
  std::string why;
  ASSERT_TRUE(fromJson(j, back, &why)) << why;
  EXPECT_EQ(back.in_ifname, r.in_ifname);
  EXPECT_EQ(back.bridge, r.bridge);
  EXPECT_EQ(back.in_vm, r.in_vm);
  EXPECT_EQ(back.out_vm, 0u);
}

}  // namespace
}  // namespace nc
