// nc_store unit tests: Writer -> Reader round trips, rotation, pruning, retention, corruption,
// truncation and crash recovery of `.open` segments.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "collector/store/format.hpp"
#include "collector/store/segment_io.hpp"
#include "collector/store/store.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/store/row_key.hpp"

namespace nc::store {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBase = 1'800'000'000'000'000'000ull;  // 2027-01-15

// Random values in every field (addresses v4-mapped and v6).
std::vector<FlowRecord> randomFlows(size_t n, uint64_t seed, uint64_t t0 = kBase,
                                    uint64_t span_ns = 60'000'000'000ull) {
  std::mt19937_64 rng(seed);
  auto addr = [&] {
    IpAddr a;
    if (rng() & 1) {
      a = IpAddr::fromV4(static_cast<uint32_t>(rng()));
    } else {
      for (auto& b : a.bytes) {
        b = static_cast<uint8_t>(rng());
      }
    }
    return a;
  };
  std::vector<FlowRecord> out(n);
  for (auto& r : out) {
    r.first_ns = t0 + rng() % span_ns;
    r.last_ns = r.first_ns + rng() % 1'000'000'000'000ull;
    r.received_ns = r.last_ns + rng() % 5'000'000'000ull;
    r.packets = rng() % 100000;
    r.bytes = rng();
    r.exporter = addr();
    r.src_addr = addr();
    r.dst_addr = addr();
    r.next_hop = addr();
    r.src_mac = rng() & 0xffffffffffffull;
    r.dst_mac = rng() & 0xffffffffffffull;
    r.sampling_rate = static_cast<uint32_t>(rng());
    r.observation_domain = static_cast<uint32_t>(rng());
    r.in_if = static_cast<uint32_t>(rng());
    r.out_if = static_cast<uint32_t>(rng());
    r.src_as = static_cast<uint32_t>(rng());
    r.dst_as = static_cast<uint32_t>(rng());
    r.src_port = static_cast<uint16_t>(rng());
    r.dst_port = static_cast<uint16_t>(rng());
    r.vlan = static_cast<uint16_t>(rng());
    r.exporter_port = static_cast<uint16_t>(rng());
    r.proto = static_cast<uint8_t>(rng());
    r.tcp_flags = static_cast<uint8_t>(rng());
    r.tos = static_cast<uint8_t>(rng());
    r.icmp_type = static_cast<uint8_t>(rng());
    r.icmp_code = static_cast<uint8_t>(rng());
    r.src_mask = static_cast<uint8_t>(rng());
    r.dst_mask = static_cast<uint8_t>(rng());
    r.ip_version = static_cast<uint8_t>(rng());
    r.flow_end_reason = static_cast<uint8_t>(rng());
    r.direction = static_cast<uint8_t>(rng());
    r.engine_type = static_cast<uint8_t>(rng());
    r.engine_id = static_cast<uint8_t>(rng());
    r.if_kind = static_cast<IfKind>(rng() % 4);
    r.flow_proto = static_cast<FlowProto>(rng() % 256);
    r.flags = static_cast<uint8_t>(rng());
  }
  return out;
}

std::string key(const FlowRecord& r) {
  return nc::test::rowKey(r);
}

std::vector<std::string> keys(const std::vector<FlowRecord>& rows) {
  std::vector<std::string> k;
  k.reserve(rows.size());
  for (const auto& r : rows) {
    k.push_back(key(r));
  }
  std::sort(k.begin(), k.end());
  return k;
}

std::vector<FlowRecord> readAll(const std::string& path, const ScanRequest& req = {},
                                ScanStats* stats = nullptr) {
  std::mutex mu;
  std::vector<FlowRecord> out;
  ScanStats st = Reader(path).scan(req, [&](const FlowColumns& c, unsigned) {
    std::lock_guard lk(mu);
    for (size_t i = 0; i < c.size(); ++i) {
      out.push_back(c.row(i));
    }
  });
  if (stats != nullptr) {
    *stats = st;
  }
  return out;
}

StoreOptions smallOptions(const fs::path& dir) {
  StoreOptions o;
  o.path = dir.string();
  o.block_rows = 1000;
  o.flush_ms = 50;
  // Segments rotate at wall-clock multiples of rotate_ms: tests that expect one segment must not
  // cross such a time (with the default minute they did now and then). Tests of rotation set it.
  o.rotate_ms = 86'400'000;
  return o;
}

std::vector<io::SegmentFile> files(const fs::path& dir) {
  return io::listSegmentFiles(dir.string());
}

void flipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

format::Footer footerOf(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  format::Footer f;
  uint64_t fo = 0;
  uint64_t br = 0;
  std::string why;
  EXPECT_TRUE(io::readFooter(fd, fs::file_size(path), f, fo, br, &why)) << why;
  ::close(fd);
  return f;
}

TEST(store, Crc32cKnownVector) {
  EXPECT_EQ(format::crc32c("123456789", 9), 0xE3069283u);
  std::string long_text(1000, 'x');
  uint32_t whole = format::crc32c(long_text.data(), long_text.size());
  uint32_t parts =
      format::crc32c(long_text.data() + 500, 500, format::crc32c(long_text.data(), 500));
  EXPECT_EQ(whole, parts);
}

// Long buffers take the three-chain path of the hardware crc32c (stretches of 3 x 1 KiB joined by
// a shift table): it must give the bit-by-bit result at every length and split point.
TEST(store, Crc32cLongBuffersMatchBitwise) {
  auto bitwise = [](const uint8_t* p, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) {
      crc ^= p[i];
      for (int k = 0; k < 8; ++k) {
        crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
      }
    }
    return ~crc;
  };
  std::mt19937_64 rng(9);
  std::vector<uint8_t> buf(200003);
  for (auto& b : buf) {
    b = static_cast<uint8_t>(rng());
  }
  for (size_t n : {size_t{0}, size_t{7}, size_t{3071}, size_t{3072}, size_t{3073}, size_t{6150},
                   size_t{15377}, buf.size()}) {
    EXPECT_EQ(format::crc32c(buf.data(), n), bitwise(buf.data(), n, 0)) << n;
    EXPECT_EQ(format::crc32c(buf.data() + 1, n - (n > 0)), bitwise(buf.data() + 1, n - (n > 0), 0))
        << n;  // unaligned start
  }
  const uint32_t whole = bitwise(buf.data(), buf.size(), 0);
  for (size_t split : {size_t{1}, size_t{3072}, size_t{50001}, size_t{196000}}) {
    EXPECT_EQ(
        format::crc32c(buf.data() + split, buf.size() - split, format::crc32c(buf.data(), split)),
        whole)
        << split;
  }
}

