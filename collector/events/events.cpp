#include "collector/events/events.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include "collector/record/fields.hpp"
#include "common/log.hpp"

namespace nc::events {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kSecond = 1000000000ULL;
constexpr uint64_t kDay = 86400 * kSecond;
constexpr uint64_t kHour = 3600 * kSecond;

// ---- JSON helpers ---------------------------------------------------------------------------

void setWhy(std::string* why, std::string text) {
  if (why != nullptr) {
    *why = std::move(text);
  }
}

json timeOrNull(const std::optional<uint64_t>& t) {
  return t ? json(formatTime(*t)) : json(nullptr);
}

template <typename T>
json numberOrNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json rate(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// Each reader returns false and sets `why` (naming `path`) on a wrong type. Absent members leave
// `out` alone unless `required`.
bool readString(const json& obj, const char* key, std::string& out, std::string* why,
                const std::string& path, bool required = false) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) {
      setWhy(why, fmt::format("{}{}: missing", path, key));
    }
    return !required;
  }
  if (!it->is_string()) {
    setWhy(why, fmt::format("{}{}: must be a string", path, key));
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool readTime(const json& v, uint64_t& out, std::string* why, const std::string& what) {
  if (!v.is_string() || !parseTime(v.get_ref<const std::string&>(), out)) {
    setWhy(why, fmt::format("{}: must be an RFC 3339 time", what));
    return false;
  }
  return true;
}

template <typename T>
bool readUnsigned(const json& v, T& out, std::string* why, const std::string& what) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    setWhy(why, fmt::format("{}: must be a non-negative integer", what));
    return false;
  }
  uint64_t u = v.get<uint64_t>();
  if (u > std::numeric_limits<T>::max()) {
    setWhy(why, fmt::format("{}: out of range", what));
    return false;
  }
  out = static_cast<T>(u);
  return true;
}

bool readOptionalU32(const json& obj, const char* key, std::optional<uint32_t>& out,
                     std::string* why, const std::string& path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    out.reset();
    return true;
  }
  uint32_t v = 0;
  if (!readUnsigned(*it, v, why, path + key)) {
    return false;
  }
  out = v;
  return true;
}

bool readDouble(const json& obj, const char* key, double& out, std::string* why,
                const std::string& path = "") {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    out = 0;
    return true;
  }
  if (!it->is_number()) {
    setWhy(why, fmt::format("{}{}: must be a number", path, key));
    return false;
  }
  out = it->get<double>();
  return true;
}

bool readStringList(const json& obj, const char* key, std::vector<std::string>& out,
                    std::string* why, const std::string& path) {
  out.clear();
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return true;
  }
  if (!it->is_array()) {
    setWhy(why, fmt::format("{}{}: must be an array of strings", path, key));
    return false;
  }
  for (const auto& s : *it) {
    if (!s.is_string()) {
      setWhy(why, fmt::format("{}{}: must be an array of strings", path, key));
      return false;
    }
    out.push_back(s.get<std::string>());
  }
  return true;
}

bool readSubject(const json& s, Subject& out, std::string* why) {
  if (!s.is_object()) {
    setWhy(why, "subject: must be an object");
    return false;
  }
  const std::string p = "subject.";
  std::string kind;
  if (!readString(s, "kind", kind, why, p, true)) {
    return false;
  }
  if (!parseSubjectKind(kind, out.kind)) {
    setWhy(why, fmt::format("subject.kind: must be \"port\" or \"address\" (got \"{}\")", kind));
    return false;
  }
  out.bridge.clear();
  out.mac.clear();
  out.vm.clear();
  out.external_ids.clear();
  if (!readString(s, "name", out.name, why, p, true) ||
      !readString(s, "bridge", out.bridge, why, p) || !readString(s, "mac", out.mac, why, p) ||
      !readString(s, "vm", out.vm, why, p) || !readOptionalU32(s, "ofport", out.ofport, why, p) ||
      !readOptionalU32(s, "ifindex", out.ifindex, why, p)) {
    return false;
  }
  auto it = s.find("external_ids");
  if (it != s.end() && !it->is_null()) {
    if (!it->is_object()) {
      setWhy(why, "subject.external_ids: must be an object of strings");
      return false;
    }
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) {
        setWhy(why, fmt::format("subject.external_ids.{}: must be a string", k));
        return false;
      }
      out.external_ids[k] = v.get<std::string>();
    }
  }
  return true;
}

