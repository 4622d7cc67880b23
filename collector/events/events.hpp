#pragma once
// Traffic-spike events: the typed Event, its JSON form, the append-only on-disk event log and the
// webhook that posts events to an HTTP endpoint. Detection is not here (collector/correlate/ makes
// Events); this library stores, lists and delivers them.
//
// JSON form of an Event (times are RFC 3339 UTC with milliseconds, rates are per second):
//   {"id": "20261207T172731Z-000042", "start": "2026-12-07T17:27:31.000Z", "end": null,
//    "subject": {"kind": "port", "name": "h1-ovs", "bridge": "br0", "ofport": 101, "ifindex": 7,
//                "mac": "52:54:00:12:34:56", "vm": "6f1c...", "external_ids": {"vm-id":
//                "6f1c..."}},
//    "direction": "in", "metric": "bytes", "observed": 1550000.0, "baseline": 10000.0,
//    "ratio": 155.0,
//    "netlink": {"operstate": "up", "mtu": 1500, "addresses": ["10.77.0.2/24"],
//                "changes": [{"time": "...", "what": "carrier up"}]},
//    "top": [{"key": "10.77.0.1 -> 10.77.0.2 TCP 5201", "bytes": 1, "packets": 1, "share": 0.93}],
//    "exporters": ["127.0.0.1"], "detector": {...}}
// "end" is null while the event is ongoing; unknown ofport/ifindex/mtu are null; unknown strings
// are "". Non-finite rates are written as null and read back as 0.
//
// Event log layout (<store.path>/events/):
//   events-20261207.jsonl     one JSON Event per line, one file per UTC day of writing
//   events-20261208.jsonl
// An event is appended when it starts (end null) and appended again, whole and with the same id,
// each time it is updated or ends; readers take the LAST record of each id. A torn last line (a
// crash during write) is skipped by readers; the next append starts a fresh line. Retention drops
// whole day files: by age, and oldest first while the total exceeds the size cap.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nc::events {

enum class SubjectKind { kPort, kAddress };
enum class Direction { kIn, kOut };
enum class Metric { kBytes, kPackets };

std::string_view toString(SubjectKind k);  // "port", "address"
std::string_view toString(Direction d);    // "in", "out"
std::string_view toString(Metric m);       // "bytes", "packets"
bool parseSubjectKind(std::string_view text, SubjectKind& out);
bool parseDirection(std::string_view text, Direction& out);
bool parseMetric(std::string_view text, Metric& out);

// What the event is about: an OVS port (with what OVSDB and netlink know of it) or a local address.
struct Subject {
  SubjectKind kind = SubjectKind::kPort;
  std::string name;    // port name, or the address for kind=address
  std::string bridge;  // OVS bridge, "" when unknown or not a port
  std::optional<uint32_t> ofport;
  std::optional<uint32_t> ifindex;
  std::string mac;
  std::string vm;  // VM / container id from external_ids (vm-id, iface-id, ...), "" when none
  std::map<std::string, std::string> external_ids;
  bool operator==(const Subject&) const = default;
};

struct NetlinkChange {
  uint64_t time_ns = 0;
  std::string what;  // "operstate up -> down", "mtu 1500 -> 9000", "address 10.0.0.2/24 added"
  bool operator==(const NetlinkChange&) const = default;
};

// The interface's netlink state when the event was made, and changes seen around it.
struct Netlink {
  std::string operstate;  // "up", "down", "unknown", ... ("" when not known)
  std::optional<uint32_t> mtu;
  std::vector<std::string> addresses;
  std::vector<NetlinkChange> changes;
  bool operator==(const Netlink&) const = default;
};

// One of the flows (or aggregates) that make up the spike.
struct TopEntry {
  std::string key;  // "10.77.0.1 -> 10.77.0.2 TCP 5201"
  uint64_t bytes = 0;
  uint64_t packets = 0;
  double share = 0;  // 0..1 of the subject's traffic during the event
  bool operator==(const TopEntry&) const = default;
};

struct Event {
  std::string id;  // assigned by EventLog::append when empty
  uint64_t start_ns = 0;
  std::optional<uint64_t> end_ns;  // nullopt while ongoing
  Subject subject;
  Direction direction = Direction::kIn;
  Metric metric = Metric::kBytes;
  double observed = 0;  // peak rate, per second (bytes/s or packets/s)
  double baseline = 0;  // learned rate, per second
  double ratio = 0;     // observed / baseline
  Netlink netlink;
  std::vector<TopEntry> top;
  std::vector<std::string> exporters;
  nlohmann::json detector = nlohmann::json::object();  // the detector's parameters
  bool operator==(const Event&) const = default;
};

// JSON form (see the top of this file). Times keep millisecond precision.
nlohmann::json toJson(const Event& e);
// Fills `e` from a JSON object written by toJson(). Requires id, start, subject.kind,
// subject.name, direction and metric; other fields default when absent. Returns false and sets
// `why` (when not null) on a missing required field or a value of the wrong type.
bool fromJson(const nlohmann::json& obj, Event& e, std::string* why);

// One readable line for logs and `net-collector events`:
//   event 20261207T172731Z-000042 started: port h1-ovs (br0, ofport 101, vm 6f1c...) in bytes
//   12.4 Mb/s vs baseline 80 kb/s (155x); top 10.77.0.1 -> 10.77.0.2 TCP 5201 93%
// With `ended`: "event ... ended after 42 s, peak 12.4 Mb/s vs baseline ...". Byte rates are
// shown in bits per second, packet rates as p/s.
std::string formatLine(const Event& e, bool ended);