class RoundTrip : public ::testing::TestWithParam<StoreOptions::Compression> {};

// Random rows in all fields, appended from two threads, come back identical: from the open
// segment after flush() and from the sealed segment after close().
TEST_P(RoundTrip, AllFieldsEqual) {
  test::TempDir dir("store");
  auto rows = randomFlows(25000, 7);
  StoreOptions o = smallOptions(dir.path());
  o.compression = GetParam();
  o.block_rows = 4096;
  Writer w(o);
  auto feed = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; i += 37) {
      w.append(std::span(rows).subspan(i, std::min<size_t>(37, to - i)));
    }
  };
  std::thread a(feed, 0, rows.size() / 2);
  std::thread b(feed, rows.size() / 2, rows.size());
  a.join();
  b.join();
  w.flush();
  auto s = w.stats();
  EXPECT_EQ(s.rows_written, rows.size());
  EXPECT_EQ(s.rows_dropped, 0u);
  EXPECT_EQ(s.write_errors, 0u);
  EXPECT_EQ(s.oldest_ns, std::min_element(rows.begin(), rows.end(), [](auto& x, auto& y) {
                           return x.first_ns < y.first_ns;
                         })->first_ns);
  ScanStats st;
  EXPECT_EQ(keys(readAll(o.path, {}, &st)), keys(rows)) << "from the open segment";
  EXPECT_EQ(st.corrupt_blocks, 0u);
  EXPECT_TRUE(st.errors.empty()) << (st.errors.empty() ? "" : st.errors[0]);
  w.close();
  auto segs = Reader(o.path).segments();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_TRUE(segs[0].complete);
  EXPECT_EQ(segs[0].rows, rows.size());
  for (unsigned threads : {1u, 2u, 4u}) {
    ScanRequest req;
    req.threads = threads;
    EXPECT_EQ(keys(readAll(o.path, req, &st)), keys(rows)) << threads << " thread(s)";
    EXPECT_EQ(st.rows_scanned, rows.size());
    EXPECT_TRUE(st.errors.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(store, RoundTrip,
                         ::testing::Values(StoreOptions::Compression::kZstd,
                                           StoreOptions::Compression::kLz4,
                                           StoreOptions::Compression::kNone),
                         [](const auto& info) { return std::string(toString(info.param)); });

// A backlog of blocks is sorted and encoded by two threads at once (the writer thread and its
// encoder thread, three blocks in flight); the blocks must still reach the file whole and in
// the order they were appended. Rows carry rising times block by block, so reading the segment
// in file order gives back the input order.
TEST(store, BlocksEncodedInParallelAreWrittenInOrder) {
  test::TempDir dir("store");
  auto rows = randomFlows(40960, 11);  // 160 blocks
  constexpr size_t kBlock = 256;
  for (size_t i = 0; i < rows.size(); ++i) {
    // Increasing from block to block, shuffled within one.
    rows[i].first_ns = 1'800'000'000'000'000'000ull + (i / kBlock) * 1'000'000'000ull +
                       (rows[i].first_ns % 1000) * 1000;
  }
  StoreOptions o = smallOptions(dir.path());
  o.block_rows = kBlock;
  o.queue_bytes = 1ull << 30;
  o.flush_ms = 60'000;  // only full blocks until close
  Writer w(o);
  for (size_t i = 0; i < rows.size(); i += kBlock) {
    w.append(std::span(rows).subspan(i, kBlock));  // far faster than the writer: a backlog
  }
  w.close();
  EXPECT_EQ(w.stats().rows_written, rows.size());
  EXPECT_EQ(w.stats().blocks_written, rows.size() / kBlock);
  ScanRequest req;
  req.threads = 1;
  auto got = readAll(o.path, req);
  ASSERT_EQ(got.size(), rows.size());
  for (size_t b = 0; b < rows.size(); b += kBlock) {
    std::vector<FlowRecord> want(rows.begin() + static_cast<ptrdiff_t>(b),
                                 rows.begin() + static_cast<ptrdiff_t>(b + kBlock));
    std::stable_sort(want.begin(), want.end(),
                     [](const auto& x, const auto& y) { return x.first_ns < y.first_ns; });
    for (size_t i = 0; i < kBlock; ++i) {
      ASSERT_EQ(key(got[b + i]), key(want[i])) << "block " << b / kBlock << " row " << i;
    }
  }
}

// While the writer is behind it writes blocks in arrival order with a faster codec. Those
// blocks, sealed, must give the segment's index its true time range and answer windows exactly.
TEST(store, BlocksWrittenWhileBehindAnswerWindowsExactly) {
  test::TempDir dir("store");
  auto rows = randomFlows(40960, 12);
  for (auto& r : rows) {
    r.first_ns = 1'800'000'000'000'000'000ull + r.first_ns % 60'000'000'000ull;
  }
  StoreOptions o = smallOptions(dir.path());
  o.block_rows = 256;
  o.queue_bytes = 8 * 256 * 200;  // a backlog of a block or two is "behind"
  o.flush_ms = 60'000;
  Writer w(o);
  for (size_t i = 0; i < rows.size(); i += 256) {
    w.append(std::span(rows).subspan(i, 256));
  }
  w.close();
  ASSERT_GT(w.stats().blocks_fast, 0u) << "the writer never fell behind: nothing tested";
  auto stored = readAll(o.path);
  ASSERT_EQ(stored.size(), w.stats().rows_written);
  uint64_t lo = UINT64_MAX;
  uint64_t hi = 0;
  for (const auto& r : stored) {
    lo = std::min(lo, r.first_ns);
    hi = std::max(hi, r.first_ns);
  }
  auto segs = Reader(o.path).segments();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].min_first_ns, lo);
  EXPECT_EQ(segs[0].max_first_ns, hi);
  for (auto [since, until] : std::vector<std::pair<uint64_t, uint64_t>>{
           {lo, lo + 1}, {hi, hi + 1}, {lo + (hi - lo) / 4, lo + (hi - lo) / 2}}) {
    std::vector<FlowRecord> want;
    for (const auto& r : stored) {
      if (r.first_ns >= since && r.first_ns < until) {
        want.push_back(r);
      }
    }
    ScanRequest req;
    req.since_ns = since;
    req.until_ns = until;
    EXPECT_EQ(keys(readAll(o.path, req)), keys(want));
  }
}

