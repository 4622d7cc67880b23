// nc_http: acceptor, one Session per connection (a Beast parser per request), routing, assets
// and Server-Sent Events. Everything here runs on the server's io_context thread except
// SseStream::send/close and the statistics accessors.
#include "collector/http/http.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "collector/metrics/metrics.hpp"
#include "common/log.hpp"
#include "common/version.hpp"

namespace nc::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

// After an error answer the connection is closed; what the client still sends is read and
// discarded (up to this much, within the timeout) so the kernel does not reset the connection
// before the client has read the answer.
constexpr size_t kLingerBytes = 1024 * 1024;
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);

struct Route {
  std::string method;  // "" for an event-stream route (GET)
  std::string prefix;
  Handler handler;
  SseHandler sse;
  AsyncHandler async;
};

// `prefix` matches itself and the paths below it: "/api" matches "/api" and "/api/x", not "/apix".
bool prefixMatches(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) {
    return false;
  }
  return path.size() == prefix.size() || prefix.ends_with('/') || path[prefix.size()] == '/';
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// FNV-1a 64 of the bytes, as a quoted strong ETag.
std::string computeEtag(std::string_view body) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : body) {
    h = (h ^ c) * 0x100000001b3ull;
  }
  return fmt::format("\"{:016x}\"", h);
}

// If-None-Match: "*" or a list of (possibly weak) entity tags; weak comparison (RFC 9110 13.1.2).
bool etagMatches(std::string_view if_none_match, std::string_view etag) {
  auto strip = [](std::string_view t) { return t.starts_with("W/") ? t.substr(2) : t; };
  if (trim(if_none_match) == "*") {
    return true;
  }
  while (!if_none_match.empty()) {
    size_t comma = if_none_match.find(',');
    std::string_view one = trim(if_none_match.substr(0, comma));
    if (!one.empty() && strip(one) == strip(etag)) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

// Text that can go into a header line (no CR, LF or NUL).
bool headerSafe(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// One event frame: "event:", "id:", one "data:" per line, then a blank line.
std::string sseFrame(std::string_view data, std::string_view event, std::string_view id) {
  auto oneLine = [](std::string_view s) {
    std::string out(s);
    std::replace(out.begin(), out.end(), '\r', ' ');
    std::replace(out.begin(), out.end(), '\n', ' ');
    return out;
  };
  std::string out;
  out.reserve(data.size() + 16);
  if (!event.empty()) {
    out += "event: " + oneLine(event) + "\n";
  }
  if (!id.empty()) {
    out += "id: " + oneLine(id) + "\n";
  }
  size_t at = 0;
  while (true) {
    size_t eol = data.find_first_of("\r\n", at);
    out += "data: ";
    out.append(data.substr(at, eol == std::string_view::npos ? std::string_view::npos : eol - at));
    out += '\n';
    if (eol == std::string_view::npos) {
      break;
    }
    at = eol + (data[eol] == '\r' && eol + 1 < data.size() && data[eol + 1] == '\n' ? 2 : 1);
  }
  out += '\n';
  return out;
}

}  // namespace

// --- small public helpers --------------------------------------------------------------------

std::optional<std::string_view> Request::param(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

std::string_view Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) {
      return v;
    }
  }
  return {};
}

Response Response::text(unsigned status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::json(std::string body, unsigned status) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

std::string_view StatusClassLabel::name(size_t i) {
  static constexpr std::string_view kNames[] = {"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"};
  return i < std::size(kNames) ? kNames[i] : "other";
}

std::optional<std::string> percentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return std::nullopt;
      }
      const int hi = hexValue(text[i + 1]);
      const int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

bool parseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>& out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) {
      continue;
    }
    size_t eq = part.find('=');
    auto key = percentDecode(part.substr(0, eq), true);
    auto value = percentDecode(
        eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
    if (!key || !value) {
      return false;
    }
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return true;
}

// --- server state shared with the sessions ---------------------------------------------------

