// ebb::App over real sockets: routing, parsing, limits, keep-alive and
// pipelining, deferred responses, middleware, built-in routes, the drain,
// the WebSocket hand-over.
#include <gtest/gtest.h>

#include <atomic>
#include <ebb.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "unit/http/raw_http.hpp"
#include "unit/support/wait.hpp"
#include "unit/websocket/test_client.hpp"

namespace {

using ebb::test::Counter;
using ebb::test::eventually;
using ebb::test::RawHttp;
using namespace std::chrono_literals;

ebb::AppOptions test_options() {
  ebb::AppOptions o;
  o.host = "127.0.0.1";
  o.shutdown_timeout = 5s;
  return o;
}

// An app listening on a free port, stopped and joined at scope end.
struct Running {
  explicit Running(ebb::AppOptions o = test_options()) : app(std::move(o)) {}
  std::uint16_t start() { return port = app.listen(0); }
  ~Running() {
    app.stop();
    app.wait();
  }
  ebb::App app;
  std::uint16_t port = 0;
};

TEST(App, RoutesWithParamsAndQuery) {
  Running r;
  r.app.get("/users/:id", [](ebb::Request& req, ebb::Response& res) {
    res.json({{"id", req.param("id")},
              {"q", req.query("q")},
              {"path", req.path()},
              {"target", req.target()},
              {"remote", req.remote_address()},
              {"remote_port", req.remote_port()}});
  });
  r.app.get("/users/me", [](ebb::Request&, ebb::Response& res) { res.text("me"); });
  r.app.get("/files/*",
            [](ebb::Request& req, ebb::Response& res) { res.text(std::string(req.param("*"))); });
  r.start();
  RawHttp c(r.port);
  auto a = c.roundtrip("GET", "/users/42?q=a%20b+c&x=1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->header("Content-Type"), "application/json");
  auto v = ebb::json::parse(a->body).as_object();
  EXPECT_EQ(v["id"].as_string(), "42");
  EXPECT_EQ(v["q"].as_string(), "a b c");
  EXPECT_EQ(v["target"].as_string(), "/users/42?q=a%20b+c&x=1");  // as sent, not decoded
  EXPECT_EQ(v["remote"].as_string(), "127.0.0.1");
  EXPECT_NE(v["remote_port"].to_number<int>(), 0);
  auto me = c.roundtrip("GET", "/users/me");  // literal beats :id
  ASSERT_TRUE(me);
  EXPECT_EQ(me->body, "me");
  auto rest = c.roundtrip("GET", "/files/a/b%2Fc.txt");
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->body, "a/b/c.txt");
  auto decoded = c.roundtrip("GET", "/users/h%C3%A9llo");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(ebb::json::parse(decoded->body).as_object()["id"].as_string(), "h\xC3\xA9llo");
}

TEST(App, NotFoundMethodNotAllowedAndHead) {
  Running r;
  r.app.get("/thing", [](ebb::Request&, ebb::Response& res) { res.text("hello"); });
  r.app.post("/thing",
             [](ebb::Request& req, ebb::Response& res) { res.text("got " + req.body()); });
  r.start();
  RawHttp c(r.port);
  auto nf = c.roundtrip("GET", "/nothing");
  ASSERT_TRUE(nf);
  EXPECT_EQ(nf->status, 404);
  auto na = c.roundtrip("DELETE", "/thing");
  ASSERT_TRUE(na);
  EXPECT_EQ(na->status, 405);
  EXPECT_EQ(na->header("Allow"), "GET, HEAD, POST");
  auto head = c.roundtrip("HEAD", "/thing");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "5");
  // The HEAD answer had no body: the next response starts right after it.
  auto post = c.roundtrip("POST", "/thing", {}, "abc");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->body, "got abc");
}

TEST(App, PutPatchAndDeleteRoutes) {
  Running r;
  auto echo = [](const char* verb) {
    return [verb](ebb::Request& req, ebb::Response& res) {
      res.text(std::string(verb) + " " + std::string(req.param("id")) + " " + req.body());
    };
  };
  r.app.put("/items/:id", echo("put"));
  r.app.patch("/items/:id", echo("patch"));
  r.app.del("/items/:id", echo("delete"));
  r.start();
  RawHttp c(r.port);
  auto put = c.roundtrip("PUT", "/items/7", {}, "a");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(put->body, "put 7 a");
  auto patch = c.roundtrip("PATCH", "/items/8", {}, "b");
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 200);
  EXPECT_EQ(patch->body, "patch 8 b");
  auto del = c.roundtrip("DELETE", "/items/9");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  EXPECT_EQ(del->body, "delete 9 ");
  for (const char* method : {"GET", "POST"}) {
    auto na = c.roundtrip(method, "/items/9");
    ASSERT_TRUE(na) << method;
    EXPECT_EQ(na->status, 405) << method;
    EXPECT_EQ(na->header("Allow"), "DELETE, PATCH, PUT") << method;  // no GET, so no HEAD
  }
}