TEST(store, CompressionShrinksRepetitiveFlows) {
  test::TempDir dir("store");
  std::vector<FlowRecord> rows(20000);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].first_ns = kBase + i * 1000000;
    rows[i].last_ns = rows[i].first_ns + 5000000;
    rows[i].received_ns = rows[i].last_ns + 1000;
    rows[i].src_addr = IpAddr::fromV4(0x0a000000u + static_cast<uint32_t>(i % 256));
    rows[i].dst_port = 443;
    rows[i].in_if = 1 + static_cast<uint32_t>(i % 3);  // columns zstd compresses (format.hpp)
    rows[i].tcp_flags = static_cast<uint8_t>(0x10 | (i % 5 == 0 ? 0x02 : 0));
    rows[i].src_as = 64512 + static_cast<uint32_t>((i * 7) % 11);
  }
  uint64_t bytes[2] = {};
  for (auto c : {StoreOptions::Compression::kNone, StoreOptions::Compression::kZstd}) {
    fs::remove_all(dir.path() / "s");
    StoreOptions o = smallOptions(dir.path() / "s");
    o.compression = c;
    {
      Writer w(o);
      w.append(rows);
    }
    bytes[c == StoreOptions::Compression::kZstd] = Reader(o.path).segments().at(0).bytes;
    EXPECT_EQ(readAll(o.path).size(), rows.size());
  }
  // Constant, v4-only, narrowed and bit-packed columns shrink such flows ~10x before any codec;
  // zstd on top (for the columns it may compress, format.hpp "Encoder policy").
  EXPECT_LT(bytes[0] * 8, rows.size() * format::rowBytes()) << "none " << bytes[0];
  EXPECT_LT(bytes[1] * 2, bytes[0]) << "zstd " << bytes[1] << " vs none " << bytes[0];
}

