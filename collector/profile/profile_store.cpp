#include "collector/profile/profile_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "collector/record/fields.hpp"

namespace nc::profile {
namespace {

constexpr int kFileVersion = 1;

std::string timeOrEmpty(uint64_t ns) {
  return ns == 0 ? std::string() : formatTime(ns);
}

uint64_t timeOf(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  uint64_t v = 0;
  if (it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
    parseTime(it->get_ref<const std::string&>(), v);
  }
  return v;
}

// Writes `text` to `path` through path.tmp: write, fsync, rename, fsync the directory.
bool writeAtomically(const std::string& path, const std::string& text, std::string* why) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *why = fmt::format("{}: {}", tmp, std::strerror(errno));
    return false;
  }
  size_t at = 0;
  while (at < text.size()) {
    const ssize_t n = ::write(fd, text.data() + at, text.size() - at);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      *why = fmt::format("{}: write: {}", tmp, std::strerror(errno));
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    at += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    *why = fmt::format("{}: fsync: {}", tmp, std::strerror(errno));
    ::close(fd);
    ::unlink(tmp.c_str());
    return false;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *why = fmt::format("{}: rename: {}", path, std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

OpResult invalid(std::vector<DefError> errors) {
  OpResult r;
  r.ok = false;
  r.error = errors.front().toString();
  r.errors = std::move(errors);
  return r;
}

void insertChannel(ProfileDef& def, ChannelDef ch) {
  normalizeOrders(def);
  uint32_t count = 0;
  for (const auto& c : def.channels) {
    count += c.sign == ch.sign ? 1 : 0;
  }
  if (ch.order == 0 || ch.order > count + 1) {
    ch.order = count + 1;
  }
  for (auto& c : def.channels) {
    if (c.sign == ch.sign && c.order >= ch.order) {
      ++c.order;
    }
  }
  def.channels.push_back(std::move(ch));
  normalizeOrders(def);
}

}  // namespace

ProfileStore::ProfileStore(std::string dir) : dir_(std::move(dir)) {}

std::string ProfileStore::filePath() const {
  return (std::filesystem::path(dir_) / "profiles.json").string();
}

bool ProfileStore::load(std::string* why) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    *why = fmt::format("{}: {}", dir_, ec.message());
    broken_ = true;
    broken_why_ = *why;
    return false;
  }
  const std::string path = filePath();
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT || !std::filesystem::exists(path, ec)) {
      return true;  // nothing stored yet
    }
    *why = fmt::format("{}: {}", path, std::strerror(errno));
    broken_ = true;
    broken_why_ = *why;
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto fail = [&](std::string msg) {
    *why = fmt::format("{}: {} (fix or remove the file; profile changes are refused until then)",
                       path, msg);
    broken_ = true;
    broken_why_ = *why;
    return false;
  };
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail("not a JSON object");
  }
  if (j.value("version", 0) != kFileVersion) {
    return fail(fmt::format("unknown version {} (this build reads {})", j.value("version", 0),
                            kFileVersion));
  }
  std::vector<StoredProfile> runtime;
  auto list = j.find("profiles");
  if (list != j.end() && list->is_array()) {
    for (const auto& pj : *list) {
      StoredProfile p;
      std::string err;
      if (!pj.is_object() || !fromJson(pj.value("definition", nlohmann::json()), p.def, &err)) {
        return fail(fmt::format("profile {}: {}", runtime.size(), err.empty() ? "bad" : err));
      }
      auto st = pj.find("staged");
      if (st != pj.end() && st->is_object()) {
        ProfileDef d;
        if (!fromJson(*st, d, &err)) {
          return fail(fmt::format("profile '{}' staged: {}", p.def.name, err));
        }
        p.staged = std::move(d);
      }
      p.committed = pj.value("committed", false);
      p.created_ns = timeOf(pj, "created");
      p.committed_ns = timeOf(pj, "committed_at");
      p.tstart_ns = timeOf(pj, "tstart");
      runtime.push_back(std::move(p));
    }
  }
  std::vector<DeclaredState> states;
  auto ds = j.find("declared_state");
  if (ds != j.end() && ds->is_object()) {
    for (auto it = ds->begin(); it != ds->end(); ++it) {
      states.push_back({it.key(), timeOf(*it, "created"), timeOf(*it, "tstart")});
    }
  }
  runtime_ = std::move(runtime);
  declared_state_ = std::move(states);
  ++generation_;
  return true;
}