TEST(App, KeepAliveAndPipeliningInOrderAcrossADeferredResponse) {
  Running r;
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  r.app.get("/n/:n",
            [](ebb::Request& req, ebb::Response& res) { res.text(std::string(req.param("n"))); });
  r.app.get("/later", [executor](ebb::Request&, ebb::Response& res) {
    auto p = res.defer();
    executor->post([p]() mutable {
      std::this_thread::sleep_for(50ms);  // the slow work being simulated
      p.response().text("later");
      p.send();
    });
  });
  r.start();
  RawHttp c(r.port);
  c.send(c.request("GET", "/n/1") + c.request("GET", "/later") + c.request("GET", "/n/2") +
         c.request("GET", "/n/3"));
  for (const char* expected : {"1", "later", "2", "3"}) {
    auto resp = c.read_response();
    ASSERT_TRUE(resp) << expected;
    EXPECT_EQ(resp->body, expected);
    EXPECT_EQ(resp->header("Connection"), "");  // kept alive
  }
  executor->stop();
}

TEST(App, ChunkedRequestBody) {
  Running r;
  r.app.post("/echo", [](ebb::Request& req, ebb::Response& res) { res.text(req.body()); });
  r.start();
  RawHttp c(r.port);
  c.send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n");
  auto resp = c.read_response();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "hello world");
}

TEST(App, ExpectContinue) {
  Running r;
  r.app.post("/echo", [](ebb::Request& req, ebb::Response& res) { res.text(req.body()); });
  r.start();
  RawHttp c(r.port);
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  // The interim answer comes before the body is sent.
  ASSERT_TRUE(eventually([&] {
    c.wait_closed(10ms);
    return c.buffered().find("100 Continue") != std::string::npos;
  }));
  c.send("data");
  auto resp = c.read_response();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "data");
}

TEST(App, LimitsHeaderBodyAndSlowHeaders) {
  auto o = test_options();
  o.max_header_size = 1024;
  o.max_body_size = 100;
  o.header_timeout = 300ms;
  Running r(o);
  r.app.post("/echo", [](ebb::Request& req, ebb::Response& res) { res.text(req.body()); });
  r.start();
  {
    RawHttp c(r.port);
    auto resp = c.roundtrip("GET", "/", "X-Big: " + std::string(2000, 'a') + "\r\n");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 431);
    EXPECT_EQ(resp->header("Connection"), "close");
  }
  {
    RawHttp c(r.port);
    auto resp = c.roundtrip("POST", "/echo", {}, std::string(101, 'x'));
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 413);
  }
  {
    RawHttp c(r.port);
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; ++i) c.send("40\r\n" + std::string(64, 'y') + "\r\n");
    auto resp = c.read_response();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 413);
  }
  {
    RawHttp c(r.port);
    c.send("GET / HTTP/1.1\r\nHost: t\r\n");  // and then nothing: slowloris
    auto resp = c.read_response(false, 5s);
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 408);
    EXPECT_TRUE(c.wait_closed());
  }
  {
    RawHttp c(r.port);
    auto resp = c.roundtrip("GET", "no-slash");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 400);
  }
}

TEST(App, HandlerThatThrowsGets500AndTheServerLivesOn) {
  Running r;
  r.app.get("/boom", [](ebb::Request&, ebb::Response&) { throw std::runtime_error("kaput"); });
  r.app.get("/ok", [](ebb::Request&, ebb::Response& res) { res.text("ok"); });
  r.start();
  RawHttp c(r.port);
  auto boom = c.roundtrip("GET", "/boom");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  EXPECT_EQ(boom->body.find("kaput"), std::string::npos);  // no internals leak
  auto ok = c.roundtrip("GET", "/ok");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(App, DroppedDeferredResponseAnswers500) {
  Running r;
  r.app.get("/drop", [](ebb::Request&, ebb::Response& res) { (void)res.defer(); });
  r.start();
  RawHttp c(r.port);
  auto resp = c.roundtrip("GET", "/drop");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 500);
}

