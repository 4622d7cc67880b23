#include "collector/profile/rrd.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <rrd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "collector/profile/evaluate.hpp"

namespace nc::profile::rrd {
namespace {

// librrd keeps its error text per thread; take it and clear it.
std::string takeError(const char* what) {
  // librrd 1.7 leaves no text when a write fails (errno is gone by then).
  const char* e = rrd_get_error();
  std::string msg = (e != nullptr && *e != '\0')
                        ? e
                        : "librrd could not write the file (disk full, file size limit or "
                          "permissions?)";
  rrd_clear_error();
  return fmt::format("{}: {}", what, msg);
}

// (pdp per row, rows) of each archive.
std::vector<std::pair<uint64_t, uint64_t>> archives(uint64_t step_s) {
  struct Want {
    uint64_t res_s;
    uint64_t span_s;
  };
  static constexpr Want kWant[] = {
      {0, 86400}, {60, 14 * 86400}, {300, 60 * 86400}, {3600, 2 * 365 * 86400}};
  std::map<uint64_t, uint64_t> by_pdp;  // pdp -> rows (longest wins)
  for (const Want& w : kWant) {
    const uint64_t pdp = std::max<uint64_t>(1, w.res_s / step_s);
    const uint64_t rows = (w.span_s + pdp * step_s - 1) / (pdp * step_s);
    uint64_t& r = by_pdp[pdp];
    r = std::max(r, rows);
  }
  return {by_pdp.begin(), by_pdp.end()};
}

bool fsyncPath(const std::string& path, bool dir, std::string* why) {
  const int fd = ::open(path.c_str(), (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = fmt::format("{}: open: {}", path, std::strerror(errno));
    return false;
  }
  const bool ok = ::fsync(fd) == 0;
  if (!ok) {
    *why = fmt::format("{}: fsync: {}", path, std::strerror(errno));
  }
  ::close(fd);
  return ok;
}

std::string number(double v) {
  if (std::isnan(v) || std::isinf(v)) {
    return "U";
  }
  return fmt::format("{}", v);
}

}  // namespace

std::vector<std::string> rraSpecs(uint64_t step_s) {
  std::vector<std::string> out;
  for (const char* cf : {"AVERAGE", "MAX"}) {
    for (const auto& [pdp, rows] : archives(step_s)) {
      out.push_back(fmt::format("RRA:{}:0.5:{}:{}", cf, pdp, rows));
    }
  }
  return out;
}

std::vector<std::string> dsSpecs(uint64_t step_s) {
  std::vector<std::string> out;
  for (std::string_view ds : kDataSources) {
    out.push_back(fmt::format("DS:{}:GAUGE:{}:0:U", ds, 2 * step_s));
  }
  return out;
}

uint64_t fileBytes(uint64_t step_s) {
  uint64_t rows = 0;
  for (const auto& [pdp, r] : archives(step_s)) {
    rows += r;
  }
  return 2 * rows * kDataSources.size() * sizeof(double);
}

bool create(const std::string& path, uint64_t step_s, std::time_t start_s, std::string* why) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    *why = fmt::format("{}: already exists", path);
    return false;
  }
  std::vector<std::string> specs = dsSpecs(step_s);
  for (auto& r : rraSpecs(step_s)) {
    specs.push_back(std::move(r));
  }
  std::vector<const char*> argv;
  for (const auto& s : specs) {
    argv.push_back(s.c_str());
  }
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  rrd_clear_error();
  if (rrd_create_r(tmp.c_str(), step_s, start_s, static_cast<int>(argv.size()), argv.data()) != 0) {
    *why = takeError(path.c_str());
    ::unlink(tmp.c_str());
    return false;
  }
  // librrd may leave a short file behind when a write fails without telling: check the size.
  struct stat st {};
  if (::stat(tmp.c_str(), &st) != 0 || static_cast<uint64_t>(st.st_size) < fileBytes(step_s)) {
    *why = fmt::format("{}: short file after create (disk full?)", path);
    ::unlink(tmp.c_str());
    return false;
  }
  if (!fsyncPath(tmp, false, why)) {
    ::unlink(tmp.c_str());
    return false;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *why = fmt::format("{}: rename: {}", path, std::strerror(errno));
    ::unlink(tmp.c_str());
    return false;
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return fsyncPath(dir.empty() ? "." : dir, true, why);
}

bool inspect(const std::string& path, FileInfo& out, std::string* why) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *why = fmt::format("{}: {}", path, std::strerror(errno));
    return false;
  }
  rrd_clear_error();
  rrd_info_t* info = rrd_info_r(path.c_str());
  if (info == nullptr) {
    *why = takeError(path.c_str());
    return false;
  }
  FileInfo f;
  f.bytes = static_cast<uint64_t>(st.st_size);
  std::vector<std::string> names;
  for (rrd_info_t* i = info; i != nullptr; i = i->next) {
    const std::string_view key = i->key;
    if (key == "step" && i->type == RD_I_CNT) {
      f.step_s = i->value.u_cnt;
    } else if (key == "last_update" && i->type == RD_I_CNT) {
      f.last_update = static_cast<std::time_t>(i->value.u_cnt);
    } else if (key.starts_with("ds[") && key.ends_with("].index") && i->type == RD_I_CNT) {
      const std::string name(key.substr(3, key.size() - 3 - 7));
      if (i->value.u_cnt >= names.size()) {
        names.resize(i->value.u_cnt + 1);
      }
      names[i->value.u_cnt] = name;
    }
  }
  rrd_info_free(info);
  f.layout_ok = names.size() == kDataSources.size();
  for (size_t k = 0; f.layout_ok && k < names.size(); ++k) {
    f.layout_ok = names[k] == kDataSources[k];
  }
  out = f;
  return true;
}