struct SseStream::Target {
  size_t limit = 0;
  std::atomic<size_t> pending{0};  // bytes queued, not yet written
  std::function<void(std::string frame)> deliver;
  std::function<void(bool abort)> end;
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io_context, ServerOptions o)
      : io(io_context), opts(std::move(o)), acceptor(io_context), retry(io_context) {}

  void accept();
  void admit(tcp::socket socket);
  template <typename F>
  void count(F f) {
    std::lock_guard<std::mutex> lock(stats_mutex);
    f(stats);
  }

  asio::io_context& io;
  ServerOptions opts;
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  std::vector<Route> routes;
  std::unordered_map<std::string, Asset> assets;
  std::vector<std::weak_ptr<Session>> sessions;
  size_t open = 0;         // sessions alive
  size_t sse_clients = 0;  // of which event streams
  uint16_t port = 0;
  bool started = false;
  bool stopped = false;
  std::string last_accept_error;
  mutable std::mutex stats_mutex;
  ServerStats stats;
};

bool SseStream::send(std::string_view data, std::string_view event, std::string_view id) {
  if (closed_.load()) {
    return false;
  }
  std::string frame = sseFrame(data, event, id);
  if (target_->pending.fetch_add(frame.size()) + frame.size() > target_->limit) {
    target_->pending.fetch_sub(frame.size());
    closed_.store(true);
    target_->end(true);  // the client does not read: disconnect it
    return false;
  }
  target_->deliver(std::move(frame));
  return true;
}

void SseStream::close() {
  if (!closed_.exchange(true)) {
    target_->end(false);
  }
}

