// The store as a query Source. Built against collector/store/store.hpp when this tree has it
// (NC_HAVE_STORE, set by CMake when the nc_store target exists); otherwise openStore() explains
// that the store is not part of this build.
#include <fmt/format.h>

#include <filesystem>
#include <thread>

#include "collector/query/query.hpp"

#if defined(NC_HAVE_STORE) && __has_include("collector/store/store.hpp")
#include "collector/store/store.hpp"
#define NC_QUERY_STORE 1
#endif

namespace nc::query {

#ifdef NC_QUERY_STORE
namespace {

class StoreSource : public Source {
 public:
  explicit StoreSource(const std::string& path) : reader_(path) {}

  bool passesOnlyWindowRows() const override { return true; }  // Reader trims to the window
  bool selectsRows() const override { return true; }           // late materialization (ScanRequest)

  unsigned maxWorkers(unsigned threads) const override {
    unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    return threads == 0 ? hw : threads;
  }

  void scan(const Filter& filter, uint64_t since_ns, uint64_t until_ns, unsigned threads,
            const ColumnSet& columns, const BatchFn& fn, ScanTotals& totals) override {
    store::ScanRequest req;
    req.columns = columns;
    req.since_ns = since_ns;
    req.until_ns = until_ns;
    req.threads = threads == 0 ? maxWorkers(0) : threads;
    // Every row the reader passes (it trims blocks to the window) matches a filter that is only
    // the window: no selection then.
    const bool all = filter.matchesAllInWindow();
    if (!filter.matchesAll()) {
      req.may_match = [&filter](const BlockSummary& b) { return filter.mayMatch(b); };
    }
    if (!all) {
      // The filter's columns first; the others only for the rows it keeps.
      req.select_columns = filter.columns();
      req.select = [&](const FlowColumns& c, size_t begin, size_t end, bool in_window,
                       std::vector<uint32_t>& rows) {
        if (progress_ != nullptr) {
          progress_->fetch_add(end - begin, std::memory_order_relaxed);
        }
        filter.select(c, begin, end, rows, in_window);
      };
    }
    store::ScanStats st = reader_.scan(req, [&](const FlowColumns& c, unsigned worker) {
      if (all && progress_ != nullptr) {
        progress_->fetch_add(c.size(), std::memory_order_relaxed);
      }
      fn(c, 0, c.size(), worker);
    });
    totals.rows_scanned += st.rows_scanned;
    totals.segments += st.segments;
    totals.blocks += st.blocks;
    totals.blocks_skipped += st.blocks_skipped;
    totals.bytes_read += st.bytes_read;
    totals.corrupt_blocks += st.corrupt_blocks;
    totals.corrupt_segments += st.corrupt_segments;
    totals.errors.insert(totals.errors.end(), st.errors.begin(), st.errors.end());
  }

 private:
  store::Reader reader_;
};

}  // namespace

bool haveStore() {
  return true;
}

std::unique_ptr<Source> openStore(const std::string& path, std::string* why) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec)) {
    if (why != nullptr) {
      *why = fmt::format("{}: no flow store there (not a directory)", path);
    }
    return nullptr;
  }
  try {
    return std::make_unique<StoreSource>(path);
  } catch (const std::exception& e) {
    if (why != nullptr) {
      *why = fmt::format("{}: {}", path, e.what());
    }
    return nullptr;
  }
}

#else

bool haveStore() {
  return false;
}

std::unique_ptr<Source> openStore(const std::string& path, std::string* why) {
  if (why != nullptr) {
    *why = fmt::format(
        "{}: this build has no flow store reader (collector/store is not part of it yet); use "
        "--input FILE (JSON lines or nfdump -o json) or --live",
        path);
  }
  return nullptr;
}

#endif

}  // namespace nc::query
