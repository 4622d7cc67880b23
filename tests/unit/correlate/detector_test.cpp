// The spike detector on synthetic series with a known truth. Each test prints its figures with the
// prefix "[detector]" (docs/detector.md records them): delay = steps from the true burst start to
// the event start, false_positives = events starting outside every true burst.
#include "collector/correlate/detector.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numbers>
#include <random>
#include <string>
#include <vector>

namespace nc::correlate {
namespace {

// Step numbers start here so that start/end bookkeeping is not confused with series offsets.
constexpr uint64_t kStep0 = 1'000'000;

struct Burst {
  size_t begin;  // first step of the burst (series index)
  size_t end;    // first step after it
};

struct Event {
  size_t start;     // series index of the start
  size_t end;       // series index of the first quiet step (endStep), or npos while active
  size_t ended_at;  // series index of the step that returned kEnded, or npos
  double peak;
};

struct Figures {
  std::vector<Event> events;
  int false_positives = 0;
  int detected = 0;  // true bursts with an event starting inside them
  long first_delay = -1;
  long max_delay = -1;
};

std::vector<Event> run(const std::vector<double>& series, const DetectorParams& p,
                       Detector* out = nullptr) {
  Detector d;
  std::vector<Event> events;
  for (size_t i = 0; i < series.size(); ++i) {
    switch (d.observe(series[i], kStep0 + i, p)) {
      case Transition::kStarted:
        EXPECT_EQ(d.startStep(), kStep0 + i);
        events.push_back({i, std::string::npos, std::string::npos, 0});
        break;
      case Transition::kEnded:
        events.back().end = d.endStep() - kStep0;
        events.back().ended_at = i;
        events.back().peak = d.peak();
        break;
      case Transition::kNone:
        break;
    }
  }
  if (out != nullptr) {
    *out = d;
  }
  return events;
}

Figures score(const std::vector<double>& series, const std::vector<Burst>& truth,
              const DetectorParams& p) {
  Figures f;
  f.events = run(series, p);
  std::vector<bool> hit(truth.size(), false);
  for (const Event& e : f.events) {
    bool inside = false;
    for (size_t b = 0; b < truth.size(); ++b) {
      if (e.start >= truth[b].begin && e.start < truth[b].end) {
        inside = true;
        if (!hit[b]) {
          hit[b] = true;
          const long delay = static_cast<long>(e.start - truth[b].begin);
          if (f.first_delay < 0) {
            f.first_delay = delay;
          }
          f.max_delay = std::max(f.max_delay, delay);
        }
      }
    }
    f.false_positives += inside ? 0 : 1;
  }
  f.detected = static_cast<int>(std::count(hit.begin(), hit.end(), true));
  return f;
}

void print(const std::string& name, const Figures& f, const std::string& extra = "") {
  std::printf("[detector] %s: events=%zu detected=%d delay=%s false_positives=%d%s%s\n",
              name.c_str(), f.events.size(), f.detected,
              f.first_delay < 0 ? "-" : std::to_string(f.max_delay).c_str(), f.false_positives,
              extra.empty() ? "" : " ", extra.c_str());
}

// Series builders. `noise` is a relative uniform noise: level·(1 ± noise).
class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  double jitter(double level, double noise) {
    return level * (1 + std::uniform_real_distribution<double>(-noise, noise)(rng_));
  }
  std::vector<double> flat(size_t n, double level, double noise) {
    std::vector<double> s(n);
    for (double& v : s) {
      v = jitter(level, noise);
    }
    return s;
  }
  // Replaces [b.begin, b.end) by `level` with the same relative noise.
  void burst(std::vector<double>& s, Burst b, double level, double noise) {
    for (size_t i = b.begin; i < b.end; ++i) {
      s[i] = jitter(level, noise);
    }
  }
  std::vector<double> onOff(size_t n, size_t on, size_t off, size_t phase, double high, double low,
                            double noise) {
    std::vector<double> s(n);
    for (size_t i = 0; i < n; ++i) {
      s[i] = jitter((i + phase) % (on + off) < on ? high : low, noise);
    }
    return s;
  }
  std::vector<double> sine(size_t n, double mean, double amplitude, double period, double noise) {
    std::vector<double> s(n);
    for (size_t i = 0; i < n; ++i) {
      s[i] = jitter(mean + amplitude * std::sin(2 * std::numbers::pi * i / period), noise);
    }
    return s;
  }
  std::vector<double> gaussian(size_t n, double mean, double cv) {
    std::normal_distribution<double> dist(mean, cv * mean);
    std::vector<double> s(n);
    for (double& v : s) {
      v = std::max(0.0, dist(rng_));
    }
    return s;
  }
  std::vector<double> poisson(size_t n, double mean) {
    std::poisson_distribution<int> dist(mean);
    std::vector<double> s(n);
    for (double& v : s) {
      v = dist(rng_);
    }
    return s;
  }

