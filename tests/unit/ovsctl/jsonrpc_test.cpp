// jsonrpc: stream parser, endpoint parsing, and the session layer (echo, probes, backoff,
// replies, garbage) against a fake server on a Unix socket in the test's io_context.
#include "ovsctl/jsonrpc/jsonrpc.hpp"

#include <gtest/gtest.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>

#include "tests/support/support.hpp"

namespace nc::ovsctl::jsonrpc {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<Json> feedAll(StreamParser& p, std::string_view s, bool* ok = nullptr) {
  std::vector<Json> out;
  bool r = p.feed(s, out);
  if (ok != nullptr) {
    *ok = r;
  }
  return out;
}

TEST(StreamParserTest, ConcatenatedMessagesInOneRead) {
  StreamParser p;
  auto msgs = feedAll(p, R"({"id":1,"result":[]}{"id":2}  
 {"method":"update","params":["m",{}],"id":null})");
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0]["id"], 1);
  EXPECT_EQ(msgs[1]["id"], 2);
  EXPECT_EQ(msgs[2]["method"], "update");
  EXPECT_EQ(p.buffered(), 0u);
}

TEST(StreamParserTest, SplitAtEveryByte) {
  const std::string text = R"({"a":"x}{\"y[","b":[1,{"c":"\\"}],"d":{}}{"e":"]"})";
  StreamParser p;
  std::vector<Json> all;
  for (char c : text) {
    ASSERT_TRUE(p.feed(std::string_view(&c, 1), all)) << p.error();
  }
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]["a"], "x}{\"y[");
  EXPECT_EQ(all[0]["b"][1]["c"], "\\");
  EXPECT_EQ(all[1]["e"], "]");
}

TEST(StreamParserTest, MessageSplitAcrossReadsIsHeldBack) {
  StreamParser p;
  auto m1 = feedAll(p, R"({"id":7,"resu)");
  EXPECT_TRUE(m1.empty());
  EXPECT_GT(p.buffered(), 0u);
  auto m2 = feedAll(p, R"(lt":"ok"}{"id")");
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_EQ(m2[0]["result"], "ok");
  auto m3 = feedAll(p, ":8}");
  ASSERT_EQ(m3.size(), 1u);
  EXPECT_EQ(m3[0]["id"], 8);
}

TEST(StreamParserTest, GarbageOutsideObjectIsAnError) {
  StreamParser p;
  bool ok = true;
  auto msgs = feedAll(p, R"({"id":1}xyz{"id":2})", &ok);
  EXPECT_FALSE(ok);
  ASSERT_EQ(msgs.size(), 1u);  // what came before the garbage is delivered
  EXPECT_NE(p.error().find("outside a JSON object"), std::string::npos) << p.error();
  // Stays failed until reset.
  EXPECT_FALSE(p.feed(R"({"id":3})", msgs));
  p.reset();
  EXPECT_TRUE(p.feed(R"({"id":3})", msgs));
}

TEST(StreamParserTest, TopLevelArrayOrScalarIsAnError) {
  StreamParser p;
  bool ok = true;
  feedAll(p, "[1,2]", &ok);
  EXPECT_FALSE(ok);
  StreamParser q;
  feedAll(q, "42", &ok);
  EXPECT_FALSE(ok);
}

