#include "collector/control/control.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <stdexcept>

#include "common/log.hpp"

namespace nc::control {
namespace {

using boost::asio::local::stream_protocol;
constexpr size_t kMaxRequest = 64 * 1024;

// Connects a blocking unix socket; returns -1 with errno set on failure.
int connectUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// Connects and writes one request line; returns the socket. Throws std::runtime_error naming the
// socket.
int connectAndSend(const std::string& socket_path, const nlohmann::json& req) {
  int fd = connectUnix(socket_path);
  if (fd < 0) {
    throw std::runtime_error(
        fmt::format("cannot reach net-collectord at {}: {} (is the daemon running? see --socket)",
                    socket_path, std::strerror(errno)));
  }
  std::string out = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int e = errno;
      ::close(fd);
      throw std::runtime_error(fmt::format("{}: write failed: {}", socket_path, std::strerror(e)));
    }
    off += static_cast<size_t>(n);
  }
  return fd;
}

}  // namespace

// How a Stream reaches its Session without owning it: both callbacks post to the io_context and
// do nothing once the session is gone.
struct Stream::Target {
  size_t limit = 0;
  std::function<void(std::string line)> deliver;
  std::function<void(bool abort)> end;
};

bool Stream::send(nlohmann::json event) {
  if (closed_.load()) {
    return false;
  }
  if (pending_.fetch_add(1) + 1 > target_->limit) {
    closed_.store(true);
    target_->end(true);  // the client does not read: disconnect it
    return false;
  }
  nlohmann::json line = {{"ok", true}, {"event", std::move(event)}};
  target_->deliver(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  return true;
}

void Stream::close() {
  if (!closed_.exchange(true)) {
    target_->end(false);
  }
}

class ControlServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ControlServer& server, stream_protocol::socket socket)
      : server_(server), socket_(std::move(socket)), buf_(kMaxRequest) {}

  void start() { read(); }

  // Closes the connection now (server stop, or a stream client that does not read).
  void shutdown() {
    if (stream_) {
      stream_->closed_.store(true);
    }
    boost::system::error_code ec;
    socket_.shutdown(stream_protocol::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  void read() {
    auto self = shared_from_this();
    boost::asio::async_read_until(
        socket_, buf_, '\n', [self](const boost::system::error_code& ec, size_t n) {
          if (ec) {
            return;  // EOF, too long a line, or shutdown: drop the connection
          }
          std::string line(
              boost::asio::buffers_begin(self->buf_.data()),
              boost::asio::buffers_begin(self->buf_.data()) + static_cast<std::ptrdiff_t>(n));
          self->buf_.consume(n);
          nlohmann::json req = nlohmann::json::parse(line, nullptr, false);
          if (req.is_object() && req.contains("cmd") && req["cmd"].is_string()) {
            auto it = self->server_.streams_.find(req["cmd"].get<std::string>());
            if (it != self->server_.streams_.end()) {
              return self->startStream(req, it->second.second);
            }
          }
          self->out_ = self->server_.dispatch(req).dump(-1, ' ', false,
                                                        nlohmann::json::error_handler_t::replace) +
                       "\n";
          boost::asio::async_write(self->socket_, boost::asio::buffer(self->out_),
                                   [self](const boost::system::error_code& wec, size_t) {
                                     if (!wec) {
                                       self->read();
                                     }
                                   });
        });
  }

  // Turns this connection into a subscription: the handler gets a Stream that writes to it.
  void startStream(const nlohmann::json& req, const StreamHandler& handler) {
    auto target = std::make_shared<Stream::Target>();
    target->limit = std::max<size_t>(server_.stream_queue_limit_, 1);
    std::weak_ptr<Session> weak = weak_from_this();
    auto ex = socket_.get_executor();
    target->deliver = [weak, ex](std::string line) {
      boost::asio::post(ex, [weak, line = std::move(line)]() mutable {
        if (auto s = weak.lock()) {
          s->enqueue(std::move(line));
        }
      });
    };
    target->end = [weak, ex](bool abort) {
      boost::asio::post(ex, [weak, abort] {
        if (auto s = weak.lock()) {
          s->end(abort);
        }
      });
    };
    stream_ = std::shared_ptr<Stream>(new Stream(std::move(target)));
    try {
      handler(req, stream_);
    } catch (const std::exception& e) {
      stream_->closed_.store(true);
      nlohmann::json err = {{"ok", false}, {"error", e.what()}};
      out_ = err.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      auto self = shared_from_this();
      boost::asio::async_write(
          socket_, boost::asio::buffer(out_),
          [self](const boost::system::error_code&, size_t) { self->shutdown(); });
      return;
    }
    watch();
  }

  // Reads (and ignores) what a subscribed client writes, to notice when it goes away.
  void watch() {
    auto self = shared_from_this();
    buf_.consume(buf_.size());
    socket_.async_read_some(buf_.prepare(4096),
                            [self](const boost::system::error_code& ec, size_t) {
                              if (ec) {
                                self->shutdown();
                                return;
                              }
                              self->watch();
                            });
  }

  void enqueue(std::string line) {
    if (!socket_.is_open() || close_when_drained_) {
      stream_->pending_.fetch_sub(1);
      return;
    }
    queue_.push_back(std::move(line));
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
    auto self = shared_from_this();
    boost::asio::async_write(socket_, boost::asio::buffer(queue_.front()),
                             [self](const boost::system::error_code& ec, size_t) {
                               self->queue_.pop_front();
                               self->stream_->pending_.fetch_sub(1);
                               if (ec) {
                                 self->stream_->pending_.fetch_sub(self->queue_.size());
                                 self->queue_.clear();
                                 self->writing_ = false;
                                 self->shutdown();
                                 return;
                               }
                               self->writeNext();
                             });
  }

  // Stream::close (abort=false: after the queued lines) or a client too slow (abort=true).
  void end(bool abort) {
    close_when_drained_ = true;
    if (abort || !writing_) {
      shutdown();
    }
  }

  ControlServer& server_;
  stream_protocol::socket socket_;
  boost::asio::streambuf buf_;
  std::string out_;
  // Stream mode.
  std::shared_ptr<Stream> stream_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  bool close_when_drained_ = false;
};

ControlServer::ControlServer(boost::asio::io_context& io, std::string socket_path)
    : io_(io), path_(std::move(socket_path)), acceptor_(io) {
  std::filesystem::path p(path_);
  std::error_code ec;
  if (p.has_parent_path()) {
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) {
      throw std::runtime_error(fmt::format("control socket {}: cannot create directory {}: {}",
                                           path_, p.parent_path().string(), ec.message()));
    }
  }
  if (std::filesystem::exists(p, ec)) {
    int fd = connectUnix(path_);
    if (fd >= 0) {
      ::close(fd);
      throw std::runtime_error(fmt::format(
          "control socket {} is in use: another net-collectord is running (stop it or set "
          "control.socket)",
          path_));
    }
    std::filesystem::remove(p, ec);  // stale socket of a dead daemon
  }
  boost::system::error_code bec;
  acceptor_.open(stream_protocol(), bec);
  if (!bec) {
    acceptor_.bind(stream_protocol::endpoint(path_), bec);
  }
  if (!bec) {
    acceptor_.listen(16, bec);
  }
  if (bec) {
    throw std::runtime_error(fmt::format("control socket {}: {}", path_, bec.message()));
  }
  ::chmod(path_.c_str(), 0660);
  on("help", "list commands", [this](const nlohmann::json&) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, h] : handlers_) {
      out[name] = h.first;
    }
    for (const auto& [name, h] : streams_) {
      out[name] = h.first + " (stream)";
    }
    return out;
  });
}

