#include "collector/query/query.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>

#include "collector/record/fields.hpp"
#include "common/units.hpp"

namespace nc::query {

bool parseTimeSpec(std::string_view text, uint64_t now_ns, uint64_t& out, std::string* why) {
  auto bad = [&](std::string msg) {
    if (why != nullptr) {
      *why = std::move(msg);
    }
    return false;
  };
  std::string s(text);
  while (!s.empty() && s.back() == ' ') {
    s.pop_back();
  }
  if (s.empty()) {
    return bad("empty time");
  }
  if (s == "now") {
    out = now_ns;
    return true;
  }
  if (s[0] == '@') {
    uint64_t secs = 0;
    for (size_t i = 1; i < s.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
        return bad(fmt::format("bad UNIX time '{}'", s));
      }
      secs = secs * 10 + static_cast<uint64_t>(s[i] - '0');
    }
    out = secs * 1000000000ULL;
    return true;
  }
  // Relative: "-1h", "30m", "1h30m" is not supported; one number + unit.
  bool looks_relative =
      (s[0] == '-' || std::isdigit(static_cast<unsigned char>(s[0]))) &&
      s.find(':') == std::string::npos &&
      !(s.size() >= 8 && s[4] == '-' && std::isdigit(static_cast<unsigned char>(s[0])));
  if (looks_relative) {
    std::string d = s[0] == '-' ? s.substr(1) : s;
    std::string reason;
    auto ms = units::parseDurationMs(d, &reason);
    if (!ms) {
      return bad(
          fmt::format("bad time '{}': {} (use now, -1h, 30m, RFC 3339 or 'YYYY-MM-DD "
                      "HH:MM[:SS]')",
                      s, reason));
    }
    uint64_t ns = *ms * 1000000ULL;
    out = ns > now_ns ? 0 : now_ns - ns;
    return true;
  }
  // Absolute.
  std::string t = s;
  if (t.size() == 10) {  // YYYY-MM-DD
    t += " 00:00:00";
  } else if (t.size() == 16) {  // YYYY-MM-DD HH:MM
    t += ":00";
  }
  if (parseTime(t, out)) {
    return true;
  }
  return bad(
      fmt::format("bad time '{}' (use now, -1h, 30m, RFC 3339 such as "
                  "2026-11-26T10:00:00Z, or 'YYYY-MM-DD HH:MM[:SS]' in UTC)",
                  s));
}

unsigned MemorySource::maxWorkers(unsigned threads) const {
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  unsigned t = threads == 0 ? hw : threads;
  size_t chunks = (cols_.size() + chunk_ - 1) / chunk_;
  return static_cast<unsigned>(std::max<size_t>(1, std::min<size_t>(t, chunks)));
}

void MemorySource::scan(const Filter& filter, uint64_t since_ns, uint64_t until_ns,
                        unsigned threads, const ColumnSet& columns, const BatchFn& fn,
                        ScanTotals& totals) {
  (void)filter;
  (void)columns;
  (void)since_ns;
  (void)until_ns;
  const size_t n = cols_.size();
  const size_t chunks = (n + chunk_ - 1) / chunk_;
  totals.blocks += chunks;
  unsigned workers = maxWorkers(threads);
  std::atomic<size_t> next{0};
  auto work = [&](unsigned w) {
    while (true) {
      size_t c = next.fetch_add(1);
      if (c >= chunks) {
        return;
      }
      size_t begin = c * chunk_;
      fn(cols_, begin, std::min(n, begin + chunk_), w);
    }
  };
  if (workers <= 1) {
    work(0);
    return;
  }
  std::vector<std::thread> pool;
  for (unsigned w = 1; w < workers; ++w) {
    pool.emplace_back(work, w);
  }
  work(0);
  for (auto& t : pool) {
    t.join();
  }
}

bool parseOrder(std::string_view text, Order& out) {
  if (text == "first" || text == "tstart") {
    out = Order::kFirst;
  } else if (text == "last" || text == "tend") {
    out = Order::kLast;
  } else if (text == "bytes") {
    out = Order::kBytes;
  } else if (text == "packets") {
    out = Order::kPackets;
  } else if (text == "duration") {
    out = Order::kDuration;
  } else if (text == "pps") {
    out = Order::kPps;
  } else if (text == "bps") {
    out = Order::kBps;
  } else if (text == "bpp") {
    out = Order::kBpp;
  } else {
    return false;
  }
  return true;
}

