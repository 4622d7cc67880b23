// Option parsing and validation for the generator (see gen.hpp).
#include <arpa/inet.h>

#include <fmt/format.h>
#include <algorithm>
#include <charconv>
#include <string>

#include "collector/gen/gen.hpp"

namespace nc::gen {
namespace {

void setWhy(std::string* why, std::string text) {
  if (why != nullptr) {
    *why = std::move(text);
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

template <typename T>
bool parseUint(std::string_view s, T& out, uint64_t max) {
  s = trim(s);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || v > max) {
    return false;
  }
  out = static_cast<T>(v);
  return true;
}

std::vector<std::string_view> splitComma(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) {
      comma = text.size();
    }
    std::string_view part = trim(text.substr(start, comma - start));
    if (!part.empty()) {
      parts.push_back(part);
    }
    start = comma + 1;
  }
  return parts;
}

bool protoByName(std::string_view name, uint8_t& out) {
  if (name == "tcp") {
    out = 6;
  } else if (name == "udp") {
    out = 17;
  } else if (name == "icmp" || name == "icmp6" || name == "ipv6-icmp") {
    out = 1;
  } else if (name == "gre") {
    out = 47;
  } else if (name == "esp") {
    out = 50;
  } else if (name == "sctp") {
    out = 132;
  } else {
    return parseUint(name, out, 255);
  }
  return true;
}

}  // namespace

bool parseFormat(std::string_view text, Format& out) {
  if (text == "v5" || text == "netflow5" || text == "nf5" || text == "netflow-v5") {
    out = Format::kNetflowV5;
  } else if (text == "v9" || text == "netflow9" || text == "nf9" || text == "netflow-v9") {
    out = Format::kNetflowV9;
  } else if (text == "ipfix" || text == "v10") {
    out = Format::kIpfix;
  } else if (text == "sflow" || text == "sflow5" || text == "sflow-v5") {
    out = Format::kSflow;
  } else {
    return false;
  }
  return true;
}

std::string_view toString(Format format) {
  switch (format) {
    case Format::kNetflowV5:
      return "v5";
    case Format::kNetflowV9:
      return "v9";
    case Format::kIpfix:
      return "ipfix";
    case Format::kSflow:
      return "sflow";
  }
  return "?";
}

uint16_t defaultPort(Format format) {
  switch (format) {
    case Format::kIpfix:
      return 4739;
    case Format::kSflow:
      return 6343;
    default:
      return 2055;
  }
}

bool parseCidr(std::string_view text, Cidr& out, std::string* why) {
  text = trim(text);
  std::string addr(text.substr(0, text.find('/')));
  uint8_t buf[16] = {};
  Cidr c;
  unsigned max_prefix = 0;
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1) {
    c.v4 = true;
    c.base = IpAddr::fromV4((uint32_t{buf[0]} << 24) | (uint32_t{buf[1]} << 16) |
                            (uint32_t{buf[2]} << 8) | buf[3]);
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1) {
    c.v4 = false;
    c.base = IpAddr::fromV6(buf);
    max_prefix = 128;
  } else {
    setWhy(why, fmt::format("'{}' is not an IPv4 or IPv6 network (want e.g. 10.0.0.0/8)", text));
    return false;
  }
  c.prefix = static_cast<uint8_t>(max_prefix);
  size_t slash = text.find('/');
  if (slash != std::string_view::npos && !parseUint(text.substr(slash + 1), c.prefix, max_prefix)) {
    setWhy(why, fmt::format("'{}': prefix length must be 0..{}", text, max_prefix));
    return false;
  }
  // Clear host bits; IPv4 bits live in bytes 12..15.
  unsigned offset = c.v4 ? 96 : 0;
  for (unsigned bit = offset + c.prefix; bit < 128; ++bit) {
    c.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  out = c;
  return true;
}

bool parsePortList(std::string_view text, std::vector<PortRange>& out, std::string* why) {
  std::vector<PortRange> ranges;
  for (std::string_view part : splitComma(text)) {
    PortRange r;
    size_t dash = part.find('-');
    bool ok = dash == std::string_view::npos
                  ? parseUint(part, r.lo, 65535) && parseUint(part, r.hi, 65535)
                  : parseUint(part.substr(0, dash), r.lo, 65535) &&
                        parseUint(part.substr(dash + 1), r.hi, 65535);
    if (!ok || r.lo > r.hi) {
      setWhy(why, fmt::format("bad port or range '{}' (want e.g. 80,443,8000-8010)", part));
      return false;
    }
    ranges.push_back(r);
  }
  if (ranges.empty()) {
    setWhy(why, "empty port list");
    return false;
  }
  out = std::move(ranges);
  return true;
}

