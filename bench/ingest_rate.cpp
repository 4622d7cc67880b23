// Receive+decode at increasing rates versus a plain recvmmsg sink (the physical limit of this
// machine), with --store our receive+decode+store (the daemon's path: Ingest -> store::Writer into
// a temporary directory, records stored vs sent) and, with --nfcapd, nfcapd. The sender is
// `net-collector gen` pinned to CPU 0; every receiver runs pinned to CPU 1. For each rate and
// receiver: datagrams sent, received, lost. Prints the highest zero-loss rate of each receiver and
// the ratio ingest / raw sink.
//
// --enrich puts the daemon's shard pipeline in front of the store: a sink::ShardPipeline whose
// inventory::Enricher joins names from a fixed snapshot of 100 ports (ifindex 1-100, so the
// generator's interfaces 1-8 from the local exporter 127.0.0.1 resolve), then the store as a
// FlowSink, as collector/daemon wires it (without the recent ring and the correlator).
//
//   nc-bench-ingest [--format v9] [--seconds 3] [--rates 50000,100000,...] [--store zstd|lz4]
//                   [--nfcapd] [--only-stores] [--receivers-anywhere] [--no-gso]
//                   [--build-all] [--queue MiB] [--enrich]
//
// This is a benchmark, not a test: nothing here asserts a time.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "collector/ingest/ingest.hpp"
#include "collector/sink/sink.hpp"
#include "collector/store/store.hpp"
#include "ovsctl/inventory/inventory.hpp"

namespace {

std::string g_bin;         // directory of net-collector
int g_recv_cpu = 1;        // CPU of every receiver; -1 (--receivers-anywhere): not pinned
bool g_gso = true;         // the sender hands runs of datagrams to the kernel as UDP GSO sends
uint32_t g_repeat = 4096;  // the sender builds 4096 datagrams (86 k records), then resends them
uint64_t g_queue_mib = 0;  // --queue: the store's queue (0 = its default)
bool g_enrich = false;     // --enrich: ShardPipeline (Enricher over a snapshot) -> store

// Pins the calling thread (and what it starts) to `cpu`; -1 = every CPU.
void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu < 0) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < n && c < CPU_SETSIZE; ++c) {
      CPU_SET(static_cast<int>(c), &set);
    }
  } else {
    CPU_SET(cpu, &set);
  }
  sched_setaffinity(0, sizeof set, &set);
}

