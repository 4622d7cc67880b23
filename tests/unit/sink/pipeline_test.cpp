// The shard pipeline (collector/sink): the decoder's batches are enriched in place, then handed
// to every sink in order; interface names that exporters send (router options tables, sFlow port
// names) name the interfaces of their later flows, and only theirs.
#include "collector/sink/sink.hpp"

#include <gtest/gtest.h>

#include <map>

#include "collector/record/names.hpp"
#include "ovsctl/inventory/inventory.hpp"
#include "tests/unit/decode/capture_util.hpp"
#include "tests/unit/decode/pcap_reader.hpp"

namespace nc::sink {
namespace {

struct Collect : FlowSink {
  std::vector<FlowRecord> records;
  std::vector<int> order;  // which sink saw each batch, in call order
  std::vector<int>* log = nullptr;
  int id = 0;
  bool had_ports = false;
  void onBatch(const Batch& b) override {
    records.insert(records.end(), b.records.begin(), b.records.end());
    had_ports = had_ports || (b.in_port != nullptr && b.out_port != nullptr);
    if (log != nullptr) {
      log->push_back(id);
    }
  }
};

FlowRecord flowFrom(const IpAddr& exporter, uint32_t in_if, uint32_t out_if) {
  FlowRecord r;
  r.exporter = exporter;
  r.in_if = in_if;
  r.out_if = out_if;
  r.if_kind = IfKind::kSnmp;
  r.first_ns = r.last_ns = r.received_ns = 1'800'000'000'000'000'000ull;
  r.bytes = 100;
  r.packets = 1;
  return r;
}

// A router's options interface table (Cisco ASR 9000, NetFlow v9: 19 interfaces) names the
// interfaces of the flows it sends afterwards.
TEST(ShardPipeline, RouterInterfaceTableNamesItsFlows) {
  std::vector<test::UdpDatagram> dgrams;
  std::string why;
  ASSERT_TRUE(test::readUdpCapture(
      (test::captureDir() / "cisco-asr9k-nfv9-options-interface-table.pcap").string(), dgrams,
      &why))
      << why;
  ASSERT_FALSE(dgrams.empty());
  ShardPipeline p(std::make_unique<inventory::Enricher>(nullptr));
  Collect c;
  p.add(&c);
  decode::Decoder d;
  std::map<uint32_t, std::string> names;  // what the decoder reports, for the check below
  struct Names : decode::RecordSink {
    ShardPipeline& p;
    std::map<uint32_t, std::string>& names;
    Names(ShardPipeline& pp, std::map<uint32_t, std::string>& n) : p(pp), names(n) {}
    void onRecords(std::span<const FlowRecord> r) override { p.onRecords(r); }
    void onRecordBatch(std::span<FlowRecord> r) override { p.onRecordBatch(r); }
    void onInterfaceName(const decode::InterfaceName& n) override {
      names[n.if_index] = std::string(n.name);
      p.onInterfaceName(n);
    }
  } tap(p, names);
  for (const auto& g : dgrams) {
    d.decode(g.payload, {g.src, g.src_port, g.ts_ns}, tap);
  }
  ASSERT_EQ(names.size(), 19u);
  const IpAddr router = dgrams.front().src;
  const auto first = names.begin();
  const auto second = std::next(first);
  std::vector<FlowRecord> batch = {flowFrom(router, first->first, second->first),
                                   flowFrom(router, 999999, 0)};
  IpAddr other;
  IpAddr::parse("192.0.2.77", other);
  batch.push_back(flowFrom(other, first->first, second->first));  // another exporter
  p.onRecordBatch(batch);
  ASSERT_EQ(c.records.size(), 3u);
  EXPECT_EQ(nameOf(c.records[0].in_ifname), first->second);
  EXPECT_EQ(nameOf(c.records[0].out_ifname), second->second);
  EXPECT_EQ(c.records[1].in_ifname, 0u);   // unknown index
  EXPECT_EQ(c.records[1].out_ifname, 0u);  // no output interface
  EXPECT_EQ(c.records[2].in_ifname, 0u);   // names belong to their exporter only
  EXPECT_EQ(c.records[0].bridge, 0u);      // routers have no OVS bridge
  EXPECT_TRUE(c.had_ports);
}

// sFlow port names (counter record 0:1005) name the flows of the agent that sent them.
TEST(ShardPipeline, SflowPortNamesNameTheAgentsFlows) {
  ShardPipeline p(std::make_unique<inventory::Enricher>(nullptr));
  Collect c;
  p.add(&c);
  decode::InterfaceCounters k;
  IpAddr agent;
  IpAddr::parse("198.51.100.7", agent);
  IpAddr::parse("198.51.100.99", k.exporter);  // datagram source differs from the agent
  k.agent = agent;
  k.has_generic = true;
  k.if_index = 12;
  k.has_port_name = true;
  const std::string name = "swp12";
  std::copy(name.begin(), name.end(), k.port_name.begin());
  k.port_name_len = static_cast<uint8_t>(name.size());
  p.onCounters(k);
  std::vector<FlowRecord> batch = {flowFrom(agent, 12, 0)};
  batch[0].if_kind = IfKind::kLinuxIfindex;
  p.onRecordBatch(batch);
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(nameOf(c.records[0].in_ifname), "swp12");
}

TEST(ShardPipeline, SinksRunInOrderAndOwnedOnesLive) {
  ShardPipeline p(nullptr);  // no inventory: names stay as decoded
  std::vector<int> log;
  Collect a;
  a.id = 1;
  a.log = &log;
  auto b = std::make_unique<Collect>();
  b->id = 2;
  b->log = &log;
  Collect* bp = b.get();
  p.add(&a);
  p.adopt(std::move(b));
  std::vector<FlowRecord> batch = {flowFrom(IpAddr::fromV4(1), 1, 2)};
  batch[0].in_ifname = internName("as-decoded");
  p.onRecordBatch(batch);
  const std::vector<FlowRecord> again = batch;
  p.onRecords(again);  // a const batch is copied, then handled the same way
  EXPECT_EQ(log, (std::vector<int>{1, 2, 1, 2}));
  ASSERT_EQ(bp->records.size(), 2u);
  EXPECT_EQ(nameOf(bp->records[1].in_ifname), "as-decoded");
  EXPECT_FALSE(a.had_ports);  // no enricher, no port slots
}

}  // namespace
}  // namespace nc::sink
