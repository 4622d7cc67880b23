#include "ovsctl/jsonrpc/jsonrpc.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <cctype>

#include "common/log.hpp"

namespace nc::ovsctl::jsonrpc {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Endpoint

std::optional<Endpoint> parseEndpoint(std::string_view text, std::string* why) {
  Endpoint e;
  e.text = std::string(text);
  if (text.rfind("unix:", 0) == 0) {
    e.kind = Endpoint::Kind::Unix;
    e.path = std::string(text.substr(5));
    if (e.path.empty()) {
      *why = "unix: needs a socket path";
      return std::nullopt;
    }
    return e;
  }
  if (text.rfind("tcp:", 0) != 0) {
    *why = fmt::format("must be unix:PATH or tcp:HOST:PORT (got '{}')", text);
    return std::nullopt;
  }
  std::string_view rest = text.substr(4);
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find("]:");
    if (close == std::string_view::npos) {
      *why = fmt::format("'{}' must look like tcp:[ADDR]:PORT", text);
      return std::nullopt;
    }
    e.host = std::string(rest.substr(1, close - 1));
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || rest.find(':') != colon) {
      *why = fmt::format("'{}' must look like tcp:HOST:PORT", text);
      return std::nullopt;
    }
    e.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(c) != 0; }) ||
      std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
    *why = fmt::format("'{}' has a bad port", text);
    return std::nullopt;
  }
  e.kind = Endpoint::Kind::Tcp;
  e.port = static_cast<uint16_t>(std::stoi(std::string(port)));
  return e;
}

// ---------------------------------------------------------------------------------------------
// StreamParser

bool StreamParser::fail(std::string why) {
  error_ = std::move(why);
  buf_.clear();
  return false;
}

void StreamParser::reset() {
  buf_.clear();
  depth_ = 0;
  in_string_ = false;
  escape_ = false;
  error_.clear();
}

bool StreamParser::feed(std::string_view bytes, std::vector<Json>& out) {
  if (!error_.empty()) {
    return false;
  }
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (depth_ == 0) {
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        continue;
      }
      if (c != '{') {
        return fail(fmt::format("unexpected byte 0x{:02x} outside a JSON object",
                                static_cast<unsigned char>(c)));
      }
      depth_ = 1;
      buf_.push_back(c);
      continue;
    }
    // Inside an object: copy the run of bytes up to the next structural character at once.
    size_t j = i;
    bool done = false;
    for (; j < bytes.size(); ++j) {
      const char d = bytes[j];
      if (in_string_) {
        if (escape_) {
          escape_ = false;
        } else if (d == '\\') {
          escape_ = true;
        } else if (d == '"') {
          in_string_ = false;
        }
        continue;
      }
      if (d == '"') {
        in_string_ = true;
      } else if (d == '{' || d == '[') {
        ++depth_;
      } else if (d == '}' || d == ']') {
        if (--depth_ == 0) {
          done = true;
          break;
        }
      }
    }
    const size_t end = done ? j + 1 : bytes.size();
    buf_.append(bytes.data() + i, end - i);
    if (buf_.size() > max_) {
      return fail(fmt::format("message larger than {} bytes", max_));
    }
    i = end - 1;
    if (done) {
      try {
        out.push_back(Json::parse(buf_));
      } catch (const std::exception& e) {
        return fail(fmt::format("invalid JSON: {}", e.what()));
      }
      buf_.clear();
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Session

const char* toString(State s) {
  switch (s) {
    case State::Stopped:
      return "stopped";
    case State::Connecting:
      return "connecting";
    case State::Connected:
      return "connected";
    case State::Backoff:
      return "backoff";
  }
  return "?";
}

std::shared_ptr<Session> Session::create(asio::io_context& io, Endpoint endpoint,
                                         SessionOptions options) {
  return std::shared_ptr<Session>(new Session(io, std::move(endpoint), options));
}

Session::Session(asio::io_context& io, Endpoint endpoint, SessionOptions options)
    : io_(io),
      endpoint_(std::move(endpoint)),
      options_(options),
      socket_(io),
      resolver_(io),
      connect_timer_(io),
      retry_timer_(io),
      probe_timer_(io),
      backoff_(options.min_backoff),
      parser_(options.max_message),
      rxbuf_(64 * 1024) {}

Session::~Session() {
  boost::system::error_code ec;
  socket_.close(ec);
}

void Session::start() {
  if (state_ != State::Stopped) {
    return;
  }
  backoff_ = options_.min_backoff;
  connect();
}

void Session::stop() {
  ++gen_;
  state_ = State::Stopped;
  closeSocket();
  retry_timer_.cancel();
  dropPending(false);
  on_connected = nullptr;
  on_disconnected = nullptr;
  on_notification = nullptr;
}

void Session::closeSocket() {
  boost::system::error_code ec;
  resolver_.cancel();
  connect_timer_.cancel();
  probe_timer_.cancel();
  socket_.close(ec);
  outq_.clear();
  writing_ = false;
  parser_.reset();
}

void Session::dropPending(bool notify) {
  auto pending = std::move(pending_);
  pending_.clear();
  if (!notify) {
    return;
  }
  for (auto& [id, handler] : pending) {
    Reply r;
    r.lost = true;
    r.error = "connection lost";
    if (handler) {
      handler(std::move(r));
    }
  }
}

void Session::connect() {
  const uint64_t gen = ++gen_;
  state_ = State::Connecting;
  closeSocket();
  auto self = shared_from_this();
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this, self, gen](const boost::system::error_code& ec) {
    if (!ec && gen == gen_ && state_ == State::Connecting) {
      fail(gen, "connect timed out");
    }
  });
  if (endpoint_.kind == Endpoint::Kind::Unix) {
    asio::generic::stream_protocol::endpoint ep(
        asio::local::stream_protocol::endpoint(endpoint_.path));
    socket_.async_connect(
        ep, [this, self, gen](const boost::system::error_code& ec) { onConnect(gen, ec); });
    return;
  }
  resolver_.async_resolve(
      endpoint_.host, std::to_string(endpoint_.port),
      [this, self, gen](const boost::system::error_code& ec,
                        asio::ip::tcp::resolver::results_type results) {
        if (gen != gen_) {
          return;
        }
        if (ec || results.empty()) {
          fail(gen, "resolve " + endpoint_.host + ": " + (ec ? ec.message() : "no address"));
          return;
        }
        asio::generic::stream_protocol::endpoint ep(results.begin()->endpoint());
        socket_.async_connect(
            ep, [this, self, gen](const boost::system::error_code& ec2) { onConnect(gen, ec2); });
      });
}

