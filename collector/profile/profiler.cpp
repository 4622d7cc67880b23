#include "collector/profile/profiler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "collector/profile/profiler_impl.hpp"
#include "collector/profile/rrd.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"

namespace nc::profile {

SpreadOptions ProfilerOptions::spread() const {
  SpreadOptions s;
  s.step_ns = step_ns;
  s.max_span_ns = max_span_ns;
  return s;
}

// ---- ProfileShard ----

ProfileShard::ProfileShard(Profiler& owner)
    : owner_(owner), handover_ns_(owner.options().handover_ns) {}

// Not flushed here: the profiler may be gone already at shutdown (at most one hand-over is lost).
ProfileShard::~ProfileShard() = default;

void ProfileShard::onBatch(const sink::Batch& batch) {
  if (owner_.planVersion() != version_) {
    plan_ = owner_.plan(version_);
  }
  if (batch.records.empty()) {
    return;
  }
  if (plan_ && plan_->plan && plan_->plan->channels() > 0) {
    transpose(batch.records, plan_->plan->columns(), cols_);
    plan_->plan->evaluate(cols_, table_, scratch_);
  }
  const uint64_t now = batch.records.front().received_ns;
  if (now - last_handover_ >= handover_ns_ || now < last_handover_) {
    last_handover_ = now;
    flush();
  }
}

void ProfileShard::flush() {
  if (table_.size() == 0) {
    return;
  }
  owner_.handover(table_.take());
}

size_t ProfileShard::memoryBytes() const {
  size_t cols = 0;
#define NC_COL_BYTES(type, name) cols += cols_.name.capacity() * sizeof(type);
  NC_FLOW_COLUMNS(NC_COL_BYTES)
#undef NC_COL_BYTES
  return cols + table_.memoryBytes() + scratch_.facts.capacity() * sizeof(Scratch::Facts) +
         scratch_.ready.capacity() + scratch_.rows.capacity() * sizeof(uint32_t);
}

// ---- Profiler ----

Profiler::Profiler(boost::asio::io_context& io, ProfilerOptions options)
    : io_(io), opts_(std::move(options)), store_(opts_.dir), timer_(io) {
  if (opts_.step_ns < kSecond || opts_.step_ns % kSecond != 0) {
    opts_.step_ns = std::max<uint64_t>(kSecond, opts_.step_ns / kSecond * kSecond);
  }
  plan_ = std::make_shared<LivePlan>();
}

Profiler::~Profiler() {
  stop();
}

std::unique_ptr<ProfileShard> Profiler::makeShard() {
  return std::make_unique<ProfileShard>(*this);
}

std::shared_ptr<const LivePlan> Profiler::plan(uint64_t& version) const {
  std::lock_guard lock(plan_mu_);
  version = plan_version_.load(std::memory_order_acquire);
  return plan_;
}

std::string Profiler::rrdPath(const std::string& profile, const std::string& channel) const {
  return (std::filesystem::path(opts_.dir) / profile / (channel + ".rrd")).string();
}

std::vector<std::string> Profiler::open(const std::vector<ProfileDef>& declared, uint64_t now_ns) {
  std::vector<std::string> msgs;
  std::string why;
  if (!store_.load(&why)) {
    msgs.push_back(why);
  }
  auto w = store_.setDeclared(declared, now_ns);
  msgs.insert(msgs.end(), w.begin(), w.end());
  apply(now_ns);
  std::lock_guard lock(mu_);
  for (const auto& [id, c] : chans_) {
    if (!c->error.empty()) {
      msgs.push_back(
          fmt::format("profile '{}' channel '{}': {}", c->profile, c->def.name, c->error));
    }
  }
  return msgs;
}

std::vector<std::string> Profiler::setDeclared(const std::vector<ProfileDef>& declared,
                                               uint64_t now_ns) {
  auto w = store_.setDeclared(declared, now_ns);
  apply(now_ns);
  return w;
}

void Profiler::start() {
  {
    std::lock_guard lock(job_mu_);
    if (!writer_.joinable() && !threads_stop_) {
      writer_ = std::thread([this] { writerLoop(); });
      backfiller_ = std::thread([this] { backfillLoop(); });
    }
  }
  stopped_ = false;
  schedule();
}

void Profiler::schedule() {
  if (stopped_) {
    return;
  }
  timer_.start(std::chrono::nanoseconds(opts_.handover_ns), [this] { tick(unixNowNs()); });
}

void Profiler::stop() {
  stopped_ = true;
  timer_.stop();
  bf_cancel_ = true;
  {
    std::lock_guard lock(bf_mu_);
    bf_cv_.notify_all();
  }
  // Whatever the shards handed over and every open step goes to disk now (ending early).
  {
    std::vector<std::vector<StepEntry>> in;
    {
      std::lock_guard lock(inbox_mu_);
      in.swap(inbox_);
    }
    std::lock_guard lock(mu_);
    for (const auto& v : in) {
      for (const StepEntry& e : v) {
        merge(e);
      }
    }
    for (auto& [id, c] : chans_) {
      writeDue(*c, 0, true);
    }
  }
  {
    std::lock_guard lock(job_mu_);
    threads_stop_ = true;
    job_cv_.notify_all();
  }
  {
    std::lock_guard lock(bf_mu_);
    bf_cv_.notify_all();
  }
  if (writer_.joinable()) {
    writer_.join();
  }
  if (backfiller_.joinable()) {
    backfiller_.join();
  }
}

void Profiler::handover(std::vector<StepEntry>&& entries) {
  std::lock_guard lock(inbox_mu_);
  if (inbox_.size() >= 1024) {  // the control thread is stuck: drop rather than grow
    handover_drops_.fetch_add(entries.size(), std::memory_order_relaxed);
    return;
  }
  inbox_.push_back(std::move(entries));
}

void Profiler::addInto(Chan& c, int64_t step, const StepValues& v) {
  if (step < c.floor) {
    // Its step is on disk already: RRD takes updates in time order. Count it in the oldest step
    // still open, and say so.
    c.late_flows += flowsOf(v);
    c.late_bytes += bytesOf(v);
    late_records_ += static_cast<uint64_t>(std::llround(flowsOf(v)));
    late_bytes_ += static_cast<uint64_t>(std::llround(bytesOf(v)));
    step = c.floor;
  }
  auto it = c.open.find(step);
  if (it == c.open.end()) {
    if (c.open.size() >= opts_.max_open_steps) {
      ++c.dropped_steps;
      return;
    }
    it = c.open.emplace(step, StepValues{}).first;
  }
  it->second.add(v);
}

void Profiler::raiseFloor(Chan& c, int64_t to) {
  if (to <= c.floor) {
    return;
  }
  StepValues moved;
  bool any = false;
  for (auto it = c.open.begin(); it != c.open.end() && it->first < to;) {
    moved.add(it->second);
    any = true;
    it = c.open.erase(it);
  }
  c.floor = to;
  if (any) {
    c.open[to].add(moved);
  }
}

bool Profiler::removalPending(const std::string& path) {
  std::lock_guard lock(job_mu_);
  for (const Job& j : jobs_) {
    if ((j.kind == Job::Kind::kRemoveFile && j.path == path) ||
        (j.kind == Job::Kind::kRemoveDir && path.starts_with(j.path + "/"))) {
      return true;
    }
  }
  return false;
}

void Profiler::merge(const StepEntry& e) {
  auto it = chans_.find(e.channel);
  if (it == chans_.end() || !it->second->error.empty()) {
    return;  // a channel deleted since the shard counted it
  }
  it->second->counted.add(e.values);
  addInto(*it->second, e.step, e.values);
}

void Profiler::enqueue(Job job) {
  std::lock_guard lock(job_mu_);
  if (jobs_.size() >= kMaxJobs && job.kind == Job::Kind::kWrite) {
    ++write_errors_;
    last_error_ = "writer queue full: steps dropped";
    return;
  }
  jobs_.push_back(std::move(job));
  job_cv_.notify_one();
}

void Profiler::writeDue(Chan& c, uint64_t now_ns, bool all) {
  if (!c.error.empty()) {
    return;
  }
  int64_t last;
  if (all) {
    last = c.open.empty() ? c.floor - 1 : c.open.rbegin()->first;
    if (c.backfilling) {
      last = std::min(last, c.allowed_until);
    }
  } else if (c.live) {
    if (now_ns < opts_.delay_ns + opts_.step_ns) {
      return;
    }
    last = static_cast<int64_t>((now_ns - opts_.delay_ns) / opts_.step_ns) - 1;
  } else {
    last = c.end_step;
  }
  last = std::min(last, c.allowed_until);
  if (!c.live) {
    last = std::min(last, c.end_step);
  }
  if (last < c.floor) {
    return;
  }
  Job j;
  j.kind = Job::Kind::kWrite;
  j.chan = c.id;
  j.path = c.path;
  j.create = c.needs_create;
  j.from = c.floor;
  j.to = last;
  auto end = c.open.upper_bound(last);
  j.values.insert(c.open.begin(), end);
  c.open.erase(c.open.begin(), end);
  c.floor = last + 1;
  c.needs_create = false;
  steps_written_ += static_cast<uint64_t>(j.to - j.from + 1);
  enqueue(std::move(j));
}

void Profiler::publishPlan() {
  std::vector<ChannelSpec> specs;
  for (const auto& [id, c] : chans_) {
    if (!c->live || !c->error.empty()) {
      continue;
    }
    ChannelSpec s;
    s.id = id;
    s.filter = c->def.filter;
    s.sources = c->def.sources;
    s.received_from_ns = c->live_from_ns;
    specs.push_back(std::move(s));
  }
  std::sort(specs.begin(), specs.end(),
            [](const ChannelSpec& a, const ChannelSpec& b) { return a.id < b.id; });
  auto lp = std::make_shared<LivePlan>();
  std::string why;
  lp->plan = ChannelPlan::build(specs, opts_.spread(), &why);
  if (!lp->plan) {
    log::error("profile", "cannot compile the channels: {}", why);
  }
  std::lock_guard lock(plan_mu_);
  plan_ = std::move(lp);
  plan_version_.fetch_add(1, std::memory_order_acq_rel);
}

void Profiler::removeChannel(Chan& c, bool remove_file) {
  if (remove_file) {
    Job j;
    j.kind = Job::Kind::kRemoveFile;
    j.chan = c.id;
    j.path = c.path;
    enqueue(std::move(j));
  }
  chans_.erase(c.id);
}

void Profiler::apply(uint64_t now_ns) {
  std::lock_guard lock(mu_);
  applied_generation_ = store_.generation();
  const auto running = store_.running();
  const uint64_t step = opts_.step_ns;
  const uint64_t step_s = step / kSecond;
  bool plan_changed = false;
  // Profiles no longer run.
  for (auto it = profs_.begin(); it != profs_.end();) {
    const bool keep = std::any_of(running.begin(), running.end(),
                                  [&](const StoredProfile& p) { return p.def.name == it->first; });
    if (keep) {
      ++it;
      continue;
    }
    for (uint32_t id : it->second->chans) {
      auto c = chans_.find(id);
      if (c != chans_.end()) {
        plan_changed = plan_changed || c->second->live;
        removeChannel(*c->second, true);
      }
    }
    // The store deleted it (not merely shadowed or made read-only): its files go too.
    if (store_.find(it->first) == nullptr) {
      Job j;
      j.kind = Job::Kind::kRemoveDir;
      j.path = (std::filesystem::path(opts_.dir) / it->first).string();
      enqueue(std::move(j));
    }
    it = profs_.erase(it);
  }
  std::vector<uint32_t> to_backfill;
  for (const StoredProfile& sp : running) {
    auto& slot = profs_[sp.def.name];
    if (!slot) {
      slot = std::make_unique<Prof>();
      slot->serial = next_serial_++;
    }
    Prof& p = *slot;
    p.sp = sp;
    const ProfileDef& d = sp.def;
    std::vector<uint32_t> ids;
    // Channels kept (same filter and sources) keep their state; the others are replaced.
    for (uint32_t id : p.chans) {
      auto c = chans_.find(id);
      if (c == chans_.end()) {
        continue;
      }
      const auto def_it =
          std::find_if(d.channels.begin(), d.channels.end(),
                       [&](const ChannelDef& ch) { return ch.name == c->second->def.name; });
      if (def_it == d.channels.end() || def_it->filter != c->second->def.filter ||
          def_it->sources != c->second->def.sources) {
        plan_changed = plan_changed || c->second->live;
        removeChannel(*c->second, true);
      }
    }
    for (const ChannelDef& ch : d.channels) {
      auto found = std::find_if(p.chans.begin(), p.chans.end(), [&](uint32_t id) {
        auto c = chans_.find(id);
        return c != chans_.end() && c->second->def.name == ch.name;
      });
      if (found != p.chans.end()) {
        chans_[*found]->def = ch;  // colour, sign, order
        ids.push_back(*found);
        continue;
      }
      if (chans_.size() >= opts_.max_channels) {
        log::warn("profile", "profile '{}' channel '{}': more than {} channels, not run", d.name,
                  ch.name, opts_.max_channels);
        continue;
      }
      auto c = std::make_unique<Chan>();
      c->id = next_id_++;
      c->profile = d.name;
      c->def = ch;
      c->path = rrdPath(d.name, ch.name);
      c->live = d.type != ProfileType::kHistory;
      const uint64_t start = d.start_ns != 0 ? d.start_ns : sp.tstart_ns;
      const int64_t first_step = static_cast<int64_t>(start / step);
      c->floor = first_step;
      if (d.type == ProfileType::kHistory) {
        c->end_step = static_cast<int64_t>((d.end_ns - 1) / step);
      }
      // A file left from before (a restart): continue after its last update.
      rrd::FileInfo fi;
      std::string why;
      // A file the writer is about to remove (a replaced channel, a profile deleted and added
      // again) does not count: the new channel starts a new file after the removal.
      const bool replaced = removalPending(c->path);
      if (!replaced && std::filesystem::exists(c->path) && rrd::inspect(c->path, fi, &why)) {
        if (!fi.layout_ok) {
          c->error =
              fmt::format("{} is not a channel file of this program (other data sources)", c->path);
        } else if (fi.step_s != step_s) {
          c->error = fmt::format(
              "{} has a step of {} s but profiles.step is {} s: move the file away to start it "
              "again",
              c->path, fi.step_s, step_s);
        } else {
          c->floor = std::max<int64_t>(c->floor, fi.last_update / static_cast<int64_t>(step_s));
          c->rrd_bytes = fi.bytes;
          c->written_until = c->floor - 1;
        }
      } else if (!replaced && std::filesystem::exists(c->path)) {
        c->error = why;
      } else {
        c->needs_create = true;
      }
      if (c->live) {
        c->live_from_ns = now_ns;
        plan_changed = true;
        const int64_t live_step = static_cast<int64_t>(now_ns / step);
        if (c->floor < live_step && c->error.empty()) {
          if (!opts_.store_path.empty()) {
            to_backfill.push_back(c->id);
          } else {
            c->floor = live_step;  // unknown before: no store to learn it from
          }
        }
      } else if (c->error.empty() && c->floor <= c->end_step) {
        if (opts_.store_path.empty()) {
          c->error = "no flow store to build a history profile from";
        } else {
          to_backfill.push_back(c->id);
        }
      }
      ids.push_back(c->id);
      chans_.emplace(c->id, std::move(c));
    }
    p.chans = std::move(ids);
  }
  if (plan_changed) {
    publishPlan();
  }
  if (!to_backfill.empty()) {
    startBackfill(std::move(to_backfill), now_ns);
  }
}

void Profiler::startBackfill(std::vector<uint32_t> ids, uint64_t now_ns) {
  // One back-fill per profile (its progress shows in the listing).
  std::map<std::string, std::vector<uint32_t>> by_prof;
  for (uint32_t id : ids) {
    by_prof[chans_.at(id)->profile].push_back(id);
  }
  for (auto& [name, list] : by_prof) {
    auto bf = std::make_shared<Backfill>();
    bf->profile = name;
    bf->serial = profs_.at(name)->serial;
    bf->from = INT64_MAX;
    bf->to = INT64_MIN;
    for (uint32_t id : list) {
      Chan& c = *chans_.at(id);
      ChannelSpec s;
      s.id = id;
      s.filter = c.def.filter;
      s.sources = c.def.sources;
      s.min_step = c.floor;
      if (c.live) {
        s.received_until_ns = c.live_from_ns;
        s.max_step = static_cast<int64_t>(c.live_from_ns / opts_.step_ns);
      } else {
        s.max_step = c.end_step;
      }
      bf->from = std::min(bf->from, s.min_step);
      bf->to = std::max(bf->to, s.max_step);
      c.backfilling = true;
      c.allowed_until = c.floor - 1;
      bf->specs.push_back(std::move(s));
    }
    bf->not_before_ns = now_ns + opts_.backfill_settle_ns;
    Prof& p = *profs_.at(name);
    p.backfill_pending = true;
    p.backfill_windows_done = 0;
    p.backfill_windows_total = 0;
    p.backfill_error.clear();
    std::lock_guard lock(bf_mu_);
    bf_queue_.push_back(std::move(bf));
    bf_cv_.notify_one();
  }
}

void Profiler::takeBackfills(uint64_t now_ns) {
  std::vector<std::shared_ptr<Backfill>> active;
  {
    std::lock_guard lock(bf_mu_);
    active = bf_active_;  // started ones (the thread appends each when it begins)
  }
  for (const auto& bf : active) {
    std::deque<Backfill::Window> windows;
    bool finished = false;
    std::string error;
    int total = 0;
    uint64_t oldest = 0;
    {
      std::lock_guard lock(bf->mu);
      windows.swap(bf->windows);
      finished = bf->finished;
      error = bf->error;
      total = bf->windows_total;
      oldest = bf->store_oldest_ns;
      bf->cv.notify_all();
    }
    auto pit = profs_.find(bf->profile);
    Prof* prof =
        pit == profs_.end() || pit->second->serial != bf->serial ? nullptr : pit->second.get();
    if (prof != nullptr) {
      prof->backfill_windows_total = total;
    }
    for (auto& w : windows) {
      for (const ChannelSpec& s : bf->specs) {
        auto cit = chans_.find(s.id);
        if (cit == chans_.end()) {
          continue;
        }
        Chan& c = *cit->second;
        if (c.floor < w.from && c.allowed_until < w.from - 1) {
          // Before the store's oldest flow nothing is known: the file starts (or resumes) there.
          raiseFloor(c, w.from);
        }
        auto st = w.steps.find(s.id);
        if (st != w.steps.end()) {
          for (const auto& [step, v] : st->second) {
            addInto(c, step, v);
          }
        }
        c.allowed_until = std::max(c.allowed_until, w.to);
      }
      if (prof != nullptr) {
        ++prof->backfill_windows_done;
      }
    }
    if (!finished) {
      continue;
    }
    for (const ChannelSpec& s : bf->specs) {
      auto cit = chans_.find(s.id);
      if (cit == chans_.end()) {
        continue;
      }
      Chan& c = *cit->second;
      c.backfilling = false;
      c.allowed_until = INT64_MAX;
      const bool failed = !error.empty() && error != "canceled";
      if (failed) {
        c.last_write_error = "back-fill: " + error;
      }
      if (c.live && (oldest == 0 || failed) && c.floor <= s.max_step) {
        // Nothing (or nothing usable) stored: the steps before live counting stay unknown.
        raiseFloor(c, static_cast<int64_t>(c.live_from_ns / opts_.step_ns));
      } else if (!c.live && failed) {
        c.error = "back-fill from the store failed: " + error;
      } else if (!c.live && oldest == 0) {
        raiseFloor(c, c.end_step);  // nothing stored in the range: one step, an empty file
      }
    }
    if (prof != nullptr) {
      prof->backfill_pending = false;
      prof->backfill_error = error;
      if (!error.empty() && error != "canceled") {
        log::warn("profile", "profile '{}': back-fill from the store failed: {}", bf->profile,
                  error);
      }
    }
    std::lock_guard lock(bf_mu_);
    bf_active_.erase(std::remove(bf_active_.begin(), bf_active_.end(), bf), bf_active_.end());
  }
  // Back-fills waiting for the store to settle go to the thread once due.
  std::lock_guard lock(bf_mu_);
  for (auto& bf : bf_queue_) {
    if (bf->not_before_ns != 0 && bf->not_before_ns <= now_ns) {
      bf->not_before_ns = 0;
      bf_cv_.notify_one();
    }
  }
}

void Profiler::tick(uint64_t now_ns) {
  std::vector<std::vector<StepEntry>> in;
  {
    std::lock_guard lock(inbox_mu_);
    in.swap(inbox_);
  }
  std::vector<Job> done;
  {
    std::lock_guard lock(done_mu_);
    done.swap(done_);
  }
  if (store_.generation() != applied_generation_) {
    apply(now_ns);
  }
  std::lock_guard lock(mu_);
  for (const auto& v : in) {
    for (const StepEntry& e : v) {
      merge(e);
    }
  }
  for (Job& j : done) {
    if (j.kind == Job::Kind::kMaintain) {
      for (const auto& [id, bytes] : j.bytes) {
        auto it = chans_.find(id);
        if (it != chans_.end()) {
          it->second->rrd_bytes = bytes;
        }
      }
      std::map<std::string, std::map<int64_t, double>> hourly;
      for (const auto& [id, hours] : j.hourly) {
        auto it = chans_.find(id);
        if (it == chans_.end()) {
          continue;
        }
        double sum = 0;
        for (const auto& [h, f] : hours) {
          hourly[it->second->profile][h] += f;
          sum += f;
        }
        it->second->flows_since_tstart = sum;
      }
      for (auto& [name, hours] : hourly) {
        auto pit = profs_.find(name);
        if (pit != profs_.end()) {
          pit->second->hourly_flows.assign(hours.begin(), hours.end());
        }
      }
      continue;
    }
    auto it = chans_.find(j.chan);
    if (it == chans_.end() || j.kind != Job::Kind::kWrite) {
      continue;
    }
    Chan& c = *it->second;
    if (j.created) {  // listings show the file's size at once (maintain() refreshes it later)
      std::error_code ec;
      const uint64_t bytes = std::filesystem::file_size(j.path, ec);
      if (!ec) {
        if (auto pit = profs_.find(c.profile); pit != profs_.end()) {
          pit->second->size_bytes += bytes - std::min(bytes, c.rrd_bytes);
        }
        c.rrd_bytes = bytes;
      }
    }
    if (j.ok) {
      c.written_until = std::max(c.written_until, j.written_until);
    } else {
      ++c.write_errors;
      ++write_errors_;
      c.last_write_error = j.error;
      last_error_ = j.error;
      if (j.create && !j.created) {
        c.needs_create = true;  // the next write tries to create it again
      }
      c.written_until = std::max(c.written_until, j.written_until);
    }
  }
  takeBackfills(now_ns);
  for (auto& [id, c] : chans_) {
    writeDue(*c, now_ns, false);
  }
  if (now_ns >= last_maintain_ns_ + opts_.maintain_every_ns || now_ns < last_maintain_ns_) {
    last_maintain_ns_ = now_ns;
    maintain(now_ns);
  }
}

void Profiler::maintain(uint64_t now_ns) {
  // Sizes of every channel and profile (writer thread), then expire and maxsize.
  Job j;
  j.kind = Job::Kind::kMaintain;
  j.now_s = static_cast<std::time_t>(now_ns / kSecond);
  for (auto& [name, p] : profs_) {
    const ProfileDef& d = p->sp.def;
    uint64_t rrd_bytes = 0;
    double flows = 0;
    for (uint32_t id : p->chans) {
      auto it = chans_.find(id);
      if (it != chans_.end()) {
        rrd_bytes += it->second->rrd_bytes;
        flows += it->second->flows_since_tstart;
      }
    }
    const double per_flow = d.type == ProfileType::kShadow ? 0 : opts_.store_bytes_per_flow;
    p->size_bytes = rrd_bytes + static_cast<uint64_t>(flows * per_flow);
    if (d.type == ProfileType::kContinuous) {
      uint64_t tstart = p->sp.tstart_ns;
      if (d.expire_ms != 0 && now_ns > d.expire_ms * 1'000'000) {
        tstart = std::max(tstart, now_ns - d.expire_ms * 1'000'000);
      }
      if (d.maxsize != 0 && p->size_bytes > d.maxsize) {
        // Drop whole hours from the oldest until the estimate fits.
        double over = static_cast<double>(p->size_bytes - d.maxsize);
        for (const auto& [h, f] : p->hourly_flows) {
          if (over <= 0) {
            break;
          }
          over -= f * per_flow;
          tstart = std::max(tstart, static_cast<uint64_t>(h) * kSecond + 3600 * kSecond);
        }
      }
      tstart -= tstart % (3600 * kSecond);  // whole hours: the file changes at most hourly
      if (tstart > p->sp.tstart_ns) {
        OpResult r = store_.setDataStart(name, tstart);
        if (r.ok) {
          p->sp.tstart_ns = tstart;
          applied_generation_ = store_.generation();
          double kept = 0;
          for (const auto& [h, f] : p->hourly_flows) {
            kept += static_cast<uint64_t>(h) * kSecond >= tstart ? f : 0;
          }
          p->size_bytes = rrd_bytes + static_cast<uint64_t>(kept * per_flow);
        } else {
          log::warn("profile", "profile '{}': {}", name, r.error);
        }
      }
    }
    // Sizes since the (new) data start, for the next pass.
    for (uint32_t id : p->chans) {
      auto it = chans_.find(id);
      if (it != chans_.end() && it->second->written_until != INT64_MIN) {
        j.files.push_back(
            {id, it->second->path, static_cast<std::time_t>(p->sp.tstart_ns / kSecond)});
      }
    }
  }
  if (!j.files.empty()) {
    enqueue(std::move(j));
  }
}

bool Profiler::waitIdle(uint64_t timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    bool idle = false;
    {
      std::lock_guard a(job_mu_);
      std::lock_guard b(bf_mu_);
      bool bf_idle = !bf_busy_ || bf_blocked_;
      for (const auto& bf : bf_queue_) {
        bf_idle = bf_idle && bf->not_before_ns != 0;  // waiting for its tick: nothing to run
      }
      idle = jobs_.empty() && !job_busy_ && bf_idle;
    }
    if (idle) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace nc::profile
