#pragma once
// A plain blocking HTTP client for tests: a TCP socket with a 10 s receive/send timeout (a safety
// net, never a measure) whose bytes go through Beast's response parser, so a test sees exactly
// what went over the wire. Header-only; needs Boost (Beast).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/http.hpp>
#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace nc::test {

using Answer = boost::beast::http::response<boost::beast::http::string_body>;

class Client {
 public:
  explicit Client(uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    timeval tv{10, 0};  // safety net: never hang a test
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  bool send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      s.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void shutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // One response (a HEAD answer has no body); nullopt when the connection ends first.
  std::optional<Answer> read(bool head = false) {
    boost::beast::http::response_parser<boost::beast::http::string_body> p;
    p.eager(true);
    p.skip(head);
    p.body_limit(64 << 20);
    while (true) {
      if (!buf_.empty()) {
        boost::beast::error_code ec;
        size_t n = p.put(boost::asio::buffer(buf_), ec);
        buf_.erase(0, n);
        if (ec && ec != boost::beast::http::error::need_more) {
          return std::nullopt;
        }
        if (p.is_done()) {
          return p.release();
        }
        if (!ec && n > 0) {
          continue;
        }
      }
      if (!fill()) {
        if (eof_) {
          boost::beast::error_code ec;
          p.put_eof(ec);
          if (!ec && p.got_some() && p.is_done()) {
            return p.release();
          }
        }
        return std::nullopt;
      }
    }
  }

  // Reads until `needle` has arrived; returns everything read so far (and keeps nothing).
  std::string readUntil(std::string_view needle) {
    while (buf_.find(needle) == std::string::npos) {
      if (!fill()) {
        break;
      }
    }
    return std::exchange(buf_, {});
  }

  // True once the server closed the connection (EOF or reset), discarding what it sends first.
  bool closedByServer() {
    buf_.clear();
    while (fill()) {
      buf_.clear();
    }
    return eof_;
  }

 private:
  bool fill() {
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
    eof_ = n == 0 || errno == ECONNRESET;
    return false;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

}  // namespace nc::test
