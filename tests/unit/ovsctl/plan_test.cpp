// Plan computation from replica snapshots: create, update in place, foreign rows, takeover,
// removal of owned rows only, IPFIX template refresh, plan-time validation, and the shape of the
// guarded transaction.
#include <gtest/gtest.h>

#include "ovsctl/ovsctl.hpp"
#include "ovsctl/provision/plan.hpp"
#include "tests/unit/ovsctl/mini_schema.hpp"

namespace nc::ovsctl::provision {
namespace {

using ovsdb::Json;
Json J(const char* s) {
  return Json::parse(s);
}

constexpr const char* kMe = "test-owner";

class PlanTest : public ::testing::Test {
 protected:
  PlanTest() {
    replica.reset(ovsdb::Schema::parse(test::miniSchema()), monitorSpec());
    target = {"127.0.0.1:6343", "127.0.0.1:4739", "127.0.0.1:2055"};
  }
  void bridge(const std::string& uuid, const std::string& name, Json extra = Json::object()) {
    extra["name"] = name;
    replica.applyUpdate2(Json{{"Bridge", {{uuid, {{"insert", extra}}}}}});
  }
  void row(const std::string& table, const std::string& uuid, Json cols) {
    replica.applyUpdate2(Json{{table, {{uuid, {{"insert", cols}}}}}});
  }
  static Json owner(const std::string& who) {
    return Json::array({"map", Json::array({Json::array({kOwnerKey, who})})});
  }
  Plan compute() {
    PlanInput in;
    in.rules = &rules;
    in.target = target;
    in.owner_id = kMe;
    in.endpoint = "unix:/x";
    in.refresh_ipfix = refresh;
    return computePlan(replica, in);
  }
  static const ProtocolPlan* find(const Plan& p, const std::string& bridge, Protocol proto) {
    for (const auto& b : p.bridges) {
      if (b.name != bridge) {
        continue;
      }
      for (const auto& pp : b.protocols) {
        if (pp.protocol == proto) {
          return &pp;
        }
      }
    }
    return nullptr;
  }
  static std::vector<Json> opsOf(const Plan& p, const std::string& op) {
    std::vector<Json> out;
    for (const auto& o : p.transaction) {
      if (o["op"] == op) {
        out.push_back(o);
      }
    }
    return out;
  }
  config::BridgeRule allThree(std::vector<std::string> match = {"*"}) {
    config::BridgeRule r;
    r.match = std::move(match);
    r.sflow.emplace();
    r.ipfix.emplace();
    r.netflow.emplace();
    return r;
  }

