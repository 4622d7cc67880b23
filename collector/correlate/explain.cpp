#include "collector/correlate/explain.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "collector/query/aggregate.hpp"
#include "collector/query/filter.hpp"
#include "collector/query/query.hpp"

namespace nc::correlate {

std::string subjectFilter(const events::Event& e) {
  const bool in = e.direction == events::Direction::kIn;
  if (e.subject.kind == events::SubjectKind::kPort) {
    std::string quoted;
    for (char c : e.subject.name) {
      if (c != '"') {
        quoted += c;
      }
    }
    return fmt::format("{} ifname \"{}\"", in ? "in" : "out", quoted);
  }
  // Address subjects: "out" = sent by the address, "in" = received by it.
  return fmt::format("{} ip {}", in ? "dst" : "src", e.subject.name);
}

Explanation explainFromStore(const std::string& store_path, const events::Event& e,
                             uint64_t until_ns, size_t limit) {
  Explanation out;
  std::string why;
  auto src = query::openStore(store_path, &why);
  if (!src) {
    out.error = why;
    return out;
  }
  query::FilterError ferr;
  auto filter = query::Filter::compile(subjectFilter(e), &ferr);
  if (!filter) {
    out.error = ferr.message;
    return out;
  }
  const uint64_t since = e.start_ns;
  const uint64_t until = std::max(until_ns, since + 1);
  filter->restrictTime(since, until);
  query::QueryOptions q;
  q.filter = *filter;
  q.since_ns = since;
  q.until_ns = until;
  q.threads = 1;
  const bool packets = e.metric == events::Metric::kPackets;
  auto keys = query::parseKeys("srcip,dstip,proto,srcport,dstport", 0, &why);
  std::unique_ptr<query::Aggregator> agg;
  query::ScanTotals totals = query::aggregateFlows(*src, q, *keys, agg);
  if (!totals.errors.empty()) {
    out.error = totals.errors.front();
  }
  if (!agg) {
    return out;
  }
  const double seconds = static_cast<double>(until - since) / 1e9;
  const double total = static_cast<double>(packets ? totals.packets : totals.bytes);
  const double excess = total - e.baseline * seconds;
  const double denom = excess > 0 ? excess : total;
  for (size_t g : agg->top(packets ? query::Metric::kPackets : query::Metric::kBytes, limit)) {
    const auto text = agg->keyText(agg->key(g));  // src, dst, proto, sport, dport
    const auto c = agg->counters(g);
    events::TopEntry t;
    if (text.size() == 5) {
      int proto = -1;
      try {
        proto = std::stoi(text[2]);
      } catch (const std::exception&) {
        proto = query::protoNumber(text[2]);
      }
      const bool ports = proto == 6 || proto == 17 || proto == 132;
      std::string name = proto >= 0 ? query::protoName(static_cast<uint8_t>(proto)) : text[2];
      for (char& ch : name) {
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      }
      t.key = ports ? fmt::format("{}:{} -> {}:{} {}", text[0], text[3], text[1], text[4], name)
                    : fmt::format("{} -> {} {}", text[0], text[1], name);
    }
    t.bytes = c.bytes;
    t.packets = c.packets;
    const double v = static_cast<double>(packets ? c.packets : c.bytes);
    t.share = denom > 0 ? std::min(1.0, v / denom) : 0;
    out.top.push_back(std::move(t));
  }
  auto ekeys = query::parseKeys("exporter", 0, &why);
  std::unique_ptr<query::Aggregator> eagg;
  query::aggregateFlows(*src, q, *ekeys, eagg);
  if (eagg) {
    for (size_t g : eagg->top(query::Metric::kBytes, 16)) {
      out.exporters.push_back(eagg->keyText(eagg->key(g)).at(0));
    }
  }
  return out;
}

}  // namespace nc::correlate
