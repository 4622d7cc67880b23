// The Profiler end to end with real RRD files, without timers: flows go through a ProfileShard,
// the test drives Profiler::tick() with its own clock (the io_context never runs; start() only
// starts the writer and back-fill threads) and reads the files back with rrd_fetch (rrd.hpp) and,
// when present, with the `rrdtool fetch` program (Debian package rrdtool; required under CI=true).
// Each test prints its figures with the prefix "[profiler]".
#include "collector/profile/profiler.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "collector/profile/rrd.hpp"
#include "collector/record/fields.hpp"
#include "collector/record/names.hpp"
#include "collector/store/store.hpp"
#include "tests/support/support.hpp"

namespace nc::profile {
namespace {

namespace fs = std::filesystem;
using Rates = std::array<double, 15>;

std::string timeText(uint64_t ns) {
  return formatTime(ns);
}

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kStep = 10 * kSec;
constexpr uint64_t kT0 = 1'800'000'000 * kSec;  // a step boundary (2027-01-15)
constexpr int64_t kS0 = static_cast<int64_t>(kT0 / kStep);

FlowRecord flow(uint8_t proto, uint16_t dport, uint64_t first, uint64_t last, uint64_t bytes,
                uint64_t packets, uint32_t sampling = 1) {
  FlowRecord r;
  r.proto = proto;
  r.dst_port = dport;
  r.src_port = 40000;
  r.first_ns = first;
  r.last_ns = last;
  r.received_ns = last + 500 * kMs;
  r.bytes = bytes;
  r.packets = packets;
  r.sampling_rate = sampling;
  r.ip_version = 4;
  r.src_addr = IpAddr::fromV4(0x0a000001);
  r.dst_addr = IpAddr::fromV4(0x0a000002);
  r.exporter = IpAddr::fromV4(0xc0000201);  // 192.0.2.1
  return r;
}

ChannelDef channel(std::string name, std::string filter, std::vector<std::string> sources = {},
                   char sign = '+') {
  ChannelDef c;
  c.name = std::move(name);
  c.filter = std::move(filter);
  c.sources = std::move(sources);
  c.sign = sign;
  return c;
}

// One profiler with one receive shard, driven by the test's clock.
struct Harness {
  explicit Harness(const std::string& tag, std::string store = "")
      : dir(tag), opts(options(dir.path(), std::move(store))) {
    prof = std::make_unique<Profiler>(io, opts);
    shard = prof->makeShard();
  }
  ~Harness() { prof->stop(); }
  static ProfilerOptions options(const fs::path& dir, std::string store) {
    ProfilerOptions o;
    o.dir = (dir / "profiles").string();
    o.store_path = std::move(store);
    o.backfill_window_steps = 25;  // several windows in the back-fill tests
    return o;
  }
  void open(const std::vector<ProfileDef>& defs, uint64_t now) {
    for (const auto& m : prof->open(defs, now)) {
      ADD_FAILURE() << m;
    }
    prof->start();
  }
  void feed(const std::vector<FlowRecord>& rs) {
    sink::Batch b;
    b.records = rs;
    shard->onBatch(b);
  }
  // Hands over, ticks, and lets the writer and back-fill threads finish what the tick started;
  // repeats until nothing moves any more (back-fill windows and their writes take several).
  void tickAt(uint64_t now) {
    shard->flush();
    nlohmann::json before;
    int same = 0;
    for (int i = 0; i < 500 && same < 2; ++i) {
      prof->tick(now);
      ASSERT_TRUE(prof->waitIdle(60'000));
      auto st = prof->status();
      nlohmann::json key = {st["steps_written"], st["backfilling_channels"], st["open_steps"]};
      same = key == before ? same + 1 : 0;
      before = std::move(key);
    }
  }
  std::string path(const std::string& p, const std::string& c) const { return prof->rrdPath(p, c); }
  test::TempDir dir;
  ProfilerOptions opts;
  boost::asio::io_context io;
  std::unique_ptr<Profiler> prof;
  std::unique_ptr<ProfileShard> shard;
};

// step -> the 15 rates, for steps [from, to] of `path` (NaN = unknown).
std::map<int64_t, Rates> fetchSteps(const std::string& path, int64_t from, int64_t to) {
  rrd::Series s;
  std::string why;
  std::map<int64_t, Rates> out;
  const auto start = static_cast<std::time_t>(static_cast<uint64_t>(from) * kStep / kSec);
  const auto end = static_cast<std::time_t>(static_cast<uint64_t>(to + 1) * kStep / kSec);
  if (!rrd::fetch(path, "AVERAGE", start, end, 10, s, &why)) {
    ADD_FAILURE() << why;
    return out;
  }
  EXPECT_EQ(s.step, 10u);
  EXPECT_EQ(s.names.size(), 15u);
  for (size_t r = 0; r < s.rows(); ++r) {
    const int64_t end_s = s.start + static_cast<int64_t>((r + 1) * s.step);
    const int64_t step = end_s / 10 - 1;
    if (step < from || step > to) {
      continue;
    }
    Rates v{};
    for (size_t k = 0; k < 15; ++k) {
      v[k] = s.at(r, k);
    }
    out[step] = v;
  }
  return out;
}

bool near(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b);
  }
  return std::fabs(a - b) <= 1e-9 * std::max(1.0, std::fabs(a));
}

void expectRates(const Rates& got, const Rates& want, const std::string& what) {
  for (size_t k = 0; k < 15; ++k) {
    EXPECT_TRUE(near(got[k], want[k]))
        << what << " " << kDataSources[k] << ": got " << got[k] << ", want " << want[k];
  }
}

// Rates of one step from totals: {flows, packets, bytes} per class tcp, udp, icmp, other.
Rates rates(std::array<double, 4> flows, std::array<double, 4> packets,
            std::array<double, 4> bytes) {
  StepValues v;
  for (size_t c = 0; c < 4; ++c) {
    v.v[c] = flows[c];
    v.v[4 + c] = packets[c];
    v.v[8 + c] = bytes[c];
  }
  return v.rates(10);
}

// The arithmetic scenario: five channels over flows of every protocol class, with sampling.
ProfileDef arithmeticProfile() {
  ProfileDef d;
  d.name = "t";
  d.start_ns = kT0;
  d.channels = {channel("all", "any"), channel("tcp", "proto tcp"),
                channel("web", "port 80 or port 443", {}, '-'),
                channel("exp", "any", {"192.0.2.1"}), channel("brx", "any", {"br-x"})};
  return d;
}

std::vector<FlowRecord> arithmeticFlows() {
  std::vector<FlowRecord> rs = {
      flow(6, 80, kT0 + 1 * kSec, kT0 + 2 * kSec, 1000, 10),       // tcp, step 0
      flow(17, 53, kT0 + 3 * kSec, kT0 + 3 * kSec, 100, 1, 100),   // udp, 1 in 100
      flow(1, 0, kT0 + 4 * kSec, kT0 + 4 * kSec, 84, 1, 64),       // icmp, scaled already
      flow(47, 0, kT0 + 5 * kSec, kT0 + 5 * kSec, 500, 5),         // gre: other
      flow(6, 443, kT0 + 5 * kSec, kT0 + 15 * kSec, 2000, 20, 2),  // tcp x2, half/half
  };
  rs[2].flags = FlowRecord::kFlagScaledByExporter;
  rs[1].exporter = IpAddr::fromV4(0xc0000202);
  rs[1].bridge = internName("br-x");
  rs[3].bridge = internName("br-y");
  return rs;
}

// What each channel of arithmeticProfile() holds for steps 0 and 1.
std::map<std::string, std::array<Rates, 2>> arithmeticExpected() {
  std::map<std::string, std::array<Rates, 2>> e;
  e["all"] = {rates({1 + 1, 100, 1, 1}, {10 + 20, 100, 1, 5}, {1000 + 2000, 10000, 84, 500}),
              rates({1, 0, 0, 0}, {20, 0, 0, 0}, {2000, 0, 0, 0})};
  e["tcp"] = {rates({2, 0, 0, 0}, {30, 0, 0, 0}, {3000, 0, 0, 0}),
              rates({1, 0, 0, 0}, {20, 0, 0, 0}, {2000, 0, 0, 0})};
  e["web"] = e["tcp"];
  // exporter 192.0.2.1: all but the udp flow
  e["exp"] = {rates({2, 0, 1, 1}, {30, 0, 1, 5}, {3000, 0, 84, 500}),
              rates({1, 0, 0, 0}, {20, 0, 0, 0}, {2000, 0, 0, 0})};
  e["brx"] = {rates({0, 100, 0, 0}, {0, 100, 0, 0}, {0, 10000, 0, 0}), rates({}, {}, {})};
  return e;
}

TEST(Profiler, LiveStepsHoldExactlyTheChannelsFlows) {
  Harness h("profiler-arith");
  h.open({arithmeticProfile()}, kT0);
  h.feed(arithmeticFlows());
  h.tickAt(kT0 + 29 * kSec);  // steps 0 and 1 end at 10 s and 20 s; due 8 s later
  const auto want = arithmeticExpected();
  for (const auto& [name, steps] : want) {
    auto got = fetchSteps(h.path("t", name), kS0, kS0 + 1);
    ASSERT_EQ(got.size(), 2u) << name;
    expectRates(got[kS0], steps[0], name + " step 0");
    expectRates(got[kS0 + 1], steps[1], name + " step 1");
  }
  // Step 2 is not due before 38 s.
  EXPECT_TRUE(std::isnan(fetchSteps(h.path("t", "all"), kS0 + 2, kS0 + 2)[kS0 + 2][0]));
  const auto st = h.prof->status();
  std::printf("[profiler] status: %s\n", st.dump().c_str());
  EXPECT_EQ(st["late"]["flows"], 0);
  EXPECT_EQ(st["write_errors"], 0);
  EXPECT_EQ(st["distinct_filters"], 3);  // "any" is shared by three channels
}

TEST(Profiler, RrdtoolFetchAgrees) {
  NC_REQUIRE_TOOL("rrdtool");
  Harness h("profiler-rrdtool");
  h.open({arithmeticProfile()}, kT0);
  h.feed(arithmeticFlows());
  h.tickAt(kT0 + 29 * kSec);
  for (const auto& [name, steps] : arithmeticExpected()) {
    const auto res = test::run({"rrdtool", "fetch", h.path("t", name), "AVERAGE", "-r", "10", "-s",
                                std::to_string(kT0 / kSec), "-e", std::to_string(kT0 / kSec + 20)});
    ASSERT_EQ(res.exit_code, 0) << res.err;
    std::istringstream in(res.out);
    std::string line;
    std::getline(in, line);  // header: the data source names
    std::istringstream header(line);
    std::vector<std::string> names;
    for (std::string n; header >> n;) {
      names.push_back(n);
    }
    ASSERT_EQ(names.size(), 15u) << res.out;
    for (size_t k = 0; k < 15; ++k) {
      EXPECT_EQ(names[k], kDataSources[k]);
    }
    int rows = 0;
    while (std::getline(in, line)) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) {
        continue;
      }
      const int64_t t = std::stoll(line.substr(0, colon));
      const int64_t step = t / 10 - 1;
      if (step != kS0 && step != kS0 + 1) {
        continue;
      }
      std::istringstream vals(line.substr(colon + 1));
      Rates got{};
      for (size_t k = 0; k < 15; ++k) {
        std::string v;
        vals >> v;
        got[k] = std::strtod(v.c_str(), nullptr);
      }
      // rrdtool prints 10 significant digits.
      for (size_t k = 0; k < 15; ++k) {
        const double w = steps[step - kS0][k];
        EXPECT_LE(std::fabs(got[k] - w), 1e-9 * std::max(1.0, std::fabs(w)) + 1e-10 * w)
            << name << " " << kDataSources[k] << " step " << step - kS0;
      }
      ++rows;
    }
    EXPECT_EQ(rows, 2) << res.out;
  }
}

