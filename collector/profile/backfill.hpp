#pragma once
// Back-fill: per-step totals of channels computed from stored flows, with the same counting as
// the live path (ChannelPlan::evaluate() over the scanned batches). Used for a channel added to
// an existing profile, a profile starting in the past, a history profile, and the gap left while
// the daemon was down.
//
// A query over a collector/query Source (the flow store, as `net-collector flows` scans it): one
// pass for all the request's channels, filtered by the OR of their filters and by
// `last >= <first step's start> and last < <last step's end + max_span>` (so the store skips
// blocks by their footer ranges; flows that began long before still count over their last
// max_span), decoding only the columns counting needs. Each channel counts the rows it selects
// that were received in its window and adds only to steps in [min_step, max_step]: the live path
// counts the rest. (A flow from a clock more than a minute ahead counts at its receive time; one
// whose reported end lies past the window is not seen by that window.)
//
// Runs on the caller's thread (the profiler's back-fill thread); the store may be appended to
// meanwhile.
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "collector/profile/evaluate.hpp"
#include "collector/query/query.hpp"

namespace nc::profile {

struct BackfillRequest {
  std::string store_path;  // backfill(request) opens it; backfill(source, request) ignores it
  std::vector<ChannelSpec> channels;
  SpreadOptions spread;
  unsigned threads = 1;                       // scan threads
  const std::atomic<bool>* cancel = nullptr;  // set: stop counting (the scan then ends soon)
};

struct BackfillResult {
  bool ok = false;
  std::string error;  // why nothing was counted (no store, bad filter)
  // channel id -> step -> totals (only steps with data).
  std::map<uint32_t, std::map<int64_t, StepValues>> steps;
  uint64_t rows_scanned = 0;
  uint64_t rows_selected = 0;  // rows handed to the channels' filters
  uint64_t corrupt_blocks = 0;
  double seconds = 0;
};

BackfillResult backfill(query::Source& source, const BackfillRequest& request);
// The same over the flow store at request.store_path (query::openStore).
BackfillResult backfill(const BackfillRequest& request);

}  // namespace nc::profile
