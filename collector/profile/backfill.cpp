#include "collector/profile/backfill.hpp"

#include <fmt/format.h>

#include <chrono>
#include <mutex>

#include "collector/record/fields.hpp"

namespace nc::profile {

BackfillResult backfill(query::Source& src, const BackfillRequest& req) {
  const auto started = std::chrono::steady_clock::now();
  BackfillResult res;
  if (req.channels.empty()) {
    res.ok = true;
    return res;
  }
  std::string why;
  auto plan = ChannelPlan::build(req.channels, req.spread, &why);
  if (!plan) {
    res.error = why;
    return res;
  }
  // The scan's filter: the flows that may count for some channel.
  int64_t min_step = INT64_MAX;
  int64_t max_step = INT64_MIN;
  bool any = false;
  std::string either;
  for (const ChannelSpec& c : req.channels) {
    min_step = std::min(min_step, c.min_step);
    max_step = std::max(max_step, c.max_step);
    std::string f = c.filter;
    f.erase(0, f.find_first_not_of(" \t\r\n"));
    f.erase(f.find_last_not_of(" \t\r\n") + 1);
    any = any || f.empty() || f == "any";
    either += either.empty() ? "" : " or ";
    either += "(" + c.filter + ")";
  }
  const uint64_t step = req.spread.step_ns;
  std::string text;
  if (min_step > 0 && max_step < INT64_MAX / 2) {
    // A flow counts over [max(first, last - max_span), last]; rows without times count at their
    // receive time: keep them (last == 0).
    const uint64_t lo = static_cast<uint64_t>(min_step) * step;
    const uint64_t hi = static_cast<uint64_t>(max_step + 1) * step + req.spread.max_span_ns;
    text =
        fmt::format("((last >= \"{}\" and last < \"{}\") or last < \"1970-01-01T00:00:00.001Z\")",
                    formatTime(lo), formatTime(hi + 1'000'000));
  } else if (min_step > 0 && min_step != INT64_MAX) {
    text = fmt::format("(last >= \"{}\" or last < \"1970-01-01T00:00:00.001Z\")",
                       formatTime(static_cast<uint64_t>(min_step) * step));
  }
  if (!any) {
    text = text.empty() ? "(" + either + ")" : text + " and (" + either + ")";
  }
  query::FilterError ferr;
  auto filter = query::Filter::compile(text, &ferr);
  if (!filter) {
    res.error = "back-fill filter: " + ferr.render(text);
    return res;
  }
  // first_ns <= last_ns < the window's end (+ 1 ms: the filter's times have ms resolution).
  const uint64_t until = max_step < INT64_MAX / 2 ? static_cast<uint64_t>(max_step + 1) * step +
                                                        req.spread.max_span_ns + 2'000'000
                                                  : UINT64_MAX;
  filter->restrictTime(0, until);
  const unsigned threads = std::max(1u, req.threads);
  struct Worker {
    Scratch scratch;
    StepTable table;
    uint64_t rows = 0;
  };
  std::vector<Worker> workers(std::max(1u, src.maxWorkers(threads)));
  std::mutex mu;  // res.steps
  auto drain = [&](StepTable& t) {
    auto entries = t.take();
    std::lock_guard lock(mu);
    for (const StepEntry& e : entries) {
      res.steps[e.channel][e.step].add(e.values);
    }
  };
  query::ScanTotals totals;
  src.scan(
      *filter, 0, until, threads, plan->columns(),
      [&](const FlowColumns& c, size_t begin, size_t end, unsigned w) {
        if (req.cancel != nullptr && req.cancel->load(std::memory_order_relaxed)) {
          return;
        }
        // The store passes only rows the scan's filter keeps; other sources pass all rows.
        // Either way each channel's own filter selects among them.
        Worker& wk = workers[w % workers.size()];
        wk.rows += end - begin;
        plan->evaluate(c, wk.table, wk.scratch, begin, end);
        if (wk.table.size() > 65536) {
          drain(wk.table);
        }
      },
      totals);
  for (Worker& w : workers) {
    drain(w.table);
    res.rows_selected += w.rows;
  }
  res.rows_scanned = totals.rows_scanned;
  res.corrupt_blocks = totals.corrupt_blocks;
  if (req.cancel != nullptr && req.cancel->load()) {
    res.error = "canceled";
  } else {
    res.ok = true;
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return res;
}

BackfillResult backfill(const BackfillRequest& req) {
  std::string why;
  auto src = query::openStore(req.store_path, &why);
  if (!src) {
    BackfillResult res;
    res.error = why;
    return res;
  }
  return backfill(*src, req);
}

}  // namespace nc::profile