void Session::onConnect(uint64_t gen, const boost::system::error_code& ec) {
  if (gen != gen_) {
    return;
  }
  connect_timer_.cancel();
  if (ec) {
    fail(gen, "connect: " + ec.message());
    return;
  }
  if (endpoint_.kind == Endpoint::Kind::Tcp) {
    boost::system::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  }
  state_ = State::Connected;
  backoff_ = options_.min_backoff;
  last_error_.clear();
  last_rx_ = Clock::now();
  probe_outstanding_ = false;
  ++counters_.connects;
  if (options_.quiet) {
    log::debug("ovsdb", "connected to {}", endpoint_.text);
  } else {
    log::info("ovsdb", "connected to {}", endpoint_.text);
  }
  readMore();
  armProbe();
  if (on_connected) {
    on_connected();
  }
}

void Session::fail(uint64_t gen, const std::string& why) {
  if (gen != gen_ || state_ == State::Stopped) {
    return;
  }
  const bool was_connected = state_ == State::Connected;
  ++gen_;  // invalidate every completion of this attempt
  closeSocket();
  last_error_ = why;
  if (was_connected) {
    ++counters_.disconnects;
    if (options_.quiet) {
      log::debug("ovsdb", "connection to {} lost: {}", endpoint_.text, why);
    } else {
      log::warn("ovsdb", "connection to {} lost: {}", endpoint_.text, why);
    }
  } else {
    ++counters_.connect_failures;
    // Logged once per failure streak at warning level, then at debug.
    if (!options_.quiet && (counters_.connect_failures == 1 || backoff_ == options_.min_backoff)) {
      log::warn("ovsdb", "cannot connect to {}: {}", endpoint_.text, why);
    } else {
      log::debug("ovsdb", "cannot connect to {}: {}", endpoint_.text, why);
    }
  }
  state_ = State::Backoff;
  dropPending(true);
  if (state_ == State::Stopped) {
    return;  // a handler stopped us
  }
  if (on_disconnected) {
    on_disconnected(why);
  }
  if (state_ != State::Backoff) {
    return;  // stopped or reconnected from a handler
  }
  if (!options_.reconnect) {
    state_ = State::Stopped;
    return;
  }
  scheduleRetry();
}

void Session::scheduleRetry() {
  const auto wait = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  retry_at_ = Clock::now() + wait;
  const uint64_t gen = gen_;
  auto self = shared_from_this();
  retry_timer_.expires_after(wait);
  retry_timer_.async_wait([this, self, gen](const boost::system::error_code& ec) {
    if (!ec && gen == gen_ && state_ == State::Backoff) {
      connect();
    }
  });
}

void Session::reconnect(const std::string& why) {
  if (state_ == State::Connected || state_ == State::Connecting) {
    fail(gen_, why);
  }
}

