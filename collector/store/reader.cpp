#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "collector/store/format.hpp"
#include "collector/store/segment_io.hpp"
#include "collector/store/store.hpp"

namespace nc::store {
namespace {

// First read of a block: its head and column table (a version 3 table of 36 columns is 620
// bytes). Wanted column ranges closer than kMergeGap are read with one pread.
constexpr size_t kHeadRead = 4096;
constexpr uint32_t kMergeGap = 8192;

// An fd that closes itself.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

// Opens a listed segment. An `.open` file may have been sealed (renamed) since the listing: then
// the complete name is tried. Returns -1 when the file is gone (retention deleted it).
int openSegment(io::SegmentFile& f) {
  int fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && !f.complete) {
    std::string sealed = f.path.substr(0, f.path.size() - 5);  // drop ".open"
    fd = ::open(sealed.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      f.path = sealed;
      f.complete = true;
    }
  }
  if (fd >= 0) {
    off_t end = ::lseek(fd, 0, SEEK_END);
    f.size = end < 0 ? 0 : static_cast<uint64_t>(end);
  }
  return fd;
}

bool overlaps(uint64_t min_ns, uint64_t max_ns, const ScanRequest& r) {
  return max_ns >= r.since_ns && min_ns < r.until_ns;
}

// Keeps only rows with first_ns in [since, until). Columns left empty by the projection stay
// empty.
void trimToWindow(FlowColumns& c, uint64_t since, uint64_t until) {
  const auto& t = c.first_ns;
  if (t.empty()) {
    return;
  }
  if (std::is_sorted(t.begin(), t.end())) {
    if (t.front() >= since && t.back() < until) {
      return;
    }
    auto lo = static_cast<size_t>(std::lower_bound(t.begin(), t.end(), since) - t.begin());
    auto hi = static_cast<size_t>(std::lower_bound(t.begin(), t.end(), until) - t.begin());
    hi = std::max(hi, lo);
#define NC_TRIM(type, name)                                                         \
  if (!c.name.empty()) {                                                            \
    c.name.erase(c.name.begin() + static_cast<std::ptrdiff_t>(hi), c.name.end());   \
    c.name.erase(c.name.begin(), c.name.begin() + static_cast<std::ptrdiff_t>(lo)); \
  }
    NC_FLOW_COLUMNS(NC_TRIM)
#undef NC_TRIM
    return;
  }
  std::vector<uint8_t> keep(t.size());
  bool all = true;
  for (size_t i = 0; i < t.size(); ++i) {
    keep[i] = t[i] >= since && t[i] < until;
    all = all && keep[i];
  }
  if (all) {
    return;
  }
#define NC_COMPACT(type, name)                 \
  if (!c.name.empty()) {                       \
    size_t w = 0;                              \
    for (size_t i = 0; i < keep.size(); ++i) { \
      if (keep[i]) {                           \
        c.name[w++] = c.name[i];               \
      }                                        \
    }                                          \
    c.name.resize(w);                          \
  }
  NC_FLOW_COLUMNS(NC_COMPACT)
#undef NC_COMPACT
}

// The summary of a decoded block; columns outside `loaded` read as "any value" (pruning must
// never drop rows because a column was not decoded).
void summarize(const FlowColumns& c, const ColumnSet& loaded, BlockSummary& s) {
  s.compute(c);
  for (size_t id = 0; id < kColumnCount; ++id) {
    if (!loaded.test(id) && id != static_cast<size_t>(Column::first_ns)) {
      ColumnStats& cs = s.cols[id];
      cs.min = 0;
      cs.max = UINT64_MAX;
      cs.amin = IpAddr{};
      cs.amax.bytes.fill(0xff);
    }
  }
}

struct WorkItem {
  size_t file = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t rows = 0;
  bool has_summary = false;  // pruned already by the footer summary
  bool inside = false;       // every row's first_ns is inside the window: no trimming
};

}  // namespace

Reader::Reader(std::string path) : path_(std::move(path)) {}

