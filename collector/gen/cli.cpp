// The `gen` subcommand: CLI11 options -> GenOptions -> runGen() (see gen.hpp).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "collector/gen/gen.hpp"
#include "common/units.hpp"

namespace nc::gen {
namespace {

// Raw command-line values that need parsing beyond what CLI11 does.
struct GenArgs {
  GenOptions options;
  std::string format = "v5";
  std::string target = "127.0.0.1";
  std::string duration;
  std::vector<std::string> src_nets;
  std::vector<std::string> dst_nets;
  std::string addr_dist = "uniform";
  std::string dst_ports;
  std::string src_ports = "1024-65535";
  std::string protos;
  std::string packets = "1-100";
  std::string packet_size = "64-1500";
};

// "A-B" or "A" into [lo, hi].
bool parseRange(const std::string& text, uint64_t max, uint32_t& lo, uint32_t& hi) {
  size_t dash = text.find('-');
  try {
    size_t used = 0;
    unsigned long a = std::stoul(text.substr(0, dash), &used);
    if (used != (dash == std::string::npos ? text.size() : dash)) {
      return false;
    }
    unsigned long b = a;
    if (dash != std::string::npos) {
      b = std::stoul(text.substr(dash + 1), &used);
      if (used != text.size() - dash - 1) {
        return false;
      }
    }
    if (a > b || b > max) {
      return false;
    }
    lo = static_cast<uint32_t>(a);
    hi = static_cast<uint32_t>(b);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// Turns the raw values into options; returns "" or the problems, one per line.
std::string finish(GenArgs& a) {
  std::string errors;
  std::string why;
  GenOptions& o = a.options;
  if (!parseFormat(a.format, o.format)) {
    errors += "--format: want v5, v9, ipfix or sflow (got '" + a.format + "')\n";
  }
  if (!parseTarget(a.target, o.target_host, o.target_port, &why)) {
    errors += "--target: " + why + "\n";
  }
  if (!a.duration.empty()) {
    auto ms = units::parseDurationMs(a.duration, &why);
    if (!ms) {
      errors += "--duration: " + why + "\n";
    } else {
      o.duration_ms = *ms;
    }
  }
  for (auto [texts, nets, name] : {std::tuple{&a.src_nets, &o.src_nets, "--src-net"},
                                   std::tuple{&a.dst_nets, &o.dst_nets, "--dst-net"}}) {
    nets->clear();
    for (const std::string& t : *texts) {
      Cidr c;
      if (!parseCidr(t, c, &why)) {
        errors += std::string(name) + ": " + why + "\n";
      } else {
        nets->push_back(c);
      }
    }
  }
  if (a.addr_dist == "uniform") {
    o.addr_dist = AddrDist::kUniform;
  } else if (a.addr_dist == "zipf") {
    o.addr_dist = AddrDist::kZipf;
  } else {
    errors += "--addr-dist: want uniform or zipf\n";
  }
  if (!a.dst_ports.empty() && !parsePortList(a.dst_ports, o.dst_ports, &why)) {
    errors += "--dst-ports: " + why + "\n";
  }
  uint32_t lo = 0;
  uint32_t hi = 0;
  if (!parseRange(a.src_ports, 65535, lo, hi)) {
    errors += "--src-ports: want LO-HI within 0-65535\n";
  } else {
    o.src_ports = {static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)};
  }
  if (!a.protos.empty() && !parseProtoMix(a.protos, o.protos, &why)) {
    errors += "--proto: " + why + "\n";
  }
  if (!parseRange(a.packets, 1u << 31, o.min_packets, o.max_packets)) {
    errors += "--packets: want MIN-MAX or N\n";
  }
  if (!parseRange(a.packet_size, 65535, o.min_packet_size, o.max_packet_size)) {
    errors += "--packet-size: want MIN-MAX or N (bytes)\n";
  }
  if (errors.empty()) {
    errors = validate(o);
  }
  return errors;
}

}  // namespace

void addGenCommand(CLI::App& app) {
  auto args = std::make_shared<GenArgs>();
  GenOptions& o = args->options;
  CLI::App* gen = app.add_subcommand(
      "gen",
      "Generate synthetic flows and send them as NetFlow v5/v9, IPFIX or sFlow v5 (load tests, "
      "collector checks). Prints the totals sent (datagrams, records, bytes, sum of flow packets "
      "and bytes) on stderr, and as JSON on stdout with --json.");
  gen->footer(
      "Examples:\n"
      "  net-collector gen -f ipfix -t 127.0.0.1 --rate 5000 --duration 30s\n"
      "  net-collector gen -f v9 -t [::1]:2055 --src-net 2001:db8:1::/48 --dst-net "
      "2001:db8:2::/48 -c 1000\n"
      "  net-collector gen -f sflow --sampling 512 --records 10000 --pcap sflow.pcap --json\n"
      "  net-collector gen -f v5 --rate 0 --count 1000000 --flows 50000 --addr-dist zipf\n"
      "Same --seed and options give the same datagrams; add --fixed-time for byte-identical "
      "output (timestamps from a virtual clock starting 2024-01-01T00:00:00Z).");
  gen->add_option("-f,--format", args->format, "v5, v9, ipfix or sflow")->capture_default_str();
  gen->add_option("-t,--target", args->target,
                  "collector HOST[:PORT] or [IPv6]:PORT (port default: 2055 NetFlow, 4739 IPFIX, "
                  "6343 sFlow)")
      ->capture_default_str();
  gen->add_option("--source", o.source,
                  "local address to send from (also the pcap source and sFlow agent)");
  gen->add_option("-r,--rate", o.rate, "datagrams per second, 0 = as fast as possible")
      ->capture_default_str();
  gen->add_option("-c,--count", o.count, "stop after this many datagrams");
  gen->add_option("-n,--records", o.records, "stop after this many flow records");
  gen->add_option("-d,--duration", args->duration, "stop after this long (e.g. 30s, 5m)");
  gen->add_option("--flows", o.flows, "distinct flows, reused round-robin")->capture_default_str();
  gen->add_option("--src-net", args->src_nets,
                  "source network(s), CIDR, IPv4 or IPv6 (repeatable; default 10.0.0.0/16)");
  gen->add_option("--dst-net", args->dst_nets,
                  "destination network(s), CIDR (repeatable; default 192.168.0.0/16)");
  gen->add_option("--addr-dist", args->addr_dist,
                  "host addresses within the networks: uniform or zipf (few hosts get most flows)")
      ->capture_default_str();
  gen->add_option("--zipf-exponent", o.zipf_exponent, "skew of --addr-dist zipf (> 0)")
      ->capture_default_str();
  gen->add_option("--dst-ports", args->dst_ports,
                  "destination ports, list and ranges (default 80,443,53,123,22,8080)");
  gen->add_option("--src-ports", args->src_ports, "source port range, uniform")
      ->capture_default_str();
  gen->add_option("--proto", args->protos,
                  "protocol mix NAME[:WEIGHT],... (default tcp:80,udp:15,icmp:5)");
  gen->add_option("--packets", args->packets, "packets per flow record, MIN-MAX (uniform)")
      ->capture_default_str();
  gen->add_option("--packet-size", args->packet_size,
                  "bytes per packet, MIN-MAX (sFlow: the sampled frame length)")
      ->capture_default_str();
  gen->add_option("--rpp,--records-per-packet", o.records_per_packet,
                  "records per datagram, 0 = as many as fit in --mtu (v5: at most 30)")
      ->capture_default_str();
  gen->add_option("--mtu", o.mtu, "largest datagram (UDP payload) in bytes")->capture_default_str();
  gen->add_option("--sampling", o.sampling,
                  "1-in-N sampling rate to advertise (v5 header, v9/IPFIX options template, "
                  "sFlow samples)")
      ->capture_default_str();
  gen->add_option("--template-interval", o.template_interval,
                  "v9/IPFIX: resend templates every N datagrams (0 = only the first)")
      ->capture_default_str();
  gen->add_option("--domain", o.domain,
                  "IPFIX observation domain / v9 source id / sFlow sub-agent / v5 engine id")
      ->capture_default_str();
  gen->add_option("--agent", o.agent, "sFlow agent address (default --source or 127.0.0.1)");
  gen->add_option("--counters-interval", o.counters_interval,
                  "sFlow: a counters sample (generic interface counters of the data source) in "
                  "the first datagram and every N datagrams, for `net-collector interfaces` "
                  "(0 = none)")
      ->capture_default_str();
  gen->add_option("--seed", o.seed, "random seed")->capture_default_str();
  gen->add_flag("--fixed-time", o.fixed_time,
                "timestamps from a virtual clock (byte-identical output for the same seed)");
  gen->add_flag("--dry-run", o.dry_run, "build the datagrams but send nothing");
  gen->add_option("--pcap", o.pcap,
                  "write the datagrams into this pcap (Ethernet/IP/UDP) instead of sending");
  gen->add_flag("--json", o.json, "print the totals as a JSON object on stdout");
  gen->add_flag("-q,--quiet", o.quiet, "no summary or progress on stderr");
  gen->add_option("--batch", o.batch, "datagrams per sendmmsg() call")->capture_default_str();
  gen->add_flag("--gso", o.gso,
                "hand runs of equal-size datagrams to the kernel as one UDP GSO send (Linux "
                "4.18+): receivers see the same datagrams, the sender spends far less CPU (load "
                "tests on the collector's own machine); falls back to plain sends when refused");
  gen->add_option("--repeat", o.repeat,
                  "build only the first N datagrams, then send them again and again with the "
                  "sequence numbers continued and the export time renewed (flow times relative to "
                  "it move on: v5, v9, sFlow; IPFIX's absolute ones stay): a load test that costs "
                  "the sender little CPU (0 = build every datagram)")
      ->capture_default_str();
  gen->callback([args] {
    std::string errors = finish(*args);
    if (!errors.empty()) {
      std::fprintf(stderr, "gen: %s", errors.c_str());
      throw CLI::RuntimeError(2);
    }
    int status = runGen(args->options);
    if (status != 0) {
      throw CLI::RuntimeError(status);
    }
  });
}

}  // namespace nc::gen
