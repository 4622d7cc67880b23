// The dashboard end to end: a real http::Server on 127.0.0.1:0, a real Profiler writing RRD
// files from known flows (demo_data.hpp), a real flow store holding the same flows, and the API
// read back over a socket. Expected values are computed here from the flows, independently of
// the dashboard's code. No test depends on how fast anything happens.
#include "collector/dashboard/dashboard.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "collector/profile/profiler.hpp"
#include "collector/query/filter.hpp"
#include "collector/record/fields.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/dashboard/demo_data.hpp"
#include "tests/unit/http/test_client.hpp"

// /api/graph renders through librrd, which leaks inside itself: tests/support/graph_leaks.hpp.
#include "tests/support/graph_leaks.hpp"

namespace nc::dashboard {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kStep = 10 * kSec;
constexpr uint64_t kT0 = 1'800'000'000 * kSec;  // a step boundary (2027-01-15)
constexpr size_t kSteps = 12;
constexpr uint64_t kT0s = kT0 / kSec;

std::string at(uint64_t unix_s) {
  return "%40" + std::to_string(unix_s);  // "@UNIX_SECONDS", escaped
}

// Profiler + store + a server running a Dashboard on its own io_context thread.
class Fixture {
 public:
  explicit Fixture(bool with_store = true, bool with_profiler = true)
      : dir_("dashboard"), guard_(asio::make_work_guard(io_)) {
    flows_ = dashtest::demoFlows(kT0, kStep, 0, kSteps);
    if (with_profiler) {
      profile::ProfilerOptions po;
      po.dir = (dir_.path() / "profiles").string();
      prof_ = std::make_unique<profile::Profiler>(prof_io_, po);
      shard_ = prof_->makeShard();
      for (const auto& m : prof_->open({dashtest::demoProfile(kT0)}, kT0)) {
        ADD_FAILURE() << m;
      }
      prof_->start();
      // Steps 0..kSteps-1 end by kT0 + kSteps*10 s; due 8 s later.
      EXPECT_TRUE(dashtest::feedAndTick(*prof_, *shard_, flows_, kT0 + kSteps * kStep + 9 * kSec));
    }
    Sources src;
    src.profiler = prof_.get();
    if (with_store) {
      store_path_ = (dir_.path() / "store").string();
      dashtest::writeStore(store_path_, flows_);
      src.store_path = store_path_;
    }
    src.events = [this](const json& req) {
      std::lock_guard lock(mu_);
      events_asked_.push_back(req);
      return json::array({{{"id", "20270115T080030Z-000001"},
                           {"start", formatTime(kT0 + 30 * kSec)},
                           {"end", formatTime(kT0 + 50 * kSec)},
                           {"subject", {{"kind", "port"}, {"name", "vm1-eth0"}, {"vm", "vm-1"}}},
                           {"direction", "in"},
                           {"metric", "bytes"},
                           {"ratio", 12.5}}});
    };
    src.status = [] { return json{{"version", "test"}}; };
    DashboardOptions o;
    o.poll = std::chrono::milliseconds(20);
    o.now_ns = [] { return kT0 + 200 * kSec; };
    o.max_rows = 50;
    dash_ = std::make_unique<Dashboard>(io_, std::move(src), o);
    server_ = std::make_unique<http::Server>(io_, http::ServerOptions{});
    dash_->install(*server_);
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Fixture() {
    std::promise<void> done;
    asio::post(io_, [&] {
      server_->stop();
      dash_.reset();
      done.set_value();
    });
    done.get_future().wait();
    io_.stop();
    thread_.join();
    if (prof_) {
      prof_->stop();
    }
  }

  uint16_t port() const { return server_->port(); }
  // One GET on a fresh connection.
  test::Answer get(const std::string& target) {
    test::Client c(port());
    EXPECT_TRUE(c.send("GET " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    auto a = c.read();
    EXPECT_TRUE(a.has_value()) << target;
    return a.value_or(test::Answer{});
  }
  json getJson(const std::string& target, unsigned want_status = 200) {
    auto a = get(target);
    EXPECT_EQ(a.result_int(), want_status) << target << ": " << a.body();
    EXPECT_EQ(a[bhttp::field::content_type], "application/json") << target;
    return json::parse(a.body(), nullptr, false);
  }
  // More steps, written by the profiler (from the test's thread).
  void writeMoreSteps(size_t from, size_t to) {
    auto more = dashtest::demoFlows(kT0, kStep, from, to);
    EXPECT_TRUE(dashtest::feedAndTick(*prof_, *shard_, more, kT0 + to * kStep + 9 * kSec));
  }
  std::vector<json> eventsAsked() {
    std::lock_guard lock(mu_);
    return events_asked_;
  }

  const std::vector<FlowRecord>& flows() const { return flows_; }

 private:
  test::TempDir dir_;
  asio::io_context prof_io_;  // never run: the test ticks the profiler itself
  std::unique_ptr<profile::Profiler> prof_;
  std::unique_ptr<profile::ProfileShard> shard_;
  std::string store_path_;
  std::vector<FlowRecord> flows_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::unique_ptr<Dashboard> dash_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<json> events_asked_;
};

// Per step, the bytes of flows matching `pred`.
template <typename Pred>
std::vector<double> bytesPerStep(const std::vector<FlowRecord>& flows, Pred pred) {
  std::vector<double> out(kSteps, 0.0);
  for (const auto& f : flows) {
    if (pred(f)) {
      out[(f.first_ns - kT0) / kStep] += static_cast<double>(f.bytes);
    }
  }
  return out;
}

struct Expect {
  double min, max, avg, p95, total;
};
// Statistics of bit rates from byte totals per 10 s step, computed the plain way.
Expect expected(const std::vector<double>& bytes) {
  std::vector<double> bits;
  double total = 0;
  for (double b : bytes) {
    bits.push_back(b * 8 / 10);
    total += b;
  }
  Expect e{};
  e.min = *std::min_element(bits.begin(), bits.end());
  e.max = *std::max_element(bits.begin(), bits.end());
  double s = 0;
  for (double v : bits) {
    s += v;
  }
  e.avg = s / static_cast<double>(bits.size());
  // The smallest value that at least 95 % of the values are <= to.
  for (double cand : bits) {
    size_t le = 0;
    for (double v : bits) {
      le += v <= cand ? 1 : 0;
    }
    if (static_cast<double>(le) >= 0.95 * static_cast<double>(bits.size()) &&
        (e.p95 == 0 || cand < e.p95)) {
      e.p95 = cand;
    }
  }
  e.total = total;
  return e;
}

bool near(double a, double b) {
  return std::fabs(a - b) <= 1e-6 * std::max(1.0, std::fabs(b));
}

TEST(Dashboard, ProfilesListsChannelsInDrawingOrder) {
  Fixture f;
  json j = f.getJson("/api/profiles");
  ASSERT_TRUE(j.is_object()) << j;
  EXPECT_EQ(j["enabled"], true);
  EXPECT_EQ(j["step_s"], 10);
  ASSERT_EQ(j["profiles"].size(), 1u) << j;
  const json& p = j["profiles"][0];
  EXPECT_EQ(p["name"], "demo");
  std::map<std::string, json> by;
  for (const auto& c : p["channels"]) {
    by[c["name"]] = c;
  }
  ASSERT_EQ(by.size(), 3u);
  EXPECT_EQ(by["web"]["colour"], "#ff9a3c");
  EXPECT_EQ(by["dns"]["sign"], "-");
  EXPECT_EQ(by["all"]["filter"], "any");
}

TEST(Dashboard, SeriesHoldTheFedValuesAndTheirStatistics) {
  Fixture f;
  const std::string base =
      "/api/series?profile=demo&start=" + at(kT0s) + "&end=" + at(kT0s + kSteps * 10);
  json j = f.getJson(base + "&metric=traffic&proto=any");
  ASSERT_TRUE(j.is_object()) << j;
  EXPECT_EQ(j["unit"], "bit/s");
  EXPECT_EQ(j["total_unit"], "bytes");
  EXPECT_EQ(j["ds"], "traffic");
  EXPECT_EQ(j["step"], 10);
  EXPECT_EQ(j["start"], kT0s);
  EXPECT_EQ(j["points"], kSteps);
  std::map<std::string, std::vector<double>> want = {
      {"all", bytesPerStep(f.flows(), [](const FlowRecord&) { return true; })},
      {"web",
       bytesPerStep(f.flows(),
                    [](const FlowRecord& r) { return r.dst_port == 80 || r.src_port == 80; })},
      {"dns", bytesPerStep(f.flows(), [](const FlowRecord& r) {
         return r.dst_port == 53 || r.src_port == 53;
       })}};
  ASSERT_EQ(j["channels"].size(), 3u);
  for (const auto& c : j["channels"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    ASSERT_TRUE(want.count(name));
    ASSERT_FALSE(c.contains("error")) << c;
    const auto& bytes = want[name];
    ASSERT_EQ(c["values"].size(), kSteps) << c;
    for (size_t i = 0; i < kSteps; ++i) {
      ASSERT_TRUE(c["values"][i].is_number()) << "step " << i << ": " << c["values"][i];
      EXPECT_TRUE(near(c["values"][i].get<double>(), bytes[i] * 8 / 10))
          << "step " << i << ": " << c["values"][i] << " vs " << bytes[i] * 8 / 10;
    }
    const Expect e = expected(bytes);
    const json& st = c["stats"];
    EXPECT_EQ(st["known"], kSteps);
    EXPECT_TRUE(near(st["min"], e.min)) << st << " min " << e.min;
    EXPECT_TRUE(near(st["max"], e.max)) << st << " max " << e.max;
    EXPECT_TRUE(near(st["average"], e.avg)) << st << " avg " << e.avg;
    EXPECT_TRUE(near(st["p95"], e.p95)) << st << " p95 " << e.p95;
    EXPECT_TRUE(near(st["total"], e.total)) << st << " total " << e.total;
  }
  // Packets of UDP only, one channel.
  j = f.getJson(base + "&metric=packets&proto=udp&channel=dns");
  ASSERT_EQ(j["channels"].size(), 1u) << j;
  EXPECT_EQ(j["ds"], "packets_udp");
  EXPECT_EQ(j["unit"], "packets/s");
  EXPECT_TRUE(near(j["channels"][0]["values"][0], 2.0 / 10)) << j["channels"][0];
  EXPECT_TRUE(near(j["channels"][0]["values"][1], 0)) << j["channels"][0];
  EXPECT_TRUE(near(j["channels"][0]["stats"]["total"], 2.0 * (kSteps / 2)));
  // Consolidation: a long window gives at most max_points points; 4-row points averaged.
  j = f.getJson("/api/series?profile=demo&channel=web&start=" + at(kT0s) +
                "&end=" + at(kT0s + 4 * kSteps * 10));
  EXPECT_LE(j["points"].get<size_t>(), 1000u);
  // Errors: 400 with a message, 404 for an unknown profile.
  EXPECT_EQ(f.getJson("/api/series?profile=demo&metric=bogus", 400)["error"],
            "metric: expected traffic, packets or flows (got 'bogus')");
  EXPECT_EQ(f.getJson("/api/series?profile=demo&start=yesterday-ish", 400)["error"]
                .get<std::string>()
                .rfind("start: ", 0),
            0u);
  EXPECT_EQ(f.getJson("/api/series?profile=demo&channel=nope", 400)["error"],
            "channel: profile 'demo' has no channel 'nope'");
  EXPECT_EQ(f.getJson("/api/series?profile=none", 404)["error"], "no profile 'none'");
  EXPECT_EQ(f.getJson("/api/series", 400)["error"], "profile: required");
  EXPECT_EQ(f.getJson("/api/nothing", 404)["error"], "no such API: /api/nothing");
}

TEST(Dashboard, GraphIsAPng) {
  Fixture f;
  auto a = f.get("/api/graph?profile=demo&start=" + at(kT0s) + "&end=" + at(kT0s + 120));
  ASSERT_EQ(a.result_int(), 200) << a.body();
  EXPECT_EQ(a[bhttp::field::content_type], "image/png");
  ASSERT_GT(a.body().size(), 8u);
  EXPECT_EQ(a.body().substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(Dashboard, FlowsListAndTopReturnTheMatchingRows) {
  Fixture f;
  const std::string win = "&start=" + at(kT0s) + "&end=" + at(kT0s + kSteps * 10);
  // list: the newest first, exactly the port 80 flows.
  json j = f.getJson("/api/flows?mode=list&filter=dst+port+80" + win);
  ASSERT_TRUE(j.is_object()) << j;
  ASSERT_EQ(j["rows"].size(), kSteps) << j;
  EXPECT_EQ(j["truncated"], false);
  uint64_t prev = UINT64_MAX;
  for (const auto& row : j["rows"]) {
    FlowRecord r;
    std::string why;
    ASSERT_TRUE(fromJson(row, r, &why)) << why << " " << row;
    EXPECT_EQ(r.dst_port, 80);
    EXPECT_LT(r.first_ns, prev) << "newest first";
    prev = r.first_ns;
  }
  FlowRecord newest;
  ASSERT_TRUE(fromJson(j["rows"][0], newest, nullptr));
  EXPECT_EQ(newest.bytes, dashtest::webBytes(kSteps - 1));
  EXPECT_EQ(j["totals"]["flows"], kSteps);
  // limit, and order by bytes.
  j = f.getJson("/api/flows?mode=list&filter=dst+port+80&limit=3&order=bytes" + win);
  ASSERT_EQ(j["rows"].size(), 3u);
  EXPECT_EQ(j["truncated"], true);
  EXPECT_EQ(j["rows"][0]["bytes"], dashtest::webBytes(kSteps - 1));
  // The window restricts: steps 0..1 only hold 2 web flows.
  j = f.getJson("/api/flows?filter=dst+port+80&start=" + at(kT0s) + "&end=" + at(kT0s + 20));
  EXPECT_EQ(j["rows"].size(), 2u) << j;
  // top by source address, ranked by bytes.
  j = f.getJson("/api/flows?mode=top&key=srcip&order=bytes&limit=3&filter=port+80" + win);
  ASSERT_EQ(j["rows"].size(), 3u) << j;
  EXPECT_EQ(j["columns"][0], "src_addr") << j["columns"];
  for (size_t k = 0; k < 3; ++k) {
    const size_t step = kSteps - 1 - k;  // the largest web flows are the last ones
    EXPECT_EQ(j["rows"][k]["src_addr"], fmt::format("10.0.0.{}", step + 1)) << j["rows"][k];
    EXPECT_EQ(j["rows"][k]["bytes"], dashtest::webBytes(step));
    EXPECT_EQ(j["rows"][k]["flows"], 1);
  }
  // top by port pair: dns in one group.
  j = f.getJson("/api/flows?mode=top&key=proto,dstport&order=flows" + win);
  ASSERT_GE(j["rows"].size(), 3u) << j;
  EXPECT_EQ(j["rows"][0]["flows"], kSteps) << j["rows"][0];
  EXPECT_EQ(j["rows"][1]["flows"], kSteps / 2) << j["rows"][1];
  // The limit is capped by max_rows (50).
  EXPECT_EQ(f.getJson("/api/flows?limit=51" + win, 400)["error"], "limit: must be 1..50 (got 51)");
}

TEST(Dashboard, BadFilterAnswers400WithItsPosition) {
  Fixture f;
  const std::string text = "dst port 80 and src port 70000";
  query::FilterError want;
  ASSERT_FALSE(query::Filter::compile(text, &want));
  json j = f.getJson("/api/flows?filter=dst%20port%2080%20and%20src%20port%2070000", 400);
  ASSERT_TRUE(j.contains("filter_error")) << j;
  const json& e = j["filter_error"];
  EXPECT_EQ(e["offset"], want.offset);
  EXPECT_EQ(e["offset"], text.find("70000"));
  EXPECT_EQ(e["line"], 1);
  EXPECT_EQ(e["column"], want.offset + 1);
  EXPECT_EQ(e["message"], want.message);
  EXPECT_EQ(e["rendered"], want.render(text));
  EXPECT_EQ(j["error"], fmt::format("filter:1:{}: {}", want.offset + 1, want.message));
  // Second line of a multi-line filter.
  j = f.getJson("/api/flows?filter=proto%20tcp%0Aand%20bogus", 400);
  EXPECT_EQ(j["filter_error"]["line"], 2) << j;
  EXPECT_EQ(j["filter_error"]["column"], 5) << j;
  EXPECT_EQ(
      f.getJson("/api/flows?mode=top&key=nokey", 400)["error"].get<std::string>().rfind("key: ", 0),
      0u);
}

TEST(Dashboard, WorksWithoutProfilerStoreOrEvents) {
  Fixture f(false, false);
  json j = f.getJson("/api/profiles");
  EXPECT_EQ(j["enabled"], false);
  EXPECT_TRUE(j["profiles"].empty());
  EXPECT_EQ(f.getJson("/api/flows?filter=any", 404)["error"],
            "no flow store in this daemon: drill-down is off");
  EXPECT_EQ(f.getJson("/api/series?profile=x", 404)["error"], "profiles are off in this daemon");
  j = f.getJson("/api/status");
  EXPECT_EQ(j["profiles"], false);
  EXPECT_EQ(j["store"], false);
  EXPECT_EQ(j["daemon"]["version"], "test");
}

TEST(Dashboard, EventsOfTheWindow) {
  Fixture f;
  json j = f.getJson("/api/events?start=" + at(kT0s) + "&end=" + at(kT0s + 120));
  EXPECT_EQ(j["enabled"], true);
  ASSERT_EQ(j["events"].size(), 1u) << j;
  EXPECT_EQ(j["events"][0]["subject"]["name"], "vm1-eth0");
  auto asked = f.eventsAsked();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0]["since"], kT0);
  EXPECT_EQ(asked[0]["until"], kT0 + 120 * kSec);
  EXPECT_EQ(asked[0]["limit"], 1000);
  // Default window: the last hour before the dashboard's now.
  f.getJson("/api/events");
  asked = f.eventsAsked();
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[1]["until"], kT0 + 200 * kSec);
  EXPECT_EQ(asked[1]["since"], kT0 + 200 * kSec - 3600 * kSec);
}

TEST(Dashboard, AssetsAreServedWithTheirTypes) {
  Fixture f;
  const fs::path web = test::sourceDir() / "web";
  auto file = [&](const char* name) {
    std::ifstream in(web / name, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  struct Want {
    const char* path;
    const char* file;
    const char* type;
  };
  for (const Want& w : {Want{"/", "index.html", "text/html; charset=utf-8"},
                        Want{"/index.html", "index.html", "text/html; charset=utf-8"},
                        Want{"/app.js", "app.js", "text/javascript; charset=utf-8"},
                        Want{"/style.css", "style.css", "text/css; charset=utf-8"}}) {
    auto a = f.get(w.path);
    EXPECT_EQ(a.result_int(), 200) << w.path;
    EXPECT_EQ(a[bhttp::field::content_type], w.type) << w.path;
    EXPECT_EQ(a.body(), file(w.file)) << w.path << " differs from web/" << w.file;
    EXPECT_FALSE(a.body().empty());
  }
  EXPECT_NE(f.get("/").body().find("<canvas"), std::string::npos);
}

TEST(Dashboard, StreamSendsStepWhenTheProfilerWroteSteps) {
  Fixture f;
  test::Client c(f.port());
  ASSERT_TRUE(c.send("GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n"));
  // Everything read until a whole frame of `event` has arrived.
  std::string all;
  auto untilFrame = [&](const std::string& event) {
    for (int i = 0; i < 100; ++i) {
      const size_t p = all.find("event: " + event + "\n");
      if (p != std::string::npos && all.find("\n\n", p) != std::string::npos) {
        return p;
      }
      std::string more = c.readUntil("\n\n");
      if (more.empty()) {
        break;
      }
      all += more;
    }
    return std::string::npos;
  };
  ASSERT_NE(untilFrame("hello"), std::string::npos) << all;
  ASSERT_NE(all.find("text/event-stream"), std::string::npos) << all;
  ASSERT_EQ(all.find("event: step"), std::string::npos) << all;
  f.writeMoreSteps(kSteps, kSteps + 2);
  const size_t at_step = untilFrame("step");
  ASSERT_NE(at_step, std::string::npos) << all;
  const size_t d = all.find("data: ", at_step);
  ASSERT_NE(d, std::string::npos) << all;
  json j = json::parse(all.substr(d + 6, all.find('\n', d) - d - 6), nullptr, false);
  EXPECT_GT(j["steps_written"].get<uint64_t>(), 0u) << all;
}

TEST(Dashboard, SeriesStatsNearestRankP95) {
  // 20 values 1..20: p95 is the 19th smallest; unknown points are skipped.
  std::vector<double> v;
  for (int i = 20; i >= 1; --i) {
    v.push_back(i);
  }
  v.push_back(std::nan(""));
  const SeriesStats s = seriesStats(v, 10);
  EXPECT_EQ(s.known, 20u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 20);
  EXPECT_EQ(s.average, 10.5);
  EXPECT_EQ(s.p95, 19);
  EXPECT_EQ(s.total, 2100);
  EXPECT_EQ(seriesStats({std::nan("")}, 10).known, 0u);
}

}  // namespace
}  // namespace nc::dashboard