TEST(App, MiddlewareBeforeAndAfter) {
  Running r;
  r.app.before([](ebb::Request& req, ebb::Response& res) {
    if (req.header("Authorization") == "let me in") return true;
    res.status(401).text("no");
    return false;
  });
  r.app.after([](ebb::Request&, ebb::Response& res) { res.header("X-After", "yes"); });
  r.app.get("/secret", [](ebb::Request&, ebb::Response& res) { res.text("secret"); });
  r.start();
  RawHttp c(r.port);
  auto denied = c.roundtrip("GET", "/secret");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 401);
  EXPECT_EQ(denied->header("X-After"), "yes");
  auto ok = c.roundtrip("GET", "/secret", "Authorization: let me in\r\n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->body, "secret");
  EXPECT_EQ(ok->header("X-After"), "yes");
}

TEST(App, HeaderInjectionIsRefused) {
  Running r;
  r.app.get("/inject", [](ebb::Request&, ebb::Response& res) {
    res.header("X-Evil", "a\r\nSet-Cookie: x=1");
  });
  r.start();
  RawHttp c(r.port);
  auto resp = c.roundtrip("GET", "/inject");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 500);
  EXPECT_EQ(resp->header("Set-Cookie"), "");
}

TEST(App, StaticFilesThroughTheApp) {
  auto dir = std::filesystem::temp_directory_path() / ("ebb_static_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "public");
  std::ofstream(dir / "public" / "index.html") << "<h1>hi</h1>";
  std::ofstream(dir / "secret.txt") << "top secret";
  Running r;
  r.app.static_files("/", dir / "public");
  r.start();
  RawHttp c(r.port);
  auto index = c.roundtrip("GET", "/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->body, "<h1>hi</h1>");
  EXPECT_EQ(index->header("Content-Type"), "text/html; charset=utf-8");
  auto etag = index->header("ETag");
  ASSERT_FALSE(etag.empty());
  auto cached = c.roundtrip("GET", "/index.html", "If-None-Match: " + etag + "\r\n");
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->status, 304);
  for (const char* evil : {"/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"}) {
    RawHttp e(r.port);
    auto resp = e.roundtrip("GET", evil);
    ASSERT_TRUE(resp) << evil;
    EXPECT_NE(resp->status, 200) << evil;
    EXPECT_EQ(resp->body.find("top secret"), std::string::npos) << evil;
  }
  std::filesystem::remove_all(dir);
}

TEST(App, HealthAndReadiness) {
  Running r;
  r.start();
  RawHttp c(r.port);
  auto live = c.roundtrip("GET", "/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  auto ready = c.roundtrip("GET", "/health/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
}

TEST(App, HealthPathsAreConfigurableAndAnEmptyOneIsOff) {
  auto o = test_options();
  o.health_ready_path = "/readyz";
  o.health_live_path = "";
  Running r(o);
  r.start();
  RawHttp c(r.port);
  auto ready = c.roundtrip("GET", "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ebb::json::parse(ready->body).as_object()["status"].as_string(), "ready");
  for (const char* gone : {"/health/ready", "/health/live", "/"}) {
    auto resp = c.roundtrip("GET", gone);
    ASSERT_TRUE(resp) << gone;
    EXPECT_EQ(resp->status, 404) << gone;
  }
}

TEST(App, BuiltFromAConfigTakesItsHttpKeys) {
  const auto cfg = ebb::config::Config::from_map({{"SERVER_HOST", "127.0.0.1"},
                                                  {"HTTP_MAX_BODY_SIZE", "8"},
                                                  {"HEALTH_READY_PATH", "/readyz"},
                                                  {"HEALTH_LIVE_PATH", ""},
                                                  {"SHUTDOWN_TIMEOUT", "5"},
                                                  {"MY_APP_GREETING", "hi"}});
  ebb::App app{cfg};
  // The app keeps the configuration: a program reads its own keys from it.
  EXPECT_EQ(app.config().get_string("MY_APP_GREETING"), "hi");
  EXPECT_EQ(app.config().get_string("HEALTH_READY_PATH"), "/readyz");
  EXPECT_EQ(app.options().shutdown_timeout, 5s);  // a plain number is seconds here
  app.post("/echo", [](ebb::Request& req, ebb::Response& res) { res.text(req.body()); });
  const auto port = app.listen(0);
  {
    RawHttp c(port);
    auto fits = c.roundtrip("POST", "/echo", {}, "12345678");
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->status, 200);
    auto ready = c.roundtrip("GET", "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200);
    auto old_ready = c.roundtrip("GET", "/health/ready");
    ASSERT_TRUE(old_ready);
    EXPECT_EQ(old_ready->status, 404);
    auto live = c.roundtrip("GET", "/health/live");  // HEALTH_LIVE_PATH= turns it off
    ASSERT_TRUE(live);
    EXPECT_EQ(live->status, 404);
  }
  {
    RawHttp c(port);
    auto too_big = c.roundtrip("POST", "/echo", {}, "123456789");
    ASSERT_TRUE(too_big);
    EXPECT_EQ(too_big->status, 413);
  }
  app.stop();
  app.wait();
}

TEST(App, ABadConfigValueNamesItsKey) {
  const std::pair<const char*, const char*> bad[] = {
      {"HTTP_MAX_BODY_SIZE", "lots"},   // unparsable
      {"HEALTH_READY_PATH", "readyz"},  // parsed, then refused by validation
      {"ADMIN_TOKEN", "short"},         // too short to guard the shutdown route
      {"HTTP_IO_THREADS", "2000"},      // out of range
  };
  for (const auto& [key, value] : bad) {
    try {
      ebb::App app{ebb::config::Config::from_map({{key, value}})};
      ADD_FAILURE() << key << "=" << value << " was accepted";
    } catch (const ebb::config::ConfigError& e) {
      EXPECT_EQ(e.key(), key);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(App, ReadinessIs503DuringTheGraceAndNewConnectionsAreRefusedAfter) {
  auto o = test_options();
  o.readiness_grace = 400ms;
  Running r(o);
  r.start();
  r.app.stop();
  {
    RawHttp c(r.port);
    ASSERT_TRUE(c.connected());
    auto ready = c.roundtrip("GET", "/health/ready");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 503);
    EXPECT_EQ(ready->header("Connection"), "close");
  }
  EXPECT_TRUE(eventually([&] { return !RawHttp(r.port).connected(); }));
}

TEST(App, AdminShutdownNeedsTheToken) {
  {
    Running r;  // no token: the route does not exist
    r.start();
    RawHttp c(r.port);
    auto resp = c.roundtrip("POST", "/admin/shutdown");
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 404);
  }
  auto o = test_options();
  o.admin_token = "0123456789abcdef-secret";
  Running r(o);
  r.start();
  RawHttp c(r.port);
  auto none = c.roundtrip("POST", "/admin/shutdown");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  for (const char* auth : {
           "Bearer 0123456789abcdef-secreT",   // same length, last byte wrong
           "Bearer 0123456789abcdef-secre",    // a prefix of the token
           "Bearer 0123456789abcdef-secrets",  // the token and more
           "Bearer ",                          // empty token
           "",                                 // empty Authorization
           "0123456789abcdef-secret",          // no scheme
           "Basic 0123456789abcdef-secret",    // another scheme
       }) {
    auto wrong =
        c.roundtrip("POST", "/admin/shutdown", std::string("Authorization: ") + auth + "\r\n");
    ASSERT_TRUE(wrong) << auth;
    EXPECT_EQ(wrong->status, 401) << auth;
    EXPECT_EQ(wrong->header("WWW-Authenticate"), "Bearer") << auth;
    EXPECT_EQ(r.app.state(), ebb::AppState::ready) << auth;  // no drain started
  }
  auto get = c.roundtrip("GET", "/admin/shutdown");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(r.app.state(), ebb::AppState::ready);
  auto ok =
      c.roundtrip("POST", "/admin/shutdown", "Authorization: Bearer 0123456789abcdef-secret\r\n");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 202);
  EXPECT_EQ(ok->header("Connection"), "close");
  r.app.wait();
  EXPECT_EQ(r.app.state(), ebb::AppState::stopped);
}

TEST(App, DrainFinishesInFlightClosesIdleAndCallsTheShutdownCallbackOnce) {
  Running r;
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  Counter started, callbacks;
  std::atomic<bool> release{false};
  r.app.get("/slow", [&, executor](ebb::Request&, ebb::Response& res) {
    auto p = res.defer();
    started.add();
    executor->post([p, &release]() mutable {
      while (!release.load()) std::this_thread::sleep_for(1ms);
      p.response().text("done");
      p.send();
    });
  });
  r.app.set_shutdown_callback([&] { callbacks.add(); });
  r.start();
  RawHttp idle(r.port), busy(r.port);
  ASSERT_TRUE(idle.roundtrip("GET", "/health/live"));  // a served, now idle keep-alive connection
  busy.send(busy.request("GET", "/slow"));
  ASSERT_TRUE(started.wait_for(1));
  r.app.stop();
  r.app.stop();                     // idempotent
  EXPECT_TRUE(idle.wait_closed());  // idle keep-alive: closed at once
  EXPECT_EQ(r.app.state(), ebb::AppState::draining);
  release = true;
  auto resp = busy.read_response();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "done");
  EXPECT_EQ(resp->header("Connection"), "close");
  r.app.wait();
  auto report = r.app.drain_report();
  EXPECT_TRUE(report.clean());
  EXPECT_EQ(report.in_flight_at_start, 1u);
  EXPECT_EQ(report.forced, 0u);
  EXPECT_EQ(callbacks.value(), 1);
  executor->stop();
}

// Browsers open spare connections ahead of need (preconnect) and may never
// use them. At the drain such a connection gets a short grace for its first
// request, not the whole header timeout: the drain ends clean and soon. One
// that does send in time is still answered.
TEST(App, DrainGivesAConnectionThatSentNothingOnlyAShortGrace) {
  auto o = test_options();
  o.header_timeout = 30s;
  o.shutdown_timeout = 20s;
  Running r(o);
  r.app.get("/late", [](ebb::Request&, ebb::Response& res) { res.text("answered"); });
  r.start();
  RawHttp spare(r.port), late(r.port);  // connected, nothing sent
  ASSERT_TRUE(eventually([&] { return r.app.connection_count() == 2; }));
  auto t0 = std::chrono::steady_clock::now();
  r.app.stop();
  late.send(late.request("GET", "/late"));
  auto resp = late.read_response();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->body, "answered");
  EXPECT_EQ(resp->header("Connection"), "close");
  EXPECT_TRUE(spare.wait_closed());
  r.app.wait();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);  // not the 20 s deadline
  EXPECT_TRUE(r.app.drain_report().clean());
}