namespace {

// Per-worker matched totals.
struct Matched {
  uint64_t rows = 0;
  uint64_t flows = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t first_ns = UINT64_MAX;
  uint64_t last_ns = 0;
  std::vector<uint32_t> sel;

  // The matching rows of [begin, end) into sel. A source that selects rows itself (selected)
  // passes only matching rows and counts the rows it scanned; otherwise they are counted here.
  void select(const Filter& filter, const FlowColumns& c, size_t begin, size_t end, bool in_window,
              bool selected, std::atomic<uint64_t>& scanned) {
    sel.clear();
    if (selected) {
      sel.resize(end - begin);
      for (size_t i = 0; i < sel.size(); ++i) {
        sel[i] = static_cast<uint32_t>(begin + i);
      }
      return;
    }
    filter.select(c, begin, end, sel, in_window);
    rows += end - begin;
    scanned.fetch_add(end - begin, std::memory_order_relaxed);
  }

  void count(const FlowColumns& c, bool scaled) {
    flows += sel.size();
    for (uint32_t r : sel) {
      packets += rowPackets(c, r, scaled);
      bytes += rowBytes(c, r, scaled);
      first_ns = std::min(first_ns, c.first_ns[r]);
      last_ns = std::max(last_ns, c.last_ns[r]);
    }
  }
  void into(ScanTotals& t) const {
    t.rows_scanned += rows;
    t.flows += flows;
    t.packets += packets;
    t.bytes += bytes;
    t.first_ns = std::min(t.first_ns, first_ns);
    t.last_ns = std::max(t.last_ns, last_ns);
  }
};

// Runs src.scan with a progress monitor when asked for one.
void runScan(Source& src, const QueryOptions& q, const ColumnSet& needed, const BatchFn& fn,
             ScanTotals& totals, std::atomic<uint64_t>& scanned) {
  auto start = std::chrono::steady_clock::now();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread monitor;
  if (q.progress) {
    monitor = std::thread([&] {
      std::unique_lock lock(mu);
      while (!cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return done; })) {
        q.progress(scanned.load(std::memory_order_relaxed));
      }
    });
  }
  const ColumnSet columns = q.project ? needed | q.filter.columns() : allColumns();
  src.setProgress(&scanned);
  src.scan(q.filter, q.since_ns, q.until_ns, q.threads, columns, fn, totals);
  if (monitor.joinable()) {
    {
      std::lock_guard lock(mu);
      done = true;
    }
    cv.notify_all();
    monitor.join();
  }
  totals.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

uint64_t orderValue(const FlowRecord& r, Order o, bool scaled) {
  uint64_t d =
      r.last_ns / 1000000 > r.first_ns / 1000000 ? r.last_ns / 1000000 - r.first_ns / 1000000 : 0;
  uint64_t p = scaled ? r.scaledPackets() : r.packets;
  uint64_t b = scaled ? r.scaledBytes() : r.bytes;
  switch (o) {
    case Order::kFirst:
      return r.first_ns;
    case Order::kLast:
      return r.last_ns;
    case Order::kBytes:
      return b;
    case Order::kPackets:
      return p;
    case Order::kDuration:
      return d;
    case Order::kPps:
      return d == 0 ? 0 : p * 1000 / d;
    case Order::kBps:
      return d == 0 ? 0 : b * 8000 / d;
    case Order::kBpp:
      return p == 0 ? 0 : b / p;
  }
  return 0;
}

}  // namespace

