// Webhook against a real HTTP server on 127.0.0.1 (Beast, in the test): order, retries on 5xx
// and connect errors, 4xx drops, queue overflow, posting from other threads.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <mutex>
#include <thread>

#include "collector/events/events.hpp"
#include "tests/unit/events/sample_event.hpp"

namespace nc::events {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

// Waits (generously) for `pred`; true when it held.
bool waitFor(const std::function<bool()>& pred, std::chrono::seconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// An io_context run by its own thread until destroyed.
struct Runner {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::thread thread;
  void start() {
    thread = std::thread([this] { io.run(); });
  }
  void stop() {
    guard.reset();
    io.stop();
    if (thread.joinable()) {
      thread.join();
    }
  }
  ~Runner() { stop(); }
};

// A tiny HTTP/1.1 server: records every request and answers with the status `answer` picks for
// the n-th request (0-based); a status of 0 means "never answer".
class TestServer {
 public:
  using Answer = std::function<unsigned(size_t n)>;
  explicit TestServer(Answer answer, uint16_t port = 0)
      : answer_(std::move(answer)), acceptor_(runner_.io) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    runner_.start();
  }
  ~TestServer() {
    runner_.stop();
    acceptor_.close();
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  struct Request {
    std::string target;
    std::string content_type;
    std::string body;
  };
  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  size_t count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }

 private:
  struct Conn {
    tcp::socket socket;
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    http::response<http::string_body> res;
  };

  void accept() {
    acceptor_.async_accept([this](const beast::error_code& ec, tcp::socket s) {
      if (ec) {
        return;
      }
      auto c = std::make_shared<Conn>(Conn{std::move(s), {}, {}, {}});
      http::async_read(c->socket, c->buf, c->req, [this, c](const beast::error_code& rec, size_t) {
        if (rec) {
          return;
        }
        size_t n = 0;
        {
          std::lock_guard lock(mutex_);
          n = requests_.size();
          requests_.push_back({std::string(c->req.target()),
                               std::string(c->req[http::field::content_type]), c->req.body()});
        }
        unsigned status = answer_(n);
        if (status == 0) {
          held_.push_back(c);  // never answer; the client times out
          return;
        }
        c->res.version(11);
        c->res.result(status);
        c->res.set(http::field::connection, "close");
        c->res.body() = "ok";
        c->res.prepare_payload();
        http::async_write(c->socket, c->res, [c](const beast::error_code&, size_t) {
          beast::error_code ignored;
          c->socket.shutdown(tcp::socket::shutdown_both, ignored);
        });
      });
      accept();
    });
  }

  Answer answer_;
  Runner runner_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::vector<std::shared_ptr<Conn>> held_;
};

Event numbered(int i) {
  Event e = sampleEvent();
  e.id = makeId(e.start_ns, static_cast<uint64_t>(i));
  return e;
}

std::string idOf(const std::string& body) {
  return nlohmann::json::parse(body)["id"].get<std::string>();
}

WebhookOptions fast() {
  WebhookOptions o;
  o.initial_backoff = 10ms;
  o.max_backoff = 40ms;
  o.timeout = 2s;
  return o;
}

uint64_t stat(const Webhook& w, const char* key) {
  return w.status()[key].get<uint64_t>();
}

TEST(WebhookTest, DeliversInOrderAsJson) {
  TestServer server([](size_t) { return 200u; });
  Runner runner;
  Webhook hook(runner.io, server.url(), fast());
  runner.start();
  for (int i = 1; i <= 5; ++i) {
    EXPECT_TRUE(hook.post(numbered(i)));
  }
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 5; })) << hook.status().dump();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(idOf(reqs[i].body), numbered(i + 1).id);
    EXPECT_EQ(reqs[i].content_type, "application/json");
    EXPECT_EQ(reqs[i].target, "/hook");
  }
  Event back;
  ASSERT_TRUE(fromJson(nlohmann::json::parse(reqs[0].body), back, nullptr));
  EXPECT_EQ(back, numbered(1));
  auto st = hook.status();
  EXPECT_EQ(st["url"], server.url());
  EXPECT_EQ(st["failed"], 0);
  EXPECT_EQ(st["dropped"], 0);
  EXPECT_EQ(st["queued"], 0);
}

TEST(WebhookTest, RetriesServerErrorsUntilDelivered) {
  TestServer server([](size_t n) { return n < 2 ? 500u : 200u; });
  Runner runner;
  Webhook hook(runner.io, server.url(), fast());
  runner.start();
  hook.post(numbered(1));
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 1; })) << hook.status().dump();
  EXPECT_EQ(server.count(), 3u);
  EXPECT_EQ(stat(hook, "failed"), 2u);
  EXPECT_EQ(stat(hook, "dropped"), 0u);
  EXPECT_NE(hook.status()["last_error"].get<std::string>().find("500"), std::string::npos);
}

