#include "collector/correlate/detector.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace nc::correlate {

nlohmann::json DetectorParams::toJson() const {
  return {{"sensitivity", sensitivity},
          {"min_rate", min_rate},
          {"warmup_steps", warmup_steps},
          {"cooldown_steps", cooldown_steps},
          {"alpha", alpha},
          {"dev_floor", dev_floor},
          {"envelope_half_life_steps", envelope_half_life_steps},
          {"envelope_factor", envelope_factor},
          {"relearn_after_steps", relearn_after_steps}};
}

namespace {

// The envelope's decay over `steps` steps: 2^(-steps/half_life); no memory without a half-life.
double envelopeDecay(double steps, const DetectorParams& p) {
  return p.envelope_half_life_steps > 0 ? std::exp2(-steps / p.envelope_half_life_steps) : 0.0;
}

}  // namespace

double Detector::devFloored(const DetectorParams& p) const {
  return std::max(dev_, p.dev_floor * mean_);
}

double Detector::threshold(const DetectorParams& p) const {
  return std::max(
      {mean_ + p.sensitivity * devFloored(p), p.min_rate, p.envelope_factor * envelope_});
}

double Detector::lowerBand(const DetectorParams& p) const {
  return mean_ + p.sensitivity / 2 * devFloored(p);
}

void Detector::learn(double rate, const DetectorParams& p) {
  envelope_ = std::max(envelope_ * envelopeDecay(1, p), rate);
  if (observed_ <= 1) {
    mean_ = rate;
    dev_ = 0;
    return;
  }
  // A running mean while 1/n > alpha (so warm-up converges), then the EWMA. Rates that start
  // events, and the cooldown after them, never get here: that, not clipping, keeps bursts out of
  // the baseline (docs/detector.md, "Why not clip").
  const double a = std::max(p.alpha, 1.0 / observed_);
  const double d = rate - mean_;
  mean_ += a * d;
  dev_ += a * (std::abs(d) - dev_);
}

Transition Detector::observe(double rate, uint64_t step_index, const DetectorParams& p) {
  if (!(rate > 0) || !std::isfinite(rate)) {
    rate = 0;
  }
  if (observed_ < std::numeric_limits<uint32_t>::max()) {
    ++observed_;
  }

  if (active()) {
    const bool quiet = rate <= lowerBand(p);
    peak_ = std::max(peak_, rate);
    if (p.relearn_after_steps > 0 && step_index - start_step_ >= p.relearn_after_steps) {
      learn(rate, p);
    }
    if (!quiet) {
      count_ = 0;
      return Transition::kNone;
    }
    const uint32_t needed = std::max(p.cooldown_steps, 1u);
    if (++count_ < needed) {
      return Transition::kNone;
    }
    end_step_ = step_index + 1 - needed;
    if (flags_ & kRecurrent) {
      envelope_ = std::max(envelope_, peak_);
    }
    flags_ = kHadEvent;
    count_ = p.cooldown_steps;
    return Transition::kEnded;
  }

  // Cooldown after an event: no start, and no learning either (a burst right after an event
  // belongs to it and must not teach the baseline or the envelope).
  if (count_ > 0) {
    --count_;
    return Transition::kNone;
  }

  if (observed_ > std::max(p.warmup_steps, 1u) && rate > threshold(p)) {
    // A level at most envelope_factor times the last event's peak (decayed like the envelope)
    // repeats that event: it is reported, and teaches the envelope when it ends, so a recurring
    // burst fires twice, not forever.
    const bool recurrent =
        (flags_ & kHadEvent) &&
        rate <= p.envelope_factor * peak_ *
                    envelopeDecay(static_cast<double>(step_index - end_step_), p);
    flags_ = static_cast<uint8_t>(kActive | (flags_ & kHadEvent) | (recurrent ? kRecurrent : 0));
    start_step_ = step_index;
    peak_ = rate;
    count_ = 0;
    return Transition::kStarted;
  }
  learn(rate, p);
  return Transition::kNone;
}

}  // namespace nc::correlate