// Pages of `path` in the page cache, and the file's pages.
std::pair<size_t, size_t> residentPages(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  const size_t size = fs::file_size(path);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t pages = (size + page - 1) / page;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(map, MAP_FAILED);
  std::vector<unsigned char> in(pages);
  EXPECT_EQ(::mincore(map, size, in.data()), 0);
  ::munmap(map, size);
  ::close(fd);
  return {static_cast<size_t>(
              std::count_if(in.begin(), in.end(), [](unsigned char c) { return (c & 1) != 0; })),
          pages};
}

// Once synced, written segment pages leave the page cache (the writer drops them): by flush()
// for the open segment, by the seal at a rotation for a complete one. The rows still read back.
TEST(store, SyncedSegmentsLeaveThePageCache) {
  test::TempDir dir("store");
  struct statfs fs_info {};
  ASSERT_EQ(::statfs(dir.path().c_str(), &fs_info), 0);
  if (fs_info.f_type == TMPFS_MAGIC || fs_info.f_type == RAMFS_MAGIC) {
    GTEST_SKIP() << "the store directory is on tmpfs: its pages are the data";
  }
  const auto rows = randomFlows(200000, 5);
  {  // flush(): no rotation (an hour), no periodic sync
    StoreOptions o = smallOptions(dir.path() / "flush");
    o.block_rows = 16384;
    o.flush_ms = 3'600'000;
    o.rotate_ms = 3'600'000;
    Writer w(o);
    w.append(rows);
    w.flush();
    auto open = files(o.path);
    ASSERT_EQ(open.size(), 1u);
    auto [resident, pages] = residentPages(open[0].path);
    EXPECT_GT(pages, 256u);
    EXPECT_LT(resident * 10, pages) << resident << " of " << pages << " pages cached after flush";
  }
  {  // the seal at a rotation (no flush, no periodic sync before it)
    StoreOptions o = smallOptions(dir.path() / "seal");
    o.block_rows = 16384;
    o.flush_ms = 3'600'000;
    o.rotate_ms = 1000;
    Writer w(o);
    w.append(rows);  // full blocks are written at once; the partial one waits
    // A block written after the segment's interval seals it first.
    std::vector<io::SegmentFile> now;
    for (int i = 0; i < 1000 && (now.empty() || !now[0].complete); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (i % 25 == 24) {
        w.append(std::span(rows).first(o.block_rows));
      }
      now = files(o.path);
    }
    ASSERT_TRUE(!now.empty() && now[0].complete);
    auto [resident, pages] = residentPages(now[0].path);
    EXPECT_GT(pages, 256u);
    EXPECT_LT(resident * 10, pages) << resident << " of " << pages << " pages cached after seal";
  }
  EXPECT_EQ(readAll((dir.path() / "flush").string()).size(), rows.size());
}

