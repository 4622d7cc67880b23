// Table-driven tests of the filter language: every keyword family, logic, errors with columns,
// and block pruning (mayMatch never prunes a block holding a matching row).
#include "collector/query/filter.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace nc::query {
namespace {

constexpr uint64_t kT = 1795687200ULL * 1000000000ULL;  // 2026-11-26T10:00:00Z

IpAddr ip(const char* s) {
  IpAddr a;
  EXPECT_TRUE(IpAddr::parse(s, a)) << s;
  return a;
}

// Five flows with distinct values in every column the filters test.
std::vector<FlowRecord> samples() {
  std::vector<FlowRecord> v(5);
  FlowRecord& a = v[0];  // TCP v4, sampled, IPFIX from OVS
  a.first_ns = kT;
  a.last_ns = kT + 2500000000ULL;
  a.exporter = ip("192.0.2.1");
  a.src_addr = ip("10.0.0.1");
  a.dst_addr = ip("192.168.1.10");
  a.src_port = 34567;
  a.dst_port = 443;
  a.proto = 6;
  a.tcp_flags = 0x1b;  // F S P A
  a.tos = 0x10;
  a.packets = 10;
  a.bytes = 15000;
  a.in_if = 101;
  a.out_if = 102;
  a.src_as = 64500;
  a.dst_as = 64501;
  a.next_hop = ip("10.0.0.254");
  a.vlan = 42;
  a.src_mac = 0x0a1b2c3d4e5fULL;
  a.dst_mac = 0xfeedfacecafeULL;
  a.sampling_rate = 64;
  a.if_kind = IfKind::kOpenFlowPort;
  a.flow_proto = FlowProto::kIpfix;
  a.direction = 0;
  a.observation_domain = 5;
  a.src_mask = 24;
  a.dst_mask = 16;
  a.ip_version = 4;
  a.received_ns = kT + 5000000000ULL;

  FlowRecord& b = v[1];  // UDP v4, NetFlow v9
  b.first_ns = b.last_ns = kT + 1000000;
  b.exporter = ip("192.0.2.2");
  b.src_addr = ip("10.0.0.2");
  b.dst_addr = ip("10.1.2.3");
  b.src_port = 53;
  b.dst_port = 5353;
  b.proto = 17;
  b.packets = 2;
  b.bytes = 300;
  b.in_if = 3;
  b.out_if = 4;
  b.direction = 1;
  b.flow_proto = FlowProto::kNetflowV9;
  b.engine_type = 1;
  b.engine_id = 7;
  b.ip_version = 4;

  FlowRecord& c = v[2];  // ICMP echo request, type/code in dst port like NetFlow
  c.first_ns = c.last_ns = kT + 2000000;
  c.exporter = ip("192.0.2.1");
  c.src_addr = ip("10.0.0.3");
  c.dst_addr = ip("8.8.8.8");
  c.proto = 1;
  c.icmp_type = 8;
  c.dst_port = 8 << 8;
  c.packets = 1;
  c.bytes = 84;
  c.ip_version = 4;

  FlowRecord& d = v[3];  // TCP v6 SYN flood-ish, an hour later
  d.first_ns = kT + 3600ULL * 1000000000ULL;
  d.last_ns = d.first_ns + 1000000000ULL;
  d.exporter = ip("2001:db8::ff");
  d.src_addr = ip("2001:db8::1");
  d.dst_addr = ip("2001:db8:1::2");
  d.src_port = 80;
  d.dst_port = 51000;
  d.proto = 6;
  d.tcp_flags = 0x02;
  d.packets = 1000;
  d.bytes = 1500000;
  d.next_hop = ip("2001:db8::fe");
  d.ip_version = 6;

  FlowRecord& e = v[4];  // ICMPv6 neighbour solicitation
  e.first_ns = e.last_ns = kT + 3000000;
  e.exporter = ip("2001:db8::ff");
  e.src_addr = ip("2001:db8::5");
  e.dst_addr = ip("ff02::1");
  e.proto = 58;
  e.icmp_type = 135;
  e.dst_port = 135 << 8;
  e.packets = 1;
  e.bytes = 72;
  e.ip_version = 6;
  return v;
}

struct Case {
  const char* filter;
  const char* matches;  // indices of samples() that match, e.g. "013"
};

const Case kCases[] = {
    // any, protocols, families
    {"any", "01234"},
    {"", "01234"},
    {"proto tcp", "03"},
    {"proto TCP", "03"},
    {"proto 17", "1"},
    {"proto udp", "1"},
    {"proto icmp", "2"},
    {"proto icmp6", "4"},
    {"proto ipv6-icmp", "4"},
    {"proto 58", "4"},
    {"proto gre", ""},
    {"proto > 10", "14"},
    {"inet", "012"},
    {"ipv4", "012"},
    {"inet6", "34"},
    {"ipv6", "34"},
    // addresses
    {"host 10.0.0.1", "0"},
    {"ip 10.0.0.1", "0"},
    {"src ip 10.0.0.2", "1"},
    {"dst ip 10.0.0.2", ""},
    {"dst host 8.8.8.8", "2"},
    {"ip 2001:db8::1", "3"},
    {"src host 2001:DB8::1", "3"},
    {"net 10.0.0.0/8", "012"},
    {"src net 10.0.0.0/8", "012"},
    {"dst net 10.0.0.0/8", "1"},
    {"net 10.0.0.0 255.255.255.0", "012"},
    {"dst net 10.1.0.0 255.255.0.0", "1"},
    {"net 192.168.1.0/24", "0"},
    {"net 0.0.0.0/0", "012"},
    {"src net 2001:db8::/32", "34"},
    {"dst net 2001:db8::/32", "3"},
    {"net ff00::/8", "4"},
    {"ip in [10.0.0.1 8.8.8.8]", "02"},
    {"ip in [ 10.0.0.1, 8.8.8.8 ]", "02"},
    {"dst ip in [ff02::/16, 192.168.0.0/16]", "04"},
    {"src in ip [10.0.0.3]", "2"},
    {"src ip in [2001:db8::/64]", "34"},
    // ports (ICMP type/code live in dst port, as in nfdump)
    {"port 443", "0"},
    {"port > 1024", "01234"},
    {"src port < 100", "1234"},
    {"dst port < 100", ""},
    {"port in [53 80]", "13"},
    {"port in [53,80,443]", "013"},
    {"dst port in [2048]", "2"},
    {"port eq 53", "1"},
    {"port == 53", "1"},
    {"port = 53", "1"},
    {"port=53", "1"},
    {"port gt 50000", "3"},
    {"port ge 51000", "3"},
    {"port lt 1", "24"},
    {"port le 53", "124"},
    {"dst port 0", ""},
    {"src port 0", "24"},
    // ICMP
    {"icmp-type 8", "2"},
    {"icmp-type 135", "4"},
    {"icmp-code 0", "24"},
    {"icmp-type > 100", "4"},
    // TCP flags: all the given flags set; numbers compare the byte
    {"flags S", "03"},
    {"flags AS", "0"},
    {"flags SA", "0"},
    {"flags SU", ""},
    {"flags X", ""},
    {"flags 2", "3"},
    {"flags > 2", "0"},
    {"flags F and not flags R", "0"},
    // nfdump 1.7: negated flags test "any of", so "not flags AFRPU" = none of A F R P U.
    {"flags S and not flags AFRPU", "3"},
    {"not flags AU", "1234"},
    {"not (flags S)", "124"},
    {"not not flags AU", ""},
    {"flags S and not flags A and not flags F", "3"},
    // tos, counters, derived rates
    {"tos 16", "0"},
    {"tos > 0", "0"},
    {"src tos 16", "0"},
    {"packets > 5", "03"},
    {"packets > 1k", ""},
    {"packets >= 1k", "3"},
    {"packets 2", "1"},
    {"bytes > 1M", "3"},
    {"bytes > 1.4M", "3"},
    {"bytes > 1.6m", ""},
    {"bytes < 100", "24"},
    {"in bytes < 100", "24"},
    {"in packets 1", "24"},
    {"bytes 0x12c", "1"},
    {"duration > 2000", "0"},
    {"duration 1000", "3"},
    {"duration < 1", "124"},
    {"pps > 500", "3"},
    {"pps 4", "0"},
    {"bps > 10M", "3"},
    {"bps > 10k", "03"},
    {"bpp > 1000", "03"},
    {"bpp 150", "1"},
    {"flows 1", "01234"},
    {"flows > 1", ""},
    // interfaces, vlan, mac, as, mask
    {"in if 101", "0"},
    {"out if 4", "1"},
    {"if 3", "1"},
    {"if 102", "0"},
    {"if > 100", "0"},
    {"vlan 42", "0"},
    {"src vlan 42", "0"},
    {"dst vlan 0", "1234"},
    {"mac 0a:1b:2c:3d:4e:5f", "0"},
    {"in src mac 0a:1b:2c:3d:4e:5f", "0"},
    {"src mac 0A:1B:2C:3D:4E:5F", "0"},
    {"dst mac 0a:1b:2c:3d:4e:5f", ""},
    {"out dst mac fe:ed:fa:ce:ca:fe", "0"},
    {"in dst mac fe:ed:fa:ce:ca:fe", "0"},
    {"as 64500", "0"},
    {"src as 64500", "0"},
    {"dst as 64500", ""},
    {"dst as 64501", "0"},
    {"as in [64501 1]", "0"},
    {"as > 64500", "0"},
    {"mask 24", "0"},
    {"src mask 24", "0"},
    {"dst mask 16", "0"},
    {"dst mask 24", ""},
    // next hop, exporter, engine, direction, observation domain
    {"next ip 10.0.0.254", "0"},
    {"next hop 2001:db8::fe", "3"},
    {"next ip 10.0.0.0/8", "0"},
    {"router ip 192.0.2.1", "02"},
    {"router ip 192.0.2.0/24", "012"},
    {"router ip 2001:db8::ff", "34"},
    {"engine-type 1", "1"},
    {"engine-id 7", "1"},
    {"engine-id 0", "0234"},
    {"flowdir ingress", "0"},
    {"flowdir 1", "1"},
    {"flowdir egress", "1"},
    {"observation domain id 5", "0"},
    {"observation domain 5", "0"},
    {"sampled", "0"},
    // registry field names (snake_case), our extensions
    {"sampling_rate > 1", "0"},
    {"direction 0", "0"},
    {"direction 1", "1"},
    {"direction 255", "234"},
    {"direction egress", "1"},
    {"if_kind ofport", "0"},
    {"if_kind unknown", "1234"},
    {"export_proto ipfix", "0"},
    {"export_proto netflow9", "1"},
    {"observation_domain 5", "0"},
    {"src_port 53", "1"},
    {"dst_port in [443 5353]", "01"},
    {"src_addr 10.0.0.0/8", "012"},
    {"src_addr 10.0.0.1", "0"},
    {"dst_addr in [8.8.8.8]", "2"},
    {"exporter 192.0.2.2", "1"},
    {"next_hop 10.0.0.254", "0"},
    {"src_mac 0a:1b:2c:3d:4e:5f", "0"},
    {"tcp_flags 27", "0"},
    {"icmp_type 8", "2"},
    {"in_if 101", "0"},
    {"src_as 64500", "0"},
    {"vlan 42", "0"},
    {"first > 2026-11-26T10:30:00Z", "3"},
    {"first < '2026-11-26 10:30:00'", "0124"},
    {"last >= 2026-11-26T10:00:02.500Z",
     "3"
     "0"},
    {"engine_type 1", "1"},
    {"flow_end_reason 0", "01234"},
    // logic, precedence, case, comments
    {"proto tcp and port 443", "0"},
    {"proto udp or proto icmp", "12"},
    {"!proto tcp && !inet6", "12"},
    {"not (proto tcp or proto udp)", "24"},
    {"proto tcp and (port 443 or port 80)", "03"},
    {"PROTO TCP AND PORT 443", "0"},
    {"proto tcp or proto udp and port 53", "013"},
    {"(proto tcp or proto udp) and port 53", "1"},
    {"not not proto udp", "1"},
    {"proto udp # only udp", "1"},
    {"proto udp\nor proto icmp", "12"},
    {"((((proto icmp))))", "2"},
    {"not any", ""},
    {"inet and not (net 10.0.0.0/8 or host 8.8.8.8)", ""},
    // current nfdump: first seen / last seen / received [CMP] TIME in whole milliseconds
    {"first seen 2026-11-26T10:00:00.001", "1"},
    {"first seen = 2026-11-26T10:00:00.002Z", "2"},
    {"first seen < 2026-11-26T10:00:00.002", "01"},
    {"first seen <= 2026-11-26T10:00:00.002", "012"},
    {"first seen > 2026-11-26T10:00:00.002", "34"},
    {"first seen >= 2026-11-26T10:00:00.002", "234"},
    {"first seen 2026/11/26.10:00:00.001", "1"},
    {"first seen < '2026-11-26 10:00:00.001'", "0"},
    {"last seen 2026-11-26T10:00:02.500", "0"},
    {"last seen > 2026-11-26T10:00:02.499", "03"},
    {"received > 2026-11-26T10:00:04.999", "0"},
    {"received < 2026-11-26T10:00:00", "1234"},
    {"first > 2026-11-26T10:00:00.002Z", "34"},  // `first` alone: the registry field
    // current nfdump: exact flags, icmp/engine with a space, exporter ip
    {"flags =S", "3"},
    {"flags =FSPA", "0"},
    {"flags =SA", ""},
    {"flags == s", "3"},
    {"not flags =S", "0124"},
    {"icmp type 8", "2"},
    {"icmp type 135", "4"},
    {"icmp code 0", "24"},
    {"icmp type > 100", "4"},
    {"engine type 1", "1"},
    {"engine id 7", "1"},
    {"engine id > 7", ""},
    {"exporter ip 192.0.2.1", "02"},
    {"exporter ip 2001:db8::/32", "34"},
    {"exporter 192.0.2.0/24", "012"},  // `exporter` alone: the registry field
};

std::string matching(const Filter& f, const std::vector<FlowRecord>& rs) {
  std::string out;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (f.matches(rs[i])) {
      out += static_cast<char>('0' + i);
    }
  }
  return out;
}

