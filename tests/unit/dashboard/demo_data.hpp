#pragma once
// Known data for the dashboard: a profile "demo" of three channels and flows with known values
// per step, fed to a real Profiler (RRD files) and written to a real flow store. Shared by the
// unit test (fixed times, its own clock) and tests/browser's dev server (times near now).
// Header-only, no gtest.
//
// Step i (i = 0..steps-1) of `step_ns` starting at t0 holds:
//   web: one TCP flow 10.0.0.<i%250+1>:40000 -> 10.9.0.1:80, bytes webBytes(i), 10 packets
//   dns: in even steps, one UDP flow 10.0.1.1:5353 -> 10.9.0.53:53, 500 bytes, 2 packets
//   ssh: in steps i % 7 == 3, one TCP flow 10.0.2.1:50000 -> 10.9.0.22:22, 3000 bytes, 30 packets
// Channels: all = "any" (+), web = "port 80" (+), dns = "port 53" (-). Each flow lies inside its
// step (first = last = step start + step/2).
#include <cstdint>
#include <string>
#include <vector>

#include "collector/profile/profiler.hpp"
#include "collector/record/flow_record.hpp"
#include "collector/store/store.hpp"

namespace nc::dashtest {

inline uint64_t webBytes(size_t i) {
  return 1000 * (i % 50 + 1);
}

inline FlowRecord demoFlow(uint8_t proto, uint32_t src, uint16_t sport, uint32_t dst,
                           uint16_t dport, uint64_t t, uint64_t bytes, uint64_t packets) {
  FlowRecord r;
  r.proto = proto;
  r.src_addr = IpAddr::fromV4(src);
  r.dst_addr = IpAddr::fromV4(dst);
  r.src_port = sport;
  r.dst_port = dport;
  r.first_ns = t;
  r.last_ns = t;
  r.received_ns = t + 500'000'000;
  r.bytes = bytes;
  r.packets = packets;
  r.sampling_rate = 1;
  r.ip_version = 4;
  r.exporter = IpAddr::fromV4(0xc0000201);  // 192.0.2.1
  return r;
}

// The flows of steps [from, to).
inline std::vector<FlowRecord> demoFlows(uint64_t t0, uint64_t step_ns, size_t from, size_t to) {
  std::vector<FlowRecord> out;
  for (size_t i = from; i < to; ++i) {
    const uint64_t t = t0 + i * step_ns + step_ns / 2;
    out.push_back(demoFlow(6, 0x0a000000 + static_cast<uint32_t>(i % 250 + 1), 40000, 0x0a090001,
                           80, t, webBytes(i), 10));
    if (i % 2 == 0) {
      out.push_back(demoFlow(17, 0x0a000101, 5353, 0x0a090035, 53, t, 500, 2));
    }
    if (i % 7 == 3) {
      out.push_back(demoFlow(6, 0x0a000201, 50000, 0x0a090016, 22, t, 3000, 30));
    }
  }
  return out;
}

inline profile::ChannelDef demoChannel(std::string name, std::string filter, char sign,
                                       std::string colour) {
  profile::ChannelDef c;
  c.name = std::move(name);
  c.filter = std::move(filter);
  c.sign = sign;
  c.colour = std::move(colour);
  return c;
}

inline profile::ProfileDef demoProfile(uint64_t t0) {
  profile::ProfileDef d;
  d.name = "demo";
  d.start_ns = t0;
  d.channels = {demoChannel("all", "any", '+', "#48c6ff"),
                demoChannel("web", "port 80", '+', "#ff9a3c"),
                demoChannel("dns", "port 53", '-', "#7bd47b")};
  return d;
}

// Writes `flows` to a store at `path` (created).
inline void writeStore(const std::string& path, const std::vector<FlowRecord>& flows) {
  store::StoreOptions so;
  so.path = path;
  store::Writer w(so);
  w.append(flows);
  w.close();
}

// Feeds `flows` through `shard` and ticks `prof` at `now` until nothing moves any more.
inline bool feedAndTick(profile::Profiler& prof, profile::ProfileShard& shard,
                        const std::vector<FlowRecord>& flows, uint64_t now) {
  if (!flows.empty()) {
    sink::Batch b;
    b.records = flows;
    shard.onBatch(b);
  }
  shard.flush();
  nlohmann::json before;
  int same = 0;
  for (int i = 0; i < 500 && same < 2; ++i) {
    prof.tick(now);
    if (!prof.waitIdle(60'000)) {
      return false;
    }
    auto st = prof.status();
    nlohmann::json key = {st["steps_written"], st["backfilling_channels"], st["open_steps"]};
    same = key == before ? same + 1 : 0;
    before = std::move(key);
  }
  return true;
}

}  // namespace nc::dashtest
