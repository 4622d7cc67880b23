// The Profiler's operator side: the nfsen-style listing, status, graphs and the CLI's
// operations (control()). See profiler.hpp.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "collector/metrics/metrics.hpp"
#include "collector/profile/profiler_impl.hpp"
#include "collector/query/query.hpp"
#include "common/clock.hpp"
#include "common/units.hpp"

namespace nc::profile {
namespace {

std::string base64(std::string_view in) {
  static constexpr char kChars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) |
                       static_cast<uint8_t>(in[i + 2]);
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += kChars[(v >> 6) & 63];
    out += kChars[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    if (i + 1 < in.size()) {
      v |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
    }
    out += kChars[(v >> 18) & 63];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < in.size() ? kChars[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string errorLines(const OpResult& r) {
  if (r.errors.empty()) {
    return r.error;
  }
  std::string out;
  for (const auto& e : r.errors) {
    out += out.empty() ? "" : "\n";
    out += e.toString();
  }
  return out;
}

}  // namespace

// ---- listing, graphs, control ----

std::string Profiler::statusOf(const Prof& p) const {
  if (p.sp.shadowed) {
    return "shadowed by the configuration";
  }
  if (p.sp.def.channels.empty()) {
    return "stalled";
  }
  std::string err;
  for (uint32_t id : p.chans) {
    auto it = chans_.find(id);
    if (it != chans_.end() && !it->second->error.empty()) {
      err = it->second->error;
    }
  }
  if (!err.empty()) {
    return "error: " + err;
  }
  if (p.backfill_pending) {
    const int total = std::max(1, p.backfill_windows_total);
    return fmt::format("building {:.0f}%", 100.0 * p.backfill_windows_done / total);
  }
  if (!p.backfill_error.empty() && p.backfill_error != "canceled") {
    return "error: back-fill: " + p.backfill_error;
  }
  return "OK";
}

nlohmann::json Profiler::listOne(const Prof& p) const {
  const ProfileDef& d = p.sp.def;
  int64_t updated = INT64_MIN;
  nlohmann::json chans = nlohmann::json::array();
  for (size_t i : drawingOrder(d)) {
    const ChannelDef& ch = d.channels[i];
    nlohmann::json cj = {
        {"name", ch.name},   {"sign", std::string(1, ch.sign)}, {"colour", channelColour(ch, i)},
        {"order", ch.order}, {"sources", ch.sources},           {"filter", ch.filter}};
    for (uint32_t id : p.chans) {
      auto it = chans_.find(id);
      if (it == chans_.end() || it->second->def.name != ch.name) {
        continue;
      }
      const Chan& c = *it->second;
      const bool owns = d.type != ProfileType::kShadow;
      cj["size"] =
          c.rrd_bytes +
          (owns ? static_cast<uint64_t>(c.flows_since_tstart * opts_.store_bytes_per_flow) : 0);
      cj["late_flows"] = c.late_flows;
      cj["late_bytes"] = c.late_bytes;
      if (!c.error.empty()) {
        cj["error"] = c.error;
      }
      if (!c.last_write_error.empty()) {
        cj["last_write_error"] = c.last_write_error;
      }
      if (c.written_until != INT64_MIN) {
        updated = std::max(updated, c.written_until);
      }
    }
    chans.push_back(std::move(cj));
  }
  const uint64_t step = opts_.step_ns;
  const uint64_t upd = updated == INT64_MIN ? 0 : static_cast<uint64_t>(updated + 1) * step;
  nlohmann::json j = {{"name", d.name},
                      {"group", d.group},
                      {"description", d.description},
                      {"type", std::string(toString(d.type))},
                      {"declared", p.sp.declared},
                      {"staged", p.sp.staged.has_value()},
                      {"created", timeText(p.sp.created_ns)},
                      {"start", timeText(p.sp.tstart_ns)},
                      {"end", timeText(d.type == ProfileType::kHistory ? d.end_ns : upd)},
                      {"updated", timeText(upd)},
                      {"expire", d.expire_ms == 0 ? "never" : units::formatDurationMs(d.expire_ms)},
                      {"expire_ms", d.expire_ms},
                      {"size", p.size_bytes},
                      {"maxsize", d.maxsize},
                      {"status", statusOf(p)},
                      {"channels", std::move(chans)}};
  return j;
}

nlohmann::json Profiler::list(const std::string& name) const {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const StoredProfile& sp : store_.all()) {
    if (!name.empty() && sp.def.name != name) {
      continue;
    }
    auto it = profs_.find(sp.def.name);
    if (it != profs_.end() && it->second->sp.declared == sp.declared) {
      nlohmann::json j = listOne(*it->second);
      j["staged"] = sp.staged.has_value();
      out.push_back(std::move(j));
      continue;
    }
    // Not running: new (never committed) or shadowed.
    Prof p;
    p.sp = sp;
    nlohmann::json j = listOne(p);
    j["status"] = sp.shadowed ? "shadowed by the configuration" : "new";
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json Profiler::status() const {
  std::lock_guard lock(mu_);
  size_t live = 0;
  size_t backfilling = 0;
  size_t errors = 0;
  size_t open_steps = 0;
  for (const auto& [id, c] : chans_) {
    live += c->live ? 1 : 0;
    backfilling += c->backfilling ? 1 : 0;
    errors += c->error.empty() ? 0 : 1;
    open_steps += c->open.size();
  }
  std::shared_ptr<const LivePlan> lp;
  {
    std::lock_guard pl(plan_mu_);
    lp = plan_;
  }
  size_t queued = 0;
  {
    std::lock_guard jl(job_mu_);
    queued = jobs_.size();
  }
  return {{"profiles", profs_.size()},
          {"channels", chans_.size()},
          {"live_channels", live},
          {"backfilling_channels", backfilling},
          {"channel_errors", errors},
          {"distinct_filters", lp && lp->plan ? lp->plan->distinctFilters() : 0},
          {"late", {{"flows", late_records_}, {"bytes", late_bytes_}}},
          {"steps_written", steps_written_},
          {"write_errors", write_errors_},
          {"last_error", last_error_},
          {"handover_drops", handover_drops_.load(std::memory_order_relaxed)},
          {"writer_queue", queued},
          {"open_steps", open_steps},
          {"memory_bytes", open_steps * (sizeof(StepValues) + 48) + chans_.size() * sizeof(Chan)},
          {"step_ms", opts_.step_ns / 1'000'000},
          {"delay_ms", opts_.delay_ns / 1'000'000},
          {"dir", opts_.dir}};
}

void Profiler::writeMetrics(metrics::MetricWriter& w) const {
  using metrics::MetricType;
  using metrics::Unit;
  std::lock_guard lock(mu_);
  auto& flows = w.family("profile_channel_flows", MetricType::kCounter, Unit::kNone,
                         "Flows a profile channel counted live (sampling-corrected)");
  auto& packets = w.family("profile_channel_packets", MetricType::kCounter, Unit::kNone,
                           "Packets a profile channel counted live (sampling-corrected)");
  auto& bytes = w.family("profile_channel", MetricType::kCounter, Unit::kBytes,
                         "Bytes a profile channel counted live (sampling-corrected)");
  for (const auto& [id, c] : chans_) {
    if (!c->live) {
      continue;
    }
    const metrics::Label labels[] = {{"profile", c->profile}, {"channel", c->def.name}};
    double m[3] = {0, 0, 0};
    for (size_t metric = 0; metric < 3; ++metric) {
      for (size_t cls = 0; cls < 4; ++cls) {
        m[metric] += c->counted.v[metric * 4 + cls];
      }
    }
    flows.add(labels, static_cast<uint64_t>(std::llround(m[0])));
    packets.add(labels, static_cast<uint64_t>(std::llround(m[1])));
    bytes.add(labels, static_cast<uint64_t>(std::llround(m[2])));
  }
  w.family("profile_channels", MetricType::kGauge, Unit::kNone, "Profile channels running")
      .add(chans_.size());
  w.family("profile_steps_written", MetricType::kCounter, Unit::kNone,
           "Channel steps written to RRD files")
      .add(steps_written_);
  w.family("profile_write_errors", MetricType::kCounter, Unit::kNone, "RRD write errors")
      .add(write_errors_);
  w.family("profile_late_flows", MetricType::kCounter, Unit::kNone,
           "Flows (shares) that arrived after their step was written")
      .add(late_records_);
  w.family("profile_handover_drops", MetricType::kCounter, Unit::kNone,
           "Shard hand-overs dropped because the profiler's inbox was full")
      .add(handover_drops_.load(std::memory_order_relaxed));
}

bool Profiler::graph(const GraphRequest& req, std::string& image, std::string* why) const {
  GraphSpec spec;
  {
    std::lock_guard lock(mu_);
    auto it = profs_.find(req.profile);
    if (it == profs_.end()) {
      *why = fmt::format("no running profile '{}'", req.profile);
      return false;
    }
    const Prof& p = *it->second;
    const ProfileDef& d = p.sp.def;
    for (const std::string& name : req.channels) {
      if (std::none_of(d.channels.begin(), d.channels.end(),
                       [&](const ChannelDef& c) { return c.name == name; })) {
        *why = fmt::format("profile '{}' has no channel '{}'", d.name, name);
        return false;
      }
    }
    for (size_t i : drawingOrder(d)) {
      const ChannelDef& ch = d.channels[i];
      if (!req.channels.empty() &&
          std::find(req.channels.begin(), req.channels.end(), ch.name) == req.channels.end()) {
        continue;
      }
      const std::string path = rrdPath(d.name, ch.name);
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) {
        continue;  // not written yet
      }
      spec.channels.push_back({ch.name, path, channelColour(ch, i), ch.sign});
    }
    const uint64_t now = unixNowNs();
    uint64_t end = req.end_ns;
    if (end == 0) {
      end = d.type == ProfileType::kHistory ? d.end_ns : now;
    }
    const uint64_t start =
        req.start_ns != 0 ? req.start_ns : end - std::min<uint64_t>(end, 86400 * kSecond);
    spec.start_s = start / kSecond;
    spec.end_s = end / kSecond;
    spec.profile_start_s = p.sp.tstart_ns / kSecond;
    spec.title = req.title.empty()
                     ? fmt::format("{}: {}", d.name, dataSource(req.metric, req.proto))
                     : req.title;
  }
  if (spec.channels.empty()) {
    *why = fmt::format("profile '{}' has no channel data yet", req.profile);
    return false;
  }
  spec.metric = req.metric;
  spec.proto = req.proto;
  spec.width = req.width;
  spec.height = req.height;
  spec.format = req.format;
  return renderGraph(spec, image, why);
}

nlohmann::json Profiler::control(const nlohmann::json& req) {
  if (!req.is_object()) {
    throw std::runtime_error("profile: the request must be a JSON object");
  }
  const std::string op = req.value("op", "list");
  const uint64_t now = unixNowNs();
  auto str = [&](const char* key) {
    auto it = req.find(key);
    if (it == req.end() || !it->is_string() || it->get<std::string>().empty()) {
      throw std::runtime_error(fmt::format("profile {}: '{}' is required", op, key));
    }
    return it->get<std::string>();
  };
  auto check = [&](const OpResult& r) {
    if (!r.ok) {
      throw std::runtime_error(errorLines(r));
    }
  };
  if (op == "list" || op == "show") {
    return list(req.value("profile", std::string()));
  }
  if (op == "status") {
    return status();
  }
  if (op == "add") {
    ProfileDef d;
    std::string why;
    const nlohmann::json& pj = req.contains("definition") ? req["definition"] : req;
    nlohmann::json def = pj;
    if (def.contains("profile") && !def.contains("name")) {
      def["name"] = def["profile"];
    }
    def.erase("op");
    if (!fromJson(def, d, &why)) {
      throw std::runtime_error("profile add: " + why);
    }
    check(store_.addProfile(d, now));
    return {{"profile", d.name}, {"status", "new"}, {"next", "add channels, then commit"}};
  }
  if (op == "delete") {
    const std::string name = str("profile");
    check(store_.deleteProfile(name));
    apply(now);
    return {{"deleted", name}};
  }
  if (op == "channel-add") {
    const std::string name = str("profile");
    ChannelDef ch;
    std::string why;
    auto it = req.find("channel");
    if (it == req.end() || !fromJson(*it, ch, &why)) {
      throw std::runtime_error("profile channel-add: " +
                               (why.empty() ? std::string("'channel' object is required") : why));
    }
    check(store_.addChannel(name, ch, now));
    return {{"profile", name}, {"channel", ch.name}, {"next", "commit to apply"}};
  }
  if (op == "channel-delete") {
    const std::string name = str("profile");
    const std::string ch = str("channel");
    check(store_.deleteChannel(name, ch));
    return {{"profile", name}, {"channel", ch}, {"next", "commit to apply"}};
  }
  if (op == "modify") {
    const std::string name = str("profile");
    ProfileChanges c;
    if (req.contains("group")) {
      c.group = req["group"].get<std::string>();
    }
    if (req.contains("description")) {
      c.description = req["description"].get<std::string>();
    }
    if (req.contains("expire_ms")) {
      c.expire_ms = req["expire_ms"].get<uint64_t>();
    }
    if (req.contains("maxsize")) {
      c.maxsize = req["maxsize"].get<uint64_t>();
    }
    check(store_.modify(name, c, now));
    return {{"profile", name}, {"next", "commit to apply"}};
  }
  if (op == "commit") {
    const std::string name = str("profile");
    check(store_.commit(name, now));
    apply(now);
    return list(name).at(0);
  }
  if (op == "discard") {
    const std::string name = str("profile");
    check(store_.discard(name));
    return {{"profile", name}};
  }
  if (op == "graph") {
    GraphRequest g;
    g.profile = str("profile");
    if (req.contains("channels")) {
      g.channels = req["channels"].get<std::vector<std::string>>();
    }
    std::string why;
    if (req.contains("metric") && !parseMetric(req["metric"].get<std::string>(), g.metric)) {
      throw std::runtime_error("profile graph: metric must be traffic, packets or flows");
    }
    if (req.contains("proto") && !parseProtoSel(req["proto"].get<std::string>(), g.proto)) {
      throw std::runtime_error("profile graph: proto must be any, tcp, udp, icmp or other");
    }
    if (req.contains("format") && !parseImageFormat(req["format"].get<std::string>(), g.format)) {
      throw std::runtime_error("profile graph: format must be png or svg");
    }
    for (const char* key : {"start", "end"}) {
      if (!req.contains(key)) {
        continue;
      }
      uint64_t t = 0;
      if (!query::parseTimeSpec(req[key].get<std::string>(), now, t, &why)) {
        throw std::runtime_error(fmt::format("profile graph: {}: {}", key, why));
      }
      (std::string_view(key) == "start" ? g.start_ns : g.end_ns) = t;
    }
    g.width = req.value("width", 576u);
    g.height = req.value("height", 200u);
    g.title = req.value("title", std::string());
    std::string image;
    if (!graph(g, image, &why)) {
      throw std::runtime_error("profile graph: " + why);
    }
    return {{"format", g.format == ImageFormat::kPng ? "png" : "svg"},
            {"bytes", image.size()},
            {"image_base64", base64(image)}};
  }
  throw std::runtime_error(fmt::format(
      "profile: unknown op '{}' (list, show, add, delete, channel-add, channel-delete, modify, "
      "commit, discard, graph, status)",
      op));
}

}  // namespace nc::profile
