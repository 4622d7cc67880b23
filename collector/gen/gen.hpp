#pragma once
// nc_gen: the flow generator behind `net-collector gen`.
//
// It synthesises flows and sends them as NetFlow v5, NetFlow v9, IPFIX or sFlow v5 datagrams to a
// collector (or writes them into a pcap), paced at a chosen rate, and reports what it sent so tests
// can compare with what a collector stored. Pieces, from the inside out:
//
//   FlowSource   options + seed -> a deterministic stream of FlowRecords (pure, no clock, no I/O)
//   encode*()    FlowRecords -> one datagram of the chosen format, advancing an ExportState
//                (sequence numbers, template cadence)
//   Generator    FlowSource + encoder + count/record limits + totals: "give me the next datagram"
//   runGen()     Generator + clock + UDP socket (sendmmsg, token-bucket pacing) or pcap file
//   addGenCommand()  the `gen` CLI subcommand (CLI11) filling GenOptions and calling runGen()
//
// Determinism: the same options and seed give the same records and datagrams. Only timestamps
// follow the wall clock (header export time, sysUptime, flow start/end); with `fixed_time` they
// come from a virtual clock starting at kFixedTimeNs, so the bytes are fully reproducible.
//
// Out of scope: receiving or decoding (see collector/decode/), counter samples for sFlow, IPFIX
// over TCP/SCTP.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/record/flow_record.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace nc::gen {

enum class Format : uint8_t { kNetflowV5, kNetflowV9, kIpfix, kSflow };

// "v5", "v9", "ipfix", "sflow" (also "netflow5", "nf5", "netflow9", "nf9", "sflow5").
bool parseFormat(std::string_view text, Format& out);
std::string_view toString(Format format);
// 2055 for NetFlow, 4739 for IPFIX, 6343 for sFlow.
uint16_t defaultPort(Format format);

// An IPv4 or IPv6 network, e.g. 10.0.0.0/8 or 2001:db8::/48.
struct Cidr {
  IpAddr base;         // host bits cleared
  uint8_t prefix = 0;  // 0..32 for IPv4, 0..128 for IPv6
  bool v4 = true;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};
// "10.0.0.0/8", "2001:db8::/64", or a bare address (a /32 or /128). Host bits are cleared.
bool parseCidr(std::string_view text, Cidr& out, std::string* why = nullptr);

// An inclusive range of ports.
struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 0;
  friend bool operator==(const PortRange&, const PortRange&) = default;
};
// "80,443,8000-8010" -> {80-80, 443-443, 8000-8010}.
bool parsePortList(std::string_view text, std::vector<PortRange>& out, std::string* why = nullptr);

// IP protocol with a relative weight.
struct ProtoWeight {
  uint8_t proto = 6;
  double weight = 1;
  friend bool operator==(const ProtoWeight&, const ProtoWeight&) = default;
};
// "tcp:80,udp:15,icmp:5" or "6:1,17:1" or "tcp" (weight 1). "icmp" means ICMPv6 in IPv6 flows.
bool parseProtoMix(std::string_view text, std::vector<ProtoWeight>& out,
                   std::string* why = nullptr);

// "127.0.0.1:2055", "[::1]:4739", "::1", "collector.example" (port 0 = the format's default).
bool parseTarget(std::string_view text, std::string& host, uint16_t& port,
                 std::string* why = nullptr);

enum class AddrDist : uint8_t { kUniform, kZipf };

// A fixed clock for reproducible output: 2024-01-01T00:00:00Z.
inline constexpr uint64_t kFixedTimeNs = 1704067200ULL * 1000000000ULL;

struct GenOptions {
  Format format = Format::kNetflowV5;
  std::string target_host = "127.0.0.1";
  uint16_t target_port = 0;  // 0 = defaultPort(format)
  std::string source;        // bind (and pcap source) address; "" = any / 127.0.0.1 or ::1

  // Pacing and limits. A run stops at the first limit reached; with none it runs until SIGINT.
  double rate = 1000;        // datagrams per second, 0 = as fast as possible
  uint64_t count = 0;        // datagrams, 0 = no limit
  uint64_t records = 0;      // flow records, 0 = no limit (the last datagram may be partial)
  uint64_t duration_ms = 0;  // 0 = no limit

