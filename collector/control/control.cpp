#include "collector/control/control.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
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

}  // namespace

class ControlServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ControlServer& server, stream_protocol::socket socket)
      : server_(server), socket_(std::move(socket)), buf_(kMaxRequest) {}

  void start() { read(); }

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
          self->out_ = self->server_.dispatch(line).dump() + "\n";
          boost::asio::async_write(self->socket_, boost::asio::buffer(self->out_),
                                   [self](const boost::system::error_code& wec, size_t) {
                                     if (!wec) {
                                       self->read();
                                     }
                                   });
        });
  }

  ControlServer& server_;
  stream_protocol::socket socket_;
  boost::asio::streambuf buf_;
  std::string out_;
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
    return out;
  });
}

ControlServer::~ControlServer() {
  stop();
}

void ControlServer::on(const std::string& cmd, std::string help, Handler handler) {
  handlers_[cmd] = {std::move(help), std::move(handler)};
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
}

void ControlServer::accept() {
  acceptor_.async_accept(
      [this](const boost::system::error_code& ec, stream_protocol::socket socket) {
        if (ec == boost::asio::error::operation_aborted || stopped_) {
          return;
        }
        if (!ec) {
          std::make_shared<Session>(*this, std::move(socket))->start();
        } else {
          log::warn("control", "accept failed: {}", ec.message());
        }
        accept();
      });
}

nlohmann::json ControlServer::dispatch(const std::string& line) {
  nlohmann::json req = nlohmann::json::parse(line, nullptr, false);
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
  int fd = connectUnix(socket_path);
  if (fd < 0) {
    throw std::runtime_error(
        fmt::format("cannot reach net-collectord at {}: {} (is the daemon running? see --socket)",
                    socket_path, std::strerror(errno)));
  }
  std::string out = req.dump() + "\n";
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

}  // namespace nc::control
