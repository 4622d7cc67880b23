#include "collector/profile/evaluate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "collector/record/names.hpp"

namespace nc::profile {
namespace {

inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

inline size_t hashKey(uint32_t channel, int64_t step) {
  return static_cast<size_t>(mix(static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ull ^ channel));
}

// An exporter network: 128-bit mask and network (v4 in its mapped form).
struct Net {
  uint64_t mhi = 0;
  uint64_t mlo = 0;
  uint64_t nhi = 0;
  uint64_t nlo = 0;
  bool contains(const IpAddr& a) const {
    uint64_t hi;
    uint64_t lo;
    std::memcpy(&hi, a.bytes.data(), 8);
    std::memcpy(&lo, a.bytes.data() + 8, 8);
    return (hi & mhi) == nhi && (lo & mlo) == nlo;
  }
};

bool parseNet(std::string_view s, Net& out) {
  const size_t slash = s.find('/');
  IpAddr a;
  if (!IpAddr::parse(s.substr(0, slash), a)) {
    return false;
  }
  unsigned bits = 128;
  if (slash != std::string_view::npos) {
    bits = static_cast<unsigned>(std::stoul(std::string(s.substr(slash + 1))));
    if (a.isV4()) {
      bits += 96;
    }
  }
  bits = std::min(bits, 128u);
  // Mask over the 16 bytes in memory order (big-endian address bytes).
  std::array<uint8_t, 16> m{};
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned b = bits > i * 8 ? std::min(8u, bits - i * 8) : 0;
    m[i] = static_cast<uint8_t>(b == 0 ? 0 : (0xff00 >> b) & 0xff);
  }
  std::memcpy(&out.mhi, m.data(), 8);
  std::memcpy(&out.mlo, m.data() + 8, 8);
  std::memcpy(&out.nhi, a.bytes.data(), 8);
  std::memcpy(&out.nlo, a.bytes.data() + 8, 8);
  out.nhi &= out.mhi;
  out.nlo &= out.mlo;
  return true;
}

}  // namespace

bool StepValues::empty() const {
  for (double x : v) {
    if (x != 0) {
      return false;
    }
  }
  return true;
}

std::array<double, 15> StepValues::rates(double step_seconds) const {
  std::array<double, 15> out{};
  for (size_t m = 0; m < 3; ++m) {
    double total = 0;
    for (size_t c = 0; c < 4; ++c) {
      const double r = v[m * 4 + c] / step_seconds;
      out[m * 5 + 1 + c] = r;
      total += v[m * 4 + c];
    }
    out[m * 5] = total / step_seconds;
  }
  return out;
}

FlowTime flowTime(uint64_t first_ns, uint64_t last_ns, uint64_t received_ns,
                  const SpreadOptions& o) {
  FlowTime t;
  t.t1 = last_ns;
  t.t0 = std::max(first_ns, last_ns > o.max_span_ns ? last_ns - o.max_span_ns : 0);
  if (t.t1 == 0 || t.t0 > t.t1 || t.t1 > received_ns + o.max_ahead_ns) {
    t.t0 = t.t1 = received_ns;
  }
  return t;
}

// ---- StepTable ----

StepTable::StepTable() {
  table_.resize(256);
}

StepEntry& StepTable::slot(uint32_t channel, int64_t step) {
  if (used_ * 2 >= table_.size()) {
    std::vector<StepEntry> old(table_.size() * 2);
    old.swap(table_);
    used_ = 0;
    for (const StepEntry& e : old) {
      if (e.step != INT64_MIN) {
        slot(e.channel, e.step).values = e.values;
      }
    }
  }
  const size_t mask = table_.size() - 1;
  for (size_t i = hashKey(channel, step) & mask;; i = (i + 1) & mask) {
    StepEntry& e = table_[i];
    if (e.step == INT64_MIN) {
      e.step = step;
      e.channel = channel;
      e.values = StepValues{};
      ++used_;
      return e;
    }
    if (e.step == step && e.channel == channel) {
      return e;
    }
  }
}