  // What the flows look like.
  uint32_t flows = 1000;       // distinct flows, reused round-robin
  std::vector<Cidr> src_nets;  // empty = 10.0.0.0/16
  std::vector<Cidr> dst_nets;  // empty = 192.168.0.0/16
  AddrDist addr_dist = AddrDist::kUniform;
  double zipf_exponent = 1.2;        // skew of host addresses with kZipf (> 0)
  std::vector<PortRange> dst_ports;  // empty = 80,443,53,123,22,8080
  PortRange src_ports{1024, 65535};  // uniform
  std::vector<ProtoWeight> protos;   // empty = tcp:80,udp:15,icmp:5
  uint32_t min_packets = 1;          // packets per record, uniform in [min, max]
  uint32_t max_packets = 100;        //   (sFlow: always 1, one sampled packet per sample)
  uint32_t min_packet_size = 64;     // bytes per packet, uniform in [min, max]
  uint32_t max_packet_size = 1500;   //   (sFlow: the frame length, at least the header)

  // Encoding.
  uint32_t records_per_packet = 0;  // 0 = as many as fit in `mtu`
  uint32_t mtu = 1400;              // largest datagram (UDP payload) in bytes
  uint32_t sampling = 1;            // 1-in-N sampling rate to advertise
  uint32_t template_interval = 20;  // v9/IPFIX: templates every N datagrams (0 = first only)
  uint32_t domain = 1;  // v9 source id, IPFIX observation domain, sFlow sub-agent id, v5 engine id
  std::string agent;    // sFlow agent address; "" = source, else 127.0.0.1
  // sFlow: a counters sample (generic interface counters of the data source) in datagram 0 and
  // every N datagrams, so `net-collector interfaces` has something to show (0 = none).
  uint32_t counters_interval = 10;

  uint64_t seed = 1;
  bool fixed_time = false;  // virtual clock from kFixedTimeNs (byte-identical runs)

  // Output.
  bool dry_run = false;  // build datagrams but send nothing (and ignore `rate`)
  std::string pcap;      // write datagrams into this classic pcap instead of sending
  bool json = false;     // JSON totals on stdout
  bool quiet = false;    // no human summary or progress on stderr
  uint32_t batch = 64;   // datagrams per sendmmsg call
  bool gso = false;      // send runs of equal-size datagrams as UDP GSO super-datagrams
  // Build the first `repeat` datagrams, then send them again and again with their header's
  // sequence numbers (and sFlow sample sequences) continued and the export time renewed
  // (0 = build every datagram). A sender that costs little CPU, for load tests.
  uint32_t repeat = 0;
};

// Checks `options` and fills defaults (nets, ports, protocols, port). Returns "" when usable,
// otherwise one message per line.
std::string validate(GenOptions& options);

// Deterministic flows: builds `flows` distinct flows from the options and seed, then returns them
// round-robin with fresh counters. No clock: `now_ns` anchors the record times (ms resolution).
class FlowSource {
 public:
  // `options` must have passed validate().
  explicit FlowSource(const GenOptions& options);
  ~FlowSource();
  FlowSource(const FlowSource&) = delete;
  FlowSource& operator=(const FlowSource&) = delete;