bool readNetlink(const json& obj, Netlink& out, std::string* why) {
  out = Netlink{};
  auto it = obj.find("netlink");
  if (it == obj.end() || it->is_null()) {
    return true;
  }
  const json& n = *it;
  if (!n.is_object()) {
    setWhy(why, "netlink: must be an object");
    return false;
  }
  const std::string p = "netlink.";
  if (!readString(n, "operstate", out.operstate, why, p) ||
      !readOptionalU32(n, "mtu", out.mtu, why, p) ||
      !readStringList(n, "addresses", out.addresses, why, p)) {
    return false;
  }
  auto ch = n.find("changes");
  if (ch == n.end() || ch->is_null()) {
    return true;
  }
  if (!ch->is_array()) {
    setWhy(why, "netlink.changes: must be an array");
    return false;
  }
  for (const auto& c : *ch) {
    NetlinkChange nc;
    if (!c.is_object() || !c.contains("time") ||
        !readTime(c["time"], nc.time_ns, why, "netlink.changes[].time") ||
        !readString(c, "what", nc.what, why, "netlink.changes[].")) {
      if (!c.is_object() || !c.contains("time")) {
        setWhy(why, "netlink.changes[]: must be objects with \"time\" and \"what\"");
      }
      return false;
    }
    out.changes.push_back(std::move(nc));
  }
  return true;
}

bool readTop(const json& obj, std::vector<TopEntry>& out, std::string* why) {
  out.clear();
  auto it = obj.find("top");
  if (it == obj.end() || it->is_null()) {
    return true;
  }
  if (!it->is_array()) {
    setWhy(why, "top: must be an array");
    return false;
  }
  for (const auto& t : *it) {
    if (!t.is_object()) {
      setWhy(why, "top[]: must be objects");
      return false;
    }
    TopEntry e;
    if (!readString(t, "key", e.key, why, "top[].", true)) {
      return false;
    }
    if (t.contains("bytes") && !readUnsigned(t["bytes"], e.bytes, why, "top[].bytes")) {
      return false;
    }
    if (t.contains("packets") && !readUnsigned(t["packets"], e.packets, why, "top[].packets")) {
      return false;
    }
    if (!readDouble(t, "share", e.share, why, "top[].")) {
      return false;
    }
    out.push_back(std::move(e));
  }
  return true;
}

// ---- formatting -----------------------------------------------------------------------------

// Three significant digits without trailing zeros: 12.4, 80, 155, 1.5.
std::string sig3(double v) {
  std::string s;
  double a = std::fabs(v);
  if (a >= 100) {
    s = fmt::format("{:.0f}", v);
  } else if (a >= 10) {
    s = fmt::format("{:.1f}", v);
  } else {
    s = fmt::format("{:.2f}", v);
  }
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') {
      s.pop_back();
    }
    if (s.back() == '.') {
      s.pop_back();
    }
  }
  return s;
}

// "12.4 Mb/s" for a byte rate (shown in bits), "1.2 kp/s" for a packet rate.
std::string formatRate(double per_s, Metric m) {
  static constexpr const char* kPrefix[] = {"", "k", "M", "G", "T", "P"};
  double v = m == Metric::kBytes ? per_s * 8 : per_s;
  if (!std::isfinite(v)) {
    return "?";
  }
  size_t i = 0;
  while (std::fabs(v) >= 999.5 && i + 1 < std::size(kPrefix)) {
    v /= 1000;
    ++i;
  }
  return fmt::format("{} {}{}", sig3(v), kPrefix[i], m == Metric::kBytes ? "b/s" : "p/s");
}

std::string formatRatio(double r) {
  if (!std::isfinite(r)) {
    return "?x";
  }
  return (std::fabs(r) >= 10 ? fmt::format("{:.0f}", r) : sig3(r)) + "x";
}

// "42 s", "3 min 20 s", "2 h 5 min".
std::string formatSeconds(uint64_t s) {
  if (s < 120) {
    return fmt::format("{} s", s);
  }
  if (s < 7200) {
    return s % 60 == 0 ? fmt::format("{} min", s / 60) : fmt::format("{} min {} s", s / 60, s % 60);
  }
  uint64_t m = (s / 60) % 60;
  return m == 0 ? fmt::format("{} h", s / 3600) : fmt::format("{} h {} min", s / 3600, m);
}

