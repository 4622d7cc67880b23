#pragma once
// Plan computation: desired state (bridge rules x bridges in the replica) vs actual state (the
// replica) -> a Plan plus the guarded transaction that carries it out (≈ vswitchd/bridge.c's
// bridge_configure_sflow/netflow/ipfix, but writing OVSDB instead of ofproto). Pure logic: no I/O,
// so unit tests feed it a hand-made replica.
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "ovsctl/ovsctl.hpp"
#include "ovsctl/ovsdb/ovsdb.hpp"

namespace nc::ovsctl::provision {

struct PlanInput {
  const std::vector<config::BridgeRule>* rules = nullptr;
  Target target;
  std::string owner_id;
  std::string endpoint;  // for display only
  // For an owned, up-to-date IPFIX row: return true to re-create it (templates unknown).
  std::function<bool(const std::string& bridge, uint32_t obs_domain_id)> refresh_ipfix;
};

// Tables and columns the provisioner monitors.
ovsdb::MonitorSpec monitorSpec();

// Computes the plan and, when it has no errors, its transaction (Plan::transaction).
Plan computePlan(const ovsdb::Replica& replica, const PlanInput& input);

// Checks "HOST:PORT" / "[V6]:PORT" the way OVS parses collector targets; sets *why on failure.
bool validTarget(const std::string& target, std::string* why);

}  // namespace nc::ovsctl::provision
