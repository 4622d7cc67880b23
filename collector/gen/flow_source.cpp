// FlowSource: deterministic synthetic flows (see gen.hpp).
//
// At construction it draws `flows` distinct flow keys (addresses from the CIDRs, uniform or
// power-law skewed host numbers; ports; protocol from the weighted mix; interfaces, ToS, ASes).
// next() walks them round-robin and draws fresh packet/byte counters and times for each record.
// All randomness comes from one xoshiro256** stream seeded by the seed, so the output depends on
// nothing but the options.
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "collector/gen/gen.hpp"
#include "collector/gen/wire.hpp"

namespace nc::gen {
namespace {

// xoshiro256** (Blackman & Vigna), seeded through splitmix64: fast, and identical on every
// platform, unlike std:: distributions.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& s : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    uint64_t result = rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n) (Lemire's multiply-shift; the tiny bias does not matter here).
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform in [lo, hi].
  uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

constexpr uint64_t kNsPerMs = 1000000;

}  // namespace

struct FlowSource::Impl {
  GenOptions options;
  Rng rng;
  std::vector<FlowRecord> flows;
  std::vector<double> proto_cdf;
  uint64_t produced = 0;
  size_t cursor = 0;  // produced % flows.size(), kept without a division per record

  explicit Impl(const GenOptions& o) : options(o), rng(o.seed) {}

  // A host number in [0, 2^host_bits): uniform, or power-law skewed towards low numbers.
  uint64_t hostNumber(unsigned host_bits, uint64_t& high_bits) {
    high_bits = 0;
    if (host_bits == 0) {
      return 0;
    }
    if (options.addr_dist == AddrDist::kUniform) {
      if (host_bits > 64) {
        high_bits = rng.next() & ((host_bits >= 128) ? ~0ULL : ((1ULL << (host_bits - 64)) - 1));
        return rng.next();
      }
      return host_bits == 64 ? rng.next() : rng.below(1ULL << host_bits);
    }
    // Continuous power law on [1, n+1) with exponent s, inverted: rank 0 is the hottest host.
    double n = std::ldexp(1.0, static_cast<int>(std::min(host_bits, 52u)));
    double s = options.zipf_exponent;
    double u = rng.unit();
    double x = std::abs(s - 1) < 1e-9 ? std::pow(n + 1, u)
                                      : std::pow((std::pow(n + 1, 1 - s) - 1) * u + 1, 1 / (1 - s));
    uint64_t rank = static_cast<uint64_t>(std::max(1.0, std::floor(x))) - 1;
    uint64_t limit = host_bits >= 52 ? (1ULL << 52) - 1 : (1ULL << host_bits) - 1;
    // Skip the all-zeros host when the network has room for it.
    return std::min(rank + (host_bits > 1 ? 1 : 0), limit);
  }

  IpAddr pickAddress(const Cidr& net) {
    unsigned host_bits = (net.v4 ? 32u : 128u) - net.prefix;
    uint64_t high = 0;
    uint64_t low = hostNumber(host_bits, high);
    IpAddr a = net.base;
    // Add (high:low) to the low 128 bits; the host bits are clear, so OR is an add.
    for (int i = 0; i < 8; ++i) {
      a.bytes[15 - i] |= static_cast<uint8_t>(low >> (8 * i));
      a.bytes[7 - i] |= static_cast<uint8_t>(high >> (8 * i));
    }
    if (net.v4) {
      a.bytes[10] = 0xff;  // keep the ::ffff: mapping intact
      a.bytes[11] = 0xff;
    }
    return a;
  }

  uint8_t pickProto() {
    double u = rng.unit() * proto_cdf.back();
    for (size_t i = 0; i < proto_cdf.size(); ++i) {
      if (u < proto_cdf[i]) {
        return options.protos[i].proto;
      }
    }
    return options.protos.back().proto;
  }

