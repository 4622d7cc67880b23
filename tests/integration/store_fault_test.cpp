// Flow store under faults, with the real daemon (net-collectord) fed by `net-collector gen`:
//   (a) SIGKILL during writes, ten times on the same store: every row read back is valid, none is
//       invented, and rows on disk for ~2 s before the kill are all there;
//   (b) a 2 MiB tmpfs filled to the brim: the daemon keeps running, status reports the error and
//       the drops, stored data stays intact, and writing resumes by itself once space is freed;
//   (c) a flipped byte in a sealed segment: the Reader reports the block and returns the rest.
// The daemon is started here rather than with tests/support/daemon.hpp because DaemonProcess
// writes its own `store: {path: ...}` line and the config loader rejects a second `store` key.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "collector/store/format.hpp"
#include "collector/store/segment_io.hpp"
#include "collector/store/store.hpp"
#include "tests/support/support.hpp"

namespace nc::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// net-collectord with a config written here; SIGKILLed by the destructor if still running.
class Collectord {
 public:
  Collectord(const fs::path& dir, const fs::path& store, const std::string& rotate = "1s")
      : dir_(dir) {
    std::ofstream(dir / "nc.yaml")
        << "collector: {listen: [\"127.0.0.1:0\"], templates: " << (dir / "templates.bin").string()
        << "}\n"
        << "store: {path: " << store.string() << ", rotate: " << rotate
        << "}\novsdb: {enabled: false}\ncontrol: {socket: " << socket()
        << "}\nlog: {level: info}\n";
    fs::remove(socket());
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open((dir / "stderr.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 2);
      std::string bin = (binDir() / "net-collectord").string();
      std::string cfg = (dir / "nc.yaml").string();
      ::execl(bin.c_str(), bin.c_str(), "--config", cfg.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 400 && !fs::exists(socket()); ++i) {
      std::this_thread::sleep_for(25ms);
    }
    if (!fs::exists(socket())) {
      throw std::runtime_error("net-collectord did not start:\n" + log());
    }
  }
  ~Collectord() {
    if (pid_ > 0) {
      kill9();
    }
  }
  std::string socket() const { return (dir_ / "control.sock").string(); }
  nlohmann::json status() const {
    auto r = run({(binDir() / "net-collector").string(), "--socket", socket(), "status", "--json"});
    if (r.exit_code != 0) {
      throw std::runtime_error("status failed: " + r.err);
    }
    return nlohmann::json::parse(r.out);
  }
  uint16_t port() const { return status()["listen"][0]["port"].get<uint16_t>(); }
  void kill9() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int stop() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  bool alive() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }
  std::string log() const {
    std::ifstream in(dir_ / "stderr.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
};

// Sends NetFlow v5 flows with `net-collector gen`; returns the records sent.
uint64_t gen(uint16_t port, const std::vector<std::string>& limits, uint64_t seed) {
  std::vector<std::string> argv = {(binDir() / "net-collector").string(),
                                   "gen",
                                   "-t",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--json",
                                   "-q",
                                   "--seed",
                                   std::to_string(seed)};
  argv.insert(argv.end(), limits.begin(), limits.end());
  auto r = run(argv, "", 60);
  if (r.exit_code != 0) {
    return 0;
  }
  return nlohmann::json::parse(r.out).value("records", uint64_t{0});
}

// What gen's defaults can produce (v5: IPv4 only).
bool validRow(const FlowRecord& r, std::string& why) {
  static const uint64_t lo =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                (std::chrono::system_clock::now() - 24h).time_since_epoch())
                                .count());
  const uint64_t hi = lo + 48ull * 3600 * 1000000000ull;
  if (!r.src_addr.isV4() || (r.src_addr.v4() >> 16) != 0x0a00) {
    why = "src " + r.src_addr.toString();
  } else if (!r.dst_addr.isV4() || (r.dst_addr.v4() >> 16) != 0xc0a8) {
    why = "dst " + r.dst_addr.toString();
  } else if (r.proto != 6 && r.proto != 17 && r.proto != 1) {
    why = "proto " + std::to_string(r.proto);
  } else if (r.packets < 1 || r.packets > 100) {
    why = "packets " + std::to_string(r.packets);
  } else if (r.flow_proto != FlowProto::kNetflowV5) {
    why = "flow_proto";
  } else if (r.first_ns < lo || r.first_ns > hi || r.last_ns < r.first_ns) {
    why = "times";
  } else {
    return true;
  }
  return false;
}

struct ReadBack {
  uint64_t rows = 0;
  uint64_t invalid = 0;
  std::string first_invalid;
  store::ScanStats stats;
};

ReadBack readBack(const fs::path& store) {
  ReadBack rb;
  std::mutex mu;
  rb.stats = store::Reader(store.string()).scan({}, [&](const FlowColumns& c, unsigned) {
    std::lock_guard lk(mu);
    for (size_t i = 0; i < c.size(); ++i) {
      std::string why;
      if (!validRow(c.row(i), why)) {
        if (rb.invalid++ == 0) {
          rb.first_invalid = why;
        }
      }
    }
    rb.rows += c.size();
  });
  return rb;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += s + "\n";
  }
  return out;
}