// An event id: "<start as YYYYMMDDTHHMMSSZ>-<sequence, 6 digits or more>".
std::string makeId(uint64_t start_ns, uint64_t seq);
// The sequence part of an id made by makeId, or nullopt.
std::optional<uint64_t> idSequence(std::string_view id);

struct Query {
  uint64_t since_ns = 0;           // an event matches when it overlaps [since, until):
  uint64_t until_ns = UINT64_MAX;  //   start < until and (ongoing or end >= since)
  std::string port;                // glob on subject.name of port events ("" = any subject)
  std::string vm;                  // glob on subject.vm ("" = any)
  size_t limit = 0;  // 0 = all; else the latest `limit` events by start (still in start order)
};

// Reads the event log in `dir` without opening it for writing (for the CLI). Missing directory =
// no events. Results are ordered by start (then id).
std::vector<Event> queryDir(const std::string& dir, const Query& q);

// The append-only event log. Thread-safe: one mutex for appends and bookkeeping; queries read the
// files outside it (events are rare, so a query reads every file; at most the size cap).
// append/update never throw: write errors are counted and reported by status().
class EventLog {
 public:
  static constexpr uint64_t kDefaultMaxBytes = 64ULL << 20;

  // Creates `dir` (throws std::runtime_error naming it when that fails), applies retention, reads
  // the existing files so that ids continue and ongoing events are known. `retention_ns` 0 =
  // keep by size only.
  EventLog(std::string dir, uint64_t retention_ns, uint64_t max_bytes = kDefaultMaxBytes);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Writes a started (or whole) event. Assigns `e.id` when empty; returns the id.
  std::string append(Event& e);
  // Writes the event again (same id): an update, or its end when end_ns is set.
  void update(const Event& e);

  std::vector<Event> query(const Query& q) const;
  // Events whose last record has no end, ordered by start: after a restart, the ones a crash or
  // stop left open.
  std::vector<Event> ongoing() const;
  // {"dir", "files", "bytes", "max_bytes", "events", "ongoing", "skipped_lines", "write_errors",
  //  "last_error"}
  nlohmann::json status() const;
  const std::string& dir() const { return dir_; }

  // Wall clock used for file days and retention (tests move it).
  void setClockForTest(std::function<uint64_t()> now);

 private:
  void write(const Event& e);
  bool writeLine(const std::string& line, uint64_t now_ns);
  // Drops day files older than retention, then oldest files while the total plus `incoming`
  // bytes exceeds the cap (never today's); rewrites ongoing events whose last record went.
  void retention(uint64_t now_ns, uint64_t incoming);
  bool openDay(uint64_t now_ns);
  uint64_t totalBytes() const;
  void fail(std::string what);
  uint64_t now() const;

  std::string dir_;
  uint64_t retention_ns_;
  uint64_t max_bytes_;
  std::function<uint64_t()> clock_;

  mutable std::mutex mutex_;
  int fd_ = -1;
  std::string day_;                               // "YYYYMMDD" of fd_
  bool need_newline_ = false;                     // fd_'s file does not end with '\n' (torn line)
  std::map<std::string, uint64_t> files_;         // file name -> bytes, oldest first
  std::map<std::string, Event> ongoing_;          // id -> last record, end not set
  std::map<std::string, std::string> last_file_;  // id -> file of its last record
  uint64_t skipped_lines_ = 0;                    // unreadable lines found at open
  uint64_t next_seq_ = 1;
  uint64_t write_errors_ = 0;
  std::string last_error_;
  uint64_t last_retention_ns_ = 0;
};

struct WebhookOptions {
  size_t queue_limit = 1000;                       // events waiting; the oldest is dropped
  std::chrono::milliseconds initial_backoff{500};  // doubles after each failed attempt
  std::chrono::milliseconds max_backoff{30000};
  unsigned max_attempts = 8;                // per event, then it is dropped
  std::chrono::milliseconds timeout{5000};  // connect + request + response
};

// Posts each event as JSON to an http:// URL (HTTP/1.1 POST, Content-Type: application/json,
// one connection per event) from the given io_context. One request at a time, in order. Connect
// errors, timeouts and 5xx answers are retried with exponential backoff; 2xx = delivered; any
// other status = dropped (counted). Destroy it before the io_context.
class Webhook {
 public:
  // Throws std::runtime_error for a URL that is not http://host[:port][/path] (https included).
  Webhook(boost::asio::io_context& io, const std::string& url, WebhookOptions opts = {});
  // Stops: the request in flight is abandoned, queued events are discarded.
  ~Webhook();
  Webhook(const Webhook&) = delete;
  Webhook& operator=(const Webhook&) = delete;

  // Queues the event; never blocks, any thread. Returns false when the queue was full (the oldest
  // waiting event was dropped to make room) or the webhook is stopped.
  bool post(const Event& e);
  // {"url", "queued", "delivered", "failed" (failed attempts), "dropped", "dropped_overflow",
  //  "dropped_rejected", "dropped_retries", "last_error"}; any thread.
  nlohmann::json status() const;
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace nc::events