TEST(Profiler, LateFlowsLandInTheirStepWhileOpenElseInTheOldestOpenOne) {
  Harness h("profiler-late");
  ProfileDef d;
  d.name = "late";
  d.start_ns = kT0;
  d.channels = {channel("all", "any")};
  h.open({d}, kT0);
  h.feed({flow(6, 22, kT0 + kSec, kT0 + kSec, 100, 1)});
  h.tickAt(kT0 + 19 * kSec);  // step 0 written at 18 s
  // Still open: step 1 is written at 28 s; this flow of step 1 arrives at 27 s.
  FlowRecord in_time = flow(6, 22, kT0 + 12 * kSec, kT0 + 12 * kSec, 200, 2);
  in_time.received_ns = kT0 + 27 * kSec;
  // Too late: its step 0 is on disk. It joins the oldest step not written (1) and is counted.
  FlowRecord late = flow(17, 53, kT0 + 2 * kSec, kT0 + 2 * kSec, 400, 4, 10);
  late.received_ns = kT0 + 27 * kSec;
  h.feed({in_time, late});
  h.tickAt(kT0 + 29 * kSec);
  auto got = fetchSteps(h.path("late", "all"), kS0, kS0 + 1);
  expectRates(got[kS0], rates({1, 0, 0, 0}, {1, 0, 0, 0}, {100, 0, 0, 0}), "step 0");
  expectRates(got[kS0 + 1], rates({1, 10, 0, 0}, {2, 40, 0, 0}, {200, 4000, 0, 0}), "step 1");
  const auto st = h.prof->status();
  EXPECT_EQ(st["late"]["flows"], 10);  // sampling-corrected, like the counts
  EXPECT_EQ(st["late"]["bytes"], 4000);
  const auto l = h.prof->list("late");
  EXPECT_EQ(l[0]["channels"][0]["late_flows"], 10.0);
  std::printf("[profiler] after a late flow: %s\n", st["late"].dump().c_str());
}

