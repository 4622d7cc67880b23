// nc_http over real sockets on 127.0.0.1. The client is a plain blocking socket (10 s receive
// timeout as a safety net only) whose bytes go through Beast's response parser, so every test
// sees exactly what went over the wire. No test depends on how fast anything happens.
#include "collector/http/http.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <future>
#include <mutex>
#include <thread>

#include "collector/metrics/metrics.hpp"
#include "tests/unit/http/test_client.hpp"
#include "tests/unit/metrics/exposition.hpp"

namespace nc::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using test::Answer;
using test::Client;

// Runs a Server on its own io_context thread, the way the daemon's control plane does.
class Running {
 public:
  explicit Running(ServerOptions o, const std::function<void(Server&)>& setup = {})
      : guard_(asio::make_work_guard(io_)) {
    server_ = std::make_unique<Server>(io_, std::move(o));
    if (setup) {
      setup(*server_);
    }
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Running() { stop(); }
  void stop() {
    if (!thread_.joinable()) {
      return;
    }
    std::promise<void> done;
    asio::post(io_, [&] {
      server_->stop();
      done.set_value();
    });
    done.get_future().wait();
    io_.stop();
    thread_.join();
  }
  // Runs `f` on the server's thread and waits for it.
  template <typename F>
  void onServerThread(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
  Server& server() { return *server_; }
  uint16_t port() const { return server_->port(); }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

std::string get(std::string_view target, std::string_view extra = "") {
  return fmt::format("GET {} HTTP/1.1\r\nHost: t\r\n{}\r\n", target, extra);
}

// Waits (safety net 10 s) until `pred` holds; returns it.
template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

Handler echo(std::string name) {
  return [name](const Request& r) {
    std::string body = name + " " + r.method + " " + r.path;
    for (const auto& [k, v] : r.query) {
      body += " " + k + "=" + v;
    }
    if (!r.body.empty()) {
      body += " body=" + r.body;
    }
    return Response::text(200, body);
  };
}

void routes(Server& s) {
  s.route("GET", "/api", echo("api"));
  s.route("GET", "/api/ports", echo("ports"));
  s.route("POST", "/api/reload", echo("reload"));
  s.route("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("kaput"); });
  s.route("GET", "/bad-status", [](const Request&) { return Response::text(42, "x"); });
  s.route("GET", "/bad-header", [](const Request&) {
    Response r = Response::text(200, "x");
    r.headers = {{"X-Evil", "a\r\nSet-Cookie: b"}};
    return r;
  });
  s.route("GET", "/json", [](const Request&) { return Response::json("{\"a\":1}"); });
}

TEST(HttpServer, RoutesByLongestPrefixAndAnswersErrors) {
  Running srv({}, routes);
  Client c(srv.port());
  ASSERT_TRUE(c.connected());
  auto ask = [&](const std::string& raw) {
    EXPECT_TRUE(c.send(raw));
    auto a = c.read();
    EXPECT_TRUE(a.has_value()) << raw;
    return a.value_or(Answer{});
  };
  Answer a = ask(get("/api"));
  EXPECT_EQ(a.result_int(), 200);
  EXPECT_EQ(a.body(), "api GET /api");
  EXPECT_EQ(a[bhttp::field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(a[bhttp::field::content_length], std::to_string(a.body().size()));
  EXPECT_TRUE(a[bhttp::field::server].starts_with("net-collector/"));
  EXPECT_EQ(ask(get("/api/x")).body(), "api GET /api/x");
  EXPECT_EQ(ask(get("/api/ports/br-int")).body(), "ports GET /api/ports/br-int");
  EXPECT_EQ(ask(get("/json"))[bhttp::field::content_type], "application/json");

  a = ask(get("/apix"));
  EXPECT_EQ(a.result_int(), 404) << "a prefix matches at a '/' boundary only";
  EXPECT_EQ(a.body(), "no such resource: /apix\n");
  a = ask("DELETE /api/ports HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(a.result_int(), 405);
  EXPECT_EQ(a[bhttp::field::allow], "GET, HEAD");
  a = ask(get("/api/reload"));
  EXPECT_EQ(a.result_int(), 200) << "the GET /api route covers it";
  a = ask(get("/boom"));
  EXPECT_EQ(a.result_int(), 500);
  EXPECT_EQ(a.body(), "internal error: kaput\n");
  EXPECT_EQ(ask(get("/bad-status")).result_int(), 500);
  a = ask(get("/bad-header"));
  EXPECT_EQ(a.result_int(), 500);
  EXPECT_EQ(a.count("Set-Cookie"), 0u);
  // All of it on one keep-alive connection, which is still usable.
  EXPECT_EQ(ask(get("/api")).result_int(), 200);
  srv.onServerThread([&] {
    ServerStats st = srv.server().stats();
    EXPECT_EQ(st.connections, 1u);
    EXPECT_EQ(st.requests, 11u);
    EXPECT_EQ(st.responses[2], 6u);
    EXPECT_EQ(st.responses[4], 2u);
    EXPECT_EQ(st.responses[5], 3u);
  });
}

TEST(HttpServer, HeadIsGetWithoutBody) {
  Running srv({}, routes);
  Client c(srv.port());
  ASSERT_TRUE(c.send("HEAD /api/ports HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto a = c.read(true);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
  // The GET handler ran (it sees the method HEAD): Content-Length of "ports HEAD /api/ports".
  EXPECT_EQ(a->at(bhttp::field::content_length), "21");
  EXPECT_TRUE(a->body().empty());
  // The next answer starts right after the header: no stray body bytes on the connection.
  ASSERT_TRUE(c.send(get("/api")));
  auto b = c.read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->body(), "api GET /api");
}

TEST(HttpServer, QueryStringsAreDecoded) {
  Running srv({}, routes);
  Client c(srv.port());
  ASSERT_TRUE(c.send(get("/api?a=1&b=x%20y+z&flag&&c=%E2%9C%93")));
  auto a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body(), "api GET /api a=1 b=x y z flag= c=\xE2\x9C\x93");
  ASSERT_TRUE(c.send(get("/api?bad=%zz")));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 400);
  EXPECT_EQ(a->body(), "bad %-escape in the query string\n");
  EXPECT_TRUE(c.closedByServer()) << "a 400 closes the connection";
  Client d(srv.port());
  ASSERT_TRUE(d.send(get("/api?cut=%4")));
  a = d.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 400);

  std::vector<std::pair<std::string, std::string>> q;
  EXPECT_TRUE(parseQuery("x=1&x=2&=v", q));
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[1].second, "2");
  EXPECT_EQ(q[2].first, "");
  EXPECT_EQ(percentDecode("a+b%2B", false), "a+b+");
  EXPECT_EQ(percentDecode("%", true), std::nullopt);
}

TEST(HttpServer, KeepAlivePipeliningAndClose) {
  Running srv({}, routes);
  Client c(srv.port());
  // Three pipelined requests in one write: three answers in order.
  ASSERT_TRUE(c.send(get("/api/1") + get("/api/2") + get("/api/3")));
  for (int i = 1; i <= 3; ++i) {
    auto a = c.read();
    ASSERT_TRUE(a) << i;
    EXPECT_EQ(a->body(), fmt::format("api GET /api/{}", i));
    EXPECT_TRUE(a->keep_alive());
  }
  ASSERT_TRUE(c.send(get("/api/last", "Connection: close\r\n")));
  auto a = c.read();
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->keep_alive());
  EXPECT_TRUE(c.closedByServer());

  Client old(srv.port());
  ASSERT_TRUE(old.send("GET /api HTTP/1.0\r\n\r\n"));
  a = old.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->version(), 10u);
  EXPECT_TRUE(old.closedByServer()) << "HTTP/1.0 without keep-alive";
}

TEST(HttpServer, ExpectContinue) {
  ServerOptions o;
  o.token = "t0k";
  Running srv(o, routes);
  Client c(srv.port());
  ASSERT_TRUE(c.send(
      "POST /api/reload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer t0k\r\nContent-Length: 5\r\n"
      "Expect: 100-continue\r\n\r\n"));
  auto a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 100);
  ASSERT_TRUE(c.send("hello"));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
  EXPECT_EQ(a->body(), "reload POST /api/reload body=hello");
}

TEST(HttpServer, TokenGuardsEverythingButReads) {
  ServerOptions o;
  o.token = "s3cret";
  Running srv(o, routes);
  Client c(srv.port());
  auto post = [&](std::string_view target, std::string_view extra = "") {
    EXPECT_TRUE(c.send(fmt::format("POST {} HTTP/1.1\r\nHost: t\r\n{}Content-Length: 2\r\n\r\nhi",
                                   target, extra)));
    auto a = c.read();
    EXPECT_TRUE(a);
    return a.value_or(Answer{});
  };
  Answer a = post("/api/reload");
  EXPECT_EQ(a.result_int(), 401);
  EXPECT_EQ(a[bhttp::field::www_authenticate], "Bearer realm=\"net-collector\"");
  EXPECT_EQ(post("/api/reload", "Authorization: Bearer s3cret\r\n").result_int(), 200);
  EXPECT_EQ(post("/api/reload", "authorization: bearer  s3cret \r\n").result_int(), 200);
  EXPECT_EQ(post("/api/reload?token=s3cret").result_int(), 200);
  EXPECT_EQ(post("/api/reload?token=nope").result_int(), 401);
  EXPECT_EQ(post("/api/reload", "Authorization: Bearer s3cre\r\n").result_int(), 401);
  EXPECT_EQ(post("/api/reload", "Authorization: Basic czNjcmV0\r\n").result_int(), 401)
      << "another scheme is not the token";
  ASSERT_TRUE(c.send(get("/api")));
  EXPECT_EQ(c.read()->result_int(), 200) << "reads need no token";
  ASSERT_TRUE(c.send(get("/api?token=wrong")));
  EXPECT_EQ(c.read()->result_int(), 401) << "a wrong token is refused on reads too";
  ASSERT_TRUE(c.send(get("/api?token=s3cret")));
  EXPECT_EQ(c.read()->result_int(), 200);

  // Without a configured token the server is read-only.
  Running ro({}, routes);
  Client d(ro.port());
  ASSERT_TRUE(
      d.send("POST /api/reload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer x\r\n"
             "Content-Length: 0\r\n\r\n"));
  auto b = d.read();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->result_int(), 403);
  EXPECT_EQ(b->body(), "POST refused: the server is read-only (no token configured)\n");
}

