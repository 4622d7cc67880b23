// Webhook: posts events to an http:// endpoint with Boost.Beast, one request at a time.
#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <deque>
#include <optional>
#include <stdexcept>

#include "collector/events/events.hpp"
#include "common/log.hpp"
#include "common/version.hpp"

namespace nc::events {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

struct Url {
  std::string host;  // without brackets
  std::string port;
  std::string path;
  std::string host_header;
};

// Parses http://host[:port][/path]; host may be [v6]. Throws std::runtime_error.
Url parseUrl(const std::string& url) {
  auto bad = [&](std::string_view why) {
    return std::runtime_error(fmt::format("webhook URL '{}': {}", url, why));
  };
  std::string lower = url;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.rfind("https://", 0) == 0) {
    throw bad("https is not supported; use an http:// URL (for TLS, post to a local proxy)");
  }
  if (lower.rfind("http://", 0) != 0) {
    throw bad("must start with http://");
  }
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Url out;
  out.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.find('@') != std::string::npos) {
    throw bad("user info is not supported");
  }
  std::string port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) {
      throw bad("unterminated [IPv6] host");
    }
    out.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        throw bad("garbage after ]");
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
    }
  }
  if (out.host.empty()) {
    throw bad("missing host");
  }
  if (port.empty()) {
    port = "80";
  }
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
      std::stoul(port) == 0 || std::stoul(port) > 65535) {
    throw bad("port must be 1..65535");
  }
  out.port = port;
  out.host_header = authority;
  return out;
}

}  // namespace