ScanStats Reader::scan(const ScanRequest& req,
                       const std::function<void(const FlowColumns&, unsigned)>& fn) const {
  ScanStats st;
  std::vector<io::SegmentFile> files = io::listSegmentFiles(path_);
  std::vector<Fd> fds;
  std::vector<std::string> paths;  // parallel to fds
  std::vector<WorkItem> items;
  for (auto& f : files) {
    Fd fd(openSegment(f));
    if (fd.get() < 0) {
      continue;
    }
    ++st.segments;
    const size_t file_index = fds.size();
    bool planned = false;
    if (f.complete) {
      format::Footer footer;
      uint64_t footer_offset = 0;
      std::string why;
      if (io::readFooter(fd.get(), f.size, footer, footer_offset, st.bytes_read, &why)) {
        planned = true;
        if (footer.rows == 0 || !overlaps(footer.min_first_ns, footer.max_first_ns, req)) {
          ++st.segments_skipped;
          st.blocks_skipped += footer.blocks.size();
          continue;
        }
        for (const auto& b : footer.blocks) {
          const ColumnStats& t = b.summary[Column::first_ns];
          if (b.summary.rows == 0 || !overlaps(t.min, t.max, req) ||
              (req.may_match && !req.may_match(b.summary))) {
            ++st.blocks_skipped;
            continue;
          }
          items.push_back({file_index, b.offset, b.length, b.summary.rows, true,
                           t.min >= req.since_ns && t.max < req.until_ns});
        }
      } else {
        ++st.corrupt_segments;
        st.errors.push_back(
            fmt::format("{}: {}; reading its intact blocks sequentially", f.path, why));
      }
    }
    if (!planned) {
      io::SequentialScan s = io::scanSequential(fd.get(), f.size);
      st.bytes_read += s.bytes_read;
      st.unknown_blocks += s.unknown;
      if (!s.header_ok) {
        if (!f.complete && f.size > format::kHeaderSize) {
          ++st.corrupt_segments;  // (a complete one was counted above)
        }
        if (f.complete || f.size > format::kHeaderSize) {
          st.errors.push_back(fmt::format("{}: offset 0: {}", f.path, s.stop_reason));
        }
        continue;  // an `.open` file just created has no header yet: nothing to read
      }
      if (!s.clean_end && f.complete) {
        st.errors.push_back(
            fmt::format("{}: {} (rest of the segment skipped)", f.path, s.stop_reason));
      }
      // For an `.open` file a bad frame at the end is a write in progress or a crash: by the
      // recovery rule it simply ends the segment, it is not an error.
      for (const auto& b : s.blocks) {
        if (b.info.rows == 0 || !overlaps(b.info.min_first_ns, b.info.max_first_ns, req)) {
          ++st.blocks_skipped;
          continue;
        }
        items.push_back(
            {file_index, b.offset, b.length, b.info.rows, false,
             b.info.min_first_ns >= req.since_ns && b.info.max_first_ns < req.until_ns});
      }
    }
    fds.push_back(std::move(fd));
    paths.push_back(f.path);
  }

  unsigned threads = req.threads != 0 ? req.threads : std::thread::hardware_concurrency();
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(items.size())));
  std::atomic<size_t> next{0};
  std::mutex mu;
  const bool late = static_cast<bool>(req.select);
  ColumnSet first_set = req.select_columns;  // decoded first in late materialization
  addColumn(first_set, Column::first_ns);
  const ColumnSet rest_set = req.columns & ~first_set;  // read after select (first_ns comes too)
  auto worker = [&](unsigned w) {
    ScanStats local;
    format::BlockDecoder dec;
    FlowColumns cols;
    std::vector<uint8_t> buf;
    std::vector<format::ByteRange> ranges;
    std::vector<uint32_t> sel;
    std::string why;
    for (size_t i = next++; i < items.size(); i = next++) {
      const WorkItem& it = items[i];
      buf.resize(it.length);
      // The frame's head first; a version 3 block then needs only the stored bytes of the
      // columns asked for (each with its own checksum), older ones the whole frame.
      const int fd = fds[it.file].get();
      const size_t head_len = std::min<size_t>(it.length, kHeadRead);
      bool ok = io::preadAll(fd, buf.data(), head_len, it.offset);
      local.bytes_read += head_len;
      // Reads the stored bytes of `set`'s columns (past the head); false when the frame has no
      // per-column ranges (older versions): then the whole frame was read.
      auto readColumns = [&](const ColumnSet& set) {
        if (!ok || head_len >= it.length) {
          return true;
        }
        if (!format::columnRanges({buf.data(), head_len}, it.length, set, kMergeGap, ranges)) {
          ok = io::preadAll(fd, buf.data() + head_len, it.length - head_len, it.offset + head_len);
          local.bytes_read += it.length - head_len;
          return false;
        }
        for (const format::ByteRange& r : ranges) {
          const size_t from = std::max<size_t>(r.offset, head_len);
          const size_t to = size_t{r.offset} + r.length;
          if (ok && to > from) {
            ok = io::preadAll(fd, buf.data() + from, to - from, it.offset + from);
            local.bytes_read += to - from;
          }
        }
        return true;
      };
      // Late materialization reads the filter's columns first, the others once rows match.
      const bool by_column = readColumns(late ? first_set : req.columns);
      std::string reason;
      format::FrameHeader fh;
      if (!ok) {
        reason = "short read";
      } else if (!format::decodeFrameHeader(buf, fh, &why)) {
        reason = why;
      } else if (fh.length != it.length ||
                 (!format::checksumsPerColumn(fh.version) && !format::verifyFrame(buf))) {
        reason = "block checksum mismatch";
      } else if (fh.type != format::kTypeFlowBlock ||
                 !format::isKnownFlowBlockVersion(fh.version)) {
        ++local.unknown_blocks;
        continue;
      } else if (!dec.decode(buf, cols, &why, late ? first_set : req.columns)) {
        reason = why;
      } else if (cols.size() != it.rows) {
        reason = "row count differs from the index";
      }
      auto corrupt = [&](std::string_view what) {
        ++local.corrupt_blocks;
        local.errors.push_back(fmt::format("{}: offset {}: {}", paths[it.file], it.offset, what));
      };
      if (!reason.empty()) {
        corrupt(reason);
        continue;
      }
      if (!it.has_summary && req.may_match) {
        BlockSummary s;
        summarize(cols, late ? first_set : req.columns, s);
        if (!req.may_match(s)) {
          ++local.blocks_skipped;
          continue;
        }
      }
      if (late) {
        // The window's rows: a range of a sorted block; an unsorted one (none is written so)
        // leaves the window to select.
        size_t begin = 0;
        size_t end = cols.size();
        bool in_window = true;
        const auto& t = cols.first_ns;
        if (!it.inside) {
          if (std::is_sorted(t.begin(), t.end())) {
            begin =
                static_cast<size_t>(std::lower_bound(t.begin(), t.end(), req.since_ns) - t.begin());
            end = std::max(begin,
                           static_cast<size_t>(std::lower_bound(t.begin(), t.end(), req.until_ns) -
                                               t.begin()));
          } else {
            in_window = false;
          }
        }
        size_t inside = end - begin;
        if (!in_window) {
          inside = static_cast<size_t>(std::count_if(t.begin(), t.end(), [&](uint64_t x) {
            return x >= req.since_ns && x < req.until_ns;
          }));
        }
        ++local.blocks;
        local.rows_scanned += inside;
        sel.clear();
        if (inside != 0) {
          req.select(cols, begin, end, in_window, sel);
        }
        if (sel.empty()) {
          continue;
        }
        if (by_column) {
          readColumns(rest_set);
          if (!ok) {
            corrupt("short read");
            continue;
          }
        }
        if (!dec.decodeRows(buf, cols, &why, first_set, req.columns, sel)) {
          corrupt(why);
          continue;
        }
        fn(cols, w);
        continue;
      }
      if (!it.inside) {
        trimToWindow(cols, req.since_ns, req.until_ns);
      }
      ++local.blocks;
      if (cols.empty()) {
        continue;
      }
      local.rows_scanned += cols.size();
      fn(cols, w);
    }
    std::lock_guard lock(mu);
    st.blocks += local.blocks;
    st.blocks_skipped += local.blocks_skipped;
    st.rows_scanned += local.rows_scanned;
    st.bytes_read += local.bytes_read;
    st.corrupt_blocks += local.corrupt_blocks;
    st.unknown_blocks += local.unknown_blocks;
    st.errors.insert(st.errors.end(), local.errors.begin(), local.errors.end());
  };
  if (threads <= 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    for (unsigned w = 0; w < threads; ++w) {
      pool.emplace_back(worker, w);
    }
    for (auto& t : pool) {
      t.join();
    }
  }
  return st;
}

