// The Prometheus text writer and the registry: naming, escaping, grouping, refusals, collectors
// that fail; the output checked against the format's rules (exposition.hpp) and, when installed,
// by Prometheus' own `promtool check metrics`.
#include "collector/metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "common/version.hpp"
#include "tests/support/support.hpp"
#include "tests/unit/metrics/exposition.hpp"

namespace nc::metrics {
namespace {

using test::parseExposition;

std::string problems(const test::Exposition& e) {
  std::string out;
  for (const auto& p : e.problems) {
    out += p + "\n";
  }
  return out;
}

// Runs promtool's linter over `text`: "" when clean, else its complaint.
std::string promtoolCheck(const std::string& text) {
  auto r = test::run({test::findTool("promtool"), "check", "metrics"}, text, 60);
  if (r.exit_code == 0) {
    return "";
  }
  return "promtool exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

TEST(FamilyName, PrefixUnitAndTotalSuffixes) {
  EXPECT_EQ(familyName("ingest_datagrams", MetricType::kCounter, Unit::kNone),
            "net_collector_ingest_datagrams_total");
  EXPECT_EQ(familyName("ingest_bytes", MetricType::kCounter, Unit::kBytes),
            "net_collector_ingest_bytes_total");
  EXPECT_EQ(familyName("store_usage", MetricType::kGauge, Unit::kBytes),
            "net_collector_store_usage_bytes");
  EXPECT_EQ(familyName("uptime", MetricType::kGauge, Unit::kSeconds),
            "net_collector_uptime_seconds");
  EXPECT_EQ(familyName("cpu", MetricType::kCounter, Unit::kSeconds),
            "net_collector_cpu_seconds_total");
  EXPECT_EQ(familyName("cpu_seconds_total", MetricType::kCounter, Unit::kSeconds),
            "net_collector_cpu_seconds_total");
  EXPECT_EQ(familyName("queue_depth", MetricType::kGauge, Unit::kNone),
            "net_collector_queue_depth");
}

TEST(MetricWriter, GroupsFamiliesWhateverTheOrderOfSamples) {
  MetricWriter w;
  w.family("a", MetricType::kCounter, Unit::kNone, "A things").add({{"x", "1"}}, 1);
  w.family("b", MetricType::kGauge, Unit::kBytes, "B bytes").add(uint64_t{7});
  w.family("a", MetricType::kCounter, Unit::kNone, "ignored: first help stays")
      .add({{"x", "2"}}, 2);
  EXPECT_EQ(w.text(),
            "# HELP net_collector_a_total A things\n"
            "# TYPE net_collector_a_total counter\n"
            "net_collector_a_total{x=\"1\"} 1\n"
            "net_collector_a_total{x=\"2\"} 2\n"
            "# HELP net_collector_b_bytes B bytes\n"
            "# TYPE net_collector_b_bytes gauge\n"
            "net_collector_b_bytes 7\n");
  auto e = parseExposition(w.text());
  EXPECT_TRUE(e.problems.empty()) << problems(e);
}

TEST(MetricWriter, EscapesLabelValuesAndHelp) {
  static constexpr char kBadUtf8[] = "bad utf8 \xff\xfe and nul \0 ok";
  MetricWriter w;
  w.family("esc", MetricType::kGauge, Unit::kNone, "help with \\ backslash\nand newline")
      .add({{"v", "quote \" backslash \\ newline \n end"}}, 1);
  w.family("esc", MetricType::kGauge, Unit::kNone, "")
      .add({{"v", std::string_view(kBadUtf8, sizeof kBadUtf8 - 1)}}, 2);
  w.family("esc", MetricType::kGauge, Unit::kNone, "").add({{"v", "ünïcödé ✓"}}, 3);
  const std::string t = w.text();
  EXPECT_NE(t.find("# HELP net_collector_esc help with \\\\ backslash\\nand newline\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("{v=\"quote \\\" backslash \\\\ newline \\n end\"} 1\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("bad utf8 \xEF\xBF\xBD\xEF\xBF\xBD and nul"), std::string::npos) << t;
  EXPECT_NE(t.find(std::string_view("and nul \0 ok\"} 2\n", 17)), std::string::npos) << t;
  EXPECT_NE(t.find("{v=\"ünïcödé ✓\"} 3\n"), std::string::npos) << t;
  auto e = parseExposition(t);
  ASSERT_TRUE(e.problems.empty()) << problems(e);
  EXPECT_EQ(e.value("net_collector_esc", {{"v", "quote \" backslash \\ newline \n end"}}), 1);
}

TEST(MetricWriter, NumbersExactAndSpecialFloats) {
  MetricWriter w;
  auto& f = w.family("n", MetricType::kGauge, Unit::kNone, "numbers");
  f.add({{"k", "max"}}, std::numeric_limits<uint64_t>::max());
  f.add({{"k", "neg"}}, int64_t{-5});
  f.add({{"k", "half"}}, 0.5);
  f.add({{"k", "nan"}}, std::nan(""));
  f.add({{"k", "inf"}}, std::numeric_limits<double>::infinity());
  f.add({{"k", "ninf"}}, -std::numeric_limits<double>::infinity());
  f.add({{"k", "big"}}, 1e300);
  const std::string t = w.text();
  EXPECT_NE(t.find("{k=\"max\"} 18446744073709551615\n"), std::string::npos) << t;
  EXPECT_NE(t.find("{k=\"neg\"} -5\n"), std::string::npos) << t;
  EXPECT_NE(t.find("{k=\"half\"} 0.5\n"), std::string::npos) << t;
  EXPECT_NE(t.find("{k=\"nan\"} NaN\n"), std::string::npos) << t;
  EXPECT_NE(t.find("{k=\"inf\"} +Inf\n"), std::string::npos) << t;
  EXPECT_NE(t.find("{k=\"ninf\"} -Inf\n"), std::string::npos) << t;
  auto e = parseExposition(t);
  EXPECT_TRUE(e.problems.empty()) << problems(e);
  EXPECT_EQ(e.value("net_collector_n", {{"k", "big"}}), 1e300);
}

TEST(MetricWriter, RefusesWhatPrometheusWouldReject) {
  MetricWriter w;
  EXPECT_THROW(w.family("bad-name", MetricType::kGauge, Unit::kNone, "h"), std::invalid_argument);
  EXPECT_THROW(w.family("sp ace", MetricType::kGauge, Unit::kNone, "h"), std::invalid_argument);
  auto& f = w.family("ok", MetricType::kGauge, Unit::kNone, "h");
  EXPECT_THROW(f.add({{"1abc", "v"}}, 1), std::invalid_argument);
  EXPECT_THROW(f.add({{"__reserved", "v"}}, 1), std::invalid_argument);
  EXPECT_THROW(f.add({{"a:b", "v"}}, 1), std::invalid_argument);
  EXPECT_THROW(f.add({{"", "v"}}, 1), std::invalid_argument);
  EXPECT_THROW(f.add({{"a", "1"}, {"a", "2"}}, 1), std::invalid_argument);
  f.add({{"a", "1"}}, 1);
  EXPECT_THROW(f.add({{"a", "1"}}, 2), std::invalid_argument) << "same series twice";
  // A counter "ok" is another family (net_collector_ok_total): no conflict.
  EXPECT_NO_THROW(w.family("ok", MetricType::kCounter, Unit::kNone, "h").add(1));
}

TEST(MetricWriter, TypeConflictOnTheSameFullName) {
  MetricWriter w;
  w.family("x_total", MetricType::kGauge, Unit::kNone, "h");
  EXPECT_THROW(w.family("x", MetricType::kCounter, Unit::kNone, "h"), std::invalid_argument);
}

TEST(MetricsRegistry, BuildInfoCollectorsInOrderAndFailuresCounted) {
  MetricsRegistry r;
  r.add("one", [](MetricWriter& w) {
    w.family("one_things", MetricType::kCounter, Unit::kNone, "Things").add(uint64_t{11});
  });
  r.add("bad", [](MetricWriter& w) {
    w.family("bad_partial", MetricType::kGauge, Unit::kNone, "Written before the throw").add(1);
    throw std::runtime_error("store is gone");
  });
  r.add("two", [](MetricWriter& w) {
    w.family("two_level", MetricType::kGauge, Unit::kNone, "Level").add(2.5);
  });
  r.add("worse", [](MetricWriter&) { throw 42; });
  EXPECT_EQ(r.names(), (std::vector<std::string>{"one", "bad", "two", "worse"}));
  std::string text = r.render();
  auto e = parseExposition(text);
  ASSERT_TRUE(e.problems.empty()) << problems(e) << text;
  EXPECT_EQ(
      e.value("net_collector_build_info", {{"version", kVersion}, {"revision", kGitRevision}}), 1);
  EXPECT_EQ(e.samples.front().name, "net_collector_build_info");
  EXPECT_EQ(e.value("net_collector_one_things_total"), 11);
  EXPECT_EQ(e.value("net_collector_bad_partial"), 1);
  EXPECT_EQ(e.value("net_collector_two_level"), 2.5);
  EXPECT_EQ(e.value("net_collector_metrics_collect_errors_total", {{"collector", "bad"}}), 1);
  EXPECT_EQ(e.value("net_collector_metrics_collect_errors_total", {{"collector", "worse"}}), 1);
  EXPECT_LT(text.find("one_things"), text.find("two_level"));

  // Replacing keeps the place, removing drops it; the error count goes on.
  r.add("one", [](MetricWriter& w) {
    w.family("one_things", MetricType::kCounter, Unit::kNone, "Things").add(uint64_t{12});
  });
  EXPECT_TRUE(r.remove("two"));
  EXPECT_FALSE(r.remove("two"));
  e = parseExposition(r.render());
  ASSERT_TRUE(e.problems.empty()) << problems(e);
  EXPECT_EQ(e.value("net_collector_one_things_total"), 12);
  EXPECT_TRUE(std::isnan(e.value("net_collector_two_level")));
  EXPECT_EQ(e.value("net_collector_metrics_collect_errors_total", {{"collector", "bad"}}), 2);

  EXPECT_THROW(r.add("", [](MetricWriter&) {}), std::invalid_argument);
  EXPECT_THROW(r.add("x", nullptr), std::invalid_argument);
}

// A collector that breaks the writer's rules does not break the scrape.
TEST(MetricsRegistry, InvalidNamesFromACollectorAreContained) {
  MetricsRegistry r;
  r.add("naughty", [](MetricWriter& w) {
    w.family("fine", MetricType::kGauge, Unit::kNone, "ok").add(1);
    w.family("not valid", MetricType::kGauge, Unit::kNone, "x").add(1);
  });
  auto e = parseExposition(r.render());
  EXPECT_TRUE(e.problems.empty()) << problems(e);
  EXPECT_EQ(e.value("net_collector_fine"), 1);
  EXPECT_EQ(e.value("net_collector_metrics_collect_errors_total", {{"collector", "naughty"}}), 1);
}

TEST(MetricsRegistry, PromtoolAcceptsTheExposition) {
  NC_REQUIRE_TOOL("promtool");
  MetricsRegistry r;
  r.add("sample", [](MetricWriter& w) {
    w.family("sample_events", MetricType::kCounter, Unit::kNone, "Events seen")
        .add({{"kind", "a\"b\\c\nd"}}, uint64_t{3});
    w.family("sample_size", MetricType::kGauge, Unit::kBytes, "Size in bytes").add(uint64_t{1024});
    w.family("sample_age", MetricType::kGauge, Unit::kSeconds, "Age").add(1.25);
    throw std::runtime_error("and an error family");
  });
  const std::string text = r.render();
  EXPECT_EQ(promtoolCheck(text), "") << text;
}

TEST(Promtool, RejectsWhatTheCheckerRejects) {
  // The oracle is not blind: a counter without _total and a missing HELP are linted.
  NC_REQUIRE_TOOL("promtool");
  EXPECT_NE(promtoolCheck("# TYPE x counter\nx 1\n"), "");
  auto e = parseExposition("# TYPE x counter\nx 1\n", "");
  EXPECT_FALSE(e.problems.empty());
}

TEST(ExpositionChecker, CatchesFormatErrors) {
  auto bad = [](std::string_view t) { return !parseExposition(t, "").problems.empty(); };
  EXPECT_FALSE(bad("# HELP a_total h\n# TYPE a_total counter\na_total 1\n"));
  EXPECT_TRUE(bad("# HELP a h\n# TYPE a gauge\na 1"));               // no final newline
  EXPECT_TRUE(bad("# HELP a h\n# TYPE a gauge\na{x=\"1} 1\n"));      // unterminated
  EXPECT_TRUE(bad("# HELP a h\n# TYPE a gauge\na{x=\"\\t\"} 1\n"));  // bad escape
  EXPECT_TRUE(bad("# HELP a h\n# TYPE a gauge\na one\n"));           // bad value
  EXPECT_TRUE(bad("# HELP a h\n# TYPE a gauge\na 1\na 2\n"));        // duplicate series
  EXPECT_TRUE(bad("a 1\n"));                                         // no TYPE
  EXPECT_TRUE(
      bad("# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b gauge\nb 1\na{x=\"1\"} 1\n"));
  EXPECT_TRUE(bad("# HELP a h\n# TYPE a gauge\na{__x=\"1\"} 1\n"));   // reserved label
  EXPECT_TRUE(bad("# HELP a h\n# TYPE a gauge\na{x=\"\xff\"} 1\n"));  // not UTF-8
}

}  // namespace
}  // namespace nc::metrics
