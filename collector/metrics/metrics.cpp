// Prometheus text exposition (format 0.0.4) and the collector registry.
#include "collector/metrics/metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "common/log.hpp"
#include "common/version.hpp"

namespace nc::metrics {
namespace {

bool isAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*
bool validMetricName(std::string_view s) {
  if (s.empty() || !(isAlpha(s[0]) || s[0] == '_' || s[0] == ':')) {
    return false;
  }
  for (char c : s) {
    if (!(isAlpha(c) || isDigit(c) || c == '_' || c == ':')) {
      return false;
    }
  }
  return true;
}

// Label names: [a-zA-Z_][a-zA-Z0-9_]*, "__" reserved for Prometheus' own.
bool validLabelName(std::string_view s) {
  if (s.empty() || !(isAlpha(s[0]) || s[0] == '_') || s.starts_with("__")) {
    return false;
  }
  for (char c : s) {
    if (!(isAlpha(c) || isDigit(c) || c == '_')) {
      return false;
    }
  }
  return true;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
size_t utf8Length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const uint8_t c = b(0);
  if (c < 0x80) {
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) {
      return 0;
    }
    if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) {
      return 0;  // overlong, or a UTF-16 surrogate
    }
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) {
      return 0;
    }
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) {
      return 0;  // overlong, or above U+10FFFF
    }
    return 4;
  }
  return 0;
}

// Appends `s` escaped for a label value (quote too) or a HELP text; invalid UTF-8 becomes U+FFFD.
void appendEscaped(std::string& out, std::string_view s, bool quote) {
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      const size_t n = utf8Length(s, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
        continue;
      }
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
  }
}

std::string_view typeName(MetricType type) {
  return type == MetricType::kCounter ? "counter" : "gauge";
}

}  // namespace

std::string familyName(std::string_view name, MetricType type, Unit unit) {
  std::string out(kNamePrefix);
  out += name;
  const std::string_view suffix = unitSuffix(unit);
  if (!suffix.empty() && !std::string_view(out).ends_with(fmt::format("_{}", suffix)) &&
      !std::string_view(out).ends_with(fmt::format("_{}_total", suffix))) {
    out += '_';
    out += suffix;
  }
  if (type == MetricType::kCounter && !std::string_view(out).ends_with("_total")) {
    out += "_total";
  }
  return out;
}

// --- MetricWriter ---------------------------------------------------------------------------

MetricWriter::Family& MetricWriter::family(std::string_view name, MetricType type, Unit unit,
                                           std::string_view help) {
  std::string full = familyName(name, type, unit);
  auto it = by_name_.find(full);
  if (it != by_name_.end()) {
    if (it->second->type_ != type) {
      throw std::invalid_argument(fmt::format("metric {}: declared as a {} and as a {}", full,
                                              typeName(it->second->type_), typeName(type)));
    }
    return *it->second;
  }
  if (!validMetricName(full)) {
    throw std::invalid_argument(
        fmt::format("metric name '{}' is not [a-zA-Z_:][a-zA-Z0-9_:]*", full));
  }
  auto f = std::make_unique<Family>();
  f->name_ = full;
  f->type_ = type;
  appendEscaped(f->help_, help, false);
  Family& ref = *f;
  families_.push_back(std::move(f));
  by_name_.emplace(std::move(full), &ref);
  return ref;
}

MetricWriter::Family& MetricWriter::family(std::string_view subsystem, const MetricInfo& info) {
  return family(fmt::format("{}_{}", subsystem, info.name), info.type, info.unit, info.help);
}

std::string MetricWriter::text() const {
  std::string out;
  for (const auto& f : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f->name_, f->help_, f->name_,
                       typeName(f->type_));
    out += f->samples_;
  }
  return out;
}

void MetricWriter::Family::putText(std::span<const Label> labels, std::string_view value) {
  std::string series;
  if (!labels.empty()) {
    series += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      const Label& l = labels[i];
      if (!validLabelName(l.key)) {
        throw std::invalid_argument(
            fmt::format("metric {}: label name '{}' is not [a-zA-Z_][a-zA-Z0-9_]* (or starts "
                        "with __)",
                        name_, l.key));
      }
      for (size_t k = 0; k < i; ++k) {
        if (labels[k].key == l.key) {
          throw std::invalid_argument(fmt::format("metric {}: label {} given twice", name_, l.key));
        }
      }
      if (i > 0) {
        series += ',';
      }
      series += l.key;
      series += "=\"";
      appendEscaped(series, l.value, true);
      series += '"';
    }
    series += '}';
  }
  if (!series_.insert(series).second) {
    throw std::invalid_argument(fmt::format("metric {}: series {} written twice", name_, series));
  }
  samples_ += name_;
  samples_ += series;
  samples_ += ' ';
  samples_ += value;
  samples_ += '\n';
}

void MetricWriter::Family::put(std::span<const Label> labels, uint64_t value) {
  putText(labels, fmt::format("{}", value));
}

void MetricWriter::Family::put(std::span<const Label> labels, int64_t value) {
  putText(labels, fmt::format("{}", value));
}

void MetricWriter::Family::put(std::span<const Label> labels, double value) {
  if (std::isnan(value)) {
    putText(labels, "NaN");
  } else if (std::isinf(value)) {
    putText(labels, value > 0 ? "+Inf" : "-Inf");
  } else {
    putText(labels, fmt::format("{}", value));
  }
}

// --- MetricsRegistry ------------------------------------------------------------------------

void MetricsRegistry::add(std::string name, Collector collect) {
  if (name.empty() || !collect) {
    throw std::invalid_argument("metrics collector needs a name and a function");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& e : collectors_) {
    if (e.name == name) {
      e.collect = std::move(collect);
      return;
    }
  }
  collectors_.push_back({std::move(name), std::move(collect)});
}

bool MetricsRegistry::remove(std::string_view name) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = collectors_.begin(); it != collectors_.end(); ++it) {
    if (it->name == name) {
      collectors_.erase(it);
      return true;
    }
  }
  return false;
}

std::vector<std::string> MetricsRegistry::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& e : collectors_) {
    out.push_back(e.name);
  }
  return out;
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  MetricWriter w;
  w.family("build_info", MetricType::kGauge, Unit::kNone,
           "net-collector's version and git revision (always 1)")
      .add({{"version", kVersion}, {"revision", kGitRevision}}, 1);
  auto failed = [&](const std::string& name, const std::string& why) {
    ++errors_[name];
    std::string& last = last_error_[name];
    if (last != why) {
      last = why;
      log::warn("metrics", "collector {} failed: {}", name, why);
    }
  };
  for (const auto& e : collectors_) {
    try {
      e.collect(w);
    } catch (const std::exception& ex) {
      failed(e.name, ex.what());
    } catch (...) {
      failed(e.name, "unknown exception");
    }
  }
  if (!errors_.empty()) {
    auto& f = w.family("metrics_collect_errors", MetricType::kCounter, Unit::kNone,
                       "Scrapes in which a metrics collector failed (see the daemon's log)");
    for (const auto& [name, n] : errors_) {
      f.add({{"collector", name}}, n);
    }
  }
  return w.text();
}

}  // namespace nc::metrics