// Flows for back-fill equality: random protocols, ports, sampling, spans of up to 5 s (so none is
// late for the live path: each arrives 0.5 s after its end, before its steps are written),
// received in order over 10 minutes.
std::vector<FlowRecord> randomFlows(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const uint32_t bridges[] = {internName("br-a"), internName("br-b"), 0};
  const uint8_t protos[] = {6, 6, 17, 1, 47};
  const uint16_t ports[] = {22, 53, 80, 443, 123, 8080};
  std::vector<FlowRecord> out;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t first = kT0 + rng() % (600 * kSec);
    const uint64_t last = first + rng() % (5 * kSec);
    FlowRecord r = flow(protos[rng() % 5], ports[rng() % 6], first, last, 40 + rng() % 100000,
                        1 + rng() % 100, rng() % 3 == 0 ? 64 : 1);
    if (rng() % 7 == 0) {
      r.flags = FlowRecord::kFlagScaledByExporter;
    }
    r.src_port = ports[rng() % 6];
    r.bridge = bridges[rng() % 3];
    r.exporter = IpAddr::fromV4(0xc0000201 + static_cast<uint32_t>(rng() % 2));
    out.push_back(r);
  }
  std::sort(out.begin(), out.end(),
            [](const FlowRecord& a, const FlowRecord& b) { return a.received_ns < b.received_ns; });
  return out;
}

