#pragma once
// The control socket: how the CLI talks to a running daemon.
//
// Protocol: a unix stream socket; the client writes one JSON object per line
//   {"cmd": "status"}
// and the daemon answers each with one JSON object per line:
//   {"ok": true, "result": {...}}      or      {"ok": false, "error": "unknown command 'x'"}
// Commands are registered by the daemon's components (ControlServer::on). The server runs on the
// control-plane io_context; handlers must be quick and must not block.
//
// Streams (ControlServer::onStream, e.g. `net-collector events --follow`): the client writes one
// request line as above; the daemon then writes one line per message for as long as the client
// keeps the connection open:
//   {"ok": true, "event": {...}}
//   {"ok": true, "event": {...}}   ...
// (or one {"ok": false, "error": "..."} line and closes, when the handler rejects the request).
// Further lines from the client are ignored; closing the connection ends the subscription.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nc::control {

using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

class ControlServer;

// One subscriber of a stream command. Handed to the StreamHandler, which keeps it (e.g. in a list
// of subscribers) and sends messages until closed(). Thread-safe. A client that does not read is
// disconnected once more than the server's per-client limit of messages wait to be written.
// Must not be used after the io_context it came from is destroyed.
class Stream {
 public:
  // Queues one {"ok":true,"event":<event>} line for the client. Returns false when the client is
  // gone (or was just disconnected for not reading); the message is then discarded.
  bool send(nlohmann::json event);
  // True once the client closed the connection, was disconnected, or close() was called.
  bool closed() const { return closed_.load(); }
  // Ends the subscription from the daemon's side (after the queued lines are written).
  void close();

 private:
  friend class ControlServer;
  struct Target;
  explicit Stream(std::shared_ptr<Target> target) : target_(std::move(target)) {}

  std::shared_ptr<Target> target_;
  std::atomic<bool> closed_{false};
  std::atomic<size_t> pending_{0};
};

using StreamHandler =
    std::function<void(const nlohmann::json& request, std::shared_ptr<Stream> stream)>;

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
  // Registers a stream command: `handler` runs once per subscribing client (on the io_context)
  // and keeps the Stream to send to it. Throwing from the handler answers {"ok":false,...} and
  // closes the connection.
  void onStream(const std::string& cmd, std::string help, StreamHandler handler);
  // Messages that may wait per streaming client before it is disconnected (default 1024).
  void setStreamQueueLimit(size_t messages) { stream_queue_limit_ = messages; }
  void start();
  // Closes the listening socket and every client connection (subscriptions end).
  void stop();
  const std::string& path() const { return path_; }

 private:
  class Session;
  void accept();
  nlohmann::json dispatch(const nlohmann::json& req);

  boost::asio::io_context& io_;
  std::string path_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::map<std::string, std::pair<std::string, Handler>> handlers_;
  std::map<std::string, std::pair<std::string, StreamHandler>> streams_;
  std::vector<std::weak_ptr<Session>> sessions_;
  size_t stream_queue_limit_ = 1024;
  bool stopped_ = false;
};

// Sends one request and waits for the answer. Throws std::runtime_error naming the socket when
// the daemon is not reachable or answers garbage. Returns the whole answer object.
nlohmann::json request(const std::string& socket_path, const nlohmann::json& req,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Sends a stream request and blocks, calling `on_message` with each line the daemon writes (the
// whole object: {"ok":true,"event":...}) until it returns false, the daemon closes the connection
// or answers {"ok":false,...} (which is passed to on_message too). Throws std::runtime_error naming
// the socket when the daemon is not reachable or writes a line that is not JSON.
void subscribe(const std::string& socket_path, const nlohmann::json& req,
               std::function<bool(const nlohmann::json&)> on_message);

}  // namespace nc::control