TEST(WebhookTest, ClientErrorsDropTheEventAndGoOn) {
  TestServer server([](size_t n) { return n == 0 ? 400u : 200u; });
  Runner runner;
  Webhook hook(runner.io, server.url(), fast());
  runner.start();
  hook.post(numbered(1));
  hook.post(numbered(2));
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 1; })) << hook.status().dump();
  EXPECT_EQ(stat(hook, "dropped"), 1u);
  EXPECT_EQ(stat(hook, "dropped_rejected"), 1u);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);  // the rejected event was not retried
  EXPECT_EQ(idOf(reqs[1].body), numbered(2).id);
}

TEST(WebhookTest, GivesUpAfterMaxAttempts) {
  TestServer server([](size_t n) { return n < 3 ? 503u : 200u; });
  Runner runner;
  WebhookOptions o = fast();
  o.max_attempts = 3;
  Webhook hook(runner.io, server.url(), o);
  runner.start();
  hook.post(numbered(1));
  hook.post(numbered(2));
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 1; })) << hook.status().dump();
  EXPECT_EQ(stat(hook, "failed"), 3u);
  EXPECT_EQ(stat(hook, "dropped_retries"), 1u);
  EXPECT_EQ(idOf(server.requests().back().body), numbered(2).id);
}

TEST(WebhookTest, ServerDownThenUpIsDeliveredAfterRetries) {
  uint16_t port = 0;
  {
    TestServer probe([](size_t) { return 200u; });
    port = probe.port();
  }  // nothing listens on `port` now
  Runner runner;
  WebhookOptions o = fast();
  o.max_attempts = 1000;  // keep trying while the server is down
  Webhook hook(runner.io, "http://127.0.0.1:" + std::to_string(port) + "/", o);
  runner.start();
  hook.post(numbered(1));
  ASSERT_TRUE(waitFor([&] { return stat(hook, "failed") >= 2; })) << hook.status().dump();
  EXPECT_NE(hook.status()["last_error"].get<std::string>().find("connect"), std::string::npos);
  TestServer server([](size_t) { return 200u; }, port);
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 1; })) << hook.status().dump();
  EXPECT_EQ(idOf(server.requests().at(0).body), numbered(1).id);
}

TEST(WebhookTest, TimesOutAServerThatDoesNotAnswer) {
  TestServer server([](size_t n) { return n == 0 ? 0u : 200u; });
  Runner runner;
  WebhookOptions o = fast();
  o.timeout = 200ms;
  Webhook hook(runner.io, server.url(), o);
  runner.start();
  hook.post(numbered(1));
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 1; })) << hook.status().dump();
  EXPECT_EQ(stat(hook, "failed"), 1u);
  EXPECT_EQ(server.count(), 2u);
}

TEST(WebhookTest, QueueOverflowDropsTheOldest) {
  TestServer server([](size_t) { return 200u; });
  Runner runner;  // not running yet: everything waits in the queue
  WebhookOptions o = fast();
  o.queue_limit = 3;
  Webhook hook(runner.io, server.url(), o);
  int refused = 0;
  for (int i = 1; i <= 10; ++i) {
    refused += hook.post(numbered(i)) ? 0 : 1;
  }
  EXPECT_EQ(refused, 7);
  EXPECT_EQ(stat(hook, "queued"), 3u);
  EXPECT_EQ(stat(hook, "dropped_overflow"), 7u);
  EXPECT_EQ(stat(hook, "dropped"), 7u);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 3; })) << hook.status().dump();
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(idOf(reqs[i].body), numbered(8 + i).id);
  }
}

TEST(WebhookTest, PostFromOtherThreads) {
  TestServer server([](size_t) { return 200u; });
  Runner runner;
  Webhook hook(runner.io, server.url(), fast());
  runner.start();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&hook, t] {
      for (int i = 0; i < 10; ++i) {
        hook.post(numbered(t * 100 + i));
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  ASSERT_TRUE(waitFor([&] { return stat(hook, "delivered") == 40; })) << hook.status().dump();
  // Each thread's events arrive in the order it posted them.
  std::map<int, int> last;
  for (const auto& r : server.requests()) {
    int seq = static_cast<int>(*idSequence(idOf(r.body)));
    auto [it, fresh] = last.try_emplace(seq / 100, seq % 100);
    if (!fresh) {
      EXPECT_GT(seq % 100, it->second);
      it->second = seq % 100;
    }
  }
  EXPECT_EQ(last.size(), 4u);
}

TEST(WebhookTest, RejectsHttpsAndBadUrls) {
  asio::io_context io;
  try {
    Webhook hook(io, "https://example.com/hook");
    FAIL() << "https accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("https is not supported"), std::string::npos) << e.what();
  }
  for (const char* bad : {"ftp://x/", "http://", "http://host:0/", "http://host:70000/",
                          "http://[::1/", "example.com"}) {
    EXPECT_THROW(Webhook(io, bad), std::runtime_error) << bad;
  }
  EXPECT_NO_THROW(Webhook(io, "http://[::1]:8080/x"));
  EXPECT_NO_THROW(Webhook(io, "HTTP://hooks.example.com"));
}

TEST(WebhookTest, StoppedRefusesPosts) {
  asio::io_context io;
  Webhook hook(io, "http://127.0.0.1:9/");
  hook.stop();
  EXPECT_FALSE(hook.post(numbered(1)));
}

}  // namespace
}  // namespace nc::events
