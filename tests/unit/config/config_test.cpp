// Table-driven tests of config loading: defaults, every validation rule, error positions.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/support.hpp"

namespace nc::config {
namespace {

TEST(Config, EmptyFileGivesDefaults) {
  auto res = loadString("", "empty.yaml");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res.config, Config{});
  ASSERT_EQ(res.config.collector.listen.size(), 3u);
  EXPECT_EQ(res.config.collector.listen[0].port, 2055);
  EXPECT_EQ(res.config.collector.listen[1].port, 4739);
  EXPECT_EQ(res.config.collector.listen[2].port, 6343);
  EXPECT_EQ(res.config.collector.rcvbuf, 32u * 1024 * 1024);
  EXPECT_EQ(res.config.store.rotate_ms, 60000u);
}

TEST(Config, StartingShapeParses) {
  auto res = loadString(R"(
collector:   {listen: [{address: 0.0.0.0, port: 2055}, {address: "::", port: 4739}, "127.0.0.1:6343", 9995],
              threads: auto, rcvbuf: 16MiB, allow: [10.0.0.0/8, "2001:db8::/32"]}
store:       {path: /tmp/flows, rotate: 30s, retention: {max_age: 7d, max_size: 10GiB}, queue: 256MiB}
ovsdb:       {endpoint: "tcp:127.0.0.1:6640"}
bridges:
  - match: "br-*"
    sflow: {sampling: 64, polling: 10}
    ipfix: {sampling: 128, cache_max_flows: 2048, targets: ["192.0.2.9:4739"]}
    netflow: {active_timeout: 2m, engine_id: 7}
profiles:
  - name: live
    channels: [{name: web, filter: "port 443"}]
correlation: {enabled: true, step: 5s, warmup: 2m, sensitivity: 3, min_bps: 10Mb/s, min_pps: 2k, cooldown: 20s, webhook: "http://127.0.0.1:9/hook"}
control:     {socket: /tmp/x.sock}
http:        {listen: "127.0.0.1:8080"}
)",
                        "shape.yaml");
  for (const auto& e : res.errors) {
    ADD_FAILURE() << e.toString();
  }
  const Config& c = res.config;
  ASSERT_EQ(c.collector.listen.size(), 4u);
  EXPECT_EQ(c.collector.listen[1].address, "::");
  EXPECT_EQ(c.collector.listen[2].address, "127.0.0.1");
  EXPECT_EQ(c.collector.listen[2].port, 6343);
  EXPECT_EQ(c.collector.listen[3].address, "0.0.0.0");
  EXPECT_EQ(c.collector.listen[3].port, 9995);
  EXPECT_EQ(c.collector.threads, 0u);
  EXPECT_EQ(c.collector.rcvbuf, 16u * 1024 * 1024);
  EXPECT_EQ(c.collector.allow.size(), 2u);
  EXPECT_EQ(c.store.rotate_ms, 30000u);
  EXPECT_EQ(c.store.retention.max_age_ms, 7ull * 86400 * 1000);
  EXPECT_EQ(c.store.retention.max_size, 10ull << 30);
  EXPECT_EQ(c.store.queue_size, 256ull << 20);
  EXPECT_EQ(c.ovsdb.endpoint, "tcp:127.0.0.1:6640");
  ASSERT_EQ(c.bridges.size(), 1u);
  EXPECT_EQ(c.bridges[0].match, std::vector<std::string>{"br-*"});
  ASSERT_TRUE(c.bridges[0].sflow);
  EXPECT_EQ(c.bridges[0].sflow->sampling, 64u);
  EXPECT_EQ(c.bridges[0].sflow->header, 128u);
  ASSERT_TRUE(c.bridges[0].ipfix);
  EXPECT_EQ(c.bridges[0].ipfix->cache_max_flows, 2048u);
  EXPECT_EQ(c.bridges[0].ipfix->cache_active_timeout, 60u);
  ASSERT_TRUE(c.bridges[0].netflow);
  EXPECT_EQ(c.bridges[0].netflow->active_timeout, 120u);
  EXPECT_EQ(c.bridges[0].netflow->engine_id, 7u);
  EXPECT_FALSE(c.bridges[0].netflow->engine_type);
  ASSERT_EQ(c.profiles.declared.size(), 1u);  // the bare-list form: declared profiles
  EXPECT_EQ(c.profiles.declared[0].channels[0].filter, "port 443");
  EXPECT_EQ(c.profiles.step_ms, 10000u);
  EXPECT_TRUE(c.correlation.enabled);
  EXPECT_EQ(c.correlation.step_ms, 5000u);
  EXPECT_EQ(c.correlation.warmup_ms, 120000u);
  EXPECT_EQ(c.correlation.sensitivity, 3.0);
  EXPECT_EQ(c.correlation.min_bps, 10'000'000u);
  EXPECT_EQ(c.correlation.min_pps, 2000u);
  EXPECT_EQ(c.correlation.cooldown_ms, 20000u);
  EXPECT_EQ(c.correlation.webhook, "http://127.0.0.1:9/hook");
  EXPECT_EQ(c.correlation.active_timeout, 10u);
  // A rule's timeouts are "given" only when the file sets them (correlation lowers the others).
  EXPECT_FALSE(c.bridges[0].ipfix->cache_active_timeout_given);
  EXPECT_TRUE(c.bridges[0].netflow->active_timeout_given);
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* expected;  // the whole first error line
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, ReportsFileLineColumnPathMessage) {
  const BadCase& c = GetParam();
  auto res = loadString(c.yaml, "f.yaml");
  ASSERT_FALSE(res.ok()) << c.name;
  EXPECT_EQ(res.errors.front().toString(), c.expected) << c.name;
}

