#pragma once
// nc_decode: turns export datagrams (NetFlow v5, NetFlow v9, IPFIX, sFlow v5) into normalized
// FlowRecord batches and sFlow interface counter samples.
//
// One Decoder per receive shard. It is single-threaded and owns everything it needs: the template
// cache (keyed by exporter address, version, observation domain / source id, template id), the
// sampler tables learnt from options data, per-exporter settings and per-exporter statistics. No
// locks, no logging, and no heap allocation per datagram or record in steady state (the batch
// buffer is reused; template bytes are copied only when a template arrives).
//
// The protocol is chosen per datagram from its first bytes (16-bit version 5, 9 or 10, or a 32-bit
// sFlow version 5), so any port accepts any format. Where it stops: the decoder neither receives
// datagrams (collector/ingest) nor joins metadata (inventory); it only fills FlowRecord fields that
// the datagram carries.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collector/metrics/stats.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::decode {

// Why (part of) a datagram was dropped. Every occurrence is counted per exporter.
enum class DecodeError : uint8_t {
  kNone = 0,
  kTruncated,        // a header, set, sample or record runs past the end of the datagram
  kBadVersion,       // first bytes are not NetFlow v5/v9, IPFIX or sFlow v5
  kUnknownTemplate,  // data set whose template is not (or no longer) known
  kBadTemplate,      // hostile or inconsistent template (0 fields, too many, length 0 / > 65535)
  kTemplateLimit,    // template refused: per-exporter or total template limit reached
  kExporterLimit,    // datagram refused: too many exporters tracked
  kBadLength,        // a length or count field disagrees with the bytes present
  kBadSet,           // reserved / invalid set or flowset id
  kBadSample,        // malformed sFlow sample or record
  kCount,
};
inline constexpr size_t kDecodeErrorCount = static_cast<size_t>(DecodeError::kCount);
// "truncated", "bad_version", "unknown_template", ...
std::string_view toString(DecodeError error);

// Outcome of one decode() call.
struct DecodeStatus {
  DecodeError error = DecodeError::kNone;  // first error met (the rest of the datagram may be fine)
  uint32_t records = 0;                    // flow records handed to the sink
  uint32_t counters = 0;                   // interface counter samples handed to the sink
  bool ok() const { return error == DecodeError::kNone; }
};

// Where a datagram came from.
struct DatagramMeta {
  IpAddr exporter;           // UDP source address
  uint16_t port = 0;         // UDP source port
  uint64_t received_ns = 0;  // UNIX ns when it was received
};

// One sFlow counter sample (counter_sample / expanded counter sample) with the interface records
// the decoder understands. Fields whose record was absent stay 0 (see the has_ flags).
struct InterfaceCounters {
  IpAddr agent;              // sFlow agent address
  IpAddr exporter;           // UDP source of the datagram
  uint64_t received_ns = 0;  //
  uint32_t sub_agent = 0;    // sFlow sub-agent id
  uint32_t source_id = 0;    // data source: type << 24 | index (expanded samples: same packing)
  uint32_t sequence = 0;     // counter sample sequence number

  bool has_generic = false;  // counters_sample record 0:1 (generic interface)
  uint32_t if_index = 0;
  uint32_t if_type = 0;
  uint64_t if_speed = 0;  // bits/s
  uint32_t if_direction = 0;
  uint32_t if_status = 0;  // bit 0 admin up, bit 1 oper up
  uint64_t in_octets = 0;
  uint64_t in_packets = 0;  // unicast + multicast + broadcast (all-ones "unknown" counts as 0)
  uint64_t in_errors = 0;
  uint64_t in_discards = 0;
  uint64_t out_octets = 0;
  uint64_t out_packets = 0;
  uint64_t out_errors = 0;
  uint64_t out_discards = 0;

  bool has_ethernet = false;  // record 0:2 (dot3 counters; only presence is kept)

  bool has_openflow = false;  // record 0:1004 (Open vSwitch: OpenFlow datapath id + port)
  uint64_t of_dpid = 0;
  uint32_t of_port = 0;

  bool has_port_name = false;  // record 0:1005 (port name, e.g. OVS "h1-ovs")
  uint8_t port_name_len = 0;
  std::array<char, 64> port_name{};  // truncated to 64 bytes
  std::string_view portName() const { return {port_name.data(), port_name_len}; }
};