  uint16_t pickDstPort() {
    uint64_t total = 0;
    for (const PortRange& r : options.dst_ports) {
      total += uint64_t{r.hi} - r.lo + 1;
    }
    uint64_t k = rng.below(total);
    for (const PortRange& r : options.dst_ports) {
      uint64_t size = uint64_t{r.hi} - r.lo + 1;
      if (k < size) {
        return static_cast<uint16_t>(r.lo + k);
      }
      k -= size;
    }
    return options.dst_ports.front().lo;
  }

  FlowRecord makeFlow() {
    FlowRecord f;
    const Cidr& src_net = options.src_nets[rng.below(options.src_nets.size())];
    std::vector<const Cidr*> dsts;
    for (const Cidr& c : options.dst_nets) {
      if (c.v4 == src_net.v4) {
        dsts.push_back(&c);
      }
    }
    const Cidr& dst_net = *dsts[rng.below(dsts.size())];
    f.ip_version = src_net.v4 ? 4 : 6;
    f.src_addr = pickAddress(src_net);
    f.dst_addr = pickAddress(dst_net);
    f.src_mask = src_net.prefix;
    f.dst_mask = dst_net.prefix;
    uint8_t next_hop_v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    f.next_hop = src_net.v4 ? IpAddr::fromV4(0xac100001) : IpAddr::fromV6(next_hop_v6);
    f.proto = pickProto();
    if (f.proto == 1 && !src_net.v4) {
      f.proto = 58;  // "icmp" in an IPv6 flow means ICMPv6
    }
    if (f.proto == 1 || f.proto == 58) {
      bool reply = rng.below(2) == 1;
      f.icmp_type = f.proto == 1 ? (reply ? 0 : 8) : (reply ? 129 : 128);
    } else {
      f.src_port = static_cast<uint16_t>(rng.between(options.src_ports.lo, options.src_ports.hi));
      f.dst_port = pickDstPort();
    }
    if (f.proto == 6) {
      // NetFlow/IPFIX: the OR of a flow's flags. sFlow: one sampled mid-connection data packet
      // (ACK or PSH+ACK), so the synthesised header is a plausible packet.
      static constexpr uint8_t kFlowFlags[] = {0x1b, 0x1b, 0x18, 0x10, 0x02, 0x12, 0x11, 0x04};
      static constexpr uint8_t kPacketFlags[] = {0x10, 0x18};
      f.tcp_flags = options.format == Format::kSflow
                        ? kPacketFlags[rng.below(std::size(kPacketFlags))]
                        : kFlowFlags[rng.below(std::size(kFlowFlags))];
    }
    static constexpr uint8_t kTos[] = {0, 0, 0, 0, 0x28, 0xb8};
    f.tos = kTos[rng.below(std::size(kTos))];
    f.in_if = static_cast<uint32_t>(rng.between(1, 8));
    f.out_if = static_cast<uint32_t>(rng.between(1, 7));
    if (f.out_if >= f.in_if) {
      ++f.out_if;
    }
    f.src_as = static_cast<uint32_t>(rng.between(64512, 65534));
    f.dst_as = static_cast<uint32_t>(rng.between(64512, 65534));
    f.src_mac = 0x020000000000ULL | (rng.next() & 0xffffffffULL);
    f.dst_mac = 0x020100000000ULL | (rng.next() & 0xffffffffULL);
    f.direction = 0;
    f.sampling_rate = options.sampling;
    f.observation_domain = options.domain;
    f.if_kind = IfKind::kSnmp;
    switch (options.format) {
      case Format::kNetflowV5:
        f.flow_proto = FlowProto::kNetflowV5;
        f.engine_type = static_cast<uint8_t>(options.domain >> 8);
        f.engine_id = static_cast<uint8_t>(options.domain);
        break;
      case Format::kNetflowV9:
        f.flow_proto = FlowProto::kNetflowV9;
        break;
      case Format::kIpfix:
        f.flow_proto = FlowProto::kIpfix;
        break;
      case Format::kSflow:
        f.flow_proto = FlowProto::kSflowV5;
        f.if_kind = IfKind::kLinuxIfindex;
        break;
    }
    IpAddr exporter;
    const std::string& who =
        options.format == Format::kSflow && !options.agent.empty() ? options.agent : options.source;
    if (who.empty() || !IpAddr::parse(who, exporter)) {
      exporter = IpAddr::fromV4(0x7f000001);
    }
    f.exporter = exporter;
    return f;
  }

