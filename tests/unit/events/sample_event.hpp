#pragma once
// A fully populated Event for the events tests (times are whole milliseconds, as in the JSON form).
#include "collector/events/events.hpp"
#include "collector/record/fields.hpp"

namespace nc::events {

inline uint64_t at(const char* rfc3339) {
  uint64_t t = 0;
  parseTime(rfc3339, t);
  return t;
}

inline Event sampleEvent() {
  Event e;
  e.id = "20261207T172731Z-000042";
  e.start_ns = at("2026-12-07T17:27:31Z");
  e.subject.kind = SubjectKind::kPort;
  e.subject.name = "h1-ovs";
  e.subject.bridge = "br0";
  e.subject.ofport = 101;
  e.subject.ifindex = 7;
  e.subject.mac = "52:54:00:12:34:56";
  e.subject.vm = "6f1c2a";
  e.subject.external_ids = {{"vm-id", "6f1c2a"}, {"iface-id", "port-1"}};
  e.direction = Direction::kIn;
  e.metric = Metric::kBytes;
  e.observed = 1550000;
  e.baseline = 10000;
  e.ratio = 155;
  e.netlink.operstate = "up";
  e.netlink.mtu = 1500;
  e.netlink.addresses = {"10.77.0.2/24", "fe80::1/64"};
  e.netlink.changes = {{at("2026-12-07T17:27:20Z"), "carrier up"}};
  e.top = {{"10.77.0.1 -> 10.77.0.2 TCP 5201", 46500000, 31000, 0.93}};
  e.exporters = {"127.0.0.1"};
  e.detector = {{"k", 5}, {"step", "10s"}, {"min_rate", 1000.5}};
  return e;
}

}  // namespace nc::events