TEST(App, DeadlineForcesWhatIsLeft) {
  auto o = test_options();
  o.shutdown_timeout = 300ms;
  Running r(o);
  std::vector<ebb::PendingResponse> never;  // held, never sent
  std::mutex m;
  r.app.get("/never", [&](ebb::Request&, ebb::Response& res) {
    std::lock_guard lock(m);
    never.push_back(res.defer());
  });
  Counter forced;
  r.app.set_force_callback([&] { forced.add(); });
  r.start();
  RawHttp c(r.port);
  c.send(c.request("GET", "/never"));
  ASSERT_TRUE(eventually([&] { return r.app.in_flight() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  r.app.stop();
  r.app.wait();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(r.app.drain_report().forced, 1u);
  EXPECT_FALSE(r.app.drain_report().clean());
  EXPECT_EQ(forced.value(), 1);
  std::lock_guard lock(m);
  for (auto& p : never) p.send();  // the connection is gone: does nothing
}

TEST(App, WaitFromAHandlerFailsLoudly) {
  Running r;
  std::atomic<bool> threw{false};
  r.app.get("/wait", [&](ebb::Request&, ebb::Response& res) {
    try {
      r.app.wait();
    } catch (const std::logic_error&) {
      threw = true;
    }
    res.text("ok");
  });
  r.start();
  RawHttp c(r.port);
  ASSERT_TRUE(c.roundtrip("GET", "/wait"));
  EXPECT_TRUE(threw.load());
}

// ---------------------------------------------------- WebSocket hand-over ---

TEST(AppWebSocket, UpgradeOnTheAppPortIsServedAndDrainedByTheServer) {
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo};
  ws.on_message([](ebb::websocket::Session& s, std::string_view m) { s.send_text(m); });
  Running r;
  r.app.ws("/ws", ws);
  ws.start();
  EXPECT_EQ(ws.port(), 0);  // no listener of its own
  r.start();

  ebb::test::TestClient client(r.port);
  auto head = client.upgrade({}, "/ws");
  ASSERT_NE(head.find("101"), std::string::npos) << head;
  client.send_frame(0x1, "hello");
  auto echo = client.read_frame();
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->payload, "hello");
  ASSERT_TRUE(eventually([&] { return ws.session_count() == 1; }));
  EXPECT_EQ(r.app.connection_count(), 0u);  // the app let go of it

  // Not an upgrade: the path speaks WebSocket only.
  RawHttp plain(r.port);
  auto resp = plain.roundtrip("GET", "/ws");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 426);

  // The drain reaches the handed-over session: Close 1001.
  r.app.set_shutdown_callback([&] { ws.stop_async(); });
  r.app.stop();
  auto close = client.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, 0x8);
  EXPECT_EQ(close->close_code(), 1001);
  client.send_close(1001);
  ws.stop();
  EXPECT_TRUE(ws.drain_report().clean());
}