OpResult ProfileStore::persist(std::vector<StoredProfile> runtime,
                               std::vector<DeclaredState> states) {
  if (broken_) {
    return OpResult::fail(broken_why_);
  }
  nlohmann::json j = {{"version", kFileVersion}};
  j["profiles"] = nlohmann::json::array();
  for (const auto& p : runtime) {
    nlohmann::json pj = {{"definition", toJson(p.def)},
                         {"committed", p.committed},
                         {"created", timeOrEmpty(p.created_ns)},
                         {"committed_at", timeOrEmpty(p.committed_ns)},
                         {"tstart", timeOrEmpty(p.tstart_ns)}};
    pj["staged"] = p.staged ? toJson(*p.staged) : nlohmann::json();
    j["profiles"].push_back(std::move(pj));
  }
  j["declared_state"] = nlohmann::json::object();
  for (const auto& s : states) {
    j["declared_state"][s.name] = {{"created", timeOrEmpty(s.created_ns)},
                                   {"tstart", timeOrEmpty(s.tstart_ns)}};
  }
  std::string why;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (!writeAtomically(filePath(), j.dump(2) + "\n", &why)) {
    return OpResult::fail("cannot save the profiles: " + why);
  }
  runtime_ = std::move(runtime);
  declared_state_ = std::move(states);
  ++generation_;
  return {};
}

std::vector<std::string> ProfileStore::setDeclared(const std::vector<ProfileDef>& declared,
                                                   uint64_t now_ns) {
  std::vector<std::string> warnings;
  std::vector<StoredProfile> out;
  std::vector<DeclaredState> states = declared_state_;
  bool states_changed = false;
  for (const ProfileDef& d : declared) {
    StoredProfile p;
    p.def = d;
    p.declared = true;
    p.committed = true;
    auto it = std::find_if(states.begin(), states.end(),
                           [&](const DeclaredState& s) { return s.name == d.name; });
    if (it == states.end()) {
      states.push_back({d.name, now_ns, d.start_ns != 0 ? d.start_ns : now_ns});
      it = states.end() - 1;
      states_changed = true;
    } else if (d.start_ns != 0 && it->tstart_ns < d.start_ns) {
      it->tstart_ns = d.start_ns;
      states_changed = true;
    }
    p.created_ns = it->created_ns;
    p.committed_ns = it->created_ns;
    p.tstart_ns = it->tstart_ns;
    if (p.def.start_ns == 0 && p.def.type != ProfileType::kHistory) {
      p.def.start_ns = p.tstart_ns;
    }
    normalizeOrders(p.def);
    out.push_back(std::move(p));
  }
  for (auto& r : runtime_) {
    const bool clash = std::any_of(declared.begin(), declared.end(),
                                   [&](const ProfileDef& d) { return d.name == r.def.name; });
    if (clash && !r.shadowed) {
      warnings.push_back(fmt::format(
          "profile '{}' is declared in the configuration file: the runtime profile of that name "
          "is kept but not run (delete it, or remove the declaration)",
          r.def.name));
    }
    r.shadowed = clash;
  }
  declared_ = std::move(out);
  ++generation_;
  if (states_changed && !broken_) {
    OpResult r = persist(runtime_, states);
    if (!r.ok) {
      warnings.push_back(r.error);
      declared_state_ = std::move(states);  // keep them in memory at least
    }
  } else {
    declared_state_ = std::move(states);
  }
  return warnings;
}

const StoredProfile* ProfileStore::find(const std::string& name) const {
  for (const auto& p : declared_) {
    if (p.def.name == name) {
      return &p;
    }
  }
  for (const auto& p : runtime_) {
    if (p.def.name == name) {
      return &p;
    }
  }
  return nullptr;
}

