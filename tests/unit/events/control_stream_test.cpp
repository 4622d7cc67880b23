// Control socket streams (ControlServer::onStream + subscribe()): messages in order, a client
// going away is noticed, a client that does not read is disconnected, requests still work.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "collector/control/control.hpp"
#include "tests/support/support.hpp"

namespace nc::control {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;

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

// A ControlServer with an "events" stream command, run by its own io thread.
class ControlStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ControlServer>(io_, (tmp_.path() / "control.sock").string());
    server_->on("ping", "answers pong", [](const json&) { return json("pong"); });
    server_->onStream("events", "follow events",
                      [this](const json& req, std::shared_ptr<Stream> s) {
                        if (req.value("reject", false)) {
                          throw std::runtime_error("bad filter");
                        }
                        std::lock_guard lock(mutex_);
                        requests_.push_back(req);
                        streams_.push_back(std::move(s));
                      });
  }
  void start() {
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      std::promise<void> done;
      asio::post(io_, [&] {
        server_->stop();
        done.set_value();
      });
      done.get_future().wait();
      guard_.reset();
      io_.stop();
      thread_.join();
    }
    streams_.clear();
    server_.reset();
  }
  std::shared_ptr<Stream> stream(size_t i) {
    std::lock_guard lock(mutex_);
    return i < streams_.size() ? streams_[i] : nullptr;
  }
  size_t subscribers() {
    std::lock_guard lock(mutex_);
    return streams_.size();
  }
  std::string path() const { return server_->path(); }

  test::TempDir tmp_{"control"};
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<json> requests_;
  std::vector<std::shared_ptr<Stream>> streams_;
};

TEST_F(ControlStreamTest, SubscriberReceivesMessagesInOrderThenLeaves) {
  start();
  std::vector<json> got;
  std::thread client([&] {
    subscribe(path(), {{"cmd", "events"}, {"port", "h1-*"}}, [&](const json& m) {
      got.push_back(m);
      return got.size() < 3;
    });
  });
  ASSERT_TRUE(waitFor([&] { return subscribers() == 1; }));
  auto s = stream(0);
  EXPECT_FALSE(s->closed());
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(s->send({{"n", i}}));
  }
  client.join();
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i], (json{{"ok", true}, {"event", {{"n", i + 1}}}}));
  }
  EXPECT_EQ(requests_.at(0)["port"], "h1-*");
  // The client closed its connection: the daemon side notices.
  ASSERT_TRUE(waitFor([&] { return s->closed(); }));
  EXPECT_FALSE(s->send({{"n", 4}}));
}

TEST_F(ControlStreamTest, RequestsStillWorkAndHelpListsStreams) {
  start();
  auto ans = request(path(), {{"cmd", "ping"}});
  EXPECT_EQ(ans, (json{{"ok", true}, {"result", "pong"}}));
  auto help = request(path(), {{"cmd", "help"}});
  EXPECT_EQ(help["result"]["events"], "follow events (stream)");
  EXPECT_EQ(help["result"]["ping"], "answers pong");
  EXPECT_EQ(request(path(), {{"cmd", "nope"}})["ok"], false);
  // Two requests on one connection still get two answers (the old protocol).
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path().c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string two = "{\"cmd\":\"ping\"}\n{\"cmd\":\"ping\"}\n";
  ASSERT_EQ(::send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
  std::string in;
  while (std::count(in.begin(), in.end(), '\n') < 2) {
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(in, "{\"ok\":true,\"result\":\"pong\"}\n{\"ok\":true,\"result\":\"pong\"}\n");
}

TEST_F(ControlStreamTest, RejectedSubscriptionAnswersAnErrorAndCloses) {
  start();
  std::vector<json> got;
  subscribe(path(), {{"cmd", "events"}, {"reject", true}}, [&](const json& m) {
    got.push_back(m);
    return true;
  });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], (json{{"ok", false}, {"error", "bad filter"}}));
}

TEST_F(ControlStreamTest, AClientThatDoesNotReadIsDisconnected) {
  server_->setStreamQueueLimit(4);
  start();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path().c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string req = "{\"cmd\":\"events\"}\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  ASSERT_TRUE(waitFor([&] { return subscribers() == 1; }));
  auto s = stream(0);
  json big = {{"pad", std::string(64 * 1024, 'x')}};
  // The socket buffers fill, then the queue; the client never reads.
  ASSERT_TRUE(waitFor([&] {
    s->send(big);
    return s->closed();
  }));
  // The daemon closed the connection: after what was buffered, the client reads EOF.
  ASSERT_TRUE(waitFor([&] {
    char buf[65536];
    return ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) == 0;
  }));
  ::close(fd);
}

TEST_F(ControlStreamTest, ClosingFromTheDaemonSideEndsTheSubscriber) {
  start();
  std::vector<json> got;
  std::thread client([&] {
    subscribe(path(), {{"cmd", "events"}}, [&](const json& m) {
      got.push_back(m);
      return true;
    });
  });
  ASSERT_TRUE(waitFor([&] { return subscribers() == 1; }));
  auto s = stream(0);
  s->send({{"n", 1}});
  s->send({{"n", 2}});
  s->close();  // after the queued lines
  client.join();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1]["event"]["n"], 2);
  EXPECT_TRUE(s->closed());
}

TEST_F(ControlStreamTest, StoppingTheServerEndsSubscriptions) {
  start();
  std::atomic<bool> returned{false};
  std::thread client([&] {
    subscribe(path(), {{"cmd", "events"}}, [&](const json&) { return true; });
    returned = true;
  });
  ASSERT_TRUE(waitFor([&] { return subscribers() == 1; }));
  std::promise<void> done;
  asio::post(io_, [&] {
    server_->stop();
    done.set_value();
  });
  done.get_future().wait();
  client.join();
  EXPECT_TRUE(returned);
  EXPECT_TRUE(stream(0)->closed());
}

TEST(ControlSubscribe, UnreachableDaemonThrowsNamingTheSocket) {
  test::TempDir tmp("control");
  std::string p = (tmp.path() / "none.sock").string();
  try {
    subscribe(p, {{"cmd", "events"}}, [](const json&) { return true; });
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
  }
}

}  // namespace
}  // namespace nc::control