std::vector<ChannelDef> equalityChannels() {
  return {channel("web", "port 80 or port 443"), channel("udp", "proto udp"),
          channel("bra", "any", {"br-a"}), channel("ssh", "port 22", {}, '-'),
          channel("exp", "not proto tcp", {"192.0.2.2"})};
}

// Feeds `flows` in batches of 256, ticking at each batch's last receive time; `at_mid` runs once
// when the receive times pass `mid`.
void feedLive(Harness& h, const std::vector<FlowRecord>& flows, uint64_t mid,
              const std::function<void()>& at_mid) {
  bool done_mid = false;
  std::vector<FlowRecord> batch;
  auto push = [&] {
    if (!batch.empty()) {
      h.feed(batch);
      h.tickAt(batch.back().received_ns);
      batch.clear();
    }
  };
  for (const FlowRecord& r : flows) {
    if (!done_mid && r.received_ns >= mid) {
      push();
      at_mid();
      done_mid = true;
    }
    batch.push_back(r);
    if (batch.size() == 256) {
      push();
    }
  }
  push();
}

void expectSameFiles(const std::string& a, const std::string& b, int64_t from, int64_t to,
                     const std::string& what) {
  auto x = fetchSteps(a, from, to);
  auto y = fetchSteps(b, from, to);
  ASSERT_EQ(x.size(), static_cast<size_t>(to - from + 1)) << what;
  ASSERT_EQ(y.size(), x.size()) << what;
  int differing = 0;
  double total = 0;
  for (int64_t s = from; s <= to; ++s) {
    for (size_t k = 0; k < 15; ++k) {
      if (!near(x[s][k], y[s][k]) && differing++ < 5) {
        ADD_FAILURE() << what << " step " << s - kS0 << " " << kDataSources[k] << ": " << x[s][k]
                      << " vs " << y[s][k];
      }
    }
    total += std::isnan(x[s][10]) ? 0 : x[s][10] * 10;
  }
  EXPECT_EQ(differing, 0) << what;
  EXPECT_GT(total, 0) << what << ": no traffic at all";
  std::printf("[profiler] %s: %lld steps equal, %.0f bytes\n", what.c_str(),
              static_cast<long long>(to - from + 1), total);
}