  ovsdb::Replica replica;
  std::vector<config::BridgeRule> rules;
  Target target;
  std::function<bool(const std::string&, uint32_t)> refresh;
};

TEST_F(PlanTest, CreatesAllThreeWithOwnerTagInOneGuardedTransaction) {
  bridge("b1", "br0");
  bridge("b2", "br1");
  rules.push_back(allThree());
  Plan p = compute();
  ASSERT_TRUE(p.ok()) << p.errors[0];
  EXPECT_EQ(p.changeCount(), 6u);
  ASSERT_EQ(p.bridges.size(), 2u);
  EXPECT_EQ(p.bridges[0].name, "br0");
  auto inserts = opsOf(p, "insert");
  ASSERT_EQ(inserts.size(), 6u);
  for (const auto& ins : inserts) {
    EXPECT_EQ(ins["row"]["external_ids"], owner(kMe)) << ins.dump();
  }
  // IPFIX row: cache_max_flows explicit and never 0, targets defaulted to our listener.
  Json ipfix;
  for (const auto& ins : inserts) {
    if (ins["table"] == "IPFIX") {
      ipfix = ins["row"];
    }
  }
  EXPECT_EQ(ipfix["cache_max_flows"], J(R"(["set",[4096]])"));
  EXPECT_EQ(ipfix["targets"], J(R"(["set",["127.0.0.1:4739"]])"));
  // sFlow agent left empty (OVS picks) when not configured.
  EXPECT_EQ(inserts[0]["table"], "sFlow");
  EXPECT_EQ(inserts[0]["row"]["agent"], J(R"(["set",[]])"));
  // Each bridge: a wait on its export columns first, then the bridge update with named uuids.
  auto waits = opsOf(p, "wait");
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_EQ(waits[0]["table"], "Bridge");
  EXPECT_EQ(waits[0]["until"], "==");
  EXPECT_EQ(waits[0]["rows"][0]["sflow"], J(R"(["set",[]])"));
  auto updates = opsOf(p, "update");
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[0]["row"]["sflow"][0], "named-uuid");
  EXPECT_EQ(p.transaction.back()["op"], "comment");
  // Human text and JSON.
  const std::string text = formatPlan(p);
  EXPECT_NE(text.find("bridge br0 (rule 0)"), std::string::npos) << text;
  EXPECT_NE(text.find("sflow    create"), std::string::npos) << text;
  EXPECT_NE(text.find("6 change(s) in one transaction"), std::string::npos) << text;
  Json j = toJson(p);
  EXPECT_EQ(j["changes"], 6);
  EXPECT_EQ(j["bridges"][0]["protocols"]["ipfix"]["action"], "create");
  EXPECT_EQ(j["bridges"][0]["protocols"]["ipfix"]["desired"]["cache_max_flows"], 4096);
}

TEST_F(PlanTest, SamplingChangeUpdatesOwnedRowInPlace) {
  bridge("b1", "br0", J(R"({"sflow":["uuid","s1"]})"));
  row("sFlow", "s1",
      {{"targets", "127.0.0.1:6343"},
       {"sampling", 64},
       {"polling", 10},
       {"header", 128},
       {"external_ids", owner(kMe)}});
  config::BridgeRule r;
  r.sflow.emplace();
  r.sflow->sampling = 64;
  rules = {r};
  Plan same = compute();
  EXPECT_EQ(same.changeCount(), 0u);
  EXPECT_TRUE(same.transaction.empty());
  EXPECT_EQ(find(same, "br0", Protocol::Sflow)->action, Action::Ok);

  rules[0].sflow->sampling = 128;
  Plan p = compute();
  const ProtocolPlan* pp = find(p, "br0", Protocol::Sflow);
  ASSERT_NE(pp, nullptr);
  EXPECT_EQ(pp->action, Action::Update);
  ASSERT_EQ(pp->changes.size(), 1u);
  EXPECT_EQ(pp->changes[0], "sampling: 64 -> 128");
  EXPECT_TRUE(opsOf(p, "insert").empty());
  auto updates = opsOf(p, "update");
  ASSERT_EQ(updates.size(), 1u);  // the sFlow row only; the bridge keeps its reference
  EXPECT_EQ(updates[0]["table"], "sFlow");
  EXPECT_EQ(updates[0]["where"][0][2], J(R"(["uuid","s1"])"));
  EXPECT_EQ(updates[0]["row"], J(R"({"sampling":["set",[128]]})"));
  // Guard on the row's read columns.
  auto waits = opsOf(p, "wait");
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_EQ(waits[1]["table"], "sFlow");
  EXPECT_EQ(waits[1]["rows"][0]["sampling"], J(R"(["set",[64]])"));
  EXPECT_NE(formatPlan(p).find("sampling: 64 -> 128"), std::string::npos);
}

TEST_F(PlanTest, ForeignRowLeftAloneUnlessTakeover) {
  bridge("b1", "br0", J(R"({"sflow":["uuid","s1"]})"));
  row("sFlow", "s1", {{"targets", "10.0.0.9:6343"}, {"sampling", 1000}});
  config::BridgeRule r;
  r.sflow.emplace();
  rules = {r};
  Plan p = compute();
  const ProtocolPlan* pp = find(p, "br0", Protocol::Sflow);
  ASSERT_NE(pp, nullptr);
  EXPECT_EQ(pp->action, Action::Foreign);
  EXPECT_NE(pp->note.find("takeover"), std::string::npos);
  EXPECT_TRUE(p.transaction.empty());
  EXPECT_EQ(p.changeCount(), 0u);

  rules[0].takeover = true;
  Plan t = compute();
  pp = find(t, "br0", Protocol::Sflow);
  EXPECT_EQ(pp->action, Action::TakeOver);
  auto updates = opsOf(t, "update");
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0]["row"]["external_ids"], owner(kMe));
  EXPECT_EQ(updates[0]["row"]["sampling"], J(R"(["set",[64]])"));
}