  static uint64_t keyHash(const FlowRecord& f) {
    uint64_t h = 1469598103934665603ULL;
    auto mix = [&h](uint64_t v) {
      h ^= v;
      h *= 1099511628211ULL;
      h ^= h >> 29;
    };
    for (size_t i = 0; i < 16; i += 8) {
      uint64_t a = 0;
      uint64_t b = 0;
      for (size_t j = 0; j < 8; ++j) {
        a = (a << 8) | f.src_addr.bytes[i + j];
        b = (b << 8) | f.dst_addr.bytes[i + j];
      }
      mix(a);
      mix(b);
    }
    mix((uint64_t{f.src_port} << 32) | (uint64_t{f.dst_port} << 16) | (uint64_t{f.icmp_type} << 8) |
        f.proto);
    return h;
  }

  void build() {
    double acc = 0;
    for (const ProtoWeight& w : options.protos) {
      acc += w.weight;
      proto_cdf.push_back(acc);
    }
    flows.reserve(options.flows);
    std::unordered_set<uint64_t> seen;
    seen.reserve(options.flows * 2);
    for (uint32_t i = 0; i < options.flows; ++i) {
      FlowRecord f = makeFlow();
      // Redraw duplicates a few times; tiny networks may still repeat a key.
      for (int attempt = 0; attempt < 32 && !seen.insert(keyHash(f)).second; ++attempt) {
        f = makeFlow();
      }
      flows.push_back(f);
    }
  }
};

FlowSource::FlowSource(const GenOptions& options) : impl_(std::make_unique<Impl>(options)) {
  impl_->build();
}

FlowSource::~FlowSource() = default;

void FlowSource::next(uint64_t now_ns, FlowRecord& out) {
  Impl& m = *impl_;
  // The table (~170 bytes a flow) outgrows the caches at 100 k flows: fetch a few flows ahead.
  const size_t n = m.flows.size();
  const size_t k = m.cursor + 8;
  const char* ahead = reinterpret_cast<const char*>(m.flows.data() + (k < n ? k : k % n));
  for (size_t at = 0; at < sizeof(FlowRecord); at += 64) {
    __builtin_prefetch(ahead + at);
  }
  out = m.flows[m.cursor];
  ++m.produced;
  if (++m.cursor == m.flows.size()) {
    m.cursor = 0;
  }
  const GenOptions& o = m.options;
  uint64_t size = m.rng.between(o.min_packet_size, o.max_packet_size);
  if (o.format == Format::kSflow) {
    out.packets = 1;
    out.bytes = std::max<uint64_t>(size, wire::sampledHeaderLength(out));
  } else {
    out.packets = m.rng.between(o.min_packets, o.max_packets);
    out.bytes = out.packets * size;
  }
  uint64_t now_ms = now_ns / kNsPerMs;
  uint64_t last_ms = now_ms - m.rng.below(std::min<uint64_t>(1000, now_ms));
  uint64_t duration_ms = out.packets > 1 ? m.rng.below(std::min<uint64_t>(60000, last_ms)) : 0;
  out.last_ns = last_ms * kNsPerMs;
  out.first_ns = (last_ms - duration_ms) * kNsPerMs;
}

uint64_t FlowSource::produced() const {
  return impl_->produced;
}

size_t FlowSource::flowCount() const {
  return impl_->flows.size();
}

}  // namespace nc::gen