// Polls status until pred(status["store"]) or timeout.
template <typename Pred>
nlohmann::json waitStore(const Collectord& d, Pred pred, std::chrono::seconds timeout = 15s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  nlohmann::json s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = d.status();
    s = st["store"];
    s["_ingest_records"] = st["ingest"]["records"];
    if (pred(s)) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  return s;
}

TEST(storeFault, SigkillDuringWritesTenTimes) {
  TempDir dir("storekill");
  const fs::path store = dir.path() / "flows";
  std::mt19937 rng(42);
  uint64_t sent_total = 0;
  uint64_t on_disk_before = 0;  // rows a Reader returned after the previous kill
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Collectord d(dir.path(), store);
    const uint16_t port = d.port();
    // A: sent, decoded, and then on disk for more than 2 s before the kill.
    uint64_t a = gen(port, {"--records", "3000", "--rate", "2000"}, 100 + round);
    sent_total += a;
    auto s = waitStore(d, [](const auto& st) {
      return st["rows_written"].template get<uint64_t>() >=
             st["_ingest_records"].template get<uint64_t>();
    });
    const uint64_t flushed = s["rows_written"].get<uint64_t>();
    ASSERT_GT(flushed, 0u) << d.log();
    std::this_thread::sleep_for(2100ms);
    // B: still being sent and written when the daemon is killed.
    uint64_t b = 0;
    std::thread sender([&] { b = gen(port, {"--duration", "2s", "--rate", "1000"}, 200 + round); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1200));
    d.kill9();
    sender.join();
    sent_total += b;

    auto rb = readBack(store);
    EXPECT_EQ(rb.invalid, 0u) << rb.first_invalid;
    EXPECT_EQ(rb.stats.corrupt_blocks, 0u) << joined(rb.stats.errors);
    EXPECT_EQ(rb.stats.corrupt_segments, 0u) << joined(rb.stats.errors);
    EXPECT_LE(rb.rows, sent_total);
    EXPECT_GE(rb.rows, on_disk_before + flushed) << "rows flushed 2 s before the kill are missing";
    on_disk_before = rb.rows;
  }
  // The next start seals what the last kill left open; nothing is lost doing so.
  {
    Collectord d(dir.path(), store);
    EXPECT_EQ(d.status()["store"]["segments_recovered"].get<uint64_t>(), 1u) << d.log();
    EXPECT_EQ(d.stop(), 0) << d.log();
  }
  auto rb = readBack(store);
  EXPECT_EQ(rb.rows, on_disk_before);
  EXPECT_EQ(rb.invalid, 0u);
  for (const auto& seg : store::Reader(store.string()).segments()) {
    EXPECT_TRUE(seg.complete) << seg.path;
    EXPECT_TRUE(seg.error.empty()) << seg.path << ": " << seg.error;
  }
}