void StepTable::add(uint32_t channel, int64_t step, uint8_t cls, double flows, double packets,
                    double bytes) {
  StepEntry* e = last_;
  if (e == nullptr || e->step != step || e->channel != channel) {
    e = &slot(channel, step);
    last_ = e;
  }
  e->values.v[cls] += flows;
  e->values.v[4 + cls] += packets;
  e->values.v[8 + cls] += bytes;
}

std::vector<StepEntry> StepTable::take() {
  std::vector<StepEntry> out;
  out.reserve(used_);
  for (StepEntry& e : table_) {
    if (e.step != INT64_MIN) {
      out.push_back(e);
      e.step = INT64_MIN;
    }
  }
  used_ = 0;
  last_ = nullptr;
  if (table_.size() > 4096 && out.size() * 8 < table_.size()) {
    table_.assign(256, StepEntry{});  // a burst of steps made it large: give the memory back
  }
  return out;
}

// ---- ChannelPlan ----

struct ChannelPlan::Chan {
  uint32_t id = 0;
  std::vector<Net> nets;
  std::vector<uint32_t> bridges;  // NameTable ids
  uint64_t rx_from = 0;
  uint64_t rx_until = UINT64_MAX;
  int64_t min_step = INT64_MIN;
  int64_t max_step = INT64_MAX;
  bool plain = true;  // no sources, no receive window, no step range: count every selected row

  bool sourceMatch(const FlowColumns& c, size_t row) const {
    for (const Net& n : nets) {
      if (n.contains(c.exporter[row])) {
        return true;
      }
    }
    for (uint32_t b : bridges) {
      if (c.bridge[row] == b) {
        return true;
      }
    }
    return false;
  }
};

struct ChannelPlan::Group {
  query::Filter filter;
  bool all = false;
  std::vector<uint32_t> chans;  // indices into chans_
};

ChannelPlan::~ChannelPlan() = default;

size_t ChannelPlan::channels() const {
  return chans_.size();
}

size_t ChannelPlan::distinctFilters() const {
  return groups_.size();
}

std::unique_ptr<ChannelPlan> ChannelPlan::build(const std::vector<ChannelSpec>& channels,
                                                const SpreadOptions& options, std::string* why) {
  std::unique_ptr<ChannelPlan> p(new ChannelPlan());
  p->opts_ = options;
  if (p->opts_.step_ns == 0) {
    *why = "step must not be 0";
    return nullptr;
  }
  std::unordered_map<std::string, size_t> by_text;
  for (const ChannelSpec& s : channels) {
    Chan ch;
    ch.id = s.id;
    ch.rx_from = s.received_from_ns;
    ch.rx_until = s.received_until_ns;
    ch.min_step = s.min_step;
    ch.max_step = s.max_step;
    for (const std::string& src : s.sources) {
      Net n;
      if (parseNet(src, n)) {
        ch.nets.push_back(n);
        addColumn(p->columns_, Column::exporter);
      } else {
        ch.bridges.push_back(internName(src));
        addColumn(p->columns_, Column::bridge);
      }
    }
    ch.plain = s.sources.empty() && ch.rx_from == 0 && ch.rx_until == UINT64_MAX &&
               ch.min_step == INT64_MIN && ch.max_step == INT64_MAX;
    // Channels with the same filter text (after trimming) share one selection.
    std::string text = s.filter;
    text.erase(0, text.find_first_not_of(" \t\r\n"));
    text.erase(text.find_last_not_of(" \t\r\n") + 1);
    auto it = by_text.find(text);
    if (it == by_text.end()) {
      query::FilterError err;
      auto f = query::Filter::compile(text, &err);
      if (!f) {
        *why = fmt::format("channel {}: {}", s.id, err.render(text));
        return nullptr;
      }
      Group g;
      g.all = f->matchesAll();
      g.filter = std::move(*f);
      p->filter_columns_ |= g.filter.columns();
      it = by_text.emplace(text, p->groups_.size()).first;
      p->groups_.push_back(std::move(g));
    }
    p->groups_[it->second].chans.push_back(static_cast<uint32_t>(p->chans_.size()));
    p->chans_.push_back(std::move(ch));
  }
  p->columns_ |= p->filter_columns_;
  for (Column c : {Column::first_ns, Column::last_ns, Column::received_ns, Column::packets,
                   Column::bytes, Column::sampling_rate, Column::flags, Column::proto}) {
    addColumn(p->columns_, c);
  }
  return p;
}

