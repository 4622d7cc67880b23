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
  EXPECT_NE(text.find("sflow      create"), std::string::npos) << text;
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

// ---- Per-flow IPFIX: Flow_Sample_Collector_Set (ipfix.collector_set_id) -----------------------

class PlanCollectorSetTest : public PlanTest {
 protected:
  config::BridgeRule flowRule(uint32_t id) {
    config::BridgeRule r;
    r.match = {"br0"};
    r.ipfix.emplace();
    r.ipfix->collector_set_id = id;
    return r;
  }
  // br0 with an up-to-date owned per-bridge IPFIX row i1 and an owned collector set fs1 (id 5)
  // whose IPFIX row is i2.
  void ownedState(const std::string& set_owner = kMe) {
    bridge("b1", "br0", J(R"({"ipfix":["uuid","i1"]})"));
    row("IPFIX", "i1",
        {{"targets", "127.0.0.1:4739"},
         {"sampling", 64},
         {"obs_domain_id", 0},
         {"obs_point_id", 0},
         {"cache_active_timeout", 60},
         {"cache_max_flows", 4096},
         {"external_ids", owner(kMe)}});
    row("IPFIX", "i2",
        {{"targets", "127.0.0.1:4739"},
         {"cache_active_timeout", 60},
         {"cache_max_flows", 4096},
         {"external_ids", set_owner.empty() ? J(R"(["map",[]])") : owner(set_owner)}});
    row("Flow_Sample_Collector_Set", "fs1",
        {{"id", 5},
         {"bridge", J(R"(["uuid","b1"])")},
         {"ipfix", J(R"(["uuid","i2"])")},
         {"external_ids", set_owner.empty() ? J(R"(["map",[]])") : owner(set_owner)}});
  }
  static std::vector<Json> opsOn(const Plan& p, const std::string& op, const std::string& table) {
    std::vector<Json> out;
    for (const auto& o : opsOf(p, op)) {
      if (o["table"] == table) {
        out.push_back(o);
      }
    }
    return out;
  }
};

TEST_F(PlanCollectorSetTest, CreatesTaggedSetWithItsOwnIpfixRow) {
  bridge("b1", "br0");
  bridge("b2", "br1");
  // A set with the same id on ANOTHER bridge is not ours to care about.
  row("Flow_Sample_Collector_Set", "fsx",
      {{"id", 5}, {"bridge", J(R"(["uuid","b2"])")}, {"ipfix", J(R"(["set",[]])")}});
  rules = {flowRule(5)};
  rules[0].ipfix->cache_max_flows = 1000;
  Plan p = compute();
  ASSERT_TRUE(p.ok()) << p.errors[0];
  EXPECT_EQ(find(p, "br0", Protocol::Ipfix)->action, Action::Create);
  const ProtocolPlan* pp = find(p, "br0", Protocol::IpfixFlow);
  ASSERT_NE(pp, nullptr);
  EXPECT_EQ(pp->action, Action::Create);
  EXPECT_EQ(p.changeCount(), 2u);
  auto sets = opsOn(p, "insert", "Flow_Sample_Collector_Set");
  ASSERT_EQ(sets.size(), 1u);
  const Json& set = sets[0]["row"];
  EXPECT_EQ(set["id"], 5);
  EXPECT_EQ(set["bridge"], J(R"(["uuid","b1"])"));
  EXPECT_EQ(set["external_ids"], owner(kMe));
  ASSERT_EQ(set["ipfix"][0], "named-uuid");
  // The IPFIX row the set references: a separate insert (not the bridge's), tagged, with the
  // flow-sampling columns only.
  Json flow_ipfix;
  for (const auto& ins : opsOn(p, "insert", "IPFIX")) {
    if (ins["uuid-name"] == set["ipfix"][1]) {
      flow_ipfix = ins["row"];
    }
  }
  ASSERT_TRUE(flow_ipfix.is_object());
  EXPECT_EQ(flow_ipfix["targets"], J(R"(["set",["127.0.0.1:4739"]])"));
  EXPECT_EQ(flow_ipfix["cache_max_flows"], J(R"(["set",[1000]])"));
  EXPECT_EQ(flow_ipfix["external_ids"], owner(kMe));
  EXPECT_FALSE(flow_ipfix.contains("sampling"));
  auto bridge_updates = opsOn(p, "update", "Bridge");
  ASSERT_EQ(bridge_updates.size(), 1u);
  EXPECT_NE(bridge_updates[0]["row"]["ipfix"][1], set["ipfix"][1]);  // bridge: its own row
  // Guard: no set with id 5 on br0 appeared meanwhile.
  bool guarded = false;
  for (const auto& w : opsOn(p, "wait", "Flow_Sample_Collector_Set")) {
    guarded = guarded || (w["rows"] == Json::array() &&
                          w["where"] == J(R"([["id","==",5],["bridge","==",["uuid","b1"]]])"));
  }
  EXPECT_TRUE(guarded) << p.transaction.dump();
  EXPECT_NE(formatPlan(p).find("ipfix_flow create"), std::string::npos) << formatPlan(p);
  Json j = toJson(p);
  EXPECT_EQ(j["bridges"][0]["protocols"]["ipfix_flow"]["action"], "create");
  EXPECT_EQ(j["bridges"][0]["protocols"]["ipfix_flow"]["desired"]["id"], 5);
  // No collector_set_id: no set.
  rules[0].ipfix->collector_set_id.reset();
  EXPECT_EQ(find(compute(), "br0", Protocol::IpfixFlow), nullptr);
}