// Mounts a tmpfs of `size` on a fresh directory; unmounts (lazily if busy) when destroyed.
class Tmpfs {
 public:
  Tmpfs(const fs::path& at, const std::string& size) : at_(at) {
    fs::create_directories(at);
    std::string opts = "size=" + size;
    ok_ = ::mount("tmpfs", at.c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~Tmpfs() {
    if (ok_ && ::umount2(at_.c_str(), 0) != 0) {
      ::umount2(at_.c_str(), MNT_DETACH);
    }
  }
  bool ok() const { return ok_; }

 private:
  fs::path at_;
  bool ok_ = false;
};

// Writes 16 KiB chunks, then ever smaller ones, until the file system says ENOSPC.
void fillToTheBrim(const fs::path& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  std::vector<char> chunk(16384, 'f');
  for (size_t n = chunk.size(); n > 0; n /= 2) {
    while (::write(fd, chunk.data(), n) == static_cast<ssize_t>(n)) {
    }
  }
  ::close(fd);
}

TEST(storeFault, DiskFullKeepsRunningAndResumes) {
  NC_REQUIRE_ROOT();
  TempDir dir("storefull");
  const fs::path store = dir.path() / "tmpfs";
  Tmpfs mnt(store, "2m");  // destroyed after the daemon
  ASSERT_TRUE(mnt.ok()) << "mount -t tmpfs failed: " << std::strerror(errno);
  Collectord d(dir.path(), store);
  const uint16_t port = d.port();

  gen(port, {"--records", "3000", "--rate", "2000"}, 1);
  auto s = waitStore(d, [](const auto& st) {
    return st["rows_written"].template get<uint64_t>() >=
               st["_ingest_records"].template get<uint64_t>() &&
           st["rows_written"].template get<uint64_t>() > 0;
  });
  const uint64_t before = s["rows_written"].get<uint64_t>();
  ASSERT_GT(before, 0u) << d.log();
  ASSERT_EQ(s["errors"].get<uint64_t>(), 0u);

  fillToTheBrim(store / "filler");
  std::thread sender([&] { gen(port, {"--duration", "4s", "--rate", "300"}, 2); });
  s = waitStore(d, [](const auto& st) {
    return st["errors"].template get<uint64_t>() > 0 && st["drops"].template get<uint64_t>() > 0;
  });
  sender.join();
  EXPECT_GT(s["errors"].get<uint64_t>(), 0u) << s.dump();
  EXPECT_GT(s["drops"].get<uint64_t>(), 0u) << s.dump();
  EXPECT_NE(s["last_error"].get<std::string>().find("No space"), std::string::npos) << s.dump();
  EXPECT_TRUE(d.alive());
  EXPECT_NE(d.log().find("No space left on device"), std::string::npos) << d.log();

  auto rb = readBack(store);
  EXPECT_GE(rb.rows, before) << "data stored before the disk filled up";
  EXPECT_EQ(rb.invalid, 0u) << rb.first_invalid;
  EXPECT_EQ(rb.stats.corrupt_blocks, 0u) << joined(rb.stats.errors);
  EXPECT_EQ(rb.stats.corrupt_segments, 0u) << joined(rb.stats.errors);

  // Free the space: the writer picks up again on its own.
  fs::remove(store / "filler");
  const uint64_t written_full = d.status()["store"]["rows_written"].get<uint64_t>();
  gen(port, {"--records", "3000", "--rate", "2000"}, 3);
  s = waitStore(d, [&](const auto& st) {
    return st["rows_written"].template get<uint64_t>() >= written_full + 3000 &&
           !st["error_now"].template get<bool>();
  });
  EXPECT_GE(s["rows_written"].get<uint64_t>(), written_full + 3000) << s.dump() << d.log();
  EXPECT_FALSE(s["error_now"].get<bool>()) << s.dump();
  EXPECT_EQ(d.stop(), 0) << d.log();
  rb = readBack(store);
  EXPECT_GE(rb.rows, before + 3000);
  EXPECT_EQ(rb.invalid, 0u) << rb.first_invalid;
  EXPECT_EQ(rb.stats.corrupt_blocks, 0u) << joined(rb.stats.errors);
}

TEST(storeFault, FlippedByteIsReportedAndSkipped) {
  TempDir dir("storeflip");
  const fs::path store = dir.path() / "flows";
  uint64_t stored = 0;
  {
    Collectord d(dir.path(), store, "1h");
    const uint16_t port = d.port();
    for (int k = 0; k < 3; ++k) {
      gen(port, {"--records", "2000", "--rate", "2000"}, 10 + k);
      std::this_thread::sleep_for(1500ms);  // one flush per batch: several blocks
    }
    ASSERT_EQ(d.stop(), 0) << d.log();
    stored = readBack(store).rows;
  }
  // Usually one segment; two when the run crossed the hour the segments rotate at. The byte is
  // flipped in the segment with the most blocks.
  auto segs = store::io::listSegmentFiles(store.string());
  ASSERT_GE(segs.size(), 1u);
  ASSERT_LE(segs.size(), 2u);
  store::format::Footer footer;
  size_t at = 0;
  size_t blocks = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    ASSERT_TRUE(segs[i].complete);
    int fd = ::open(segs[i].path.c_str(), O_RDONLY);
    store::format::Footer f;
    uint64_t fo = 0;
    uint64_t br = 0;
    std::string why;
    ASSERT_TRUE(store::io::readFooter(fd, segs[i].size, f, fo, br, &why)) << why;
    ::close(fd);
    blocks += f.blocks.size();
    if (f.blocks.size() > footer.blocks.size()) {
      footer = f;
      at = i;
    }
  }
  ASSERT_GE(blocks, 2u);
  ASSERT_GE(footer.blocks.size(), 1u);
  const auto& victim = footer.blocks[0];
  {
    std::fstream f(segs[at].path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(victim.offset + victim.length / 2));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(static_cast<std::streamoff>(victim.offset + victim.length / 2));
    f.write(&c, 1);
  }
  auto rb = readBack(store);
  EXPECT_EQ(rb.stats.corrupt_blocks, 1u);
  ASSERT_EQ(rb.stats.errors.size(), 1u);
  EXPECT_NE(rb.stats.errors[0].find(segs[at].path), std::string::npos) << rb.stats.errors[0];
  EXPECT_NE(rb.stats.errors[0].find("checksum"), std::string::npos) << rb.stats.errors[0];
  EXPECT_EQ(rb.rows, stored - victim.summary.rows);
  EXPECT_EQ(rb.invalid, 0u) << rb.first_invalid;
}

}  // namespace
}  // namespace nc::test