ControlServer::~ControlServer() {
  stop();
}

void ControlServer::on(const std::string& cmd, std::string help, Handler handler) {
  handlers_[cmd] = {std::move(help), std::move(handler)};
}

void ControlServer::onStream(const std::string& cmd, std::string help, StreamHandler handler) {
  streams_[cmd] = {std::move(help), std::move(handler)};
}

void ControlServer::start() {
  accept();
}

void ControlServer::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  std::error_code fec;
  std::filesystem::remove(path_, fec);
  for (auto& weak : sessions_) {
    if (auto s = weak.lock()) {
      s->shutdown();
    }
  }
  sessions_.clear();
}

void ControlServer::accept() {
  acceptor_.async_accept(
      [this](const boost::system::error_code& ec, stream_protocol::socket socket) {
        if (ec == boost::asio::error::operation_aborted || stopped_) {
          return;
        }
        if (!ec) {
          std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
          auto session = std::make_shared<Session>(*this, std::move(socket));
          sessions_.push_back(session);
          session->start();
        } else {
          log::warn("control", "accept failed: {}", ec.message());
        }
        accept();
      });
}

nlohmann::json ControlServer::dispatch(const nlohmann::json& req) {
  if (req.is_discarded() || !req.is_object() || !req.contains("cmd") || !req["cmd"].is_string()) {
    return {{"ok", false}, {"error", "request must be a JSON object with a string \"cmd\""}};
  }
  const std::string cmd = req["cmd"].get<std::string>();
  auto it = handlers_.find(cmd);
  if (it == handlers_.end()) {
    return {{"ok", false}, {"error", fmt::format("unknown command '{}' (try 'help')", cmd)}};
  }
  try {
    return {{"ok", true}, {"result", it->second.second(req)}};
  } catch (const std::exception& e) {
    return {{"ok", false}, {"error", e.what()}};
  }
}

nlohmann::json request(const std::string& socket_path, const nlohmann::json& req,
                       std::chrono::milliseconds timeout) {
  int fd = connectAndSend(socket_path, req);
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (in.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      ::close(fd);
      throw std::runtime_error(
          fmt::format("{}: no answer within {} ms", socket_path, timeout.count()));
    }
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error(fmt::format("{}: connection closed before an answer", socket_path));
    }
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto ans = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
  if (ans.is_discarded() || !ans.is_object()) {
    throw std::runtime_error(fmt::format("{}: answer is not JSON", socket_path));
  }
  return ans;
}

void subscribe(const std::string& socket_path, const nlohmann::json& req,
               std::function<bool(const nlohmann::json&)> on_message) {
  int fd = connectAndSend(socket_path, req);
  std::string in;
  size_t scanned = 0;
  for (;;) {
    size_t nl = in.find('\n', scanned);
    if (nl == std::string::npos) {
      scanned = in.size();
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;  // the daemon closed the connection (or it broke)
      }
      in.append(buf, static_cast<size_t>(n));
      continue;
    }
    auto msg = nlohmann::json::parse(std::string_view(in).substr(0, nl), nullptr, false);
    in.erase(0, nl + 1);
    scanned = 0;
    if (msg.is_discarded() || !msg.is_object()) {
      ::close(fd);
      throw std::runtime_error(fmt::format("{}: a stream line is not JSON", socket_path));
    }
    bool rejected = msg.value("ok", false) != true;
    if (!on_message(msg) || rejected) {
      break;
    }
  }
  ::close(fd);
}

}  // namespace nc::control
