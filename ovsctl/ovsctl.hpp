#pragma once
// nc_ovsctl: provisions NetFlow, sFlow and IPFIX exports on Open vSwitch bridges through OVSDB
// (RFC 7047), and keeps them provisioned. The one header the daemon and the CLI include.
//
// Model. Desired state = the config's bridge rules applied to the bridges that exist (a bridge
// takes the FIRST rule whose `match` names or globs it); actual state = a replica of OVSDB's
// Bridge/sFlow/IPFIX/NetFlow/Flow_Sample_Collector_Set rows (plus Open_vSwitch/Port/Interface,
// monitored for later use). The difference is a Plan: per bridge, per protocol, an action old ->
// new, applied as ONE transaction guarded by `wait` ops on every row and column the plan read; if
// any of them changed in between (a conflict) nothing is written and the plan is recomputed from
// the fresh replica.
//
// Ownership. Rows this daemon creates carry external_ids {net-collector-owner=<owner_id>}. Rows
// without that tag (or with another owner id) are "foreign": left alone and reported, unless the
// matching rule says `takeover: true`, in which case they are updated in place and tagged. A
// protocol or bridge dropped from the config loses only its owned rows. Exports stay in place
// when the daemon stops (remove them with removeOwned()).
//
// Layers below (not needed to use this header): ovsctl/jsonrpc (framing, echo, backoff),
// ovsctl/ovsdb (monitor + replica + transact), ovsctl/provision (plan computation).
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collector/metrics/stats.hpp"
#include "config/config.hpp"

