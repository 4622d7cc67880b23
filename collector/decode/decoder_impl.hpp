#pragma once
// Internal state of nc::decode::Decoder, shared by the per-protocol translation units
// (netflow_v5.cpp, template_decoder.cpp for v9 + IPFIX, sflow.cpp, templates.cpp). Not installed;
// nothing outside collector/decode/ includes it (the fuzz targets and unit tests excepted).
//
// Template plans (nfdump's "sequencer" idea): each template is compiled once, when it arrives, into
// a flat list of steps {gap, length, op}. Decoding a record replays the steps: skip `gap` fixed
// bytes, read the field (length 0xffff = IPFIX variable length), apply `op` to the record. Fields
// the decoder does not use cost nothing per record: they are folded into the next step's gap.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "collector/decode/byte_reader.hpp"
#include "collector/decode/decoder.hpp"

namespace nc::decode {

struct IpAddrHash {
  size_t operator()(const IpAddr& a) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (uint8_t b : a.bytes) {
      h = (h ^ b) * 1099511628211ull;
    }
    return static_cast<size_t>(h);
  }
};

// What a template field does to the record being decoded.
enum class Op : uint8_t {
  kSkip = 0,
  kOctetDelta,
  kPacketDelta,
  kOctetTotal,
  kPacketTotal,
  kProto,
  kTos,
  kTcpFlags,
  kSrcPort,
  kDstPort,
  kSrcV4,
  kDstV4,
  kSrcV6,
  kDstV6,
  kSrcMask,
  kDstMask,
  kInIf,
  kOutIf,
  kNextHopV4,
  kNextHopV6,
  kBgpNextHopV4,
  kBgpNextHopV6,
  kSrcAs,
  kDstAs,
  kFirstUptime,  // 22 flowStartSysUpTime / FIRST_SWITCHED (ms)
  kLastUptime,   // 21 flowEndSysUpTime / LAST_SWITCHED (ms)
  kIcmpTypeCode,
  kIcmpType,
  kIcmpCode,
  kSrcMac,
  kDstMac,
  kPostSrcMac,
  kPostDstMac,
  kVlan,
  kDot1qVlan,
  kDirection,
  kIpVersion,
  kEndReason,
  kEngineType,
  kEngineId,
  kSamplerId,               // 48 samplerId / FLOW_SAMPLER_ID, 302 selectorId
  kSamplingInterval,        // 34 samplingInterval
  kSamplerRandomInterval,   // 50 samplerRandomInterval
  kSamplingPacketInterval,  // 305
  kSamplingPacketSpace,     // 306
  kSamplingSize,            // 309
  kSamplingPopulation,      // 310
  kStartSec,                // 150
  kEndSec,                  // 151
  kStartMs,                 // 152
  kEndMs,                   // 153
  kStartUs,                 // 154 (NTP format)
  kEndUs,                   // 155
  kStartNs,                 // 156 (NTP format)
  kEndNs,                   // 157
  kStartDeltaUs,            // 158 (before export time)
  kEndDeltaUs,              // 159
  kSysInitMs,               // 160 systemInitTimeMilliseconds
  kInIfName,                // 82 interfaceName after ingressInterface (or first in the template)
  kOutIfName,               // 82 interfaceName after egressInterface (OVS egress templates)
  kInIfDesc,                // 83 interfaceDescription (Cisco IF_DESC), same placement rule
  kOutIfDesc,               //
  kCount,
};

// Maps an IANA IE (enterprise 0) to its op; kSkip for anything the record does not carry.
Op opForElement(uint16_t id);

struct FieldSpec {
  uint16_t id = 0;
  uint16_t length = 0;  // 0xffff = variable length
  uint32_t pen = 0;     // enterprise number (IPFIX), 0 = IANA
  friend bool operator==(const FieldSpec&, const FieldSpec&) = default;
};

inline constexpr uint16_t kVarLen = 0xffff;

struct Step {
  uint16_t gap = 0;     // fixed bytes to skip before this field
  uint16_t length = 0;  // field length, kVarLen = read the IPFIX length prefix
  Op op = Op::kSkip;
  uint8_t shift = 0;         // fixed length 1..8: 64 - 8 * length (loadBe64Shifted)
  uint16_t load_offset = 0;  // fixed length > 8: length - 8 (the last 8 bytes)
};