// Runs `argv` pinned to `cpu`, returns stdout.
std::string runPinned(const std::vector<std::string>& argv, int cpu) {
  int fds[2];
  if (pipe(fds) != 0) {
    return "";
  }
  pid_t pid = fork();
  if (pid == 0) {
    pin(cpu);
    dup2(fds[1], 1);
    close(fds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  return out;
}

// Sends for `seconds` at `rate`; returns datagrams sent (and records sent in *records).
uint64_t send(const std::string& format, uint16_t port, double rate, int seconds,
              uint64_t* records = nullptr) {
  // Batches of up to 256 datagrams (1 ms or less at these rates): fewer wakeups of the sender.
  std::vector<std::string> argv = {g_bin + "/net-collector",
                                   "gen",
                                   "-f",
                                   format,
                                   "-t",
                                   fmt::format("127.0.0.1:{}", port),
                                   "--rate",
                                   fmt::format("{}", rate),
                                   "--duration",
                                   fmt::format("{}s", seconds),
                                   "--flows",
                                   "100000",
                                   "--batch",
                                   "256",
                                   "--json",
                                   "-q"};
  if (g_gso) {
    argv.push_back("--gso");
  }
  if (g_repeat > 0) {
    argv.push_back("--repeat");
    argv.push_back(std::to_string(g_repeat));
  }
  auto out = runPinned(argv, 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (records != nullptr) {
    *records = j.is_object() ? j.value("records", uint64_t{0}) : 0;
  }
  return j.is_object() ? j.value("datagrams", uint64_t{0}) : 0;
}

// Waits until `count()` stops growing for 300 ms.
template <typename F>
uint64_t settle(F count) {
  uint64_t last = count();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    uint64_t now = count();
    if (now == last) {
      return now;
    }
    last = now;
  }
}

struct Result {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t sent_records = 0;
};

// A plain recvmmsg loop that only counts datagrams: the most a receiver can take here.
Result rawSink(const std::string& format, double rate, int seconds) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int buf = 32 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  timeval tv{0, 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::atomic<uint64_t> got{0};
  std::atomic<bool> stop{false};
  std::thread t([&] {
    constexpr int kBatch = 64;
    std::vector<char> bufs(kBatch * 2048);
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {bufs.data() + i * 2048, 2048};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!stop) {
      int n = recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
      if (n > 0) {
        got += static_cast<uint64_t>(n);
      }
    }
  });
  Result r;
  r.sent = send(format, ntohs(a.sin_port), rate, seconds);
  r.received = settle([&] { return got.load(); });
  stop = true;
  t.join();
  close(fd);
  return r;
}

class Counting : public nc::decode::RecordSink {
 public:
  void onRecords(std::span<const nc::FlowRecord>) override {}
};

Result ingestSink(const std::string& format, double rate, int seconds) {
  nc::ingest::IngestOptions o;
  o.listen = {{"127.0.0.1", 0}};
  o.threads = 1;
  nc::ingest::Ingest in(o, [](uint32_t) { return std::make_unique<Counting>(); });
  in.start();
  Result r;
  r.sent = send(format, in.boundPorts().at(0), rate, seconds);
  r.received = settle([&] {
    in.refreshStats();
    return in.totals().datagrams;
  });
  return r;
}

class StoreSink : public nc::decode::RecordSink {
 public:
  explicit StoreSink(nc::store::Writer& w) : w_(w) {}
  void onRecords(std::span<const nc::FlowRecord> records) override { w_.append(records); }

 private:
  nc::store::Writer& w_;
};

// The store behind a ShardPipeline (--enrich), as the daemon's StoreSink. Counts the batches
// whose first record got an input interface name, to show the enrichment ran (one load a batch).
class StoreFlowSink : public nc::sink::FlowSink {
 public:
  StoreFlowSink(nc::store::Writer& w, std::atomic<uint64_t>& batches, std::atomic<uint64_t>& named)
      : w_(w), batches_(batches), named_(named) {}
  void onBatch(const nc::sink::Batch& b) override {
    w_.append(b.records);
    batches_.fetch_add(1, std::memory_order_relaxed);
    if (!b.records.empty() && b.records.front().in_ifname != 0) {
      named_.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  nc::store::Writer& w_;
  std::atomic<uint64_t>& batches_;
  std::atomic<uint64_t>& named_;
};

// One bridge with `n` ports vnet<i> (ifindex and ofport i + 1, a MAC each, a VM behind every
// port); no netlink state, so the local exporters are 127.0.0.1 and ::1.
std::shared_ptr<const nc::inventory::Snapshot> benchSnapshot(size_t n) {
  nlohmann::json tables;
  nlohmann::json ports = nlohmann::json::array();
  for (size_t i = 0; i < n; ++i) {
    const std::string pu = fmt::format("port-{}", i);
    const std::string iu = fmt::format("iface-{}", i);
    const std::string name = fmt::format("vnet{}", i);
    ports.push_back(pu);
    tables["Port"][pu] = {{"name", name}, {"interfaces", iu}};
    tables["Interface"][iu] = {{"name", name},
                               {"ofport", static_cast<int64_t>(i + 1)},
                               {"ifindex", static_cast<int64_t>(i + 1)},
                               {"mac_in_use", nc::formatMac(0xfe5400000000ull | i)},
                               {"external_ids",
                                {{"attached-mac", nc::formatMac(0x02aa00000000ull | i)},
                                 {"vm-uuid", fmt::format("00000000-0000-4000-8000-{:012x}", i)}}}};
  }
  tables["Bridge"]["bridge-0"] = {{"name", "br-int"}, {"ports", ports}};
  return nc::inventory::Inventory::build(tables, nullptr);
}

// The daemon's path: receive, decode, store (one receive shard; the writer thread shares CPU 1).
Result storeSink(const std::string& format, double rate, int seconds,
                 const std::string& compression) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("nc-bench-store-{}", getpid());
  std::filesystem::remove_all(dir);
  nc::store::StoreOptions so;
  so.path = dir.string();
  nc::store::parseCompression(compression, so.compression);
  if (g_queue_mib > 0) {
    so.queue_bytes = g_queue_mib << 20;
  }
  Result r;
  {
    nc::store::Writer w(so);
    nc::ingest::IngestOptions o;
    o.listen = {{"127.0.0.1", 0}};
    o.threads = 1;
    std::atomic<uint64_t> batches{0};
    std::atomic<uint64_t> named{0};
    const auto snapshot = g_enrich ? benchSnapshot(100) : nullptr;
    nc::ingest::Ingest in(o, [&](uint32_t) -> std::unique_ptr<nc::decode::RecordSink> {
      if (!g_enrich) {
        return std::make_unique<StoreSink>(w);
      }
      auto enricher = std::make_unique<nc::inventory::Enricher>(nullptr);
      enricher->useSnapshot(snapshot);
      auto p = std::make_unique<nc::sink::ShardPipeline>(std::move(enricher));
      p->adopt(std::make_unique<StoreFlowSink>(w, batches, named));
      return p;
    });
    in.start();
    r.sent = send(format, in.boundPorts().at(0), rate, seconds, &r.sent_records);
    settle([&] {
      in.refreshStats();
      return in.totals().datagrams;
    });
    in.stop();
    w.close();
    auto t = in.totals();
    auto ws = w.stats();
    r.received = ws.rows_written;  // records here
    std::fprintf(
        stderr,
        "  [store %s @%.0f/s: %lu records decoded, %lu kernel drops, %lu rows dropped by "
        "the store, %lu of %lu blocks written while behind]\n",
        compression.c_str(), rate, static_cast<unsigned long>(t.records),
        static_cast<unsigned long>(t.kernel_drops), static_cast<unsigned long>(ws.rows_dropped),
        static_cast<unsigned long>(ws.blocks_fast), static_cast<unsigned long>(ws.blocks_written));
    if (g_enrich) {
      std::fprintf(stderr, "  [enrich: %lu of %lu batches with an input interface name]\n",
                   static_cast<unsigned long>(named.load()),
                   static_cast<unsigned long>(batches.load()));
    }
  }
  std::filesystem::remove_all(dir);
  return r;
}

Result nfcapdSink(const std::string& format, double rate, int seconds) {
  auto dir = std::filesystem::temp_directory_path() / fmt::format("nc-bench-nfcapd-{}", getpid());
  std::filesystem::create_directories(dir);
  uint16_t port = static_cast<uint16_t>(20000 + getpid() % 20000);
  pid_t pid = fork();
  if (pid == 0) {
    pin(g_recv_cpu);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    // -B: the same 32 MiB socket buffer our receiver asks for; -y: LZ4, its best-compressing
    // fast mode (what bytes/flow is compared with).
    execlp("nfcapd", "nfcapd", "-b", "127.0.0.1", "-p", std::to_string(port).c_str(), "-w",
           dir.c_str(), "-t", "3600", "-B", "33554432", "-y", nullptr);
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  Result r;
  r.sent = send(format, port, rate, seconds, &r.sent_records);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  // nfdump -I reports what nfcapd stored; count datagrams via the exporter's packet statistic.
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string out = runPinned({"nfdump", "-I", "-r", e.path().string()}, 1);
    // nfcapd keeps no datagram count in its file: compare stored records with sent records.
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Flows: ", 0) == 0) {
        r.received += std::stoull(line.substr(7));
      }
    }
  }
  std::filesystem::remove_all(dir);
  return r;  // received counts records here
}

}  // namespace