std::string sorted(std::string s) {
  std::sort(s.begin(), s.end());
  return s;
}

TEST(Filter, GrammarTable) {
  auto rs = samples();
  for (const auto& c : kCases) {
    FilterError err;
    auto f = Filter::compile(c.filter, &err);
    ASSERT_TRUE(f.has_value()) << c.filter << "\n" << err.render(c.filter);
    EXPECT_EQ(matching(*f, rs), sorted(c.matches)) << "filter: " << c.filter << "\n" << f->dump();
  }
}

// select() over a batch agrees with matches() row by row, for every chunk boundary.
TEST(Filter, BatchSelectAgreesWithSingleRows) {
  auto rs = samples();
  FlowColumns cols;
  for (int rep = 0; rep < 1000; ++rep) {
    cols.append(rs);
  }
  for (const auto& c : kCases) {
    auto f = Filter::compile(c.filter);
    ASSERT_TRUE(f);
    std::vector<uint32_t> rows;
    f->select(cols, 3, cols.size() - 2, rows);
    std::string expect = sorted(c.matches);
    size_t n = 0;
    for (size_t i = 3; i < cols.size() - 2; ++i) {
      n += expect.find(static_cast<char>('0' + i % 5)) != std::string::npos;
    }
    EXPECT_EQ(rows.size(), n) << c.filter;
    for (uint32_t r : rows) {
      ASSERT_NE(expect.find(static_cast<char>('0' + r % 5)), std::string::npos) << c.filter;
    }
  }
}