std::string describeSubject(const Subject& s) {
  std::vector<std::string> parts;
  if (!s.bridge.empty()) {
    parts.push_back(s.bridge);
  }
  if (s.ofport) {
    parts.push_back(fmt::format("ofport {}", *s.ofport));
  }
  if (!s.vm.empty()) {
    parts.push_back(fmt::format("vm {}", s.vm));
  }
  std::string out = fmt::format("{} {}", toString(s.kind), s.name);
  if (!parts.empty()) {
    out += " (";
    for (size_t i = 0; i < parts.size(); ++i) {
      out += (i ? ", " : "") + parts[i];
    }
    out += ")";
  }
  return out;
}

// ---- files ----------------------------------------------------------------------------------

std::string dayOf(uint64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / kSecond);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

std::string fileOfDay(const std::string& day) {
  return "events-" + day + ".jsonl";
}

// The start of the UTC day of an "events-YYYYMMDD.jsonl" name, or nullopt for other names.
std::optional<uint64_t> dayStart(const std::string& name) {
  if (name.size() != 21 || name.rfind("events-", 0) != 0 || name.compare(15, 6, ".jsonl") != 0) {
    return std::nullopt;
  }
  std::tm tm{};
  for (size_t i = 7; i < 15; ++i) {
    if (name[i] < '0' || name[i] > '9') {
      return std::nullopt;
    }
  }
  tm.tm_year = std::stoi(name.substr(7, 4)) - 1900;
  tm.tm_mon = std::stoi(name.substr(11, 2)) - 1;
  tm.tm_mday = std::stoi(name.substr(13, 2));
  time_t t = timegm(&tm);
  if (t < 0) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(t) * kSecond;
}

// Event files in `dir`, name -> size, oldest first.
std::map<std::string, uint64_t> listFiles(const std::string& dir) {
  std::map<std::string, uint64_t> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!dayStart(name)) {
      continue;
    }
    std::error_code sec;
    uint64_t size = it->file_size(sec);
    out[name] = sec ? 0 : size;
  }
  return out;
}

// Calls `fn(Event&&)` for each valid record of the file, in order. Lines that do not parse (a torn
// last line, or garbage) are skipped and counted in `skipped`.
template <typename Fn>
void readFile(const std::string& path, Fn&& fn, uint64_t* skipped) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) {
      continue;
    }
    json j = json::parse(line, nullptr, false);
    Event e;
    if (j.is_discarded() || !j.is_object() || !fromJson(j, e, nullptr)) {
      if (skipped != nullptr) {
        ++*skipped;
      }
      continue;
    }
    fn(std::move(e));
  }
}

bool matches(const Event& e, const Query& q) {
  if (e.start_ns >= q.until_ns) {
    return false;
  }
  if (e.end_ns && *e.end_ns < q.since_ns) {
    return false;
  }
  if (!q.port.empty() && (e.subject.kind != SubjectKind::kPort ||
                          ::fnmatch(q.port.c_str(), e.subject.name.c_str(), 0) != 0)) {
    return false;
  }
  if (!q.vm.empty() && ::fnmatch(q.vm.c_str(), e.subject.vm.c_str(), 0) != 0) {
    return false;
  }
  return true;
}

std::vector<Event> queryFiles(const std::string& dir, const std::map<std::string, uint64_t>& files,
                              const Query& q) {
  std::map<std::string, Event> last;
  for (const auto& [name, size] : files) {
    readFile(
        dir + "/" + name, [&](Event&& e) { last[e.id] = std::move(e); }, nullptr);
  }
  std::vector<Event> out;
  for (auto& [id, e] : last) {
    if (matches(e, q)) {
      out.push_back(std::move(e));
    }
  }
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.id < b.id;
  });
  if (q.limit != 0 && out.size() > q.limit) {
    out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(q.limit));
  }
  return out;
}