TEST(store, RotationMakesSeveralSegments) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  o.rotate_ms = 100;
  auto rows = randomFlows(3000, 11);
  {
    Writer w(o);
    for (size_t i = 0; i < 6; ++i) {
      w.append(std::span(rows).subspan(i * 500, 500));
      w.flush();
      std::this_thread::sleep_for(std::chrono::milliseconds(120));
    }
  }
  auto segs = Reader(o.path).segments();
  EXPECT_GE(segs.size(), 3u);
  std::set<std::string> names;
  for (const auto& s : segs) {
    EXPECT_TRUE(s.complete) << s.path;
    EXPECT_TRUE(s.error.empty()) << s.error;
    EXPECT_TRUE(fs::path(s.path).filename().string().starts_with("flows-")) << s.path;
    names.insert(s.path);
  }
  EXPECT_EQ(names.size(), segs.size());
  EXPECT_EQ(keys(readAll(o.path)), keys(rows));
}

// Four flushes with disjoint time ranges make four blocks; a window over one of them skips the
// other three without decompressing, and rows are trimmed to the window.
TEST(store, TimeWindowPrunesBlocksAndTrims) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  std::vector<FlowRecord> all;
  const uint64_t minute = 60'000'000'000ull;
  Writer w(o);
  for (uint64_t k = 0; k < 4; ++k) {
    auto rows = randomFlows(500, 100 + k, kBase + k * 10 * minute, minute);
    w.append(rows);
    w.flush();
    all.insert(all.end(), rows.begin(), rows.end());
  }
  auto check = [&](const char* what) {
    ScanRequest req;
    req.since_ns = kBase + 20 * minute;
    req.until_ns = kBase + 20 * minute + minute / 2;  // half of block 2
    std::vector<FlowRecord> want;
    for (const auto& r : all) {
      if (r.first_ns >= req.since_ns && r.first_ns < req.until_ns) {
        want.push_back(r);
      }
    }
    ScanStats st;
    auto got = readAll(o.path, req, &st);
    EXPECT_EQ(keys(got), keys(want)) << what;
    EXPECT_EQ(st.blocks, 1u) << what;
    EXPECT_EQ(st.blocks_skipped, 3u) << what;
    EXPECT_EQ(st.rows_scanned, want.size()) << what;
  };
  check("open segment");
  w.close();
  check("sealed segment");
  ScanRequest later;
  later.since_ns = kBase + 100 * minute;
  ScanStats st;
  EXPECT_TRUE(readAll(o.path, later, &st).empty());
  EXPECT_EQ(st.segments_skipped, 1u);
  EXPECT_EQ(st.blocks_skipped, 4u);
}

