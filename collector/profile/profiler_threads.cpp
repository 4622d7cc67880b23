// The Profiler's two threads: the writer (librrd create/update, file removal, maintenance
// reads) and back-fill (store scans in windows). See profiler.hpp.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "collector/profile/backfill.hpp"
#include "collector/profile/profiler_impl.hpp"
#include "collector/profile/rrd.hpp"
#include "collector/store/store.hpp"

namespace nc::profile {

// ---- writer thread ----

void Profiler::writerLoop() {
  std::map<std::string, std::time_t> last_update;  // per file, as written
  const uint64_t step_s = opts_.step_ns / kSecond;
  for (;;) {
    Job j;
    {
      std::unique_lock lock(job_mu_);
      job_cv_.wait(lock, [&] { return threads_stop_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return;  // stopping, and everything written
      }
      j = std::move(jobs_.front());
      jobs_.pop_front();
      job_busy_ = true;
    }
    std::string why;
    switch (j.kind) {
      case Job::Kind::kRemoveFile: {
        last_update.erase(j.path);
        std::error_code ec;
        std::filesystem::remove(j.path, ec);
        std::filesystem::remove(j.path + ".tmp", ec);
        break;
      }
      case Job::Kind::kRemoveDir: {
        for (auto it = last_update.begin(); it != last_update.end();) {
          it = it->first.starts_with(j.path + "/") ? last_update.erase(it) : std::next(it);
        }
        std::error_code ec;
        std::filesystem::remove_all(j.path, ec);
        break;
      }
      case Job::Kind::kMaintain: {
        for (const auto& f : j.files) {
          std::error_code ec;
          const auto bytes = std::filesystem::file_size(f.path, ec);
          j.bytes.emplace_back(f.chan, ec ? 0 : bytes);
          rrd::Series s;
          if (f.since_s < j.now_s &&
              rrd::fetch(f.path, "AVERAGE", f.since_s, j.now_s, 3600, s, &why)) {
            std::vector<std::pair<int64_t, double>> hours;
            for (size_t r = 0; r < s.rows(); ++r) {
              const double v = s.at(r, 0);  // flows per second
              if (!std::isnan(v) && v > 0) {
                hours.emplace_back(static_cast<int64_t>(s.start) + static_cast<int64_t>(r * s.step),
                                   v * static_cast<double>(s.step));
              }
            }
            j.hourly.emplace_back(f.chan, std::move(hours));
          }
        }
        break;
      }
      case Job::Kind::kWrite: {
        auto lu = last_update.find(j.path);
        if (j.create) {
          std::error_code ec;
          std::filesystem::create_directories(std::filesystem::path(j.path).parent_path(), ec);
          const auto start = static_cast<std::time_t>(static_cast<uint64_t>(j.from) * step_s);
          if (std::filesystem::exists(j.path, ec)) {
            std::filesystem::remove(j.path, ec);  // a leftover of a replaced channel
          }
          if (!rrd::create(j.path, step_s, start, &why)) {
            j.ok = false;
            j.error = why;
            break;
          }
          j.created = true;
          last_update[j.path] = start;
          lu = last_update.find(j.path);
        } else if (lu == last_update.end()) {
          rrd::FileInfo fi;
          if (!rrd::inspect(j.path, fi, &why)) {
            j.ok = false;
            j.error = why;
            break;
          }
          lu = last_update.emplace(j.path, fi.last_update).first;
        }
        // Steps in chunks: the zero steps between data are never all in memory.
        const double secs = static_cast<double>(step_s);
        std::vector<rrd::Update> ups;
        int64_t s = j.from;
        auto next = j.values.begin();
        while (s <= j.to && j.ok) {
          ups.clear();
          for (; s <= j.to && ups.size() < 4096; ++s) {
            const std::time_t begin = static_cast<std::time_t>(static_cast<uint64_t>(s) * step_s);
            const std::time_t end = begin + static_cast<std::time_t>(step_s);
            if (end <= lu->second) {
              continue;  // on disk already
            }
            if (begin > lu->second) {
              rrd::Update gap;  // the steps between are unknown
              gap.t = begin;
              gap.unknown = true;
              ups.push_back(gap);
            }
            rrd::Update u;
            u.t = end;
            while (next != j.values.end() && next->first < s) {
              ++next;
            }
            if (next != j.values.end() && next->first == s) {
              u.v = next->second.rates(secs);
            }
            ups.push_back(u);
            lu->second = end;
          }
          if (!ups.empty() && !rrd::update(j.path, ups, &why)) {
            j.ok = false;
            j.error = why;
            last_update.erase(j.path);  // read it again from the file next time
            break;
          }
          j.written_until = s - 1;
        }
        break;
      }
    }
    std::lock_guard lock(done_mu_);
    done_.push_back(std::move(j));
    std::lock_guard jl(job_mu_);
    job_busy_ = false;
  }
}

// ---- back-fill thread ----

void Profiler::backfillLoop() {
  for (;;) {
    std::shared_ptr<Backfill> bf;
    {
      std::unique_lock lock(bf_mu_);
      bf_cv_.wait(lock, [&] {
        if (threads_stop_) {
          return true;
        }
        return !bf_queue_.empty() && bf_queue_.front()->not_before_ns == 0;
      });
      if (threads_stop_) {
        return;
      }
      bf = bf_queue_.front();
      bf_queue_.pop_front();
      bf_busy_ = true;
      bf_active_.push_back(bf);
    }
    const uint64_t step = opts_.step_ns;
    nc::store::Reader reader(opts_.store_path);
    uint64_t oldest = 0;
    for (const auto& s : reader.segments()) {
      if (s.rows > 0 && s.min_first_ns > 0 && (oldest == 0 || s.min_first_ns < oldest)) {
        oldest = s.min_first_ns;
      }
    }
    const int64_t from =
        oldest == 0 ? bf->to + 1 : std::max(bf->from, static_cast<int64_t>(oldest / step));
    const int64_t window = static_cast<int64_t>(std::max<size_t>(1, opts_.backfill_window_steps));
    {
      std::lock_guard lock(bf->mu);
      bf->store_oldest_ns = oldest;
      bf->windows_total = from > bf->to ? 0 : static_cast<int>((bf->to - from) / window + 1);
    }
    std::string error;
    for (int64_t a = from; a <= bf->to && !bf_cancel_; a += window) {
      const int64_t b = std::min(bf->to, a + window - 1);
      BackfillRequest req;
      req.store_path = opts_.store_path;
      req.spread = opts_.spread();
      req.threads = opts_.backfill_threads;
      req.cancel = &bf_cancel_;
      for (ChannelSpec s : bf->specs) {
        s.min_step = std::max(s.min_step, a);
        s.max_step = std::min(s.max_step, b);
        if (s.min_step <= s.max_step) {
          req.channels.push_back(std::move(s));
        }
      }
      Backfill::Window w;
      w.from = a;
      w.to = b;
      if (!req.channels.empty()) {
        BackfillResult r = backfill(req);
        if (!r.ok) {
          error = r.error;
          break;
        }
        w.steps = std::move(r.steps);
      }
      std::unique_lock lock(bf->mu);
      // At most two windows wait for the control thread: memory stays bounded.
      while (bf->windows.size() >= 2 && !bf_cancel_) {
        bf_blocked_ = true;
        bf->cv.wait_for(lock, std::chrono::milliseconds(100));
      }
      bf_blocked_ = false;
      bf->windows.push_back(std::move(w));
    }
    {
      std::lock_guard lock(bf->mu);
      bf->finished = true;
      bf->error = bf_cancel_ ? "canceled" : error;
    }
    std::lock_guard lock(bf_mu_);
    bf_busy_ = false;
  }
}

}  // namespace nc::profile