// One connection: requests one after another (keep-alive), or one event stream.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Server::Impl> server, tcp::socket socket)
      : server_(std::move(server)),
        opts_(server_->opts),
        stream_(std::move(socket)),
        buffer_(opts_.max_header_bytes + opts_.max_body_bytes + 4096) {
    ++server_->open;
    server_->count([](ServerStats& s) {
      ++s.connections;
      ++s.open_connections;
    });
  }

  ~Session() {
    --server_->open;
    const bool sse = sse_ != nullptr;
    if (sse) {
      sse_->closed_.store(true);
      --server_->sse_clients;
    }
    server_->count([sse](ServerStats& s) {
      --s.open_connections;
      if (sse) {
        --s.sse_clients;
      }
    });
  }

  void start() { readHeader(); }

  // Closes the connection now (server stop, a slow event-stream client, an error).
  void shutdown() {
    if (closed_) {
      return;
    }
    closed_ = true;
    if (sse_) {
      sse_->closed_.store(true);
    }
    if (ping_) {
      ping_->cancel();
    }
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  // --- reading a request ---------------------------------------------------------------------
  void readHeader() {
    parser_.emplace();
    parser_->header_limit(
        static_cast<uint32_t>(std::min<size_t>(opts_.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(opts_.max_body_bytes);
    stream_.expires_after(opts_.timeout);  // for the whole request, header and body
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    if (ec) {
      return fail(ec);
    }
    if (parser_->is_done()) {
      return onRequest({});
    }
    if (beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      // The client waits for this before sending the body (curl does for large bodies).
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                               [self = shared_from_this()](beast::error_code wec, size_t) {
                                 if (wec) {
                                   return self->shutdown();
                                 }
                                 self->readBody();
                               });
    }
    readBody();
  }

  void readBody() {
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onRequest(ec); });
  }

  void onRequest(beast::error_code ec) {
    if (ec) {
      return fail(ec);
    }
    if (server_->stopped) {
      return shutdown();
    }
    dispatch(parser_->release());
  }

  // A request could not be read: answer what can be answered, then close.
  void fail(beast::error_code ec) {
    if (server_->stopped || ec == asio::error::operation_aborted || closed_) {
      return shutdown();
    }
    if (ec == beast::error::timeout) {
      server_->count([](ServerStats& s) { ++s.timeouts; });
      return shutdown();  // the stream closed the socket already
    }
    head_ = false;
    version_ = 11;
    keep_alive_ = false;
    static const auto& http_errors = bhttp::make_error_code(bhttp::error::end_of_stream).category();
    if (ec == bhttp::error::end_of_stream || ec.category() != http_errors) {
      return shutdown();  // the client went away between requests, or the socket failed
    }
    server_->count([](ServerStats& s) { ++s.requests; });
    if (ec == bhttp::error::body_limit) {
      return error(413, fmt::format("request body larger than {} bytes", opts_.max_body_bytes));
    }
    if (ec == bhttp::error::header_limit) {
      return error(431, fmt::format("request header larger than {} bytes", opts_.max_header_bytes));
    }
    if (ec == bhttp::error::buffer_overflow) {
      return error(413, "request too large");
    }
    if (ec == bhttp::error::partial_message) {
      return error(400, "incomplete request (the client stopped sending)");
    }
    error(400, fmt::format("malformed request: {}", ec.message()));
  }

  // --- answering -------------------------------------------------------------------------------
  void dispatch(bhttp::request<bhttp::string_body>&& req) {
    server_->count([](ServerStats& s) { ++s.requests; });
    head_ = req.method() == bhttp::verb::head;
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    if (version_ != 10 && version_ != 11) {
      version_ = 11;
      return error(505, "only HTTP/1.0 and HTTP/1.1 are supported");
    }
    Request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    if (r.target.empty() || r.target.front() != '/') {
      return error(400, "request target must be a path starting with '/'");
    }
    const size_t q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos && !parseQuery(std::string_view(r.target).substr(q + 1), r.query)) {
      return error(400, "bad %-escape in the query string");
    }
    for (const auto& f : req) {
      r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    r.body = std::move(req.body());

    // The token: "Authorization: Bearer T" (other schemes are someone else's) or ?token=T.
    std::optional<std::string_view> given;
    const std::string_view auth = r.header("authorization");
    if (auth.size() > 7 && iequals(auth.substr(0, 7), "bearer ")) {
      given = trim(auth.substr(7));
    } else if (auto t = r.param("token")) {
      given = *t;
    }
    if (given && !opts_.token.empty()) {
      if (!constantTimeEquals(*given, opts_.token)) {
        return error(401, "wrong token", {{"WWW-Authenticate", "Bearer realm=\"net-collector\""}});
      }
      r.authorized = true;
    }
    const bool read_only = r.method == "GET" || r.method == "HEAD";

    // Routing: an asset's exact path, else the longest prefix routed for this method.
    if (auto it = server_->assets.find(r.path); it != server_->assets.end()) {
      if (!read_only) {
        return error(405, fmt::format("{} is not allowed on {}", r.method, r.path),
                     {{"Allow", "GET, HEAD"}});
      }
      return serveAsset(r, it->second);
    }
    const Route* best = nullptr;
    std::vector<std::string> allow;
    for (const Route& rt : server_->routes) {
      if (!prefixMatches(r.path, rt.prefix)) {
        continue;
      }
      const std::string& m = rt.sse ? std::string("GET") : rt.method;
      if (m == r.method || (m == "GET" && r.method == "HEAD")) {
        if (best == nullptr || rt.prefix.size() > best->prefix.size()) {
          best = &rt;
        }
      } else {
        for (const std::string& add :
             m == "GET" ? std::vector<std::string>{"GET", "HEAD"} : std::vector<std::string>{m}) {
          if (std::find(allow.begin(), allow.end(), add) == allow.end()) {
            allow.push_back(add);
          }
        }
      }
    }
    if (best == nullptr) {
      if (!allow.empty()) {
        std::string list;
        for (const auto& m : allow) {
          list += (list.empty() ? "" : ", ") + m;
        }
        return error(405, fmt::format("{} is not allowed on {}", r.method, r.path),
                     {{"Allow", list}});
      }
      return error(404, fmt::format("no such resource: {}", r.path));
    }
    if (!read_only && !r.authorized) {
      if (opts_.token.empty()) {
        return error(403, fmt::format("{} refused: the server is read-only (no token configured)",
                                      r.method));
      }
      return error(401,
                   fmt::format("{} needs the token: \"Authorization: Bearer <token>\" or "
                               "?token=<token>",
                               r.method),
                   {{"WWW-Authenticate", "Bearer realm=\"net-collector\""}});
    }
    if (best->sse) {
      if (head_) {
        Response resp;
        resp.content_type = "text/event-stream";
        return respond(std::move(resp), false);
      }
      return startSse(r, best->sse);
    }
    if (best->async) {
      return startAsync(r, best->async);
    }
    Response resp;
    try {
      resp = best->handler(r);
    } catch (const std::exception& e) {
      return error(500, fmt::format("internal error: {}", e.what()));
    } catch (...) {
      return error(500, "internal error");
    }
    respond(std::move(resp), false);
  }

  // An asynchronous handler: the answer comes back through `Pending`, posted to this session's
  // executor; at most one answer per request, 500 when the handler drops every copy of respond.
  // Pending keeps the session alive while the answer is awaited (nothing else does: no socket
  // operation is pending meanwhile).
  struct Pending {
    std::shared_ptr<Session> session;
    uint64_t request = 0;
    std::atomic<bool> answered{false};
    void answer(Response resp) {
      if (answered.exchange(true)) {
        return;
      }
      auto ex = session->stream_.get_executor();
      asio::post(ex, [s = session, id = request, resp = std::move(resp)]() mutable {
        s->onAsyncAnswer(id, std::move(resp));
      });
    }
    ~Pending() {
      if (!answered.load()) {
        answer(Response::text(500, "internal error: the handler gave no answer\n"));
      }
    }
  };

  void startAsync(const Request& r, const AsyncHandler& handler) {
    auto pending = std::make_shared<Pending>();
    pending->session = shared_from_this();
    pending->request = ++async_request_;
    awaiting_ = async_request_;
    Respond respond = [pending](Response resp) { pending->answer(std::move(resp)); };
    try {
      handler(r, std::move(respond));
    } catch (const std::exception& e) {
      if (!pending->answered.exchange(true)) {
        awaiting_ = 0;
        return error(500, fmt::format("internal error: {}", e.what()));
      }
    } catch (...) {
      if (!pending->answered.exchange(true)) {
        awaiting_ = 0;
        return error(500, "internal error");
      }
    }
  }

  void onAsyncAnswer(uint64_t id, Response resp) {
    if (closed_ || server_->stopped || id != awaiting_) {
      return;
    }
    awaiting_ = 0;
    respond(std::move(resp), false);
  }

  void serveAsset(const Request& r, const Asset& a) {
    Response resp;
    resp.content_type = a.content_type;
    resp.headers = {{"ETag", a.etag}, {"Cache-Control", a.cache_control}};
    const std::string_view inm = r.header("if-none-match");
    if (!inm.empty() && etagMatches(inm, a.etag)) {
      resp.status = 304;
      resp.content_type.clear();
    } else {
      resp.body = a.body;
    }
    respond(std::move(resp), false);
  }

  void error(unsigned status, std::string message,
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    Response resp = Response::text(status, std::move(message) + "\n");
    resp.headers = std::move(headers);
    // After a request that could not be read (or was refused before its body was read), the
    // connection's framing is unknown: close it.
    const bool close =
        status == 400 || status == 413 || status == 431 || !parser_ || !parser_->is_done();
    respond(std::move(resp), close);
  }

  void respond(Response resp, bool close) {
    if (resp.status < 200 || resp.status > 599 || !headerSafe(resp.content_type)) {
      resp = Response::text(500,
                            fmt::format("internal error: bad response (status {})\n", resp.status));
    }
    for (const auto& [k, v] : resp.headers) {
      if (k.empty() || !headerSafe(k) || !headerSafe(v)) {
        resp = Response::text(500, "internal error: bad response header\n");
        break;
      }
    }
    res_ = {};
    res_.version(version_);
    res_.result(resp.status);
    res_.set(bhttp::field::server, fmt::format("net-collector/{}", kVersion));
    if (!resp.content_type.empty()) {
      res_.set(bhttp::field::content_type, resp.content_type);
    }
    for (const auto& [k, v] : resp.headers) {
      res_.insert(k, v);
    }
    if (resp.status == 204 || resp.status == 304) {
      resp.body.clear();
    } else {
      res_.body() = std::move(resp.body);
      res_.prepare_payload();  // Content-Length
    }
    if (head_) {
      res_.body().clear();  // Content-Length stays that of the GET answer
    }
    res_.keep_alive(keep_alive_ && !close);
    const size_t cls = resp.status / 100;
    server_->count([cls](ServerStats& s) { ++s.responses[cls]; });
    stream_.expires_after(opts_.timeout);
    bhttp::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        return self->shutdown();
      }
      if (!self->res_.keep_alive()) {
        return self->lingerClose();
      }
      if (self->server_->stopped) {
        return self->shutdown();
      }
      self->readHeader();
    });
  }

  // Half-closes, then reads and drops what the client still sends (bounded), then closes.
  void lingerClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(
        std::min<std::chrono::milliseconds>(opts_.timeout, std::chrono::seconds(5)));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(sink_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ >= kLingerBytes) {
                                return self->shutdown();
                              }
                              self->drain();
                            });
  }

  // --- event streams ---------------------------------------------------------------------------
  void startSse(const Request& r, const SseHandler& handler) {
    if (server_->sse_clients >= opts_.max_sse_clients) {
      return error(
          503, fmt::format("too many event-stream clients (at most {})", opts_.max_sse_clients));
    }
    auto target = std::make_shared<SseStream::Target>();
    target->limit = std::max<size_t>(opts_.max_sse_queue_bytes, 1);
    std::weak_ptr<Session> weak = weak_from_this();
    auto ex = stream_.get_executor();
    target->deliver = [weak, ex](std::string frame) {
      asio::post(ex, [weak, frame = std::move(frame)]() mutable {
        if (auto s = weak.lock()) {
          s->enqueue(std::move(frame));
        }
      });
    };
    target->end = [weak, ex](bool abort) {
      asio::post(ex, [weak, abort] {
        if (auto s = weak.lock()) {
          s->end(abort);
        }
      });
    };
    auto stream = std::make_shared<SseStream>(target);
    try {
      handler(r, stream);
    } catch (const std::exception& e) {
      stream->closed_.store(true);
      return error(500, fmt::format("internal error: {}", e.what()));
    } catch (...) {
      stream->closed_.store(true);
      return error(500, "internal error");
    }
    sse_ = std::move(stream);
    sse_target_ = std::move(target);
    ++server_->sse_clients;
    server_->count([](ServerStats& s) {
      ++s.sse_clients;
      ++s.responses[2];
    });
    std::string header = fmt::format(
        "HTTP/1.1 200 OK\r\nServer: net-collector/{}\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n",
        kVersion);
    stream_.expires_never();
    sse_target_->pending.fetch_add(header.size());
    queue_.push_front(std::move(header));  // before any frame the handler sent
    if (!writing_) {
      writeNext();
    }
    watch();
    schedulePing();
  }

  // Reads (and ignores) what an event-stream client sends, to notice when it goes away.
  void watch() {
    stream_.async_read_some(asio::buffer(sink_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) {
                                return self->shutdown();
                              }
                              self->watch();
                            });
  }

  void schedulePing() {
    if (opts_.sse_ping.count() <= 0) {
      return;
    }
    if (!ping_) {
      ping_.emplace(stream_.get_executor());
    }
    ping_->expires_after(opts_.sse_ping);
    ping_->async_wait([weak = weak_from_this()](beast::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->closed_) {
        return;
      }
      if (!self->writing_ && self->queue_.empty() && !self->close_when_drained_) {
        static constexpr std::string_view kPing = ": ping\n\n";
        self->sse_target_->pending.fetch_add(kPing.size());
        self->queue_.emplace_back(kPing);
        self->writeNext();
      }
      self->schedulePing();
    });
  }

  void enqueue(std::string frame) {
    if (!sse_ || closed_ || close_when_drained_) {
      if (sse_target_) {
        sse_target_->pending.fetch_sub(frame.size());
      }
      return;
    }
    server_->count([](ServerStats& s) { ++s.sse_events; });
    queue_.push_back(std::move(frame));
    if (!writing_) {
      writeNext();
    }
  }

  void writeNext() {
    if (queue_.empty()) {
      writing_ = false;
      if (close_when_drained_) {
        shutdown();
      }
      return;
    }
    writing_ = true;
    asio::async_write(stream_, asio::buffer(queue_.front()),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->sse_target_->pending.fetch_sub(self->queue_.front().size());
                        self->queue_.pop_front();
                        if (ec) {
                          for (const auto& f : self->queue_) {
                            self->sse_target_->pending.fetch_sub(f.size());
                          }
                          self->queue_.clear();
                          self->writing_ = false;
                          return self->shutdown();
                        }
                        self->writeNext();
                      });
  }

  // SseStream::close (abort=false: after the queued frames) or a client too slow (abort=true).
  void end(bool abort) {
    if (abort && !closed_) {
      server_->count([](ServerStats& s) { ++s.sse_dropped; });
    }
    close_when_drained_ = true;
    if (abort || !writing_) {
      shutdown();
    }
  }

  std::shared_ptr<Server::Impl> server_;
  const ServerOptions& opts_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  unsigned version_ = 11;
  bool head_ = false;
  bool keep_alive_ = false;
  bool closed_ = false;
  std::array<char, 4096> sink_{};
  size_t drained_ = 0;
  uint64_t async_request_ = 0;  // asynchronous requests started on this connection
  uint64_t awaiting_ = 0;       // the one whose answer is awaited (0 = none)
  // Event-stream mode.
  std::shared_ptr<SseStream> sse_;
  std::shared_ptr<SseStream::Target> sse_target_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool close_when_drained_ = false;
  std::optional<asio::steady_timer> ping_;
};