// A channel added to a running profile is back-filled from the store: its file then holds what
// live counting from the start would have given (same flows, same spreading).
TEST(Profiler, BackfilledChannelEqualsLiveCounting) {
  const auto flows = randomFlows(20000, 7);
  const uint64_t mid = kT0 + 300 * kSec;
  test::TempDir store_dir("profiler-store");
  {
    store::StoreOptions so;
    so.path = store_dir.path().string();
    store::Writer w(so);
    w.append(flows);
    w.close();
  }
  ProfileDef full;
  full.name = "eq";
  full.start_ns = kT0;
  full.channels = equalityChannels();
  // Reference: every channel counted live from the start.
  Harness live("profiler-live");
  live.open({full}, kT0 - kSec);
  feedLive(live, flows, UINT64_MAX, [] {});
  const uint64_t end = kT0 + 700 * kSec;
  live.tickAt(end);
  // Profile with one channel; the others are added half way (as a reload or a commit does).
  Harness bf("profiler-backfill", store_dir.path().string());
  ProfileDef first = full;
  first.channels.resize(1);
  bf.open({first}, kT0 - kSec);
  feedLive(bf, flows, mid, [&] {
    for (const auto& m : bf.prof->setDeclared({full}, mid)) {
      ADD_FAILURE() << m;
    }
  });
  bf.tickAt(end);
  bf.tickAt(end + kSec);
  const auto l = bf.prof->list("eq");
  EXPECT_EQ(l[0]["status"], "OK") << l.dump(2);
  const int64_t last = static_cast<int64_t>((end - 8 * kSec) / kStep) - 1;
  for (const ChannelDef& c : full.channels) {
    expectSameFiles(live.path("eq", c.name), bf.path("eq", c.name), kS0, last, "channel " + c.name);
  }
  EXPECT_EQ(bf.prof->status()["late"]["flows"], 0);
  EXPECT_EQ(live.prof->status()["late"]["flows"], 0);

  // A history profile over the same ten minutes, built from the store alone, holds the same.
  Harness hist("profiler-history", store_dir.path().string());
  ProfileDef h = full;
  h.name = "past";
  h.type = ProfileType::kHistory;
  h.start_ns = kT0;
  h.end_ns = kT0 + 600 * kSec;
  hist.open({h}, end);
  hist.tickAt(end + 3 * kSec);
  hist.tickAt(end + 4 * kSec);
  const auto hl = hist.prof->list("past");
  EXPECT_EQ(hl[0]["status"], "OK") << hl.dump(2);
  for (const ChannelDef& c : full.channels) {
    expectSameFiles(live.path("eq", c.name), hist.path("past", c.name), kS0, kS0 + 59,
                    "history " + c.name);
  }
}

