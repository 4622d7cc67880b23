#pragma once
// Detector: the traffic-spike detector of one subject and one metric (an OVS port in one
// direction, or a local address; bytes/s or packets/s). Pure algorithm, no I/O, no clock: the
// caller keeps a rate per fixed time step (e.g. 10 s) and feeds each completed step's rate to
// observe(), which reports when an event starts and when it ends. docs/detector.md explains the
// model, the parameters and the figures measured on synthetic series.
//
//   rate ──> [warm-up?] ──> rate > threshold? ──yes──> event active (baseline frozen for up to
//                 │              │                         relearn_after_steps)
//                 │              │ no                     │ rate <= lower band for
//                 └──────────────┴──> learn: mean, dev,   │ cooldown_steps steps
//                                     envelope            v
//                                                     ended; no new start for cooldown_steps
//
//   threshold  = max(mean + k·max(dev, dev_floor·mean), min_rate, envelope_factor·envelope)
//   lower band = mean + (k/2)·max(dev, dev_floor·mean)
//
// The learned state is a few numbers (sizeof(Detector) <= 64) because the daemon keeps one per
// subject and metric (about 220,000); the parameters live outside, in one DetectorParams that
// every call receives. Not thread-safe: one owner per Detector.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>

namespace nc::correlate {

struct DetectorParams {
  // k: how many deviations above the baseline a rate must be to start an event. Smaller fires
  // more easily; an event continues while the rate is above k/2 deviations.
  double sensitivity = 4.0;
  // Absolute per-second floor: nothing at or below it starts an event (the caller passes
  // min_bps/8 for the bytes metric, min_pps for packets).
  double min_rate = 0;
  // Observations that only teach the baseline (no event can start) at the beginning.
  uint32_t warmup_steps = 30;
  // Consecutive steps below the lower band that end an event, and steps after an end during
  // which the subject cannot start a new one.
  uint32_t cooldown_steps = 3;
  // Baseline smoothing per step after warm-up (during warm-up: max(alpha, 1/n), a running mean).
  double alpha = 0.05;
  // The deviation used is at least this fraction of the mean, so a flat series does not fire
  // on tiny wiggles.
  double dev_floor = 0.05;
  // Envelope of recent peak levels: a max that decays with this half-life (steps). A rate at
  // most envelope_factor times the envelope is a level seen recently, not a spike. A level L
  // seen t steps ago still covers L while t <= half_life·log2(factor): 1080·log2(1.25) ≈ 348
  // steps, about an hour at 10 s steps. envelope_factor 0 disables the envelope.
  double envelope_half_life_steps = 1080;
  double envelope_factor = 1.25;
  // An event longer than this (steps) stops freezing the baseline: a lasting change of level
  // becomes the new normal and the event ends once the baseline has caught up. 0 = never.
  uint32_t relearn_after_steps = 360;

  // Every parameter, for the event's "detector" field.
  nlohmann::json toJson() const;
  bool operator==(const DetectorParams&) const = default;
};

enum class Transition : uint8_t { kNone, kStarted, kEnded };

class Detector {
 public:
  // Feeds one completed step. `rate` is per second (a step without flows is 0; negative or
  // non-finite rates count as 0). `step_index` numbers the steps, increasing by one per call; it
  // is only recorded as the start and end of events. Returns kStarted on the step that starts an
  // event, kEnded on the step that ends it (the cooldown_steps-th quiet step), else kNone.
  Transition observe(double rate, uint64_t step_index, const DetectorParams& p);

  bool active() const { return (flags_ & kActive) != 0; }
  // The first step of the current or last event.
  uint64_t startStep() const { return start_step_; }
  // The first quiet step of the last ended event (valid after kEnded; unchanged while active).
  uint64_t endStep() const { return end_step_; }
  // The learned mean rate (frozen during an event, until relearn_after_steps).
  double baseline() const { return mean_; }
  // The learned mean absolute deviation from baseline() (without the dev_floor).
  double deviation() const { return dev_; }
  // The envelope of recent peak levels (decayed to the last learning step).
  double envelope() const { return envelope_; }
  // The highest rate of the current or last event.
  double peak() const { return peak_; }
  // The rate the next step must exceed to start an event (ignoring warm-up and cooldown).
  double threshold(const DetectorParams& p) const;
  // The rate an active event must stay above; below it for cooldown_steps steps ends the event.
  double lowerBand(const DetectorParams& p) const;
  // Steps seen (saturating).
  uint32_t observed() const { return observed_; }

 private:
  enum Flags : uint8_t {
    kActive = 1,     // an event is in progress
    kHadEvent = 2,   // an event has ended before (peak_ and end_step_ describe it)
    kRecurrent = 4,  // the current event repeats the last one's level: it teaches the envelope
  };
  double devFloored(const DetectorParams& p) const;
  void learn(double rate, const DetectorParams& p);

  double mean_ = 0;
  double dev_ = 0;
  double envelope_ = 0;
  double peak_ = 0;
  uint64_t start_step_ = 0;
  uint64_t end_step_ = 0;
  uint32_t observed_ = 0;
  // While active: consecutive quiet steps so far. Otherwise: cooldown steps left.
  uint32_t count_ = 0;
  uint8_t flags_ = 0;
};

static_assert(sizeof(Detector) <= 64, "the daemon keeps ~220,000 Detectors: keep the state small");

}  // namespace nc::correlate