struct ErrorCase {
  const char* filter;
  size_t offset;
  const char* message;
};

const ErrorCase kErrors[] = {
    {"proto", 5, "expected a protocol name or number"},
    {"proto foo", 6, "unknown protocol 'foo'"},
    {"port 70000", 5, "port out of range 0..65535 (got 70000)"},
    {"src port > 99999", 11, "port out of range"},
    {"foo 1", 0, "unknown filter keyword 'foo'"},
    {"proto tcp and", 13, "unexpected end of filter"},
    {"(proto tcp", 10, "expected ')' to close the '(' at column 1"},
    {"proto tcp)", 9, "unbalanced ')'"},
    {"net 10.0.0.0/33", 4, "prefix length must be 0..32"},
    {"net 2001:db8::/129", 4, "prefix length must be 0..128"},
    {"net 10.0.0.0 255.0.255.0", 13, "is not contiguous"},
    {"net 10.0.0.0", 12, "expected '/bits' after the network or a netmask"},
    {"host 10.0.0.300", 5, "expected an IPv4 or IPv6 address"},
    {"host example.com", 5, "host names are not resolved"},
    {"ip 10.0.0.0/8", 3, "use 'net'"},
    {"flags Z", 6, "bad TCP flags 'Z'"},
    {"port in [80 abc]", 12, "expected a port, got 'abc'"},
    {"port in []", 8, "empty list of port"},
    {"port in 80", 8, "expected '['"},
    {"src foo", 4, "'foo' cannot follow 'src'"},
    {"proto tcp port 80", 10, "expected 'and', 'or' or the end of the filter, got 'port'"},
    {"out bytes > 1", 0, "'out' is not supported: flows are unidirectional"},
    {"ident foo", 0, "'ident' is not supported"},
    {"src geo DE", 4, "'geo' is not supported"},
    {"mac 00:11", 4, "expected a MAC address"},
    {"export_proto bogus", 13, "bad value 'bogus' for export_proto"},
    {"first > yesterday", 8, "bad value 'yesterday' for first"},
    {"bytes > 1x", 8, "expected a number (bytes), got '1x'"},
    {"port 80 $", 8, "unexpected character '$'"},
    {"flow 1", 0, "did you mean 'flows'"},
    {"vlan 5000", 5, "vlan out of range 0..4095"},
    {"icmp-type 256", 10, "ICMP type out of range"},
    {"in foo", 3, "expected 'if', 'ifname', 'vm', 'mac', 'packets' or 'bytes' after 'in'"},
    {"router 1.2.3.4", 7, "expected 'ip' after 'router'"},
    {"flowdir sideways", 8, "expected ingress, egress, 0 or 1"},
    {"proto tcp and 'unterminated", 14, "unterminated quoted string"},
    {"and", 0, "expected a filter primitive, got 'and'"},
    {"sampling_rate > 5000000000", 16, "sampling_rate out of range 0..4294967295"},
    {"next as 5", 0, "'next' is not supported: records carry no next AS"},
    {"flags > S", 6, "TCP flag letters compare with '=' only"},
    {"flags =Z", 7, "bad TCP flags 'Z'"},
    {"icmp foo", 5, "expected 'type' or 'code' after 'icmp'"},
    {"engine 3", 7, "expected 'type' or 'id' after 'engine'"},
    {"engine id 300", 10, "engine id out of range 0..255"},
    {"first seen yesterday", 11, "bad time 'yesterday'"},
    {"received", 8, "expected a time"},
};