 private:
  std::mt19937 rng_;
};

TEST(Detector, StateIsSmall) {
  EXPECT_LE(sizeof(Detector), 64u);
  std::printf("[detector] sizeof(Detector)=%zu\n", sizeof(Detector));
}

TEST(Detector, ParamsToJsonHasEveryParameter) {
  DetectorParams p;
  p.min_rate = 125;
  const nlohmann::json j = p.toJson();
  for (const char* key :
       {"sensitivity", "min_rate", "warmup_steps", "cooldown_steps", "alpha", "dev_floor",
        "envelope_half_life_steps", "envelope_factor", "relearn_after_steps"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 9u);
  EXPECT_EQ(j["min_rate"], 125.0);
  EXPECT_EQ(j["warmup_steps"], 30u);
}

// Flat 100 ±5 %, ×10 for 20 steps, back: one event, starting on the burst's first step, ending
// (endStep) on the first step after it, reported cooldown_steps-1 steps later.
TEST(Detector, Step) {
  const DetectorParams p;
  Gen g(1);
  auto s = g.flat(400, 100, 0.05);
  const Burst b{200, 220};
  g.burst(s, b, 1000, 0.05);
  const Figures f = score(s, {b}, p);
  ASSERT_EQ(f.events.size(), 1u);
  const Event& e = f.events[0];
  EXPECT_EQ(f.first_delay, 0);
  EXPECT_EQ(f.false_positives, 0);
  EXPECT_EQ(e.end, b.end);
  ASSERT_NE(e.ended_at, std::string::npos);
  EXPECT_LE(e.ended_at - b.end, p.cooldown_steps + 1);
  EXPECT_GE(e.peak, 950);
  print("step x10", f,
        "end_delay=" + std::to_string(e.end - b.end) +
            " ended_reported_after=" + std::to_string(e.ended_at - b.end));
}

// While an event is active the baseline is frozen: the burst does not teach it.
TEST(Detector, BaselineFrozenDuringEvent) {
  const DetectorParams p;
  Gen g(2);
  auto s = g.flat(300, 100, 0.05);
  Detector d;
  double before = 0;
  for (size_t i = 0; i < 200; ++i) {
    d.observe(s[i], i, p);
  }
  before = d.baseline();
  EXPECT_EQ(d.observe(1000, 200, p), Transition::kStarted);
  for (size_t i = 201; i < 220; ++i) {
    EXPECT_EQ(d.observe(1000, i, p), Transition::kNone);
    EXPECT_EQ(d.baseline(), before);
  }
  EXPECT_TRUE(d.active());
  EXPECT_EQ(d.peak(), 1000);
}

// One burst with dips back to the baseline (shorter than cooldown_steps): one event.
TEST(Detector, BurstWithDips) {
  const DetectorParams p;
  Gen g(3);
  auto s = g.flat(400, 100, 0.05);
  const Burst b{200, 240};
  g.burst(s, b, 1000, 0.05);
  for (size_t i : {210, 211, 220, 230, 231}) {  // dips of 2, 1 and 2 steps
    s[i] = g.jitter(100, 0.05);
  }
  const Figures f = score(s, {b}, p);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.first_delay, 0);
  EXPECT_EQ(f.events[0].end, b.end);
  print("burst with dips", f);
}

// Slow linear growth ×3 over 500 steps: the baseline follows, no event.
TEST(Detector, SlowRampIsNotASpike) {
  const DetectorParams p;
  Gen g(4);
  std::vector<double> s;
  for (size_t i = 0; i < 100; ++i) {
    s.push_back(g.jitter(100, 0.05));
  }
  for (size_t i = 0; i < 500; ++i) {
    s.push_back(g.jitter(100 + 200.0 * i / 500, 0.05));
  }
  for (size_t i = 0; i < 200; ++i) {
    s.push_back(g.jitter(300, 0.05));
  }
  const Figures f = score(s, {}, p);
  EXPECT_EQ(f.events.size(), 0u);
  print("slow ramp x3/500", f);
}

// Fast ramp to ×10 over 5 steps, then staying there: one event. The baseline is frozen for
// relearn_after_steps, then learns the new level; the event ends and no second one starts.
TEST(Detector, FastRampToNewLevel) {
  const DetectorParams p;
  Gen g(5);
  std::vector<double> s;
  for (size_t i = 0; i < 200; ++i) {
    s.push_back(g.jitter(100, 0.05));
  }
  for (size_t i = 1; i <= 5; ++i) {
    s.push_back(g.jitter(100 + 900.0 * i / 5, 0.05));
  }
  while (s.size() < 2000) {
    s.push_back(g.jitter(1000, 0.05));
  }
  const Burst b{200, 2000};
  const Figures f = score(s, {b}, p);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_LE(f.first_delay, 1);
  const Event& e = f.events[0];
  ASSERT_NE(e.ended_at, std::string::npos) << "a lasting level becomes the new normal";
  EXPECT_GE(e.end - e.start, p.relearn_after_steps);
  print("fast ramp x10/5", f, "relearned_after=" + std::to_string(e.end - e.start));
}

// Periodic traffic stays quiet after warm-up (the series starts in the pattern's high phase, so
// warm-up sees it).
TEST(Detector, PeriodicIsQuiet) {
  const DetectorParams p;
  Gen g(6);
  struct Case {
    std::string name;
    std::vector<double> series;
  };
  const Case cases[] = {
      {"on/off 30/30", g.onOff(2000, 30, 30, 0, 1000, 100, 0.05)},
      {"on/off 1/3", g.onOff(2000, 1, 3, 0, 1000, 100, 0.05)},
      {"on/off 5/55 (off=0)", g.onOff(2000, 5, 55, 0, 1000, 0, 0.05)},
      {"on/off 5/55 (off=100)", g.onOff(2000, 5, 55, 0, 1000, 100, 0.05)},
      {"sine period 360", g.sine(2000, 1000, 800, 360, 0.05)},
      {"sine period 60", g.sine(2000, 1000, 800, 60, 0.05)},
      {"sine period 8640", g.sine(2000, 1000, 800, 8640, 0.05)},
  };
  for (const Case& c : cases) {
    const Figures f = score(c.series, {}, p);
    EXPECT_EQ(f.events.size(), 0u) << c.name;
    print(c.name, f);
  }
}

// The same on/off patterns starting in the low phase: warm-up never saw the high level, so its
// first appearance is a spike, and its second (a recurrence of the last event's level) too; the
// recurrence teaches the envelope, and the pattern is quiet from then on.
TEST(Detector, PeriodicLearnedAfterRecurrence) {
  const DetectorParams p;
  Gen g(7);
  struct Case {
    std::string name;
    std::vector<double> series;
  };
  const Case cases[] = {
      {"on/off 30/30 from off", g.onOff(2000, 30, 30, 30, 1000, 100, 0.05)},
      {"on/off 5/55 from off", g.onOff(2000, 5, 55, 30, 1000, 0, 0.05)},
  };
  for (const Case& c : cases) {
    const Figures f = score(c.series, {}, p);
    EXPECT_LE(f.events.size(), 2u) << c.name;
    for (const Event& e : f.events) {
      EXPECT_LT(e.start, 200u) << c.name;
    }
    print(c.name, f);
  }
}

// Noise only: every event is a false positive. Bounds asserted per 10,000 steps:
// - Gaussian, cv 20 %: at most 2. With k = 4 the statistical threshold alone sits about
//   3.2 sigma above the mean (mean absolute deviation = 0.8 sigma), a one-sided tail of ~7e-4,
//   and the EWMA's estimation noise makes it ~1e-3 (printed as "without envelope": 8-17). The
//   envelope lifts the threshold to 1.25 x the recent maximum (about mean + 3 sigma), i.e. to
//   ~mean + 5 sigma, a tail of ~1e-6: 0 expected, and 2 leaves room for an unlucky seed.
// - Poisson, mean 3 (small counts): at most 25. Counts are skewed: the recent maximum of the
//   counts that did not start events is 7-8, so the threshold is 9.x and a count of 10 or more
//   (P = 1.1e-3, ~11 per 10,000) fires; without the envelope 9 or more does (3.8e-3). For such
//   subjects min_rate is the real protection.
TEST(Detector, NoiseFalsePositives) {
  const DetectorParams p;
  DetectorParams stat_only = p;
  stat_only.envelope_factor = 0;
  for (uint32_t seed : {11u, 12u, 13u}) {
    Gen g(seed);
    const auto gauss = g.gaussian(10'000 + p.warmup_steps, 1000, 0.2);
    const auto pois = g.poisson(10'000 + p.warmup_steps, 3);
    const Figures fg = score(gauss, {}, p);
    const Figures fp = score(pois, {}, p);
    const Figures fg0 = score(gauss, {}, stat_only);
    const Figures fp0 = score(pois, {}, stat_only);
    EXPECT_LE(fg.false_positives, 2);
    EXPECT_LE(fp.false_positives, 25);
    const std::string sd = " seed=" + std::to_string(seed);
    print("gaussian cv 20% 10k" + sd, fg,
          "(without envelope: " + std::to_string(fg0.false_positives) + ")");
    print("poisson mean 3 10k" + sd, fp,
          "(without envelope: " + std::to_string(fp0.false_positives) + ")");
  }
}

// Smaller k fires more easily: on the same noisy series the number of steps spent in events never
// grows with k, with the envelope and without it (where k alone decides). (The number of events
// is not monotonic: with k = 1 the lower band is so low that events run together.)
TEST(Detector, SensitivityIsMonotonic) {
  Gen g(14);
  const auto s = g.gaussian(10'000, 1000, 0.3);
  for (double factor : {1.25, 0.0}) {
    size_t last = SIZE_MAX;
    std::vector<size_t> n;
    std::string counts;
    for (double k : {1.0, 2.0, 3.0, 4.0, 6.0}) {
      DetectorParams p;
      p.sensitivity = k;
      p.envelope_factor = factor;
      Detector d;
      size_t active_steps = 0;
      size_t events = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        events += d.observe(s[i], i, p) == Transition::kStarted ? 1 : 0;
        active_steps += d.active() ? 1 : 0;
      }
      n.push_back(active_steps);
      EXPECT_LE(active_steps, last) << "k=" << k << " envelope_factor=" << factor;
      last = active_steps;
      counts += " k" + std::to_string(static_cast<int>(k)) + "=" + std::to_string(events) + "/" +
                std::to_string(active_steps);
    }
    if (factor == 0) {
      EXPECT_GT(n[1], n[4]);
    }
    std::printf(
        "[detector] sensitivity gaussian cv 30%% 10k envelope_factor=%g events/active_steps:%s\n",
        factor, counts.c_str());
  }
}

// The smallest spike the defaults report on a flat series with ±5 % noise: isolated 5-step
// bursts of increasing size, 400 steps apart.
TEST(Detector, SpikeSizes) {
  const DetectorParams p;
  Gen g(18);
  const double ratios[] = {1.1, 1.2, 1.3, 1.4, 1.5, 2, 3};
  auto s = g.flat(400 * (std::size(ratios) + 1), 100, 0.05);
  std::vector<Burst> bursts;
  for (size_t i = 0; i < std::size(ratios); ++i) {
    bursts.push_back({400 * (i + 1), 400 * (i + 1) + 5});
    g.burst(s, bursts.back(), 100 * ratios[i], 0.05);
  }
  const Figures f = score(s, bursts, p);
  EXPECT_EQ(f.false_positives, 0);
  std::string detected;
  for (size_t i = 0; i < std::size(ratios); ++i) {
    const Burst b = bursts[i];
    const bool hit = std::any_of(f.events.begin(), f.events.end(), [&](const Event& e) {
      return e.start >= b.begin && e.start < b.end;
    });
    if (ratios[i] >= 1.5) {
      EXPECT_TRUE(hit) << ratios[i];
    }
    if (ratios[i] <= 1.2) {
      EXPECT_FALSE(hit) << ratios[i];
    }
    detected += " x" + std::to_string(ratios[i]).substr(0, 3) + "=" + (hit ? "yes" : "no");
  }
  print("spike sizes on 100 ±5%", f, detected.substr(1));
}

// A ×10 burst from 0.1 to 1 stays below min_rate = 2: no event (without min_rate it is one).
TEST(Detector, MinRate) {
  DetectorParams p;
  p.min_rate = 2;
  Gen g(15);
  auto s = g.flat(300, 0.1, 0.05);
  const Burst b{200, 210};
  g.burst(s, b, 1, 0.05);
  const Figures f = score(s, {b}, p);
  EXPECT_EQ(f.events.size(), 0u);
  print("min_rate x10 below floor", f);
  p.min_rate = 0;
  const Figures f0 = score(s, {b}, p);
  EXPECT_EQ(f0.events.size(), 1u);
  EXPECT_EQ(f0.first_delay, 0);
}

// A burst during warm-up: no event, then or later.
TEST(Detector, WarmupBurst) {
  const DetectorParams p;
  Gen g(16);
  auto s = g.flat(400, 100, 0.05);
  const Burst b{10, 15};
  g.burst(s, b, 1000, 0.05);
  const Figures f = score(s, {}, p);
  EXPECT_EQ(f.events.size(), 0u);
  print("burst in warm-up", f);
}

// A burst right after an event ended (inside the cooldown) starts nothing and teaches nothing;
// the same burst after the cooldown starts a second event.
TEST(Detector, Cooldown) {
  const DetectorParams p;
  Gen g(17);
  auto s = g.flat(400, 100, 0.05);
  const Burst b1{200, 220};
  g.burst(s, b1, 1000, 0.05);
  // The event ends on step 222 (third quiet step); steps 223..225 are the cooldown.
  const size_t ended_at = b1.end + p.cooldown_steps - 1;
  const Burst b2{ended_at + 1, ended_at + 1 + p.cooldown_steps};
  g.burst(s, b2, 1000, 0.05);
  const Burst b3{260, 270};
  g.burst(s, b3, 1000, 0.05);
  Detector d;
  const auto events = run(s, p, &d);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].start, b1.begin);
  EXPECT_EQ(events[0].ended_at, ended_at);
  EXPECT_EQ(events[1].start, b3.begin);
  EXPECT_EQ(events[1].end, b3.end);
  EXPECT_LT(d.baseline(), 110);
  Figures f = score(s, {b1, b3}, p);
  print("burst inside cooldown, then after", f);
}

// Non-finite and negative rates count as 0 and do not poison the state.
TEST(Detector, BadInputIsZero) {
  const DetectorParams p;
  Detector d;
  for (uint64_t i = 0; i < 100; ++i) {
    d.observe(i % 7 == 0 ? std::nan("") : (i % 11 == 0 ? -5.0 : 100.0), i, p);
  }
  EXPECT_TRUE(std::isfinite(d.baseline()));
  EXPECT_TRUE(std::isfinite(d.deviation()));
  EXPECT_GT(d.baseline(), 50);
  EXPECT_EQ(d.observe(1000, 100, p), Transition::kStarted);
}

}  // namespace
}  // namespace nc::correlate
