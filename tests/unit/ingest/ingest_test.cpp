// The receive path over real UDP sockets on loopback: sharded listeners, decode, totals, the
// allow-list, kernel drop counting and template persistence across restarts. The generator
// (collector/gen) is the sender.
#include "collector/ingest/ingest.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "collector/gen/gen.hpp"
#include "collector/metrics/json.hpp"
#include "tests/support/support.hpp"

namespace nc::ingest {
namespace {

struct Totals {
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> packets{0};
  std::atomic<uint64_t> bytes{0};
};

class SummingSink : public decode::RecordSink {
 public:
  explicit SummingSink(Totals& t) : t_(t) {}
  void onRecords(std::span<const FlowRecord> records) override {
    uint64_t p = 0;
    uint64_t b = 0;
    for (const auto& r : records) {
      p += r.packets;
      b += r.bytes;
    }
    t_.records += records.size();
    t_.packets += p;
    t_.bytes += b;
  }

 private:
  Totals& t_;
};

SinkFactory sinks(Totals& t) {
  return [&t](uint32_t) { return std::make_unique<SummingSink>(t); };
}

// Waits until `pred` holds or 5 s pass.
template <typename Pred>
bool waitFor(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Options for one listener on 127.0.0.1, port chosen by the kernel.
IngestOptions onLoopback(uint32_t threads = 1) {
  IngestOptions o;
  o.listen = {{"127.0.0.1", 0}};
  o.threads = threads;
  return o;
}

gen::GenStats send(gen::Format format, const std::string& host, uint16_t port, uint64_t count,
                   uint64_t seed = 7, bool gso = false) {
  gen::GenOptions o;
  o.format = format;
  o.target_host = host;
  o.target_port = port;
  o.count = count;
  o.rate = 20000;  // well below what one shard takes: this test is about totals, not speed
  o.seed = seed;
  o.quiet = true;
  o.gso = gso;
  gen::GenStats st;
  EXPECT_EQ(gen::runGen(o, &st), 0);
  return st;
}

class IngestFormats : public ::testing::TestWithParam<gen::Format> {};

TEST_P(IngestFormats, EverythingSentIsDecodedOnceAcrossShards) {
  Totals t;
  IngestOptions o = onLoopback(2);
  Ingest in(o, sinks(t));
  in.start();
  uint16_t port = in.boundPorts().at(0);
  ASSERT_NE(port, 0);
  // Two senders (two source ports), so both shards may get work.
  auto a = send(GetParam(), "127.0.0.1", port, 300, 1);
  auto b = send(GetParam(), "127.0.0.1", port, 300, 2);
  uint64_t want = a.records + b.records;
  EXPECT_TRUE(waitFor([&] { return t.records.load() >= want; }))
      << t.records.load() << " of " << want;
  in.refreshStats();
  auto s = in.totals();
  EXPECT_EQ(s.datagrams, a.datagrams + b.datagrams);
  EXPECT_EQ(s.records, want);
  EXPECT_EQ(s.decode_errors, 0u);
  EXPECT_EQ(s.kernel_drops, 0u);
  EXPECT_EQ(t.records.load(), want);
  EXPECT_EQ(t.packets.load(), a.flow_packets + b.flow_packets);
  EXPECT_EQ(t.bytes.load(), a.flow_bytes + b.flow_bytes);
  auto ex = in.exporters();
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].exporter.toString(), "127.0.0.1");
  EXPECT_EQ(ex[0].flow_records, want);
  EXPECT_EQ(ex[0].lost_datagrams, 0u);
  EXPECT_EQ(ex[0].lost_records, 0u);
}

// A UDP GSO send on loopback reaches the listener as one buffer of equal-size datagrams (UDP GRO
// on the socket); every datagram in it must be decoded on its own, in order (the exporter's
// sequence numbers show no loss), and counted.
TEST_P(IngestFormats, GroBuffersAreCutIntoTheirDatagrams) {
  Totals t;
  IngestOptions o = onLoopback();
  Ingest in(o, sinks(t));
  in.start();
  const uint16_t port = in.boundPorts().at(0);
  auto a = send(GetParam(), "127.0.0.1", port, 600, 3, /*gso=*/true);
  EXPECT_TRUE(waitFor([&] { return t.records.load() >= a.records; }))
      << t.records.load() << " of " << a.records;
  in.refreshStats();
  auto s = in.totals();
  EXPECT_EQ(s.datagrams, a.datagrams);
  EXPECT_GT(s.gro_datagrams, a.datagrams / 2) << "the kernel did not coalesce: GRO path not run";
  EXPECT_EQ(s.bytes, a.bytes);
  EXPECT_EQ(s.records, a.records);
  EXPECT_EQ(s.decode_errors, 0u);
  EXPECT_EQ(t.packets.load(), a.flow_packets);
  EXPECT_EQ(t.bytes.load(), a.flow_bytes);
  auto ex = in.exporters();
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].lost_datagrams, 0u);
  EXPECT_EQ(ex[0].lost_records, 0u);
}