ScanTotals listFlows(Source& src, const QueryOptions& q, Order order, size_t limit,
                     std::vector<FlowRecord>& out) {
  const bool ascending = order == Order::kFirst || order == Order::kLast;
  auto before = [&](const FlowRecord& a, const FlowRecord& b) {
    uint64_t va = orderValue(a, order, q.scaled);
    uint64_t vb = orderValue(b, order, q.scaled);
    if (va != vb) {
      return ascending ? va < vb : va > vb;
    }
    return a.first_ns < b.first_ns;
  };
  struct Worker {
    Matched m;
    std::vector<FlowRecord> flows;
  };
  unsigned nw = src.maxWorkers(q.threads);
  std::vector<Worker> workers(std::max(nw, 64u));
  std::atomic<uint64_t> scanned{0};
  ScanTotals totals;
  const bool in_window = src.passesOnlyWindowRows();
  const bool selected = src.selectsRows();
  auto fn = [&](const FlowColumns& c, size_t begin, size_t end, unsigned w) {
    Worker& wk = workers[w];
    wk.m.select(q.filter, c, begin, end, in_window, selected, scanned);
    wk.m.count(c, q.scaled);
    for (uint32_t r : wk.m.sel) {
      wk.flows.push_back(c.row(r));
    }
    if (limit != 0 && wk.flows.size() > 2 * limit + 4096) {
      std::nth_element(wk.flows.begin(), wk.flows.begin() + static_cast<ptrdiff_t>(limit),
                       wk.flows.end(), before);
      wk.flows.resize(limit);
    }
  };
  runScan(src, q, allColumns(), fn, totals, scanned);  // rows are copied whole
  out.clear();
  for (auto& wk : workers) {
    wk.m.into(totals);
    out.insert(out.end(), wk.flows.begin(), wk.flows.end());
  }
  if (limit != 0 && out.size() > limit) {
    std::partial_sort(out.begin(), out.begin() + static_cast<ptrdiff_t>(limit), out.end(), before);
    out.resize(limit);
  } else {
    std::sort(out.begin(), out.end(), before);
  }
  return totals;
}

ScanTotals aggregateFlows(Source& src, const QueryOptions& q, const KeySpec& keys,
                          std::unique_ptr<Aggregator>& out) {
  unsigned nw = src.maxWorkers(q.threads);
  // Batches whose key addresses are all IPv4 go to a second aggregator over 4-byte address keys
  // (aggregate.hpp, v4KeySpec), folded back under the full keys at the end.
  const std::optional<KeySpec> compact = v4KeySpec(keys);
  struct Worker {
    Matched m;
    std::unique_ptr<Aggregator> agg;
    std::unique_ptr<Aggregator> agg4;
  };
  std::vector<Worker> workers(std::max(nw, 64u));
  std::atomic<uint64_t> scanned{0};
  ScanTotals totals;
  const bool in_window = src.passesOnlyWindowRows();
  const bool selected = src.selectsRows();
  auto fn = [&](const FlowColumns& c, size_t begin, size_t end, unsigned w) {
    Worker& wk = workers[w];
    wk.m.select(q.filter, c, begin, end, in_window, selected, scanned);
    if (keys.either) {
      wk.m.count(c, q.scaled);  // groups count each flow twice: sum the rows here
    }
    std::unique_ptr<Aggregator>* agg = &wk.agg;
    const KeySpec* spec = &keys;
    if (compact && rowsAreV4(c, *compact, wk.m.sel.data(), wk.m.sel.size())) {
      agg = &wk.agg4;
      spec = &*compact;
    }
    if (!*agg) {
      *agg = std::make_unique<Aggregator>(*spec, q.scaled);
    }
    (*agg)->add(c, wk.m.sel.data(), wk.m.sel.size());
  };
  runScan(src, q, keyColumns(keys, q.scaled), fn, totals, scanned);
  // Merge into the largest table (fewest re-inserts); the compact tables first among themselves,
  // then once under the full keys.
  auto largest = [&](std::unique_ptr<Aggregator> Worker::*which) {
    std::unique_ptr<Aggregator> best;
    for (auto& wk : workers) {
      if ((wk.*which) && (!best || (wk.*which)->size() > best->size())) {
        best.swap(wk.*which);
      }
    }
    for (auto& wk : workers) {
      if (wk.*which) {
        best->merge(*(wk.*which));
      }
    }
    return best;
  };
  for (auto& wk : workers) {
    wk.m.into(totals);
  }
  out = largest(&Worker::agg);
  std::unique_ptr<Aggregator> out4 = largest(&Worker::agg4);
  if (!out) {
    out = std::make_unique<Aggregator>(keys, q.scaled, out4 ? out4->size() : 1024);
  }
  if (out4) {
    out->mergeCompact(*out4);
  }
  if (!keys.either) {
    // Every matched row is in exactly one group: the matched totals are the groups' sums (the
    // same wrap-around sums as adding row by row), without a second pass over the rows.
    for (size_t g = 0; g < out->size(); ++g) {
      const Counters c = out->counters(g);
      totals.flows += c.flows;
      totals.packets += c.packets;
      totals.bytes += c.bytes;
      totals.first_ns = std::min(totals.first_ns, c.first_ns);
      totals.last_ns = std::max(totals.last_ns, c.last_ns);
    }
  }
  return totals;
}

}  // namespace nc::query