TEST(AppWebSocket, TheAppDrainReachesHandedOverSessionsWithoutACallback) {
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo};
  Running r;
  r.app.ws("/ws", ws);  // no AttachedRuntime, no shutdown callback
  ws.start();
  r.start();
  ebb::test::TestClient client(r.port);
  ASSERT_NE(client.upgrade({}, "/ws").find("101"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return ws.session_count() == 1; }));

  r.app.stop();
  auto close = client.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, 0x8);
  EXPECT_EQ(close->close_code(), 1001);
  client.send_close(1001);
  ws.stop();
  EXPECT_EQ(ws.state(), ebb::websocket::LifecycleState::stopped);
  EXPECT_TRUE(ws.drain_report().clean());
  EXPECT_EQ(ws.drain_report().sessions_at_start, 1u);
}

TEST(AppWebSocket, AForcedAppDrainForcesHandedOverSessionsToo) {
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  wo.close_wait = std::chrono::seconds(30);  // only the force can end the silent client
  wo.shutdown_timeout = std::chrono::seconds(30);
  ebb::websocket::Server ws{wo};
  Running r;
  r.app.ws("/ws", ws);  // no force callback either
  ws.start();
  r.start();
  ebb::test::TestClient silent(r.port);
  ASSERT_NE(silent.upgrade({}, "/ws").find("101"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return ws.session_count() == 1; }));

  r.app.stop();
  auto close = silent.read_frame();  // the drain reached it; it never answers
  ASSERT_TRUE(close && close->opcode == 0x8);
  r.app.force();
  EXPECT_TRUE(eventually([&] { return ws.session_count() == 0; }));
  ws.stop();
  EXPECT_EQ(ws.drain_report().forced, 1u);
}