// A restart continues the files where they ended; the steps while down stay unknown when there
// is no store to back-fill them from.
TEST(Profiler, RestartContinuesTheFiles) {
  test::TempDir dir("profiler-restart");
  ProfileDef d;
  d.name = "r";
  d.start_ns = kT0;
  d.channels = {channel("all", "any")};
  const ProfilerOptions o = Harness::options(dir.path(), "");
  {
    boost::asio::io_context io;
    Profiler p(io, o);
    auto shard = p.makeShard();
    ASSERT_TRUE(p.open({d}, kT0).empty());
    p.start();
    sink::Batch b;
    std::vector<FlowRecord> rs = {flow(6, 22, kT0 + kSec, kT0 + kSec, 100, 1),
                                  flow(6, 22, kT0 + 11 * kSec, kT0 + 11 * kSec, 300, 3)};
    b.records = rs;
    shard->onBatch(b);
    shard->flush();
    p.tick(kT0 + 12 * kSec);
    p.stop();  // step 1 is written early, with what it has
  }
  {
    boost::asio::io_context io;
    Profiler p(io, o);
    auto shard = p.makeShard();
    ASSERT_TRUE(p.open({d}, kT0 + 100 * kSec).empty());
    p.start();
    sink::Batch b;
    std::vector<FlowRecord> rs = {flow(17, 53, kT0 + 101 * kSec, kT0 + 101 * kSec, 500, 5)};
    b.records = rs;
    shard->onBatch(b);
    shard->flush();
    p.tick(kT0 + 119 * kSec);
    ASSERT_TRUE(p.waitIdle(10'000));
    p.tick(kT0 + 119 * kSec);
    EXPECT_EQ(p.status()["write_errors"], 0) << p.status().dump();
    p.stop();
  }
  auto got = fetchSteps((fs::path(o.dir) / "r" / "all.rrd").string(), kS0, kS0 + 10);
  EXPECT_DOUBLE_EQ(got[kS0][10], 10);
  EXPECT_DOUBLE_EQ(got[kS0 + 1][10], 30);
  for (int64_t s = kS0 + 2; s < kS0 + 10; ++s) {
    EXPECT_TRUE(std::isnan(got[s][10])) << s - kS0;
  }
  EXPECT_DOUBLE_EQ(got[kS0 + 10][11 + kUdp - 0], 50);  // traffic_udp
}

// The steps missed while the daemon was down come from the store when there is one.
TEST(Profiler, RestartGapIsBackfilledFromTheStore) {
  test::TempDir store_dir("profiler-gap-store");
  const auto flows = randomFlows(3000, 11);  // ten minutes from kT0
  {
    store::StoreOptions so;
    so.path = store_dir.path().string();
    store::Writer w(so);
    w.append(flows);
    w.close();
  }
  ProfileDef d;
  d.name = "gap";
  d.start_ns = kT0;
  d.channels = equalityChannels();
  Harness live("profiler-gap-live");  // reference: everything counted live
  live.open({d}, kT0 - kSec);
  feedLive(live, flows, UINT64_MAX, [] {});
  live.tickAt(kT0 + 700 * kSec);
  Harness first("profiler-gap", store_dir.path().string());
  const uint64_t down = kT0 + 200 * kSec;
  first.open({d}, kT0 - kSec);
  std::vector<FlowRecord> before;
  for (const auto& r : flows) {
    if (r.received_ns < down) {
      before.push_back(r);
    }
  }
  feedLive(first, before, UINT64_MAX, [] {});
  first.tickAt(down);
  first.prof->stop();
  // Up again at 600 s: the flows received meanwhile are only in the store.
  first.prof = std::make_unique<Profiler>(first.io, first.opts);
  first.shard = first.prof->makeShard();
  const uint64_t up = kT0 + 600 * kSec;
  first.open({d}, up);
  std::vector<FlowRecord> after;
  for (const auto& r : flows) {
    if (r.received_ns >= up) {
      after.push_back(r);
    }
  }
  feedLive(first, after, UINT64_MAX, [] {});
  first.tickAt(kT0 + 700 * kSec);
  EXPECT_EQ(first.prof->list("gap")[0]["status"], "OK");
  // Step 19 (ending at 200 s) was written early at the stop, without the parts of flows received
  // after it: those are missing (the back-fill starts after the file's last step).
  const int64_t last = static_cast<int64_t>((kT0 + 692 * kSec) / kStep) - 1;
  for (const ChannelDef& c : d.channels) {
    expectSameFiles(live.path("gap", c.name), first.path("gap", c.name), kS0, kS0 + 18,
                    "before the stop: " + c.name);
    expectSameFiles(live.path("gap", c.name), first.path("gap", c.name), kS0 + 20, last,
                    "while down and after: " + c.name);
  }
}

// A channel file that cannot be created (a full disk: here a file size limit) is a write error
// shown in status and the listing; the next step tries again and succeeds once there is room.
TEST(Profiler, FullDiskIsAnErrorAndRecovers) {
  Harness h("profiler-full");
  ProfileDef d;
  d.name = "full";
  d.start_ns = kT0;
  d.channels = {channel("all", "any")};
  h.open({d}, kT0);
  h.feed({flow(6, 22, kT0 + kSec, kT0 + kSec, 100, 1)});
  {
    struct rlimit old {};
    getrlimit(RLIMIT_FSIZE, &old);
    auto handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 64 * 1024;
    setrlimit(RLIMIT_FSIZE, &small);
    h.tickAt(kT0 + 19 * kSec);
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, handler);
  }
  auto st = h.prof->status();
  EXPECT_GE(st["write_errors"].get<int>(), 1) << st.dump();
  EXPECT_NE(st["last_error"].get<std::string>().find("could not write"), std::string::npos)
      << st.dump();
  EXPECT_FALSE(fs::exists(h.path("full", "all")));
  EXPECT_NE(h.prof->list("full")[0]["channels"][0]["last_write_error"], nullptr);
  h.feed({flow(6, 22, kT0 + 21 * kSec, kT0 + 21 * kSec, 300, 3)});
  h.tickAt(kT0 + 39 * kSec);
  auto got = fetchSteps(h.path("full", "all"), kS0 + 1, kS0 + 2);
  EXPECT_DOUBLE_EQ(got[kS0 + 2][10], 30);  // the step after the failure is on disk
  std::printf("[profiler] full disk: %s\n", st["last_error"].get<std::string>().c_str());
}

// A file this program cannot continue is an error of that channel, not a crash; the others run.
TEST(Profiler, BadFilesAreChannelErrors) {
  Harness h("profiler-badfile");
  ProfileDef d;
  d.name = "b";
  d.start_ns = kT0;
  d.channels = {channel("good", "any"), channel("junk", "any"), channel("step", "any")};
  fs::create_directories(fs::path(h.opts.dir) / "b");
  {
    std::ofstream out(fs::path(h.opts.dir) / "b" / "junk.rrd");
    out << "not an rrd file";
  }
  std::string why;
  ASSERT_TRUE(rrd::create(h.path("b", "step"), 60, 1'800'000'000, &why)) << why;
  const auto msgs = h.prof->open({d}, kT0);
  ASSERT_EQ(msgs.size(), 2u);
  for (const auto& m : msgs) {
    std::printf("[profiler] %s\n", m.c_str());
  }
  h.prof->start();
  h.feed({flow(6, 22, kT0 + kSec, kT0 + kSec, 100, 1)});
  h.tickAt(kT0 + 19 * kSec);
  EXPECT_DOUBLE_EQ(fetchSteps(h.path("b", "good"), kS0, kS0)[kS0][10], 10);
  const auto l = h.prof->list("b");
  EXPECT_EQ(l[0]["status"].get<std::string>().rfind("error: ", 0), 0u) << l.dump(2);
}

// expire and maxsize move a continuous profile's data start forward by whole hours (nfsen's
// limits on profile data; the RRD files keep their size).
TEST(Profiler, ExpireAndMaxsizeMoveTheDataStart) {
  Harness h("profiler-limits");
  h.prof->setStoreBytesPerFlow(1000);
  ProfileDef expiring;
  expiring.name = "expiring";
  expiring.start_ns = kT0;
  expiring.expire_ms = 3600 * 1000;
  expiring.channels = {channel("all", "any")};
  ProfileDef sized = expiring;
  sized.name = "sized";
  sized.expire_ms = 0;
  // 3 hours of 36,000 flows each (one 1:100 record a step) at 1000 B a flow: 36 MB an hour on top
  // of the RRD file; room for one and a half hours.
  sized.maxsize = 15'300'000 + 54'000'000;
  ProfilerOptions o = h.opts;
  o.maintain_every_ns = 1;  // at every tick
  h.prof = std::make_unique<Profiler>(h.io, o);
  h.prof->setStoreBytesPerFlow(1000);
  h.shard = h.prof->makeShard();
  h.open({expiring, sized}, kT0);
  std::vector<FlowRecord> rs;
  for (uint64_t t = kT0; t < kT0 + 3 * 3600 * kSec; t += kStep) {
    rs.push_back(flow(6, 22, t + kSec, t + kSec, 100, 1, 100));
  }
  h.feed(rs);
  const uint64_t now = kT0 + 3 * 3600 * kSec + 20 * kSec;
  for (uint64_t i = 0; i < 4; ++i) {  // write; read the sizes back; apply the limits
    h.tickAt(now + i * kSec);
  }
  const auto l = h.prof->list();
  ASSERT_EQ(l.size(), 2u);
  const std::string two_hours_later = timeText(kT0 + 2 * 3600 * kSec);
  for (const auto& p : l) {
    std::printf("[profiler] %s: start %s size %s\n", p["name"].get<std::string>().c_str(),
                p["start"].get<std::string>().c_str(), p["size"].dump().c_str());
    EXPECT_EQ(p["start"], two_hours_later) << p.dump(2);
  }
  EXPECT_LE(l[1]["size"].get<uint64_t>(), sized.maxsize + 36'000'000ull);
  // The moved start is kept with the profile (declared ones too) across restarts.
  ProfileStore again(h.opts.dir);
  std::string why;
  ASSERT_TRUE(again.load(&why)) << why;
  again.setDeclared({expiring, sized}, now);
  EXPECT_EQ(again.find("sized")->tstart_ns, kT0 + 2 * 3600 * kSec);
}

// The CLI's operations through control(): nfsen's add / channel add / commit / list / delete.
TEST(Profiler, ControlOperations) {
  Harness h("profiler-control");
  h.open({}, kT0);
  auto added =
      h.prof->control({{"op", "add"}, {"name", "ops"}, {"group", "g"}, {"expire_ms", 86400000}});
  EXPECT_EQ(added["status"], "new");
  h.prof->control({{"op", "channel-add"},
                   {"profile", "ops"},
                   {"channel", {{"name", "ssh"}, {"filter", "port 22"}, {"colour", "#112233"}}}});
  try {
    h.prof->control({{"op", "channel-add"},
                     {"profile", "ops"},
                     {"channel", {{"name", "bad"}, {"filter", "port 22 and"}}}});
    ADD_FAILURE() << "a bad filter was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("channel.filter: filter:1:"), std::string::npos)
        << e.what();
  }
  auto listed = h.prof->control({{"op", "list"}});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["status"], "new");
  auto committed = h.prof->control({{"op", "commit"}, {"profile", "ops"}});
  std::printf("[profiler] nfsen -l view: %s\n", committed.dump().c_str());
  for (const char* key : {"name", "group", "created", "start", "end", "expire", "size", "maxsize",
                          "type", "status", "channels"}) {
    EXPECT_TRUE(committed.contains(key)) << key;
  }
  EXPECT_EQ(committed["status"], "OK");
  EXPECT_EQ(committed["type"], "continuous");
  EXPECT_EQ(committed["expire"], "1d");
  const auto& ch = committed["channels"][0];
  for (const char* key : {"name", "sign", "colour", "order", "sources", "size"}) {
    EXPECT_TRUE(ch.contains(key)) << key;
  }
  EXPECT_EQ(ch["colour"], "#112233");
  EXPECT_THROW(h.prof->control({{"op", "frobnicate"}}), std::runtime_error);
  EXPECT_THROW(h.prof->control({{"op", "delete"}}), std::runtime_error);
  EXPECT_THROW(h.prof->control({{"op", "graph"}, {"profile", "nope"}}), std::runtime_error);
  h.prof->control({{"op", "delete"}, {"profile", "ops"}});
  EXPECT_TRUE(h.prof->control({{"op", "list"}}).empty());
}

}  // namespace
}  // namespace nc::profile
