#pragma once
// nc_store: the on-disk flow store. Writer turns FlowRecord batches into compressed columnar
// blocks in time-partitioned segment files; Reader scans them back (in parallel), skipping
// blocks by time window and per-block column ranges; enforceRetention() deletes old segments.
//
// What it does not do: decode protocols, parse filters or aggregate (collector/query/ does that
// over the FlowColumns handed to Reader::scan's callback). The file layout is documented in
// collector/store/format.hpp.
//
// Durability contract
// - Appended rows reach disk within ~flush_ms (partial blocks are written and fdatasync'd every
//   flush_ms) and are then visible to Reader (the open segment `*.ncseg.open` is readable).
// - A segment is complete (`*.ncseg`) only after its footer is written, fsync'd, renamed and the
//   directory fsync'd. Complete segments are never modified again, only deleted by retention.
// - After a crash, the next Writer seals the leftover `.open` segment in place: every block up to
//   the first truncated or corrupt one is kept, the rest is cut off.
// - Write errors (ENOSPC, EIO, ...) drop the affected rows (counted in rows_dropped), set
//   last_error, log at most once per 10 s, and writing resumes by itself on the next flush.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "collector/metrics/stats.hpp"
#include "collector/record/columns.hpp"
#include "collector/record/flow_record.hpp"