std::vector<SegmentInfo> Reader::segments() const {
  std::vector<SegmentInfo> out;
  for (auto& f : io::listSegmentFiles(path_)) {
    Fd fd(openSegment(f));
    if (fd.get() < 0) {
      continue;
    }
    SegmentInfo info;
    info.path = f.path;
    info.complete = f.complete;
    info.bytes = f.size;
    uint8_t head[format::kHeaderSize];
    format::FileHeader h;
    std::string why;
    if (io::preadAll(fd.get(), head, sizeof head, 0) && format::decodeHeader(head, h, &why)) {
      info.created_ns = h.created_ns;
    }
    bool done = false;
    if (f.complete) {
      format::Footer footer;
      uint64_t footer_offset = 0;
      uint64_t bytes = 0;
      if (io::readFooter(fd.get(), f.size, footer, footer_offset, bytes, &why)) {
        info.min_first_ns = footer.min_first_ns;
        info.max_first_ns = footer.max_first_ns;
        info.rows = footer.rows;
        info.blocks = footer.blocks.size();
        done = true;
      } else {
        info.error = why;
      }
    }
    if (!done) {
      io::SequentialScan s = io::scanSequential(fd.get(), f.size);
      if (!s.header_ok && info.error.empty() && (f.complete || f.size > format::kHeaderSize)) {
        info.error = s.stop_reason;
      }
      bool first = true;
      for (const auto& b : s.blocks) {
        if (b.info.rows == 0) {
          continue;
        }
        info.min_first_ns =
            first ? b.info.min_first_ns : std::min(info.min_first_ns, b.info.min_first_ns);
        info.max_first_ns = std::max(info.max_first_ns, b.info.max_first_ns);
        info.rows += b.info.rows;
        first = false;
      }
      info.blocks = s.blocks.size();
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace nc::store
