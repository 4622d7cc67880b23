// Filter primitives and aggregation keys over the name columns: in/out ifname, ifname, bridge,
// in/out vm, vm (globs allowed), each compared with a plain scan of the same rows.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "collector/query/aggregate.hpp"
#include "collector/query/filter.hpp"
#include "collector/query/query.hpp"
#include "collector/record/names.hpp"

namespace nc::query {
namespace {

FlowColumns rows(size_t n) {
  std::mt19937 rng(5);
  const char* ports[] = {"h1-ovs", "h2-ovs", "tap17", "vnet0", ""};
  const char* vms[] = {"6f1c-vm-a", "iface-b", ""};
  FlowColumns c;
  for (size_t i = 0; i < n; ++i) {
    FlowRecord r;
    r.first_ns = r.last_ns = 1'800'000'000'000'000'000ull + i;
    r.bytes = 100 + rng() % 1000;
    r.packets = 1 + rng() % 5;
    r.proto = 6;
    r.in_ifname = internName(ports[rng() % 5]);
    r.out_ifname = internName(ports[rng() % 5]);
    r.bridge = internName(rng() % 3 ? "br0" : "br-int");
    r.in_vm = internName(vms[rng() % 3]);
    r.out_vm = internName(vms[rng() % 3]);
    c.append(r);
  }
  return c;
}

struct Case {
  const char* filter;
  std::function<bool(const FlowRecord&)> want;
};

std::string n(uint32_t id) {
  return std::string(nameOf(id));
}

TEST(NameFilters, MatchAPlainScan) {
  const FlowColumns c = rows(5000);
  const std::vector<Case> cases = {
      {"in ifname h1-ovs", [](const FlowRecord& r) { return n(r.in_ifname) == "h1-ovs"; }},
      {"out ifname 'h*'", [](const FlowRecord& r) { return n(r.out_ifname).starts_with("h"); }},
      {"ifname tap17",
       [](const FlowRecord& r) { return n(r.in_ifname) == "tap17" || n(r.out_ifname) == "tap17"; }},
      {"bridge br-int", [](const FlowRecord& r) { return n(r.bridge) == "br-int"; }},
      {"bridge br*", [](const FlowRecord& r) { return !n(r.bridge).empty(); }},
      {"in vm 6f1c*", [](const FlowRecord& r) { return n(r.in_vm).starts_with("6f1c"); }},
      {"out vm iface-b", [](const FlowRecord& r) { return n(r.out_vm) == "iface-b"; }},
      {"vm iface-b",
       [](const FlowRecord& r) { return n(r.in_vm) == "iface-b" || n(r.out_vm) == "iface-b"; }},
      {"in_ifname = vnet0", [](const FlowRecord& r) { return n(r.in_ifname) == "vnet0"; }},
      {"not ifname '*'", [](const FlowRecord& r) { return r.in_ifname == 0 && r.out_ifname == 0; }},
      {"in ifname h1-ovs and out ifname h2-ovs",
       [](const FlowRecord& r) {
         return n(r.in_ifname) == "h1-ovs" && n(r.out_ifname) == "h2-ovs";
       }},
      {"in ifname nosuchport", [](const FlowRecord&) { return false; }},
  };
  for (const auto& k : cases) {
    FilterError err;
    auto f = Filter::compile(k.filter, &err);
    ASSERT_TRUE(f) << k.filter << ": " << err.message;
    std::vector<uint32_t> sel;
    f->select(c, 0, c.size(), sel);
    std::vector<uint32_t> want;
    for (size_t i = 0; i < c.size(); ++i) {
      if (k.want(c.row(i))) {
        want.push_back(static_cast<uint32_t>(i));
      }
    }
    EXPECT_EQ(sel, want) << k.filter;
    EXPECT_FALSE(want.empty() && std::string(k.filter) != "in ifname nosuchport") << k.filter;
    // Name leaves never prune blocks: ids in a footer mean nothing to another process.
    BlockSummary s;
    s.compute(c);
    EXPECT_TRUE(f->mayMatch(s)) << k.filter;
  }
}

TEST(NameFilters, Errors) {
  FilterError err;
  EXPECT_FALSE(Filter::compile("in ifname", &err));
  EXPECT_FALSE(Filter::compile("bridge > br0", &err));
  EXPECT_NE(err.message.find("'='"), std::string::npos) << err.message;
}

TEST(NameAggregation, KeysAreTheNames) {
  const FlowColumns c = rows(3000);
  MemorySource src(c);
  QueryOptions q;
  std::string why;
  for (const char* spec : {"in_ifname", "bridge,in_vm", "ifname", "vm"}) {
    auto keys = parseKeys(spec, 0, &why);
    ASSERT_TRUE(keys) << spec << ": " << why;
    std::unique_ptr<Aggregator> agg;
    aggregateFlows(src, q, *keys, agg);
    ASSERT_TRUE(agg);
    // Plain count by text.
    std::map<std::string, uint64_t> want;
    for (size_t i = 0; i < c.size(); ++i) {
      const FlowRecord r = c.row(i);
      const std::string s(spec);
      if (s == "in_ifname") {
        want[n(r.in_ifname)] += r.bytes;
      } else if (s == "bridge,in_vm") {
        want[n(r.bridge) + "|" + n(r.in_vm)] += r.bytes;
      } else if (s == "ifname") {
        want[n(r.in_ifname)] += r.bytes;
        want[n(r.out_ifname)] += r.bytes;
      } else {
        want[n(r.in_vm)] += r.bytes;
        want[n(r.out_vm)] += r.bytes;
      }
    }
    std::map<std::string, uint64_t> got;
    for (size_t g = 0; g < agg->size(); ++g) {
      auto text = agg->keyText(agg->key(g));
      std::string k = text[0];
      for (size_t i = 1; i < text.size(); ++i) {
        k += "|" + text[i];
      }
      got[k] += agg->counters(g).bytes;
    }
    EXPECT_EQ(got, want) << spec;
    nlohmann::json j;
    agg->keyJson(agg->key(0), j);
    EXPECT_TRUE(j.begin()->is_string()) << spec << ": " << j.dump();
  }
}

}  // namespace
}  // namespace nc::query