TEST(AppWebSocket, UpgradeAfterTheServerStoppedGets503) {
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  ebb::websocket::Server ws{wo};
  Running r;
  r.app.ws("/ws", ws);
  ws.start();
  r.start();
  ws.stop();
  ebb::test::TestClient client(r.port);
  auto head = client.upgrade({}, "/ws");
  EXPECT_NE(head.find("503"), std::string::npos) << head;
}

// ------------------------------------------------------- AttachedRuntime ---

TEST(AttachedRuntime, RequestStopStartsBothDrainsAndIsIdempotent) {
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo, executor};
  Running r;
  auto runtime = std::make_unique<ebb::websocket::AttachedRuntime>(r.app, ws, executor);
  EXPECT_EQ(ws.state(), ebb::websocket::LifecycleState::ready);  // the constructor started it
  r.start();
  std::vector<std::unique_ptr<ebb::test::TestClient>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<ebb::test::TestClient>(ws.port()));
    ASSERT_NE(clients.back()->upgrade().find("101"), std::string::npos);
  }
  ASSERT_TRUE(eventually([&] { return ws.session_count() == 3; }));
  EXPECT_FALSE(runtime->stop_requested());

  runtime->request_stop();
  runtime->request_stop();
  EXPECT_TRUE(runtime->stop_requested());
  EXPECT_NE(r.app.state(), ebb::AppState::ready);  // the HTTP drain started
  for (auto& c : clients) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->close_code(), 1001);
    c->send_close(1001);
  }
  r.app.wait();
  EXPECT_EQ(r.app.state(), ebb::AppState::stopped);
  runtime->finalize_shutdown();
  EXPECT_TRUE(runtime->finalized());
  EXPECT_EQ(ws.state(), ebb::websocket::LifecycleState::stopped);
  EXPECT_TRUE(executor->stopped());
  EXPECT_TRUE(ws.drain_report().clean());
  EXPECT_EQ(ws.drain_report().sessions_at_start, 3u);
  runtime.reset();  // destructor after finalize: nothing left to do
}

