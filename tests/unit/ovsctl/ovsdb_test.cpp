// ovsdb: schema column kinds, datum encodings (RFC 7047 §5.1), replica from update/update2
// deltas, and transaction reply decoding. Shapes follow /work/shared/notes/ovs-userspace.md.
#include "ovsctl/ovsdb/ovsdb.hpp"

#include <gtest/gtest.h>

#include "ovsctl/provision/plan.hpp"
#include "tests/unit/ovsctl/mini_schema.hpp"

namespace nc::ovsctl::ovsdb {
namespace {

Json J(const char* s) {
  return Json::parse(s);
}

TEST(SchemaTest, ColumnKinds) {
  Schema s = Schema::parse(test::miniSchema());
  EXPECT_EQ(s.version, "8.3.1");
  const ColumnType* sflow = s.column("Bridge", "sflow");
  ASSERT_NE(sflow, nullptr);
  EXPECT_EQ(sflow->kind, ColumnType::Kind::Set);
  EXPECT_EQ(sflow->key_type, "uuid");
  EXPECT_EQ(sflow->max, 1);
  EXPECT_EQ(s.column("Bridge", "name")->kind, ColumnType::Kind::Scalar);
  EXPECT_EQ(s.column("Bridge", "external_ids")->kind, ColumnType::Kind::Map);
  EXPECT_EQ(s.column("sFlow", "targets")->max, -1);
  EXPECT_EQ(s.column("NetFlow", "active_timeout")->kind, ColumnType::Kind::Scalar);
  EXPECT_EQ(s.column("Bridge", "nope"), nullptr);
  EXPECT_THROW(Schema::parse(J(R"({"name":"x"})")), std::runtime_error);
}

TEST(DatumTest, Encodings) {
  Schema s = Schema::parse(test::miniSchema());
  const ColumnType& targets = *s.column("sFlow", "targets");
  const ColumnType& ref = *s.column("Bridge", "sflow");
  const ColumnType& ids = *s.column("Bridge", "external_ids");
  // A one-element set comes as the bare atom.
  EXPECT_EQ(normalize(targets, "127.0.0.1:6343"), J(R"(["set",["127.0.0.1:6343"]])"));
  EXPECT_EQ(normalize(targets, J(R"(["set",["b:1","a:1"]])")), J(R"(["set",["a:1","b:1"]])"));
  EXPECT_EQ(normalize(ref, J(R"(["uuid","u1"])")), J(R"(["set",[["uuid","u1"]]])"));
  EXPECT_EQ(normalize(ref, J(R"(["set",[]])")), J(R"(["set",[]])"));
  EXPECT_EQ(normalize(ids, J(R"(["map",[["z","1"],["a","2"]]])")),
            J(R"(["map",[["a","2"],["z","1"]]])"));
  EXPECT_EQ(normalize(*s.column("NetFlow", "active_timeout"), J(R"(["set",[5]])")), 5);
  EXPECT_EQ(stringMap(J(R"(["map",[["k","v"]]])")).at("k"), "v");
  EXPECT_EQ(uuidString(J(R"(["uuid","abc"])")), "abc");
  EXPECT_EQ(uuidString("abc"), "");
  // Plain forms for humans.
  EXPECT_EQ(toPlain(ref, J(R"(["set",[["uuid","u1"]]])")), "u1");
  EXPECT_TRUE(toPlain(ref, J(R"(["set",[]])")).is_null());
  EXPECT_EQ(toPlain(targets, J(R"(["set",["a:1"]])")), J(R"(["a:1"])"));
  EXPECT_EQ(toPlain(ids, J(R"(["map",[["k","v"]]])")), J(R"({"k":"v"})"));
  EXPECT_EQ(defaultDatum(*s.column("sFlow", "sampling")), J(R"(["set",[]])"));
  EXPECT_EQ(defaultDatum(*s.column("NetFlow", "active_timeout")), 0);
  EXPECT_EQ(defaultDatum(*s.column("NetFlow", "add_id_to_interface")), false);
  EXPECT_THROW(mapPairs(J(R"(["set",[]])")), std::runtime_error);
}

TEST(DatumTest, Update2Diffs) {
  Schema s = Schema::parse(test::miniSchema());
  const ColumnType& ref = *s.column("Bridge", "sflow");
  const ColumnType& ids = *s.column("Bridge", "external_ids");
  // Optional values (max 1) come as the new value (measured with OVS 3.1).
  Json a = J(R"(["set",[["uuid","A"]]])");
  EXPECT_EQ(applyDiff(ref, a, J(R"(["uuid","B"])")), J(R"(["set",[["uuid","B"]]])"));
  EXPECT_EQ(applyDiff(ref, a, J(R"(["set",[]])")), J(R"(["set",[]])"));
  EXPECT_EQ(applyDiff(ref, J(R"(["set",[]])"), J(R"(["uuid","B"])")),
            J(R"(["set",[["uuid","B"]]])"));
  // Multi-element sets: the symmetric difference.
  const ColumnType& targets = *s.column("sFlow", "targets");
  EXPECT_EQ(applyDiff(targets, J(R"(["set",["a:1","b:1"]])"), J(R"(["set",["a:1","c:1"]])")),
            J(R"(["set",["b:1","c:1"]])"));
  // Measured with OVS 3.1 (ovs-vsctl set sFlow . targets=4,6 sampling=999 on targets {4,5},
  // sampling 64; then external_ids b=3 c=4 and remove a on {a=1,b=2}):
  //   {"modify":{"sampling":999,"targets":["set",["1.2.3.5:5","1.2.3.6:5"]]}}
  //   {"modify":{"external_ids":["map",[["a","1"],["b","3"],["c","4"]]]}}
  EXPECT_EQ(applyDiff(*s.column("sFlow", "sampling"), J(R"(["set",[64]])"), 999),
            J(R"(["set",[999]])"));
  EXPECT_EQ(applyDiff(targets, J(R"(["set",["1.2.3.4:5","1.2.3.5:5"]])"),
                      J(R"(["set",["1.2.3.5:5","1.2.3.6:5"]])")),
            J(R"(["set",["1.2.3.4:5","1.2.3.6:5"]])"));
  EXPECT_EQ(applyDiff(ids, J(R"(["map",[["a","1"],["b","2"]]])"),
                      J(R"(["map",[["a","1"],["b","3"],["c","4"]]])")),
            J(R"(["map",[["b","3"],["c","4"]]])"));
  // Map: new key added, same pair removed, other value replaced.
  Json m = J(R"(["map",[["a","1"],["b","2"]]])");
  EXPECT_EQ(applyDiff(ids, m, J(R"(["map",[["a","1"],["b","3"],["c","4"]]])")),
            J(R"(["map",[["b","3"],["c","4"]]])"));
  EXPECT_EQ(applyDiff(*s.column("NetFlow", "active_timeout"), 5, 7), 7);
}

class ReplicaTest : public ::testing::Test {
 protected:
  ReplicaTest() { r.reset(Schema::parse(test::miniSchema()), provision::monitorSpec()); }
  Replica r;
};

TEST_F(ReplicaTest, Update2InitialInsertModifyDelete) {
  // update2 omits columns that have their default value.
  r.applyUpdate2(J(R"({"Bridge":{"b1":{"initial":{"name":"br0","datapath_type":"netdev"}}}})"));
  const Row* b = r.row("Bridge", "b1");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->at("name"), "br0");
  EXPECT_EQ(b->at("sflow"), J(R"(["set",[]])"));
  EXPECT_EQ(b->at("external_ids"), J(R"(["map",[]])"));
  r.applyUpdate2(J(R"({"sFlow":{"s1":{"insert":{"targets":"127.0.0.1:6343","sampling":64,
      "external_ids":["map",[["net-collector-owner","me"]]]}}},
      "Bridge":{"b1":{"modify":{"sflow":["uuid","s1"]}}}})"));
  EXPECT_EQ(r.row("Bridge", "b1")->at("sflow"), J(R"(["set",[["uuid","s1"]]])"));
  EXPECT_EQ(r.row("sFlow", "s1")->at("sampling"), J(R"(["set",[64]])"));
  EXPECT_EQ(r.row("sFlow", "s1")->at("targets"), J(R"(["set",["127.0.0.1:6343"]])"));
  // sampling 64 -> 128: an optional integer comes as the new value.
  r.applyUpdate2(J(R"({"sFlow":{"s1":{"modify":{"sampling":128}}}})"));
  EXPECT_EQ(r.row("sFlow", "s1")->at("sampling"), J(R"(["set",[128]])"));
  // Clearing the reference garbage-collects the row: a delete arrives.
  r.applyUpdate2(J(R"({"Bridge":{"b1":{"modify":{"sflow":["set",[]]}}},
                       "sFlow":{"s1":{"delete":null}}})"));
  EXPECT_EQ(r.row("sFlow", "s1"), nullptr);
  EXPECT_EQ(r.row("Bridge", "b1")->at("sflow"), J(R"(["set",[]])"));
  EXPECT_THROW(r.applyUpdate2(J(R"({"Bridge":{"zz":{"modify":{"name":"x"}}}})")),
               std::runtime_error);
  EXPECT_THROW(r.applyUpdate2(J(R"({"Bridge":{"b1":{"bogus":{}}}})")), std::runtime_error);
}