void Session::readMore() {
  const uint64_t gen = gen_;
  auto self = shared_from_this();
  socket_.async_read_some(
      asio::buffer(rxbuf_),
      [this, self, gen](const boost::system::error_code& ec, size_t n) { onRead(gen, ec, n); });
}

void Session::onRead(uint64_t gen, const boost::system::error_code& ec, size_t n) {
  if (gen != gen_) {
    return;
  }
  if (ec) {
    fail(gen, ec == asio::error::eof ? "connection closed by peer" : "read: " + ec.message());
    return;
  }
  // Any byte is liveness, even the middle of a long message (cf. lib/jsonrpc.c).
  last_rx_ = Clock::now();
  probe_outstanding_ = false;
  counters_.rx_bytes += n;
  std::vector<Json> messages;
  if (!parser_.feed(std::string_view(rxbuf_.data(), n), messages)) {
    fail(gen, "protocol error: " + parser_.error());
    return;
  }
  for (auto& m : messages) {
    ++counters_.rx_messages;
    dispatch(m);
    if (gen != gen_) {
      return;  // a handler dropped or stopped the connection
    }
  }
  readMore();
}

void Session::dispatch(Json& m) {
  if (!m.is_object()) {
    return;
  }
  auto method = m.find("method");
  if (method != m.end()) {
    auto id = m.find("id");
    const bool is_request = id != m.end() && !id->is_null();
    if (method->is_string() && *method == "echo" && is_request) {
      ++counters_.echo_answered;
      send(Json{{"id", *id}, {"result", m.value("params", Json::array())}, {"error", nullptr}});
      return;
    }
    if (is_request) {
      // RFC 7047 servers send no other requests; answer so the peer is not left waiting.
      send(Json{{"id", *id}, {"result", nullptr}, {"error", "unknown method"}});
      return;
    }
    if (on_notification) {
      on_notification(m);
    }
    return;
  }
  auto id = m.find("id");
  if (id == m.end() || !id->is_number_unsigned()) {
    return;  // e.g. the reply to our echo probe ("id":"echo")
  }
  auto it = pending_.find(id->get<uint64_t>());
  if (it == pending_.end()) {
    return;
  }
  ReplyHandler handler = std::move(it->second);
  pending_.erase(it);
  Reply r;
  r.error = m.value("error", Json());
  r.result = m.value("result", Json());
  r.ok = r.error.is_null();
  if (handler) {
    handler(std::move(r));
  }
}

bool Session::request(const std::string& method, Json params, ReplyHandler handler) {
  if (state_ != State::Connected) {
    return false;
  }
  const uint64_t id = next_id_++;
  pending_.emplace(id, std::move(handler));
  return send(Json{{"method", method}, {"params", std::move(params)}, {"id", id}});
}

bool Session::send(const Json& message) {
  if (state_ != State::Connected) {
    return false;
  }
  ++counters_.tx_messages;
  outq_.push_back(message.dump());
  if (!writing_) {
    writeMore();
  }
  return true;
}

void Session::writeMore() {
  if (outq_.empty()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  const uint64_t gen = gen_;
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(outq_.front()),
                    [this, self, gen](const boost::system::error_code& ec, size_t) {
                      if (gen != gen_) {
                        return;
                      }
                      if (ec) {
                        fail(gen, "write: " + ec.message());
                        return;
                      }
                      outq_.pop_front();
                      writeMore();
                    });
}

bool Session::probing() const {
  if (options_.probe_interval.count() <= 0) {
    return false;
  }
  return endpoint_.kind == Endpoint::Kind::Tcp || options_.probe_unix;
}

void Session::armProbe() {
  if (!probing()) {
    return;
  }
  const uint64_t gen = gen_;
  auto self = shared_from_this();
  const auto tick = std::max(std::chrono::milliseconds(50), options_.probe_interval / 4);
  probe_timer_.expires_after(tick);
  probe_timer_.async_wait([this, self, gen](const boost::system::error_code& ec) {
    if (ec || gen != gen_ || state_ != State::Connected) {
      return;
    }
    const auto idle = Clock::now() - last_rx_;
    if (probe_outstanding_ && idle >= 2 * options_.probe_interval) {
      fail(gen, fmt::format("no response to inactivity probe after {} ms",
                            std::chrono::duration_cast<std::chrono::milliseconds>(idle).count()));
      return;
    }
    if (!probe_outstanding_ && idle >= options_.probe_interval) {
      probe_outstanding_ = true;
      ++counters_.probes_sent;
      send(Json{{"method", "echo"}, {"params", Json::array()}, {"id", "echo"}});
    }
    armProbe();
  });
}

}  // namespace nc::ovsctl::jsonrpc
