#include "tests/support/support.hpp"

#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <system_error>

namespace nc::test {

bool inCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string findTool(const std::string& name) {
  std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) {
      continue;
    }
    std::filesystem::path p = std::filesystem::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) {
      return p.string();
    }
  }
  return "";
}

std::filesystem::path sourceDir() {
  const char* s = std::getenv("NC_SOURCE_DIR");
  return s != nullptr ? std::filesystem::path(s) : std::filesystem::path(NC_DEFAULT_SOURCE_DIR);
}

std::filesystem::path binDir() {
  const char* s = std::getenv("NC_BIN_DIR");
  return s != nullptr ? std::filesystem::path(s) : std::filesystem::path(NC_DEFAULT_BIN_DIR);
}

std::filesystem::path makeTempDir(const std::string& tag) {
  const char* t = std::getenv("TMPDIR");
  std::string tmpl = std::string(t != nullptr ? t : "/tmp") + "/nc-test-" + tag + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
  }
  return tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace nc::test
