// nc-dashboard-dev: serves the dashboard over generated data, for the browser check and for
// working on web/ without a daemon. A temporary (or --dir) directory holds a Profiler with the
// demo profile (tests/unit/dashboard/demo_data.hpp) back to --hours ago, a flow store with the
// same flows, and two made-up spike events; new flows arrive every second so the profiler keeps
// writing steps and the page's live refresh can be watched.
//
//   nc-dashboard-dev [--port N] [--dir DIR] [--hours H] [--no-store] [--no-profiles]
//                    [--no-events] [--no-live]
// Prints "dashboard: http://127.0.0.1:PORT/" once it serves; stops on SIGINT/SIGTERM.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "collector/dashboard/dashboard.hpp"
#include "collector/profile/profiler.hpp"
#include "collector/record/fields.hpp"
#include "collector/store/store.hpp"
#include "common/clock.hpp"
#include "tests/unit/dashboard/demo_data.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kStep = 10 * kSec;

json makeEvent(int seq, uint64_t start, uint64_t end, const char* port, const char* vm,
               const char* peer) {
  return {{"id", nc::formatTime(start).substr(0, 19) + "-" + std::to_string(seq)},
          {"start", nc::formatTime(start)},
          {"end", nc::formatTime(end)},
          {"subject",
           {{"kind", "port"}, {"name", port}, {"bridge", "br-int"}, {"ofport", 7}, {"vm", vm}}},
          {"direction", "in"},
          {"metric", "bytes"},
          {"observed", 1'550'000.0},
          {"baseline", 10'000.0},
          {"ratio", 155.0},
          {"netlink", {{"operstate", "up"}, {"mtu", 1500}, {"addresses", {"10.77.0.2/24"}}}},
          {"top", {{{"key", peer}, {"bytes", 93'000'000}, {"packets", 70'000}, {"share", 0.93}}}},
          {"exporters", {"127.0.0.1"}}};
}

}  // namespace

int main(int argc, char** argv) {
  uint16_t port = 0;
  std::string dir;
  unsigned hours = 2;
  bool store = true;
  bool profiles = true;
  bool with_events = true;
  bool live = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "nc-dashboard-dev: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port") {
      port = static_cast<uint16_t>(std::stoul(next()));
    } else if (a == "--dir") {
      dir = next();
    } else if (a == "--hours") {
      hours = static_cast<unsigned>(std::stoul(next()));
    } else if (a == "--no-store") {
      store = false;
    } else if (a == "--no-profiles") {
      profiles = false;
    } else if (a == "--no-events") {
      with_events = false;
    } else if (a == "--no-live") {
      live = false;
    } else {
      std::cerr << "usage: nc-dashboard-dev [--port N] [--dir DIR] [--hours H] [--no-store] "
                   "[--no-profiles] [--no-events] [--no-live]\n";
      return 2;
    }
  }
  bool temp = false;
  if (dir.empty()) {
    char tmpl[] = "/tmp/nc-dashboard-dev.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
    temp = true;
  }
  fs::create_directories(dir);

  asio::io_context io;
  const uint64_t now = nc::unixNowNs() / kStep * kStep;
  const uint64_t t0 = now - hours * 3600 * kSec;
  const size_t steps = (now - t0) / kStep;
  auto flows = nc::dashtest::demoFlows(t0, kStep, 0, steps);

  std::unique_ptr<nc::profile::Profiler> prof;
  std::unique_ptr<nc::profile::ProfileShard> shard;
  if (profiles) {
    nc::profile::ProfilerOptions po;
    po.dir = dir + "/profiles";
    prof = std::make_unique<nc::profile::Profiler>(io, po);
    shard = prof->makeShard();
    for (const auto& m : prof->open({nc::dashtest::demoProfile(t0)}, t0)) {
      std::cerr << "profiler: " << m << "\n";
    }
    prof->start();  // writer thread and the tick timer (wall clock) on io
    nc::dashtest::feedAndTick(*prof, *shard, flows, nc::unixNowNs());
  }
  std::unique_ptr<nc::store::Writer> writer;
  nc::dashboard::Sources src;
  src.profiler = prof.get();
  if (store) {
    nc::store::StoreOptions so;
    so.path = dir + "/store";
    writer = std::make_unique<nc::store::Writer>(so);
    writer->append(flows);
    writer->flush();
    src.store_path = so.path;
  }
  if (with_events) {
    const json all = {makeEvent(1, now - 40 * 60 * kSec, now - 35 * 60 * kSec, "vm1-eth0", "vm-1",
                                "10.77.0.1 -> 10.77.0.2 TCP 5201"),
                      makeEvent(2, now - 12 * 60 * kSec, now - 11 * 60 * kSec, "vm2-eth0", "vm-2",
                                "10.77.0.9 -> 10.77.0.3 UDP 53")};
    src.events = [all](const json& req) {
      const uint64_t since = req.value("since", uint64_t{0});
      const uint64_t until = req.value("until", UINT64_MAX);
      json out = json::array();
      for (const auto& e : all) {
        uint64_t s = 0;
        uint64_t en = 0;
        nc::parseTime(e["start"].get<std::string>(), s);
        nc::parseTime(e["end"].get<std::string>(), en);
        if (s < until && en >= since) {
          out.push_back(e);
        }
      }
      return out;
    };
  }
  src.status = [] { return json{{"version", "dev"}, {"mode", "nc-dashboard-dev"}}; };

  nc::dashboard::Dashboard dash(io, src);
  nc::http::ServerOptions ho;
  ho.port = port;
  nc::http::Server server(io, ho);
  dash.install(server);
  server.start();
  std::cout << "dashboard: http://127.0.0.1:" << server.port() << "/" << std::endl;

  // New flows every second for the steps that began since the last feed.
  asio::steady_timer feed(io);
  size_t fed = steps;
  std::function<void()> arm = [&] {
    feed.expires_after(std::chrono::seconds(1));
    feed.async_wait([&](boost::system::error_code ec) {
      if (ec) {
        return;
      }
      const size_t upto = (nc::unixNowNs() - t0) / kStep;  // steps that have begun
      if (upto > fed) {
        auto more = nc::dashtest::demoFlows(t0, kStep, fed, upto);
        fed = upto;
        if (shard) {
          nc::sink::Batch b;
          b.records = more;
          shard->onBatch(b);
          shard->flush();
        }
        if (writer) {
          writer->append(more);
        }
      }
      arm();
    });
  };
  if (live) {
    arm();
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) {
    feed.cancel();
    server.stop();
    if (prof) {
      prof->stop();
    }
    io.stop();
  });
  io.run();
  if (writer) {
    writer->close();
  }
  if (temp) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return 0;
}
