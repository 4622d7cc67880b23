#pragma once
// The control socket: how the CLI talks to a running daemon.
//
// Protocol: a unix stream socket; the client writes one JSON object per line
//   {"cmd": "status"}
// and the daemon answers each with one JSON object per line:
//   {"ok": true, "result": {...}}      or      {"ok": false, "error": "unknown command 'x'"}
// Commands are registered by the daemon's components (ControlServer::on). The server runs on the
// control-plane io_context; handlers must be quick and must not block.
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace nc::control {

using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

class ControlServer {
 public:
  // Binds `socket_path` (creating its directory). Throws std::runtime_error with a clear message
  // when another live daemon owns the socket or the path cannot be bound. A stale socket file
  // left by a dead daemon is replaced.
  ControlServer(boost::asio::io_context& io, std::string socket_path);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Registers a command. `help` is shown by the built-in "help" command.
  void on(const std::string& cmd, std::string help, Handler handler);
  void start();
  void stop();
  const std::string& path() const { return path_; }

 private:
  class Session;
  void accept();
  nlohmann::json dispatch(const std::string& line);

  boost::asio::io_context& io_;
  std::string path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::map<std::string, std::pair<std::string, Handler>> handlers_;
  bool stopped_ = false;
};

// Sends one request and waits for the answer. Throws std::runtime_error naming the socket when
// the daemon is not reachable or answers garbage. Returns the whole answer object.
nlohmann::json request(const std::string& socket_path, const nlohmann::json& req,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace nc::control