bool parseProtoMix(std::string_view text, std::vector<ProtoWeight>& out, std::string* why) {
  std::vector<ProtoWeight> mix;
  for (std::string_view part : splitComma(text)) {
    ProtoWeight w;
    size_t colon = part.find(':');
    std::string_view name = trim(part.substr(0, colon));
    if (!protoByName(name, w.proto)) {
      setWhy(why, fmt::format("unknown protocol '{}' (want tcp, udp, icmp or a number)", name));
      return false;
    }
    if (colon != std::string_view::npos) {
      std::string weight(trim(part.substr(colon + 1)));
      char* end = nullptr;
      w.weight = std::strtod(weight.c_str(), &end);
      if (weight.empty() || end == nullptr || *end != '\0' || !(w.weight >= 0)) {
        setWhy(why, fmt::format("bad weight in '{}' (want e.g. tcp:80)", part));
        return false;
      }
    }
    mix.push_back(w);
  }
  double total = 0;
  for (const ProtoWeight& w : mix) {
    total += w.weight;
  }
  if (mix.empty() || !(total > 0)) {
    setWhy(why, "protocol mix needs at least one protocol with a positive weight");
    return false;
  }
  out = std::move(mix);
  return true;
}

bool parseTarget(std::string_view text, std::string& host, uint16_t& port, std::string* why) {
  text = trim(text);
  port = 0;
  if (text.empty()) {
    setWhy(why, "empty target");
    return false;
  }
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      setWhy(why, fmt::format("'{}': missing ']'", text));
      return false;
    }
    host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !parseUint(rest.substr(1), port, 65535))) {
      setWhy(why, fmt::format("'{}': bad port", text));
      return false;
    }
    return !host.empty();
  }
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || text.find(':') != colon) {
    host = std::string(text);  // bare host name, IPv4 or IPv6 address
    return true;
  }
  host = std::string(text.substr(0, colon));
  if (host.empty() || !parseUint(text.substr(colon + 1), port, 65535)) {
    setWhy(why, fmt::format("'{}': want host:port, [v6addr]:port or an address", text));
    return false;
  }
  return true;
}

std::string validate(GenOptions& o) {
  std::string errors;
  auto fail = [&errors](std::string text) {
    errors += text;
    errors += '\n';
  };
  if (o.target_port == 0) {
    o.target_port = defaultPort(o.format);
  }
  if (o.src_nets.empty()) {
    Cidr c;
    parseCidr("10.0.0.0/16", c);
    o.src_nets.push_back(c);
  }
  if (o.dst_nets.empty()) {
    Cidr c;
    parseCidr("192.168.0.0/16", c);
    o.dst_nets.push_back(c);
  }
  if (o.dst_ports.empty()) {
    parsePortList("80,443,53,123,22,8080", o.dst_ports);
  }
  if (o.protos.empty()) {
    parseProtoMix("tcp:80,udp:15,icmp:5", o.protos);
  }
  for (bool v4 : {true, false}) {
    auto has = [v4](const std::vector<Cidr>& nets) {
      return std::any_of(nets.begin(), nets.end(), [v4](const Cidr& c) { return c.v4 == v4; });
    };
    if (has(o.src_nets) && !has(o.dst_nets)) {
      fail(fmt::format("--src-net has {} networks but --dst-net has none of that family",
                       v4 ? "IPv4" : "IPv6"));
    }
  }
  if (o.format == Format::kNetflowV5) {
    for (const Cidr& c : o.src_nets) {
      if (!c.v4) {
        fail("NetFlow v5 carries IPv4 only: use v9, ipfix or sflow for IPv6 networks");
        break;
      }
    }
  }
  if (o.flows == 0) {
    fail("--flows must be at least 1");
  }
  if (!(o.rate >= 0)) {
    fail("--rate must be >= 0 (0 = as fast as possible)");
  }
  if (!(o.zipf_exponent > 0)) {
    fail("--zipf-exponent must be > 0");
  }
  if (o.src_ports.lo > o.src_ports.hi) {
    fail("--src-ports: empty range");
  }
  if (o.min_packets == 0 || o.min_packets > o.max_packets) {
    fail("--packets: want 1 <= MIN <= MAX");
  }
  if (o.min_packet_size == 0 || o.min_packet_size > o.max_packet_size ||
      o.max_packet_size > 65535) {
    fail("--packet-size: want 1 <= MIN <= MAX <= 65535");
  }
  if (o.mtu < 512 || o.mtu > 65000) {
    fail("--mtu must be 512..65000 bytes");
  }
  if (o.sampling == 0) {
    fail("--sampling must be >= 1");
  }
  if (o.format == Format::kNetflowV5 && o.sampling > 0x3fff) {
    fail("NetFlow v5 advertises sampling intervals up to 16383");
  }
  if (o.repeat > 1'000'000) {
    fail("--repeat must be 0..1000000 datagrams");
  }
  if (o.batch == 0 || o.batch > 1024) {
    fail("--batch must be 1..1024");
  }
  for (const std::string* addr : {&o.source, &o.agent}) {
    IpAddr parsed;
    if (!addr->empty() && !IpAddr::parse(*addr, parsed)) {
      fail(fmt::format("'{}' is not an IP address", *addr));
    }
  }
  if ((o.dry_run || !o.pcap.empty()) && o.duration_ms > 0 && o.rate == 0 && o.count == 0 &&
      o.records == 0) {
    fail("--duration with --dry-run/--pcap needs a --rate (the clock is virtual)");
  }
  return errors;
}

}  // namespace nc::gen