TEST(HttpServer, SizeLimits) {
  ServerOptions o;
  o.token = "t";
  o.max_body_bytes = 1000;
  o.max_header_bytes = 2048;
  Running srv(o, routes);
  {
    Client c(srv.port());
    ASSERT_TRUE(
        c.send("POST /api/reload?token=t HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n" +
               std::string(1001, 'x')));
    auto a = c.read();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->result_int(), 413);
    EXPECT_EQ(a->body(), "request body larger than 1000 bytes\n");
    EXPECT_TRUE(c.closedByServer());
  }
  {
    Client c(srv.port());
    ASSERT_TRUE(
        c.send("POST /api/reload?token=t HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" +
               std::string(1000, 'x')));
    auto a = c.read();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->result_int(), 200) << "exactly the limit";
  }
  {
    Client c(srv.port());
    ASSERT_TRUE(
        c.send("POST /api/reload?token=t HTTP/1.1\r\nHost: t\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" +
               fmt::format("{:x}\r\n{}\r\n", 600, std::string(600, 'a')) +
               fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", 600, std::string(600, 'b'))));
    auto a = c.read();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->result_int(), 413) << "chunked bodies count too";
  }
  {
    Client c(srv.port());
    ASSERT_TRUE(
        c.send("GET /api HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(4000, 'h') + "\r\n\r\n"));
    auto a = c.read();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->result_int(), 431);
    EXPECT_TRUE(c.closedByServer());
  }
  Client ok(srv.port());
  ASSERT_TRUE(ok.send(get("/api")));
  EXPECT_EQ(ok.read()->result_int(), 200);
}

// Garbage of every kind: an answer (400) or a closed connection, never a crash or a hang, and
// the server keeps serving.
TEST(HttpServer, MalformedRequests) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(500);
  Running srv(o, routes);
  const std::vector<std::string> bad = {
      "HELLO\r\n\r\n",
      "GET\r\n\r\n",
      "GET /api HTTP/9.9\r\n\r\n",
      "GET /api HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET /api HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "GET /api HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "POST /api/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET http://example.com/api HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: t\r\n\r\n",
      std::string("GET /a\0pi HTTP/1.1\r\n\r\n", 23),
      std::string(300, '\xff') + "\r\n\r\n",
      "\r\n\r\n\r\n",
  };
  for (const auto& raw : bad) {
    Client c(srv.port());
    ASSERT_TRUE(c.connected());
    c.send(raw);
    auto a = c.read();
    if (a) {
      EXPECT_TRUE(a->result_int() == 400 || a->result_int() == 505) << a->result_int() << raw;
      EXPECT_FALSE(a->keep_alive()) << raw;
    }
    EXPECT_TRUE(c.closedByServer()) << raw;  // at the latest after the timeout
  }
  {
    Client c(srv.port());  // half a request, then the client stops sending
    c.send("GET /api HTTP/1.1\r\nHo");
    c.shutdownWrite();
    auto a = c.read();
    if (a) {
      EXPECT_EQ(a->result_int(), 400);
    }
    EXPECT_TRUE(c.closedByServer());
  }
  Client ok(srv.port());
  ASSERT_TRUE(ok.send(get("/api")));
  auto a = ok.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
}