TEST(store, MayMatchPrunesBlocks) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  {
    Writer w(o);
    for (uint16_t port : {22, 80, 443, 8080}) {
      auto rows = randomFlows(300, port);
      for (auto& r : rows) {
        r.dst_port = port;
      }
      w.append(rows);
      w.flush();
    }
  }
  ScanRequest req;
  req.may_match = [](const BlockSummary& s) {
    return s[Column::dst_port].min <= 443 && s[Column::dst_port].max >= 443;
  };
  ScanStats st;
  auto got = readAll(o.path, req, &st);
  EXPECT_EQ(got.size(), 300u);
  for (const auto& r : got) {
    EXPECT_EQ(r.dst_port, 443);
  }
  EXPECT_EQ(st.blocks, 1u);
  EXPECT_EQ(st.blocks_skipped, 3u);
}

TEST(store, QueueFullDropsAndCounts) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  o.block_rows = 100;
  o.queue_bytes = 1;  // no full block ever fits
  Writer w(o);
  auto rows = randomFlows(1050, 3);
  w.append(rows);
  w.flush();
  auto s = w.stats();
  EXPECT_EQ(s.rows_dropped, 1000u);
  EXPECT_EQ(s.rows_written, 50u);  // the partial block is written by flush()
}

std::vector<std::string> makeSegments(const StoreOptions& o, int n) {
  Writer w(o);
  for (int i = 0; i < n; ++i) {
    w.append(randomFlows(400, static_cast<uint64_t>(i)));
    w.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(o.rotate_ms + 20));
  }
  w.close();
  std::vector<std::string> out;
  for (const auto& f : files(o.path)) {
    out.push_back(f.path);
  }
  return out;
}

TEST(store, RetentionBySizeDeletesOldestFirst) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  o.rotate_ms = 60;
  auto segs = makeSegments(o, 5);
  ASSERT_GE(segs.size(), 4u);
  uint64_t total = 0;
  for (const auto& f : files(o.path)) {
    total += f.size;
  }
  auto last2 = fs::file_size(segs[segs.size() - 1]) + fs::file_size(segs[segs.size() - 2]);
  auto r = enforceRetention(o.path, UINT64_MAX / 2000000, last2, 0);
  EXPECT_EQ(r.deleted.size(), segs.size() - 2);
  for (size_t i = 0; i + 2 < segs.size(); ++i) {
    EXPECT_FALSE(fs::exists(segs[i])) << segs[i];
  }
  EXPECT_TRUE(fs::exists(segs.back()));
  EXPECT_EQ(r.bytes_left, last2);
  EXPECT_EQ(r.bytes_freed, total - last2);
  EXPECT_EQ(Reader(o.path).segments().size(), 2u);
}

