#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "collector/store/format.hpp"
#include "collector/store/segment_io.hpp"
#include "collector/store/store.hpp"
#include "common/log.hpp"

namespace nc::store {
namespace {

namespace fs = std::filesystem;

constexpr size_t kStripes = 4;
constexpr uint64_t kRowBytes = sizeof(FlowRecord) + sizeof(uint64_t);  // a queued row (RowBlock)
// The writer's threads run at a lower priority than the receive threads: a receive thread that
// waits loses datagrams once the socket buffer is full, while the writer has its queue (and a
// faster mode) to catch up from.
constexpr int kWriterNice = 5;

// Drops the file's pages up to `len` (0 = all) from the page cache once they are on disk: a
// collector writes hundreds of MB a minute that it rarely reads back soon, and keeping them would
// push the host's working set (an OVS host runs VMs) out of memory. It also keeps the writes in
// recycled page-cache pages: on a VM whose memory the host backs lazily (Firecracker, balloons),
// writing into guest pages never touched before cost 5-10 times the CPU here. Queries read what
// they need from disk.
void dropCached(int fd, uint64_t len) {
  (void)::posix_fadvise(fd, 0, static_cast<off_t>(len), POSIX_FADV_DONTNEED);
}

void lowerPriority() {
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWriterNice);
}
// Names the calling thread for top -H, ps -L and perf (at most 15 characters).
void nameThread(const char* name) {
  (void)::pthread_setname_np(::pthread_self(), name);
}
constexpr auto kErrorLogInterval = std::chrono::seconds(10);
// Backlog (bytes of rows waiting, as a fraction of queue_bytes) at which the writer works faster
// than configured: from 1/8 blocks stay in arrival order and zstd gives way to lz4, from 3/8 to
// no compression (the default 128 MiB queue: ~5 and ~16 blocks of 16384 rows). Rows are only
// dropped when the queue is full.
constexpr uint64_t kFastEighths = 1;
constexpr uint64_t kRawEighths = 3;

uint64_t wallNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Records as append() received them. The receive threads only copy them (no per-field work on
// the hot path); the writer's threads sort each block by time and turn it into columns in one
// pass (EncodedBlock).
struct RowBlock {
  std::vector<FlowRecord> rows;
  // rows[i].first_ns, copied by append() while the record is in the receive thread's cache: the
  // writer sorts by them without reading ~3 MB of records once more.
  std::vector<uint64_t> times;
  size_t size() const { return rows.size(); }
  void clear() {
    rows.clear();
    times.clear();
  }
  void reserve(size_t n) {
    rows.reserve(n);
    times.reserve(n);
  }
  void append(std::span<const FlowRecord> rs) {
    rows.insert(rows.end(), rs.begin(), rs.end());
    for (const FlowRecord& r : rs) {
      times.push_back(r.first_ns);
    }
  }
  void append(const RowBlock& b) {
    rows.insert(rows.end(), b.rows.begin(), b.rows.end());
    times.insert(times.end(), b.times.begin(), b.times.end());
  }
};

unsigned stripeOfThisThread() {
  static std::atomic<unsigned> next{0};
  static thread_local const unsigned mine = next++;
  return mine % kStripes;
}

struct SealedInfo {
  uint64_t size = 0;
  uint64_t min_first_ns = 0;
  uint64_t max_first_ns = 0;
  uint64_t rows = 0;
};

}  // namespace

bool parseCompression(std::string_view text, StoreOptions::Compression& out) {
  if (text == "zstd") {
    out = StoreOptions::Compression::kZstd;
  } else if (text == "lz4") {
    out = StoreOptions::Compression::kLz4;
  } else if (text == "none") {
    out = StoreOptions::Compression::kNone;
  } else {
    return false;
  }
  return true;
}

std::string_view toString(StoreOptions::Compression c) {
  switch (c) {
    case StoreOptions::Compression::kZstd:
      return "zstd";
    case StoreOptions::Compression::kLz4:
      return "lz4";
    case StoreOptions::Compression::kNone:
      return "none";
  }
  return "?";
}

RetentionResult enforceRetention(const std::string& path, uint64_t max_age_ms, uint64_t max_size,
                                 uint64_t now_ns) {
  RetentionResult r;
  auto files = io::listSegmentFiles(path);
  uint64_t total = 0;
  for (const auto& f : files) {
    total += f.size;
  }
  const uint64_t age_ns = max_age_ms * 1000000ull;
  const uint64_t cutoff = now_ns > age_ns ? now_ns - age_ns : 0;
  for (const auto& f : files) {
    if (!f.complete) {
      continue;
    }
    if (f.mtime_ns >= cutoff && total <= max_size) {
      continue;
    }
    if (::unlink(f.path.c_str()) == 0 || errno == ENOENT) {
      total -= f.size;
      r.bytes_freed += f.size;
      r.deleted.push_back(f.path);
    }
  }
  if (!r.deleted.empty()) {
    io::syncDir(path);
  }
  r.bytes_left = total;
  return r;
}

// How a block is written (Impl::modeFor): normally sorted by time, with the configured codec;
// `fast` while the writer is behind: in arrival order (no sort, and a sequential instead of a
// random read of the rows), the hot columns raw and the others with a faster codec.
struct WriteMode {
  StoreOptions::Compression codec;
  bool fast = false;
};

// One block sorted and encoded, ready to be written: the CPU part of writing a block, which the
// writer thread and its encoder thread share when rows wait (see Impl::writeBatch).
struct EncodedBlock {
  EncodedBlock(StoreOptions::Compression codec, int level) : enc(codec, level), codec_now(codec) {}