INSTANTIATE_TEST_SUITE_P(All, IngestFormats,
                         ::testing::Values(gen::Format::kNetflowV5, gen::Format::kNetflowV9,
                                           gen::Format::kIpfix, gen::Format::kSflow),
                         [](const auto& info) { return std::string(gen::toString(info.param)); });

TEST(Ingest, Ipv6Listener) {
  Totals t;
  IngestOptions o;
  o.listen = {{"::1", 0}};
  Ingest in(o, sinks(t));
  in.start();
  auto st = send(gen::Format::kIpfix, "::1", in.boundPorts().at(0), 50);
  EXPECT_TRUE(waitFor([&] { return t.records.load() >= st.records; }));
  EXPECT_EQ(t.records.load(), st.records);
  in.refreshStats();
  ASSERT_EQ(in.exporters().size(), 1u);
  EXPECT_EQ(in.exporters()[0].exporter.toString(), "::1");
}

TEST(Ingest, AllowListDropsAndCountsOthers) {
  Totals t;
  IngestOptions o = onLoopback();
  Network n;
  ASSERT_TRUE(Network::parse("10.0.0.0/8", n));
  o.allow = {n};
  Ingest in(o, sinks(t));
  in.start();
  auto st = send(gen::Format::kNetflowV5, "127.0.0.1", in.boundPorts().at(0), 40);
  EXPECT_TRUE(waitFor([&] {
    in.refreshStats();
    return in.totals().denied >= st.datagrams;
  }));
  EXPECT_EQ(in.totals().denied, st.datagrams);
  EXPECT_EQ(t.records.load(), 0u);
  // Which source was denied: remembered with its count, and in the status JSON.
  auto denied = in.totals().deniedSources();
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].address.toString(), "127.0.0.1");
  EXPECT_EQ(denied[0].datagrams, st.datagrams);
  nlohmann::json j = metrics::toJson(in.totals());
  EXPECT_EQ(j["denied"], st.datagrams);
  ASSERT_EQ(j["denied_sources"].size(), 1u) << j.dump();
  EXPECT_EQ(j["denied_sources"][0]["address"], "127.0.0.1");
  EXPECT_EQ(j["denied_sources"][0]["datagrams"], st.datagrams);
  EXPECT_EQ(j["denied_sources"][0]["last_seen"].get<std::string>().size(), 24u) << j.dump();
}

// The denied sources are bounded: the one refused longest ago is forgotten (its datagrams stay
// in `denied`); the same source is counted in one slot, also when shards are merged.
TEST(Ingest, DeniedSourcesAreBoundedAndMerged) {
  auto addr = [](int i) {
    IpAddr a;
    EXPECT_TRUE(IpAddr::parse("192.0.2." + std::to_string(i), a));
    return a;
  };
  ShardStats s;
  for (int i = 1; i <= 10; ++i) {
    s.noteDenied(addr(i), 1, 1000 + static_cast<uint64_t>(i));
  }
  s.noteDenied(addr(10), 2, 2000);
  auto d = s.deniedSources();
  ASSERT_EQ(d.size(), ShardStats::kDeniedSourcesKept);
  EXPECT_EQ(d.front().address, addr(10));  // newest first
  EXPECT_EQ(d.front().datagrams, 3u);
  EXPECT_EQ(d.back().address, addr(3));  // 1 and 2 were forgotten
  ShardStats other;
  other.noteDenied(addr(10), 5, 3000);
  other.noteDenied(addr(99), 1, 2500);
  ShardStats total;
  total.add(s);
  total.add(other);
  d = total.deniedSources();
  ASSERT_EQ(d.size(), ShardStats::kDeniedSourcesKept);
  EXPECT_EQ(d[0].address, addr(10));
  EXPECT_EQ(d[0].datagrams, 8u);
  EXPECT_EQ(d[0].last_ns, 3000u);
  EXPECT_EQ(d[1].address, addr(99));
}