TEST(HttpServer, SlowAndIdleClientsTimeOut) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(100);
  Running srv(o, routes);
  Client idle(srv.port());
  EXPECT_TRUE(idle.closedByServer());
  Client slow(srv.port());
  slow.send("GET /api HTTP/1.1\r\nHost");  // and never the rest
  EXPECT_TRUE(slow.closedByServer());
  Client kept(srv.port());  // keep-alive connection idle after one answer
  ASSERT_TRUE(kept.send(get("/api")));
  EXPECT_EQ(kept.read()->result_int(), 200);
  EXPECT_TRUE(kept.closedByServer());
  EXPECT_TRUE(eventually([&] { return srv.server().stats().timeouts == 3; }))
      << srv.server().stats().timeouts;
}

TEST(HttpServer, ConnectionCap) {
  ServerOptions o;
  o.max_connections = 2;
  Running srv(o, routes);
  std::optional<Client> a(std::in_place, srv.port());
  Client b(srv.port());
  for (Client* c : {&*a, &b}) {  // both admitted (answered) before the third connects
    ASSERT_TRUE(c->send(get("/api")));
    ASSERT_EQ(c->read()->result_int(), 200);
  }
  Client third(srv.port());
  ASSERT_TRUE(third.connected());
  auto r = third.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 503);
  EXPECT_EQ(r->body(), "too many connections, retry later\n");
  EXPECT_TRUE(third.closedByServer());
  EXPECT_EQ(srv.server().stats().connections_refused, 1u);
  // When one leaves, a new client gets in.
  ASSERT_TRUE(a->send(get("/api", "Connection: close\r\n")));
  ASSERT_TRUE(a->read());
  ASSERT_TRUE(a->closedByServer());
  a.reset();
  EXPECT_TRUE(eventually([&] { return srv.server().stats().open_connections == 1; }));
  Client fourth(srv.port());
  ASSERT_TRUE(fourth.send(get("/api")));
  auto f = fourth.read();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->result_int(), 200);
}