TEST_F(ReplicaTest, MonitorV1NewOld) {
  r.applyUpdate(J(R"({"Bridge":{"b1":{"new":{"name":"br0","sflow":["set",[]],
      "ipfix":["set",[]],"netflow":["set",[]],"ports":["set",[]],"datapath_type":"",
      "external_ids":["map",[]]}}}})"));
  ASSERT_NE(r.row("Bridge", "b1"), nullptr);
  r.applyUpdate(J(R"({"Bridge":{"b1":{"new":{"name":"br0","sflow":["uuid","s1"],
      "ipfix":["set",[]],"netflow":["set",[]],"ports":["set",[]],"datapath_type":"",
      "external_ids":["map",[]]},"old":{"sflow":["set",[]]}}}})"));
  EXPECT_EQ(r.row("Bridge", "b1")->at("sflow"), J(R"(["set",[["uuid","s1"]]])"));
  r.applyUpdate(J(R"({"Bridge":{"b1":{"old":{"name":"br0"}}}})"));
  EXPECT_EQ(r.row("Bridge", "b1"), nullptr);
}

TEST(TxnReplyTest, Decodes) {
  Json ops = J(R"([{"op":"wait","table":"Bridge"},{"op":"update","table":"Bridge"}])");
  jsonrpc::Reply ok;
  ok.ok = true;
  ok.result = J(R"([{},{"count":1}])");
  EXPECT_EQ(decodeTxnReply(ops, ok).status, TxnResult::Status::Ok);
  jsonrpc::Reply conflict;
  conflict.ok = true;
  conflict.result = J(R"([{"error":"timed out"},null])");
  EXPECT_EQ(decodeTxnReply(ops, conflict).status, TxnResult::Status::Conflict);
  jsonrpc::Reply bad;
  bad.ok = true;
  bad.result = J(R"([{},{"count":1},{"error":"referential integrity violation","details":"x"}])");
  TxnResult t = decodeTxnReply(ops, bad);
  EXPECT_EQ(t.status, TxnResult::Status::Error);
  EXPECT_NE(t.error.find("commit"), std::string::npos) << t.error;
  EXPECT_NE(t.error.find("referential"), std::string::npos) << t.error;
  jsonrpc::Reply lost;
  lost.lost = true;
  EXPECT_EQ(decodeTxnReply(ops, lost).status, TxnResult::Status::Lost);
  jsonrpc::Reply rpcerr;
  rpcerr.error = "unknown database";
  EXPECT_EQ(decodeTxnReply(ops, rpcerr).status, TxnResult::Status::Error);
}

}  // namespace
}  // namespace nc::ovsctl::ovsdb
