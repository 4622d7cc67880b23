#pragma once
// nc_http: a small HTTP/1.1 server (Boost.Beast) for the daemon's read-only web endpoints:
// `/metrics` (collector/metrics), a JSON API, a dashboard's static assets (served from memory) and
// its live updates as Server-Sent Events.
//
// It runs on the io_context it is given (the daemon's control-plane thread); that io_context must
// be run by one thread. Handlers run on it, so they must be quick and must not block. What it
// guards against, each with a clear status and never a crash or a stuck connection:
//   - a request must arrive within `timeout` (slow or idle clients are closed), its header within
//     max_header_bytes (else 431) and its body within max_body_bytes (else 413); anything Beast
//     cannot parse is 400 and the connection is closed;
//   - at most max_connections connections (more are answered 503 and closed), at most
//     max_sse_clients event streams (503), at most max_sse_queue_bytes queued per event-stream
//     client (a client that does not read is disconnected; senders never block);
//   - writes: a token (`Authorization: Bearer T` or `?token=T`) is required for every method other
//     than GET and HEAD; without a configured token the server is read-only (403). A wrong token is
//     401 on any method.
// Routing: an asset's exact path first, then the route with the longest matching path prefix for
// the method (a prefix matches itself and what follows it after a '/'); a path some route matches
// for other methods is 405 (with Allow), else 404. GET routes answer HEAD (same headers, no body).
// Keep-alive and pipelining follow the request (HTTP/1.1 keeps alive unless "Connection: close").
// Where it stops: no TLS (bind to loopback or put a proxy in front), no compression, no chunked
// responses, no WebSocket.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/metrics/stats.hpp"

namespace nc::metrics {
class MetricsRegistry;
class MetricWriter;
}  // namespace nc::metrics

namespace nc::http {

struct Request {
  std::string method;                                        // as sent: "GET", "HEAD", "POST", ...
  std::string target;                                        // as sent: path and query
  std::string path;                                          // target up to '?', not decoded
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
  std::string body;
  bool authorized = false;  // carried the server's token

  // The first query parameter `key`, decoded; nullopt when absent.
  std::optional<std::string_view> param(std::string_view key) const;
  // The first header `name` (case-insensitive); "" when absent.
  std::string_view header(std::string_view name) const;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers

  static Response text(unsigned status, std::string body);
  static Response json(std::string body, unsigned status = 200);
};

// A handler throwing std::exception is answered 500 with the exception's message.
using Handler = std::function<Response(const Request&)>;

// An asynchronous handler answers later, by calling `respond` once, from any thread (e.g. a
// worker that scans the flow store). While it has not answered, the connection waits (reads
// nothing more; keep-alive resumes after the answer). Calls after the first are ignored; when
// every copy of `respond` is destroyed without a call the request is answered 500. `respond`
// must not be called, and every copy of it must be destroyed, before the server's io_context is
// destroyed (it keeps the connection alive). A handler that throws before answering is answered
// 500 with the exception's message.
using Respond = std::function<void(Response)>;
using AsyncHandler = std::function<void(const Request&, Respond respond)>;

// A file served from memory (the dashboard is compiled into the binary).
struct Asset {
  std::string content_type;
  std::string body;
  std::string etag;                        // quoted ("\"v1\""); "" = computed from the body
  std::string cache_control = "no-cache";  // revalidate each time (answered 304 while unchanged)
};

// One Server-Sent Events client, handed to an SseHandler, which keeps it (e.g. in a list of
// subscribers) and sends to it until closed(). Thread-safe; never blocks: when more than
// max_sse_queue_bytes wait to be written, the client is disconnected and send() returns false.
// Must not be used after the server's io_context is destroyed.
class Session;

class SseStream {
 public:
  // Queues one event: an optional "event:" and "id:" line, then one "data:" line per line of
  // `data` ("\n", "\r\n" or "\r" separated). Returns false when the client is gone, was dropped
  // for not reading, or the stream was closed; the event is then discarded.
  bool send(std::string_view data, std::string_view event = {}, std::string_view id = {});
  // True once the client went away, was dropped, the server stopped, or close() was called.
  bool closed() const { return closed_.load(); }
  // Ends the stream from the server's side after what is queued is written.
  void close();

  struct Target;  // how the stream reaches its connection (server.cpp)
  explicit SseStream(std::shared_ptr<Target> target) : target_(std::move(target)) {}

