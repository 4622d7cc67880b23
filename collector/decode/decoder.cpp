// Decoder front end: version detection, per-exporter state and statistics, record batching, and
// the public API forwarding to Decoder::Impl.
#include "collector/decode/decoder.hpp"

#include <cstring>

#include "collector/decode/decoder_impl.hpp"

namespace nc::decode {

std::string_view toString(DecodeError error) {
  switch (error) {
    case DecodeError::kNone:
      return "none";
    case DecodeError::kTruncated:
      return "truncated";
    case DecodeError::kBadVersion:
      return "bad_version";
    case DecodeError::kUnknownTemplate:
      return "unknown_template";
    case DecodeError::kBadTemplate:
      return "bad_template";
    case DecodeError::kTemplateLimit:
      return "template_limit";
    case DecodeError::kExporterLimit:
      return "exporter_limit";
    case DecodeError::kBadLength:
      return "bad_length";
    case DecodeError::kBadSet:
      return "bad_set";
    case DecodeError::kBadSample:
      return "bad_sample";
    case DecodeError::kCount:
      break;
  }
  return "unknown";
}

std::string_view toString(ExporterFlavor flavor) {
  switch (flavor) {
    case ExporterFlavor::kAuto:
      return "auto";
    case ExporterFlavor::kRouter:
      return "router";
    case ExporterFlavor::kOvs:
      return "ovs";
  }
  return "unknown";
}

void ExporterStats::add(const ExporterStats& o) {
  addCounters(o);
  if (o.first_seen_ns != 0 && (first_seen_ns == 0 || o.first_seen_ns < first_seen_ns)) {
    first_seen_ns = o.first_seen_ns;
  }
  if (o.last_seen_ns > last_seen_ns) {
    last_seen_ns = o.last_seen_ns;
    last_proto = o.last_proto;
  }
}

Decoder::Impl::Impl(const DecoderOptions& options) : options_(options) {
  if (options_.batch_records == 0) {
    options_.batch_records = 1;
  }
  batch_.resize(options_.batch_records);
}

ExporterState* Decoder::Impl::exporterFor(const IpAddr& addr) {
  auto it = exporters_.find(addr);
  if (it != exporters_.end()) {
    return &it->second;
  }
  if (exporters_.size() >= options_.max_exporters) {
    return nullptr;
  }
  ExporterState& ex = exporters_[addr];
  for (size_t i = 0; i < kProtoSlots; ++i) {
    ex.by_proto[i].exporter = addr;
  }
  ex.by_proto[protoSlot(FlowProto::kNetflowV5)].last_proto = FlowProto::kNetflowV5;
  ex.by_proto[protoSlot(FlowProto::kNetflowV9)].last_proto = FlowProto::kNetflowV9;
  ex.by_proto[protoSlot(FlowProto::kIpfix)].last_proto = FlowProto::kIpfix;
  ex.by_proto[protoSlot(FlowProto::kSflowV5)].last_proto = FlowProto::kSflowV5;
  auto cfg = configs_.find(addr);
  if (cfg != configs_.end()) {
    ex.has_config = true;
    ex.config = cfg->second;
  }
  return &ex;
}

void Decoder::Impl::refreshConfigs() {
  // Control-plane path (rare): re-resolve every exporter; sFlow exporters configured through
  // their agent address pick it up again on their next datagram.
  for (auto& [addr, ex] : exporters_) {
    auto cfg = configs_.find(addr);
    ex.has_config = cfg != configs_.end();
    ex.config = ex.has_config ? cfg->second : ExporterConfig{};
  }
}

const ExporterConfig& Decoder::Impl::configFor(const ExporterState& ex) const {
  return ex.has_config ? ex.config : default_config_;
}

ExporterFlavor Decoder::Impl::flavorOf(const ExporterState& ex) const {
  ExporterFlavor f = configFor(ex).flavor;
  if (f != ExporterFlavor::kAuto) {
    return f;
  }
  return ex.detected_ovs ? ExporterFlavor::kOvs : ExporterFlavor::kAuto;
}

IfKind Decoder::Impl::ifKindFor(const ExporterState& ex, FlowProto proto) const {
  const ExporterConfig& cfg = configFor(ex);
  if (cfg.if_kind != IfKind::kUnknown) {
    return cfg.if_kind;
  }
  if (flavorOf(ex) == ExporterFlavor::kOvs) {
    // OVS NetFlow exports OpenFlow port numbers (ofproto/netflow.c); sFlow and IPFIX export the
    // Linux ifindex (ofproto-dpif-sflow.c, ofproto-dpif-ipfix.c).
    return proto == FlowProto::kNetflowV5 ? IfKind::kOpenFlowPort : IfKind::kLinuxIfindex;
  }
  return IfKind::kSnmp;
}

void Decoder::Impl::error(ExporterState& ex, DecodeError e) {
  ++ex.st().errors[static_cast<size_t>(e)];
  if (first_error_ == DecodeError::kNone) {
    first_error_ = e;
  }
}

uint32_t Decoder::Impl::trackSequence(ExporterState& ex, uint64_t key, uint32_t seq,
                                      uint32_t advance, bool gap_is_records) {
  return trackSequence(ex, ex.seq[key], seq, advance, gap_is_records);
}

uint32_t Decoder::Impl::trackSequence(ExporterState& ex, SeqState& s, uint32_t seq,
                                      uint32_t advance, bool gap_is_records) {
  // A forward jump of more than this is taken as an exporter restart, not as loss.
  constexpr uint32_t kMaxPlausibleGap = 1u << 24;
  uint32_t gap = 0;
  if (s.valid && seq != s.next) {
    uint32_t diff = seq - s.next;  // modulo 2^32
    if (diff < kMaxPlausibleGap) {
      gap = diff;
      if (gap_is_records) {
        ex.st().lost_records += gap;
      } else {
        ex.st().lost_datagrams += gap;
      }
    } else {
      ++ex.st().sequence_resets;
    }
  }
  s.next = seq + advance;
  s.valid = true;
  return gap;
}

void Decoder::Impl::forgetSequence(ExporterState& ex, uint64_t key) {
  auto it = ex.seq.find(key);
  if (it != ex.seq.end()) {
    it->second.valid = false;
  }
}

FlowRecord& Decoder::Impl::slot() {
  if (batch_used_ == batch_.size()) {
    flush();
  }
  static const FlowRecord kBlank{};
  FlowRecord& r = batch_[batch_used_];
  std::memcpy(static_cast<void*>(&r), &kBlank, sizeof r);  // one copy, no temporary
  return r;
}

void Decoder::Impl::flush() {
  if (batch_used_ > 0) {
    sink_->onRecordBatch(std::span<FlowRecord>(batch_.data(), batch_used_));
    batch_used_ = 0;
  }
}

void Decoder::Impl::setSampler(ExporterState& ex, uint32_t domain, uint64_t sampler_id,
                               uint32_t rate) {
  for (SamplerEntry& e : ex.samplers) {
    if (e.domain == domain && e.sampler_id == sampler_id) {
      e.rate = rate;
      return;
    }
  }
  if (ex.samplers.size() < kMaxSamplers) {
    ex.samplers.push_back(SamplerEntry{domain, sampler_id, rate});
  }
}

uint32_t Decoder::Impl::findSampler(const ExporterState& ex, uint32_t domain,
                                    uint64_t sampler_id) const {
  for (const SamplerEntry& e : ex.samplers) {
    if (e.domain == domain && e.sampler_id == sampler_id) {
      return e.rate;
    }
  }
  return 0;
}

DecodeStatus Decoder::Impl::decode(std::span<const uint8_t> datagram, const DatagramMeta& meta,
                                   RecordSink& sink) {
  meta_ = &meta;
  sink_ = &sink;
  first_error_ = DecodeError::kNone;
  records_ = 0;
  counters_ = 0;
  batch_used_ = 0;

  DecodeStatus status;
  ExporterState* ex = exporterFor(meta.exporter);
  if (ex == nullptr) {
    status.error = DecodeError::kExporterLimit;
    return status;
  }
  // Statistics go to the slot of the datagram's protocol (by its version field).
  FlowProto proto = FlowProto::kUnknown;
  if (datagram.size() >= 4) {
    const uint16_t v16 = loadBe16(datagram.data());
    proto = v16 == 5                         ? FlowProto::kNetflowV5
            : v16 == 9                       ? FlowProto::kNetflowV9
            : v16 == 10                      ? FlowProto::kIpfix
            : loadBe32(datagram.data()) == 5 ? FlowProto::kSflowV5
                                             : FlowProto::kUnknown;
  }
  ex->cur = protoSlot(proto);
  ExporterStats& st = ex->st();
  ++st.datagrams;
  st.bytes += datagram.size();
  if (st.first_seen_ns == 0) {
    st.first_seen_ns = meta.received_ns;
  }
  st.last_seen_ns = meta.received_ns;

  ByteReader r(datagram);
  DecodeError e = DecodeError::kNone;
  if (datagram.size() < 4) {
    e = DecodeError::kTruncated;
    error(*ex, e);
  } else {
    uint16_t version = loadBe16(datagram.data());
    uint32_t version32 = loadBe32(datagram.data());
    if (version == 5) {
      e = decodeV5(r, *ex);
    } else if (version == 9) {
      e = decodeV9(r, *ex);
    } else if (version == 10) {
      e = decodeIpfix(r, *ex);
    } else if (version32 == 5) {
      e = decodeSflow(r, *ex);
    } else {
      error(*ex, DecodeError::kBadVersion);
    }
  }
  (void)e;
  flush();
  st.flow_records += records_;
  status.error = first_error_;
  status.records = records_;
  status.counters = counters_;
  sink_ = nullptr;
  meta_ = nullptr;
  return status;
}

// --- public API -------------------------------------------------------------------------------

Decoder::Decoder(const DecoderOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Decoder::~Decoder() = default;

DecodeStatus Decoder::decode(std::span<const uint8_t> datagram, const DatagramMeta& meta,
                             RecordSink& sink) {
  return impl_->decode(datagram, meta, sink);
}

void Decoder::setExporterConfig(const IpAddr& exporter, const ExporterConfig& config) {
  impl_->configs_[exporter] = config;
  impl_->refreshConfigs();
}

void Decoder::clearExporterConfig(const IpAddr& exporter) {
  impl_->configs_.erase(exporter);
  impl_->refreshConfigs();
}

void Decoder::setDefaultExporterConfig(const ExporterConfig& config) {
  impl_->default_config_ = config;
}

size_t Decoder::expireTemplates(uint64_t now_ns) {
  return impl_->expireTemplates(now_ns);
}

bool Decoder::saveTemplates(const std::string& path, std::string* why) const {
  return impl_->saveTemplates(path, why);
}

bool Decoder::loadTemplates(const std::string& path, std::string* why) {
  return impl_->loadTemplates(path, why);
}

size_t Decoder::templateCount() const {
  return impl_->templates_.size();
}

std::vector<ExporterStats> Decoder::stats() const {
  std::vector<ExporterStats> out;
  out.reserve(impl_->exporters_.size());
  for (const auto& [addr, ex] : impl_->exporters_) {
    // One entry per protocol the address used (or holds templates of).
    for (const ExporterStats& ps : ex.by_proto) {
      if (ps.datagrams == 0 && ps.templates_known == 0 && ps.templates_received == 0) {
        continue;
      }
      ExporterStats s = ps;
      s.flavor = impl_->flavorOf(ex);
      out.push_back(s);
    }
  }
  return out;
}

}  // namespace nc::decode
