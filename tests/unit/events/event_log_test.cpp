// EventLog: append/update/query, last record wins, reopening, torn lines, retention, size cap,
// write errors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "collector/events/events.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/events/sample_event.hpp"

namespace nc::events {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kSec = 1'000'000'000ULL;
constexpr uint64_t kDayNs = 86400 * kSec;
constexpr uint64_t kYear = 365 * kDayNs;

// Now, in whole milliseconds (the precision of event times in JSON).
uint64_t wallNow() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()) *
         1'000'000ULL;
}

std::string dayName(uint64_t ns) {
  time_t s = static_cast<time_t>(ns / kSec);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "events-%Y%m%d.jsonl", &tm);
  return buf;
}

Event eventOn(const std::string& port, const std::string& vm, uint64_t start_ns,
              std::optional<uint64_t> end_ns = std::nullopt) {
  Event e = sampleEvent();
  e.id.clear();
  e.subject.name = port;
  e.subject.vm = vm;
  e.start_ns = start_ns;
  e.end_ns = end_ns;
  return e;
}

std::vector<std::string> ids(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) {
    out.push_back(e.id);
  }
  return out;
}

std::vector<std::string> fileNames(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& f : fs::directory_iterator(dir)) {
    out.push_back(f.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes the events (one line each) as a whole day file of at least `pad_to` bytes.
void writeDayFile(const fs::path& dir, const std::string& name, const std::vector<Event>& events,
                  size_t pad_to = 0) {
  std::ofstream out(dir / name, std::ios::binary);
  size_t n = 0;
  for (const auto& e : events) {
    std::string line = toJson(e).dump() + "\n";
    out << line;
    n += line.size();
  }
  while (n < pad_to) {  // padding: empty lines are skipped by readers
    out << "\n";
    ++n;
  }
}

TEST(EventLogTest, AppendUpdateQueryLastRecordWins) {
  test::TempDir tmp("events");
  EventLog log(tmp.path() / "events", 30 * kDayNs);
  uint64_t t0 = wallNow() - 3600 * kSec;
  Event a = eventOn("h1-ovs", "vm-a", t0);
  Event b = eventOn("h2-ovs", "vm-b", t0 + 10 * kSec);
  std::string ida = log.append(a);
  std::string idb = log.append(b);
  EXPECT_EQ(ida, a.id);
  EXPECT_NE(ida, idb);
  EXPECT_EQ(log.ongoing().size(), 2u);

  a.end_ns = t0 + 42 * kSec;
  a.observed = 2e6;
  log.update(a);
  auto all = log.query({});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0], a);  // the end record replaced the start record
  EXPECT_EQ(all[1], b);
  EXPECT_EQ(ids(log.ongoing()), std::vector<std::string>{idb});
  auto st = log.status();
  EXPECT_EQ(st["events"], 2);
  EXPECT_EQ(st["files"], 1);
  EXPECT_EQ(st["write_errors"], 0);
  EXPECT_EQ(st["dir"], (tmp.path() / "events").string());
  // Three lines on disk: both starts and a's end.
  std::string text = readAll(tmp.path() / "events" / dayName(wallNow()));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  // A reader without the log sees the same.
  EXPECT_EQ(queryDir((tmp.path() / "events").string(), {}), all);
}