TEST(Ingest, NetworkContains) {
  Network n;
  ASSERT_TRUE(Network::parse("192.0.2.0/24", n));
  IpAddr a;
  IpAddr::parse("192.0.2.77", a);
  EXPECT_TRUE(n.contains(a));
  IpAddr::parse("192.0.3.1", a);
  EXPECT_FALSE(n.contains(a));
  IpAddr::parse("::ffff:192.0.2.1", a);
  EXPECT_TRUE(n.contains(a));
  ASSERT_TRUE(Network::parse("2001:db8::/33", n));
  IpAddr::parse("2001:db8:7fff::1", a);
  EXPECT_TRUE(n.contains(a));
  IpAddr::parse("2001:db8:8000::1", a);
  EXPECT_FALSE(n.contains(a));
  EXPECT_FALSE(Network::parse("10.0.0.0/33", n));
  EXPECT_FALSE(Network::parse("nonsense", n));
}

// A full socket buffer is a real kernel drop: fill a small buffer before the shard reads, then
// check SO_RXQ_OVFL accounting: read + dropped = sent.
TEST(Ingest, KernelDropsAreCounted) {
  Totals t;
  IngestOptions o = onLoopback();
  o.rcvbuf = 4096;  // a handful of datagrams
  Ingest in(o, sinks(t));
  uint16_t port = in.boundPorts().at(0);
  auto st = send(gen::Format::kNetflowV5, "127.0.0.1", port, 500);  // nobody reads yet
  in.start();
  EXPECT_TRUE(waitFor([&] {
    in.refreshStats();
    return in.totals().datagrams > 0;
  }));
  // The drop counter travels with the next queued datagram: send one more.
  auto extra = send(gen::Format::kNetflowV5, "127.0.0.1", port, 1, 99);
  EXPECT_TRUE(waitFor([&] {
    in.refreshStats();
    auto s = in.totals();
    return s.datagrams + s.kernel_drops == st.datagrams + extra.datagrams;
  }));
  auto s = in.totals();
  EXPECT_GT(s.kernel_drops, 0u);
  EXPECT_EQ(s.datagrams + s.kernel_drops, st.datagrams + extra.datagrams);
}

// Sends one datagram with a plain socket.
void sendRaw(uint16_t port, const std::vector<uint8_t>& d) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::sendto(fd, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(d.size()));
  ::close(fd);
}

// OVS re-sends IPFIX templates only every 600 s: after a restart the collector must decode data
// at once from the templates it persisted.
TEST(Ingest, TemplatesPersistAcrossRestart) {
  test::TempDir dir("templates");
  gen::GenOptions g;
  g.format = gen::Format::kIpfix;
  g.template_interval = 0;  // templates only in the first datagram
  g.count = 6;
  ASSERT_EQ(gen::validate(g), "");
  gen::Generator gen(g);
  std::vector<std::vector<uint8_t>> dgrams;
  std::vector<uint8_t> d;
  uint64_t later_records = 0;
  while (gen.next(1764000000000000000ull + dgrams.size(), d)) {
    if (!dgrams.empty()) {
      later_records += gen.lastRecords().size();
    }
    dgrams.push_back(d);
  }
  ASSERT_EQ(dgrams.size(), 6u);

  IngestOptions o = onLoopback();
  o.templates_path = (dir.path() / "templates.bin").string();
  {
    Totals t;
    Ingest first(o, sinks(t));
    first.start();
    sendRaw(first.boundPorts().at(0), dgrams[0]);  // templates (+ first data)
    EXPECT_TRUE(waitFor([&] { return t.records.load() > 0; }));
    first.stop();
  }
  Totals t;
  Ingest second(o, sinks(t));
  second.start();
  for (size_t i = 1; i < dgrams.size(); ++i) {
    sendRaw(second.boundPorts().at(0), dgrams[i]);
  }
  EXPECT_TRUE(waitFor([&] { return t.records.load() >= later_records; }));
  EXPECT_EQ(t.records.load(), later_records);
  second.refreshStats();
  EXPECT_EQ(second.totals().decode_errors, 0u);
}

TEST(Ingest, RefusesAPortAnotherProgramUses) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  Totals t;
  IngestOptions o;
  o.listen = {{"127.0.0.1", port}};
  try {
    Ingest in(o, sinks(t));
    FAIL() << "shared a busy port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another program uses this port"), std::string::npos)
        << e.what();
  }
  // Two Ingest instances must not split one port between them either.
  ::close(fd);
  o.listen = {{"127.0.0.1", port}};
  Ingest first(o, sinks(t));
  EXPECT_THROW(Ingest second(o, sinks(t)), std::runtime_error);
}

TEST(Ingest, BindFailureNamesTheAddress) {
  Totals t;
  IngestOptions o;
  o.listen = {{"192.0.2.1", 9}};  // TEST-NET-1: not a local address
  try {
    Ingest in(o, sinks(t));
    FAIL() << "bound a non-local address";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 192.0.2.1:9"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace nc::ingest