// A fixed-length field whose value is only stored: the 8-byte big-endian load at `src` (offset
// in the record), shifted right, then its low 1/2/4/8 bytes stored at `dst` in the FlowRecord
// (base 0) or the RecordScratch (base 1). Replayed without a branch per field.
struct Move {
  uint16_t src = 0;
  uint16_t dst = 0;
  uint8_t shift = 0;
  uint8_t base = 0;
};

struct Template {
  std::vector<FieldSpec> fields;  // as received (kept for persistence)
  std::vector<Step> steps;        // compiled plan
  // Fixed-length templates also get a split plan, used when 7 bytes follow the record: `moves`
  // grouped by stored width (u8 up to move_end[0], u16 up to [1], u32 up to [2], then u64), the
  // kHas* bits those moves set, and the other fields as steps whose gap is their record offset.
  std::vector<Move> moves;
  std::array<uint16_t, 3> move_end{};
  uint32_t move_present = 0;
  std::vector<Step> others;
  uint16_t tail_gap = 0;     // fixed bytes after the last step
  uint16_t scope_count = 0;  // options templates: leading scope fields
  uint32_t min_length = 0;   // smallest possible record (fixed bytes + 1 per varlen field)
  bool varlen = false;
  bool options = false;
  bool ovs_layout = false;  // starts with observationPointId(138), flowDirection(61): Open vSwitch
  uint64_t refreshed_ns = 0;
};

struct TemplateKey {
  IpAddr exporter;
  uint32_t domain = 0;
  uint16_t id = 0;
  uint8_t version = 0;
  friend bool operator==(const TemplateKey&, const TemplateKey&) = default;
};
struct TemplateKeyHash {
  size_t operator()(const TemplateKey& k) const {
    size_t h = IpAddrHash()(k.exporter);
    h ^= (uint64_t{k.domain} << 24 | uint64_t{k.id} << 8 | k.version) * 0x9e3779b97f4a7c15ull;
    return h;
  }
};

// Validates and compiles `spec` into `out` (fields, steps, lengths). v9 scope fields (scope
// types, not IEs) are skipped. Returns kNone, kBadTemplate.
DecodeError compileTemplate(std::span<const FieldSpec> fields, uint16_t scope_count, bool options,
                            uint8_t version, uint32_t max_fields, Template& out);

// Values collected while replaying a plan over one record.
struct RecordScratch {
  FlowRecord* rec = nullptr;
  uint64_t octet_delta = 0, packet_delta = 0, octet_total = 0, packet_total = 0;
  uint64_t start_abs_ns = 0, end_abs_ns = 0;
  uint64_t sys_init_ms = 0;
  uint64_t sampler_id = 0;
  uint64_t sampling_interval = 0;  // 34 or 50
  uint64_t packet_interval = 0, packet_space = 0, sampling_size = 0, sampling_population = 0;
  uint32_t start_uptime_ms = 0, end_uptime_ms = 0;
  uint32_t start_delta_us = 0, end_delta_us = 0;
  uint32_t present = 0;  // kHas* bits
  uint64_t mac_post_src = 0, mac_post_dst = 0;
  uint32_t src4 = 0, dst4 = 0;  // IPv4 and IPv6 addresses are kept apart until finishFlow(): some
  IpAddr src6, dst6;            // templates carry both families and zero the unused one
  uint16_t dot1q_vlan = 0;
  // interfaceName values (point into the datagram; valid during decode()).
  // interfaceDescription (83) stands in for a missing name (Cisco IF_DESC holds "TenGigE0_0_1_0").
  const uint8_t* in_name = nullptr;
  const uint8_t* out_name = nullptr;
  const uint8_t* in_desc = nullptr;
  const uint8_t* out_desc = nullptr;
  uint16_t in_name_len = 0, out_name_len = 0, in_desc_len = 0, out_desc_len = 0;
  bool hasIfText() const {
    return in_name != nullptr || out_name != nullptr || in_desc != nullptr || out_desc != nullptr;
  }

