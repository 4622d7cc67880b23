#pragma once
// A callback every `period` on an io_context (the daemon's control-plane thread), until stop():
// the tick timer the profiler, the correlator and the daemon share. Header-only (Boost.Asio).
//
// Runs on an io_context run by one thread; start/stop/the destructor on that thread (or before
// it runs / after it stopped). A tick that takes longer than the period delays the next one; ticks
// never overlap and never queue up.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <utility>

namespace nc {

class PeriodicTimer {
 public:
  explicit PeriodicTimer(boost::asio::io_context& io) : timer_(io) {}
  ~PeriodicTimer() { stop(); }
  PeriodicTimer(const PeriodicTimer&) = delete;
  PeriodicTimer& operator=(const PeriodicTimer&) = delete;

  // (Re)starts: `fn` runs `period` from now, then every `period` after it returns.
  void start(std::chrono::nanoseconds period, std::function<void()> fn) {
    period_ = period;
    fn_ = std::move(fn);
    running_ = true;
    arm();
  }
  // No tick runs after this returns (a wait already completed is ignored). Idempotent.
  void stop() {
    running_ = false;
    timer_.cancel();
  }
  bool running() const { return running_; }

 private:
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !running_) {
        return;
      }
      fn_();
      if (running_) {
        arm();
      }
    });
  }

  boost::asio::steady_timer timer_;
  std::chrono::nanoseconds period_{0};
  std::function<void()> fn_;
  bool running_ = false;
};

}  // namespace nc