TEST_F(PlanCollectorSetTest, UpdatesOwnedSetInPlace) {
  ownedState();
  rules = {flowRule(5)};
  Plan same = compute();
  EXPECT_EQ(find(same, "br0", Protocol::IpfixFlow)->action, Action::Ok);
  EXPECT_EQ(find(same, "br0", Protocol::Ipfix)->action, Action::Ok);
  EXPECT_TRUE(same.transaction.empty()) << same.transaction.dump();

  // A cache change: both IPFIX rows updated in place, nothing inserted.
  rules[0].ipfix->cache_max_flows = 2048;
  Plan p = compute();
  const ProtocolPlan* pp = find(p, "br0", Protocol::IpfixFlow);
  ASSERT_EQ(pp->action, Action::Update);
  ASSERT_EQ(pp->changes.size(), 1u);
  EXPECT_EQ(pp->changes[0], "cache_max_flows: 4096 -> 2048");
  EXPECT_TRUE(opsOf(p, "insert").empty());
  bool i2_updated = false;
  for (const auto& u : opsOn(p, "update", "IPFIX")) {
    if (u["where"][0][2] == J(R"(["uuid","i2"])")) {
      i2_updated = true;
      EXPECT_EQ(u["row"], J(R"({"cache_max_flows":["set",[2048]]})"));
    }
  }
  EXPECT_TRUE(i2_updated);
  EXPECT_TRUE(opsOn(p, "update", "Flow_Sample_Collector_Set").empty());

  // A new id: the same set row gets the new id.
  rules[0].ipfix->cache_max_flows = 4096;
  rules[0].ipfix->collector_set_id = 7;
  Plan q = compute();
  pp = find(q, "br0", Protocol::IpfixFlow);
  ASSERT_EQ(pp->action, Action::Update);
  EXPECT_EQ(pp->row_uuid, "fs1");
  EXPECT_EQ(pp->changes, std::vector<std::string>{"id: 5 -> 7"});
  auto upd = opsOn(q, "update", "Flow_Sample_Collector_Set");
  ASSERT_EQ(upd.size(), 1u);
  EXPECT_EQ(upd[0]["row"], J(R"({"id":7})"));
  EXPECT_TRUE(opsOf(q, "insert").empty());
  EXPECT_TRUE(opsOf(q, "delete").empty());
  EXPECT_EQ(q.changeCount(), 1u);
}

TEST_F(PlanCollectorSetTest, RemovesOnlyOwnedSets) {
  ownedState();
  row("Flow_Sample_Collector_Set", "fs9",
      {{"id", 9}, {"bridge", J(R"(["uuid","b1"])")}, {"ipfix", J(R"(["set",[]])")}});  // foreign
  // Key dropped, ipfix kept: our set is deleted, the foreign one left alone.
  rules = {flowRule(5)};
  rules[0].ipfix->collector_set_id.reset();
  Plan p = compute();
  const ProtocolPlan* pp = find(p, "br0", Protocol::IpfixFlow);
  ASSERT_NE(pp, nullptr);
  EXPECT_EQ(pp->action, Action::Remove);
  EXPECT_EQ(pp->row_uuid, "fs1");
  auto dels = opsOf(p, "delete");
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0]["table"], "Flow_Sample_Collector_Set");
  EXPECT_EQ(dels[0]["where"][0][2], J(R"(["uuid","fs1"])"));
  EXPECT_EQ(p.changeCount(), 1u);
  // No rules at all (= provision remove): the owned set and the owned bridge IPFIX go.
  rules.clear();
  Plan r = compute();
  EXPECT_EQ(find(r, "br0", Protocol::IpfixFlow)->action, Action::Remove);
  EXPECT_EQ(find(r, "br0", Protocol::Ipfix)->action, Action::Remove);
  EXPECT_EQ(r.changeCount(), 2u);
  ASSERT_EQ(opsOf(r, "delete").size(), 1u);
  EXPECT_EQ(opsOf(r, "delete")[0]["where"][0][2], J(R"(["uuid","fs1"])"));
}

