#pragma once
// Traffic between two harness hosts and what an exporter reported about it: shared by the OVS
// export tests (hand-configured exports and daemon-provisioned exports).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "collector/record/flow_record.hpp"
#include "tests/harness/ovs_harness.hpp"
#include "tests/support/daemon.hpp"

namespace nc::test {

inline constexpr uint16_t kTcpPort = 5001;
inline constexpr size_t kTransfer = 1 << 20;
inline constexpr int kPings = 5;

// Sends kTransfer bytes from `from` to `to`:kTcpPort; returns the bytes the receiver got.
inline size_t tcpTransfer(const OvsHost& from, const OvsHost& to) {
  int lfd = openSocketInNetns(to.netns, AF_INET, SOCK_STREAM);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(kTcpPort);
  ::inet_pton(AF_INET, to.ipv4.c_str(), &addr.sin_addr);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 1) != 0) {
    ::close(lfd);
    return 0;
  }
  size_t received = 0;
  std::thread rx([&] {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 15000) != 1) {
      return;
    }
    int c = ::accept(lfd, nullptr, nullptr);
    char buf[65536];
    ssize_t n = 0;
    while ((n = ::read(c, buf, sizeof buf)) > 0) {
      received += static_cast<size_t>(n);
    }
    ::close(c);
  });
  int cfd = openSocketInNetns(from.netns, AF_INET, SOCK_STREAM);
  timeval tv{15, 0};
  ::setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(cfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string data(kTransfer, 'x');
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::write(cfd, data.data() + sent, data.size() - sent);
      if (n <= 0) {
        break;
      }
      sent += static_cast<size_t>(n);
    }
  }
  ::close(cfd);
  rx.join();
  ::close(lfd);
  return received;
}

struct Seen {
  uint64_t tcp_bytes = 0;  // h1 -> h2:kTcpPort
  uint64_t tcp_records = 0;
  uint64_t icmp_packets = 0;  // h1 -> h2 echo requests
  uint32_t in_if = 0;
  uint32_t out_if = 0;
  IfKind if_kind = IfKind::kUnknown;
  uint32_t sampling = 0;
  bool icmp_type_ok = true;
};

inline Seen collect(const std::vector<FlowRecord>& flows, FlowProto proto, const OvsHost& h1,
                    const OvsHost& h2) {
  Seen s;
  for (const auto& f : flows) {
    if (f.flow_proto != proto || f.src_addr.toString() != h1.ipv4 ||
        f.dst_addr.toString() != h2.ipv4) {
      continue;
    }
    // OVS IPFIX reports each flow twice, at ingress and at egress: count the ingress one.
    if (proto == FlowProto::kIpfix && f.direction != 0) {
      continue;
    }
    if (f.proto == 6 && f.dst_port == kTcpPort) {
      s.tcp_bytes += f.bytes;
      ++s.tcp_records;
      s.in_if = f.in_if;
      s.out_if = f.out_if;
      s.if_kind = f.if_kind;
      s.sampling = f.sampling_rate;
    } else if (f.proto == 1) {
      s.icmp_packets += f.packets;
      s.icmp_type_ok = s.icmp_type_ok && f.icmp_type == 8;
    }
  }
  return s;
}

// What each export protocol reported about h1 -> h2 traffic.
struct SeenByProtocol {
  Seen netflow;
  Seen sflow;
  Seen ipfix;
  std::vector<FlowRecord> flows;  // everything the daemon showed last
};

// Polls the daemon's newest flows (up to ~15 s: active timeouts are 2 s) until every protocol
// reported the whole TCP transfer and all pings, and returns the last view.
inline SeenByProtocol waitForTraffic(DaemonProcess& d, const OvsHost& h1, const OvsHost& h2) {
  SeenByProtocol s;
  for (int i = 0; i < 60; ++i) {
    s.flows = d.flows();
    s.netflow = collect(s.flows, FlowProto::kNetflowV5, h1, h2);
    s.sflow = collect(s.flows, FlowProto::kSflowV5, h1, h2);
    s.ipfix = collect(s.flows, FlowProto::kIpfix, h1, h2);
    bool done = true;
    for (const Seen* x : {&s.netflow, &s.sflow, &s.ipfix}) {
      done = done && x->tcp_bytes >= kTransfer && x->icmp_packets >= kPings;
    }
    if (done) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return s;
}

}  // namespace nc::test