  static constexpr uint32_t kHasOctetDelta = 1u << 0;
  static constexpr uint32_t kHasPacketDelta = 1u << 1;
  static constexpr uint32_t kHasOctetTotal = 1u << 2;
  static constexpr uint32_t kHasPacketTotal = 1u << 3;
  static constexpr uint32_t kHasStartAbs = 1u << 4;
  static constexpr uint32_t kHasEndAbs = 1u << 5;
  static constexpr uint32_t kHasStartUptime = 1u << 6;
  static constexpr uint32_t kHasEndUptime = 1u << 7;
  static constexpr uint32_t kHasStartDelta = 1u << 8;
  static constexpr uint32_t kHasEndDelta = 1u << 9;
  static constexpr uint32_t kHasSysInit = 1u << 10;
  static constexpr uint32_t kHasSamplerId = 1u << 11;
  static constexpr uint32_t kHasSamplingInterval = 1u << 12;
  static constexpr uint32_t kHasPacketInterval = 1u << 13;
  static constexpr uint32_t kHasSamplingSize = 1u << 14;
  static constexpr uint32_t kHasIcmp = 1u << 15;
  static constexpr uint32_t kHasDirection = 1u << 16;
  static constexpr uint32_t kHasV4 = 1u << 17;
  static constexpr uint32_t kHasV6 = 1u << 18;
  static constexpr uint32_t kHasSrcMac = 1u << 19;
  static constexpr uint32_t kHasDstMac = 1u << 20;
  static constexpr uint32_t kHasVlan = 1u << 21;
  static constexpr uint32_t kHasNextHop = 1u << 22;

  // 1-in-N rate the record itself announces (34, 50, 305/306, 309/310), 0 if none.
  uint64_t ownSamplingRate() const;
};

// Replays `t` over the record starting at r; returns false (nothing else changed in r's position
// guarantees) when a variable-length field runs past the end.
bool applyTemplate(const Template& t, ByteReader& r, RecordScratch& s);

// Sequence tracking state for one (exporter, stream).
struct SeqState {
  uint32_t next = 0;
  bool valid = false;
  // sFlow flow samples: the data source's cumulative `drops` counter last seen.
  uint32_t drops = 0;
  bool drops_valid = false;
};

struct SamplerEntry {
  uint32_t domain = 0;
  uint64_t sampler_id = 0;  // kAnySampler: rate announced without a sampler id
  uint32_t rate = 0;
};
inline constexpr uint64_t kAnySampler = ~uint64_t{0};
inline constexpr size_t kMaxSamplers = 256;

struct DomainTime {
  uint32_t domain = 0;
  uint64_t sys_init_ms = 0;
};

// Slots of ExporterState::by_proto: statistics are kept per flow protocol, because one address
// often sends several (an Open vSwitch host exports NetFlow, sFlow and IPFIX from one address).
inline constexpr size_t kProtoSlots = 5;
inline constexpr size_t protoSlot(FlowProto p) {
  switch (p) {
    case FlowProto::kNetflowV5:
      return 1;
    case FlowProto::kNetflowV9:
      return 2;
    case FlowProto::kIpfix:
      return 3;
    case FlowProto::kSflowV5:
      return 4;
    default:
      return 0;
  }
}
// The slot of a template's protocol (TemplateKey::version 9 or 10).
inline constexpr size_t templateSlot(uint8_t version) {
  return protoSlot(version == 10 ? FlowProto::kIpfix : FlowProto::kNetflowV9);
}

struct ExporterState {
  std::array<ExporterStats, kProtoSlots> by_proto{};
  size_t cur = 0;  // slot of the datagram being decoded
  ExporterStats& st() { return by_proto[cur]; }
  bool has_config = false;
  ExporterConfig config;
  bool detected_ovs = false;
  // Templates held for this exporter, all protocols (the per-exporter limit).
  uint32_t templateCount() const {
    uint32_t n = 0;
    for (const ExporterStats& s : by_proto) {
      n += s.templates_known;
    }
    return n;
  }
  std::unordered_map<uint64_t, SeqState> seq;  // see seqKey()
  std::vector<SamplerEntry> samplers;
  std::vector<DomainTime> sys_init;  // IPFIX systemInitTimeMilliseconds from options data
  // Interface names learnt from interfaceName (82), keyed by if index: a name is reported to the
  // sink only when it is new or changed (bounded by kMaxIfNames).
  std::unordered_map<uint32_t, std::string> if_names;
};
inline constexpr size_t kMaxIfNames = 4096;

// Key for ExporterState::seq: stream kind, 24 bits of an agent hash (sFlow) and a 32-bit id.
inline uint64_t seqKey(uint8_t kind, uint32_t agent_hash, uint32_t id) {
  return (uint64_t{kind} << 56) | (uint64_t{agent_hash & 0xffffff} << 32) | id;
}

class Decoder::Impl {
 public:
  explicit Impl(const DecoderOptions& options);

  DecodeStatus decode(std::span<const uint8_t> datagram, const DatagramMeta& meta,
                      RecordSink& sink);