std::vector<StoredProfile> ProfileStore::all() const {
  std::vector<StoredProfile> out = declared_;
  out.insert(out.end(), runtime_.begin(), runtime_.end());
  std::stable_sort(out.begin(), out.end(), [](const StoredProfile& a, const StoredProfile& b) {
    return std::pair(!a.declared, a.def.name) < std::pair(!b.declared, b.def.name);
  });
  return out;
}

std::vector<StoredProfile> ProfileStore::running() const {
  std::vector<StoredProfile> out;
  for (const auto& p : all()) {
    if (p.declared || (p.committed && !p.shadowed)) {
      out.push_back(p);
    }
  }
  return out;
}

OpResult ProfileStore::addProfile(const ProfileDef& def, uint64_t now_ns) {
  std::string why;
  if (!validName(def.name, &why)) {
    return OpResult::fail("profile name " + why);
  }
  if (const StoredProfile* p = find(def.name)) {
    return OpResult::fail(p->declared ? fmt::format("profile '{}' is declared in the "
                                                    "configuration file (read-only here)",
                                                    def.name)
                                      : fmt::format("profile '{}' already exists", def.name));
  }
  if (declared_.size() + runtime_.size() >= kMaxProfiles) {
    return OpResult::fail(fmt::format("at most {} profiles", kMaxProfiles));
  }
  ProfileDef d = def;
  if (d.group.empty()) {
    d.group = ".";
  }
  normalizeOrders(d);
  auto errors = validate(d, now_ns);
  if (!errors.empty()) {
    return invalid(std::move(errors));
  }
  StoredProfile p;
  p.def = std::move(d);
  p.created_ns = now_ns;
  auto runtime = runtime_;
  runtime.push_back(std::move(p));
  return persist(std::move(runtime), declared_state_);
}

namespace {

// The runtime profile `name` in `runtime`, or an error for declared / missing ones.
StoredProfile* editable(std::vector<StoredProfile>& runtime,
                        const std::vector<StoredProfile>& declared, const std::string& name,
                        OpResult& err) {
  for (const auto& p : declared) {
    if (p.def.name == name) {
      err = OpResult::fail(fmt::format(
          "profile '{}' is declared in the configuration file (read-only here: edit the file and "
          "reload)",
          name));
      return nullptr;
    }
  }
  for (auto& p : runtime) {
    if (p.def.name == name) {
      return &p;
    }
  }
  err = OpResult::fail(fmt::format("no profile '{}'", name));
  return nullptr;
}

// The definition changes go to: the staged copy (made from the running one when needed).
ProfileDef& stagedOf(StoredProfile& p) {
  if (!p.committed) {
    return p.def;
  }
  if (!p.staged) {
    p.staged = p.def;
  }
  return *p.staged;
}

}  // namespace

OpResult ProfileStore::deleteProfile(const std::string& name) {
  auto runtime = runtime_;
  OpResult err;
  StoredProfile* p = editable(runtime, declared_, name, err);
  if (p == nullptr) {
    return err;
  }
  runtime.erase(runtime.begin() + (p - runtime.data()));
  return persist(std::move(runtime), declared_state_);
}

OpResult ProfileStore::addChannel(const std::string& profile, const ChannelDef& ch,
                                  uint64_t /*now_ns*/) {
  auto runtime = runtime_;
  OpResult err;
  StoredProfile* p = editable(runtime, declared_, profile, err);
  if (p == nullptr) {
    return err;
  }
  auto errors = validateChannel(ch, "channel");
  if (!errors.empty()) {
    return invalid(std::move(errors));
  }
  ProfileDef& d = stagedOf(*p);
  for (const auto& c : d.channels) {
    if (c.name == ch.name) {
      return OpResult::fail(
          fmt::format("profile '{}' already has a channel '{}'", profile, ch.name));
    }
  }
  if (d.channels.size() >= kMaxChannelsPerProfile) {
    return OpResult::fail(fmt::format("at most {} channels a profile", kMaxChannelsPerProfile));
  }
  insertChannel(d, ch);
  return persist(std::move(runtime), declared_state_);
}

