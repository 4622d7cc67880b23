#pragma once
// Explaining an event from the flow store: which addresses and 5-tuples made the excess, and
// which exporters reported it. Runs a query (collector/query) over the event's window with the
// subject as the filter, so it costs nothing on the receive path; meant for a worker thread.
#include <string>
#include <vector>

#include "collector/events/events.hpp"

namespace nc::correlate {

struct Explanation {
  std::vector<events::TopEntry> top;  // by bytes (packets for a packets event), at most `limit`
  std::vector<std::string> exporters;
  std::string error;  // why there is nothing (no store, query failed)
};

// The nfdump filter selecting an event's subject: `in ifname "p1"`, `src ip 10.0.0.1`, ...
std::string subjectFilter(const events::Event& e);

// Top contributors of `e` over [e.start_ns, until_ns) in the store at `store_path`. A share is
// the entry's part of the excess (traffic above the baseline over the window), capped at 1; when
// there is no excess, its part of the subject's traffic.
Explanation explainFromStore(const std::string& store_path, const events::Event& e,
                             uint64_t until_ns, size_t limit = 5);

}  // namespace nc::correlate