  // Protocol decoders: each returns the first error met (kNone if none).
  DecodeError decodeV5(ByteReader r, ExporterState& ex);
  DecodeError decodeV9(ByteReader r, ExporterState& ex);
  DecodeError decodeIpfix(ByteReader r, ExporterState& ex);
  DecodeError decodeSflow(ByteReader r, ExporterState& ex);

  // --- shared helpers -------------------------------------------------------------------------
  ExporterState* exporterFor(const IpAddr& addr);
  const ExporterConfig& configFor(const ExporterState& ex) const;
  void refreshConfigs();
  ExporterFlavor flavorOf(const ExporterState& ex) const;
  IfKind ifKindFor(const ExporterState& ex, FlowProto proto) const;
  // Counts one error occurrence and remembers the first one of the datagram.
  void error(ExporterState& ex, DecodeError e);
  // Sequence tracking: `seq` is the header value, `advance` how much this datagram moves it.
  // Returns the gap (0 when in order or unknown).
  uint32_t trackSequence(ExporterState& ex, uint64_t key, uint32_t seq, uint32_t advance,
                         bool gap_is_records);
  // The same on a state the caller looked up already (ex.seq[key]).
  uint32_t trackSequence(ExporterState& ex, SeqState& s, uint32_t seq, uint32_t advance,
                         bool gap_is_records);
  void forgetSequence(ExporterState& ex, uint64_t key);

  // Record batch: slot() gives the next record to fill (flushing a full batch), commit() keeps it.
  FlowRecord& slot();
  void commit() {
    ++batch_used_;
    ++records_;
  }
  void flush();

  // Templates (templates.cpp).
  DecodeError addTemplate(ExporterState& ex, const TemplateKey& key,
                          std::span<const FieldSpec> fields, uint16_t scope_count, bool options,
                          uint64_t now_ns);
  const Template* findTemplate(ExporterState& ex, const TemplateKey& key, uint64_t now_ns);
  void withdrawTemplate(ExporterState& ex, const TemplateKey& key);
  void withdrawAll(ExporterState& ex, const IpAddr& exporter, uint8_t version, uint32_t domain,
                   bool options_only_kind, bool options);
  size_t expireTemplates(uint64_t now_ns);
  bool saveTemplates(const std::string& path, std::string* why) const;
  bool loadTemplates(const std::string& path, std::string* why);

  // Sampling tables learnt from options data.
  void setSampler(ExporterState& ex, uint32_t domain, uint64_t sampler_id, uint32_t rate);
  uint32_t findSampler(const ExporterState& ex, uint32_t domain, uint64_t sampler_id) const;

  // Template-based (v9 / IPFIX) record finishing, shared by both.
  struct SetContext {
    ExporterState* ex = nullptr;
    FlowProto proto = FlowProto::kUnknown;
    uint32_t domain = 0;
    uint64_t export_ns = 0;      // header export time
    uint32_t sys_uptime_ms = 0;  // v9 header
    IfKind if_kind = IfKind::kUnknown;
    uint8_t flags = 0;
  };
  DecodeError decodeDataSet(const SetContext& ctx, const Template& t, ByteReader set,
                            uint32_t& records_out);
  void finishFlow(const SetContext& ctx, RecordScratch& s);
  void finishOptions(const SetContext& ctx, RecordScratch& s);
  // Reports interfaceName values of a record (flow or options) when new or changed.
  void noteIfNames(const SetContext& ctx, const RecordScratch& s, uint32_t in_if, uint32_t out_if);
  void noteIfName(const SetContext& ctx, uint32_t if_index, const uint8_t* name, size_t len);

  DecoderOptions options_;
  std::unordered_map<IpAddr, ExporterState, IpAddrHash> exporters_;
  std::unordered_map<IpAddr, ExporterConfig, IpAddrHash> configs_;
  ExporterConfig default_config_;
  std::unordered_map<TemplateKey, Template, TemplateKeyHash> templates_;

  // Per-datagram state.
  const DatagramMeta* meta_ = nullptr;
  RecordSink* sink_ = nullptr;
  DecodeError first_error_ = DecodeError::kNone;
  uint32_t records_ = 0;
  uint32_t counters_ = 0;
  std::vector<FlowRecord> batch_;
  size_t batch_used_ = 0;
  std::vector<FieldSpec> field_buf_;  // template fields being parsed (reused)
};

}  // namespace nc::decode
