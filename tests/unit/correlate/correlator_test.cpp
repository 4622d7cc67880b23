// The Correlator end to end without threads or timers: synthetic flows go through a
// CorrelatorShard (onBatch + flush) with an inventory snapshot of three ports, and the test drives
// Correlator::tick() with its own clock (the io_context is never run, start() never called, the
// Inventory pointer is null, so events carry no port details). Each test prints its figures with
// the prefix "[correlator]".
#include "collector/correlate/correlator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "collector/record/flow_record.hpp"
#include "collector/sink/sink.hpp"
#include "ovsctl/inventory/inventory.hpp"

namespace nc::correlate {
namespace {

using nlohmann::json;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kStep = 10 * kSec;  // CorrelatorOptions' default step
// Step numbers of a realistic wall clock (November 2023), so "far from now" means something.
constexpr int64_t kS0 = 170'000'000;
// The harness ticks this long after each step's end (the daemon ticks every 250 ms).
constexpr uint64_t kTickAfter = 500 * kMs;

constexpr uint64_t at(int64_t step, uint64_t step_ns = kStep) {
  return static_cast<uint64_t>(step) * step_ns;
}

json tables() {
  return json::parse(R"({
    "Bridge": {"b0": {"name": "br-corr", "ports": ["pa", "pb", "pc"]}},
    "Port": {
      "pa": {"name": "cp-a", "interfaces": "ia"},
      "pb": {"name": "cp-b", "interfaces": "ib"},
      "pc": {"name": "cp-c", "interfaces": "ic"}
    },
    "Interface": {
      "ia": {"name": "cp-a", "ofport": 1, "ifindex": 101, "mac_in_use": "02:00:00:00:01:01"},
      "ib": {"name": "cp-b", "ofport": 2, "ifindex": 102, "mac_in_use": "02:00:00:00:01:02"},
      "ic": {"name": "cp-c", "ofport": 3, "ifindex": 103, "mac_in_use": "02:00:00:00:01:03"}
    }
  })");
}

// One synthetic flow: ports by name ("" = unresolved), addresses ("" = none).
struct Flow {
  std::string in;
  std::string out;
  std::string src;
  std::string dst;
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t rx = 0;
  uint64_t bytes = 0;
  uint64_t packets = 0;
};

// A flow inside step `s` (first and last packet 5 % of a step from its edges), received at the
// step's end plus `late_by`.
Flow inStep(std::string in, std::string out, std::string src, std::string dst, int64_t s,
            uint64_t bytes, uint64_t packets, uint64_t step = kStep, uint64_t late_by = 0) {
  Flow f{std::move(in), std::move(out), std::move(src), std::move(dst)};
  f.first = at(s, step) + step / 20;
  f.last = at(s + 1, step) - step / 20;
  f.rx = at(s + 1, step) + late_by;
  f.bytes = bytes;
  f.packets = packets;
  return f;
}

std::string keyOf(const events::Event& e) {
  return std::string(events::toString(e.subject.kind)) + " " + e.subject.name + " " +
         std::string(events::toString(e.direction));
}

struct Got {
  events::Event event;
  bool ended = false;
  uint64_t at = 0;  // the tick that reported it
};

class Harness {
 public:
  explicit Harness(CorrelatorOptions o = {})
      : snap_(inventory::Inventory::build(tables(), nullptr)),
        corr_(io_, o, nullptr),
        shard_(corr_.makeShard()) {
    corr_.on_event = [this](const events::Event& e, bool ended) {
      got_.push_back({e, ended, now_});
    };
  }

