#pragma once
// An independent checker of the Prometheus text exposition format 0.0.4 (as Prometheus' own
// text parser and promtool read it), plus our naming rules, for tests of /metrics output.
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace nc::test {

struct ExpositionSample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

struct Exposition {
  std::vector<std::string> problems;         // empty when the text is valid
  std::map<std::string, std::string> types;  // family -> counter|gauge|...
  std::map<std::string, std::string> helps;  // family -> help (escaped as written)
  std::vector<ExpositionSample> samples;     // in order

  // The value of the sample `name` whose labels include all of `labels`; NaN when absent.
  double value(const std::string& name,
               const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples) {
      if (s.name != name) {
        continue;
      }
      bool all = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) {
          all = false;
          break;
        }
      }
      if (all) {
        return s.value;
      }
    }
    return std::nan("");
  }
};

inline bool validUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size() || (n == 2 && c < 0xC2)) {
      return false;
    }
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

// Parses and checks `text`. `prefix`: every family must start with it; counters must end in
// _total (our rules, on top of the format's).
inline Exposition parseExposition(std::string_view text,
                                  std::string_view prefix = "net_collector_") {
  Exposition out;
  auto problem = [&](size_t line_no, const std::string& what) {
    out.problems.push_back("line " + std::to_string(line_no) + ": " + what);
  };
  auto isNameStart = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  };
  auto isNameChar = [&](char c) { return isNameStart(c) || (c >= '0' && c <= '9'); };
  auto readName = [&](std::string_view& rest) {
    size_t n = 0;
    if (!rest.empty() && isNameStart(rest[0])) {
      while (n < rest.size() && isNameChar(rest[n])) {
        ++n;
      }
    }
    std::string name(rest.substr(0, n));
    rest.remove_prefix(n);
    return name;
  };
  if (!validUtf8(text)) {
    problem(0, "not valid UTF-8");
  }
  if (!text.empty() && text.back() != '\n') {
    problem(0, "does not end with a newline");
  }
  std::set<std::string> done;  // families whose group has ended
  std::string current;         // family of the group being read
  std::set<std::string> series;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty()) {
      continue;
    }
    auto enterFamily = [&](const std::string& family) {
      if (family != current) {
        if (done.count(family) != 0) {
          problem(line_no, "family " + family + " appears in two groups");
        }
        if (!current.empty()) {
          done.insert(current);
        }
        current = family;
      }
    };
    if (line[0] == '#') {
      std::string_view rest = line.substr(1);
      if (rest.starts_with(" HELP ") || rest.starts_with(" TYPE ")) {
        const bool help = rest.starts_with(" HELP ");
        rest.remove_prefix(6);
        std::string name = readName(rest);
        if (name.empty() || (!rest.empty() && rest[0] != ' ')) {
          problem(line_no, "bad metric name in comment");
          continue;
        }
        if (!rest.empty()) {
          rest.remove_prefix(1);
        }
        enterFamily(name);
        if (help) {
          if (out.helps.count(name) != 0) {
            problem(line_no, "second HELP for " + name);
          }
          for (size_t i = 0; i < rest.size(); ++i) {
            if (rest[i] == '\\' &&
                (i + 1 >= rest.size() || (rest[i + 1] != '\\' && rest[i + 1] != 'n'))) {
              problem(line_no, "bad escape in HELP of " + name);
            }
            if (rest[i] == '\\') {
              ++i;
            }
          }
          if (rest.empty()) {
            problem(line_no, "empty HELP for " + name);
          }
          out.helps[name] = std::string(rest);
        } else {
          if (out.types.count(name) != 0) {
            problem(line_no, "second TYPE for " + name);
          }
          static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                       "untyped"};
          if (kTypes.count(std::string(rest)) == 0) {
            problem(line_no, "unknown TYPE '" + std::string(rest) + "'");
          }
          for (const auto& s : out.samples) {
            if (s.name == name) {
              problem(line_no, "TYPE for " + name + " after its samples");
            }
          }
          out.types[name] = std::string(rest);
          if (rest == "counter" && !std::string_view(name).ends_with("_total")) {
            problem(line_no, "counter " + name + " does not end in _total");
          }
          if (!std::string_view(name).starts_with(prefix)) {
            problem(line_no, name + " does not start with " + std::string(prefix));
          }
        }
      }
      continue;  // other comments are allowed
    }
    ExpositionSample s;
    std::string_view rest = line;
    s.name = readName(rest);
    if (s.name.empty()) {
      problem(line_no, "sample without a metric name");
      continue;
    }
    enterFamily(s.name);
    if (out.types.count(s.name) == 0) {
      problem(line_no, "sample of " + s.name + " without a TYPE before it");
    }
    std::string label_text;
    if (!rest.empty() && rest[0] == '{') {
      rest.remove_prefix(1);
      bool ok = true;
      while (ok && !rest.empty() && rest[0] != '}') {
        std::string key = readName(rest);
        if (key.empty() || key.find(':') != std::string::npos || rest.size() < 2 ||
            rest[0] != '=' || rest[1] != '"') {
          problem(line_no, "bad label in " + std::string(line));
          ok = false;
          break;
        }
        if (key.starts_with("__")) {
          problem(line_no, "reserved label name " + key);
        }
        rest.remove_prefix(2);
        std::string value;
        while (!rest.empty() && rest[0] != '"') {
          if (rest[0] == '\\') {
            if (rest.size() < 2 || (rest[1] != '\\' && rest[1] != '"' && rest[1] != 'n')) {
              problem(line_no, "bad escape in a label value");
              ok = false;
              break;
            }
            value += rest[1] == 'n' ? '\n' : rest[1];
            rest.remove_prefix(2);
          } else {
            value += rest[0];
            rest.remove_prefix(1);
          }
        }
        if (!ok || rest.empty()) {
          problem(line_no, "unterminated label value");
          ok = false;
          break;
        }
        rest.remove_prefix(1);  // closing quote
        if (!s.labels.emplace(key, value).second) {
          problem(line_no, "label " + key + " twice");
        }
        if (!rest.empty() && rest[0] == ',') {
          rest.remove_prefix(1);
        }
      }
      if (!ok) {
        continue;
      }
      if (rest.empty() || rest[0] != '}') {
        problem(line_no, "unterminated label set");
        continue;
      }
      rest.remove_prefix(1);
    }
    for (const auto& [k, v] : s.labels) {
      label_text += k + "=" + v + "\x1f";
    }
    if (!series.insert(s.name + "\x1e" + label_text).second) {
      problem(line_no, "duplicate series " + std::string(line));
    }
    if (rest.empty() || rest[0] != ' ') {
      problem(line_no, "no value in " + std::string(line));
      continue;
    }
    rest.remove_prefix(1);
    std::string value(rest.substr(0, rest.find(' ')));
    if (value == "NaN") {
      s.value = std::nan("");
    } else if (value == "+Inf") {
      s.value = INFINITY;
    } else if (value == "-Inf") {
      s.value = -INFINITY;
    } else {
      char* end = nullptr;
      s.value = std::strtod(value.c_str(), &end);
      if (value.empty() || end != value.c_str() + value.size()) {
        problem(line_no, "bad value '" + value + "'");
      }
    }
    out.samples.push_back(std::move(s));
  }
  for (const auto& [name, type] : out.types) {
    if (out.helps.count(name) == 0) {
      problem(0, "no HELP for " + name);
    }
  }
  return out;
}

}  // namespace nc::test