TEST(EventLogTest, QueryOverlapGlobsAndLimit) {
  test::TempDir tmp("events");
  EventLog log(tmp.path(), 0);
  const uint64_t t = wallNow() - 1000 * kSec;
  Event a = eventOn("h1-ovs", "vm-a", t + 10 * kSec, t + 20 * kSec);
  Event b = eventOn("h2-ovs", "vm-b", t + 30 * kSec);  // ongoing
  Event c = eventOn("tap7", "", t + 50 * kSec, t + 60 * kSec);
  Event d = eventOn("10.0.0.1", "vm-a", t + 55 * kSec, t + 70 * kSec);
  d.subject.kind = SubjectKind::kAddress;
  for (Event* e : {&a, &b, &c, &d}) {
    log.append(*e);
  }
  auto q = [&](uint64_t since, uint64_t until) {
    Query query;
    query.since_ns = t + since * kSec;
    query.until_ns = t + until * kSec;
    return ids(log.query(query));
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(q(0, 10), V{});                       // until is exclusive
  EXPECT_EQ(q(0, 11), V{a.id});                   // a starts inside
  EXPECT_EQ(q(15, 16), V{a.id});                  // inside a
  EXPECT_EQ(q(20, 21), V{a.id});                  // a's end is inside
  EXPECT_EQ(q(21, 30), V{});                      // between a and b
  EXPECT_EQ(q(40, 41), V{b.id});                  // b is ongoing
  EXPECT_EQ(q(58, 1000), (V{b.id, c.id, d.id}));  // ordered by start
  EXPECT_EQ(q(0, 1000), (V{a.id, b.id, c.id, d.id}));

  Query port;
  port.port = "h*-ovs";
  EXPECT_EQ(ids(log.query(port)), (V{a.id, b.id}));
  port.port = "*";  // only port subjects
  EXPECT_EQ(ids(log.query(port)), (V{a.id, b.id, c.id}));
  Query vm;
  vm.vm = "vm-[a]";
  EXPECT_EQ(ids(log.query(vm)), (V{a.id, d.id}));
  vm.port = "h?-ovs";
  EXPECT_EQ(ids(log.query(vm)), (V{a.id}));
  Query limit;
  limit.limit = 2;  // the latest two, still in start order
  EXPECT_EQ(ids(log.query(limit)), (V{c.id, d.id}));
}

TEST(EventLogTest, IdsContinueAndOngoingSurviveReopening) {
  test::TempDir tmp("events");
  uint64_t t = wallNow() - 100 * kSec;
  std::string first;
  std::string second;
  {
    EventLog log(tmp.path(), 30 * kDayNs);
    Event a = eventOn("h1-ovs", "", t, t + kSec);
    Event b = eventOn("h2-ovs", "", t + 2 * kSec);
    first = log.append(a);
    second = log.append(b);
  }
  EventLog log(tmp.path(), 30 * kDayNs);
  auto ongoing = log.ongoing();
  ASSERT_EQ(ongoing.size(), 1u);
  EXPECT_EQ(ongoing[0].id, second);
  EXPECT_FALSE(ongoing[0].end_ns);
  Event c = eventOn("h3-ovs", "", t + 3 * kSec);
  std::string third = log.append(c);
  EXPECT_EQ(idSequence(first), 1u);
  EXPECT_EQ(idSequence(second), 2u);
  EXPECT_EQ(idSequence(third), 3u);
  EXPECT_EQ(log.status()["events"], 3);
  // Ending the left-over event after the restart.
  ongoing[0].end_ns = t + 5 * kSec;
  log.update(ongoing[0]);
  EXPECT_EQ(ids(log.ongoing()), std::vector<std::string>{third});
}

TEST(EventLogTest, TornLastLineIsSkippedAndTheNextAppendStartsAFreshLine) {
  test::TempDir tmp("events");
  uint64_t t = wallNow() - 100 * kSec;
  std::string first;
  {
    EventLog log(tmp.path(), 30 * kDayNs);
    Event a = eventOn("h1-ovs", "", t);
    first = log.append(a);
  }
  const fs::path file = tmp.path() / dayName(wallNow());
  {
    // A crash in the middle of writing the second record.
    std::string line = toJson(eventOn("h2-ovs", "", t)).dump();
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out << line.substr(0, line.size() / 2);
  }
  EventLog log(tmp.path(), 30 * kDayNs);
  EXPECT_EQ(ids(log.query({})), std::vector<std::string>{first});
  EXPECT_EQ(log.status()["write_errors"], 0);
  EXPECT_EQ(log.status()["skipped_lines"], 1);
  Event b = eventOn("h3-ovs", "", t + kSec);
  std::string second = log.append(b);
  EXPECT_EQ(ids(log.query({})), (std::vector<std::string>{first, second}));
  std::string text = readAll(file);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  // The torn fragment stays on its own line; the new record is whole on the next.
  std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  Event back;
  ASSERT_TRUE(fromJson(json::parse(last), back, nullptr));
  EXPECT_EQ(back.id, second);
}

TEST(EventLogTest, RetentionDeletesOldDayFiles) {
  test::TempDir tmp("events");
  const uint64_t now = wallNow();
  Event old = eventOn("old-ovs", "", now - 2 * kYear, now - 2 * kYear + kSec);
  old.id = makeId(old.start_ns, 7);
  Event recent = eventOn("recent-ovs", "", now - 2 * kDayNs, now - 2 * kDayNs + kSec);
  recent.id = makeId(recent.start_ns, 8);
  writeDayFile(tmp.path(), dayName(old.start_ns), {old});
  writeDayFile(tmp.path(), dayName(recent.start_ns), {recent});
  std::ofstream(tmp.path() / "notes.txt") << "not an event file\n";

  EventLog log(tmp.path(), 30 * kDayNs);
  EXPECT_EQ(fileNames(tmp.path()),
            (std::vector<std::string>{dayName(recent.start_ns), "notes.txt"}));
  EXPECT_EQ(ids(log.query({})), std::vector<std::string>{recent.id});
  // Ids continue past the highest seen, also from files retention then removed.
  Event e = eventOn("new-ovs", "", now);
  EXPECT_EQ(idSequence(log.append(e)), 9u);
}

TEST(EventLogTest, RetentionRunsOnAppendAsTimeGoesBy) {
  test::TempDir tmp("events");
  uint64_t now = wallNow();
  EventLog log(tmp.path(), 2 * kDayNs);
  log.setClockForTest([&] { return now; });
  Event a = eventOn("a-ovs", "", now, now + kSec);
  log.append(a);
  Event b = eventOn("b-ovs", "", now + 2 * kSec);  // stays ongoing
  log.append(b);
  now += 5 * kDayNs;
  Event c = eventOn("c-ovs", "", now);
  log.append(c);
  // a's day went; b was ongoing, so it was written again into today's file.
  EXPECT_EQ(fileNames(tmp.path()), std::vector<std::string>{dayName(now)});
  EXPECT_EQ(ids(log.query({})), (std::vector<std::string>{b.id, c.id}));
  EXPECT_EQ(ids(log.ongoing()), (std::vector<std::string>{b.id, c.id}));
  EXPECT_EQ(log.status()["events"], 2);
}

TEST(EventLogTest, SizeCapDropsTheOldestFilesFirst) {
  test::TempDir tmp("events");
  const uint64_t now = wallNow();
  std::vector<std::string> names;
  for (int d = 3; d >= 1; --d) {
    Event e = eventOn(fmt::format("p{}", d), "", now - d * kDayNs, now - d * kDayNs + kSec);
    e.id = makeId(e.start_ns, static_cast<uint64_t>(10 - d));
    names.push_back(dayName(e.start_ns));
    writeDayFile(tmp.path(), names.back(), {e}, 3300);
  }
  EventLog log(tmp.path(), 30 * kDayNs, 7000);
  EXPECT_EQ(fileNames(tmp.path()), (std::vector<std::string>{names[1], names[2]}));
  EXPECT_EQ(log.query({}).size(), 2u);
  // Appending past the cap drops the next oldest.
  Event e = eventOn("today", "", now);
  log.append(e);
  EXPECT_EQ(fileNames(tmp.path()), (std::vector<std::string>{names[2], dayName(now)}));
  EXPECT_LE(log.status()["bytes"].get<uint64_t>(), 7000u);
  EXPECT_EQ(log.status()["write_errors"], 0);
}

TEST(EventLogTest, TodaysFileAloneOverTheCapRefusesWritesWithoutThrowing) {
  test::TempDir tmp("events");
  EventLog log(tmp.path(), 0, 3000);
  uint64_t t = wallNow();
  Event a = eventOn("a-ovs", "", t);
  log.append(a);
  Event b = eventOn("b-ovs", "", t);
  b.detector["padding"] = std::string(4000, 'x');
  EXPECT_NO_THROW(log.append(b));
  EXPECT_EQ(log.status()["write_errors"], 1);
  EXPECT_NE(log.status()["last_error"].get<std::string>().find("size cap"), std::string::npos);
  EXPECT_EQ(ids(log.query({})), std::vector<std::string>{a.id});
}

TEST(EventLogTest, WriteErrorsAreCountedNotThrown) {
  test::TempDir tmp("events");
  uint64_t now = wallNow();
  // Today's file cannot be opened: a directory holds its name.
  fs::create_directories(tmp.path() / dayName(now) / "x");
  EventLog log(tmp.path(), 0);
  Event e = eventOn("h1-ovs", "", now);
  std::string id;
  EXPECT_NO_THROW(id = log.append(e));
  EXPECT_FALSE(id.empty());
  EXPECT_NO_THROW(log.update(e));
  auto st = log.status();
  EXPECT_EQ(st["write_errors"], 2);
  EXPECT_NE(st["last_error"].get<std::string>().find("cannot open"), std::string::npos);
  EXPECT_TRUE(log.ongoing().empty());
}

TEST(EventLogTest, AnEventThatEndsTheNextDayIsFoundByItsEnd) {
  test::TempDir tmp("events");
  uint64_t now = wallNow() - 10 * kDayNs;
  EventLog log(tmp.path(), 0);
  log.setClockForTest([&] { return now; });
  Event a = eventOn("h1-ovs", "", now);
  log.append(a);
  now += kDayNs;
  a.end_ns = now;
  log.update(a);
  EXPECT_EQ(fileNames(tmp.path()).size(), 2u);
  Query q;
  q.since_ns = now - kSec;
  auto found = log.query(q);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].end_ns, now);
  q.since_ns = now + kSec;
  EXPECT_TRUE(log.query(q).empty());
}

TEST(EventLogTest, CannotCreateTheDirectoryThrowsNamingIt) {
  test::TempDir tmp("events");
  std::ofstream(tmp.path() / "file") << "x";
  try {
    EventLog log((tmp.path() / "file" / "events").string(), 0);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((tmp.path() / "file").string()), std::string::npos);
  }
}

}  // namespace
}  // namespace nc::events
