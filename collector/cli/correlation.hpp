#pragma once
// `net-collector ports` and `net-collector events` (see correlation.cpp).
#include <functional>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace nc::cli {

// Registers `ports` and `events` on `app`. `socket` resolves the daemon's control socket,
// `config_path` is the global --config (events read <store.path>/events from it when the daemon
// is not running); the exit status goes to `rc`.
void addCorrelationCommands(CLI::App& app, std::string& config_path,
                            std::function<std::string()> socket, int& rc);

}  // namespace nc::cli