const BadCase kBad[] = {
    {"unknown top key", "collecter: {}\n",
     "f.yaml:1:1: collecter: unknown key (known keys: collector, store, ovsdb, bridges, profiles, "
     "correlation, control, http, log)"},
    {"unknown nested key", "collector:\n  lisen: []\n",
     "f.yaml:2:3: collector.lisen: unknown key (known keys: listen, threads, rcvbuf, allow, "
     "templates, exporters)"},
    {"port range", "collector:\n  listen:\n    - {address: 0.0.0.0, port: 70000}\n",
     "f.yaml:3:32: collector.listen[0].port: must be 0..65535 (got 70000)"},
    {"port not a number", "collector:\n  listen: [{port: http}]\n",
     "f.yaml:2:19: collector.listen[0].port: must be a whole number 0..65535 (got 'http')"},
    {"bad address", "collector:\n  listen: [{address: 1.2.3, port: 1}]\n",
     "f.yaml:2:22: collector.listen[0].address: '1.2.3' is not an IPv4 or IPv6 address"},
    {"duplicate listener", "collector:\n  listen: [\"0.0.0.0:1\", \"0.0.0.0:1\"]\n",
     "f.yaml:2:25: collector.listen[1]: duplicate listener 0.0.0.0:1"},
    {"empty listen", "collector:\n  listen: []\n",
     "f.yaml:2:11: collector.listen: needs at least one listener"},
    {"threads", "collector: {threads: 0}\n",
     "f.yaml:1:22: collector.threads: must be 1..256 (got 0)"},
    {"rcvbuf unit", "collector: {rcvbuf: 32QB}\n",
     "f.yaml:1:21: collector.rcvbuf: '32QB' has an unknown size unit 'QB' (use B, KiB, MiB, GiB, "
     "TiB, k, M, G, T)"},
    {"rcvbuf small", "collector: {rcvbuf: 1k}\n",
     "f.yaml:1:21: collector.rcvbuf: must be 64.0 KiB..2.0 GiB (got 1k)"},
    {"allow cidr", "collector: {allow: [10.0.0.0/33]}\n",
     "f.yaml:1:21: collector.allow[0]: '10.0.0.0/33' has a bad prefix length (0..32)"},
    {"rotate", "store: {rotate: 5x}\n",
     "f.yaml:1:17: store.rotate: '5x' has an unknown duration unit 'x' (use ms, s, m, h, d, w)"},
    {"retention shorter than rotate", "store: {rotate: 1h, retention: {max_age: 10m}}\n",
     "f.yaml:1:42: store.retention.max_age: must be at least store.rotate (a segment would expire "
     "before it closes)"},
    {"compression", "store: {compression: gzip}\n",
     "f.yaml:1:22: store.compression: must be zstd, lz4 or none (got 'gzip')"},
    {"queue small", "store: {queue: 64k}\n",
     "f.yaml:1:16: store.queue: must be 1.0 MiB..64.0 GiB (got 64k)"},
    {"ovsdb endpoint", "ovsdb: {endpoint: /run/db.sock}\n",
     "f.yaml:1:19: ovsdb.endpoint: must be unix:PATH or tcp:HOST:PORT (got '/run/db.sock')"},
    {"sampling zero", "bridges:\n  - match: br0\n    sflow: {sampling: 0}\n",
     "f.yaml:3:23: bridges[0].sflow.sampling: must be 1..1073741824 (got 0)"},
    {"unknown bridge option", "bridges:\n  - match: br0\n    sflow: {samplin: 8}\n",
     "f.yaml:3:13: bridges[0].sflow.samplin: unknown key (known keys: sampling, polling, header, "
     "agent, targets)"},
    {"bad target", "bridges:\n  - match: br0\n    ipfix: {targets: [nohost]}\n",
     "f.yaml:3:23: bridges[0].ipfix.targets[0]: 'nohost' must look like HOST:PORT (IPv6 as "
     "[ADDR]:PORT)"},
    {"no export", "bridges:\n  - match: br0\n",
     "f.yaml:2:5: bridges[0]: declares no export: add sflow, ipfix and/or netflow"},
    {"cache_max_flows zero", "bridges:\n  - ipfix: {cache_max_flows: 0}\n",
     "f.yaml:2:30: bridges[0].ipfix.cache_max_flows: must be 1..4294967295 (got 0)"},
    {"collector_set_id range", "bridges:\n  - ipfix: {collector_set_id: 4294967296}\n",
     "f.yaml:2:31: bridges[0].ipfix.collector_set_id: must be 0..4294967295 (got 4294967296)"},
    {"collector_set_id negative", "bridges:\n  - ipfix: {collector_set_id: -1}\n",
     "f.yaml:2:31: bridges[0].ipfix.collector_set_id: must be a whole number 0..4294967295 (got "
     "'-1')"},
    {"collector_set_id outside ipfix", "bridges:\n  - sflow: {collector_set_id: 5}\n",
     "f.yaml:2:13: bridges[0].sflow.collector_set_id: unknown key (known keys: sampling, polling, "
     "header, agent, targets)"},
    {"bool", "ovsdb: {enabled: maybe}\n",
     "f.yaml:1:18: ovsdb.enabled: must be true or false (got 'maybe')"},
    {"log level", "log: {level: loud}\n",
     "f.yaml:1:14: log.level: must be debug, info, warning or error (got 'loud')"},
    {"duplicate key", "log: {level: info}\nlog: {level: debug}\n",
     "f.yaml:2:1: log: duplicate key (it is already set above)"},
    {"yaml syntax", "collector: {listen: [\n",
     "f.yaml:2:1: (top): YAML syntax error: end of sequence flow not found"},
    {"not a map", "collector: 5\n", "f.yaml:1:12: collector: must be a mapping (key: value)"},
    {"duplicate profile", "profiles:\n  - {name: a}\n  - {name: a}\n",
     "f.yaml:3:12: profiles[1].name: duplicate profile name 'a'"},
    {"profiles unknown key", "profiles: {stepp: 10s}\n",
     "f.yaml:1:12: profiles.stepp: unknown key (known keys: path, step, delay, max_span, "
     "declared)"},
    {"profiles step fraction", "profiles: {step: 1500ms}\n",
     "f.yaml:1:18: profiles.step: must be whole seconds"},
    {"profiles step range", "profiles: {step: 2h}\n",
     "f.yaml:1:18: profiles.step: must be 1s..1h (got 2h)"},
    {"profile bad filter",
     "profiles:\n  declared:\n    - name: p\n      channels: [{name: c, filter: \"port 99999\"}]\n",
     "f.yaml:4:42: profiles.declared[0].channels[0].filter: bad filter: port out of range "
     "0..65535 (got 99999) (in 'port 99999')"},
    {"profile bad filter plain",
     "profiles:\n  declared:\n    - name: p\n      channels:\n        - name: c\n"
     "          filter: proto tcp and bogus\n",
     "f.yaml:6:33: profiles.declared[0].channels[0].filter: bad filter: unknown filter keyword "
     "'bogus' (see "
     "`net-collector flows --help` or `net-collector fields`) (in 'proto tcp and bogus')"},
    {"profile bad colour",
     "profiles:\n  declared:\n    - name: p\n      channels: [{name: c, colour: \"#12345\"}]\n",
     "f.yaml:4:36: profiles.declared[0].channels[0].colour: '#12345' is not a colour: use "
     "'#rrggbb' (six hex digits)"},
    {"profile bad name", "profiles:\n  declared:\n    - name: \"a b\"\n",
     "f.yaml:3:13: profiles.declared[0].name: 'a b' may only contain letters, digits, '_' and "
     "'-'"},
    {"channel bad name",
     "profiles:\n  declared:\n    - name: p\n      channels: [{name: \"x/y\"}]\n",
     "f.yaml:4:25: profiles.declared[0].channels[0].name: 'x/y' may only contain letters, "
     "digits, '_' and '-'"},
    {"channel bad sign",
     "profiles:\n  declared:\n    - name: p\n      channels: [{name: c, sign: \"*\"}]\n",
     "f.yaml:4:34: profiles.declared[0].channels[0].sign: must be '+' or '-' (got '*')"},
    {"channel unknown key",
     "profiles:\n  declared:\n    - name: p\n      channels: [{name: c, color: red}]\n",
     "f.yaml:4:28: profiles.declared[0].channels[0].color: unknown key (known keys: name, "
     "filter, colour, sign, order, sources)"},
    {"channel duplicate",
     "profiles:\n  declared:\n    - name: p\n      channels: [{name: c}, {name: c}]\n",
     "f.yaml:4:36: profiles.declared[0].channels[1].name: duplicate channel name 'c'"},
    {"channel bad source",
     "profiles:\n  declared:\n    - name: p\n      channels: [{name: c, sources: [10.0.0.0/40]}]\n",
     "f.yaml:4:38: profiles.declared[0].channels[0].sources[0]: '10.0.0.0/40' has a bad prefix "
     "length (0..32)"},
    {"history without end",
     "profiles:\n  declared:\n    - {name: h, type: history, start: \"2026-01-01T00:00:00Z\"}\n",
     "f.yaml:3:7: profiles.declared[0].end: a history profile needs start and end"},
    {"relative start", "profiles:\n  declared:\n    - {name: h, start: -1d}\n",
     "f.yaml:3:24: profiles.declared[0].start: must be an absolute time such as "
     "\"2026-11-01T00:00:00Z\" or \"2026-11-01 08:00\" (got '-1d')"},
    {"bad type", "profiles:\n  declared:\n    - {name: h, type: live}\n",
     "f.yaml:3:23: profiles.declared[0].type: must be continuous, history or shadow (got 'live')"},
    {"shadow with maxsize",
     "profiles:\n  declared:\n    - {name: s, type: shadow, maxsize: 1GiB}\n",
     "f.yaml:3:40: profiles.declared[0].maxsize: a shadow profile owns no flow data: no expire or "
     "maxsize (as in nfsen)"},
};