  format::BlockEncoder enc;
  StoreOptions::Compression codec_now;  // what enc uses now
  FlowColumns cols;                     // the block, sorted (reused: no allocation per block)
  std::vector<uint32_t> order;
  std::vector<uint8_t> frame;
  format::IndexEntry entry;  // summary filled; offset and length when written
  bool fast = false;         // written in the fast mode

  // Sorts rows [from, to) by first_ns (ties keep their order; in arrival order in the fast
  // mode) into `cols` and encodes them.
  void encode(const RowBlock& rows, size_t from, size_t to, const WriteMode& m) {
    if (m.codec != codec_now) {
      enc.setCodec(m.codec);
      codec_now = m.codec;
    }
    enc.setHotColumnsRaw(m.fast);
    fast = m.fast;
    const size_t n = to - from;
    if (!m.fast) {
      format::stableOrder({rows.times.data() + from, n}, order);
    } else {
      order.resize(n);
      std::iota(order.begin(), order.end(), uint32_t{0});
    }
    for (uint32_t& o : order) {
      o += static_cast<uint32_t>(from);
    }
    entry = format::IndexEntry{};
    cols.assign(rows.rows, order, entry.summary);
    if (cols.empty()) {
      frame.clear();
      return;
    }
    enc.encode(cols, frame, &entry.summary);
  }
};

// A thread that runs jobs for the writer thread, one at a time and in the order given: the file
// syncs and renames that would otherwise stall the writer.
class Worker {
 public:
  Worker()
      : thread_([this] {
          nameThread("nc-store-sync");
          run();
        }) {}
  ~Worker() {  // runs the jobs still queued first
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues `job`; wait() for it before touching what it uses.
  void start(std::function<void()> job) {
    {
      std::lock_guard lk(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return jobs_.empty() && !running_; });
  }
  bool busy() {
    std::lock_guard lk(mu_);
    return running_ || !jobs_.empty();
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    while (true) {
      cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return;  // stop_
      }
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      running_ = true;
      lk.unlock();
      job();
      lk.lock();
      running_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool running_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest is set up
};

struct Writer::Impl {
  explicit Impl(StoreOptions o)
      : opts(std::move(o)),
        pool{EncodedBlock(opts.compression, opts.zstd_level),
             EncodedBlock(opts.compression, opts.zstd_level),
             EncodedBlock(opts.compression, opts.zstd_level)} {}

  // ---- shared state ----
  StoreOptions opts;
  struct alignas(64) Stripe {
    std::mutex mu;
    RowBlock rows;
  };
  std::array<Stripe, kStripes> stripes;

  mutable std::mutex qmu;
  std::condition_variable qcv;
  std::condition_variable done_cv;
  std::deque<RowBlock> queue;  // guarded by qmu
  // Written blocks, cleared with their capacity kept, for append() to fill again instead of
  // allocating (and page-faulting in) ~3 MB of fresh memory per block. Guarded by qmu.
  std::vector<RowBlock> spare;
  static constexpr size_t kMaxSpare = kStripes;
  uint64_t queue_bytes = 0;    // guarded by qmu
  uint64_t flush_req = 0;      // guarded by qmu
  uint64_t flush_done = 0;     // guarded by qmu
  bool retention_req = false;  // guarded by qmu
  bool stopping = false;       // guarded by qmu
  bool running = false;        // guarded by qmu
  std::atomic<bool> closed{false};
  std::atomic<uint64_t> dropped{0};
  std::thread thread;
  int lock_fd = -1;

  mutable std::mutex smu;
  WriterStats published;  // guarded by smu

  // ---- writer thread state ----
  // Encoding pipeline: block k of a batch of waiting blocks is sorted and encoded into
  // pool[k % kPool] by whichever of the writer thread and the encoder thread is free; the writer
  // thread writes them in order. A slot is reused only once its block is written.
  static constexpr size_t kPool = 3;
  std::array<EncodedBlock, kPool> pool;
  std::thread encoder;  // started by the first batch of two blocks or more
  std::mutex pmu;
  std::condition_variable pcv;
  std::vector<const RowBlock*> p_items;  // the batch (p_n blocks); set before p_n, under pmu
  std::vector<WriteMode> p_modes;
  std::vector<uint8_t> p_state;  // guarded by pmu: 0 waiting, 1 being encoded, 2 encoded
  size_t p_n = 0;                // guarded by pmu
  size_t p_next = 0;             // guarded by pmu: the next block to encode
  size_t p_written = 0;          // guarded by pmu
  bool p_stop = false;           // guarded by pmu
  // Syncs, seals and renames segment files in the background (see syncOpenInBackground, seal).
  std::unique_ptr<Worker> syncer;
  struct FileResult {  // what a syncer job did, for the writer thread to take in (reapSync)
    std::string what;  // "" = done; else the failed operation and file, for fail()
    int err = 0;
    std::string sealed_path;  // a segment sealed under this name
    SealedInfo info;
    bool orphan = false;  // a segment left `.open` by a failed seal: sealed again later
  };
  static FileResult failure(std::string what, int err, bool orphan = false) {
    FileResult r;
    r.what = std::move(what);
    r.err = err;
    r.orphan = orphan;
    return r;
  }
  std::mutex results_mu;
  std::vector<FileResult> results;  // guarded by results_mu
  int fd = -1;
  std::string open_path;
  std::string final_path;
  uint64_t offset = 0;
  uint64_t partition_end_ms = 0;
  bool dirty = false;
  bool orphans = false;     // `.open` files left by a failed seal, retried with retention
  bool sealed_one = false;  // a segment was sealed: run retention
  format::Footer footer;
  std::map<std::string, SealedInfo> sealed;
  uint64_t rows_written = 0;
  uint64_t blocks_written = 0;
  uint64_t blocks_fast = 0;
  uint64_t write_errors = 0;
  uint64_t deleted = 0;
  uint64_t recovered = 0;
  std::string last_error;
  bool error_now = false;
  std::chrono::steady_clock::time_point last_error_log{};
  uint64_t errors_unlogged = 0;

  void enqueue(RowBlock&& block) {
    const uint64_t bytes = block.size() * kRowBytes;
    {
      std::lock_guard lk(qmu);
      if (running && queue_bytes + bytes <= opts.queue_bytes) {
        queue_bytes += bytes;
        queue.push_back(std::move(block));
        qcv.notify_one();
        return;
      }
    }
    dropped += block.size();
  }

  void fail(const std::string& what, int err) {
    ++write_errors;
    error_now = true;
    last_error = fmt::format("{}: {}", what, std::strerror(err));
    auto now = std::chrono::steady_clock::now();
    if (last_error_log == std::chrono::steady_clock::time_point{} ||
        now - last_error_log >= kErrorLogInterval) {
      log::error("store",
                 "{} (rows are dropped until writes succeed; {} similar error(s) not "
                 "logged since the last report)",
                 last_error, errors_unlogged);
      last_error_log = now;
      errors_unlogged = 0;
    } else {
      ++errors_unlogged;
    }
  }

  void succeeded() {
    if (error_now) {
      error_now = false;
      log::info("store", "writing to {} again", opts.path);
    }
  }

  bool openSegment() {
    const uint64_t now_ns = wallNs();
    uint64_t ms = now_ns / 1000000;
    std::string stem;
    std::error_code ec;
    for (;; ++ms) {
      stem = (fs::path(opts.path) / format::segmentStem(ms)).string();
      if (!fs::exists(stem + format::kSegmentSuffix, ec) &&
          !fs::exists(stem + format::kOpenSuffix, ec)) {
        break;
      }
    }
    open_path = stem + format::kOpenSuffix;
    final_path = stem + format::kSegmentSuffix;
    const uint64_t rotate = std::max<uint64_t>(1, opts.rotate_ms);
    const uint64_t partition_ms = now_ns / 1000000 / rotate * rotate;
    partition_end_ms = partition_ms + rotate;
    format::FileHeader h;
    h.compression = opts.compression == StoreOptions::Compression::kZstd  ? format::kCodecZstd
                    : opts.compression == StoreOptions::Compression::kLz4 ? format::kCodecLz4
                                                                          : format::kCodecNone;
    h.column_count = static_cast<uint16_t>(kColumnCount);
    h.created_ns = now_ns;
    h.partition_ns = partition_ms * 1000000;
    h.rotate_ms = opts.rotate_ms;
    h.block_rows = opts.block_rows;
    auto bytes = format::encodeHeader(h);
    fd = ::open(open_path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
      fail("create " + open_path, errno);
      return false;
    }
    if (!io::pwriteAll(fd, bytes.data(), bytes.size(), 0)) {
      int err = errno;
      ::close(fd);
      fd = -1;
      ::unlink(open_path.c_str());
      fail("create " + open_path, err);
      return false;
    }
    // The header and the new name reach the disk in the background: a crash before then
    // loses what a crash before the next periodic sync loses anyway (recovery skips a file
    // without a valid header).
    inBackground([this, f = fd, path = open_path] {
      if (::fdatasync(f) != 0 || !io::syncDir(opts.path)) {
        report(failure("create " + path, errno));
      }
    });
    offset = bytes.size();
    footer = format::Footer{};
    dirty = false;
    return true;
  }

  // The bytes of rows waiting (this block included) decide how a block is written: the fast mode
  // from kFastEighths of the queue on, so that a burst costs bytes on disk instead of dropped
  // rows.
  WriteMode modeFor(uint64_t backlog_bytes) const {
    using C = StoreOptions::Compression;
    const uint64_t eighths = backlog_bytes * 8 / std::max<uint64_t>(1, opts.queue_bytes);
    WriteMode m{opts.compression};
    if (eighths >= kFastEighths) {
      m.fast = true;
      if (opts.compression == C::kZstd) {
        m.codec = C::kLz4;
      }
    }
    if (eighths >= kRawEighths) {
      m.codec = C::kNone;
    }
    return m;
  }

  // Outside a batch (pool[0] is free then).
  void writeRows(const RowBlock& rows, size_t from, size_t to, const WriteMode& m) {
    pool[0].encode(rows, from, to, m);
    writeBlock(pool[0]);
  }

  void encodeItem(size_t k) {
    const RowBlock& rows = *p_items[k];
    pool[k % kPool].encode(rows, 0, rows.size(), p_modes[k]);
  }

  // Takes the next block to encode, if its slot is free (pmu held).
  bool takeNext(size_t& k) {
    if (p_next < p_n && p_next < p_written + kPool) {
      k = p_next++;
      p_state[k] = 1;
      return true;
    }
    return false;
  }

  void encoderLoop() {
    std::unique_lock lk(pmu);
    while (true) {
      size_t k = 0;
      pcv.wait(lk, [&] { return p_stop || takeNext(k); });
      if (p_stop) {
        return;  // set between batches only (takeNext did not run)
      }
      lk.unlock();
      encodeItem(k);
      lk.lock();
      p_state[k] = 2;
      pcv.notify_all();
    }
  }

  // Sorts, encodes and writes the waiting blocks in order. With two or more, the encoder thread
  // takes blocks to encode as it becomes free while this thread writes the encoded ones and
  // encodes too whenever the next one to write is not ready: two cores share the work.
  void writeBatch(std::deque<RowBlock>& work, uint64_t pending) {
    const size_t n = work.size();
    if (n == 0) {
      return;
    }
    uint64_t queued = 0;
    {
      std::lock_guard lk(qmu);
      queued = queue_bytes;
    }
    p_items.resize(n);
    p_modes.resize(n);
    for (size_t k = 0; k < n; ++k) {
      p_modes[k] = modeFor(pending + queued);
      pending -= work[k].size() * kRowBytes;
      p_items[k] = &work[k];
    }
    if (n >= 2 && !encoder.joinable()) {
      encoder = std::thread([this] {
        lowerPriority();
        nameThread("nc-store-enc");
        encoderLoop();
      });
    }
    {
      std::lock_guard lk(pmu);
      p_state.assign(n, 0);
      p_next = 0;
      p_written = 0;
      p_n = n;
    }
    pcv.notify_all();
    for (size_t k = 0; k < n; ++k) {
      std::unique_lock lk(pmu);
      while (p_state[k] != 2) {
        size_t j = 0;
        if (p_state[k] == 0) {
          j = p_next++;  // == k: every block before k is written
          p_state[j] = 1;
        } else if (!takeNext(j)) {
          pcv.wait(lk);  // the encoder thread has block k, and no slot is free
          continue;
        }
        lk.unlock();
        encodeItem(j);
        lk.lock();
        p_state[j] = 2;
        pcv.notify_all();
      }
      lk.unlock();
      writeBlock(pool[k % kPool]);
      lk.lock();
      p_written = k + 1;
      pcv.notify_all();
    }
    std::lock_guard lk(pmu);
    p_n = 0;
  }

  void stopEncoder() {
    if (encoder.joinable()) {
      {
        std::lock_guard lk(pmu);
        p_stop = true;
      }
      pcv.notify_all();
      encoder.join();
    }
  }

  void writeBlock(EncodedBlock& b) {
    const FlowColumns& c = b.cols;
    if (c.empty()) {
      return;
    }
    format::IndexEntry& e = b.entry;
    if (fd >= 0 && wallNs() / 1000000 >= partition_end_ms) {
      seal();  // a block belongs to the segment of the interval it is written in
    }
    if (fd < 0 && !openSegment()) {
      dropped += c.size();
      return;
    }
    if (!io::pwriteAll(fd, b.frame.data(), b.frame.size(), offset)) {
      int err = errno;
      // Cut off the partial block so the file stays a valid prefix; a failure here is harmless
      // (readers stop at the first bad block) and the next block overwrites it anyway.
      (void)::ftruncate(fd, static_cast<off_t>(offset));
      fail("write " + open_path, err);
      dropped += c.size();
      return;
    }
    succeeded();
    e.offset = offset;
    e.length = static_cast<uint32_t>(b.frame.size());
    offset += b.frame.size();
    const uint64_t lo = e.summary[Column::first_ns].min;
    const uint64_t hi = e.summary[Column::first_ns].max;
    if (footer.rows == 0) {
      footer.min_first_ns = lo;
      footer.max_first_ns = hi;
    } else {
      footer.min_first_ns = std::min(footer.min_first_ns, lo);
      footer.max_first_ns = std::max(footer.max_first_ns, hi);
    }
    footer.rows += c.size();
    footer.blocks.push_back(e);
    rows_written += c.size();
    ++blocks_written;
    blocks_fast += b.fast ? 1 : 0;
    dirty = true;
  }

  void syncOpen() {
    finishSync();
    if (fd >= 0 && dirty) {
      if (::fdatasync(fd) != 0) {
        fail("fdatasync " + open_path, errno);
      } else {
        dropCached(fd, offset);
      }
      dirty = false;
    }
  }

  // Runs `job` on the syncer thread, after the ones queued before it.
  void inBackground(std::function<void()> job) {
    if (!syncer) {
      syncer = std::make_unique<Worker>();
    }
    syncer->start(std::move(job));
  }
  void report(FileResult r) {
    std::lock_guard lk(results_mu);
    results.push_back(std::move(r));
  }

  // The periodic sync: the syncer thread runs the fdatasync while this thread goes on encoding
  // and writing (one takes ~50 ms on a slow disk, about what 64 MiB of the queue holds at full
  // rate). While one runs, the next waits for the next period.
  void syncOpenInBackground() {
    reapSync();
    if (fd < 0 || !dirty || (syncer && syncer->busy())) {
      return;
    }
    inBackground([this, f = fd, path = open_path, synced = offset] {
      if (::fdatasync(f) != 0) {
        report(failure("fdatasync " + path, errno));
        return;
      }
      dropCached(f, synced);
    });
    dirty = false;
  }
  // Takes in what finished syncer jobs did.
  void reapSync() {
    std::vector<FileResult> done;
    {
      std::lock_guard lk(results_mu);
      done.swap(results);
    }
    for (auto& r : done) {
      if (!r.sealed_path.empty()) {
        sealed[r.sealed_path] = r.info;
        sealed_one = true;
      }
      orphans = orphans || r.orphan;
      if (!r.what.empty()) {
        fail(r.what, r.err);
      }
    }
  }
  // Waits for the syncer's jobs (before flush() returns, before retention looks at the files).
  void finishSync() {
    if (syncer) {
      syncer->wait();
      reapSync();
    }
  }

  // Writes footer + trailer; then, on the syncer thread, fsyncs, renames to `.ncseg` and fsyncs
  // the directory (the writer thread goes on with the next segment meanwhile).
  void seal() {
    if (fd < 0) {
      return;
    }
    if (footer.blocks.empty()) {
      finishSync();
      ::close(fd);
      fd = -1;
      ::unlink(open_path.c_str());
      io::syncDir(opts.path);
      return;
    }
    auto bytes = format::encodeFooterAndTrailer(footer, offset);
    const SealedInfo info{offset + bytes.size(), footer.min_first_ns, footer.max_first_ns,
                          footer.rows};
    if (!io::pwriteAll(fd, bytes.data(), bytes.size(), offset)) {
      const int err = errno;
      (void)::ftruncate(fd, static_cast<off_t>(offset));
      finishSync();
      (void)::fdatasync(fd);
      ::close(fd);
      fd = -1;
      orphans = true;  // its blocks are intact; sealed again later
      fail("seal " + open_path, err);
      return;
    }
    inBackground([this, f = fd, off = offset, from = open_path, to = final_path, info] {
      if (::fdatasync(f) != 0) {
        const int err = errno;
        (void)::ftruncate(f, static_cast<off_t>(off));  // drop the footer: recovered later
        (void)::fdatasync(f);
        ::close(f);
        report(failure("seal " + from, err, /*orphan=*/true));
        return;
      }
      dropCached(f, 0);
      ::close(f);
      if (::rename(from.c_str(), to.c_str()) != 0) {
        report(failure("rename " + from, errno, /*orphan=*/true));
        return;
      }
      io::syncDir(opts.path);
      FileResult done;
      done.sealed_path = to;
      done.info = info;
      report(std::move(done));
    });
    fd = -1;  // the syncer closes it
  }

  // Seals a `.open` file left by a crash (or a failed seal): keeps every block up to the first bad
  // or truncated one, writes a footer, renames. Returns false when it must be retried later.
  bool recoverFile(const std::string& path) {
    int rfd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (rfd < 0) {
      return errno == ENOENT;
    }
    off_t end = ::lseek(rfd, 0, SEEK_END);
    io::SequentialScan s = io::scanSequential(rfd, end < 0 ? 0 : static_cast<uint64_t>(end));
    const std::string final_name = path.substr(0, path.size() - 5);  // drop ".open"
    if (!s.header_ok) {
      ::close(rfd);
      if (end <= static_cast<off_t>(format::kHeaderSize)) {
        ::unlink(path.c_str());  // created but never got a block: nothing to lose
      } else {
        std::string aside = path + ".corrupt";
        ::rename(path.c_str(), aside.c_str());
        log::error("store", "{}: {}; moved aside to {}", path, s.stop_reason, aside);
      }
      return true;
    }
    format::Footer f;
    format::BlockDecoder dec;
    FlowColumns cols;
    std::vector<uint8_t> buf;
    std::string why;
    uint64_t keep_end = s.good_end;
    for (const auto& b : s.blocks) {
      buf.resize(b.length);
      if (!io::preadAll(rfd, buf.data(), buf.size(), b.offset) || !dec.decode(buf, cols, &why)) {
        keep_end = b.offset;
        break;
      }
      format::IndexEntry e;
      e.offset = b.offset;
      e.length = b.length;
      e.summary.compute(cols);
      if (!cols.empty()) {
        auto [lo, hi] = std::minmax_element(cols.first_ns.begin(), cols.first_ns.end());
        f.min_first_ns = f.rows == 0 ? *lo : std::min(f.min_first_ns, *lo);
        f.max_first_ns = std::max(f.max_first_ns, *hi);
      }
      f.rows += cols.size();
      f.blocks.push_back(e);
    }
    if (f.blocks.empty() && s.unknown == 0) {
      ::close(rfd);
      ::unlink(path.c_str());
      log::info("store", "{}: no complete block after a crash; removed", path);
      return true;
    }
    auto bytes = format::encodeFooterAndTrailer(f, keep_end);
    if (::ftruncate(rfd, static_cast<off_t>(keep_end)) != 0 ||
        !io::pwriteAll(rfd, bytes.data(), bytes.size(), keep_end) || ::fdatasync(rfd) != 0) {
      int err = errno;
      ::close(rfd);
      fail("recover " + path, err);
      return false;
    }
    ::close(rfd);
    if (::rename(path.c_str(), final_name.c_str()) != 0) {
      fail("rename " + path, errno);
      return false;
    }
    io::syncDir(opts.path);
    ++recovered;
    sealed[final_name] = {keep_end + bytes.size(), f.min_first_ns, f.max_first_ns, f.rows};
    log::info("store", "recovered {}: {} block(s), {} row(s){}", final_name, f.blocks.size(),
              f.rows, s.clean_end ? "" : fmt::format(" (cut at {})", s.stop_reason));
    return true;
  }

  void recoverOrphans() {
    bool all = true;
    for (const auto& f : io::listSegmentFiles(opts.path)) {
      if (!f.complete && !(fd >= 0 && f.path == open_path)) {
        all = recoverFile(f.path) && all;
      }
    }
    orphans = !all;
  }

  void loadSealed() {
    sealed.clear();
    for (const auto& f : io::listSegmentFiles(opts.path)) {
      if (!f.complete) {
        continue;
      }
      SealedInfo info;
      info.size = f.size;
      int rfd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (rfd >= 0) {
        format::Footer ft;
        uint64_t fo = 0;
        uint64_t br = 0;
        std::string why;
        if (io::readFooter(rfd, f.size, ft, fo, br, &why)) {
          info.min_first_ns = ft.min_first_ns;
          info.max_first_ns = ft.max_first_ns;
          info.rows = ft.rows;
        }
        ::close(rfd);
      }
      sealed[f.path] = info;
    }
  }

  void runRetention() {
    finishSync();  // no segment is being sealed while its directory is looked at
    if (orphans) {
      recoverOrphans();
    }
    auto r = enforceRetention(opts.path, opts.max_age_ms, opts.max_size, wallNs());
    for (const auto& p : r.deleted) {
      sealed.erase(p);
      ++deleted;
    }
    if (!r.deleted.empty()) {
      log::info("store", "retention removed {} segment(s), {} bytes", r.deleted.size(),
                r.bytes_freed);
    }
  }

  void publish() {
    WriterStats s;
    s.rows_written = rows_written;
    s.blocks_written = blocks_written;
    s.blocks_fast = blocks_fast;
    s.write_errors = write_errors;
    s.last_error = last_error;
    s.error_now = error_now;
    s.segments_deleted = deleted;
    s.segments_recovered = recovered;
    bool any = false;
    for (const auto& [path, info] : sealed) {
      s.bytes_on_disk += info.size;
      ++s.segments;
      if (info.rows > 0) {
        s.oldest_ns = any ? std::min(s.oldest_ns, info.min_first_ns) : info.min_first_ns;
        s.newest_ns = std::max(s.newest_ns, info.max_first_ns);
        any = true;
      }
    }
    if (fd >= 0) {
      s.bytes_on_disk += offset;
      ++s.segments;
      if (footer.rows > 0) {
        s.oldest_ns = any ? std::min(s.oldest_ns, footer.min_first_ns) : footer.min_first_ns;
        s.newest_ns = std::max(s.newest_ns, footer.max_first_ns);
      }
    }
    std::lock_guard lk(smu);
    published = std::move(s);
  }

  // Moves the stripes' partial blocks out and writes them (merged, block_rows at most each).
  void writePartials() {
    RowBlock merged;
    for (auto& s : stripes) {
      std::lock_guard lk(s.mu);
      merged.append(s.rows);
      s.rows.clear();
    }
    const size_t n = merged.size();
    for (size_t from = 0; from < n; from += opts.block_rows) {
      // Partial blocks (flushes) use the configured codec.
      writeRows(merged, from, std::min<size_t>(n, from + opts.block_rows),
                WriteMode{opts.compression});
    }
  }

  void loop() {
    using Clock = std::chrono::steady_clock;
    const auto flush_every = std::chrono::milliseconds(std::max<uint64_t>(1, opts.flush_ms));
    const auto retention_every =
        std::chrono::milliseconds(std::max<uint64_t>(1, opts.retention_interval_ms));
    auto next_flush = Clock::now() + flush_every;
    auto next_retention = Clock::now() + retention_every;
    while (true) {
      std::deque<RowBlock> work;
      uint64_t req = 0;
      bool stop = false;
      bool retention = false;
      {
        std::unique_lock lk(qmu);
        qcv.wait_until(lk, next_flush, [&] {
          return !queue.empty() || flush_req > flush_done || stopping || retention_req;
        });
        work.swap(queue);
        queue_bytes = 0;
        req = flush_req;
        stop = stopping;
        retention = retention_req;
        retention_req = false;
      }
      uint64_t pending = 0;  // bytes of the rows in `work`
      for (const auto& b : work) {
        pending += b.size() * kRowBytes;
      }
      writeBatch(work, pending);
      for (auto& b : work) {
        b.clear();
      }
      {
        std::lock_guard lk(qmu);
        while (!work.empty() && spare.size() < kMaxSpare) {
          spare.push_back(std::move(work.back()));
          work.pop_back();
        }
      }
      work.clear();
      const auto now = Clock::now();
      bool flushed_now = false;
      if (req > flush_done || stop) {
        writePartials();
        syncOpen();  // flush() returns once the rows are on disk
        next_flush = now + flush_every;
        flushed_now = true;
      } else if (now >= next_flush) {
        writePartials();
        syncOpenInBackground();
        next_flush = now + flush_every;
      }
      if (fd >= 0 && wallNs() / 1000000 >= partition_end_ms) {
        seal();
      }
      reapSync();
      retention = retention || sealed_one;
      sealed_one = false;
      if (stop) {
        stopEncoder();
        seal();
        finishSync();
        syncer.reset();
        publish();
        std::lock_guard lk(qmu);
        running = false;
        flush_done = flush_req;
        done_cv.notify_all();
        return;
      }
      if (retention || now >= next_retention) {
        runRetention();
        next_retention = now + retention_every;
      }
      publish();
      if (flushed_now) {
        std::lock_guard lk(qmu);
        flush_done = req;
        done_cv.notify_all();
      }
    }
  }
};

Writer::Writer(StoreOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  Impl& m = *impl_;
  if (m.opts.path.empty()) {
    throw std::runtime_error("store: path is empty");
  }
  if (m.opts.block_rows == 0 || m.opts.block_rows > format::kMaxBlockRows) {
    throw std::runtime_error(fmt::format("store: block_rows must be 1..{}", format::kMaxBlockRows));
  }
  std::error_code ec;
  fs::create_directories(m.opts.path, ec);
  if (ec) {
    throw std::runtime_error(fmt::format("store: cannot create {}: {}", m.opts.path, ec.message()));
  }
  const std::string lock_path = (fs::path(m.opts.path) / "writer.lock").string();
  m.lock_fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (m.lock_fd < 0) {
    throw std::runtime_error(
        fmt::format("store: cannot open {}: {}", lock_path, std::strerror(errno)));
  }
  if (::flock(m.lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(m.lock_fd);
    throw std::runtime_error(
        fmt::format("store: {} is in use by another writer (lock {})", m.opts.path, lock_path));
  }
  m.recoverOrphans();
  m.loadSealed();
  m.runRetention();
  m.publish();
  m.running = true;
  m.thread = std::thread([&m] {
    lowerPriority();
    nameThread("nc-store-write");
    m.loop();
  });
}

Writer::~Writer() {
  close();
}

void Writer::append(std::span<const FlowRecord> rows) {
  Impl& m = *impl_;
  if (rows.empty()) {
    return;
  }
  if (m.closed.load(std::memory_order_relaxed)) {
    m.dropped += rows.size();
    return;
  }
  Impl::Stripe& s = m.stripes[stripeOfThisThread()];
  std::lock_guard lk(s.mu);
  const size_t block = m.opts.block_rows;
  while (!rows.empty()) {
    const size_t take = std::min(rows.size(), block - std::min(block, s.rows.size()));
    s.rows.append(rows.first(take));
    rows = rows.subspan(take);
    if (s.rows.size() >= block) {
      RowBlock full = std::move(s.rows);
      s.rows = RowBlock{};
      {
        std::lock_guard qlk(m.qmu);
        if (!m.spare.empty()) {
          s.rows = std::move(m.spare.back());  // cleared, capacity kept
          m.spare.pop_back();
        }
      }
      s.rows.reserve(block);
      m.enqueue(std::move(full));
    }
  }
}

void Writer::flush() {
  Impl& m = *impl_;
  std::unique_lock lk(m.qmu);
  if (!m.running) {
    return;
  }
  const uint64_t mine = ++m.flush_req;
  m.qcv.notify_one();
  m.done_cv.wait(lk, [&] { return m.flush_done >= mine || !m.running; });
}

void Writer::close() {
  Impl& m = *impl_;
  if (m.closed.exchange(true)) {
    return;
  }
  {
    std::lock_guard lk(m.qmu);
    m.stopping = true;
    m.qcv.notify_one();
  }
  if (m.thread.joinable()) {
    m.thread.join();
  }
  if (m.lock_fd >= 0) {
    ::close(m.lock_fd);
    m.lock_fd = -1;
  }
}

void Writer::enforceRetentionNow() {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.qmu);
    if (!m.running) {
      return;
    }
    m.retention_req = true;
    m.qcv.notify_one();
  }
  flush();
}

WriterStats Writer::stats() const {
  const Impl& m = *impl_;
  WriterStats s;
  {
    std::lock_guard lk(m.smu);
    s = m.published;
  }
  s.rows_dropped = m.dropped.load();
  {
    std::lock_guard lk(m.qmu);
    s.queue_bytes = m.queue_bytes;
  }
  return s;
}

const StoreOptions& Writer::options() const {
  return impl_->opts;
}

}  // namespace nc::store
