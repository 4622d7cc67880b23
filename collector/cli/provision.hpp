#pragma once
// `net-collector provision ...` (see provision.cpp).
#include <functional>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace nc::cli {

// Registers `provision plan|apply|remove|status` on `app`. `config_path` is the global --config
// (empty = /etc/net-collector/net-collector.yaml); `socket` resolves the daemon's control socket;
// the exit status goes to `rc`.
void addProvisionCommand(CLI::App& app, std::string& config_path,
                         std::function<std::string()> socket, int& rc);

}  // namespace nc::cli