INSTANTIATE_TEST_SUITE_P(All, ConfigErrors, ::testing::ValuesIn(kBad), [](const auto& info) {
  std::string n = info.param.name;
  for (char& ch : n) {
    if (!isalnum(static_cast<unsigned char>(ch))) {
      ch = '_';
    }
  }
  return n;
});

TEST(Config, ReportsAllErrorsSortedByPosition) {
  auto res = loadString("store: {rotate: 0s}\ncollector: {threads: 999, bogus: 1}\n", "f.yaml");
  ASSERT_EQ(res.errors.size(), 3u);
  EXPECT_EQ(res.errors[0].line, 1);
  EXPECT_EQ(res.errors[1].line, 2);
  EXPECT_EQ(res.errors[2].line, 2);
  EXPECT_LT(res.errors[1].column, res.errors[2].column);
}

// Listen addresses are validated as check-config runs, not when the daemon binds: literals only
// (host names are not resolved), each broken entry reported once, each duplicate once, port 0 =
// any.
TEST(Config, ListenAddressesCheckedOnce) {
  auto errors = [](const std::string& yaml) {
    std::vector<std::string> out;
    for (const auto& e : loadString(yaml, "f.yaml").errors) {
      out.push_back(e.toString());
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(errors("collector: {listen: [\"1.2.3.4.5:2055\"]}\n"),
            V{"f.yaml:1:22: collector.listen[0]: '1.2.3.4.5' is not an IPv4 or IPv6 address "
              "(host names are not resolved; use e.g. 0.0.0.0:2055 or [::]:2055)"});
  EXPECT_EQ(errors("collector: {listen: [\"localhost:2055\"]}\n"),
            V{"f.yaml:1:22: collector.listen[0]: 'localhost' is not an IPv4 or IPv6 address "
              "(host names are not resolved; use e.g. 0.0.0.0:2055 or [::]:2055)"});
  EXPECT_EQ(errors("collector: {listen: [\"[::1:2055\"]}\n"),
            V{"f.yaml:1:22: collector.listen[0]: '[::1:2055' must look like [ADDR]:PORT"});
  // Only the port error: the broken entry is not also a duplicate of the default 0.0.0.0:2055.
  EXPECT_EQ(errors("collector: {listen: [{port: 70000}, {address: 0.0.0.0, port: 2055}]}\n"),
            V{"f.yaml:1:29: collector.listen[0].port: must be 0..65535 (got 70000)"});
  EXPECT_EQ(errors("collector: {listen: [{address: localhost, port: 2055}, 2055]}\n"),
            V{"f.yaml:1:32: collector.listen[0].address: 'localhost' is not an IPv4 or IPv6 "
              "address"});
  // Each duplicate once.
  EXPECT_EQ(errors("collector: {listen: [2055, 2055, 2055]}\n"),
            (V{"f.yaml:1:28: collector.listen[1]: duplicate listener 0.0.0.0:2055",
               "f.yaml:1:34: collector.listen[2]: duplicate listener 0.0.0.0:2055"}));
  // Port 0 binds any free port (tests rely on it); literals of both families are fine.
  auto ok =
      loadString("collector: {listen: [\"127.0.0.1:0\", \"[::1]:0\", {port: 0}]}\n", "f.yaml");
  ASSERT_TRUE(ok.ok()) << ok.errors.front().toString();
  EXPECT_EQ(ok.config.collector.listen[0].port, 0);
  EXPECT_EQ(ok.config.collector.listen[1].address, "::1");
}

// Channel filters are compiled by check-config.
TEST(Config, ProfileChannelFilterCompiled) {
  auto res = loadString(
      "profiles:\n  declared:\n    - name: p\n      channels: [{name: c, filter: \"proto tcp and "
      "and\"}]\n",
      "f.yaml");
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_NE(
      res.errors[0].toString().find(
          "f.yaml:4:51: profiles.declared[0].channels[0].filter: bad filter: expected a filter "
          "primitive, got 'and' (in 'proto tcp and and')"),
      std::string::npos)
      << res.errors[0].toString();
}

TEST(Config, MissingFileIsOneClearError) {
  auto res = loadFile("/nonexistent/net-collector.yaml");
  ASSERT_EQ(res.errors.size(), 1u);
  EXPECT_EQ(res.errors[0].toString(),
            "/nonexistent/net-collector.yaml: (top): cannot read the file: No such file or "
            "directory");
}

TEST(Config, IpfixCollectorSetId) {
  auto res = loadString(
      "bridges:\n  - match: br0\n    ipfix: {collector_set_id: 4294967295}\n  - match: br1\n"
      "    ipfix: {sampling: 8}\n",
      "f.yaml");
  ASSERT_TRUE(res.ok()) << res.errors.front().toString();
  ASSERT_EQ(res.config.bridges.size(), 2u);
  EXPECT_EQ(res.config.bridges[0].ipfix->collector_set_id, 4294967295u);
  EXPECT_FALSE(res.config.bridges[1].ipfix->collector_set_id);  // absent = no collector set
}

TEST(Config, DumpRoundTrips) {
  auto res = loadString(R"(
collector: {listen: ["[::1]:9999"], threads: 2, exporters: [{network: 10.0.0.0/8, sampling_rate: 100}]}
bridges: [{match: [br0, "br-*"], takeover: true, sflow: {agent: lo, targets: ["127.0.0.1:6343"]},
           netflow: {engine_type: 1, engine_id: 2}},
          {match: [br1], ipfix: {collector_set_id: 0}}, {match: [br2], ipfix: {sampling: 4}}]
profiles: [{name: p, channels: [{name: c, filter: "proto tcp"}]}]
)",
                        "in.yaml");
  ASSERT_TRUE(res.ok()) << res.errors.front().toString();
  std::string text = dump(res.config);
  EXPECT_NE(text.find("collector_set_id: 0"), std::string::npos) << text;  // 0 is a valid id
  EXPECT_EQ(text.find("collector_set_id", text.find("collector_set_id") + 1), std::string::npos)
      << text;  // absent stays absent
  auto again = loadString(text, "dump.yaml");
  ASSERT_TRUE(again.ok()) << again.errors.front().toString() << "\n" << text;
  EXPECT_EQ(again.config, res.config) << text;
}

// While correlation is on, exports whose rule sets no active timeout get correlation's; the dump
// of such a config reads back the same (the timeout stays "not given").
TEST(Config, CorrelationLowersUnsetActiveTimeouts) {
  auto res = loadString(R"(
bridges:
  - match: br-a
    ipfix: {sampling: 1}
    netflow: {active_timeout: 30s}
  - match: br-b
    netflow: {}
correlation: {enabled: true, active_timeout: 5s}
)",
                        "in.yaml");
  ASSERT_TRUE(res.ok()) << res.errors.front().toString();
  auto rules = effectiveBridgeRules(res.config);
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].ipfix->cache_active_timeout, 5u);
  EXPECT_EQ(rules[0].netflow->active_timeout, 30u);  // given in the file: kept
  EXPECT_EQ(rules[1].netflow->active_timeout, 5u);
  res.config.correlation.enabled = false;
  EXPECT_EQ(effectiveBridgeRules(res.config)[1].netflow->active_timeout, 60u);
  auto again = loadString(dump(res.config), "dump.yaml");
  ASSERT_TRUE(again.ok()) << again.errors.front().toString();
  EXPECT_EQ(again.config, res.config) << dump(res.config);
}