TEST(AttachedRuntime, FinalizeStopsTheExecutorOnlyAfterTheServerHasDrained) {
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(2);
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  wo.close_wait = 20s;  // a session ends when its client answers, not on a timer
  wo.shutdown_timeout = 20s;
  ebb::websocket::Server ws{wo, executor};
  Counter closes_seen_by_executor;
  // Work a callback posts during the WebSocket drain must still run.
  ws.on_close([&, executor](ebb::websocket::Session&, std::uint16_t, std::string_view) {
    EXPECT_TRUE(executor->post([&] { closes_seen_by_executor.add(); }));
  });
  Running r;
  auto runtime = std::make_unique<ebb::websocket::AttachedRuntime>(r.app, ws, executor);
  r.start();
  std::vector<std::unique_ptr<ebb::test::TestClient>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<ebb::test::TestClient>(ws.port()));
    ASSERT_NE(clients.back()->upgrade().find("101"), std::string::npos);
  }
  ASSERT_TRUE(eventually([&] { return ws.session_count() == 5; }));

  // Nothing has stopped the server yet: finalize_shutdown() starts its drain,
  // so a client reads the Close only once finalize_shutdown() has begun, and
  // its session (and on_close) ends only when it answers. An executor stopped
  // before the server would already be stopped here, and refuse the posts.
  // Several threads finalize at once: one does it, the others wait for it.
  std::vector<std::thread> finalizers;
  for (int i = 0; i < 3; ++i) finalizers.emplace_back([&] { runtime->finalize_shutdown(); });
  for (auto& c : clients) {
    auto f = c->read_frame(10s);
    EXPECT_TRUE(f);
    if (!f) continue;  // (no ASSERT: the finalizers must be joined)
    EXPECT_EQ(f->close_code(), 1001);
    EXPECT_FALSE(executor->stopped());  // this session is still open
    c->send_close(1001);
  }
  for (auto& t : finalizers) t.join();
  runtime->finalize_shutdown();
  EXPECT_TRUE(runtime->finalized());
  EXPECT_EQ(ws.state(), ebb::websocket::LifecycleState::stopped);
  EXPECT_TRUE(executor->stopped());
  EXPECT_EQ(closes_seen_by_executor.value(), 5);
  EXPECT_EQ(executor->rejected_count(), 0u);
  runtime.reset();
}

TEST(AttachedRuntime, AShutdownCallbackSetAfterItDoesNotLetUpgradesEscape) {
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo, executor};
  Running r;
  r.app.ws("/ws", ws);
  ebb::websocket::AttachedRuntime runtime{r.app, ws, executor};
  Counter user_callbacks;
  r.app.set_shutdown_callback([&] { user_callbacks.add(); });  // replaces the runtime's
  r.start();
  ebb::test::TestClient client(r.port);
  ASSERT_NE(client.upgrade({}, "/ws").find("101"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return ws.session_count() == 1; }));

  r.app.stop();
  auto close = client.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1001);
  client.send_close(1001);
  r.app.wait();
  runtime.finalize_shutdown();
  EXPECT_EQ(user_callbacks.value(), 1);
  EXPECT_EQ(ws.state(), ebb::websocket::LifecycleState::stopped);
  EXPECT_TRUE(ws.drain_report().clean());
}

TEST(AttachedRuntime, FinalizersRunOnceAfterTheServerAndTheExecutorInOrder) {
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo, executor};
  Running r;
  std::vector<std::string> order;
  {
    ebb::websocket::AttachedRuntime runtime{r.app, ws, executor};
    runtime.add_finalizer("store", [&] {
      EXPECT_EQ(ws.state(), ebb::websocket::LifecycleState::stopped);
      EXPECT_TRUE(executor->stopped());
      order.push_back("store");
    });
    runtime.add_finalizer("boom", [&] {
      order.push_back("boom");
      throw std::runtime_error("finalizer failure");
    });
    runtime.add_finalizer("metrics", [&] { order.push_back("metrics"); });
    runtime.finalize_shutdown();
    runtime.finalize_shutdown();
    EXPECT_THROW(runtime.add_finalizer("late", [] {}), std::logic_error);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"store", "boom", "metrics"}));
}

TEST(AttachedRuntime, DestructorFinalizesAndCallbacksOutliveIt) {
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo, executor};
  Running r;
  { ebb::websocket::AttachedRuntime runtime{r.app, ws, executor}; }
  EXPECT_EQ(ws.state(), ebb::websocket::LifecycleState::stopped);
  EXPECT_TRUE(executor->stopped());
  // The app's callbacks still point at the runtime's shared state: stopping
  // the app now must be harmless.
  r.start();
  r.app.stop();
  r.app.wait();
}