namespace nc::ovsctl {

// external_ids key marking rows this daemon owns; the value is the owner id.
inline constexpr const char* kOwnerKey = "net-collector-owner";

// The daemon's own listeners ("127.0.0.1:6343", "[::1]:4739"), used for a rule without targets.
struct Target {
  std::string sflow;
  std::string ipfix;
  std::string netflow;
};
// Target from the collector's listen addresses: ports 6343/4739/2055 pick sFlow/IPFIX/NetFlow,
// others fill whatever is still empty; wildcard addresses become loopback.
Target targetFromListeners(const config::CollectorConfig& collector);

// The owner tag the daemon and the CLI put on rows they create: "net-collector@<hostname>".
std::string defaultOwnerId();

// IpfixFlow = per-flow IPFIX (ipfix.collector_set_id): a Flow_Sample_Collector_Set row {id,
// bridge, ipfix -> an IPFIX row of its own} that OpenFlow sample(collector_set_id=ID) actions
// export through. Its IPFIX row is referenced by the set, not by the bridge; a set with the same id
// on the same bridge made by someone else is foreign (takeover: true updates it in place and tags
// it and its IPFIX row). Remove deletes the set (its IPFIX row goes with it).
enum class Protocol { Sflow, Ipfix, Netflow, IpfixFlow };
const char* toString(Protocol p);  // "sflow", "ipfix", "netflow", "ipfix_flow"

enum class Action {
  Ok,        // owned (or taken over) row matches the config
  Create,    // no row: insert one (tagged) and point the bridge at it
  Update,    // owned row differs: update the changed columns in place (same row uuid)
  TakeOver,  // foreign row, rule has takeover: true: update in place and tag it as ours
  Refresh,   // owned IPFIX row whose templates the collector lacks: re-create it so OVS re-sends
  Remove,    // owned row no longer wanted: clear the bridge's reference (OVSDB deletes the row);
             // an owned collector set (ipfix_flow) is deleted
  Foreign,   // foreign row where the config wants an export: left alone, reported
  Unmanaged  // foreign row, config wants nothing here: left alone
};
const char* toString(Action a);  // "ok", "create", "update", "takeover", "refresh", ...

struct ProtocolPlan {
  Protocol protocol = Protocol::Sflow;
  Action action = Action::Ok;
  std::string row_uuid;              // current row, "" if none
  std::string row_owner;             // its net-collector-owner tag, "" if none
  nlohmann::json actual;             // current columns (plain JSON), null if no row
  nlohmann::json desired;            // wanted columns (plain JSON), null if not wanted
  std::vector<std::string> changes;  // "sampling: 64 -> 128"
  std::string note;                  // why, for Foreign/Refresh/...
};

struct BridgePlan {
  std::string name;
  std::string uuid;
  int rule = -1;  // index into the bridge rules, -1 = no rule matches
  std::vector<ProtocolPlan> protocols;
};

struct Plan {
  std::string owner_id;
  std::string endpoint;
  std::vector<BridgePlan> bridges;
  std::vector<std::string> errors;    // when not empty nothing is written (transaction is [])
  std::vector<std::string> warnings;  // e.g. a bridge matched by several rules
  nlohmann::json transaction = nlohmann::json::array();  // the ops apply() sends, without db name
  // Number of Create/Update/TakeOver/Refresh/Remove actions.
  size_t changeCount() const;
  bool ok() const { return errors.empty(); }
};

// Human text, one line per bridge and protocol:
//   br0  sflow    update    8f1c2a4e  sampling: 64 -> 128
std::string formatPlan(const Plan& plan);
// {"owner","endpoint","ok","changes","errors","warnings","bridges":[{"name","uuid","rule",
//  "protocols":{"sflow":{"action","row","owner","actual","desired","changes","note"},...}}],
// (a second entry of the same protocol on one bridge, e.g. two stale ipfix_flow sets to remove,
// is keyed "ipfix_flow#<row uuid prefix>")
//  "transaction":[...]}
nlohmann::json toJson(const Plan& plan);

struct ApplyResult {
  Plan plan;           // the plan that was applied last (after re-planning on conflicts)
  bool ok = false;     // applied (or nothing to do)
  size_t changes = 0;  // changes written
  int attempts = 0;    // transactions sent
  int conflicts = 0;   // attempts that hit a changed row and were re-planned
  std::string error;   // why not ok
};
nlohmann::json toJson(const ApplyResult& result);

struct OneShotOptions {
  std::chrono::milliseconds timeout{5000};  // whole operation, including connect
  int max_attempts = 5;                     // transactions before giving up on conflicts
};

// One-shot helpers for `net-collector provision plan|apply|remove`: connect to
// config.ovsdb.endpoint, read the replica, compute, (apply), disconnect. They run their own
// io_context and block the caller up to options.timeout. They throw std::runtime_error with an
// operator-readable message when OVSDB is unreachable or misbehaves; plan errors (e.g. an invalid
// target) are not exceptions: they are in Plan::errors and nothing is written.
Plan plan(const config::Config& config, const Target& target, const std::string& owner_id,
          const OneShotOptions& options = {});
ApplyResult apply(const config::Config& config, const Target& target, const std::string& owner_id,
                  const OneShotOptions& options = {});
// Removes every export row owned by owner_id (from all bridges), nothing else.
ApplyResult removeOwned(const config::OvsdbConfig& ovsdb, const std::string& owner_id,
                        const OneShotOptions& options = {});

// Asked once per bridge per Provisioner start, for an owned IPFIX row found already in place:
// does the collector hold the templates of this observation domain? false -> the row is
// re-created so OVS sends its templates now instead of within 600 s.
using IpfixTemplatesKnownFn =
    std::function<bool(const std::string& bridge, uint32_t obs_domain_id)>;

// The provisioner's counters, declared once (collector/metrics/stats.hpp): its status JSON and
// Prometheus net_collector_ovsdb_*. X(TYPE, ctype, member, "key", UNIT, "column", "help")
#define NC_PROVISION_STATS(X)                                                                    \
  X(Counter, uint64_t, connects, "connects", None, "", "OVSDB connections made")                 \
  X(Counter, uint64_t, disconnects, "disconnects", None, "", "OVSDB connections lost")           \
  X(Counter, uint64_t, connect_failures, "connect_failures", None, "",                           \
    "OVSDB connection attempts that failed")                                                     \
  X(Counter, uint64_t, echo_answered, "echo_answered", None, "", "OVSDB echo requests answered") \
  X(Counter, uint64_t, probes_sent, "probes_sent", None, "", "OVSDB echo probes sent")           \
  X(Counter, uint64_t, reconciles, "reconciles", None, "", "Provisioning passes")                \
  X(Counter, uint64_t, transactions, "transactions", None, "",                                   \
    "Provisioning transactions committed")                                                       \
  X(Counter, uint64_t, conflicts, "conflicts", None, "",                                         \
    "Provisioning transactions refused because OVSDB changed meanwhile (retried)")               \
  X(Counter, uint64_t, txn_errors, NC_KEY_PROM("txn_errors", "transaction_errors"), None, "",    \
    "Provisioning transactions that failed")

struct ProvisionStats {
  NC_STATS_DEFINE(ProvisionStats, NC_PROVISION_STATS)
};

// The reconcile loop for the daemon. Runs entirely on the given io_context (the control-plane
// thread): connects, monitors, and after every change (debounced 100 ms) computes the plan and
// applies it; reconnects with backoff (0.5 s -> 8 s) and resyncs from scratch. Never blocks.
// start/stop/reconfigure may be called from any thread (they post to the io_context); status()
// is thread-safe. Destroying the Provisioner stops it.
class Provisioner {
 public:
  Provisioner(boost::asio::io_context& io, const config::OvsdbConfig& ovsdb,
              std::vector<config::BridgeRule> rules, Target target, std::string owner_id);
  ~Provisioner();
  Provisioner(const Provisioner&) = delete;
  Provisioner& operator=(const Provisioner&) = delete;

  // Optional; set before start(). Called on the io_context thread.
  void setIpfixTemplatesKnown(IpfixTemplatesKnownFn fn);
  void start();
  // Disconnects; rows stay as they are.
  void stop();
  // New bridge rules (SIGHUP) and/or listeners; reconciles right away.
  void reconfigure(std::vector<config::BridgeRule> rules);
  void reconfigure(std::vector<config::BridgeRule> rules, Target target);
  // Snapshot, refreshed on every event and every 250 ms:
  // {"owner","endpoint","state":"connected|connecting|backoff|stopped","synced","last_error",
  //  "monitor","retry_in_ms","connects","disconnects","last_reconcile" (ISO-8601 or null),
  //  "reconciles","transactions","conflicts","txn_errors","last_txn_error","pending_changes",
  //  "errors":[...],"warnings":[...],"bridges":[ toJson(Plan)["bridges"] ]}
  nlohmann::json status() const;
  // The counters of the same snapshot (thread-safe).
  ProvisionStats stats() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace nc::ovsctl
