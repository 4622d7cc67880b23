#include "collector/profile/graph.hpp"

#include <fmt/format.h>
#include <rrd.h>

#include <mutex>

namespace nc::profile {
namespace {

std::mutex& graphMutex() {
  static std::mutex mu;
  return mu;
}

// rrd_graph arguments separate fields with ':'; a literal one is written "\:".
std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ':' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string_view unitLabel(Metric m) {
  switch (m) {
    case Metric::kTraffic:
      return "Bits/s";
    case Metric::kPackets:
      return "Packets/s";
    case Metric::kFlows:
      return "Flows/s";
  }
  return "";
}

std::string_view protoName(ProtoSel p) {
  switch (p) {
    case ProtoSel::kAny:
      return "any";
    case ProtoSel::kTcp:
      return "tcp";
    case ProtoSel::kUdp:
      return "udp";
    case ProtoSel::kIcmp:
      return "icmp";
    case ProtoSel::kOther:
      return "other";
  }
  return "any";
}

}  // namespace

bool parseMetric(std::string_view text, Metric& out) {
  if (text == "traffic" || text == "bits" || text == "bytes") {
    out = Metric::kTraffic;
  } else if (text == "packets") {
    out = Metric::kPackets;
  } else if (text == "flows") {
    out = Metric::kFlows;
  } else {
    return false;
  }
  return true;
}

bool parseProtoSel(std::string_view text, ProtoSel& out) {
  for (ProtoSel p :
       {ProtoSel::kAny, ProtoSel::kTcp, ProtoSel::kUdp, ProtoSel::kIcmp, ProtoSel::kOther}) {
    if (text == protoName(p)) {
      out = p;
      return true;
    }
  }
  return false;
}

bool parseImageFormat(std::string_view text, ImageFormat& out) {
  if (text == "png") {
    out = ImageFormat::kPng;
  } else if (text == "svg") {
    out = ImageFormat::kSvg;
  } else {
    return false;
  }
  return true;
}

std::string dataSource(Metric m, ProtoSel p) {
  std::string ds = m == Metric::kTraffic ? "traffic" : m == Metric::kPackets ? "packets" : "flows";
  if (p != ProtoSel::kAny) {
    ds += "_";
    ds += protoName(p);
  }
  return ds;
}

bool renderGraph(const GraphSpec& spec, std::string& image, std::string* why) {
  if (spec.channels.empty()) {
    *why = "nothing to draw: the profile has no channels";
    return false;
  }
  if (spec.end_s <= spec.start_s) {
    *why = "the graph's end must be after its start";
    return false;
  }
  if (spec.width < 16 || spec.width > 4096 || spec.height < 16 || spec.height > 4096) {
    *why = "width and height must be 16..4096 pixels";
    return false;
  }
  const std::string ds = dataSource(spec.metric, spec.proto);
  const std::string unit(unitLabel(spec.metric));
  std::vector<std::string> args = {
      "graph",
      "-",
      "--imgformat",
      spec.format == ImageFormat::kPng ? "PNG" : "SVG",
      "--start",
      fmt::format("{}", spec.start_s),
      "--end",
      fmt::format("{}", spec.end_s),
      "--width",
      fmt::format("{}", spec.width),
      "--height",
      fmt::format("{}", spec.height),
      "--vertical-label",
      unit,
      "--title",
      spec.title.empty() ? fmt::format("{} {}", unit, protoName(spec.proto)) : spec.title,
  };
  if (spec.metric == Metric::kTraffic) {
    args.push_back("--base=1000");
  }
  size_t longest = 0;
  for (const auto& c : spec.channels) {
    longest = std::max(longest, c.name.size());
  }
  bool any_neg = false;
  for (size_t i = 0; i < spec.channels.size(); ++i) {
    const GraphChannel& c = spec.channels[i];
    const int scale = c.sign == '-' ? -1 : 1;
    any_neg = any_neg || scale < 0;
    // d = the stored rate; v = what is drawn (bits for traffic, negative below the axis).
    args.push_back(fmt::format("DEF:d{}={}:{}:AVERAGE", i, escape(c.rrd_path), ds));
    args.push_back(
        fmt::format("CDEF:v{}=d{},{},*", i, i, (spec.metric == Metric::kTraffic ? 8 : 1) * scale));
    args.push_back(fmt::format("VDEF:t{}=d{},TOTAL", i, i));
    args.push_back(fmt::format("CDEF:a{}=d{},{},*", i, i, spec.metric == Metric::kTraffic ? 8 : 1));
    args.push_back(fmt::format("VDEF:m{}=a{},AVERAGE", i, i));
  }
  if (spec.profile_start_s > spec.start_s) {
    // Before the profile's start there is no data of it: grey, as nfsen draws it.
    args.push_back(fmt::format("CDEF:outside=d0,POP,TIME,{},LE,INF,UNKN,IF", spec.profile_start_s));
    args.push_back("AREA:outside#DDDDDD");
    if (any_neg) {
      args.push_back(
          fmt::format("CDEF:outsideneg=d0,POP,TIME,{},LE,NEGINF,UNKN,IF", spec.profile_start_s));
      args.push_back("AREA:outsideneg#DDDDDD");
    }
  }
  const std::string total_unit = spec.metric == Metric::kTraffic ? "B" : "";
  for (const char sign : {'+', '-'}) {
    bool first = true;
    for (size_t i = 0; i < spec.channels.size(); ++i) {
      const GraphChannel& c = spec.channels[i];
      if ((c.sign == '-') != (sign == '-')) {
        continue;
      }
      std::string label = escape(c.name);
      label.append(longest - c.name.size(), ' ');
      args.push_back(
          fmt::format("{}:v{}{}:{}", first ? "AREA" : "STACK", i, c.colour, label + "  "));
      args.push_back(fmt::format("GPRINT:t{}:total %8.2lf %s{}", i, total_unit));
      args.push_back(fmt::format("GPRINT:m{}:avg %8.2lf %s{}\\n", i, unit));
      first = false;
    }
  }
  if (any_neg) {
    args.push_back("HRULE:0#000000");
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  std::lock_guard lock(graphMutex());
  rrd_clear_error();
  rrd_info_t* info = rrd_graph_v(static_cast<int>(argv.size()), argv.data());
  const char* err = rrd_get_error();
  if (info == nullptr || (err != nullptr && *err != '\0')) {
    *why = fmt::format("graph: {}", err != nullptr && *err != '\0' ? err : "librrd failed");
    rrd_clear_error();
    if (info != nullptr) {
      rrd_info_free(info);
    }
    return false;
  }
  bool found = false;
  for (rrd_info_t* i = info; i != nullptr; i = i->next) {
    if (std::string_view(i->key) == "image" && i->type == RD_I_BLO) {
      image.assign(reinterpret_cast<const char*>(i->value.u_blo.ptr), i->value.u_blo.size);
      found = true;
    }
  }
  rrd_info_free(info);
  if (!found || image.empty()) {
    *why = "graph: librrd returned no image";
    return false;
  }
  return true;
}

}  // namespace nc::profile
