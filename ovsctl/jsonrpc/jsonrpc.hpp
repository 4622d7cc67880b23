#pragma once
// JSON-RPC 1.0 session to an OVSDB server, as RFC 7047 §4 uses it (≈ OVS lib/jsonrpc.c with
// jsonrpc_session on top).
//
// What it does:
//  * Endpoint: "unix:PATH" or "tcp:HOST:PORT" ("tcp:[V6ADDR]:PORT").
//  * StreamParser: the wire carries concatenated JSON objects with no framing; the parser splits
//    them incrementally (messages may arrive split across reads or several in one read) and
//    rejects garbage between objects.
//  * Session: one connection on a caller's io_context. Request ids, replies matched to handlers,
//    the server's `echo` answered here (never seen by the layer above), our own echo probes when
//    the connection is idle (TCP by default; any received byte counts as liveness, not only
//    complete messages), reconnect with capped exponential backoff (0.5 s -> 8 s by default).
// Where it stops: it knows nothing about OVSDB methods other than echo (see ovsdb/ovsdb.hpp).
//
// Threading: everything runs on the io_context given to the constructor, which must be run by one
// thread (the daemon's control-plane thread). No call blocks.
#include <nlohmann/json.hpp>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nc::ovsctl::jsonrpc {

using Json = nlohmann::json;

// An OVSDB connection method (RFC 7047 does not define them; these follow ovsdb-server(1)).
struct Endpoint {
  enum class Kind { Unix, Tcp };
  Kind kind = Kind::Unix;
  std::string path;  // Unix
  std::string host;  // Tcp (no brackets)
  uint16_t port = 0;
  std::string text;  // as given
};
// Parses "unix:PATH" or "tcp:HOST:PORT"; on failure returns nullopt and sets *why.
std::optional<Endpoint> parseEndpoint(std::string_view text, std::string* why);

// Splits a byte stream into JSON objects. After feed() returns false the parser is in error
// (error() says why) until reset(); the session then drops the connection, as OVS does.
class StreamParser {
 public:
  explicit StreamParser(size_t max_message = 64u << 20) : max_(max_message) {}
  // Appends complete messages found in `bytes` to `out`. Returns false on a protocol error: a
  // byte other than whitespace outside an object, invalid JSON inside one, or a message larger
  // than max_message.
  bool feed(std::string_view bytes, std::vector<Json>& out);
  void reset();
  const std::string& error() const { return error_; }
  // Bytes of an incomplete message held back.
  size_t buffered() const { return buf_.size(); }

 private:
  bool fail(std::string why);

  size_t max_;
  std::string buf_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  std::string error_;
};

struct SessionOptions {
  std::chrono::milliseconds min_backoff{500};
  std::chrono::milliseconds max_backoff{8000};
  // Idle time before we send an echo probe; the connection is dropped when nothing at all arrives
  // for another probe_interval. Applies to TCP; Unix sockets only when probe_unix (ovsdb-server
  // does not probe punix clients either). 0 = never.
  std::chrono::milliseconds probe_interval{5000};
  bool probe_unix = false;
  std::chrono::milliseconds connect_timeout{5000};
  size_t max_message = 64u << 20;
  bool reconnect = true;  // false: one attempt (one-shot CLI use)
  bool quiet = false;     // connection events at debug level instead of info/warning
};

enum class State { Stopped, Connecting, Connected, Backoff };
const char* toString(State s);

// Reply to one request. `lost` is set when the connection dropped before the reply arrived.
struct Reply {
  bool ok = false;  // "error" was null
  bool lost = false;
  Json result;
  Json error;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using ReplyHandler = std::function<void(Reply)>;
  struct Counters {
    uint64_t connects = 0;
    uint64_t connect_failures = 0;
    uint64_t disconnects = 0;
    uint64_t rx_bytes = 0;
    uint64_t rx_messages = 0;
    uint64_t tx_messages = 0;
    uint64_t echo_answered = 0;  // server's echo requests we replied to
    uint64_t probes_sent = 0;    // our echo probes
  };

  static std::shared_ptr<Session> create(boost::asio::io_context& io, Endpoint endpoint,
                                         SessionOptions options = {});
  ~Session();

  // Called on the io thread. on_connected after each successful connect; on_disconnected when a
  // connect attempt fails or an established connection drops (with the reason); on_notification
  // for requests/notifications from the server other than echo (e.g. "update2").
  std::function<void()> on_connected;
  std::function<void(const std::string& why)> on_disconnected;
  std::function<void(const Json& message)> on_notification;

  void start();  // begins connecting (asynchronously)
  // Closes the connection and cancels timers; pending handlers are dropped without being called.
  void stop();
  // Drops the current connection (if any) and reconnects after the backoff; for protocol errors
  // the layer above detects.
  void reconnect(const std::string& why);

  // Sends a request; returns false (and never calls handler) when not connected.
  bool request(const std::string& method, Json params, ReplyHandler handler);
  // Sends a notification or a reply (no handler).
  bool send(const Json& message);

  State state() const { return state_; }
  const std::string& lastError() const { return last_error_; }
  const Endpoint& endpoint() const { return endpoint_; }
  const Counters& counters() const { return counters_; }
  // Time of the current backoff wait's end (valid in Backoff).
  std::chrono::steady_clock::time_point retryAt() const { return retry_at_; }
  std::chrono::milliseconds currentBackoff() const { return backoff_; }

 private:
  Session(boost::asio::io_context& io, Endpoint endpoint, SessionOptions options);
  void connect();
  void onConnect(uint64_t gen, const boost::system::error_code& ec);
  void fail(uint64_t gen, const std::string& why);
  void scheduleRetry();
  void readMore();
  void onRead(uint64_t gen, const boost::system::error_code& ec, size_t n);
  void dispatch(Json& message);
  void writeMore();
  void armProbe();
  bool probing() const;
  void closeSocket();
  void dropPending(bool notify);

  boost::asio::io_context& io_;
  Endpoint endpoint_;
  SessionOptions options_;
  boost::asio::generic::stream_protocol::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer probe_timer_;
  State state_ = State::Stopped;
  uint64_t gen_ = 0;  // bumped per attempt; stale completions compare and return
  std::string last_error_;
  std::chrono::milliseconds backoff_;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::steady_clock::time_point last_rx_{};
  bool probe_outstanding_ = false;
  StreamParser parser_;
  std::vector<char> rxbuf_;
  std::deque<std::string> outq_;
  bool writing_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, ReplyHandler> pending_;
  Counters counters_;
};

}  // namespace nc::ovsctl::jsonrpc
