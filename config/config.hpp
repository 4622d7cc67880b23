#pragma once
// net-collector configuration: the structs every component reads, their defaults, and loading from
// one YAML file with validation.
//
// Every key has a default (the in-class initialisers below), a documented meaning (docs/config.md)
// and a validation rule (config.cpp). Unknown keys are errors. Each error names the file, line and
// column, and the key path, e.g.
//   /etc/net-collector.yaml:4:13: collector.listen[1].port: must be 0..65535 (got 70000)
// Loading collects all errors instead of stopping at the first one. This module opens no sockets.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/profile/definition.hpp"

namespace nc::config {

struct ListenAddr {
  std::string address = "0.0.0.0";
  uint16_t port = 2055;
  bool operator==(const ListenAddr&) const = default;
};

struct ExporterOverride {
  std::string network;         // exporter address or CIDR this applies to
  uint32_t sampling_rate = 0;  // 0 = use what the exporter says
  std::string interfaces;      // "auto", "snmp", "ifindex", "ofport"
  std::string kind;            // "auto", "ovs", "router": OVS scales its IPFIX counters itself,
                               // numbers v5 interfaces by OpenFlow port and sFlow/IPFIX by ifindex
  bool operator==(const ExporterOverride&) const = default;
};

struct CollectorConfig {
  std::vector<ListenAddr> listen = {{"0.0.0.0", 2055}, {"0.0.0.0", 4739}, {"0.0.0.0", 6343}};
  uint32_t threads = 0;                   // 0 = auto (number of cores)
  uint64_t rcvbuf = 32ull * 1024 * 1024;  // SO_RCVBUF per socket, bytes
  std::vector<std::string> allow;         // exporter networks (CIDR); empty = any
  std::string templates = "";             // template cache file; "" = <store.path>/templates.bin
  std::vector<ExporterOverride> exporters;
  bool operator==(const CollectorConfig&) const = default;
};

struct RetentionConfig {
  uint64_t max_age_ms = 30ull * 86400 * 1000;
  uint64_t max_size = 50ull * 1024 * 1024 * 1024;
  bool operator==(const RetentionConfig&) const = default;
};

struct StoreConfig {
  std::string path = "/var/lib/net-collector/flows";
  uint64_t rotate_ms = 60 * 1000;
  RetentionConfig retention;
  std::string compression = "zstd";    // zstd | lz4 | none
  uint64_t queue_size = 128ull << 20;  // decoded rows waiting for the writer, bytes
  bool operator==(const StoreConfig&) const = default;
};

struct OvsdbConfig {
  bool enabled = true;
  std::string endpoint = "unix:/run/openvswitch/db.sock";  // unix:PATH | tcp:HOST:PORT
  bool operator==(const OvsdbConfig&) const = default;
};

struct SflowExport {
  uint32_t sampling = 64;  // 1-in-N packets
  uint32_t polling = 10;   // counter polling interval, seconds (0 = off)
  uint32_t header = 128;   // bytes of each sampled packet
  std::string agent;       // interface whose address is the agent address ("" = OVS picks)
  std::vector<std::string> targets;  // host:port; empty = this daemon's sFlow listener
  bool operator==(const SflowExport&) const = default;
};

struct IpfixExport {
  uint32_t sampling = 64;
  uint32_t obs_domain_id = 0;
  uint32_t obs_point_id = 0;
  uint32_t cache_active_timeout = 60;       // seconds
  bool cache_active_timeout_given = false;  // set in the file (else correlation may lower it)
  uint32_t cache_max_flows = 4096;          // never 0 by default: 0 disables OVS's flow cache
  std::vector<std::string> targets;
  // Per-flow IPFIX: also own a Flow_Sample_Collector_Set {id, bridge, IPFIX row with the same
  // targets and cache settings}, the target of OpenFlow sample(collector_set_id=ID) actions.
  // Unset = none.
  std::optional<uint32_t> collector_set_id;
  bool operator==(const IpfixExport&) const = default;
};

struct NetflowExport {
  uint32_t active_timeout = 60;       // seconds
  bool active_timeout_given = false;  // set in the file (else correlation may lower it)
  std::optional<uint32_t> engine_type;
  std::optional<uint32_t> engine_id;
  bool add_id_to_interface = false;
  std::vector<std::string> targets;
  bool operator==(const NetflowExport&) const = default;
};

struct BridgeRule {
  std::vector<std::string> match = {"*"};  // bridge names or glob patterns
  bool takeover = false;                   // take over export rows someone else created
  std::optional<SflowExport> sflow;
  std::optional<IpfixExport> ipfix;
  std::optional<NetflowExport> netflow;
  bool operator==(const BridgeRule&) const = default;
};

// nfsen-style profiles of channels kept as RRD time series (docs/config.md, collector/profile/).
// The declared profiles are typed and validated here with the same rules as the runtime ones
// (collector/profile/definition.hpp).
struct ProfilesConfig {
  std::string path = "/var/lib/net-collector/profiles";  // RRD files and runtime profiles
  uint64_t step_ms = 10 * 1000;                          // RRD step (whole seconds)
  uint64_t delay_ms = 8 * 1000;      // a step is written this long after it ends
  uint64_t max_span_ms = 20 * 1000;  // a flow counts over at most its last max_span
  std::vector<profile::ProfileDef> declared;
  bool operator==(const ProfilesConfig&) const = default;
};

// Traffic-spike detection on this host's Open vSwitch ports and addresses (docs/config.md).
struct CorrelationConfig {
  bool enabled = false;
  uint64_t step_ms = 10 * 1000;        // detection step
  uint64_t warmup_ms = 5 * 60 * 1000;  // learning only, per subject
  double sensitivity = 4.0;            // deviations above the baseline that start an event
  uint64_t min_bps = 1'000'000;        // bits/s below which nothing fires
  uint64_t min_pps = 100;              // packets/s below which nothing fires
  uint64_t cooldown_ms = 30 * 1000;    // quiet time that ends an event
  // Active timeout given to the NetFlow/IPFIX exports the daemon provisions while correlation
  // is on, where the bridge rule sets none (a flow is reported at least this often).
  uint32_t active_timeout = 10;                  // seconds
  std::string webhook;                           // http://host:port/path, "" = none
  uint64_t retention_ms = 30ull * 86400 * 1000;  // event log
  bool operator==(const CorrelationConfig&) const = default;
};

struct ControlConfig {
  std::string socket = "/run/net-collector/control.sock";
  bool operator==(const ControlConfig&) const = default;
};

struct HttpConfig {
  bool enabled = false;
  std::string listen = "127.0.0.1:8080";
  std::string token;       // "" = read-only (GET/HEAD only)
  std::string token_file;  // read at start instead of `token`
  bool operator==(const HttpConfig&) const = default;
};

struct LogConfig {
  std::string level = "info";
  bool operator==(const LogConfig&) const = default;
};

struct Config {
  CollectorConfig collector;
  StoreConfig store;
  OvsdbConfig ovsdb;
  std::vector<BridgeRule> bridges;
  ProfilesConfig profiles;
  CorrelationConfig correlation;
  ControlConfig control;
  HttpConfig http;
  LogConfig log;
  bool operator==(const Config&) const = default;
};

// The bridge rules as the daemon provisions them: while correlation is on, NetFlow and IPFIX
// exports whose rule sets no active timeout get correlation.active_timeout (so flows reach the
// spike detector within it). `net-collector provision` uses the same rules.
std::vector<BridgeRule> effectiveBridgeRules(const Config& c);

struct ConfigError {
  std::string file;
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based
  std::string path;  // "collector.listen[1].port"
  std::string message;
  // "file:line:col: path: message"
  std::string toString() const;
};

struct LoadResult {
  Config config;
  std::vector<ConfigError> errors;
  bool ok() const { return errors.empty(); }
};

// Loads and validates `path`. A missing or unreadable file is one error.
LoadResult loadFile(const std::string& path);
// Same for text in memory; `name` is used as the file name in errors.
LoadResult loadString(std::string_view yaml, const std::string& name);
// The effective configuration (defaults filled in) as YAML that loadString() accepts.
std::string dump(const Config& config);
// Profiles as a YAML sequence in the form of `profiles.declared` (runtime profiles in dumps).
std::string dumpProfiles(const std::vector<profile::ProfileDef>& profiles);

}  // namespace nc::config
