#pragma once
// OVSDB client on top of jsonrpc::Session (≈ OVS lib/ovsdb-cs + the replica part of ovsdb-idl).
//
// What it does:
//  * Datum helpers for the RFC 7047 §5.1 wire encodings: a set of one element comes as the bare
//    atom, "set"/"map"/"uuid"/"named-uuid" arrays otherwise. The replica stores every value in a
//    canonical form (sets and maps always wrapped and sorted), so values compare with ==.
//  * Schema: the column types of the tables we monitor (from get_schema), needed to apply
//    update2 "modify" deltas (set/map differences) and to fill defaults omitted by update2.
//  * Replica: rows of the monitored tables and columns, kept up to date from "update" (monitor)
//    and "update2" (monitor_cond) notifications.
//  * Client: connect -> get_schema -> monitor_cond (falling back to monitor when the server does
//    not know it) on only the tables/columns asked for; replica rebuilt from scratch after every
//    reconnect; transact() with the reply's per-op errors decoded (a failed "wait" = conflict).
// Where it stops: it does not decide what to write (provision/ does).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ovsctl/jsonrpc/jsonrpc.hpp"

namespace nc::ovsctl::ovsdb {

using Json = nlohmann::json;

struct ColumnType {
  enum class Kind { Scalar, Set, Map };
  Kind kind = Kind::Scalar;
  std::string key_type = "string";  // integer, real, boolean, string, uuid
  std::string value_type;           // maps only
  int64_t min = 1;
  int64_t max = 1;  // -1 = unlimited
};

struct Schema {
  std::string name;
  std::string version;
  std::map<std::string, std::map<std::string, ColumnType>> tables;
  // Parses a get_schema result (RFC 7047 §3.2); throws std::runtime_error on a malformed one.
  static Schema parse(const Json& schema);
  const ColumnType* column(const std::string& table, const std::string& column) const;
};

// ---- Datum helpers (canonical forms) --------------------------------------------------------

// ["uuid", "<u>"]
Json uuidAtom(const std::string& uuid);
// ["named-uuid", "<name>"]
Json namedUuid(const std::string& name);
// Elements of a set datum: a bare atom is a set of one; ["set",[...]] its elements.
std::vector<Json> setElements(const Json& datum);
// ["set", sorted unique elements]
Json makeSet(std::vector<Json> elements);
// Pairs of a map datum ["map",[[k,v],...]].
std::vector<std::pair<Json, Json>> mapPairs(const Json& datum);
Json makeMap(std::vector<std::pair<Json, Json>> pairs);
// String-to-string map (external_ids, other_config); non-string entries are skipped.
std::map<std::string, std::string> stringMap(const Json& datum);
Json makeStringMap(const std::map<std::string, std::string>& m);
// Canonical form of `datum` for a column of type `type`.
Json normalize(const ColumnType& type, const Json& datum);
// The value a column has when update2 omits it (RFC 7047 §5.2 defaults).
Json defaultDatum(const ColumnType& type);
// Applies an update2 "modify" delta (ovsdb-server(7) "update2"): sets of up to many elements
// take the symmetric difference, maps add/remove/replace pairs, scalars and optional values
// (sets with max 1) take the new value (measured: clearing Bridge.sflow sends ["set",[]]).
Json applyDiff(const ColumnType& type, const Json& old, const Json& diff);
// The uuid string of a uuid atom, or "" if it is not one.
std::string uuidString(const Json& atom);
// Plain JSON for humans: sets as arrays (optional values as the value or null), maps as objects,
// uuids as strings.
Json toPlain(const ColumnType& type, const Json& datum);

// ---- Replica ---------------------------------------------------------------------------------

using Row = std::map<std::string, Json>;   // column -> canonical datum
using Table = std::map<std::string, Row>;  // uuid -> row

// Tables and columns to monitor.
using MonitorSpec = std::map<std::string, std::vector<std::string>>;

class Replica {
 public:
  void reset(const Schema& schema, const MonitorSpec& spec);
  // Applies a monitor ("update") or monitor_cond ("update2") table-updates object; throws
  // std::runtime_error on a malformed one.
  void applyUpdate(const Json& table_updates);
  void applyUpdate2(const Json& table_updates2);

  const Table& table(const std::string& name) const;
  const Row* row(const std::string& table, const std::string& uuid) const;
  // A column of a row, or the column's default when the row lacks it.
  Json get(const std::string& table, const Row& row, const std::string& column) const;
  const Schema& schema() const { return schema_; }
  const MonitorSpec& spec() const { return spec_; }
  uint64_t changes() const { return changes_; }
  size_t rowCount(const std::string& name) const { return table(name).size(); }

 private:
  Row normalizedRow(const std::string& table, const Json& row, bool fill_defaults) const;

  Schema schema_;
  MonitorSpec spec_;
  std::map<std::string, Table> tables_;
  uint64_t changes_ = 0;
};

// ---- Client ----------------------------------------------------------------------------------

// Result of a transaction (RFC 7047 §4.1.3).
struct TxnResult {
  enum class Status { Ok, Conflict, Error, Lost };
  Status status = Status::Error;
  std::string error;  // first error, human-readable
  Json result;        // the raw result array
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  static std::shared_ptr<Client> create(boost::asio::io_context& io, jsonrpc::Endpoint endpoint,
                                        MonitorSpec spec, jsonrpc::SessionOptions options = {},
                                        std::string database = "Open_vSwitch");

  // on_synced after the initial monitor reply of each connection (the replica was rebuilt);
  // on_change after every update applied; on_down when the connection drops or a connect attempt
  // fails.
  std::function<void()> on_synced;
  std::function<void()> on_change;
  std::function<void(const std::string& why)> on_down;

  void start();
  void stop();
  bool synced() const { return synced_; }
  const Replica& replica() const { return replica_; }
  jsonrpc::Session& session() { return *session_; }
  const jsonrpc::Session& session() const { return *session_; }
  // "monitor_cond" or "monitor": what the current connection uses.
  const std::string& monitorMethod() const { return monitor_method_; }

  // Sends ["<db>", ops...]; handler gets the decoded outcome. Returns false if not synced.
  bool transact(Json ops, std::function<void(TxnResult)> handler);

 private:
  Client(boost::asio::io_context& io, jsonrpc::Endpoint endpoint, MonitorSpec spec,
         jsonrpc::SessionOptions options, std::string database);
  void onConnected();
  void sendMonitor(bool conditional);
  void onNotification(const Json& m);
  void protocolError(const std::string& why);

  std::shared_ptr<jsonrpc::Session> session_;
  MonitorSpec wanted_;
  std::string database_;
  Schema schema_;
  MonitorSpec spec_;  // wanted_ restricted to what the schema has
  Replica replica_;
  bool synced_ = false;
  std::string monitor_method_;
  uint64_t monitor_seq_ = 0;
  std::string monitor_id_;
};

// Decodes a transact reply (per-op results, extra commit error) into a TxnResult.
TxnResult decodeTxnReply(const Json& ops, const jsonrpc::Reply& reply);

}  // namespace nc::ovsctl::ovsdb