std::string dumpLine(const Event& e) {
  return toJson(e).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

void syncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

// ---- Event ----------------------------------------------------------------------------------

std::string_view toString(SubjectKind k) {
  return k == SubjectKind::kPort ? "port" : "address";
}
std::string_view toString(Direction d) {
  return d == Direction::kIn ? "in" : "out";
}
std::string_view toString(Metric m) {
  return m == Metric::kBytes ? "bytes" : "packets";
}

bool parseSubjectKind(std::string_view text, SubjectKind& out) {
  if (text == "port") {
    out = SubjectKind::kPort;
  } else if (text == "address") {
    out = SubjectKind::kAddress;
  } else {
    return false;
  }
  return true;
}

bool parseDirection(std::string_view text, Direction& out) {
  if (text == "in") {
    out = Direction::kIn;
  } else if (text == "out") {
    out = Direction::kOut;
  } else {
    return false;
  }
  return true;
}

bool parseMetric(std::string_view text, Metric& out) {
  if (text == "bytes") {
    out = Metric::kBytes;
  } else if (text == "packets") {
    out = Metric::kPackets;
  } else {
    return false;
  }
  return true;
}

json toJson(const Event& e) {
  json subject = {
      {"kind", toString(e.subject.kind)},
      {"name", e.subject.name},
      {"bridge", e.subject.bridge},
      {"ofport", numberOrNull(e.subject.ofport)},
      {"ifindex", numberOrNull(e.subject.ifindex)},
      {"mac", e.subject.mac},
      {"vm", e.subject.vm},
      {"external_ids", json::object()},
  };
  for (const auto& [k, v] : e.subject.external_ids) {
    subject["external_ids"][k] = v;
  }
  json changes = json::array();
  for (const auto& c : e.netlink.changes) {
    changes.push_back({{"time", formatTime(c.time_ns)}, {"what", c.what}});
  }
  json top = json::array();
  for (const auto& t : e.top) {
    top.push_back(
        {{"key", t.key}, {"bytes", t.bytes}, {"packets", t.packets}, {"share", rate(t.share)}});
  }
  return {
      {"id", e.id},
      {"start", formatTime(e.start_ns)},
      {"end", timeOrNull(e.end_ns)},
      {"subject", std::move(subject)},
      {"direction", toString(e.direction)},
      {"metric", toString(e.metric)},
      {"observed", rate(e.observed)},
      {"baseline", rate(e.baseline)},
      {"ratio", rate(e.ratio)},
      {"netlink",
       {{"operstate", e.netlink.operstate},
        {"mtu", numberOrNull(e.netlink.mtu)},
        {"addresses", e.netlink.addresses},
        {"changes", std::move(changes)}}},
      {"top", std::move(top)},
      {"exporters", e.exporters},
      {"detector", e.detector.is_null() ? json::object() : e.detector},
  };
}

bool fromJson(const json& obj, Event& e, std::string* why) {
  if (!obj.is_object()) {
    setWhy(why, "an event must be a JSON object");
    return false;
  }
  Event out;
  if (!readString(obj, "id", out.id, why, "", true)) {
    return false;
  }
  auto start = obj.find("start");
  if (start == obj.end()) {
    setWhy(why, "start: missing");
    return false;
  }
  if (!readTime(*start, out.start_ns, why, "start")) {
    return false;
  }
  auto end = obj.find("end");
  if (end != obj.end() && !end->is_null()) {
    uint64_t t = 0;
    if (!readTime(*end, t, why, "end")) {
      return false;
    }
    out.end_ns = t;
  }
  auto subject = obj.find("subject");
  if (subject == obj.end()) {
    setWhy(why, "subject: missing");
    return false;
  }
  if (!readSubject(*subject, out.subject, why)) {
    return false;
  }
  std::string text;
  if (!readString(obj, "direction", text, why, "", true)) {
    return false;
  }
  if (!parseDirection(text, out.direction)) {
    setWhy(why, fmt::format("direction: must be \"in\" or \"out\" (got \"{}\")", text));
    return false;
  }
  if (!readString(obj, "metric", text, why, "", true)) {
    return false;
  }
  if (!parseMetric(text, out.metric)) {
    setWhy(why, fmt::format("metric: must be \"bytes\" or \"packets\" (got \"{}\")", text));
    return false;
  }
  if (!readDouble(obj, "observed", out.observed, why) ||
      !readDouble(obj, "baseline", out.baseline, why) ||
      !readDouble(obj, "ratio", out.ratio, why) || !readNetlink(obj, out.netlink, why) ||
      !readTop(obj, out.top, why) || !readStringList(obj, "exporters", out.exporters, why, "")) {
    return false;
  }
  auto det = obj.find("detector");
  if (det != obj.end() && !det->is_null()) {
    if (!det->is_object()) {
      setWhy(why, "detector: must be an object");
      return false;
    }
    out.detector = *det;
  }
  e = std::move(out);
  return true;
}

std::string formatLine(const Event& e, bool ended) {
  std::string rates = fmt::format("{} vs baseline {} ({})", formatRate(e.observed, e.metric),
                                  formatRate(e.baseline, e.metric), formatRatio(e.ratio));
  std::string what = fmt::format("{} {} {}", describeSubject(e.subject), toString(e.direction),
                                 toString(e.metric));
  std::string out;
  if (!ended) {
    out = fmt::format("event {} started: {} {}", e.id, what, rates);
  } else if (e.end_ns) {
    uint64_t secs = *e.end_ns > e.start_ns ? (*e.end_ns - e.start_ns + kSecond / 2) / kSecond : 0;
    out =
        fmt::format("event {} ended after {}: {}, peak {}", e.id, formatSeconds(secs), what, rates);
  } else {
    out = fmt::format("event {} ended: {}, peak {}", e.id, what, rates);
  }
  for (size_t i = 0; i < e.top.size() && i < 3; ++i) {
    out +=
        fmt::format("{}{} {:.0f}%", i == 0 ? "; top " : ", ", e.top[i].key, e.top[i].share * 100);
  }
  return out;
}

std::string makeId(uint64_t start_ns, uint64_t seq) {
  time_t secs = static_cast<time_t>(start_ns / kSecond);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:06}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, seq);
}