TEST(HttpServer, AssetsWithEtagsAnd304) {
  Running srv({}, [](Server& s) {
    s.asset("/", {"text/html; charset=utf-8", "<h1>hi</h1>", "", "no-cache"});
    s.asset("/app.js", {"text/javascript", "let x = 1;", "\"v42\"", "max-age=3600"});
    routes(s);
  });
  Client c(srv.port());
  ASSERT_TRUE(c.send(get("/")));
  auto a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
  EXPECT_EQ(a->body(), "<h1>hi</h1>");
  EXPECT_EQ(a->at(bhttp::field::content_type), "text/html; charset=utf-8");
  EXPECT_EQ(a->at(bhttp::field::cache_control), "no-cache");
  const std::string etag(a->at(bhttp::field::etag));
  ASSERT_EQ(etag.size(), 18u) << etag;
  ASSERT_TRUE(c.send(get("/", "If-None-Match: " + etag + "\r\n")));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 304);
  EXPECT_TRUE(a->body().empty());
  EXPECT_EQ(a->at(bhttp::field::etag), etag);
  ASSERT_TRUE(c.send(get("/app.js", "If-None-Match: \"other\", W/\"v42\"\r\n")));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 304);
  EXPECT_EQ(a->at(bhttp::field::cache_control), "max-age=3600");
  ASSERT_TRUE(c.send(get("/app.js", "If-None-Match: \"v41\"\r\n")));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
  EXPECT_EQ(a->body(), "let x = 1;");
  ASSERT_TRUE(c.send(get("/app.js", "If-None-Match: *\r\n")));
  EXPECT_EQ(c.read()->result_int(), 304);
  ASSERT_TRUE(c.send("HEAD /app.js HTTP/1.1\r\nHost: t\r\n\r\n"));
  a = c.read(true);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->at(bhttp::field::content_length), "10");
  ASSERT_TRUE(c.send("PUT /app.js HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 405);
  EXPECT_EQ(a->at(bhttp::field::allow), "GET, HEAD");
  ASSERT_TRUE(c.send(get("/api")));
  EXPECT_EQ(c.read()->body(), "api GET /api") << "routes still work beside assets";
}

// Subscribers the test pushes to from its own thread, as the daemon's event hub would.
struct Subscribers {
  std::mutex mutex;
  std::vector<std::shared_ptr<SseStream>> streams;
  std::vector<std::string> last_ids;
  size_t count() {
    std::lock_guard<std::mutex> l(mutex);
    return streams.size();
  }
  std::shared_ptr<SseStream> at(size_t i) {
    std::lock_guard<std::mutex> l(mutex);
    return streams.at(i);
  }
};

SseHandler subscribe(Subscribers& subs) {
  return [&subs](const Request& r, std::shared_ptr<SseStream> s) {
    if (r.param("fail")) {
      throw std::runtime_error("no such feed");
    }
    s->send("welcome");
    std::lock_guard<std::mutex> l(subs.mutex);
    subs.streams.push_back(std::move(s));
    subs.last_ids.emplace_back(r.header("Last-Event-ID"));
  };
}

TEST(HttpServer, ServerSentEvents) {
  Subscribers subs;
  ServerOptions o;
  o.max_sse_clients = 2;
  Running srv(o, [&](Server& s) { s.sse("/events", subscribe(subs)); });
  Client c(srv.port());
  ASSERT_TRUE(c.send(get("/events", "Last-Event-ID: 7\r\n")));
  std::string got = c.readUntil("data: welcome\n\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got;
  EXPECT_NE(got.find("Content-Type: text/event-stream\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Cache-Control: no-cache\r\n"), std::string::npos) << got;
  EXPECT_TRUE(got.ends_with("\r\n\r\ndata: welcome\n\n")) << got;
  ASSERT_EQ(subs.count(), 1u);
  EXPECT_EQ(subs.last_ids[0], "7");
  auto s = subs.at(0);
  EXPECT_TRUE(s->send("line one\nline two\r\nline three", "spike", "8"));
  EXPECT_EQ(c.readUntil("three\n\n"),
            "event: spike\nid: 8\ndata: line one\ndata: line two\ndata: line three\n\n");
  EXPECT_TRUE(s->send("{\"a\":1}", "evil\nname"));
  EXPECT_EQ(c.readUntil("}\n\n"), "event: evil name\ndata: {\"a\":1}\n\n");

  // A handler that throws: 500 and no stream. The client cap: 503.
  Client failing(srv.port());
  ASSERT_TRUE(failing.send(get("/events?fail=1")));
  auto a = failing.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 500);
  Client second(srv.port());
  ASSERT_TRUE(second.send(get("/events")));
  second.readUntil("data: welcome\n\n");
  Client third(srv.port());
  ASSERT_TRUE(third.send(get("/events")));
  a = third.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 503);
  EXPECT_EQ(a->body(), "too many event-stream clients (at most 2)\n");

  // The client leaves: the stream notices, send() says so.
  second.shutdownWrite();
  auto s2 = subs.at(1);
  EXPECT_TRUE(eventually([&] { return s2->closed(); }));
  EXPECT_FALSE(s2->send("anyone?"));
  // The server ends a stream: what is queued is delivered, then the connection closes.
  EXPECT_TRUE(s->send("bye"));
  s->close();
  EXPECT_FALSE(s->send("too late"));
  EXPECT_EQ(c.readUntil("bye\n\n"), "data: bye\n\n");
  EXPECT_TRUE(c.closedByServer());
  EXPECT_TRUE(eventually([&] { return srv.server().stats().sse_clients == 0; }));
  // HEAD on a stream route answers the header only.
  Client h(srv.port());
  ASSERT_TRUE(h.send("HEAD /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  a = h.read(true);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->at(bhttp::field::content_type), "text/event-stream");
}

// A client that stops reading is dropped once max_sse_queue_bytes wait for it; the sender is
// never blocked and other clients keep getting their events.
TEST(HttpServer, SlowEventClientIsDropped) {
  Subscribers subs;
  ServerOptions o;
  o.max_sse_queue_bytes = 64 * 1024;
  Running srv(o, [&](Server& s) { s.sse("/events", subscribe(subs)); });
  Client slow(srv.port(), 4096);
  ASSERT_TRUE(slow.send(get("/events")));
  slow.readUntil("data: welcome\n\n");  // then it reads nothing more
  Client fast(srv.port());
  ASSERT_TRUE(fast.send(get("/events")));
  fast.readUntil("data: welcome\n\n");
  ASSERT_TRUE(eventually([&] { return subs.count() == 2; }));
  auto s = subs.at(0);
  const std::string chunk(16 * 1024, 'x');
  size_t sent = 0;
  // The kernel's buffers fill, then the queue: send() turns false. Bounded by the bytes the
  // kernel can hold for one loopback connection (a few MiB), far below this cap.
  while (s->send(chunk) && sent < 100000) {
    ++sent;
  }
  EXPECT_LT(sent, 100000u);
  EXPECT_TRUE(s->closed());
  EXPECT_FALSE(s->send("more"));
  EXPECT_TRUE(eventually([&] { return srv.server().stats().sse_dropped == 1; }));
  EXPECT_TRUE(slow.closedByServer());
  EXPECT_TRUE(subs.at(1)->send("still here"));
  EXPECT_EQ(fast.readUntil("still here\n\n"), "data: still here\n\n");
}

TEST(HttpServer, ServesTheMetricsRegistry) {
  metrics::MetricsRegistry registry;
  ServerOptions o;
  Running srv(o, [&](Server& s) { serveMetrics(s, registry); });
  registry.add("http", [&](metrics::MetricWriter& w) { srv.server().writeMetrics(w); });
  Client c(srv.port());
  ASSERT_TRUE(c.send(get("/metrics")));
  auto a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
  EXPECT_EQ(a->at(bhttp::field::content_type), "text/plain; version=0.0.4; charset=utf-8");
  auto e = test::parseExposition(a->body());
  EXPECT_TRUE(e.problems.empty()) << a->body();
  EXPECT_EQ(e.value("net_collector_http_requests_total"), 1);
  EXPECT_EQ(e.value("net_collector_http_open_connections"), 1);
  EXPECT_EQ(e.value("net_collector_http_responses_total", {{"code", "2xx"}}), 0)
      << "counted once written";
  ASSERT_TRUE(c.send(get("/metrics")));
  e = test::parseExposition(c.read()->body());
  EXPECT_EQ(e.value("net_collector_http_responses_total", {{"code", "2xx"}}), 1);
}

TEST(HttpServer, BindErrorsAreClear) {
  asio::io_context io;
  ServerOptions o;
  o.address = "not-an-address";
  try {
    Server s(io, o);
    FAIL() << "bound to nonsense";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(
        "http: 'not-an-address' is not an IPv4 or IPv6 address: "))
        << e.what();
  }
  Server first(io, {});
  ServerOptions same;
  same.port = first.port();
  try {
    Server s(io, same);
    FAIL() << "bound twice";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(
        std::string(e.what()),
        fmt::format("http: cannot listen on 127.0.0.1:{}: Address already in use", first.port()));
  }
  ServerOptions v6;
  v6.address = "::1";
  try {
    Server s(io, v6);
    EXPECT_NE(s.port(), 0);
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("[::1]:0"), std::string::npos) << e.what();
  }
}