TEST(StreamParserTest, InvalidJsonInsideObjectIsAnError) {
  StreamParser p;
  bool ok = true;
  feedAll(p, R"({"a":})", &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(p.error().find("invalid JSON"), std::string::npos) << p.error();
}

TEST(StreamParserTest, OversizedMessageIsAnError) {
  StreamParser p(64);
  bool ok = true;
  feedAll(p, "{\"a\":\"" + std::string(100, 'x'), &ok);
  EXPECT_FALSE(ok);
  EXPECT_NE(p.error().find("larger than"), std::string::npos);
}

TEST(EndpointTest, Parses) {
  std::string why;
  auto u = parseEndpoint("unix:/run/openvswitch/db.sock", &why);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->kind, Endpoint::Kind::Unix);
  EXPECT_EQ(u->path, "/run/openvswitch/db.sock");
  auto t = parseEndpoint("tcp:127.0.0.1:6640", &why);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, Endpoint::Kind::Tcp);
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 6640);
  auto v6 = parseEndpoint("tcp:[::1]:6641", &why);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 6641);
  for (const char* bad : {"unix:", "tcp:1.2.3.4", "tcp:1.2.3.4:0", "tcp:1.2.3.4:70000",
                          "ssl:1.2.3.4:6640", "tcp::::1:5", "tcp:[::1:5"}) {
    EXPECT_FALSE(parseEndpoint(bad, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
}

// A fake OVSDB server: accepts connections on a Unix socket and records what it reads.
class FakeServer {
 public:
  FakeServer(asio::io_context& io, const std::string& path)
      : acceptor_(io, asio::local::stream_protocol::endpoint(path)), sock_(io) {
    accept();
  }
  void accept() {
    acceptor_.async_accept(
        [this](const boost::system::error_code& ec, asio::local::stream_protocol::socket s) {
          if (ec) {
            return;
          }
          ++accepted;
          sock_ = std::move(s);
          parser_.reset();
          read();
          accept();
        });
  }
  void read() {
    sock_.async_read_some(asio::buffer(buf_),
                          [this](const boost::system::error_code& ec, size_t n) {
                            if (ec) {
                              return;
                            }
                            std::vector<Json> msgs;
                            parser_.feed(std::string_view(buf_.data(), n), msgs);
                            for (auto& m : msgs) {
                              received.push_back(m);
                              if (on_message) {
                                on_message(m);
                              }
                            }
                            read();
                          });
  }
  void write(const std::string& s) {
    auto data = std::make_shared<std::string>(s);
    asio::async_write(sock_, asio::buffer(*data),
                      [data](const boost::system::error_code&, size_t) {});
  }
  void closeClient() {
    boost::system::error_code ec;
    sock_.close(ec);
  }

  int accepted = 0;
  std::vector<Json> received;
  std::function<void(const Json&)> on_message;

 private:
  asio::local::stream_protocol::acceptor acceptor_;
  asio::local::stream_protocol::socket sock_;
  std::array<char, 65536> buf_{};
  StreamParser parser_;
};

bool runUntil(asio::io_context& io, const std::function<bool()>& pred,
              std::chrono::milliseconds timeout = 3000ms) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) {
      return false;
    }
    io.restart();
    io.run_for(5ms);
  }
  return true;
}

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() : dir_("ovsctl-jsonrpc"), path_((dir_.path() / "db.sock").string()) {}
  std::shared_ptr<Session> makeSession(SessionOptions o = {}) {
    std::string why;
    auto ep = parseEndpoint("unix:" + path_, &why);
    return Session::create(io_, *ep, o);
  }
  asio::io_context io_;
  test::TempDir dir_;
  std::string path_;
};

TEST_F(SessionTest, AnswersServerEcho) {
  FakeServer server(io_, path_);
  auto s = makeSession();
  s->start();
  ASSERT_TRUE(runUntil(io_, [&] { return s->state() == State::Connected && server.accepted; }));
  server.write(R"({"id":"echo","method":"echo","params":["x",1]})");
  ASSERT_TRUE(runUntil(io_, [&] { return !server.received.empty(); }));
  const Json& reply = server.received[0];
  EXPECT_EQ(reply["id"], "echo");
  EXPECT_EQ(reply["result"], Json::array({"x", 1}));
  EXPECT_TRUE(reply["error"].is_null());
  EXPECT_EQ(s->counters().echo_answered, 1u);
  s->stop();
}

TEST_F(SessionTest, RepliesMatchRequestsAcrossSplitWrites) {
  FakeServer server(io_, path_);
  auto s = makeSession();
  std::vector<Json> notes;
  s->on_notification = [&](const Json& m) { notes.push_back(m); };
  s->start();
  ASSERT_TRUE(runUntil(io_, [&] { return s->state() == State::Connected && server.accepted; }));
  std::optional<Reply> got;
  ASSERT_TRUE(s->request("list_dbs", Json::array(), [&](Reply r) { got = std::move(r); }));
  ASSERT_TRUE(runUntil(io_, [&] { return !server.received.empty(); }));
  const Json id = server.received[0]["id"];
  EXPECT_EQ(server.received[0]["method"], "list_dbs");
  // A notification and the reply, the reply split in two writes.
  const std::string reply =
      Json{{"id", id}, {"result", {"Open_vSwitch"}}, {"error", nullptr}}.dump();
  server.write(R"({"id":null,"method":"update2","params":["m",{}]})" + reply.substr(0, 5));
  ASSERT_TRUE(runUntil(io_, [&] { return notes.size() == 1; }));
  EXPECT_FALSE(got);
  server.write(reply.substr(5));
  ASSERT_TRUE(runUntil(io_, [&] { return got.has_value(); }));
  EXPECT_TRUE(got->ok);
  EXPECT_EQ(got->result, Json::array({"Open_vSwitch"}));
  s->stop();
}

TEST_F(SessionTest, PendingRequestFailsWhenConnectionDrops) {
  FakeServer server(io_, path_);
  SessionOptions o;
  o.min_backoff = 20ms;
  auto s = makeSession(o);
  s->start();
  ASSERT_TRUE(runUntil(io_, [&] { return s->state() == State::Connected && server.accepted; }));
  std::optional<Reply> got;
  s->request("transact", Json::array({"Open_vSwitch"}), [&](Reply r) { got = std::move(r); });
  ASSERT_TRUE(runUntil(io_, [&] { return !server.received.empty(); }));
  server.closeClient();
  ASSERT_TRUE(runUntil(io_, [&] { return got.has_value(); }));
  EXPECT_TRUE(got->lost);
  // And it reconnects by itself.
  ASSERT_TRUE(
      runUntil(io_, [&] { return server.accepted == 2 && s->state() == State::Connected; }));
  EXPECT_EQ(s->counters().disconnects, 1u);
  s->stop();
}