TEST(Filter, ErrorsPointAtTheColumn) {
  for (const auto& e : kErrors) {
    FilterError err;
    auto f = Filter::compile(e.filter, &err);
    ASSERT_FALSE(f.has_value()) << e.filter;
    EXPECT_EQ(err.offset, e.offset) << e.filter << ": " << err.message;
    EXPECT_NE(err.message.find(e.message), std::string::npos)
        << e.filter << ": got '" << err.message << "'";
  }
}

TEST(Filter, ErrorRenderingShowsFilterAndCaret) {
  FilterError err;
  ASSERT_FALSE(Filter::compile("proto tcp and src port 70000", &err));
  EXPECT_EQ(err.render("proto tcp and src port 70000"),
            "filter:1:24: port out of range 0..65535 (got 70000)\n"
            "  proto tcp and src port 70000\n"
            "                         ^");
  ASSERT_FALSE(Filter::compile("proto tcp\nand bogus 1", &err));
  EXPECT_EQ(err.render("proto tcp\nand bogus 1"),
            "filter:2:5: unknown filter keyword 'bogus' (see `net-collector flows --help` or "
            "`net-collector fields`)\n"
            "  and bogus 1\n"
            "      ^");
}

TEST(Filter, TimeWindowIsAndedAndHalfOpen) {
  auto rs = samples();
  auto f = Filter::compile("proto tcp");
  ASSERT_TRUE(f);
  f->restrictTime(kT, kT + 3600ULL * 1000000000ULL);  // excludes sample 3 (starts at the end)
  EXPECT_EQ(matching(*f, rs), "0");
  Filter any;
  any.restrictTime(kT + 1000000, UINT64_MAX);
  EXPECT_EQ(matching(any, rs), "1234");
  Filter none;
  none.restrictTime(0, UINT64_MAX);
  EXPECT_TRUE(none.matchesAll());
}