TEST(store, RetentionByAgeAndInsideWriter) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  o.rotate_ms = 60;
  auto segs = makeSegments(o, 3);
  ASSERT_GE(segs.size(), 3u);
  // Nothing is older than an hour.
  uint64_t now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
  EXPECT_TRUE(enforceRetention(o.path, 3600 * 1000, UINT64_MAX, now).deleted.empty());
  // Everything is older than 1 ms, an hour from now.
  auto r = enforceRetention(o.path, 1, UINT64_MAX, now + 3600'000'000'000ull);
  EXPECT_EQ(r.deleted.size(), segs.size());
  EXPECT_TRUE(files(o.path).empty());
  // The Writer enforces max_size by itself (on rotation and on request).
  o.max_size = 40000;
  Writer w(o);
  for (int i = 0; i < 6; ++i) {
    w.append(randomFlows(400, static_cast<uint64_t>(i)));
    w.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(80));
  }
  w.enforceRetentionNow();
  auto s = w.stats();
  EXPECT_GT(s.segments_deleted, 0u);
  EXPECT_LE(s.bytes_on_disk, o.max_size + 40000);  // + the open segment
}

// Four sealed blocks; one flipped byte inside block 1: that block is reported (file + offset),
// the other three come back, no row is wrong.
TEST(store, FlippedByteReportsBlockAndKeepsOthers) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  std::vector<std::vector<FlowRecord>> batches;
  {
    Writer w(o);
    for (int k = 0; k < 4; ++k) {
      batches.push_back(randomFlows(500, 50 + static_cast<uint64_t>(k)));
      w.append(batches.back());
      w.flush();
    }
  }
  auto seg = files(o.path).at(0).path;
  auto footer = footerOf(seg);
  ASSERT_EQ(footer.blocks.size(), 4u);
  // Which batch is in block 1? Match by row count and time range.
  const auto& b1 = footer.blocks[1];
  flipByte(seg, b1.offset + b1.length / 2);
  ScanStats st;
  auto got = readAll(o.path, {}, &st);
  EXPECT_EQ(st.corrupt_blocks, 1u);
  ASSERT_EQ(st.errors.size(), 1u);
  EXPECT_NE(st.errors[0].find(seg), std::string::npos) << st.errors[0];
  EXPECT_NE(st.errors[0].find("offset " + std::to_string(b1.offset)), std::string::npos)
      << st.errors[0];
  EXPECT_EQ(got.size(), 1500u);
  std::vector<FlowRecord> all;
  for (const auto& b : batches) {
    all.insert(all.end(), b.begin(), b.end());
  }
  auto all_keys = keys(all);
  for (const auto& k : keys(got)) {
    EXPECT_TRUE(std::binary_search(all_keys.begin(), all_keys.end(), k));
  }
}

TEST(store, TruncatedSegmentReportsAndSalvagesPrefix) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  std::vector<FlowRecord> all;
  {
    Writer w(o);
    for (int k = 0; k < 3; ++k) {
      auto rows = randomFlows(500, 70 + static_cast<uint64_t>(k));
      w.append(rows);
      w.flush();
      all.insert(all.end(), rows.begin(), rows.end());
    }
  }
  auto seg = files(o.path).at(0).path;
  auto footer = footerOf(seg);
  ASSERT_EQ(footer.blocks.size(), 3u);
  fs::resize_file(seg, footer.blocks[2].offset + 100);  // cut inside block 2
  ScanStats st;
  auto got = readAll(o.path, {}, &st);
  EXPECT_EQ(st.corrupt_segments, 1u);
  ASSERT_FALSE(st.errors.empty());
  EXPECT_NE(st.errors[0].find(seg), std::string::npos) << st.errors[0];
  EXPECT_EQ(got.size(), 1000u);
  auto all_keys = keys(all);
  for (const auto& k : keys(got)) {
    EXPECT_TRUE(std::binary_search(all_keys.begin(), all_keys.end(), k));
  }
  // A garbage file with the segment suffix is reported and does not stop the scan.
  std::ofstream(dir.path() / "flows-garbage.ncseg") << std::string(500, 'x');
  got = readAll(o.path, {}, &st);
  EXPECT_EQ(got.size(), 1000u);
  EXPECT_EQ(st.corrupt_segments, 2u);
}