// An interface name learnt from IPFIX / NetFlow v9 interfaceName (IE 82) in flow records (OVS
// names the ingress and egress port of every record) or in options data (router interface
// tables, scope "Interface"). Reported once per (exporter, if index) and again when it changes.
struct InterfaceName {
  IpAddr exporter;  // UDP source of the datagram
  uint32_t domain = 0;
  uint32_t if_index = 0;
  IfKind if_kind = IfKind::kUnknown;  // numbering of if_index (as on the exporter's records)
  FlowProto proto = FlowProto::kUnknown;
  std::string_view name;  // trailing NULs/spaces removed, at most kMaxIfNameLength bytes
  uint64_t received_ns = 0;
};
inline constexpr size_t kMaxIfNameLength = 64;

// Receives the decoder's output. Called synchronously from decode(); the span is only valid during
// the call.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void onRecords(std::span<const FlowRecord> records) = 0;
  // What the decoder calls: the batch is the decoder's own buffer, which a sink may modify in
  // place before passing it on (the daemon joins inventory names to it, collector/sink). The
  // default hands it to onRecords().
  virtual void onRecordBatch(std::span<FlowRecord> records) { onRecords(records); }
  virtual void onCounters(const InterfaceCounters& counters) { (void)counters; }
  virtual void onInterfaceName(const InterfaceName& name) { (void)name; }
};

// What kind of device an exporter is. kAuto decides from what it sends:
// - IPFIX: a template whose first two fields are observationPointId (138) then flowDirection (61)
//   is the layout Open vSwitch's ofproto-dpif-ipfix.c writes, so the exporter becomes kOvs.
// - sFlow: a counter sample carrying the OpenFlow port record (0:1004) or an OVS datapath record
//   (0:2207) makes the agent's exporter kOvs.
// - NetFlow v5 carries nothing that identifies OVS; a v5 exporter is only kOvs when the same
//   source address was already detected through IPFIX/sFlow, or when configured.
enum class ExporterFlavor : uint8_t { kAuto = 0, kRouter = 1, kOvs = 2 };
std::string_view toString(ExporterFlavor flavor);

// Per-exporter settings (the config layer calls Decoder::setExporterConfig).
struct ExporterConfig {
  ExporterFlavor flavor = ExporterFlavor::kAuto;
  uint32_t sampling_rate = 0;         // > 0: overrides any rate the exporter announces
  IfKind if_kind = IfKind::kUnknown;  // != kUnknown: overrides the derived interface numbering
  friend bool operator==(const ExporterConfig&, const ExporterConfig&) = default;
};

struct DecoderOptions {
  uint32_t max_exporters = 4096;                    // exporters tracked (stats, templates)
  uint32_t max_templates_per_exporter = 2048;       // OVS alone defines ~120 per domain
  uint32_t max_templates_total = 65536;             //
  uint64_t template_timeout_ns = 1800'000'000'000;  // > OVS's fixed 600 s resend interval
  uint32_t max_template_fields = 256;               // more is treated as hostile
  uint32_t batch_records = 256;                     // records per onRecords() call (at most)
  friend bool operator==(const DecoderOptions&, const DecoderOptions&) = default;
};

// DecodeError as a Prometheus label: reason="truncated", ... (kNone is not exposed).
struct DecodeErrorLabel {
  static constexpr std::string_view key = "reason";
  static constexpr size_t first = 1;
  static std::string_view name(size_t i) { return toString(static_cast<DecodeError>(i)); }
};
using DecodeErrorCounts = metrics::CountsBy<DecodeErrorLabel, kDecodeErrorCount>;