int main(int argc, char** argv) {
  std::string format = "v9";
  int seconds = 3;
  bool with_nfcapd = false;
  bool only_stores = false;
  std::string store_codec;
  std::vector<double> rates = {25000, 50000, 100000, 150000, 200000, 250000, 300000};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--format" && i + 1 < argc) {
      format = argv[++i];
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stoi(argv[++i]);
    } else if (a == "--nfcapd") {
      with_nfcapd = true;
    } else if (a == "--store" && i + 1 < argc) {
      store_codec = argv[++i];
    } else if (a == "--only-stores") {
      only_stores = true;
    } else if (a == "--receivers-anywhere") {
      g_recv_cpu = -1;
    } else if (a == "--no-gso") {
      g_gso = false;
    } else if (a == "--build-all") {
      g_repeat = 0;
    } else if (a == "--enrich") {
      g_enrich = true;
    } else if (a == "--queue" && i + 1 < argc) {
      g_queue_mib = std::stoull(argv[++i]);
    } else if (a == "--rates" && i + 1 < argc) {
      rates.clear();
      std::stringstream ss(argv[++i]);
      std::string r;
      while (std::getline(ss, r, ',')) {
        rates.push_back(std::stod(r));
      }
    } else {
      std::fprintf(stderr,
                   "usage: nc-bench-ingest [--format v5|v9|ipfix|sflow] [--seconds N] "
                   "[--rates R1,R2,...] [--store zstd|lz4] [--nfcapd] [--only-stores] "
                   "[--receivers-anywhere] [--no-gso] [--build-all] [--queue MiB] [--enrich]\n"
                   "  --only-stores skips the raw sink and receive+decode-only runs\n"
                   "  --receivers-anywhere leaves the receivers (ours, nfcapd) free to run on "
                   "every CPU, as a\n    daemon does (the sender stays on CPU 0; the achieved "
                   "send rate is printed)\n"
                   "  --no-gso: the sender makes one send per datagram instead of UDP GSO "
                   "sends of up to 64\n    (the receivers see the same datagrams either way; "
                   "GSO leaves them more CPU)\n"
                   "  --build-all: the sender builds every datagram instead of resending the "
                   "first 4096\n    (gen --repeat: header sequence numbers continued, export "
                   "time renewed)\n"
                   "  --queue MiB: our store's queue (default: store.queue's, 128 MiB)\n"
                   "  --enrich: with --store, the daemon's shard pipeline in front of the store "
                   "(inventory\n    Enricher over a fixed snapshot of 100 ports, then the store "
                   "as a FlowSink)\n");
      return 2;
    }
  }
  g_bin = std::filesystem::canonical("/proc/self/exe").parent_path().string();
  pin(g_recv_cpu);
  std::printf("format %s, %d s per step, sender on CPU 0%s%s, receivers %s\n", format.c_str(),
              seconds, g_gso ? " (UDP GSO)" : "", g_repeat > 0 ? " (resending 4096)" : "",
              g_recv_cpu < 0 ? "on any CPU" : "on CPU 1");
  std::printf("%10s  %22s  %22s%s%s\n", "rate/s", "raw recvmmsg recv/sent", "ingest recv/sent",
              store_codec.empty() ? ""
              : g_enrich          ? "  ours+enrich+store stored/sent (records)"
                                  : "  ours+store stored/sent (records)",
              with_nfcapd ? "  nfcapd stored/sent (records)" : "");
  double best_raw = 0;
  double best_ingest = 0;
  double best_nfcapd = 0;
  double best_store = 0;
  for (double rate : rates) {
    Result raw;
    Result ing;
    if (!only_stores) {
      raw = rawSink(format, rate, seconds);
      ing = ingestSink(format, rate, seconds);
    }
    std::string nf;
    if (!store_codec.empty()) {
      Result st = storeSink(format, rate, seconds, store_codec);
      nf += fmt::format("  {:>12}/{:<12} (sent {:.0f}/s)", st.received, st.sent_records,
                        static_cast<double>(st.sent) / seconds);
      if (st.received == st.sent_records && st.sent_records > 0) {
        best_store = rate;
      }
    }
    if (with_nfcapd) {
      Result n = nfcapdSink(format, rate, seconds);
      uint64_t sent_records = n.sent_records;
      nf += fmt::format("  {:>12}/{:<12} (sent {:.0f}/s)", n.received, sent_records,
                        static_cast<double>(n.sent) / seconds);
      if (n.received == sent_records && sent_records > 0) {
        best_nfcapd = rate;
      }
    }
    std::printf("%10.0f  %10lu/%-11lu  %10lu/%-11lu%s\n", rate,
                static_cast<unsigned long>(raw.received), static_cast<unsigned long>(raw.sent),
                static_cast<unsigned long>(ing.received), static_cast<unsigned long>(ing.sent),
                nf.c_str());
    std::fflush(stdout);
    if (raw.received == raw.sent && raw.sent > 0) {
      best_raw = rate;
    }
    if (ing.received == ing.sent && ing.sent > 0) {
      best_ingest = rate;
    }
  }
  std::printf("highest zero-loss rate: raw sink %.0f/s, ingest %.0f/s", best_raw, best_ingest);
  if (!store_codec.empty()) {
    std::printf(", ours+%sstore (%s) %.0f/s", g_enrich ? "enrich+" : "", store_codec.c_str(),
                best_store);
  }
  if (with_nfcapd) {
    std::printf(", nfcapd %.0f/s", best_nfcapd);
  }
  if (!store_codec.empty() && with_nfcapd && best_nfcapd > 0) {
    std::printf("\nratio ours+%sstore / nfcapd: %.2f", g_enrich ? "enrich+" : "",
                best_store / best_nfcapd);
  }
  std::printf("\nratio ingest / raw sink: %.2f\n", best_raw > 0 ? best_ingest / best_raw : 0.0);
  return 0;
}