void ChannelPlan::evaluate(const FlowColumns& c, StepTable& out, Scratch& sc, size_t begin,
                           size_t end) const {
  const size_t n = std::min(end, c.size());
  if (begin >= n || chans_.empty()) {
    return;
  }
  sc.facts.resize(n);
  sc.ready.assign(n, 0);
  const uint64_t step = opts_.step_ns;
  auto facts = [&](size_t i) -> const Scratch::Facts& {
    Scratch::Facts& f = sc.facts[i];
    if (sc.ready[i] == 0) {
      sc.ready[i] = 1;
      const bool scaled = (c.flags[i] & FlowRecord::kFlagScaledByExporter) != 0;
      const double mult = scaled ? 1.0 : static_cast<double>(c.sampling_rate[i]);
      f.flows = mult;
      f.packets = static_cast<double>(c.packets[i]) * mult;
      f.bytes = static_cast<double>(c.bytes[i]) * mult;
      f.cls = protoClass(c.proto[i]);
      f.t = flowTime(c.first_ns[i], c.last_ns[i], c.received_ns[i], opts_);
      f.s0 = static_cast<int64_t>(f.t.t0 / step);
      f.s1 = static_cast<int64_t>(f.t.t1 / step);
    }
    return f;
  };
  for (const Group& g : groups_) {
    sc.rows.clear();
    if (g.all) {
      sc.rows.resize(n - begin);
      for (size_t i = begin; i < n; ++i) {
        sc.rows[i - begin] = static_cast<uint32_t>(i);
      }
    } else {
      g.filter.select(c, begin, n, sc.rows);
    }
    if (sc.rows.empty()) {
      continue;
    }
    for (uint32_t ci : g.chans) {
      const Chan& ch = chans_[ci];
      for (uint32_t row : sc.rows) {
        if (!ch.plain) {
          const uint64_t rx = c.received_ns[row];
          if (rx < ch.rx_from || rx >= ch.rx_until) {
            continue;
          }
          if ((!ch.nets.empty() || !ch.bridges.empty()) && !ch.sourceMatch(c, row)) {
            continue;
          }
        }
        const Scratch::Facts& f = facts(row);
        if (f.s0 == f.s1) {
          if (f.s0 >= ch.min_step && f.s0 <= ch.max_step) {
            out.add(ch.id, f.s0, f.cls, f.flows, f.packets, f.bytes);
          }
          continue;
        }
        spread(f.t, step, [&](int64_t s, double frac) {
          if (s >= ch.min_step && s <= ch.max_step) {
            out.add(ch.id, s, f.cls, f.flows * frac, f.packets * frac, f.bytes * frac);
          }
        });
      }
    }
  }
}

void transpose(std::span<const FlowRecord> rows, const ColumnSet& set, FlowColumns& out) {
  const size_t n = rows.size();
  ColumnSet s = set;
  addColumn(s, Column::first_ns);
#define NC_TRANSPOSE(type, name)                \
  if (hasColumn(s, Column::name)) {             \
    out.name.resize(n);                         \
    type* dst = out.name.data();                \
    for (size_t i = 0; i < n; ++i) {            \
      dst[i] = static_cast<type>(rows[i].name); \
    }                                           \
  } else {                                      \
    out.name.clear();                           \
  }
  NC_FLOW_COLUMNS(NC_TRANSPOSE)
#undef NC_TRANSPOSE
}

}  // namespace nc::profile