TEST_F(PlanTest, AnotherInstancesRowIsForeign) {
  bridge("b1", "br0", J(R"({"ipfix":["uuid","i1"]})"));
  row("IPFIX", "i1", {{"targets", "127.0.0.1:4739"}, {"external_ids", owner("other")}});
  config::BridgeRule r;
  r.ipfix.emplace();
  rules = {r};
  Plan p = compute();
  const ProtocolPlan* pp = find(p, "br0", Protocol::Ipfix);
  ASSERT_NE(pp, nullptr);
  EXPECT_EQ(pp->action, Action::Foreign);
  EXPECT_EQ(pp->row_owner, "other");
}

TEST_F(PlanTest, RemovingAProtocolRemovesOnlyOwnedRows) {
  bridge("b1", "br0", J(R"({"sflow":["uuid","s1"],"netflow":["uuid","n1"]})"));
  row("sFlow", "s1", {{"targets", "127.0.0.1:6343"}, {"external_ids", owner(kMe)}});
  row("NetFlow", "n1", {{"targets", "127.0.0.1:2055"}, {"active_timeout", 60}});  // foreign
  config::BridgeRule r;
  r.ipfix.emplace();  // sflow and netflow no longer wanted
  rules = {r};
  Plan p = compute();
  EXPECT_EQ(find(p, "br0", Protocol::Sflow)->action, Action::Remove);
  EXPECT_EQ(find(p, "br0", Protocol::Netflow)->action, Action::Unmanaged);
  EXPECT_EQ(find(p, "br0", Protocol::Ipfix)->action, Action::Create);
  auto updates = opsOf(p, "update");
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0]["row"]["sflow"], J(R"(["set",[]])"));
  EXPECT_FALSE(updates[0]["row"].contains("netflow"));
}

TEST_F(PlanTest, BridgeWithoutRuleLosesOwnedRowsOnly_RemoveAll) {
  bridge("b1", "br0", J(R"({"sflow":["uuid","s1"],"ipfix":["uuid","i1"]})"));
  bridge("b2", "br1", J(R"({"netflow":["uuid","n1"]})"));
  row("sFlow", "s1", {{"targets", "127.0.0.1:6343"}, {"external_ids", owner(kMe)}});
  row("IPFIX", "i1", {{"targets", "127.0.0.1:4739"}});
  row("NetFlow", "n1", {{"targets", "127.0.0.1:2055"}, {"external_ids", owner(kMe)}});
  rules.clear();  // = provision remove
  Plan p = compute();
  EXPECT_EQ(p.changeCount(), 2u);
  EXPECT_EQ(find(p, "br0", Protocol::Sflow)->action, Action::Remove);
  EXPECT_EQ(find(p, "br0", Protocol::Ipfix), nullptr);  // foreign, no rule: not ours to list
  EXPECT_EQ(find(p, "br1", Protocol::Netflow)->action, Action::Remove);
}

TEST_F(PlanTest, GlobsAndFirstMatchingRuleWins) {
  bridge("b1", "br-int");
  bridge("b2", "br-ex");
  bridge("b3", "other");
  config::BridgeRule a;
  a.match = {"br-ex"};
  a.netflow.emplace();
  config::BridgeRule b;
  b.match = {"br-*"};
  b.sflow.emplace();
  rules = {a, b};
  Plan p = compute();
  EXPECT_NE(find(p, "br-ex", Protocol::Netflow), nullptr);
  EXPECT_EQ(find(p, "br-ex", Protocol::Sflow), nullptr);
  EXPECT_NE(find(p, "br-int", Protocol::Sflow), nullptr);
  for (const auto& br : p.bridges) {
    EXPECT_NE(br.name, "other");
  }
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_NE(p.warnings[0].find("br-ex also matches rule 1"), std::string::npos);
}