// A crash leaves `flows-*.ncseg.open` with its last block half written. Readers return the
// complete blocks; the next Writer seals it with exactly those blocks.
TEST(store, CrashRecoveryOfOpenSegment) {
  test::TempDir dir("store");
  StoreOptions o = smallOptions(dir.path());
  std::vector<FlowRecord> kept;
  std::string open_copy = (dir.path() / "copy").string();
  std::string open_name;
  {
    Writer w(o);
    for (int k = 0; k < 3; ++k) {
      auto rows = randomFlows(400, 90 + static_cast<uint64_t>(k));
      w.append(rows);
      w.flush();
      if (k < 2) {
        kept.insert(kept.end(), rows.begin(), rows.end());
      }
    }
    auto f = files(o.path);
    ASSERT_EQ(f.size(), 1u);
    ASSERT_FALSE(f[0].complete);
    open_name = f[0].path;
    fs::copy_file(open_name, open_copy);
  }
  for (const auto& f : files(o.path)) {
    fs::remove(f.path);
  }
  // Cut the copy in the middle of its last block, as a crash would.
  int fd = ::open(open_copy.c_str(), O_RDONLY);
  auto scan = io::scanSequential(fd, fs::file_size(open_copy));
  ::close(fd);
  ASSERT_EQ(scan.blocks.size(), 3u);
  fs::resize_file(open_copy, scan.blocks[2].offset + scan.blocks[2].length / 2);
  fs::rename(open_copy, open_name);

  ScanStats st;
  EXPECT_EQ(keys(readAll(o.path, {}, &st)), keys(kept)) << "reader, before recovery";
  EXPECT_TRUE(st.errors.empty()) << "a torn tail of an .open segment is not an error";
  {
    Writer w(o);
    EXPECT_EQ(w.stats().segments_recovered, 1u);
  }
  auto segs = Reader(o.path).segments();
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_TRUE(segs[0].complete);
  EXPECT_EQ(segs[0].rows, kept.size());
  EXPECT_EQ(keys(readAll(o.path, {}, &st)), keys(kept)) << "reader, after recovery";
  EXPECT_TRUE(st.errors.empty());
}

// Frames of a type this reader does not know are skipped and counted, not fatal.
TEST(store, UnknownBlockTypeIsSkipped) {
  test::TempDir dir("store");
  auto rows = randomFlows(100, 5);
  format::FileHeader h;
  h.column_count = kColumnCount;
  auto bytes = format::encodeHeader(h);
  std::vector<uint8_t> unknown(format::kFrameHeaderSize + 8 + 4, 0);
  uint32_t magic = format::kFrameMagic;
  uint16_t type = 99;
  uint16_t version = 1;
  auto len = static_cast<uint32_t>(unknown.size());
  std::memcpy(unknown.data(), &magic, 4);
  std::memcpy(unknown.data() + 4, &type, 2);
  std::memcpy(unknown.data() + 6, &version, 2);
  std::memcpy(unknown.data() + 8, &len, 4);
  uint32_t crc = format::crc32c(unknown.data(), unknown.size() - 4);
  std::memcpy(unknown.data() + unknown.size() - 4, &crc, 4);
  FlowColumns c;
  c.append(rows);
  format::sortByFirstNs(c);
  std::vector<uint8_t> block;
  format::BlockEncoder(StoreOptions::Compression::kZstd, 3).encode(c, block);
  bytes.insert(bytes.end(), unknown.begin(), unknown.end());
  bytes.insert(bytes.end(), block.begin(), block.end());
  std::ofstream(dir.path() / "flows-20270101T000000.000Z.ncseg.open", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  ScanStats st;
  EXPECT_EQ(keys(readAll(dir.path().string(), {}, &st)), keys(rows));
  EXPECT_EQ(st.unknown_blocks, 1u);
  EXPECT_TRUE(st.errors.empty());
}

TEST(store, SecondWriterOnSameDirectoryIsRefused) {
  test::TempDir dir("store");
  Writer w(smallOptions(dir.path()));
  EXPECT_THROW(Writer(smallOptions(dir.path())), std::runtime_error);
}

}  // namespace
}  // namespace nc::store