TEST_F(SessionTest, IdleProbeThenTimeoutWhenPeerIsSilent) {
  FakeServer server(io_, path_);
  SessionOptions o;
  o.probe_unix = true;
  o.probe_interval = 200ms;
  o.min_backoff = 5000ms;  // no reconnect during the test
  auto s = makeSession(o);
  std::string why;
  Clock::time_point down_at;
  s->on_disconnected = [&](const std::string& w) {
    why = w;
    down_at = Clock::now();
  };
  s->start();
  ASSERT_TRUE(runUntil(io_, [&] { return s->state() == State::Connected; }));
  const auto t0 = Clock::now();
  ASSERT_TRUE(runUntil(io_, [&] { return !server.received.empty(); }));
  EXPECT_EQ(server.received[0]["method"], "echo");
  EXPECT_EQ(server.received[0]["id"], "echo");
  ASSERT_TRUE(runUntil(
      io_, [&] { return !why.empty(); }, 3000ms));
  EXPECT_NE(why.find("inactivity probe"), std::string::npos) << why;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(down_at - t0).count();
  std::printf("probe timeout after %lld ms (probe interval 200 ms)\n", static_cast<long long>(ms));
  EXPECT_GE(ms, 350);
  EXPECT_LE(ms, 1500);
  s->stop();
}

TEST_F(SessionTest, AnsweredProbesKeepTheConnection) {
  FakeServer server(io_, path_);
  server.on_message = [&](const Json& m) {
    if (m.value("method", "") == "echo") {
      server.write(Json{{"id", m["id"]}, {"result", m["params"]}, {"error", nullptr}}.dump());
    }
  };
  SessionOptions o;
  o.probe_unix = true;
  o.probe_interval = 100ms;
  auto s = makeSession(o);
  s->start();
  ASSERT_TRUE(runUntil(io_, [&] { return s->state() == State::Connected; }));
  runUntil(
      io_, [] { return false; }, 1000ms);
  EXPECT_EQ(s->state(), State::Connected);
  EXPECT_EQ(s->counters().disconnects, 0u);
  EXPECT_GE(s->counters().probes_sent, 3u);
  s->stop();
}

TEST_F(SessionTest, GarbageDropsTheConnectionAndReconnects) {
  FakeServer server(io_, path_);
  SessionOptions o;
  o.min_backoff = 20ms;
  auto s = makeSession(o);
  std::string why;
  s->on_disconnected = [&](const std::string& w) { why = w; };
  s->start();
  ASSERT_TRUE(runUntil(io_, [&] { return s->state() == State::Connected && server.accepted; }));
  server.write("HTTP/1.1 400 Bad Request\r\n");
  ASSERT_TRUE(runUntil(io_, [&] { return !why.empty(); }));
  EXPECT_NE(why.find("protocol error"), std::string::npos) << why;
  ASSERT_TRUE(
      runUntil(io_, [&] { return server.accepted == 2 && s->state() == State::Connected; }));
  s->stop();
}

TEST_F(SessionTest, BackoffDoublesUpToTheCap) {
  SessionOptions o;
  o.min_backoff = 40ms;
  o.max_backoff = 160ms;
  auto s = makeSession(o);  // nothing listens
  std::vector<Clock::time_point> failures;
  s->on_disconnected = [&](const std::string&) { failures.push_back(Clock::now()); };
  s->start();
  ASSERT_TRUE(runUntil(
      io_, [&] { return failures.size() >= 6; }, 5000ms));
  std::vector<long long> gaps;
  for (size_t i = 1; i < failures.size(); ++i) {
    gaps.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(failures[i] - failures[i - 1])
            .count());
  }
  std::printf("gaps between attempts (ms): %lld %lld %lld %lld %lld\n", gaps[0], gaps[1], gaps[2],
              gaps[3], gaps[4]);
  EXPECT_GE(gaps[0], 35);
  EXPECT_GE(gaps[1], 75);
  EXPECT_GE(gaps[2], 150);
  EXPECT_GE(gaps[3], 150);
  EXPECT_LT(gaps[4], 600);  // capped
  EXPECT_EQ(s->state(), State::Backoff);
  EXPECT_FALSE(s->lastError().empty());
  // A server appearing later is picked up by the next attempt.
  FakeServer server(io_, path_);
  ASSERT_TRUE(runUntil(
      io_, [&] { return s->state() == State::Connected; }, 2000ms));
  s->stop();
}

TEST_F(SessionTest, StopIsFinalAndDropsHandlers) {
  FakeServer server(io_, path_);
  auto s = makeSession();
  int downs = 0;
  s->on_disconnected = [&](const std::string&) { ++downs; };
  s->start();
  ASSERT_TRUE(runUntil(io_, [&] { return s->state() == State::Connected; }));
  s->stop();
  runUntil(
      io_, [] { return false; }, 200ms);
  EXPECT_EQ(s->state(), State::Stopped);
  EXPECT_EQ(downs, 0);
  EXPECT_FALSE(s->request("list_dbs", Json::array(), [](Reply) {}));
}

}  // namespace
}  // namespace nc::ovsctl::jsonrpc