std::optional<uint64_t> idSequence(std::string_view id) {
  size_t dash = id.rfind('-');
  if (dash == std::string_view::npos || dash + 1 >= id.size() || id.size() - dash > 20) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : id.substr(dash + 1)) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::vector<Event> queryDir(const std::string& dir, const Query& q) {
  return queryFiles(dir, listFiles(dir), q);
}

// ---- EventLog -------------------------------------------------------------------------------

EventLog::EventLog(std::string dir, uint64_t retention_ns, uint64_t max_bytes)
    : dir_(std::move(dir)), retention_ns_(retention_ns), max_bytes_(max_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    throw std::runtime_error(fmt::format("event log {}: cannot create: {}", dir_, ec.message()));
  }
  std::lock_guard lock(mutex_);
  files_ = listFiles(dir_);
  uint64_t skipped = 0;
  for (const auto& [name, size] : files_) {
    readFile(
        dir_ + "/" + name,
        [&](Event&& e) {
          if (auto seq = idSequence(e.id); seq && *seq >= next_seq_) {
            next_seq_ = *seq + 1;
          }
          last_file_[e.id] = name;
          if (e.end_ns) {
            ongoing_.erase(e.id);
          } else {
            ongoing_[e.id] = std::move(e);
          }
        },
        &skipped);
  }
  skipped_lines_ = skipped;
  if (!ongoing_.empty()) {
    log::info("events", "event log {}: {} event(s) left ongoing by the previous run", dir_,
              ongoing_.size());
  }
  retention(now(), 0);
}

EventLog::~EventLog() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void EventLog::setClockForTest(std::function<uint64_t()> now) {
  std::lock_guard lock(mutex_);
  clock_ = std::move(now);
}

uint64_t EventLog::now() const {
  if (clock_) {
    return clock_();
  }
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void EventLog::fail(std::string what) {
  ++write_errors_;
  if (what != last_error_) {
    log::warn("events", "event log {}: {}", dir_, what);
  }
  last_error_ = std::move(what);
}

std::string EventLog::append(Event& e) {
  std::lock_guard lock(mutex_);
  if (e.id.empty()) {
    e.id = makeId(e.start_ns, next_seq_++);
  } else if (auto seq = idSequence(e.id); seq && *seq >= next_seq_) {
    next_seq_ = *seq + 1;
  }
  write(e);
  return e.id;
}

void EventLog::update(const Event& e) {
  std::lock_guard lock(mutex_);
  write(e);
}

bool EventLog::openDay(uint64_t now_ns) {
  std::string day = dayOf(now_ns);
  if (fd_ >= 0 && day == day_) {
    return true;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  std::string name = fileOfDay(day);
  std::string path = dir_ + "/" + name;
  bool existed = ::access(path.c_str(), F_OK) == 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    return false;
  }
  struct stat st {};
  uint64_t size = 0;
  if (::fstat(fd, &st) == 0) {
    size = static_cast<uint64_t>(st.st_size);
  }
  need_newline_ = false;
  if (size > 0) {
    int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (rfd >= 0) {
      if (::pread(rfd, &last, 1, static_cast<off_t>(size - 1)) != 1) {
        last = '\n';
      }
      ::close(rfd);
    }
    need_newline_ = last != '\n';
  }
  if (!existed) {
    syncDir(dir_);
  }
  fd_ = fd;
  day_ = day;
  files_[name] = size;
  return true;
}

bool EventLog::writeLine(const std::string& line, uint64_t now_ns) {
  if (!openDay(now_ns)) {
    return false;
  }
  std::string buf = need_newline_ ? "\n" + line : line;
  size_t off = 0;
  while (off < buf.size()) {
    ssize_t n = ::write(fd_, buf.data() + off, buf.size() - off);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      fail(fmt::format("cannot write {}: {}", fileOfDay(day_),
                       n < 0 ? std::strerror(errno) : "short write"));
      files_[fileOfDay(day_)] += off;
      if (off > 0) {
        need_newline_ = true;  // a partial line: the next one starts fresh
      }
      return false;
    }
    off += static_cast<size_t>(n);
  }
  need_newline_ = false;
  files_[fileOfDay(day_)] += off;
  if (::fdatasync(fd_) != 0) {
    fail(fmt::format("cannot sync {}: {}", fileOfDay(day_), std::strerror(errno)));
    return false;
  }
  return true;
}