// select() skips the window's instructions for chunks (2048 rows) wholly inside it: rows across
// several chunks, some inside, some straddling, some outside, unsorted in one part; the result
// equals a row-by-row check. Twice-restricted windows narrow.
TEST(Filter, TimeWindowOverChunksInsideAndAcross) {
  FlowColumns c;
  std::mt19937_64 rng(3);
  for (uint64_t i = 0; i < 9000; ++i) {
    FlowRecord r;
    r.first_ns = i < 6000 ? kT + i : kT + rng() % 9000;  // the last part unsorted
    r.proto = static_cast<uint8_t>(i % 3 == 0 ? 6 : 17);
    c.append(r);
  }
  for (const char* text : {"", "proto tcp", "not proto tcp"}) {
    for (auto [lo, hi] : {std::pair<uint64_t, uint64_t>{kT + 100, kT + 5000},
                          {kT, kT + 9000},
                          {kT + 2048, kT + 4096},
                          {kT + 8999, kT + 9000}}) {
      auto f = Filter::compile(text);
      ASSERT_TRUE(f);
      f->restrictTime(lo, hi);
      auto g = *f;
      g.restrictTime(lo + 7, UINT64_MAX);  // narrows the lower end only
      for (const Filter* x : {&*f, &g}) {
        const uint64_t from = x == &g ? lo + 7 : lo;
        std::vector<uint32_t> got;
        x->select(c, 0, c.size(), got);
        std::vector<uint32_t> want;
        for (uint32_t i = 0; i < c.size(); ++i) {
          const bool in = c.first_ns[i] >= from && c.first_ns[i] < hi;
          const bool tcp = c.proto[i] == 6;
          const std::string t = text;
          if (in && (t.empty() || (t == "proto tcp" && tcp) || (t == "not proto tcp" && !tcp))) {
            want.push_back(i);
          }
        }
        EXPECT_EQ(got, want) << text << " [" << lo - kT << ", " << hi - kT << ")";
      }
    }
  }
}