// --- Server ------------------------------------------------------------------------------------

void Server::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) {
      return;
    }
    if (ec) {
      // Out of descriptors or similar: say so once, retry shortly instead of spinning.
      if (self->last_accept_error != ec.message()) {
        self->last_accept_error = ec.message();
        log::warn("http", "accept failed: {}", ec.message());
      }
      self->retry.expires_after(kAcceptRetry);
      self->retry.async_wait([self](beast::error_code wec) {
        if (!wec && !self->stopped) {
          self->accept();
        }
      });
      return;
    }
    self->admit(std::move(socket));
    self->accept();
  });
}

void Server::Impl::admit(tcp::socket socket) {
  std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
  beast::error_code ec;
  if (open >= opts.max_connections) {
    // Answer without keeping any state: one non-blocking write, then close.
    static constexpr std::string_view kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 34\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
        "too many connections, retry later\n";
    count([](ServerStats& s) {
      ++s.connections_refused;
      ++s.responses[5];
    });
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(kBusy.data(), kBusy.size()), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto session = std::make_shared<Session>(shared_from_this(), std::move(socket));
  sessions.push_back(session);
  session->start();
}

Server::Server(asio::io_context& io, ServerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {
  const ServerOptions& o = impl_->opts;
  beast::error_code ec;
  const auto address = asio::ip::make_address(o.address, ec);
  if (ec) {
    throw std::runtime_error(
        fmt::format("http: '{}' is not an IPv4 or IPv6 address: {}", o.address, ec.message()));
  }
  const tcp::endpoint ep(address, o.port);
  const std::string where = address.is_v6() ? fmt::format("[{}]:{}", o.address, o.port)
                                            : fmt::format("{}:{}", o.address, o.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) {
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    impl_->acceptor.bind(ep, ec);
  }
  if (!ec) {
    impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    throw std::runtime_error(fmt::format("http: cannot listen on {}: {}", where, ec.message()));
  }
  impl_->port = impl_->acceptor.local_endpoint(ec).port();
}

Server::~Server() {
  stop();
}

void Server::route(std::string method, std::string prefix, Handler handler) {
  for (auto& r : impl_->routes) {
    if (!r.sse && r.method == method && r.prefix == prefix) {
      r.handler = std::move(handler);
      r.async = nullptr;
      return;
    }
  }
  impl_->routes.push_back(
      {std::move(method), std::move(prefix), std::move(handler), nullptr, nullptr});
}

void Server::routeAsync(std::string method, std::string prefix, AsyncHandler handler) {
  for (auto& r : impl_->routes) {
    if (!r.sse && r.method == method && r.prefix == prefix) {
      r.handler = nullptr;
      r.async = std::move(handler);
      return;
    }
  }
  impl_->routes.push_back(
      {std::move(method), std::move(prefix), nullptr, nullptr, std::move(handler)});
}

void Server::sse(std::string prefix, SseHandler handler) {
  for (auto& r : impl_->routes) {
    if (r.sse && r.prefix == prefix) {
      r.sse = std::move(handler);
      return;
    }
  }
  impl_->routes.push_back({"", std::move(prefix), nullptr, std::move(handler), nullptr});
}

void Server::asset(std::string path, Asset asset) {
  if (asset.etag.empty()) {
    asset.etag = computeEtag(asset.body);
  }
  impl_->assets[std::move(path)] = std::move(asset);
}

void Server::start() {
  if (impl_->started || impl_->stopped) {
    return;
  }
  impl_->started = true;
  impl_->accept();
}

void Server::stop() {
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  beast::error_code ec;
  impl_->acceptor.close(ec);
  impl_->retry.cancel();
  for (auto& w : impl_->sessions) {
    if (auto s = w.lock()) {
      s->shutdown();
    }
  }
  impl_->sessions.clear();
}

uint16_t Server::port() const {
  return impl_->port;
}

ServerStats Server::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mutex);
  return impl_->stats;
}

void Server::writeMetrics(metrics::MetricWriter& w) const {
  metrics::writeStats(w, "http", stats());
}

void serveMetrics(Server& server, const metrics::MetricsRegistry& registry, std::string path) {
  server.route("GET", std::move(path), [&registry](const Request&) {
    Response r;
    r.content_type = std::string(metrics::kPrometheusContentType);
    r.body = registry.render();
    return r;
  });
}

}  // namespace nc::http