bool update(const std::string& path, const std::vector<Update>& updates, std::string* why) {
  constexpr size_t kPerCall = 256;
  std::vector<std::string> lines;
  std::vector<const char*> argv;
  for (size_t at = 0; at < updates.size(); at += kPerCall) {
    const size_t end = std::min(updates.size(), at + kPerCall);
    lines.clear();
    for (size_t i = at; i < end; ++i) {
      const Update& u = updates[i];
      std::string line = fmt::format("{}", static_cast<long long>(u.t));
      for (double v : u.v) {
        line += ':';
        line += u.unknown ? "U" : number(v);
      }
      lines.push_back(std::move(line));
    }
    argv.clear();
    for (const auto& l : lines) {
      argv.push_back(l.c_str());
    }
    rrd_clear_error();
    if (rrd_updatex_r(path.c_str(), nullptr, 0, static_cast<int>(argv.size()), argv.data()) != 0) {
      *why = takeError(path.c_str());
      return false;
    }
  }
  return true;
}

bool fetch(const std::string& path, const char* cf, std::time_t start, std::time_t end,
           unsigned long resolution_s, Series& out, std::string* why) {
  time_t s = start;
  time_t e = end;
  unsigned long step = resolution_s == 0 ? 1 : resolution_s;
  unsigned long ds_cnt = 0;
  char** names = nullptr;
  rrd_value_t* data = nullptr;
  rrd_clear_error();
  if (rrd_fetch_r(path.c_str(), cf, &s, &e, &step, &ds_cnt, &names, &data) != 0) {
    *why = takeError(path.c_str());
    return false;
  }
  Series r;
  r.start = s;
  r.end = e;
  r.step = step;
  for (unsigned long i = 0; i < ds_cnt; ++i) {
    r.names.emplace_back(names[i]);
    rrd_freemem(names[i]);
  }
  rrd_freemem(names);
  const size_t rows = step == 0 ? 0 : static_cast<size_t>((e - s) / static_cast<time_t>(step));
  r.data.assign(data, data + rows * ds_cnt);
  rrd_freemem(data);
  out = std::move(r);
  return true;
}

}  // namespace nc::profile::rrd
