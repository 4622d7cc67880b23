#pragma once
// `net-collector profile ...` (nfsen-style profiles and channels, managed through the daemon's
// "profile" control command) and `net-collector graph` (see profile.cpp).
#include <functional>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace nc::cli {

// Registers `profile` and `graph` on `app`. `socket` resolves the daemon's control socket; the
// exit status goes to `rc`.
void addProfileCommands(CLI::App& app, std::function<std::string()> socket, int& rc);

}  // namespace nc::cli