  void add(Flow f) { pending_.push_back(std::move(f)); }
  // Hands the shard every queued flow received by `t` (in received order), then ticks at `t`.
  void advance(uint64_t t) {
    deliver(t);
    tick(t);
  }
  void deliver(uint64_t t) {
    std::stable_sort(pending_.begin(), pending_.end(),
                     [](const Flow& a, const Flow& b) { return a.rx < b.rx; });
    auto end =
        std::find_if(pending_.begin(), pending_.end(), [t](const Flow& f) { return f.rx > t; });
    std::vector<FlowRecord> recs;
    std::vector<uint32_t> in;
    std::vector<uint32_t> out;
    for (auto it = pending_.begin(); it != end; ++it) {
      FlowRecord r;
      r.first_ns = it->first;
      r.last_ns = it->last;
      r.received_ns = it->rx;
      r.bytes = it->bytes;
      r.packets = it->packets;
      if (!it->src.empty()) {
        EXPECT_TRUE(IpAddr::parse(it->src, r.src_addr));
      }
      if (!it->dst.empty()) {
        EXPECT_TRUE(IpAddr::parse(it->dst, r.dst_addr));
      }
      recs.push_back(r);
      in.push_back(slot(it->in));
      out.push_back(slot(it->out));
    }
    pending_.erase(pending_.begin(), end);
    if (recs.empty()) {
      return;
    }
    shard_->onBatch(sink::Batch{recs, in.data(), out.data(), snap_.get()});
    shard_->flush();
  }
  void tick(uint64_t t) {
    now_ = t;
    corr_.tick(t);
  }
  // For each step s in [from, to): queue gen(s), then advance to s's end + kTickAfter.
  void run(int64_t from, int64_t to, const std::function<std::vector<Flow>(int64_t)>& gen,
           uint64_t step = kStep) {
    for (int64_t s = from; s < to; ++s) {
      for (Flow& f : gen(s)) {
        add(std::move(f));
      }
      advance(at(s + 1, step) + kTickAfter);
    }
  }

  uint32_t slot(const std::string& name) const {
    if (name.empty()) {
      return UINT32_MAX;
    }
    const inventory::Port* p = snap_->portByName(name);
    EXPECT_NE(p, nullptr) << name;
    return p != nullptr ? p->slot : UINT32_MAX;
  }

  std::vector<const Got*> started() const { return filter(false); }
  std::vector<const Got*> ended() const { return filter(true); }
  uint64_t stat(const char* key) const { return corr_.status()[key].get<uint64_t>(); }
  uint64_t subjects(const char* kind) const {
    return corr_.status()["subjects"][kind].get<uint64_t>();
  }

  boost::asio::io_context io_;  // never run
  std::shared_ptr<const inventory::Snapshot> snap_;
  Correlator corr_;
  std::unique_ptr<CorrelatorShard> shard_;
  std::vector<Got> got_;
  std::vector<Flow> pending_;
  uint64_t now_ = 0;

