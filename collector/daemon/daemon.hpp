#pragma once
// net-collectord's top level: owns the control-plane io_context and every component, wires them
// together from the configuration, handles signals (SIGINT/SIGTERM stop cleanly, SIGHUP reloads
// the config file and keeps the running config when the new one is invalid) and tells systemd
// when it is ready (sd_notify, Type=notify).
#include <string>

#include "config/config.hpp"

namespace nc::daemon {

struct Options {
  std::string config_path;  // "" = built-in defaults only (no reload source)
  config::Config config;
};

// Runs until SIGINT/SIGTERM. Returns the process exit code. Throws std::runtime_error for startup
// failures (socket in use, permission denied) with a message meant for the operator.
int run(Options options);

// The profiles managed at runtime (`net-collector profile`, <profiles.path>/profiles.json) as a
// commented YAML block in the form of `profiles.declared`, for `--dump-config` and the "config"
// control command: they are not part of the file, and uncommenting one declares it. "" when
// there are none; a line naming the problem when profiles.json cannot be read. Creates nothing.
std::string runtimeProfilesComment(const config::Config& config);

}  // namespace nc::daemon