TEST_F(PlanTest, InvalidTargetsAndZeroCacheAreRejectedWithoutOps) {
  bridge("b1", "br0");
  config::BridgeRule r;
  r.sflow.emplace();
  r.sflow->targets = {"300.1.1.1:6343"};
  r.ipfix.emplace();
  r.ipfix->cache_max_flows = 0;
  r.netflow.emplace();
  r.netflow->targets = {"127.0.0.1"};
  rules = {r};
  Plan p = compute();
  EXPECT_FALSE(p.ok());
  EXPECT_EQ(p.errors.size(), 3u);
  EXPECT_TRUE(p.transaction.empty());
  EXPECT_NE(formatPlan(p).find("nothing will be written"), std::string::npos);
  // No local listener and no targets.
  target = {};
  rules[0] = config::BridgeRule{};
  rules[0].sflow.emplace();
  Plan q = compute();
  ASSERT_EQ(q.errors.size(), 1u);
  EXPECT_NE(q.errors[0].find("no targets"), std::string::npos);
}

TEST_F(PlanTest, ValidTargets) {
  std::string why;
  EXPECT_TRUE(validTarget("127.0.0.1:6343", &why));
  EXPECT_TRUE(validTarget("[::1]:4739", &why));
  EXPECT_TRUE(validTarget("collector.example.org:2055", &why));
  EXPECT_FALSE(validTarget("1.2.3:6343x", &why));
  EXPECT_FALSE(validTarget("1.2.3.4:0", &why));
  EXPECT_FALSE(validTarget("::1:5", &why));
  EXPECT_FALSE(validTarget("[zz]:5", &why));
  EXPECT_FALSE(validTarget("bad host:5", &why));
}

TEST_F(PlanTest, IpfixRefreshRecreatesOwnedRow) {
  bridge("b1", "br0", J(R"({"ipfix":["uuid","i1"]})"));
  row("IPFIX", "i1",
      {{"targets", "127.0.0.1:4739"},
       {"sampling", 64},
       {"obs_domain_id", 0},
       {"obs_point_id", 0},
       {"cache_active_timeout", 60},
       {"cache_max_flows", 4096},
       {"external_ids", owner(kMe)}});
  config::BridgeRule r;
  r.ipfix.emplace();
  rules = {r};
  Plan before = compute();
  EXPECT_EQ(find(before, "br0", Protocol::Ipfix)->action, Action::Ok);
  uint32_t asked = 99;
  refresh = [&](const std::string& b, uint32_t d) {
    EXPECT_EQ(b, "br0");
    asked = d;
    return true;
  };
  Plan p = compute();
  EXPECT_EQ(asked, 0u);
  EXPECT_EQ(find(p, "br0", Protocol::Ipfix)->action, Action::Refresh);
  auto inserts = opsOf(p, "insert");
  ASSERT_EQ(inserts.size(), 1u);
  EXPECT_EQ(inserts[0]["table"], "IPFIX");
}

TEST(TargetTest, FromListeners) {
  config::CollectorConfig c;  // defaults: 0.0.0.0:2055, 4739, 6343
  Target t = targetFromListeners(c);
  EXPECT_EQ(t.sflow, "127.0.0.1:6343");
  EXPECT_EQ(t.ipfix, "127.0.0.1:4739");
  EXPECT_EQ(t.netflow, "127.0.0.1:2055");
  c.listen = {{"::", 9999}};
  t = targetFromListeners(c);
  EXPECT_EQ(t.sflow, "[::1]:9999");
  EXPECT_EQ(t.netflow, "[::1]:9999");
}

}  // namespace
}  // namespace nc::ovsctl::provision