class Webhook::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(boost::asio::io_context& io, const std::string& url, WebhookOptions opts)
      : io_(io), url_text_(url), url_(parseUrl(url)), opts_(opts), resolver_(io), timer_(io) {
    opts_.queue_limit = std::max<size_t>(opts_.queue_limit, 1);
    opts_.max_attempts = std::max(opts_.max_attempts, 1U);
  }

  bool post(std::string body) {
    bool ok = true;
    bool kick = false;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) {
        return false;
      }
      if (queue_.size() >= opts_.queue_limit) {
        queue_.pop_front();
        ++dropped_overflow_;
        ok = false;
      }
      queue_.push_back(std::move(body));
      if (!busy_) {
        busy_ = true;
        kick = true;
      }
    }
    if (kick) {
      boost::asio::post(io_, [self = shared_from_this()] { self->next(); });
    }
    return ok;
  }

  nlohmann::json status() const {
    std::lock_guard lock(mutex_);
    return {{"url", url_text_},
            {"queued", queue_.size()},
            {"delivered", delivered_},
            {"failed", failed_},
            {"dropped", dropped_overflow_ + dropped_rejected_ + dropped_retries_},
            {"dropped_overflow", dropped_overflow_},
            {"dropped_rejected", dropped_rejected_},
            {"dropped_retries", dropped_retries_},
            {"last_error", last_error_}};
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) {
        return;
      }
      stopped_ = true;
      queue_.clear();
    }
    boost::asio::post(io_, [self = shared_from_this()] {
      self->resolver_.cancel();
      self->timer_.cancel();
      if (self->stream_) {
        self->stream_->close();
      }
    });
  }

 private:
  bool stopped() const {
    std::lock_guard lock(mutex_);
    return stopped_;
  }

  // io thread: takes the next event, or goes idle.
  void next() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_ || queue_.empty()) {
        busy_ = false;
        return;
      }
      current_ = std::move(queue_.front());
      queue_.pop_front();
    }
    attempts_ = 0;
    attempt();
  }

  void attempt() {
    ++attempts_;
    req_ = {};
    req_.version(11);
    req_.method(http::verb::post);
    req_.target(url_.path);
    req_.set(http::field::host, url_.host_header);
    req_.set(http::field::user_agent, fmt::format("net-collector/{}", kVersion));
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::connection, "close");
    req_.body() = current_;
    req_.prepare_payload();
    stream_.emplace(io_);
    stream_->expires_after(opts_.timeout);
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = shared_from_this()](const beast::error_code& ec,
                                    const tcp::resolver::results_type& results) {
          if (self->stopped()) {
            return;
          }
          if (ec) {
            return self->retry(fmt::format("resolve {}: {}", self->url_.host, ec.message()));
          }
          self->stream_->async_connect(
              results, [self](const beast::error_code& cec, const tcp::endpoint&) {
                if (self->stopped()) {
                  return;
                }
                if (cec) {
                  return self->retry(fmt::format("connect: {}", cec.message()));
                }
                self->send();
              });
        });
  }

  void send() {
    http::async_write(
        *stream_, req_, [self = shared_from_this()](const beast::error_code& ec, size_t) {
          if (self->stopped()) {
            return;
          }
          if (ec) {
            return self->retry(fmt::format("send: {}", ec.message()));
          }
          self->buf_.clear();
          self->res_ = {};
          http::async_read(*self->stream_, self->buf_, self->res_,
                           [self](const beast::error_code& rec, size_t) {
                             if (self->stopped()) {
                               return;
                             }
                             if (rec) {
                               return self->retry(fmt::format("response: {}", rec.message()));
                             }
                             self->answered();
                           });
        });
  }

  void closeStream() {
    if (stream_) {
      beast::error_code ec;
      stream_->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_->close();
    }
  }

  void answered() {
    closeStream();
    unsigned code = res_.result_int();
    if (code >= 200 && code < 300) {
      {
        std::lock_guard lock(mutex_);
        ++delivered_;
      }
      return next();
    }
    std::string what = fmt::format("HTTP {} {}", code, std::string(res_.reason()));
    if (code >= 500 && code < 600) {
      return retry(what);
    }
    {
      std::lock_guard lock(mutex_);
      ++dropped_rejected_;
      last_error_ = what;
    }
    log::warn("events", "webhook {}: event rejected with {}; dropped", url_text_, what);
    next();
  }

  // A failed attempt: waits and tries again, or drops the event after max_attempts.
  void retry(std::string what) {
    closeStream();
    {
      std::lock_guard lock(mutex_);
      ++failed_;
      last_error_ = what;
      if (attempts_ >= opts_.max_attempts) {
        ++dropped_retries_;
      }
    }
    if (attempts_ >= opts_.max_attempts) {
      log::warn("events", "webhook {}: {} after {} attempts; event dropped", url_text_, what,
                attempts_);
      return next();
    }
    auto delay = opts_.initial_backoff;
    for (unsigned i = 1; i < attempts_ && delay < opts_.max_backoff; ++i) {
      delay *= 2;
    }
    delay = std::min(delay, opts_.max_backoff);
    log::debug("events", "webhook {}: {}; retrying in {} ms", url_text_, what, delay.count());
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this()](const beast::error_code& ec) {
      if (ec || self->stopped()) {
        return;
      }
      self->attempt();
    });
  }

  boost::asio::io_context& io_;
  const std::string url_text_;
  const Url url_;
  WebhookOptions opts_;

  // io thread only
  tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  std::string current_;
  unsigned attempts_ = 0;

  mutable std::mutex mutex_;
  std::deque<std::string> queue_;
  bool busy_ = false;  // an event is in flight or waiting to be retried
  bool stopped_ = false;
  uint64_t delivered_ = 0;
  uint64_t failed_ = 0;
  uint64_t dropped_overflow_ = 0;
  uint64_t dropped_rejected_ = 0;
  uint64_t dropped_retries_ = 0;
  std::string last_error_;
};

Webhook::Webhook(boost::asio::io_context& io, const std::string& url, WebhookOptions opts)
    : impl_(std::make_shared<Impl>(io, url, opts)) {}

Webhook::~Webhook() {
  impl_->stop();
}

bool Webhook::post(const Event& e) {
  return impl_->post(toJson(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

nlohmann::json Webhook::status() const {
  return impl_->status();
}

void Webhook::stop() {
  impl_->stop();
}

}  // namespace nc::events