BlockSummary summaryOf(const std::vector<FlowRecord>& rs, const std::string& which) {
  FlowColumns c;
  for (char ch : which) {
    c.append(rs[static_cast<size_t>(ch - '0')]);
  }
  BlockSummary s;
  s.compute(c);
  return s;
}

TEST(Filter, MayMatchPrunesOnlyWhenRangesProveIt) {
  auto rs = samples();
  auto may = [&](const char* filter, const char* block) {
    auto f = Filter::compile(filter);
    EXPECT_TRUE(f) << filter;
    return f->mayMatch(summaryOf(rs, block));
  };
  EXPECT_FALSE(may("port 443", "1"));
  EXPECT_TRUE(may("port 443", "01"));
  EXPECT_FALSE(may("proto 17", "0"));
  EXPECT_FALSE(may("not proto 17", "1"));
  EXPECT_TRUE(may("not proto 17", "01"));
  EXPECT_FALSE(may("net 10.0.0.0/8", "34"));
  EXPECT_TRUE(may("net 10.0.0.0/8", "0"));
  EXPECT_FALSE(may("bytes > 1M", "012"));
  EXPECT_TRUE(may("pps > 1", "1"));  // derived values are never pruned
  EXPECT_FALSE(may("port in [1 2 3]", "1"));
  EXPECT_FALSE(may("proto tcp and port 53", "03"));
  EXPECT_TRUE(may("proto tcp or port 53", "13"));
  EXPECT_FALSE(may("inet6", "012"));
  EXPECT_FALSE(may("not net 10.0.0.0/8", "0"));  // every address is inside
  EXPECT_FALSE(may("not any", "01234"));
  BlockSummary empty;
  EXPECT_FALSE(Filter().mayMatch(empty));
  Filter window;
  window.restrictTime(kT + 3600ULL * 1000000000ULL, UINT64_MAX);
  EXPECT_FALSE(window.mayMatch(summaryOf(rs, "012")));
  EXPECT_TRUE(window.mayMatch(summaryOf(rs, "03")));
}