TEST(AttachedRuntime, FinalizeFromAWebSocketCallbackFailsLoudly) {
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo, executor};
  Running r;
  std::atomic<ebb::websocket::AttachedRuntime*> runtime_ptr{nullptr};
  std::atomic<bool> threw{false};
  Counter opened;
  ws.on_open([&](ebb::websocket::Session&) {  // callbacks go in before start
    try {
      runtime_ptr.load()->finalize_shutdown();
    } catch (const std::logic_error&) {
      threw = true;
    }
    opened.add();
  });
  ebb::websocket::AttachedRuntime runtime{r.app, ws, executor};
  runtime_ptr = &runtime;
  ebb::test::TestClient c(ws.port());
  c.upgrade();
  ASSERT_TRUE(opened.wait_for(1));
  EXPECT_TRUE(threw.load());
  EXPECT_FALSE(runtime.finalized());
}

}  // namespace

// ---------------------------------------------------------------- metrics ---

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, ServerAndAppCountWhatHappensAndServeIt) {
  ebb::websocket::WebSocketMetrics metrics;
  ebb::websocket::ServerOptions wo;
  wo.host = "127.0.0.1";
  wo.port = 0;
  ebb::websocket::Server ws{wo};
  ws.set_metrics(metrics);
  ws.on_message([](ebb::websocket::Session& s, std::string_view m) { s.send_text(m); });
  ws.start();
  Running r;
  r.app.metrics("/metrics", metrics);
  r.start();
  {
    ebb::test::TestClient c(ws.port());
    c.upgrade();
    c.send_frame(0x1, "hi");
    ASSERT_TRUE(c.read_frame());
    c.send_close(1000);
    ASSERT_TRUE(c.read_frame());  // the echoed Close
  }
  {
    ebb::test::TestClient bad(ws.port());
    bad.write_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // not an upgrade: 400
    bad.read_head();
  }
  ASSERT_TRUE(eventually([&] { return ws.connection_count() == 0; }));
  RawHttp c(r.port);
  auto resp = c.roundtrip("GET", "/metrics");
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto& t = resp->body;
  EXPECT_TRUE(has_line(t, "ebb_websocket_connections_total 1")) << t;
  EXPECT_TRUE(has_line(t, "ebb_websocket_connections_active 0")) << t;
  EXPECT_TRUE(has_line(t, "ebb_websocket_messages_received_total{kind=\"text\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "ebb_websocket_messages_sent_total{kind=\"text\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "ebb_websocket_closes_total{code=\"1000\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "ebb_websocket_handshakes_failed_total{status=\"400\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "ebb_lifecycle_state{state=\"ready\"} 1")) << t;
  auto again = c.roundtrip("GET", "/metrics");  // the first scrape is counted now
  ASSERT_TRUE(again);
  EXPECT_TRUE(has_line(again->body, "ebb_http_requests_total{method=\"GET\",status=\"200\"} 1"))
      << again->body;
  ws.stop();
  auto after = c.roundtrip("GET", "/metrics");
  ASSERT_TRUE(after);
  EXPECT_TRUE(has_line(after->body, "ebb_lifecycle_state{state=\"stopped\"} 1")) << after->body;
}

std::uint16_t free_port() {
  boost::asio::io_context ctx;
  boost::asio::ip::tcp::acceptor a(ctx, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

TEST(Metrics, StandaloneExporterServesAndStops) {
  ebb::websocket::WebSocketMetrics metrics;
  metrics.connections_total.inc(7);
  const auto port = free_port();
  std::jthread exporter([&](std::stop_token st) {
    ebb::websocket::run_metrics_http_exporter(metrics, "127.0.0.1", port, st);
  });
  std::optional<ebb::test::RawResponse> resp;
  ASSERT_TRUE(eventually([&] {
    RawHttp c(port);
    if (!c.connected()) return false;
    resp = c.roundtrip("GET", "/metrics");
    return resp.has_value();
  }));
  EXPECT_TRUE(has_line(resp->body, "ebb_websocket_connections_total 7")) << resp->body;
  exporter.request_stop();
  exporter.join();  // returns: the exporter drained and stopped
  EXPECT_FALSE(RawHttp(port).connected());
}

}  // namespace

namespace {
TEST(App, ListenOnABusyPortThrowsAndLeavesNothingBehind) {
  Running first;
  first.start();
  ebb::App second{test_options()};
  EXPECT_THROW(second.listen(first.port), std::system_error);
  second.stop();  // no threads ran: nothing to drain, nothing leaks (ASan)
  second.wait();
  EXPECT_EQ(second.state(), ebb::AppState::stopped);
}
}  // namespace
