#pragma once
// Queries: run a compiled Filter over a Source of FlowColumns batches (memory or the on-disk
// store), on one or more worker threads, and either list the matching flows or aggregate them.
//
// Each worker owns its selection buffer, its top-k list or its Aggregator; the results are
// merged once at the end, so workers share nothing but an atomic progress counter.
//
// Time windows are on first_ns, half-open: since <= first < until (like the store's ScanRequest).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/query/aggregate.hpp"
#include "collector/query/filter.hpp"
#include "collector/record/columns.hpp"

namespace nc::query {

// --since / --until: "now", relative "-1h" / "30m" / "90s" / "2d" (before now), RFC 3339
// ("2026-11-26T10:00:00Z", "+01:00" offsets), "YYYY-MM-DD HH:MM[:SS]" and "YYYY-MM-DD" (UTC), or
// "@UNIX_SECONDS". Returns false with a reason in `why`.
bool parseTimeSpec(std::string_view text, uint64_t now_ns, uint64_t& out, std::string* why);

// What a scan did. Matched totals use the query's counting (scaled unless raw).
struct ScanTotals {
  uint64_t rows_scanned = 0;
  uint64_t flows = 0;  // rows that matched
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t first_ns = UINT64_MAX;  // earliest first of a matching row
  uint64_t last_ns = 0;            // latest last of a matching row
  uint64_t segments = 0;
  uint64_t blocks = 0;
  uint64_t blocks_skipped = 0;
  uint64_t bytes_read = 0;
  uint64_t corrupt_blocks = 0;
  uint64_t corrupt_segments = 0;
  std::vector<std::string> errors;
  double seconds = 0;
};

// A batch callback: rows [begin, end) of `c`, from worker `worker` (< Source::maxWorkers()).
using BatchFn =
    std::function<void(const FlowColumns& c, size_t begin, size_t end, unsigned worker)>;

class Source {
 public:
  virtual ~Source() = default;
  // Upper bound of worker indices for `threads` (0 = one per core).
  virtual unsigned maxWorkers(unsigned threads) const = 0;
  // Calls fn for every batch that may hold rows with since <= first_ns < until and may match
  // `filter` (block pruning). Rows outside the window may be passed; callers filter them (the
  // filter given to the query already carries the window). Fills the scan counters of `totals`.
  // `columns`: the columns fn reads. A source may leave the other columns EMPTY in the batches
  // it passes (the store does: it decompresses only these); first_ns is always present.
  virtual void scan(const Filter& filter, uint64_t since_ns, uint64_t until_ns, unsigned threads,
                    const ColumnSet& columns, const BatchFn& fn, ScanTotals& totals) = 0;
  // True when scan() passes only rows inside [since, until) (the store trims its blocks): the
  // filter then skips the window's checks.
  virtual bool passesOnlyWindowRows() const { return false; }
  // True when scan() applies `filter` itself and passes only matching rows (the store: it
  // decodes the filter's columns first and the others only at the rows that match). It then
  // counts the rows it scanned in totals.rows_scanned and, as it goes, in the counter given to
  // setProgress().
  virtual bool selectsRows() const { return false; }
  void setProgress(std::atomic<uint64_t>* rows) { progress_ = rows; }

 protected:
  std::atomic<uint64_t>* progress_ = nullptr;
};

// Flows in memory (JSON input, the daemon's recent flows, benchmarks). Splits into chunks of
// `chunk_rows` and spreads them over the threads.
class MemorySource : public Source {
 public:
  explicit MemorySource(const FlowColumns& cols, size_t chunk_rows = 65536)
      : cols_(cols), chunk_(chunk_rows) {}
  unsigned maxWorkers(unsigned threads) const override;
  void scan(const Filter& filter, uint64_t since_ns, uint64_t until_ns, unsigned threads,
            const ColumnSet& columns, const BatchFn& fn, ScanTotals& totals) override;

 private:
  const FlowColumns& cols_;
  size_t chunk_;
};

// The on-disk store (collector/store); nullptr with `why` when this build has no store or the
// path cannot be opened.
std::unique_ptr<Source> openStore(const std::string& path, std::string* why);
// True when this build includes the store reader.
bool haveStore();

enum class Order : uint8_t { kFirst, kLast, kBytes, kPackets, kDuration, kPps, kBps, kBpp };
bool parseOrder(std::string_view text, Order& out);

struct QueryOptions {
  Filter filter;  // already restricted to the time window
  uint64_t since_ns = 0;
  uint64_t until_ns = UINT64_MAX;
  unsigned threads = 0;  // 0 = one per core
  bool scaled = true;    // totals and aggregates multiply by sampling_rate
  // Read only the columns the query needs (filter, keys, counters; listings read all). Off =
  // every column is decoded (tests compare both; results are the same).
  bool project = true;
  // Called about every 250 ms from a monitor thread with the rows scanned so far.
  std::function<void(uint64_t rows_scanned)> progress;
};

// Lists matching flows: ordered by `order` (kFirst/kLast ascending, the rest descending), at most
// `limit` (0 = all).
ScanTotals listFlows(Source& src, const QueryOptions& q, Order order, size_t limit,
                     std::vector<FlowRecord>& out);

// Aggregates matching flows by `keys`.
ScanTotals aggregateFlows(Source& src, const QueryOptions& q, const KeySpec& keys,
                          std::unique_ptr<Aggregator>& out);

}  // namespace nc::query