  void next(uint64_t now_ns, FlowRecord& out);
  uint64_t produced() const;
  size_t flowCount() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Per-exporter header state shared by consecutive datagrams. Set the configuration once and
// `export_ns` before each datagram; the encoders advance the counters.
struct ExportState {
  // Configuration.
  uint32_t domain = 1;  // v9 source id / IPFIX observation domain / sFlow sub-agent / v5 engine id
  uint32_t sampling = 1;  // advertised 1-in-N rate (v5 header, v9/IPFIX options, sFlow samples)
  uint32_t template_interval = 20;  // v9/IPFIX: templates in datagram 0 and every N (0 = first)
  size_t max_datagram = 1400;       // bytes; encoders stop adding records before exceeding it
  uint64_t boot_ns = 0;             // exporter boot time, for sysUptime (v5, v9, sFlow)
  IpAddr agent = IpAddr::fromV4(0x7f000001);  // sFlow agent address
  uint32_t sflow_source_index = 1;            // sFlow data source (ifIndex class 0)
  uint32_t counters_interval = 0;  // sFlow: counters sample in datagram 0 and every N (0 = none)
  // Set before each datagram.
  uint64_t export_ns = 0;  // header export time
  // Counters, advanced by the encoders.
  uint64_t datagrams = 0;         // datagrams encoded so far
  uint32_t sequence = 0;          // v5: flows so far; v9: datagrams so far; IPFIX: data records so
                                  // far (options data included); sFlow: last datagram sequence
  uint32_t sample_sequence = 0;   // sFlow: last flow-sample sequence (1-based)
  uint32_t counter_sequence = 0;  // sFlow: last counters-sample sequence (1-based)
  uint64_t if_in_octets = 0;      // sFlow: the data source's counters, advanced by every sampled
  uint64_t if_in_packets = 0;     //   packet (frame length x rate, rate packets)
  uint32_t last_templates = 0;    // template + options template records in the last datagram
};

// Each encoder clears `out`, writes ONE datagram holding as many of `records` (from the front) as
// fit in state.max_datagram, and returns how many it took (0 means not even one fits). v5 takes at
// most 30 and only IPv4 records. v9 and IPFIX start with the templates when they are due (datagram
// 0 and every template_interval) and, when sampling > 1, an options template + record with the
// sampling interval (IE 34/35; IPFIX also 305/306).
size_t encodeNetflowV5(std::span<const FlowRecord> records, ExportState& state,
                       std::vector<uint8_t>& out);
size_t encodeNetflowV9(std::span<const FlowRecord> records, ExportState& state,
                       std::vector<uint8_t>& out);
size_t encodeIpfix(std::span<const FlowRecord> records, ExportState& state,
                   std::vector<uint8_t>& out);
// sFlow v5: one flow sample per record (one sampled packet: frame length = bytes / packets), each
// with a raw packet header record (synthesised Ethernet + IPv4/IPv6 + TCP/UDP/ICMP headers). When
// counters_interval > 0, datagram 0 and every counters_interval-th start with a counters sample
// (0:2) holding one generic interface counters record (0:1, RFC 3176 if_counters) for the data
// source: 10 Gbit/s Ethernet, up, input counters from the samples sent so far.
size_t encodeSflow(std::span<const FlowRecord> records, ExportState& state,
                   std::vector<uint8_t>& out);
size_t encode(Format format, std::span<const FlowRecord> records, ExportState& state,
              std::vector<uint8_t>& out);

// Totals of a run. flow_packets/flow_bytes are the sums of the records' packets/bytes as encoded
// (for sFlow: one packet per sample and the frame lengths), before sampling is applied.
struct GenStats {
  uint64_t datagrams = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;       // UDP payload bytes
  uint64_t wire_bytes = 0;  // with Ethernet + IP + UDP headers, as in the pcap
  uint64_t flow_packets = 0;
  uint64_t flow_bytes = 0;
  uint64_t send_errors = 0;  // datagrams the kernel refused
  double elapsed_s = 0;
};

// FlowSource + encoder + the count/record limits. next() builds the following datagram.
class Generator {
 public:
  // `options` must have passed validate().
  explicit Generator(const GenOptions& options);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Builds the next datagram with export time `now_ns` into `out`; false when the count/record
  // limit is reached (or, with an impossible mtu, when nothing fits).
  bool next(uint64_t now_ns, std::vector<uint8_t>& out);
  // Counters so far (elapsed_s, send_errors and wire_bytes are left to the caller).
  const GenStats& stats() const;
  // Records of the last datagram, in order.
  std::span<const FlowRecord> lastRecords() const;
  const ExportState& state() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs a whole generation as the CLI does: validates (a copy of) `options`, sends or writes the
// datagrams, prints the summary (stderr; JSON on stdout with `json`). Returns the exit status
// (0 ok, 1 runtime error, 2 bad options) and fills `stats` when given.
int runGen(const GenOptions& options, GenStats* stats = nullptr);

// Registers `gen` on `app`. The subcommand runs from its CLI11 callback during app.parse(); a
// non-zero status is thrown as CLI::RuntimeError(status), which CLI11_PARSE / app.exit() return.
void addGenCommand(CLI::App& app);

}  // namespace nc::gen