OpResult ProfileStore::deleteChannel(const std::string& profile, const std::string& channel) {
  auto runtime = runtime_;
  OpResult err;
  StoredProfile* p = editable(runtime, declared_, profile, err);
  if (p == nullptr) {
    return err;
  }
  ProfileDef& d = stagedOf(*p);
  auto it = std::find_if(d.channels.begin(), d.channels.end(),
                         [&](const ChannelDef& c) { return c.name == channel; });
  if (it == d.channels.end()) {
    return OpResult::fail(fmt::format("profile '{}' has no channel '{}'", profile, channel));
  }
  d.channels.erase(it);
  normalizeOrders(d);
  return persist(std::move(runtime), declared_state_);
}

OpResult ProfileStore::modify(const std::string& profile, const ProfileChanges& ch,
                              uint64_t now_ns) {
  auto runtime = runtime_;
  OpResult err;
  StoredProfile* p = editable(runtime, declared_, profile, err);
  if (p == nullptr) {
    return err;
  }
  ProfileDef& d = stagedOf(*p);
  if (ch.group) {
    d.group = ch.group->empty() ? "." : *ch.group;
  }
  if (ch.description) {
    d.description = *ch.description;
  }
  if (ch.expire_ms) {
    d.expire_ms = *ch.expire_ms;
  }
  if (ch.maxsize) {
    d.maxsize = *ch.maxsize;
  }
  auto errors = validate(d, now_ns);
  if (!errors.empty()) {
    return invalid(std::move(errors));
  }
  return persist(std::move(runtime), declared_state_);
}

OpResult ProfileStore::commit(const std::string& profile, uint64_t now_ns) {
  auto runtime = runtime_;
  OpResult err;
  StoredProfile* p = editable(runtime, declared_, profile, err);
  if (p == nullptr) {
    return err;
  }
  if (p->committed && !p->staged) {
    return {};  // nothing to commit
  }
  ProfileDef d = p->committed ? *p->staged : p->def;
  if (d.type != ProfileType::kHistory && d.start_ns == 0) {
    d.start_ns = now_ns - now_ns % 1'000'000'000;
  }
  auto errors = validate(d, now_ns);
  if (!errors.empty()) {
    return invalid(std::move(errors));
  }
  if (p->committed &&
      (d.type != p->def.type || d.start_ns != p->def.start_ns || d.end_ns != p->def.end_ns)) {
    return OpResult::fail("type, start and end cannot change once committed (add a new profile)");
  }
  if (!p->committed) {
    p->committed_ns = now_ns;
    p->tstart_ns = d.start_ns;
  }
  p->def = std::move(d);
  p->staged.reset();
  p->committed = true;
  return persist(std::move(runtime), declared_state_);
}

OpResult ProfileStore::discard(const std::string& profile) {
  auto runtime = runtime_;
  OpResult err;
  StoredProfile* p = editable(runtime, declared_, profile, err);
  if (p == nullptr) {
    return err;
  }
  if (!p->committed) {
    runtime.erase(runtime.begin() + (p - runtime.data()));
  } else {
    p->staged.reset();
  }
  return persist(std::move(runtime), declared_state_);
}

OpResult ProfileStore::setDataStart(const std::string& profile, uint64_t tstart_ns) {
  auto states = declared_state_;
  for (auto& d : declared_) {
    if (d.def.name == profile) {
      d.tstart_ns = tstart_ns;
      for (auto& s : states) {
        if (s.name == profile) {
          s.tstart_ns = tstart_ns;
        }
      }
      return persist(runtime_, std::move(states));
    }
  }
  auto runtime = runtime_;
  for (auto& p : runtime) {
    if (p.def.name == profile) {
      p.tstart_ns = tstart_ns;
      return persist(std::move(runtime), std::move(states));
    }
  }
  return OpResult::fail(fmt::format("no profile '{}'", profile));
}

}  // namespace nc::profile
