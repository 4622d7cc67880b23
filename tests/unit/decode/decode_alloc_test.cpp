// The receive path must not allocate per datagram or per record once warm (DESIGN.md): count
// global operator new calls while replaying captures a second time through a warm Decoder.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "tests/unit/decode/capture_util.hpp"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// GCC pairs the replaced operator new with free() below and warns; the pairing is deliberate.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(size_t n) {
  ++g_allocations;
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) {
    throw std::bad_alloc();
  }
  return p;
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}

namespace nc::test {
namespace {

class DecodeNoAllocation : public ::testing::TestWithParam<const char*> {};

TEST_P(DecodeNoAllocation, SteadyStateDecodeDoesNotAllocate) {
  std::vector<UdpDatagram> dg;
  ASSERT_TRUE(readUdpCapture((captureDir() / GetParam()).string(), dg, nullptr));
  decode::Decoder d;
  decode::CountingSink sink;
  auto pass = [&] {
    for (const UdpDatagram& u : dg) {
      decode::DatagramMeta meta{u.src, u.src_port, u.ts_ns};
      d.decode(u.payload, meta, sink);
    }
  };
  uint64_t cold = g_allocations.load();
  pass();                                 // learns exporters, templates, sequence streams, samplers
  EXPECT_GT(g_allocations.load(), cold);  // the counter does see the decoder's allocations
  uint64_t before = g_allocations.load();
  pass();  // templates arrive again: refreshed in place
  EXPECT_EQ(g_allocations.load() - before, 0u) << GetParam();
  EXPECT_GT(sink.records() + sink.counters(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Captures, DecodeNoAllocation,
                         ::testing::Values("mikrotik-nfv5-30-records.pcap",
                                           "cisco-asr9k-nfv9-pmacct101.pcap",
                                           "cisco-ncs55-nfv9-multiple-sampling-rates.pcap",
                                           "ipfixcol2-ipfix-file-3979-records.pcap",
                                           "ixia-ipfix-biflow-varlen-tpl256.pcap",
                                           "cisco-ipfix-srv6-netgauze.pcap",
                                           "unknown-sflow5-expanded-flow-sample.pcap",
                                           "hp-sflow5-counters-30pdus-with-nfv5.pcap"));

}  // namespace
}  // namespace nc::test
