#pragma once
// Graphs of a profile's channels, rendered by librrd (rrd_graph_v) as PNG or SVG, nfsen-style:
// channels stacked in their colours in drawing order (definition.hpp drawingOrder()), '+'
// channels above the time axis and '-' channels below it, time before the profile's start greyed
// out, and a legend with each channel's total and average over the range.
//
// rrd_graph is not thread-safe: renderGraph() serializes calls with a process-wide mutex. It
// reads the RRD files while the profiler may be writing them (librrd locks per update); a graph
// may miss the newest step.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nc::profile {

enum class Metric : uint8_t { kTraffic, kPackets, kFlows };  // traffic is drawn in bits/s
enum class ProtoSel : uint8_t { kAny, kTcp, kUdp, kIcmp, kOther };
enum class ImageFormat : uint8_t { kPng, kSvg };
bool parseMetric(std::string_view text, Metric& out);      // traffic|bits|bytes, packets, flows
bool parseProtoSel(std::string_view text, ProtoSel& out);  // any, tcp, udp, icmp, other
bool parseImageFormat(std::string_view text, ImageFormat& out);  // png, svg
// The data source a graph of (metric, proto) reads: "traffic_tcp", "flows", ...
std::string dataSource(Metric m, ProtoSel p);

struct GraphChannel {
  std::string name;
  std::string rrd_path;
  std::string colour;  // "#rrggbb"
  char sign = '+';
};

struct GraphSpec {
  std::string title;                   // "" = "<metric>/s <proto>"
  std::vector<GraphChannel> channels;  // drawing order
  Metric metric = Metric::kTraffic;
  ProtoSel proto = ProtoSel::kAny;
  uint64_t start_s = 0;  // UNIX seconds, start < end
  uint64_t end_s = 0;
  uint64_t profile_start_s = 0;  // greyed out before (0 = nothing)
  unsigned width = 576;          // plot area, pixels (nfsen's size)
  unsigned height = 200;
  ImageFormat format = ImageFormat::kPng;
};

// Renders `spec` into `image` (the file's bytes). False with `why` on bad arguments (no channels,
// empty range, sizes outside 16..4096) or when librrd fails (e.g. a missing RRD file).
bool renderGraph(const GraphSpec& spec, std::string& image, std::string* why);

}  // namespace nc::profile