uint64_t EventLog::totalBytes() const {
  uint64_t total = 0;
  for (const auto& [name, size] : files_) {
    total += size;
  }
  return total;
}

void EventLog::write(const Event& e) {
  uint64_t t = now();
  std::string line = dumpLine(e);
  if (t >= last_retention_ns_ + kHour || totalBytes() + line.size() > max_bytes_) {
    retention(t, line.size());
  }
  if (totalBytes() + line.size() > max_bytes_) {
    fail(fmt::format("size cap of {} bytes reached by today's file: event {} not written",
                     max_bytes_, e.id));
    return;
  }
  if (!writeLine(line, t)) {
    return;
  }
  last_file_[e.id] = fileOfDay(day_);
  if (e.end_ns) {
    ongoing_.erase(e.id);
  } else {
    ongoing_[e.id] = e;
  }
}

void EventLog::retention(uint64_t now_ns, uint64_t incoming) {
  last_retention_ns_ = now_ns;
  const std::string today = fileOfDay(dayOf(now_ns));
  std::set<std::string> removed;
  auto remove = [&](const std::string& name) {
    std::error_code ec;
    fs::remove(dir_ + "/" + name, ec);
    if (ec) {
      fail(fmt::format("cannot remove {}: {}", name, ec.message()));
      return false;
    }
    if (name == fileOfDay(day_) && fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
      day_.clear();
    }
    removed.insert(name);
    files_.erase(name);
    return true;
  };
  if (retention_ns_ > 0) {
    for (auto it = files_.begin(); it != files_.end();) {
      const std::string name = it->first;
      ++it;
      auto start = dayStart(name);
      if (name != today && start && *start + kDay + retention_ns_ <= now_ns) {
        remove(name);
      }
    }
  }
  uint64_t total = incoming + totalBytes();
  while (total > max_bytes_ && !files_.empty() && files_.begin()->first != today) {
    auto [name, size] = *files_.begin();
    if (!remove(name)) {
      break;
    }
    total -= size;
  }
  if (removed.empty()) {
    return;
  }
  log::info("events", "event log {}: retention removed {} file(s)", dir_, removed.size());
  // Forget events whose last record went; rewrite the ongoing ones so they are not lost.
  std::vector<std::string> rewrite;
  for (auto it = last_file_.begin(); it != last_file_.end();) {
    if (removed.count(it->second) != 0) {
      if (ongoing_.count(it->first) != 0) {
        rewrite.push_back(it->first);
      }
      it = last_file_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& id : rewrite) {
    if (writeLine(dumpLine(ongoing_[id]), now_ns)) {
      last_file_[id] = fileOfDay(day_);
    } else {
      ongoing_.erase(id);
    }
  }
}

std::vector<Event> EventLog::query(const Query& q) const {
  std::map<std::string, uint64_t> files;
  {
    std::lock_guard lock(mutex_);
    files = files_;
  }
  // Read without the lock so that a long query does not hold up appends. A line being appended
  // meanwhile is either whole or skipped like a torn one; a file retention removes meanwhile is
  // skipped.
  return queryFiles(dir_, files, q);
}

std::vector<Event> EventLog::ongoing() const {
  std::lock_guard lock(mutex_);
  std::vector<Event> out;
  for (const auto& [id, e] : ongoing_) {
    out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.id < b.id;
  });
  return out;
}

json EventLog::status() const {
  std::lock_guard lock(mutex_);
  return {{"dir", dir_},
          {"files", files_.size()},
          {"bytes", totalBytes()},
          {"max_bytes", max_bytes_},
          {"events", last_file_.size()},
          {"ongoing", ongoing_.size()},
          {"skipped_lines", skipped_lines_},
          {"write_errors", write_errors_},
          {"last_error", last_error_}};
}

}  // namespace nc::events
