#include "collector/correlate/correlator.hpp"
#include "collector/metrics/json.hpp"

#include "common/clock.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "collector/record/names.hpp"
#include "common/log.hpp"

namespace nc::correlate {

namespace {

constexpr int64_t kEmpty = INT64_MIN;

inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

inline uint64_t hashKey(const SubjectKey& k, int64_t step) {
  return mix(k.hi * 0x9E3779B97F4A7C15ull ^ k.lo ^ (static_cast<uint64_t>(step) << 2) ^
             (uint64_t{k.kind} << 1 | k.dir) * 0xc2b2ae3d27d4eb4full);
}

SubjectKey addrKey(const IpAddr& a, uint8_t dir) {
  SubjectKey k;
  std::memcpy(&k.hi, a.bytes.data(), 8);
  std::memcpy(&k.lo, a.bytes.data() + 8, 8);
  k.kind = 1;
  k.dir = dir;
  return k;
}

IpAddr addrOf(const SubjectKey& k) {
  IpAddr a;
  std::memcpy(a.bytes.data(), &k.hi, 8);
  std::memcpy(a.bytes.data() + 8, &k.lo, 8);
  return a;
}

}  // namespace

DetectorParams CorrelatorOptions::detectorParams(bool bytes) const {
  DetectorParams p;
  p.sensitivity = sensitivity;
  p.min_rate = bytes ? min_bps / 8 : min_pps;
  p.warmup_steps = static_cast<uint32_t>(std::max<uint64_t>(1, warmup_ns / step_ns));
  p.cooldown_steps = static_cast<uint32_t>(std::max<uint64_t>(1, cooldown_ns / step_ns));
  // The envelope remembers levels for about an hour, whatever the step.
  p.envelope_half_life_steps = std::max(10.0, 3 * 3600e9 / static_cast<double>(step_ns));
  p.relearn_after_steps =
      static_cast<uint32_t>(std::max<uint64_t>(10, 3600'000'000'000ull / step_ns));
  return p;
}

size_t CorrelatorOptions::ringSteps() const {
  const uint64_t steps = (max_delay_ns + step_ns - 1) / step_ns + 3;
  return static_cast<size_t>(std::clamp<uint64_t>(steps, 4, 256));
}

// ---- CorrelatorShard ----

CorrelatorShard::CorrelatorShard(Correlator& owner)
    : owner_(owner),
      step_ns_(owner.options().step_ns),
      max_span_ns_(owner.options().max_span_ns),
      max_delay_ns_(owner.options().max_delay_ns),
      handover_ns_(owner.options().handover_ns) {}

CorrelatorShard::~CorrelatorShard() = default;

namespace {
constexpr int32_t kNoTag = INT32_MIN;

void clearRing(auto& ring) {
  for (auto& dir : ring.tag) {
    dir[0] = dir[1] = kNoTag;
  }
}
}  // namespace

void CorrelatorShard::reset(const inventory::Snapshot* snap) {
  flush();
  snap_ = snap;
  snap_generation_ = snap != nullptr ? snap->generation : 0;
  const size_t n = snap != nullptr ? snap->ports.size() : 0;
  ports_.assign(n, PortState{});
  names_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    clearRing(ports_[i].ring);
    names_[i] = snap->ports[i].name_id;
  }
  blocks_.clear();
  touched_.clear();
}

inline CorrelatorShard::PortState& CorrelatorShard::touch(uint32_t slot) {
  PortState& p = ports_[slot];
  if (!p.touched) {
    p.touched = true;
    touched_.push_back(slot);
  }
  return p;
}

inline int64_t CorrelatorShard::stepOf(uint64_t t) {
  if (t - cur_start_ < step_ns_) {  // the newest step (unsigned: t < cur_start_ wraps)
    return cur_step_;
  }
  if (t < cur_start_) {  // one or two steps back: the common case of long flows
    const uint64_t back = cur_start_ - t;
    if (back <= step_ns_) {
      return cur_step_ - 1;
    }
    if (back <= 2 * step_ns_) {
      return cur_step_ - 2;
    }
  }
  const auto s = static_cast<int64_t>(t / step_ns_);
  if (s > cur_step_) {
    cur_step_ = s;
    cur_start_ = static_cast<uint64_t>(s) * step_ns_;
  }
  return s;
}

// Index of `a` in p's address block; -1 when the port is crowded.
inline int CorrelatorShard::findAddress(PortState& p, const IpAddr& a, uint64_t now) {
  if (p.block != nullptr) {
    const IpAddr* addr = p.block->addr;
    for (uint32_t i = 0; i < p.naddr; ++i) {
      if (addr[i] == a) {
        return static_cast<int>(i);
      }
    }
  }
  return addAddress(p, a, now);
}

int CorrelatorShard::addAddress(PortState& p, const IpAddr& a, uint64_t now) {
  if (p.block == nullptr) {
    blocks_.push_back(std::make_unique<AddressBlock>());
    p.block = blocks_.back().get();
  }
  AddressBlock& b = *p.block;
  const auto now_s = static_cast<uint32_t>(now / 1'000'000'000);
  if (p.crowded) {
    if (b.crowded_until > now) {
      return -1;
    }
    p.crowded = false;
  }
  uint32_t i = p.naddr;
  if (i == kAddressesPerPort) {
    // Full: an address idle for a while gives way (its steps were handed over long ago);
    // otherwise the port carries many addresses and none of them is local.
    const uint32_t stale = static_cast<uint32_t>(kAddressStaleNs / 1'000'000'000);
    for (i = 0; i < kAddressesPerPort && b.last_seen_s[i] + stale >= now_s; ++i) {
    }
    if (i == kAddressesPerPort) {
      b.crowded_until = now + kCrowdedNs;
      p.crowded = true;
      p.naddr = 0;  // what its addresses gathered this period is dropped: they were peers
      ++crowded_events_;
      return -1;
    }
  } else {
    ++p.naddr;
  }
  b.addr[i] = a;
  b.last_seen_s[i] = now_s;
  clearRing(b.ring[i]);
  return static_cast<int>(i);
}

void CorrelatorShard::spill(int64_t step, double bytes, double packets, const SubjectKey& k,
                            uint32_t port) {
  StepAcc& a = out_.emplace_back();
  a.subject = k;
  a.step = step;
  a.bytes = bytes;
  a.packets = packets;
  a.max_delay_ns = uint64_t{ports_[port].delay_ms} * 1'000'000;
  a.port_name = k.kind == 1 ? names_[port] : 0;
}

template <class Key>
inline void CorrelatorShard::addTo(Ring& ring, uint8_t dir, const Key& key, uint32_t port) {
  for (const Piece& pc : pieces_) {
    const size_t x = static_cast<size_t>(pc.step & 1);
    int32_t& t = ring.tag[dir][x];
    if (t == pc.tag) [[likely]] {
      ring.bytes[dir][x] += pc.bytes;
      ring.packets[dir][x] += pc.packets;
      continue;
    }
    if (t != kNoTag && t > pc.tag) {  // older than the ring holds: straight out
      spill(pc.step, pc.bytes, pc.packets, key(), port);
      continue;
    }
    if (t != kNoTag) {
      spill(epoch_ + t, ring.bytes[dir][x], ring.packets[dir][x], key(), port);
    }
    t = pc.tag;
    ring.bytes[dir][x] = pc.bytes;
    ring.packets[dir][x] = pc.packets;
  }
}

void CorrelatorShard::onBatch(const sink::Batch& batch) {
  if (batch.records.empty()) {
    return;
  }
  const uint64_t now = batch.records.front().received_ns;
  const inventory::Snapshot* snap = batch.in_port != nullptr ? batch.snapshot : nullptr;
  if (snap != snap_ || (snap != nullptr && snap->generation != snap_generation_)) {
    reset(snap);
  }
  if (epoch_ == INT64_MIN) {
    // Ring tags count steps from here: 2^31 steps on (68 years of 1 s steps).
    epoch_ = static_cast<int64_t>(now / step_ns_) - 1'000'000;
  }
  if (snap != nullptr && !ports_.empty()) {
    const uint64_t max_delay = max_delay_ns_;
    for (size_t i = 0; i < batch.records.size(); ++i) {
      const uint32_t in = batch.in_port[i];
      const uint32_t out = batch.out_port[i];
      if (in == UINT32_MAX && out == UINT32_MAX) {
        continue;
      }
      const FlowRecord& r = batch.records[i];
      uint64_t t1 = r.last_ns;
      uint64_t t0 = std::max(r.first_ns, t1 > max_span_ns_ ? t1 - max_span_ns_ : 0);
      const uint64_t rx = r.received_ns;
      // Times from a clock far from ours (or none): count the flow when it arrived.
      if (t1 == 0 || t0 > t1 || t1 > rx + 60'000'000'000ull || rx > t1 + 2 * max_delay || rx < t0) {
        t0 = t1 = rx;
      }
      const auto delay_ms = static_cast<uint32_t>((rx - t0) / 1'000'000);
      const int64_t s1 = stepOf(t1);
      const int64_t s0 = t0 == t1 ? s1 : stepOf(t0);
      const auto bytes = static_cast<double>(r.scaledBytes());
      const auto packets = static_cast<double>(r.scaledPackets());
      pieces_.clear();
      if (s0 == s1) {
        pieces_.push_back({s1, static_cast<int32_t>(s1 - epoch_), static_cast<float>(bytes),
                           static_cast<float>(packets)});
      } else {
        const double inv = 1.0 / static_cast<double>(t1 - t0);
        uint64_t lo = t0;
        for (int64_t s = s0; s <= s1; ++s) {
          const uint64_t hi = std::min<uint64_t>(t1, static_cast<uint64_t>(s + 1) * step_ns_);
          const double f = static_cast<double>(hi - lo) * inv;
          lo = hi;
          if (f > 0) {
            pieces_.push_back({s, static_cast<int32_t>(s - epoch_), static_cast<float>(bytes * f),
                               static_cast<float>(packets * f)});
          }
        }
      }
      // Port "in": entered the switch through it; the source address sent it ("out").
      // Port "out": the switch sent it out of it; the destination address received it ("in").
      for (uint8_t side = 0; side < 2; ++side) {
        const uint32_t slot = side == 0 ? in : out;
        if (slot >= ports_.size()) {
          continue;
        }
        PortState& p = touch(slot);
        p.delay_ms = std::max(p.delay_ms, delay_ms);
        addTo(
            p.ring, side,
            [&] {
              SubjectKey pk;
              pk.lo = names_[slot];
              pk.dir = side;
              return pk;
            },
            slot);
        const IpAddr& a = side == 0 ? r.src_addr : r.dst_addr;
        if (a.isZero() || (p.crowded && p.block->crowded_until > rx)) {
          continue;
        }
        const int k = findAddress(p, a, rx);
        if (k >= 0) {
          const auto adir = static_cast<uint8_t>(1 - side);
          addTo(
              p.block->ring[k], adir, [&] { return addrKey(a, adir); }, slot);
        }
      }
    }
  }
  if (now - last_handover_ >= handover_ns_ || now < last_handover_) {
    last_handover_ = now;
    flush();
  }
}

bool CorrelatorShard::flushRing(Ring& ring, const SubjectKey& key, uint32_t port) {
  bool any = false;
  for (uint8_t dir = 0; dir < 2; ++dir) {
    SubjectKey k = key;
    k.dir = dir;
    for (size_t x = 0; x < 2; ++x) {
      int32_t& t = ring.tag[dir][x];
      if (t != kNoTag) {
        spill(epoch_ + t, ring.bytes[dir][x], ring.packets[dir][x], k, port);
        t = kNoTag;
        any = true;
      }
    }
  }
  return any;
}

void CorrelatorShard::flush() {
  for (const uint32_t slot : touched_) {
    PortState& p = ports_[slot];
    SubjectKey pk;
    pk.lo = names_[slot];
    flushRing(p.ring, pk, slot);
    if (p.block != nullptr) {
      AddressBlock& b = *p.block;
      const auto now_s = static_cast<uint32_t>(last_handover_ / 1'000'000'000);
      for (uint32_t i = 0; i < p.naddr; ++i) {
        if (flushRing(b.ring[i], addrKey(b.addr[i], 0), slot)) {
          b.last_seen_s[i] = std::max(b.last_seen_s[i], now_s);
        }
      }
    }
    p.delay_ms = 0;
    p.touched = false;
  }
  touched_.clear();
  if (out_.empty()) {
    return;
  }
  std::vector<StepAcc> out;
  out.reserve(out_.size());
  out.swap(out_);
  owner_.handover(std::move(out));
}

// ---- Correlator ----

struct Correlator::Subject {
  SubjectKey key;
  int64_t next_step = kEmpty;  // first step not evaluated yet
  std::vector<float> bytes;    // ring, by step % size
  std::vector<float> packets;
  double delay_ns = 0;      // decaying max of the shards' delays (decayDelay())
  uint64_t delay_pass = 0;  // the pass delay_ns was last decayed to
  uint32_t due_index = 0;   // its entry in due_
  uint64_t last_data_ns = 0;
  uint32_t port_name = 0;  // address subjects: the port the address was last seen behind
  Detector det_bytes;
  Detector det_packets;
  uint64_t due_ns = 0;  // evaluate() need not run before (0 = at the next pass)
  double last_bps = 0;  // rates of the last closed step
  double last_pps = 0;
  std::unique_ptr<Tracked> event;
};

size_t Correlator::KeyHash::operator()(const SubjectKey& k) const {
  return static_cast<size_t>(hashKey(k, 0));
}

Correlator::Correlator(boost::asio::io_context& io, CorrelatorOptions options,
                       const inventory::Inventory* inventory)
    : io_(io),
      opts_(options),
      bytes_params_(options.detectorParams(true)),
      packets_params_(options.detectorParams(false)),
      inventory_(inventory),
      timer_(io) {}

Correlator::~Correlator() {
  stop();
}

std::unique_ptr<CorrelatorShard> Correlator::makeShard() {
  return std::make_unique<CorrelatorShard>(*this);
}

void Correlator::start() {
  stopped_ = false;
  schedule();
}

void Correlator::stop() {
  stopped_ = true;
  timer_.stop();
}

void Correlator::schedule() {
  if (stopped_) {
    return;
  }
  timer_.start(std::chrono::nanoseconds(opts_.handover_ns), [this] { tick(unixNowNs()); });
}

bool Correlator::reconfigure(const CorrelatorOptions& options) {
  std::lock_guard lock(mu_);
  const bool fixed = options.step_ns == opts_.step_ns && options.max_span_ns == opts_.max_span_ns &&
                     options.max_delay_ns == opts_.max_delay_ns &&
                     options.handover_ns == opts_.handover_ns;
  CorrelatorOptions next = options;
  next.step_ns = opts_.step_ns;
  next.max_span_ns = opts_.max_span_ns;
  next.max_delay_ns = opts_.max_delay_ns;
  next.handover_ns = opts_.handover_ns;
  opts_ = next;
  bytes_params_ = opts_.detectorParams(true);
  packets_params_ = opts_.detectorParams(false);
  return fixed;
}

void Correlator::handover(std::vector<StepAcc>&& accs) {
  handovers_.fetch_add(1, std::memory_order_relaxed);
  handover_entries_.fetch_add(accs.size(), std::memory_order_relaxed);
  std::lock_guard lock(inbox_mu_);
  if (inbox_.size() >= 1024) {  // the control thread is stuck: drop rather than grow
    handover_drops_.fetch_add(accs.size(), std::memory_order_relaxed);
    return;
  }
  inbox_.push_back(std::move(accs));
}

void Correlator::merge(const StepAcc& a, uint64_t now_ns) {
  auto it = subjects_.find(a.subject);
  if (it == subjects_.end()) {
    const bool port = a.subject.kind == 0;
    if ((port && ports_ >= opts_.max_ports * 2) ||
        (!port && addresses_ >= opts_.max_addresses * 2)) {
      ++refused_;
      return;
    }
    auto s = std::make_unique<Subject>();
    s->key = a.subject;
    const size_t ring = opts_.ringSteps();
    s->bytes.assign(ring, 0);
    s->packets.assign(ring, 0);
    s->next_step = a.step;
    (port ? ports_ : addresses_)++;
    s->delay_pass = passes_;
    s->due_index = static_cast<uint32_t>(due_.size());
    due_.push_back({0, s.get()});
    it = subjects_.emplace(a.subject, std::move(s)).first;
  }
  Subject& s = *it->second;
  const auto ring = static_cast<int64_t>(s.bytes.size());
  if (a.step < s.next_step) {
    // A subject none of whose steps was evaluated yet starts at its earliest data: shards hand
    // their steps over in hash order, and a flow spread over several steps must not lose its
    // first ones. Moving the start back must not fold steps already stored onto earlier ones.
    bool rewind = s.det_bytes.observed() == 0 && s.next_step - a.step < ring;
    for (int64_t x = a.step + ring; rewind && x < s.next_step + ring; ++x) {
      const size_t k = static_cast<size_t>(x % ring);
      rewind = s.bytes[k] == 0 && s.packets[k] == 0;
    }
    if (!rewind) {
      ++late_;
      return;
    }
    s.next_step = a.step;
  }
  if (a.step >= s.next_step + ring) {
    // Steps past the ring: the exporter's clock runs ahead of ours (or far behind evaluation).
    ++late_;
    return;
  }
  const size_t slot = static_cast<size_t>(a.step % ring);
  s.bytes[slot] += static_cast<float>(a.bytes);
  s.packets[slot] += static_cast<float>(a.packets);
  decayDelay(s);
  s.delay_ns = std::max(s.delay_ns, static_cast<double>(a.max_delay_ns));
  s.due_ns = 0;  // re-check at the next pass (the delay may have grown, the step be new)
  due_[s.due_index].due_ns = 0;
  s.last_data_ns = now_ns;
  if (a.port_name != 0) {
    s.port_name = a.port_name;
  }
}

void Correlator::tick(uint64_t now_ns) {
  std::vector<std::vector<StepAcc>> in;
  {
    std::lock_guard lock(inbox_mu_);
    in.swap(inbox_);
  }
  std::lock_guard lock(mu_);
  for (const auto& v : in) {
    for (const StepAcc& a : v) {
      merge(a, now_ns);
    }
  }
  // Steps fall due once per step and subject: a pass over every subject each eighth of a step
  // (at most every second, at least every handover) finds them; more often only costs CPU.
  const uint64_t every =
      std::max(opts_.handover_ns, std::min<uint64_t>(opts_.step_ns / 8, 1'000'000'000));
  if (now_ns >= last_pass_ns_ + every || now_ns < last_pass_ns_) {
    last_pass_ns_ = now_ns;
    ++passes_;
    for (Due& d : due_) {
      if (now_ns >= d.due_ns) {
        evaluate(*d.subject, now_ns);
        d.due_ns = d.subject->due_ns;
      }
    }
  }
  if (now_ns - last_idle_sweep_ > 60'000'000'000ull) {
    last_idle_sweep_ = now_ns;
    for (auto it = subjects_.begin(); it != subjects_.end();) {
      Subject& s = *it->second;
      if (!s.event && s.last_data_ns + opts_.idle_drop_ns < now_ns) {
        (s.key.kind == 0 ? ports_ : addresses_)--;
        const uint32_t i = s.due_index;  // swap-remove its due_ entry
        due_[i] = due_.back();
        due_[i].subject->due_index = i;
        due_.pop_back();
        it = subjects_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

// The delay estimates decay by 1 % a pass (half-life ~70 passes: ~70 s at 10 s steps), applied
// when the subject is next looked at rather than to every subject at every pass.
void Correlator::decayDelay(Subject& s) const {
  if (s.delay_pass != passes_) {
    s.delay_ns *= std::pow(0.99, static_cast<double>(passes_ - s.delay_pass));
    s.delay_pass = passes_;
  }
}

void Correlator::evaluate(Subject& s, uint64_t now_ns) {
  decayDelay(s);
  const uint64_t step = opts_.step_ns;
  const double delay = std::min(s.delay_ns, static_cast<double>(opts_.max_delay_ns));
  // A margin over the observed delay for the jitter of exports: a quarter step, at most 1 s.
  const auto settle = static_cast<uint64_t>(delay) + std::min<uint64_t>(step / 4, 1'000'000'000) +
                      opts_.handover_ns;
  const auto ring = static_cast<int64_t>(s.bytes.size());
  // A subject silent for long: skip ahead (its baseline has long learnt the quiet).
  const int64_t now_step = static_cast<int64_t>(now_ns / step);
  if (now_step - s.next_step > 360 + ring && !s.event) {
    const int64_t to = now_step - 360;
    for (int64_t k = 0; k < ring; ++k) {
      s.bytes[static_cast<size_t>(k)] = 0;
      s.packets[static_cast<size_t>(k)] = 0;
    }
    s.next_step = to;
  }
  while (static_cast<uint64_t>(s.next_step + 1) * step + settle <= now_ns) {
    const size_t slot = static_cast<size_t>(s.next_step % ring);
    const double b = s.bytes[slot];
    const double p = s.packets[slot];
    s.bytes[slot] = 0;
    s.packets[slot] = 0;
    closeStep(s, s.next_step, b, p);
    ++s.next_step;
  }
  // When the next step falls due (tick() decays the delay, so a subject that moved from IPFIX
  // to sFlow speeds up again; fresh data restores it at once and merge() brings this forward).
  s.due_ns = static_cast<uint64_t>(s.next_step + 1) * step + settle;
}

void Correlator::closeStep(Subject& s, int64_t step, double bytes, double packets) {
  ++steps_evaluated_;
  const double secs = static_cast<double>(opts_.step_ns) / 1e9;
  const double br = bytes / secs;
  const double pr = packets / secs;
  s.last_bps = br * 8;
  s.last_pps = pr;
  const auto idx = static_cast<uint64_t>(step);
  const Transition tb = s.det_bytes.observe(br, idx, bytes_params_);
  const Transition tp = s.det_packets.observe(pr, idx, packets_params_);
  if (s.event) {
    Tracked& t = *s.event;
    if (tb == Transition::kStarted) {
      t.bytes_fired = true;
    }
    if (tp == Transition::kStarted) {
      t.packets_fired = true;
    }
    const bool bytes_metric = t.event.metric == events::Metric::kBytes;
    t.event.observed = std::max(t.event.observed, bytes_metric ? br : pr);
    const bool done =
        (!t.bytes_fired || !s.det_bytes.active()) && (!t.packets_fired || !s.det_packets.active());
    if (done) {
      // The event ends at the first quiet step of the detectors that fired (endStep()), not at
      // the step being closed, which is the last step of their cooldown.
      int64_t end = INT64_MIN;
      if (t.bytes_fired) {
        end = std::max<int64_t>(end, static_cast<int64_t>(s.det_bytes.endStep()));
      }
      if (t.packets_fired) {
        end = std::max<int64_t>(end, static_cast<int64_t>(s.det_packets.endStep()));
      }
      endEvent(s, end == INT64_MIN ? step : end);
    }
    return;
  }
  if (tb == Transition::kStarted || tp == Transition::kStarted) {
    startEvent(s, step, tb == Transition::kStarted);
    s.event->bytes_fired = tb == Transition::kStarted;
    s.event->packets_fired = tp == Transition::kStarted;
  }
}

void Correlator::describe(const Subject& s, events::Event& e) const {
  auto snap = inventory_ != nullptr ? inventory_->snapshot() : nullptr;
  const inventory::Port* port = nullptr;
  if (s.key.kind == 0) {
    e.subject.kind = events::SubjectKind::kPort;
    e.subject.name = std::string(nameOf(static_cast<uint32_t>(s.key.lo)));
    if (snap) {
      port = snap->portByName(e.subject.name);
    }
  } else {
    e.subject.kind = events::SubjectKind::kAddress;
    e.subject.name = addrOf(s.key).toString();
    if (snap && s.port_name != 0) {
      port = snap->portByName(nameOf(s.port_name));
    }
  }
  if (port != nullptr) {
    e.subject.bridge = port->bridge;
    if (port->ofport >= 0) {
      e.subject.ofport = static_cast<uint32_t>(port->ofport);
    }
    if (port->ifindex > 0) {
      e.subject.ifindex = static_cast<uint32_t>(port->ifindex);
    }
    const uint64_t mac = port->attached_mac != 0 ? port->attached_mac : port->mac;
    e.subject.mac = mac != 0 ? formatMac(mac) : "";
    e.subject.vm = port->vm;
    e.subject.external_ids = port->external_ids;
    e.netlink.operstate = port->operstate;
    if (port->has_link) {
      e.netlink.mtu = port->mtu;
    }
    e.netlink.addresses = port->addresses;
    const uint64_t from =
        e.start_ns > opts_.netlink_lookback_ns ? e.start_ns - opts_.netlink_lookback_ns : 0;
    const uint64_t until = e.end_ns ? *e.end_ns + opts_.step_ns : UINT64_MAX;
    e.netlink.changes.clear();
    for (const auto& c : port->changes) {
      if (c.time_ns >= from && c.time_ns <= until) {
        e.netlink.changes.push_back({c.time_ns, c.what});
      }
    }
  }
}

void Correlator::startEvent(Subject& s, int64_t step, bool bytes) {
  (void)step;
  auto t = std::make_unique<Tracked>();
  events::Event& e = t->event;
  const Detector& d = bytes ? s.det_bytes : s.det_packets;
  e.start_ns = d.startStep() * opts_.step_ns;
  e.direction = s.key.dir == 0 ? events::Direction::kIn : events::Direction::kOut;
  e.metric = bytes ? events::Metric::kBytes : events::Metric::kPackets;
  e.observed = d.peak();
  e.baseline = d.baseline();
  e.ratio = e.observed / std::max(e.baseline, 1e-9);
  e.detector = (bytes ? bytes_params_ : packets_params_).toJson();
  e.detector["step_ms"] = opts_.step_ns / 1'000'000;
  e.detector["threshold"] = d.threshold(bytes ? bytes_params_ : packets_params_);
  e.detector["deviation"] = d.deviation();
  describe(s, e);
  s.event = std::move(t);
  ++started_;
  if (on_event) {
    on_event(s.event->event, false);
  }
}

void Correlator::endEvent(Subject& s, int64_t end_step) {
  Tracked& t = *s.event;
  events::Event& e = t.event;
  e.end_ns = static_cast<uint64_t>(end_step) * opts_.step_ns;
  e.ratio = e.observed / std::max(e.baseline, 1e-9);
  describe(s, e);  // the link's changes during the event, its state now
  ++ended_;
  events::Event copy = e;
  s.event.reset();
  if (on_event) {
    on_event(copy, true);
  }
}

std::vector<events::Event> Correlator::ongoing() const {
  std::lock_guard lock(mu_);
  std::vector<events::Event> out;
  for (const auto& [k, s] : subjects_) {
    if (s->event) {
      out.push_back(s->event->event);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const events::Event& a, const events::Event& b) { return a.start_ns < b.start_ns; });
  return out;
}

CorrelatorStats Correlator::stats() const {
  std::lock_guard lock(mu_);
  return statsLocked();
}

CorrelatorStats Correlator::statsLocked() const {
  CorrelatorStats st;
  for (const auto& [k, s] : subjects_) {
    st.ongoing += s->event ? 1 : 0;
  }
  const size_t ring = opts_.ringSteps();
  const size_t per = sizeof(Subject) + 2 * ring * sizeof(float) + 48;  // + hash node
  st.subjects_refused = refused_;
  st.late = late_;
  st.handover_drops = handover_drops_.load(std::memory_order_relaxed);
  st.steps_evaluated = steps_evaluated_;
  st.events_started = started_;
  st.events_ended = ended_;
  st.handovers = handovers_.load(std::memory_order_relaxed);
  st.handover_entries = handover_entries_.load(std::memory_order_relaxed);
  st.memory_bytes = subjects_.size() * per;
  return st;
}

nlohmann::json Correlator::status() const {
  std::lock_guard lock(mu_);
  nlohmann::json j = metrics::toJson(statsLocked());  // every NC_CORRELATOR_STATS counter
  j.update({{"subjects", {{"ports", ports_}, {"addresses", addresses_}}},
            {"step_ms", opts_.step_ns / 1'000'000},
            {"ring_steps", opts_.ringSteps()}});
  return j;
}

std::unordered_map<std::string, Correlator::PortRate> Correlator::portRates() const {
  std::lock_guard lock(mu_);
  std::unordered_map<std::string, PortRate> out;
  for (const auto& [k, s] : subjects_) {
    if (k.kind != 0) {
      continue;
    }
    PortRate& r = out[std::string(nameOf(static_cast<uint32_t>(k.lo)))];
    if (k.dir == 0) {
      r.in_bps = s->last_bps;
      r.in_pps = s->last_pps;
    } else {
      r.out_bps = s->last_bps;
      r.out_pps = s->last_pps;
    }
  }
  return out;
}

}  // namespace nc::correlate