TEST(HttpServer, StopClosesEverything) {
  Subscribers subs;
  auto srv = std::make_unique<Running>(ServerOptions{}, [&](Server& s) {
    s.sse("/events", subscribe(subs));
    routes(s);
  });
  Client stream(srv->port());
  ASSERT_TRUE(stream.send(get("/events")));
  stream.readUntil("data: welcome\n\n");
  Client idle(srv->port());
  ASSERT_TRUE(idle.send(get("/api")));
  ASSERT_TRUE(idle.read());
  srv->stop();
  EXPECT_TRUE(stream.closedByServer());
  EXPECT_TRUE(idle.closedByServer());
  EXPECT_TRUE(subs.at(0)->closed());
  EXPECT_FALSE(subs.at(0)->send("after stop"));
  srv.reset();
}

// Asynchronous handlers: the request's `respond` handed to the test, which answers from its own
// thread, in whatever order and as often as it likes.
struct Parked {
  std::mutex mu;
  std::vector<std::pair<std::string, Respond>> waiting;  // target, respond
  size_t count() {
    std::lock_guard lock(mu);
    return waiting.size();
  }
  Respond take(size_t i, std::string* target = nullptr) {
    std::lock_guard lock(mu);
    if (target) {
      *target = waiting.at(i).first;
    }
    return std::move(waiting.at(i).second);
  }
  AsyncHandler handler() {
    return [this](const Request& r, Respond respond) {
      if (r.param("throw")) {
        throw std::runtime_error("async kaput");
      }
      if (r.param("now")) {
        return respond(Response::text(200, "at once " + r.method));
      }
      std::lock_guard lock(mu);
      waiting.emplace_back(r.target, std::move(respond));
    };
  }
};