 private:
  std::vector<const Got*> filter(bool ended) const {
    std::vector<const Got*> out;
    for (const Got& g : got_) {
      if (g.ended == ended) {
        out.push_back(&g);
      }
    }
    return out;
  }
};

// Base traffic: a ring A -> B -> C -> A, 20 kB/s and 20 packets/s per pair (per step: 200 kB).
constexpr uint64_t kBaseBytes = 200'000;
constexpr uint64_t kBasePackets = 200;

std::vector<Flow> ring(int64_t s, uint64_t step = kStep, uint64_t late_by = 0) {
  return {
      inStep("cp-a", "cp-b", "10.1.0.1", "10.1.0.2", s, kBaseBytes, kBasePackets, step, late_by),
      inStep("cp-b", "cp-c", "10.1.0.2", "10.1.0.3", s, kBaseBytes, kBasePackets, step, late_by),
      inStep("cp-c", "cp-a", "10.1.0.3", "10.1.0.1", s, kBaseBytes, kBasePackets, step, late_by),
  };
}

// The four subjects a burst from A (10.1.0.1) to B (10.1.0.2) involves.
const std::vector<std::string> kBurstSubjects = {"address 10.1.0.1 out", "address 10.1.0.2 in",
                                                 "port cp-a in", "port cp-b out"};

std::vector<std::string> sortedKeys(const std::vector<const Got*>& gs) {
  std::vector<std::string> keys;
  for (const Got* g : gs) {
    keys.push_back(keyOf(g->event));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

TEST(Correlator, BurstStartsAndEndsOneEventPerSubject) {
  Harness h;
  constexpr int64_t kBurst = kS0 + 60;  // warm-up is 30 steps
  constexpr int64_t kBurstSteps = 4;
  h.run(kS0, kS0 + 100, [&](int64_t s) {
    std::vector<Flow> f = ring(s);
    if (s >= kBurst && s < kBurst + kBurstSteps) {  // x50 on A -> B
      f.push_back(
          inStep("cp-a", "cp-b", "10.1.0.1", "10.1.0.2", s, 49 * kBaseBytes, 49 * kBasePackets));
    }
    return f;
  });

  const auto started = h.started();
  const auto ended = h.ended();
  EXPECT_EQ(sortedKeys(started), kBurstSubjects);
  EXPECT_EQ(sortedKeys(ended), kBurstSubjects);
  const CorrelatorOptions& o = h.corr_.options();
  for (const Got* g : started) {
    const events::Event& e = g->event;
    EXPECT_EQ(e.start_ns, at(kBurst)) << keyOf(e);
    EXPECT_FALSE(e.end_ns.has_value());
    EXPECT_EQ(e.metric, events::Metric::kBytes);
    EXPECT_NEAR(e.observed, 50.0 * kBaseBytes / 10, 1.0) << keyOf(e);
    EXPECT_NEAR(e.baseline, kBaseBytes / 10.0, 1.0) << keyOf(e);
    EXPECT_NEAR(e.ratio, 50, 0.01) << keyOf(e);
    // Reported once the step's data is in, within a few steps.
    EXPECT_GE(g->at, at(kBurst + 1));
    EXPECT_LE(g->at, at(kBurst + 3) + kTickAfter);
    // No inventory: the subject is named, nothing more.
    EXPECT_EQ(e.subject.bridge, "");
    EXPECT_FALSE(e.subject.ofport.has_value());
    EXPECT_EQ(e.detector["step_ms"], 10'000);
    std::printf("[correlator] burst x50: started %-22s at step +%lld, reported %.1f s after it\n",
                keyOf(e).c_str(), static_cast<long long>(e.start_ns / kStep - kS0),
                static_cast<double>(g->at - e.start_ns) / 1e9);
  }
  for (const Got* g : ended) {
    const events::Event& e = g->event;
    ASSERT_TRUE(e.end_ns.has_value());
    EXPECT_EQ(e.start_ns, at(kBurst));
    EXPECT_EQ(*e.end_ns, at(kBurst + kBurstSteps)) << keyOf(e);  // the first quiet step
    EXPECT_GE(g->at, *e.end_ns + o.cooldown_ns) << keyOf(e);     // after the cooldown
    EXPECT_LE(g->at, *e.end_ns + o.cooldown_ns + 3 * kStep);
    std::printf("[correlator] burst x50: ended   %-22s at step +%lld, reported %.1f s after it\n",
                keyOf(e).c_str(), static_cast<long long>(*e.end_ns / kStep - kS0),
                static_cast<double>(g->at - *e.end_ns) / 1e9);
  }
  EXPECT_EQ(h.stat("events_started"), 4u);
  EXPECT_EQ(h.stat("events_ended"), 4u);
  EXPECT_EQ(h.stat("ongoing"), 0u);
  EXPECT_EQ(h.stat("late"), 0u);
  EXPECT_EQ(h.stat("subjects_refused"), 0u);
  EXPECT_EQ(h.subjects("ports"), 6u);
  EXPECT_EQ(h.subjects("addresses"), 6u);
  EXPECT_TRUE(h.corr_.ongoing().empty());
  std::printf(
      "[correlator] burst x50 for %lld steps: %zu started, %zu ended, %llu steps "
      "evaluated\n",
      static_cast<long long>(kBurstSteps), started.size(), ended.size(),
      static_cast<unsigned long long>(h.stat("steps_evaluated")));
}

TEST(Correlator, OngoingEventIsListed) {
  Harness h;
  constexpr int64_t kBurst = kS0 + 40;
  h.run(kS0, kBurst + 5, [&](int64_t s) {
    std::vector<Flow> f = ring(s);
    if (s >= kBurst) {
      f.push_back(inStep("cp-c", "", "", "", s, 99 * kBaseBytes, 99 * kBasePackets));
    }
    return f;
  });
  ASSERT_EQ(h.started().size(), 1u);
  EXPECT_EQ(keyOf(h.started()[0]->event), "port cp-c in");
  const auto ongoing = h.corr_.ongoing();
  ASSERT_EQ(ongoing.size(), 1u);
  EXPECT_EQ(ongoing[0].start_ns, at(kBurst));
  EXPECT_EQ(h.stat("ongoing"), 1u);
  EXPECT_TRUE(h.ended().empty());
}

TEST(Correlator, FlowSpanningStepsIsSpreadProportionally) {
  CorrelatorOptions o;
  o.max_span_ns = 60 * kSec;
  Harness h(o);
  // 30 s from 5 s into step S to 5 s into step S+3: 1/6, 1/3, 1/3, 1/6 of it per step.
  constexpr int64_t S = kS0 + 5;
  Flow f{"cp-a", "", "", ""};
  f.first = at(S) + 5 * kSec;
  f.last = at(S + 3) + 5 * kSec;
  f.rx = f.last + 1 * kSec;
  f.bytes = 6'000'000;
  f.packets = 6'000;
  h.add(f);
  h.deliver(f.rx);
  // The subject's delay is rx - first = 31 s: step k closes at its end + 31 s + 1.25 s.
  // Tick 2 s after that, one step at a time.
  const double want_bps[] = {0.8e6, 1.6e6, 1.6e6, 0.8e6, 0};
  for (int k = 0; k < 5; ++k) {
    h.tick(at(S + k + 1) + 31 * kSec + 1250 * kMs + 2 * kSec);
    EXPECT_EQ(h.stat("steps_evaluated"), static_cast<uint64_t>(k + 1));
    const auto rates = h.corr_.portRates();
    ASSERT_EQ(rates.count("cp-a"), 1u);
    EXPECT_NEAR(rates.at("cp-a").in_bps, want_bps[k], 1.0) << "step +" << k;
    EXPECT_NEAR(rates.at("cp-a").in_pps, want_bps[k] / 8 / 1000, 0.001) << "step +" << k;
    std::printf("[correlator] 30 s flow of 6 MB: step +%d at %.2f Mb/s\n", k,
                rates.at("cp-a").in_bps / 1e6);
  }
  EXPECT_EQ(h.stat("late"), 0u);
}

TEST(Correlator, FlowIsSpreadOverAtMostMaxSpan) {
  Harness h;  // max_span 20 s
  constexpr int64_t S = kS0 + 5;
  Flow f{"cp-a", "", "", ""};
  f.first = at(S);  // 40 s, but only its last 20 s count: steps S+2 and S+3
  f.last = at(S + 4);
  f.rx = f.last + 1 * kSec;
  f.bytes = 4'000'000;
  f.packets = 4'000;
  h.add(f);
  h.deliver(f.rx);
  std::vector<double> bps;
  // delay = rx - (last - 20 s) = 21 s.
  for (int k = 2; k < 5; ++k) {
    h.tick(at(S + k + 1) + 21 * kSec + 1250 * kMs + 2 * kSec);
    bps.push_back(h.corr_.portRates().at("cp-a").in_bps);
  }
  EXPECT_EQ(h.stat("steps_evaluated"), 3u);  // the subject starts at its first counted step
  EXPECT_NEAR(bps[0], 1.6e6, 1.0);           // 2 MB in 10 s
  EXPECT_NEAR(bps[1], 1.6e6, 1.0);
  EXPECT_NEAR(bps[2], 0, 1.0);
  EXPECT_EQ(h.stat("late"), 0u);
  std::printf("[correlator] 40 s flow, max_span 20 s: %.2f, %.2f, %.2f Mb/s\n", bps[0] / 1e6,
              bps[1] / 1e6, bps[2] / 1e6);
}

TEST(Correlator, BurstCarriedByOneLongFlowStartsAtItsFirstStep) {
  CorrelatorOptions o;
  o.max_span_ns = 60 * kSec;
  Harness h(o);
  // Steady flows arrive 25 s after their step (an exporter with a 30 s active timeout): the
  // subjects' delay is ~34 s. The burst is one flow over steps B..B+2, reported once at its end.
  constexpr int64_t B = kS0 + 50;
  h.run(kS0, kS0 + 90, [&](int64_t s) {
    std::vector<Flow> f = ring(s, kStep, 25 * kSec);
    if (s == B + 2) {
      Flow burst{"cp-a", "cp-b", "10.1.0.1", "10.1.0.2"};
      burst.first = at(B) + kSec / 2;
      burst.last = at(B + 3) - kSec / 2;
      burst.rx = burst.last + 1 * kSec;
      burst.bytes = 3 * 49 * kBaseBytes;
      burst.packets = 3 * 49 * kBasePackets;
      f.push_back(burst);
    }
    return f;
  });
  EXPECT_EQ(sortedKeys(h.started()), kBurstSubjects);
  EXPECT_EQ(sortedKeys(h.ended()), kBurstSubjects);
  for (const Got* g : h.started()) {
    EXPECT_EQ(g->event.start_ns, at(B)) << keyOf(g->event);
    // Not before the flow arrived, and then within the subject's delay.
    EXPECT_GE(g->at, at(B + 3));
    std::printf("[correlator] one 29 s flow x50: %-22s starts at step +%lld (reported at +%lld)\n",
                keyOf(g->event).c_str(), static_cast<long long>(g->event.start_ns / kStep - kS0),
                static_cast<long long>(g->at / kStep - kS0));
  }
  for (const Got* g : h.ended()) {
    EXPECT_EQ(g->event.end_ns, at(B + 3)) << keyOf(g->event);
  }
  EXPECT_EQ(h.stat("late"), 0u);
}

TEST(Correlator, TimesFarFromNowCountAtReceivedTime) {
  Harness h;
  constexpr int64_t S = kS0 + 5;
  const uint64_t rx = at(S) + 5 * kSec;
  std::vector<Flow> odd;
  for (int i = 0; i < 5; ++i) {
    Flow f{"cp-b", "", "", ""};
    f.rx = rx;
    f.bytes = 1'000'000;
    f.packets = 1'000;
    odd.push_back(f);
  }
  const std::pair<uint64_t, uint64_t> times[] = {
      {0, 0},                                     // no times
      {rx + 3600 * kSec, rx + 7200 * kSec},       // an hour ahead
      {at(S) - 3600 * kSec, at(S) - 600 * kSec},  // ended 10 min before it arrived
      {rx - kSec, rx - 2 * kSec},                 // first after last
      {1, 2},                                     // 1970
  };
  for (size_t i = 0; i < odd.size(); ++i) {
    odd[i].first = times[i].first;
    odd[i].last = times[i].second;
  }
  for (const Flow& f : odd) {
    h.add(f);
  }
  h.deliver(rx);
  h.tick(at(S + 1) + 2 * kSec);  // delay 0: closes at the step's end + 1.25 s
  EXPECT_EQ(h.stat("steps_evaluated"), 1u);
  EXPECT_EQ(h.stat("late"), 0u);
  // 5 MB in the step of rx: 4 Mb/s.
  EXPECT_NEAR(h.corr_.portRates().at("cp-b").in_bps, 4e6, 1.0);
  std::printf("[correlator] 5 flows with times far from now: %.2f Mb/s in the received step\n",
              h.corr_.portRates().at("cp-b").in_bps / 1e6);
}

TEST(Correlator, DataForEvaluatedStepsIsLate) {
  Harness h;
  h.run(kS0, kS0 + 10, [](int64_t s) { return ring(s); });
  const uint64_t evaluated = h.stat("steps_evaluated");
  ASSERT_GT(evaluated, 0u);
  EXPECT_EQ(h.stat("late"), 0u);
  // A flow in step 2 (long closed), arriving now, 80 s later: counted at its own time, so late.
  Flow f = inStep("cp-a", "", "", "", kS0 + 2, 1'000'000, 1'000);
  f.rx = at(kS0 + 10) + kSec;
  h.add(f);
  h.advance(at(kS0 + 10) + 2 * kSec);
  EXPECT_EQ(h.stat("late"), 1u);
  // Two subjects (port in, source address out) for a flow with an address.
  Flow g = inStep("cp-a", "", "10.1.0.1", "", kS0 + 3, 1'000'000, 1'000);
  g.rx = at(kS0 + 10) + 3 * kSec;
  h.add(g);
  h.advance(at(kS0 + 10) + 4 * kSec);
  EXPECT_EQ(h.stat("late"), 3u);
  std::printf("[correlator] late accumulators after 2 flows for closed steps: %llu\n",
              static_cast<unsigned long long>(h.stat("late")));
}

TEST(Correlator, EvaluationWaitsForTheSubjectsDelay) {
  Harness h;
  constexpr int64_t S = kS0 + 5;
  // cp-a: received 5 s after its first packet. cp-b: received 0.5 s after.
  Flow a{"cp-a", "", "", ""};
  a.first = at(S) + 1 * kSec;
  a.last = at(S) + 2 * kSec;
  a.rx = a.first + 5 * kSec;
  a.bytes = 1'000'000;
  a.packets = 1'000;
  Flow b = a;
  b.in = "cp-b";
  b.first = b.last = at(S) + 5 * kSec;
  b.rx = b.first + kSec / 2;
  h.add(a);
  h.add(b);
  h.deliver(a.rx);
  const uint64_t step_end = at(S + 1);
  auto evaluated = [&](const char* port) { return h.corr_.portRates().at(port).in_bps > 0; };
  // Settle margin: a quarter step (at most 1 s) plus the handover period, 1.25 s here.
  h.tick(step_end + 1500 * kMs);
  EXPECT_EQ(h.stat("steps_evaluated"), 0u);
  // cp-b: its end + 0.5 s delay + 1.25 s, seen by the next pass over every subject (passes run
  // every eighth of a step, at most every second: 1 s here).
  h.tick(step_end + 2750 * kMs + 1 * kMs);
  EXPECT_TRUE(evaluated("cp-b"));
  EXPECT_FALSE(evaluated("cp-a"));
  EXPECT_EQ(h.stat("steps_evaluated"), 1u);
  // cp-a: not before its end + 5 s ...
  h.tick(step_end + 5 * kSec - 1);
  EXPECT_FALSE(evaluated("cp-a"));
  EXPECT_EQ(h.stat("steps_evaluated"), 1u);
  // ... and by its end + 5 s delay + 1.25 s (+ the pass interval).
  h.tick(step_end + 7250 * kMs + 1 * kMs);
  EXPECT_TRUE(evaluated("cp-a"));
  EXPECT_EQ(h.stat("steps_evaluated"), 2u);
  std::printf(
      "[correlator] delay 5 s: step closed after +5 s, by +7.25 s after its end; "
      "delay 0.5 s: by +2.75 s (1 s passes)\n");
}

TEST(Correlator, PortSubjectsAreCapped) {
  CorrelatorOptions o;
  o.max_ports = 2;
  Harness h(o);
  // A <-> B: four port subjects (two ports, both directions) fill the cap.
  h.run(kS0, kS0 + 3, [](int64_t s) {
    return std::vector<Flow>{inStep("cp-a", "cp-b", "", "", s, kBaseBytes, kBasePackets),
                             inStep("cp-b", "cp-a", "", "", s, kBaseBytes, kBasePackets)};
  });
  EXPECT_EQ(h.subjects("ports"), 4u);
  EXPECT_EQ(h.stat("subjects_refused"), 0u);
  // A third port is refused, in either direction; A and B go on.
  h.run(kS0 + 3, kS0 + 6, [](int64_t s) {
    return std::vector<Flow>{inStep("cp-c", "cp-a", "", "", s, kBaseBytes, kBasePackets),
                             inStep("cp-a", "cp-c", "", "", s, kBaseBytes, kBasePackets)};
  });
  EXPECT_EQ(h.subjects("ports"), 4u);
  EXPECT_GE(h.stat("subjects_refused"), 2u);
  const auto rates = h.corr_.portRates();
  EXPECT_EQ(rates.count("cp-c"), 0u);
  EXPECT_EQ(rates.count("cp-a"), 1u);
  std::printf("[correlator] max_ports 2: %llu port subjects, %llu accumulators refused\n",
              static_cast<unsigned long long>(h.subjects("ports")),
              static_cast<unsigned long long>(h.stat("subjects_refused")));
}

TEST(Correlator, AddressSubjectsAreCapped) {
  CorrelatorOptions o;
  o.max_addresses = 1;
  Harness h(o);
  h.run(kS0, kS0 + 3, [](int64_t s) {
    return std::vector<Flow>{
        inStep("cp-a", "cp-b", "10.2.0.1", "10.2.0.2", s, kBaseBytes, kBasePackets),
        inStep("cp-a", "cp-b", "10.2.0.3", "10.2.0.4", s, kBaseBytes, kBasePackets)};
  });
  EXPECT_EQ(h.subjects("addresses"), 2u);
  EXPECT_GE(h.stat("subjects_refused"), 2u);
  EXPECT_EQ(h.subjects("ports"), 2u);
}

// An uplink carries the peers of local addresses: once a port has seen more addresses than a
// port block holds, its addresses are not subjects; the local side (cp-a's) still is.
TEST(Correlator, CrowdedPortAddressesAreNotSubjects) {
  Harness h;
  h.run(kS0, kS0 + 3, [](int64_t s) {
    std::vector<Flow> f;
    for (int i = 0; i < 100; ++i) {
      f.push_back(inStep("cp-c", "cp-a", "192.0.2." + std::to_string(i + 1), "10.1.0.1", s,
                         kBaseBytes, kBasePackets));
    }
    return f;
  });
  EXPECT_EQ(h.subjects("addresses"), 1u);  // 10.1.0.1 in
  EXPECT_EQ(h.subjects("ports"), 2u);      // cp-c in, cp-a out
  EXPECT_EQ(h.shard_->crowdedEvents(), 1u);
  std::printf("[correlator] 100 peers through one port: %llu address subjects, crowded %llu\n",
              static_cast<unsigned long long>(h.subjects("addresses")),
              static_cast<unsigned long long>(h.shard_->crowdedEvents()));
}

// A VM that renumbers over time is not an uplink: addresses idle for a minute give way.
TEST(Correlator, IdleAddressesGiveWayToNewOnes) {
  Harness h;
  const size_t n = CorrelatorShard::kAddressesPerPort + 4;
  for (size_t i = 0; i < n; ++i) {
    const int64_t s = kS0 + static_cast<int64_t>(i) * 7;  // 70 s apart
    h.run(s, s + 1, [i](int64_t st) {
      return std::vector<Flow>{inStep("cp-a", "cp-b", "10.3.0." + std::to_string(i + 1), "10.1.0.2",
                                      st, kBaseBytes, kBasePackets)};
    });
  }
  EXPECT_EQ(h.shard_->crowdedEvents(), 0u);
  EXPECT_EQ(h.subjects("addresses"), n + 1);  // every source ("out") and 10.1.0.2 ("in")
}

TEST(Correlator, SteadyTrafficStartsNothing) {
  Harness h;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> noise(0.8, 1.2);
  // 1 MB/s (8 Mb/s) and 1000 packets/s +- 20 % per pair: well above min_bps and min_pps.
  h.run(kS0, kS0 + 500, [&](int64_t s) {
    std::vector<Flow> f;
    for (const auto& [in, out, src, dst] :
         std::vector<std::array<const char*, 4>>{{"cp-a", "cp-b", "10.1.0.1", "10.1.0.2"},
                                                 {"cp-b", "cp-c", "10.1.0.2", "10.1.0.3"},
                                                 {"cp-c", "cp-a", "10.1.0.3", "10.1.0.1"}}) {
      const double k = noise(rng);
      f.push_back(inStep(in, out, src, dst, s, static_cast<uint64_t>(10'000'000 * k),
                         static_cast<uint64_t>(10'000 * k)));
    }
    return f;
  });
  EXPECT_EQ(h.got_.size(), 0u);
  EXPECT_EQ(h.stat("late"), 0u);
  EXPECT_GE(h.stat("steps_evaluated"), 12u * 490);
  std::printf(
      "[correlator] steady +-20 %% noise, 500 steps x 12 subjects: %zu events, %llu steps "
      "evaluated\n",
      h.got_.size(), static_cast<unsigned long long>(h.stat("steps_evaluated")));
}

TEST(Correlator, PeriodicOnOffLearnedInWarmupStartsNothing) {
  Harness h;
  // A -> B: 3 steps at 500 kB/s every 30 steps, 5 kB/s in between; the first on phase falls in
  // the warm-up (30 steps). B -> C steady.
  h.run(kS0, kS0 + 500, [&](int64_t s) {
    const bool on = (s - kS0) % 30 >= 10 && (s - kS0) % 30 < 13;
    return std::vector<Flow>{
        inStep("cp-a", "cp-b", "10.1.0.1", "10.1.0.2", s, on ? 5'000'000 : 50'000, on ? 5'000 : 50),
        inStep("cp-b", "cp-c", "10.1.0.2", "10.1.0.3", s, kBaseBytes, kBasePackets)};
  });
  EXPECT_EQ(h.got_.size(), 0u);
  for (const Got& g : h.got_) {
    ADD_FAILURE() << keyOf(g.event) << " at step +" << (g.event.start_ns / kStep - kS0);
  }
  std::printf("[correlator] on/off 3 of 30 steps x100, 500 steps: %zu events\n", h.got_.size());
}

TEST(Correlator, ReconfigureKeepsSubjectsAndRefusesAnotherStep) {
  Harness h;
  h.run(kS0, kS0 + 5, [](int64_t s) { return ring(s); });
  ASSERT_EQ(h.subjects("ports"), 6u);
  ASSERT_EQ(h.subjects("addresses"), 6u);

  // Detector parameters apply at once; what the subjects learnt stays.
  CorrelatorOptions o = h.corr_.options();
  o.sensitivity = 6;
  o.min_bps = 2'000'000;
  EXPECT_TRUE(h.corr_.reconfigure(o));
  EXPECT_EQ(h.corr_.options().sensitivity, 6);
  EXPECT_EQ(h.corr_.options().min_bps, 2'000'000);
  EXPECT_EQ(h.subjects("ports"), 6u);
  EXPECT_EQ(h.subjects("addresses"), 6u);
  EXPECT_EQ(h.corr_.portRates().size(), 3u);
  h.run(kS0 + 5, kS0 + 10, [](int64_t s) { return ring(s); });
  EXPECT_EQ(h.subjects("ports"), 6u);
  EXPECT_EQ(h.stat("late"), 0u);

  // Another step (the shards count in the old one): refused, the step stays, the rest applies.
  o.step_ns = 5 * kSec;
  o.sensitivity = 5;
  EXPECT_FALSE(h.corr_.reconfigure(o));
  EXPECT_EQ(h.corr_.options().step_ns, kStep);
  EXPECT_EQ(h.stat("step_ms"), 10'000u);
  EXPECT_EQ(h.corr_.options().sensitivity, 5);
  EXPECT_EQ(h.subjects("ports"), 6u);
  EXPECT_EQ(h.subjects("addresses"), 6u);
  // The same shard goes on in 10 s steps: 200 kB a step = 160 kb/s.
  h.run(kS0 + 10, kS0 + 20, [](int64_t s) { return ring(s); });
  EXPECT_EQ(h.stat("late"), 0u);
  const auto rates = h.corr_.portRates();
  ASSERT_EQ(rates.count("cp-a"), 1u);
  EXPECT_NEAR(rates.at("cp-a").in_bps, 160'000, 1.0);
  EXPECT_NEAR(rates.at("cp-a").out_bps, 160'000, 1.0);
  std::printf(
      "[correlator] reconfigure: new sensitivity kept 12 subjects; a 5 s step was "
      "refused, cp-a in %.0f kb/s\n",
      rates.at("cp-a").in_bps / 1e3);
}

}  // namespace
}  // namespace nc::correlate