 private:
  friend class Session;
  std::shared_ptr<Target> target_;
  std::atomic<bool> closed_{false};
};

using SseHandler = std::function<void(const Request&, std::shared_ptr<SseStream>)>;

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  uint16_t port = 0;                  // 0 = any free port (see Server::port)
  std::string token;                  // "" = read-only: only GET and HEAD
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds timeout{30'000};  // to receive one request, and to write one answer
  size_t max_connections = 64;
  size_t max_sse_clients = 16;
  size_t max_sse_queue_bytes = 1024 * 1024;
  std::chrono::milliseconds sse_ping{15'000};  // ": ping" comment on idle streams (0 = off)
};

// HTTP status classes as a label: code="2xx", ...
struct StatusClassLabel {
  static constexpr std::string_view key = "code";
  static constexpr size_t first = 1;
  static std::string_view name(size_t i);
};
using StatusClassCounts = metrics::CountsBy<StatusClassLabel, 6>;

// The server's own counters (collector/metrics/stats.hpp): Prometheus net_collector_http_*.
// X(TYPE, ctype, member, "key", UNIT, "column", "help")
#define NC_HTTP_STATS(X)                                                                         \
  X(Counter, uint64_t, connections, "connections", None, "", "Connections accepted")             \
  X(Counter, uint64_t, connections_refused, "connections_refused", None, "",                     \
    "Connections refused with 503 because max_connections were open")                            \
  X(Gauge, uint64_t, open_connections, "open_connections", None, "", "Connections open now")     \
  X(Counter, uint64_t, requests, "requests", None, "", "Requests received (complete or not)")    \
  X(Counter, StatusClassCounts, responses, "responses", None, "",                                \
    "Responses sent, by status class")                                                           \
  X(Counter, uint64_t, timeouts, "timeouts", None, "",                                           \
    "Connections closed because a request did not arrive within the timeout")                    \
  X(Gauge, uint64_t, sse_clients, "sse_clients", None, "", "Event-stream clients connected now") \
  X(Counter, uint64_t, sse_events, "sse_events", None, "",                                       \
    "Events queued to event-stream clients")                                                     \
  X(Counter, uint64_t, sse_dropped, "sse_dropped", None, "",                                     \
    "Event-stream clients disconnected because too many bytes waited for them")

struct ServerStats {
  NC_STATS_DEFINE(ServerStats, NC_HTTP_STATS)
};

class Server {
 public:
  // Binds options.address:options.port now. Throws std::runtime_error naming the address on a bad
  // address or when it cannot be bound (e.g. "http: cannot listen on 127.0.0.1:80: Permission
  // denied"). Serves nothing until start().
  Server(boost::asio::io_context& io, ServerOptions options);
  // stop()
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes `method` ("GET", "POST", ...) on paths under `prefix` ("/api/ports") to `handler`.
  // Registering the same method and prefix again replaces the handler.
  void route(std::string method, std::string prefix, Handler handler);
  // The same for a handler that answers asynchronously (AsyncHandler). Shares route()'s table:
  // registering a method and prefix with either replaces the other.
  void routeAsync(std::string method, std::string prefix, AsyncHandler handler);
  // GET requests under `prefix` become event streams handed to `handler` (200, text/event-stream).
  // A handler that throws is answered 500 and no stream starts.
  void sse(std::string prefix, SseHandler handler);
  // Serves `asset` at exactly `path` (GET, HEAD; If-None-Match answered 304).
  void asset(std::string path, Asset asset);

  void start();
  // Closes the listener and every connection (event streams end). Idempotent.
  void stop();

  // The bound port (resolves port 0).
  uint16_t port() const;
  // Copy of the counters. Thread-safe.
  ServerStats stats() const;
  // Appends net_collector_http_* (the counters above). Thread-safe.
  void writeMetrics(metrics::MetricWriter& w) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Serves `registry.render()` at GET `path` with the Prometheus text content type. The registry
// must outlive the server.
void serveMetrics(Server& server, const metrics::MetricsRegistry& registry,
                  std::string path = "/metrics");

// Decodes %XX escapes (and '+' as a space when `plus_is_space`); nullopt on a bad escape.
std::optional<std::string> percentDecode(std::string_view text, bool plus_is_space);
// Splits "a=1&b=x%20y&flag" into decoded pairs (a bare key gets ""); false on a bad escape.
bool parseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>& out);

}  // namespace nc::http