TEST(HttpServer, AsyncRoutesAnswerFromAnyThread) {
  Parked parked;
  Running srv({}, [&](Server& s) {
    routes(s);
    s.routeAsync("GET", "/slow", parked.handler());
  });
  Client c(srv.port());
  ASSERT_TRUE(c.send(get("/slow?n=1")));
  ASSERT_TRUE(eventually([&] { return parked.count() == 1; }));
  std::string target;
  Respond r1 = parked.take(0, &target);
  EXPECT_EQ(target, "/slow?n=1");
  // Answered from another thread; a second call is ignored.
  std::thread([&] {
    r1(Response::json("{\"n\":1}"));
    r1(Response::text(200, "second answer"));
  }).join();
  auto a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
  EXPECT_EQ(a->body(), "{\"n\":1}");
  EXPECT_EQ(a->at(bhttp::field::content_type), "application/json");
  // The connection stays usable (keep-alive) and the ignored second answer never shows up.
  ASSERT_TRUE(c.send(get("/api")));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body(), "api GET /api");
  // Answered within the handler; HEAD gets the header only.
  ASSERT_TRUE(c.send(get("/slow?now=1")));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body(), "at once GET");
  ASSERT_TRUE(c.send("HEAD /slow?now=1 HTTP/1.1\r\nHost: t\r\n\r\n"));
  a = c.read(true);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 200);
  EXPECT_EQ(a->at(bhttp::field::content_length), "12");
  EXPECT_TRUE(a->body().empty());
  // A handler that throws: 500 with the message.
  ASSERT_TRUE(c.send(get("/slow?throw=1")));
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 500);
  EXPECT_EQ(a->body(), "internal error: async kaput\n");
  // Two connections waiting at once are answered in the order the test chooses.
  Client d(srv.port());
  Client e(srv.port());
  ASSERT_TRUE(d.send(get("/slow?who=d")));
  ASSERT_TRUE(eventually([&] { return parked.count() == 2; }));
  ASSERT_TRUE(e.send(get("/slow?who=e")));
  ASSERT_TRUE(eventually([&] { return parked.count() == 3; }));
  parked.take(2)(Response::text(200, "to e"));
  a = e.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body(), "to e");
  parked.take(1)(Response::text(201, "to d"));
  a = d.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 201);
  EXPECT_EQ(a->body(), "to d");
}