TEST(Config, CorrelationErrorsNameTheKey) {
  auto res = loadString("correlation: {min_bps: fast, webhook: \"https://x/y\", step: 1500ms}\n",
                        "in.yaml");
  ASSERT_EQ(res.errors.size(), 3u);
  EXPECT_NE(res.errors[0].toString().find("correlation.min_bps"), std::string::npos)
      << res.errors[0].toString();
  EXPECT_NE(res.errors[1].toString().find("https is not supported"), std::string::npos)
      << res.errors[1].toString();
  EXPECT_NE(res.errors[2].toString().find("correlation.step: must be whole seconds"),
            std::string::npos)
      << res.errors[2].toString();
}

TEST(Config, ProfilesDefaults) {
  const ProfilesConfig p;
  EXPECT_EQ(p.path, "/var/lib/net-collector/profiles");
  EXPECT_EQ(p.step_ms, 10000u);
  EXPECT_EQ(p.delay_ms, 8000u);
  EXPECT_EQ(p.max_span_ms, 20000u);
  EXPECT_TRUE(p.declared.empty());
}

TEST(Config, ProfilesSectionParses) {
  auto res = loadString(R"(
profiles:
  path: /tmp/profiles
  step: 5s
  delay: 3s
  max_span: 1m
  declared:
    - name: ports
      group: services
      description: well-known ports
      expire: 30d
      maxsize: 10GiB
      channels:
        - {name: ssh, filter: "port 22", colour: "#ff0000", sign: "+", order: 1}
        - {name: dns, filter: "port 53", sign: "-", sources: [br-int, 192.0.2.1, "2001:db8::/32"]}
        - name: rest
    - name: past
      type: history
      start: "2026-01-01T00:00:00Z"
      end: "2026-01-02 12:00"
      channels: [{name: all}]
    - {name: graphs, type: shadow}
)",
                        "p.yaml");
  for (const auto& e : res.errors) {
    ADD_FAILURE() << e.toString();
  }
  const ProfilesConfig& p = res.config.profiles;
  EXPECT_EQ(p.path, "/tmp/profiles");
  EXPECT_EQ(p.step_ms, 5000u);
  EXPECT_EQ(p.delay_ms, 3000u);
  EXPECT_EQ(p.max_span_ms, 60000u);
  ASSERT_EQ(p.declared.size(), 3u);
  const profile::ProfileDef& ports = p.declared[0];
  EXPECT_EQ(ports.group, "services");
  EXPECT_EQ(ports.description, "well-known ports");
  EXPECT_EQ(ports.type, profile::ProfileType::kContinuous);
  EXPECT_EQ(ports.expire_ms, 30ull * 86400 * 1000);
  EXPECT_EQ(ports.maxsize, 10ull << 30);
  EXPECT_EQ(ports.start_ns, 0u);
  ASSERT_EQ(ports.channels.size(), 3u);
  EXPECT_EQ(ports.channels[0].colour, "#ff0000");
  EXPECT_EQ(ports.channels[0].order, 1u);
  EXPECT_EQ(ports.channels[1].sign, '-');
  EXPECT_EQ(ports.channels[1].sources,
            (std::vector<std::string>{"br-int", "192.0.2.1", "2001:db8::/32"}));
  EXPECT_EQ(ports.channels[2].filter, "any");  // default
  EXPECT_EQ(ports.channels[2].sign, '+');
  EXPECT_EQ(ports.channels[2].colour, "");  // palette
  const profile::ProfileDef& past = p.declared[1];
  EXPECT_EQ(past.type, profile::ProfileType::kHistory);
  EXPECT_EQ(past.start_ns, 1767225600ull * 1'000'000'000);
  EXPECT_EQ(past.end_ns, (1767225600ull + 86400 + 12 * 3600) * 1'000'000'000);
  EXPECT_EQ(p.declared[2].type, profile::ProfileType::kShadow);
  EXPECT_EQ(p.declared[2].group, ".");

  // The effective config reads back the same.
  auto again = loadString(dump(res.config), "dump.yaml");
  ASSERT_TRUE(again.ok()) << again.errors.front().toString() << "\n" << dump(res.config);
  EXPECT_EQ(again.config.profiles, res.config.profiles) << dump(res.config);
}

// Every profile problem is reported, each at its key.
TEST(Config, ProfilesReportEveryProblem) {
  auto res = loadString(R"(
profiles:
  declared:
    - name: p
      channels:
        - {name: a, filter: "port 99999"}
        - {name: b, colour: "blue"}
        - {name: "c d"}
)",
                        "p.yaml");
  for (const auto& e : res.errors) {
    std::printf("[config] %s\n", e.toString().c_str());
  }
  ASSERT_EQ(res.errors.size(), 3u);
  EXPECT_NE(res.errors[0].toString().find("channels[0].filter: bad filter"), std::string::npos)
      << res.errors[0].toString();
  EXPECT_NE(res.errors[1].toString().find("channels[1].colour"), std::string::npos)
      << res.errors[1].toString();
  EXPECT_NE(res.errors[2].toString().find("channels[2].name"), std::string::npos)
      << res.errors[2].toString();
}

TEST(Config, ExamplesInRepositoryAreValid) {
  auto dir = test::sourceDir() / "examples";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") {
      auto res = loadFile(e.path().string());
      for (const auto& err : res.errors) {
        ADD_FAILURE() << err.toString();
      }
      ++n;
    }
  }
  EXPECT_GT(n, 0) << "no examples/*.yaml found in " << dir;
}

}  // namespace
}  // namespace nc::config

TEST(Config, HttpTokenAndTokenFileAreExclusive) {
  auto r =
      nc::config::loadString("http: {enabled: true, token: abc, token_file: /etc/t}\n", "t.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.errors[0].toString().find("http.token_file"), std::string::npos)
      << r.errors[0].toString();
  auto ok = nc::config::loadString("http: {enabled: true, listen: \"[::1]:9000\", token: abc}\n",
                                   "t.yaml");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.config.http.token, "abc");
  EXPECT_EQ(nc::config::dump(ok.config).find("abc"), std::string::npos);
}