TEST_F(PlanCollectorSetTest, ForeignSetWithSameIdLeftAloneUnlessTakeover) {
  ownedState("");  // fs1 (id 5) and i2 untagged: someone else's
  rules = {flowRule(5)};
  Plan p = compute();
  const ProtocolPlan* pp = find(p, "br0", Protocol::IpfixFlow);
  ASSERT_NE(pp, nullptr);
  EXPECT_EQ(pp->action, Action::Foreign);
  EXPECT_NE(pp->note.find("takeover"), std::string::npos);
  EXPECT_TRUE(p.transaction.empty()) << p.transaction.dump();  // no second set with id 5
  EXPECT_EQ(p.changeCount(), 0u);

  rules[0].takeover = true;
  rules[0].ipfix->cache_active_timeout = 30;
  Plan t = compute();
  pp = find(t, "br0", Protocol::IpfixFlow);
  ASSERT_EQ(pp->action, Action::TakeOver);
  auto sets = opsOn(t, "update", "Flow_Sample_Collector_Set");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0]["row"], Json({{"external_ids", owner(kMe)}}));
  bool i2 = false;
  for (const auto& u : opsOn(t, "update", "IPFIX")) {
    if (u["where"][0][2] == J(R"(["uuid","i2"])")) {
      i2 = true;
      EXPECT_EQ(u["row"]["external_ids"], owner(kMe));
      EXPECT_EQ(u["row"]["cache_active_timeout"], J(R"(["set",[30]])"));
    }
  }
  EXPECT_TRUE(i2) << t.transaction.dump();
  EXPECT_TRUE(opsOn(t, "insert", "Flow_Sample_Collector_Set").empty());
}

TEST_F(PlanCollectorSetTest, TakeoverNeverChangesAnIpfixRowTheBridgeUses) {
  bridge("b1", "br0", J(R"({"ipfix":["uuid","i1"]})"));
  row("IPFIX", "i1", {{"targets", "127.0.0.1:4739"}, {"external_ids", owner(kMe)}});
  row("Flow_Sample_Collector_Set", "fs1",
      {{"id", 5}, {"bridge", J(R"(["uuid","b1"])")}, {"ipfix", J(R"(["uuid","i1"])")}});
  rules = {flowRule(5)};
  rules[0].takeover = true;
  Plan p = compute();
  EXPECT_EQ(find(p, "br0", Protocol::IpfixFlow)->action, Action::TakeOver);
  auto sets = opsOn(p, "update", "Flow_Sample_Collector_Set");
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0]["row"]["ipfix"][0], "named-uuid");  // a row of its own
  EXPECT_EQ(opsOn(p, "insert", "IPFIX").size(), 1u);
}

TEST_F(PlanCollectorSetTest, DeletedBridgeKeptAliveBySetLosesOurSet) {
  // `ovs-vsctl del-br br0` drops br0 from Open_vSwitch.bridges, but our set's strong reference
  // keeps the Bridge row: no rule applies to it any more and our set goes.
  ownedState();
  bridge("b2", "br0");  // re-created with the same name
  row("Open_vSwitch", "root", {{"bridges", J(R"(["set",[["uuid","b2"]]])")}});
  rules = {flowRule(5)};
  Plan p = compute();
  ASSERT_EQ(p.bridges.size(), 2u);
  const BridgePlan& old = p.bridges[0].uuid == "b1" ? p.bridges[0] : p.bridges[1];
  const BridgePlan& now = p.bridges[0].uuid == "b2" ? p.bridges[0] : p.bridges[1];
  EXPECT_EQ(old.rule, -1);
  bool removed = false;
  for (const auto& pp : old.protocols) {
    removed = removed || (pp.protocol == Protocol::IpfixFlow && pp.action == Action::Remove);
  }
  EXPECT_TRUE(removed);
  EXPECT_EQ(now.rule, 0);
  ASSERT_EQ(opsOf(p, "delete").size(), 1u);
  EXPECT_EQ(opsOf(p, "delete")[0]["where"][0][2], J(R"(["uuid","fs1"])"));
  EXPECT_EQ(opsOn(p, "insert", "Flow_Sample_Collector_Set").size(), 1u);  // on the live br0
  EXPECT_FALSE(p.warnings.empty());
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