TEST(HttpServer, AsyncRouteDroppedAnswerIs500AndStopIsSafe) {
  Parked parked;
  auto srv = std::make_unique<Running>(ServerOptions{}, [&](Server& s) {
    s.routeAsync("GET", "/slow", parked.handler());
    s.route("GET", "/replaced", echo("sync"));
    s.routeAsync("GET", "/replaced", parked.handler());
  });
  Client c(srv->port());
  ASSERT_TRUE(c.send(get("/replaced?now=1")));
  auto a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body(), "at once GET") << "routeAsync replaces route() for the same prefix";
  ASSERT_TRUE(c.send(get("/slow")));
  ASSERT_TRUE(eventually([&] { return parked.count() == 1; }));
  { Respond dropped = parked.take(0); }  // every copy gone without an answer
  a = c.read();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->result_int(), 500);
  EXPECT_EQ(a->body(), "internal error: the handler gave no answer\n");
  // The server stops while an answer is awaited: the client is disconnected, and the late
  // answer is dropped without harm.
  Client w(srv->port());
  ASSERT_TRUE(w.send(get("/slow")));
  ASSERT_TRUE(eventually([&] { return parked.count() == 2; }));
  Respond late = parked.take(1);
  srv->stop();
  EXPECT_TRUE(w.closedByServer());
  late(Response::text(200, "too late"));
  late = nullptr;  // a Respond must go before the server's io_context (http.hpp)
  srv.reset();
}

}  // namespace
}  // namespace nc::http