// For every filter and every block made of a subset of samples: a block with a matching row is
// never pruned.
TEST(Filter, MayMatchIsConservative) {
  auto rs = samples();
  for (const auto& c : kCases) {
    auto f = Filter::compile(c.filter);
    ASSERT_TRUE(f);
    for (unsigned mask = 1; mask < 32; ++mask) {
      std::string block;
      bool any = false;
      for (unsigned i = 0; i < 5; ++i) {
        if (mask & (1u << i)) {
          block += static_cast<char>('0' + i);
          any = any || f->matches(rs[i]);
        }
      }
      if (any) {
        EXPECT_TRUE(f->mayMatch(summaryOf(rs, block))) << c.filter << " block " << block;
      }
    }
  }
}

// `first seen` compares whole milliseconds: a flow that started inside the millisecond TIME names
// equals it, however many nanoseconds past it.
TEST(Filter, SeenTimesHaveMillisecondPrecision) {
  FlowRecord r;
  r.first_ns = kT + 1500000;  // 10:00:00.0015
  r.last_ns = kT + 2999999;   // 10:00:00.002999999
  r.received_ns = kT + 3000000;
  auto m = [&](const char* text) {
    auto f = Filter::compile(text);
    EXPECT_TRUE(f.has_value()) << text;
    return f && f->matches(r);
  };
  EXPECT_TRUE(m("first seen 2026-11-26T10:00:00.001"));
  EXPECT_FALSE(m("first seen > 2026-11-26T10:00:00.001"));
  EXPECT_TRUE(m("first seen >= 2026-11-26T10:00:00.001"));
  EXPECT_TRUE(m("first seen <= 2026-11-26T10:00:00.001"));
  EXPECT_FALSE(m("first seen < 2026-11-26T10:00:00.001"));
  EXPECT_TRUE(m("first seen < 2026-11-26T10:00:00.002"));
  EXPECT_TRUE(m("last seen 2026-11-26T10:00:00.002"));
  EXPECT_TRUE(m("received 2026-11-26T10:00:00.003"));
  EXPECT_FALSE(m("received 2026-11-26T10:00:00.002"));
  // first seen < T + 1 ms and first > T (the registry field, nanoseconds) both hold
  EXPECT_TRUE(m("first seen < 2026-11-26T10:00:00.002 and first > 2026-11-26T10:00:00.001Z"));
}

TEST(Filter, KeywordDocsCoverTheRegistry) {
  std::string md = filterKeywordsMarkdown();
  for (const char* k : {"sampling_rate", "if_kind", "export_proto", "observation_domain",
                        "icmp-type", "flags LETTERS", "router ip", "icmp type", "engine id",
                        "exporter ip", "flags =LETTERS", "first seen", "received"}) {
    EXPECT_NE(md.find(k), std::string::npos) << k;
  }
  EXPECT_EQ(protoNumber("TCP"), 6);
  EXPECT_EQ(protoNumber("nope"), -1);
  EXPECT_EQ(protoName(17), "UDP");
  EXPECT_EQ(protoName(250), "250");
}

}  // namespace
}  // namespace nc::query