// One exporter's counters (collector/metrics/stats.hpp). JSON keys are those of the daemon's
// `exporters` answer; Prometheus families net_collector_exporter_*{exporter,protocol}; the column
// is the title in `net-collector status`'s exporter table.
//
// Sequence tracking is converted to each protocol's unit: v5 counts records, v9 datagrams per
// source id, IPFIX data records per observation domain, sFlow datagrams per agent/sub-agent and
// samples per data source. sampler_drops is loss at the sFlow agent (it ran out of resources),
// from the increase of each data source's `drops` counter in its flow samples; lost_records counts
// sequence gaps (network or collector loss).
// X(TYPE, ctype, member, "key", UNIT, "column", "help")
#define NC_EXPORTER_STATS(X)                                                                      \
  X(Counter, uint64_t, datagrams, "datagrams", None, "datagrams", "Datagrams received")           \
  X(Counter, uint64_t, bytes, "bytes", Bytes, "", "UDP payload bytes received")                   \
  X(Counter, uint64_t, flow_records, "records", None, "records",                                  \
    "Flow records decoded and handed on")                                                         \
  X(Counter, uint64_t, options_records, "options_records", None, "",                              \
    "NetFlow v9/IPFIX options data records consumed")                                             \
  X(Counter, uint64_t, counter_samples, NC_KEY_PROM("counter_samples", "sflow_counters_samples"), \
    None, "", "sFlow counter samples decoded")                                                    \
  X(Counter, uint64_t, lost_datagrams, "lost_datagrams", None, "lost_dgrams",                     \
    "Datagrams estimated lost from sequence numbers")                                             \
  X(Counter, uint64_t, lost_records, "lost_records", None, "lost_records",                        \
    "Records (NetFlow v5, IPFIX) or samples (sFlow) estimated lost from sequence numbers")        \
  X(Counter, uint64_t, sequence_resets, "sequence_resets", None, "",                              \
    "Sequence numbers that went backwards or jumped implausibly (restart or reordering)")         \
  X(Counter, uint64_t, sampler_drops, "sampler_drops", None, "agent_drops",                       \
    "sFlow samples the agent itself dropped (its data sources' drops counters)")                  \
  X(Counter, DecodeErrorCounts, errors, "errors", None, "errors",                                 \
    "Datagrams or parts of datagrams refused, by reason")                                         \
  X(Counter, uint64_t, templates_received, "templates_received", None, "",                        \
    "NetFlow v9/IPFIX template definitions received")                                             \
  X(Counter, uint64_t, templates_withdrawn, "templates_withdrawn", None, "",                      \
    "IPFIX template withdrawals received")                                                        \
  X(Counter, uint64_t, templates_expired, "templates_expired", None, "",                          \
    "Templates dropped after not being refreshed within the template timeout")                    \
  X(Gauge, uint32_t, templates_known, "templates_known", None, "templates",                       \
    "Templates currently known")

// Plain snapshot of one exporter's counters (keyed by the datagram's source address and the
// protocol).
struct ExporterStats {
  IpAddr exporter;
  FlowProto last_proto = FlowProto::kUnknown;
  ExporterFlavor flavor = ExporterFlavor::kAuto;  // configured, else detected (kAuto = unknown)
  uint64_t first_seen_ns = 0;
  uint64_t last_seen_ns = 0;
  NC_STATS_DEFINE(ExporterStats, NC_EXPORTER_STATS)
  // Sum of the errors (every reason).
  uint64_t errorTotal() const { return errors.total(); }
  // Adds `other`'s counters to these (the same exporter seen by several decoders, or totals);
  // first/last seen widen, the newest protocol wins.
  void add(const ExporterStats& other);
};

class Decoder {
 public:
  explicit Decoder(const DecoderOptions& options = {});
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes one datagram; records are delivered to sink.onRecords() in batches (possibly several
  // per datagram), sFlow counter samples to sink.onCounters(). Never throws.
  DecodeStatus decode(std::span<const uint8_t> datagram, const DatagramMeta& meta,
                      RecordSink& sink);

  // Per-exporter settings; `exporter` is the datagram source address (for sFlow also matched
  // against the agent address). setDefaultExporterConfig applies to exporters without their own.
  void setExporterConfig(const IpAddr& exporter, const ExporterConfig& config);
  void clearExporterConfig(const IpAddr& exporter);
  void setDefaultExporterConfig(const ExporterConfig& config);

  // Drops templates not refreshed within options.template_timeout_ns of now_ns (decode() also
  // checks each template it uses). Returns how many were dropped.
  size_t expireTemplates(uint64_t now_ns);

  // Template persistence (versioned binary file; save is atomic: temp + fsync + rename). Load
  // merges into the cache, keeping each template's last refresh time; returns false and sets
  // `why` on I/O or format errors (a corrupt file loads nothing).
  bool saveTemplates(const std::string& path, std::string* why = nullptr) const;
  bool loadTemplates(const std::string& path, std::string* why = nullptr);
  size_t templateCount() const;

  // One entry per (exporter, protocol): an address sending several protocols (an Open vSwitch
  // host: NetFlow, sFlow and IPFIX) gets one entry for each, last_proto naming it.
  std::vector<ExporterStats> stats() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A sink that only counts, for benchmarks and fuzzing.
class CountingSink : public RecordSink {
 public:
  void onRecords(std::span<const FlowRecord> records) override {
    records_ += records.size();
    for (const FlowRecord& r : records) {
      bytes_ += r.bytes;
    }
  }
  void onCounters(const InterfaceCounters&) override { ++counters_; }
  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t counters() const { return counters_; }

 private:
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
  uint64_t counters_ = 0;
};

}  // namespace nc::decode