namespace nc::store {

struct StoreOptions {
  std::string path;                                // directory; created when missing
  uint64_t rotate_ms = 60000;                      // segment length (wall clock, aligned)
  uint64_t max_age_ms = 30ull * 86400 * 1000;      // retention by age (segment mtime)
  uint64_t max_size = 50ull * 1024 * 1024 * 1024;  // retention by total bytes of segments
  enum class Compression { kZstd, kLz4, kNone } compression = Compression::kZstd;
  uint32_t block_rows = 16384;  // rows per full block
  uint64_t flush_ms = 1000;     // partial blocks reach disk this often
  // Added members.
  int zstd_level = 1;                           // 1..19
  uint64_t queue_bytes = 128ull * 1024 * 1024;  // raw bytes queued for the writer thread
  uint64_t retention_interval_ms = 10000;       // also run on every rotation
};

// "zstd" | "lz4" | "none" -> Compression; false on anything else.
bool parseCompression(std::string_view text, StoreOptions::Compression& out);
std::string_view toString(StoreOptions::Compression c);

// The writer's counters, declared once (collector/metrics/stats.hpp): status JSON ("store"),
// Prometheus net_collector_store_*. X(TYPE, ctype, member, "key", UNIT, "column", "help")
#define NC_STORE_STATS(X)                                                                   \
  X(Counter, uint64_t, rows_written, "rows_written", None, "", "Flow rows stored")          \
  X(Counter, uint64_t, rows_dropped, NC_KEY_PROM("drops", "rows_dropped"), None, "",        \
    "Flow rows dropped: the store's queue was full or a write failed")                      \
  X(Counter, uint64_t, blocks_written, "blocks_written", None, "", "Blocks written")        \
  X(Counter, uint64_t, blocks_fast, "blocks_fast", None, "",                                \
    "Blocks compressed with a faster codec than configured because the writer fell behind") \
  X(Gauge, uint64_t, bytes_on_disk, NC_KEY_PROM("usage_bytes", "usage"), Bytes, "",         \
    "Bytes of flow segments on disk (complete and open)")                                   \
  X(Gauge, uint64_t, segments, "segments", None, "", "Flow segments on disk")               \
  X(Counter, uint64_t, write_errors, NC_KEY_PROM("errors", "write_errors"), None, "",       \
    "Failed segment writes, fsyncs, creates and renames")                                   \
  X(Gauge, uint64_t, queue_bytes, NC_KEY_PROM("queue_bytes", "queue"), Bytes, "",           \
    "Raw bytes of rows waiting for the writer thread")                                      \
  X(Counter, uint64_t, segments_deleted, "segments_deleted", None, "",                      \
    "Segments deleted by retention")                                                        \
  X(Counter, uint64_t, segments_recovered, "segments_recovered", None, "",                  \
    "Segments left open by a crash and sealed at start")

struct WriterStats {
  NC_STATS_DEFINE(WriterStats, NC_STORE_STATS)
  std::string last_error;  // "" when the last write succeeded
  uint64_t oldest_ns = 0;  // smallest first_ns stored (0 = none)
  uint64_t newest_ns = 0;  // largest first_ns stored
  bool error_now = false;  // the last write attempt failed
};

// Appends flows to the store in `StoreOptions::path`. See the durability contract above.
class Writer {
 public:
  // Creates the directory, seals segments left `.open` by a crash, starts the writer thread.
  // Throws std::runtime_error when the directory cannot be created or opened.
  explicit Writer(StoreOptions options);
  ~Writer();  // close()
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Thread-safe, called by several receive shards at once. Never waits for disk I/O: rows go to a
  // per-thread stripe buffer; full blocks go to the writer thread through a queue bounded by
  // queue_bytes; when the queue is full the block is dropped and counted (rows_dropped).
  void append(std::span<const FlowRecord> rows);
  // Writes everything appended so far (partial blocks included) and fdatasyncs; returns when done.
  void flush();
  // flush(), seal the open segment, stop the writer thread. Idempotent; append() afterwards drops.
  void close();
  // Runs retention now (the writer thread also runs it on rotation and periodically).
  void enforceRetentionNow();
  WriterStats stats() const;
  const StoreOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ScanRequest {
  uint64_t since_ns = 0;  // rows with first_ns in [since_ns, until_ns)
  uint64_t until_ns = UINT64_MAX;
  // Optional: returning false skips the block without decompressing it (filters prune with it).
  // For blocks of an `.open` segment (no footer yet) it is called after decoding, on the summary
  // of the block's rows; columns outside `columns` then read as "any value" in that summary.
  std::function<bool(const BlockSummary&)> may_match;
  unsigned threads = 0;  // 0 = hardware_concurrency
  // Column projection: only these columns are decompressed and handed to fn; the vectors of the
  // others are EMPTY in the FlowColumns fn sees (not filled with defaults). first_ns is always
  // decoded whatever the set says (it defines FlowColumns::size() and the time trimming).
  // Default: all columns.
  ColumnSet columns = allColumns();
  // Optional late materialization (filters): a block's `select_columns` (and first_ns) are
  // decoded first, `select` appends to `rows` the row numbers in [begin, end) to keep (ascending;
  // [begin, end) are the block's rows inside the window when `in_window`, else every row, the
  // window being select's to check), and the other columns of `columns` are then decoded only at
  // those rows: fn sees a block of just the kept rows, and is not called when none is kept.
  // ScanStats.rows_scanned still counts the rows inside the window.
  ColumnSet select_columns;
  std::function<void(const FlowColumns& block, size_t begin, size_t end, bool in_window,
                     std::vector<uint32_t>& rows)>
      select;
};

struct ScanStats {
  uint64_t segments = 0;  // segment files looked at
  uint64_t blocks = 0;    // blocks decoded (handed to fn unless 0 rows are left after trimming)
  uint64_t blocks_skipped = 0;  // pruned by time window or may_match (not decompressed)
  uint64_t rows_scanned = 0;    // rows inside the window (handed to fn, or to select)
  uint64_t bytes_read = 0;
  uint64_t corrupt_blocks = 0;      // checksum or structure errors; skipped
  uint64_t corrupt_segments = 0;    // bad header/footer/trailer: its intact blocks are still read
  std::vector<std::string> errors;  // "<file>: offset <n>: <reason>"
  // Added members.
  uint64_t segments_skipped = 0;  // whole segment outside the time window
  uint64_t unknown_blocks = 0;    // block type/version this reader does not know; skipped
};

struct SegmentInfo {
  std::string path;
  bool complete = false;      // `.ncseg` (true) or `.ncseg.open` (false)
  uint64_t min_first_ns = 0;  // time range of the rows (0/0 when empty)
  uint64_t max_first_ns = 0;
  uint64_t created_ns = 0;
  uint64_t rows = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;  // file size
  std::string error;   // "" = readable; else why the footer/header could not be used
};

// Reads the store in a directory. Cheap to construct; each call lists the directory again, so it
// sees segments written since. Safe to use while a Writer appends.
class Reader {
 public:
  explicit Reader(std::string path);

  // Calls fn(block, worker) for every block that overlaps [since_ns, until_ns) and passes
  // may_match, from up to `threads` worker threads at once (worker in [0, threads)); fn must be
  // thread-safe across different worker values. `block` is only valid during the call.
  // Rows are TRIMMED to the window: fn only sees rows with since_ns <= first_ns < until_ns.
  // Within a block rows are sorted by first_ns; blocks arrive in no particular order.
  // Corrupt blocks and segments are skipped and reported in the result, never passed to fn.
  ScanStats scan(const ScanRequest& request,
                 const std::function<void(const FlowColumns&, unsigned worker)>& fn) const;

  // Complete and open segments, oldest first.
  std::vector<SegmentInfo> segments() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct RetentionResult {
  std::vector<std::string> deleted;
  uint64_t bytes_freed = 0;
  uint64_t bytes_left = 0;  // all segment files left (complete + open)
};
// Deletes complete segments (never `.open` ones), oldest first, whose mtime is older than
// now - max_age_ms, and then more until the total size of all segment files is <= max_size.
RetentionResult enforceRetention(const std::string& path, uint64_t max_age_ms, uint64_t max_size,
                                 uint64_t now_ns);

}  // namespace nc::store
