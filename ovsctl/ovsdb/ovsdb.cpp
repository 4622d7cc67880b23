#include "ovsctl/ovsdb/ovsdb.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "common/log.hpp"

namespace nc::ovsctl::ovsdb {

// ---------------------------------------------------------------------------------------------
// Schema

namespace {

std::string atomicType(const Json& t) {
  if (t.is_string()) {
    return t.get<std::string>();
  }
  if (t.is_object() && t.contains("type") && t["type"].is_string()) {
    return t["type"].get<std::string>();
  }
  throw std::runtime_error("bad atomic type " + t.dump());
}

int64_t bound(const Json& v, int64_t dflt) {
  if (v.is_null()) {
    return dflt;
  }
  if (v.is_string() && v == "unlimited") {
    return -1;
  }
  if (v.is_number_integer()) {
    return v.get<int64_t>();
  }
  throw std::runtime_error("bad min/max " + v.dump());
}

bool isTagged(const Json& d, const char* tag) {
  return d.is_array() && d.size() == 2 && d[0].is_string() && d[0] == tag;
}

}  // namespace

Schema Schema::parse(const Json& schema) {
  Schema s;
  if (!schema.is_object() || !schema.contains("tables") || !schema["tables"].is_object()) {
    throw std::runtime_error("schema has no tables");
  }
  s.name = schema.value("name", "");
  s.version = schema.value("version", "");
  for (const auto& [tname, table] : schema["tables"].items()) {
    auto& cols = s.tables[tname];
    if (!table.contains("columns") || !table["columns"].is_object()) {
      throw std::runtime_error("schema table " + tname + " has no columns");
    }
    for (const auto& [cname, col] : table["columns"].items()) {
      ColumnType ct;
      const Json& t = col.at("type");
      if (t.is_string()) {
        ct.key_type = t.get<std::string>();
      } else {
        ct.key_type = atomicType(t.at("key"));
        if (t.contains("value")) {
          ct.value_type = atomicType(t["value"]);
        }
        ct.min = bound(t.value("min", Json()), 1);
        ct.max = bound(t.value("max", Json()), 1);
      }
      if (!ct.value_type.empty()) {
        ct.kind = ColumnType::Kind::Map;
      } else if (ct.min == 1 && ct.max == 1) {
        ct.kind = ColumnType::Kind::Scalar;
      } else {
        ct.kind = ColumnType::Kind::Set;
      }
      cols[cname] = ct;
    }
  }
  return s;
}

const ColumnType* Schema::column(const std::string& table, const std::string& column) const {
  auto t = tables.find(table);
  if (t == tables.end()) {
    return nullptr;
  }
  auto c = t->second.find(column);
  return c == t->second.end() ? nullptr : &c->second;
}

// ---------------------------------------------------------------------------------------------
// Datum helpers

Json uuidAtom(const std::string& uuid) {
  return Json::array({"uuid", uuid});
}
Json namedUuid(const std::string& name) {
  return Json::array({"named-uuid", name});
}

std::vector<Json> setElements(const Json& datum) {
  if (isTagged(datum, "set")) {
    if (!datum[1].is_array()) {
      throw std::runtime_error("bad set " + datum.dump());
    }
    return std::vector<Json>(datum[1].begin(), datum[1].end());
  }
  return {datum};
}

Json makeSet(std::vector<Json> elements) {
  std::sort(elements.begin(), elements.end());
  elements.erase(std::unique(elements.begin(), elements.end()), elements.end());
  return Json::array({"set", Json(std::move(elements))});
}

std::vector<std::pair<Json, Json>> mapPairs(const Json& datum) {
  if (!isTagged(datum, "map") || !datum[1].is_array()) {
    throw std::runtime_error("bad map " + datum.dump());
  }
  std::vector<std::pair<Json, Json>> out;
  for (const auto& p : datum[1]) {
    if (!p.is_array() || p.size() != 2) {
      throw std::runtime_error("bad map pair " + p.dump());
    }
    out.emplace_back(p[0], p[1]);
  }
  return out;
}

Json makeMap(std::vector<std::pair<Json, Json>> pairs) {
  std::sort(pairs.begin(), pairs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  Json arr = Json::array();
  for (auto& [k, v] : pairs) {
    arr.push_back(Json::array({std::move(k), std::move(v)}));
  }
  return Json::array({"map", std::move(arr)});
}

std::map<std::string, std::string> stringMap(const Json& datum) {
  std::map<std::string, std::string> out;
  if (!isTagged(datum, "map")) {
    return out;
  }
  for (const auto& [k, v] : mapPairs(datum)) {
    if (k.is_string() && v.is_string()) {
      out[k.get<std::string>()] = v.get<std::string>();
    }
  }
  return out;
}

Json makeStringMap(const std::map<std::string, std::string>& m) {
  std::vector<std::pair<Json, Json>> pairs;
  for (const auto& [k, v] : m) {
    pairs.emplace_back(k, v);
  }
  return makeMap(std::move(pairs));
}

Json normalize(const ColumnType& type, const Json& datum) {
  switch (type.kind) {
    case ColumnType::Kind::Scalar:
      if (isTagged(datum, "set") && datum[1].is_array() && datum[1].size() == 1) {
        return datum[1][0];
      }
      return datum;
    case ColumnType::Kind::Set:
      return makeSet(setElements(datum));
    case ColumnType::Kind::Map:
      return makeMap(mapPairs(datum));
  }
  return datum;
}

Json defaultDatum(const ColumnType& type) {
  switch (type.kind) {
    case ColumnType::Kind::Set:
      return Json::array({"set", Json::array()});
    case ColumnType::Kind::Map:
      return Json::array({"map", Json::array()});
    case ColumnType::Kind::Scalar:
      break;
  }
  if (type.key_type == "integer") {
    return 0;
  }
  if (type.key_type == "real") {
    return 0.0;
  }
  if (type.key_type == "boolean") {
    return false;
  }
  if (type.key_type == "uuid") {
    return uuidAtom("00000000-0000-0000-0000-000000000000");
  }
  return "";
}

Json applyDiff(const ColumnType& type, const Json& old, const Json& diff) {
  switch (type.kind) {
    case ColumnType::Kind::Scalar:
      return normalize(type, diff);
    case ColumnType::Kind::Set: {
      if (type.max == 1) {
        // Optional values come as the new value, not a difference (measured with OVS 3.1:
        // clearing Bridge.sflow sends "sflow":["set",[]]), as ovsdb-server's monitor does.
        return normalize(type, diff);
      }
      std::vector<Json> cur = setElements(old);
      for (const auto& e : setElements(diff)) {
        auto it = std::find(cur.begin(), cur.end(), e);
        if (it != cur.end()) {
          cur.erase(it);
        } else {
          cur.push_back(e);
        }
      }
      return makeSet(std::move(cur));
    }
    case ColumnType::Kind::Map: {
      std::vector<std::pair<Json, Json>> cur = mapPairs(old);
      for (auto& [k, v] : mapPairs(diff)) {
        auto it = std::find_if(cur.begin(), cur.end(), [&](const auto& p) { return p.first == k; });
        if (it == cur.end()) {
          cur.emplace_back(k, v);
        } else if (it->second == v) {
          cur.erase(it);
        } else {
          it->second = v;
        }
      }
      return makeMap(std::move(cur));
    }
  }
  return diff;
}

std::string uuidString(const Json& atom) {
  if (isTagged(atom, "uuid") && atom[1].is_string()) {
    return atom[1].get<std::string>();
  }
  return "";
}

namespace {
Json plainAtom(const Json& a) {
  std::string u = uuidString(a);
  return u.empty() ? a : Json(u);
}
}  // namespace

Json toPlain(const ColumnType& type, const Json& datum) {
  switch (type.kind) {
    case ColumnType::Kind::Scalar:
      return plainAtom(datum);
    case ColumnType::Kind::Set: {
      auto elems = setElements(datum);
      if (type.max == 1) {
        return elems.empty() ? Json() : plainAtom(elems[0]);
      }
      Json arr = Json::array();
      for (const auto& e : elems) {
        arr.push_back(plainAtom(e));
      }
      return arr;
    }
    case ColumnType::Kind::Map: {
      Json obj = Json::object();
      for (const auto& [k, v] : mapPairs(datum)) {
        Json pk = plainAtom(k);
        obj[pk.is_string() ? pk.get<std::string>() : pk.dump()] = plainAtom(v);
      }
      return obj;
    }
  }
  return datum;
}

// ---------------------------------------------------------------------------------------------
// Replica

void Replica::reset(const Schema& schema, const MonitorSpec& spec) {
  schema_ = schema;
  spec_ = spec;
  tables_.clear();
  for (const auto& [t, cols] : spec_) {
    tables_[t];
  }
  ++changes_;
}

const Table& Replica::table(const std::string& name) const {
  static const Table kEmpty;
  auto it = tables_.find(name);
  return it == tables_.end() ? kEmpty : it->second;
}

const Row* Replica::row(const std::string& table, const std::string& uuid) const {
  const Table& t = this->table(table);
  auto it = t.find(uuid);
  return it == t.end() ? nullptr : &it->second;
}

Json Replica::get(const std::string& table, const Row& row, const std::string& column) const {
  auto it = row.find(column);
  if (it != row.end()) {
    return it->second;
  }
  const ColumnType* ct = schema_.column(table, column);
  return ct != nullptr ? defaultDatum(*ct) : Json();
}

Row Replica::normalizedRow(const std::string& table, const Json& row, bool fill_defaults) const {
  if (!row.is_object()) {
    throw std::runtime_error("row is not an object: " + row.dump());
  }
  Row out;
  if (fill_defaults) {
    auto spec = spec_.find(table);
    if (spec != spec_.end()) {
      for (const auto& c : spec->second) {
        if (const ColumnType* ct = schema_.column(table, c)) {
          out[c] = defaultDatum(*ct);
        }
      }
    }
  }
  for (const auto& [c, v] : row.items()) {
    const ColumnType* ct = schema_.column(table, c);
    out[c] = ct != nullptr ? normalize(*ct, v) : v;
  }
  return out;
}

void Replica::applyUpdate(const Json& table_updates) {
  if (!table_updates.is_object()) {
    throw std::runtime_error("table-updates is not an object");
  }
  for (const auto& [tname, rows] : table_updates.items()) {
    Table& t = tables_[tname];
    for (const auto& [uuid, ru] : rows.items()) {
      if (!ru.is_object()) {
        throw std::runtime_error("row-update is not an object");
      }
      auto nw = ru.find("new");
      if (nw == ru.end() || nw->is_null()) {
        t.erase(uuid);
        continue;
      }
      auto existing = t.find(uuid);
      if (existing == t.end()) {
        t[uuid] = normalizedRow(tname, *nw, true);
      } else {
        for (auto& [c, v] : normalizedRow(tname, *nw, false)) {
          existing->second[c] = std::move(v);
        }
      }
    }
  }
  ++changes_;
}

void Replica::applyUpdate2(const Json& table_updates2) {
  if (!table_updates2.is_object()) {
    throw std::runtime_error("table-updates2 is not an object");
  }
  for (const auto& [tname, rows] : table_updates2.items()) {
    Table& t = tables_[tname];
    for (const auto& [uuid, ru] : rows.items()) {
      if (!ru.is_object() || ru.size() != 1) {
        throw std::runtime_error("row-update2 must have exactly one member");
      }
      const std::string kind = ru.begin().key();
      const Json& body = ru.begin().value();
      if (kind == "initial" || kind == "insert") {
        t[uuid] = normalizedRow(tname, body, true);
      } else if (kind == "delete") {
        t.erase(uuid);
      } else if (kind == "modify") {
        auto existing = t.find(uuid);
        if (existing == t.end()) {
          throw std::runtime_error("modify of unknown row " + tname + " " + uuid);
        }
        if (!body.is_object()) {
          throw std::runtime_error("modify body is not an object");
        }
        for (const auto& [c, diff] : body.items()) {
          const ColumnType* ct = schema_.column(tname, c);
          if (ct == nullptr) {
            existing->second[c] = diff;
            continue;
          }
          auto old = existing->second.find(c);
          Json base = old != existing->second.end() ? old->second : defaultDatum(*ct);
          existing->second[c] = applyDiff(*ct, base, diff);
        }
      } else {
        throw std::runtime_error("unknown row-update2 kind '" + kind + "'");
      }
    }
  }
  ++changes_;
}

// ---------------------------------------------------------------------------------------------
// Client

std::shared_ptr<Client> Client::create(boost::asio::io_context& io, jsonrpc::Endpoint endpoint,
                                       MonitorSpec spec, jsonrpc::SessionOptions options,
                                       std::string database) {
  return std::shared_ptr<Client>(
      new Client(io, std::move(endpoint), std::move(spec), options, std::move(database)));
}

Client::Client(boost::asio::io_context& io, jsonrpc::Endpoint endpoint, MonitorSpec spec,
               jsonrpc::SessionOptions options, std::string database)
    : session_(jsonrpc::Session::create(io, std::move(endpoint), options)),
      wanted_(std::move(spec)),
      database_(std::move(database)) {}

void Client::start() {
  std::weak_ptr<Client> weak = shared_from_this();
  session_->on_connected = [weak] {
    if (auto self = weak.lock()) {
      self->onConnected();
    }
  };
  session_->on_disconnected = [weak](const std::string& why) {
    if (auto self = weak.lock()) {
      self->synced_ = false;
      if (self->on_down) {
        self->on_down(why);
      }
    }
  };
  session_->on_notification = [weak](const Json& m) {
    if (auto self = weak.lock()) {
      self->onNotification(m);
    }
  };
  session_->start();
}

void Client::stop() {
  synced_ = false;
  on_synced = nullptr;
  on_change = nullptr;
  on_down = nullptr;
  session_->stop();
}

void Client::protocolError(const std::string& why) {
  log::warn("ovsdb", "{}: {}", session_->endpoint().text, why);
  synced_ = false;
  session_->reconnect(why);
}

void Client::onConnected() {
  synced_ = false;
  std::weak_ptr<Client> weak = shared_from_this();
  session_->request("get_schema", Json::array({database_}), [weak](jsonrpc::Reply r) {
    auto self = weak.lock();
    if (!self || r.lost) {
      return;
    }
    if (!r.ok) {
      self->protocolError("get_schema failed: " + r.error.dump());
      return;
    }
    try {
      self->schema_ = Schema::parse(r.result);
    } catch (const std::exception& e) {
      self->protocolError(std::string("bad schema: ") + e.what());
      return;
    }
    self->spec_.clear();
    for (const auto& [table, cols] : self->wanted_) {
      auto t = self->schema_.tables.find(table);
      if (t == self->schema_.tables.end()) {
        log::debug("ovsdb", "table {} not in schema {}; not monitored", table,
                   self->schema_.version);
        continue;
      }
      auto& out = self->spec_[table];
      for (const auto& c : cols) {
        if (t->second.count(c) != 0) {
          out.push_back(c);
        }
      }
    }
    self->sendMonitor(true);
  });
}

void Client::sendMonitor(bool conditional) {
  monitor_id_ = fmt::format("nc-{}", ++monitor_seq_);
  Json requests = Json::object();
  for (const auto& [table, cols] : spec_) {
    Json req = {{"columns", cols}};
    requests[table] = conditional ? Json::array({req}) : req;
  }
  std::weak_ptr<Client> weak = shared_from_this();
  const std::string id = monitor_id_;
  session_->request(conditional ? "monitor_cond" : "monitor",
                    Json::array({database_, id, requests}),
                    [weak, conditional, id](jsonrpc::Reply r) {
                      auto self = weak.lock();
                      if (!self || r.lost || id != self->monitor_id_) {
                        return;
                      }
                      if (!r.ok) {
                        if (conditional) {
                          log::info("ovsdb", "monitor_cond refused ({}); falling back to monitor",
                                    r.error.dump());
                          self->sendMonitor(false);
                        } else {
                          self->protocolError("monitor failed: " + r.error.dump());
                        }
                        return;
                      }
                      try {
                        self->replica_.reset(self->schema_, self->spec_);
                        if (conditional) {
                          self->replica_.applyUpdate2(r.result);
                        } else {
                          self->replica_.applyUpdate(r.result);
                        }
                      } catch (const std::exception& e) {
                        self->protocolError(std::string("bad monitor reply: ") + e.what());
                        return;
                      }
                      self->monitor_method_ = conditional ? "monitor_cond" : "monitor";
                      self->synced_ = true;
                      if (self->on_synced) {
                        self->on_synced();
                      }
                    });
}

void Client::onNotification(const Json& m) {
  const std::string method = m.value("method", "");
  if (method != "update" && method != "update2") {
    return;  // "locked", "stolen", ...: not used
  }
  const Json& params = m.value("params", Json::array());
  if (!params.is_array() || params.size() != 2) {
    protocolError("malformed " + method + " notification");
    return;
  }
  if (!params[0].is_string() || params[0] != monitor_id_ || !synced_) {
    return;  // an old monitor's, or before the initial reply
  }
  try {
    if (method == "update2") {
      replica_.applyUpdate2(params[1]);
    } else {
      replica_.applyUpdate(params[1]);
    }
  } catch (const std::exception& e) {
    protocolError(std::string("bad ") + method + ": " + e.what());
    return;
  }
  if (on_change) {
    on_change();
  }
}

bool Client::transact(Json ops, std::function<void(TxnResult)> handler) {
  if (!synced_) {
    return false;
  }
  Json params = Json::array({database_});
  for (const auto& op : ops) {
    params.push_back(op);
  }
  return session_->request("transact", std::move(params),
                           [ops = std::move(ops), handler = std::move(handler)](jsonrpc::Reply r) {
                             handler(decodeTxnReply(ops, r));
                           });
}

TxnResult decodeTxnReply(const Json& ops, const jsonrpc::Reply& reply) {
  TxnResult t;
  t.result = reply.result;
  if (reply.lost) {
    t.status = TxnResult::Status::Lost;
    t.error = "connection lost before the transaction reply";
    return t;
  }
  if (!reply.ok) {
    t.status = TxnResult::Status::Error;
    t.error = reply.error.is_string() ? reply.error.get<std::string>() : reply.error.dump();
    return t;
  }
  if (!reply.result.is_array()) {
    t.status = TxnResult::Status::Error;
    t.error = "transaction result is not an array";
    return t;
  }
  t.status = TxnResult::Status::Ok;
  for (size_t i = 0; i < reply.result.size(); ++i) {
    const Json& r = reply.result[i];
    if (!r.is_object() || !r.contains("error")) {
      continue;
    }
    const std::string err = r["error"].is_string() ? r["error"].get<std::string>() : "error";
    const std::string details = r.value("details", "");
    const bool is_wait = i < ops.size() && ops[i].value("op", "") == "wait";
    if (is_wait && err == "timed out") {
      t.status = TxnResult::Status::Conflict;
      t.error = fmt::format("op {} (wait on {}) failed: the row changed since it was read", i,
                            ops[i].value("table", "?"));
      return t;
    }
    t.status = TxnResult::Status::Error;
    t.error = fmt::format("op {}{}: {}{}", i,
                          i < ops.size() ? " (" + ops[i].value("op", "?") + ")" : " (commit)", err,
                          details.empty() ? "" : " (" + details + ")");
    return t;
  }
  return t;
}

}  // namespace nc::ovsctl::ovsdb
