// WebSocketMetrics fed by a running server: each family moves when its event happens.
#include <gtest/gtest.h>

#include <atomic>
#include <ebb.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "unit/http/raw_http.hpp"
#include "unit/support/manual_clock.hpp"
#include "unit/support/wait.hpp"
#include "unit/websocket/test_client.hpp"

namespace {

using ebb::test::Counter;
using ebb::test::eventually;
using ebb::test::RawHttp;
using ebb::test::TestClient;
using ebb::websocket::Server;
using ebb::websocket::ServerOptions;
using ebb::websocket::Session;
using ebb::websocket::SessionPtr;
using ebb::websocket::WebSocketMetrics;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

ServerOptions options() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.ping_interval = 0ms;
  return o;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

std::uint64_t errors_of(const WebSocketMetrics& m, WebSocketMetrics::ErrorKind kind) {
  return m.errors.at({static_cast<std::size_t>(kind)}).value();
}

std::uint64_t all_errors(const WebSocketMetrics& m) {
  std::uint64_t sum = 0;
  for (std::size_t k = 0; k < WebSocketMetrics::error_kinds.size(); ++k)
    sum += m.errors.at({k}).value();
  return sum;
}

std::uint64_t closes_of(const WebSocketMetrics& m, int code) {
  return m.closes.at({m.closes.labels()[0].index_of(code)}).value();
}

using ebb::test::ManualClock;

// A server reporting into `metrics` that keeps the last session opened.
// Handlers go in before start(). The metrics outlive the server.
struct Live {
  explicit Live(ServerOptions o = options()) : ws(std::move(o)) {
    ws.set_metrics(metrics);
    ws.on_open([this](Session& s) {
      {
        std::lock_guard lock(mutex);
        last = s.shared_from_this();
      }
      opened.add();
    });
  }
  SessionPtr session() {
    std::lock_guard lock(mutex);
    return last;
  }
  WebSocketMetrics metrics;
  Counter opened;
  std::mutex mutex;
  SessionPtr last;
  Server ws;
};

TEST(LiveMetrics, PayloadBytesAreCountedInAndOut) {
  Live live;
  // The answer is one byte longer than the request: a swap of the two
  // counters would show.
  live.ws.on_message([](Session& s, std::string_view m) { s.send_text(std::string(m) + "!"); });
  live.ws.start();
  TestClient c(live.ws.port());
  c.upgrade();
  c.send_text("hello");
  auto first = c.read_frame();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->payload, "hello!");
  c.send_text("1234567");
  ASSERT_TRUE(c.read_frame());
  const auto& m = live.metrics;
  EXPECT_EQ(m.received_bytes.value(), 12u);
  EXPECT_EQ(m.sent_bytes.value(), 14u);
  EXPECT_EQ(m.messages_received.at({0}).value(), 2u);  // kind="text"
  EXPECT_EQ(m.messages_sent.at({0}).value(), 2u);
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "ebb_websocket_received_bytes_total 12")) << text;
  EXPECT_TRUE(has_line(text, "ebb_websocket_sent_bytes_total 14")) << text;
}

TEST(LiveMetrics, AnUnmaskedFrameCountsOneProtocolError) {
  Live live;
  live.ws.on_message([](Session&, std::string_view) {});
  live.ws.start();
  TestClient c(live.ws.port());
  c.upgrade();
  ASSERT_TRUE(live.opened.wait_for(1));
  EXPECT_EQ(all_errors(live.metrics), 0u);
  c.send_frame(0x1, "x", true, /*masked=*/false);  // RFC 6455 §5.1: clients must mask
  auto close = c.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1002);
  // Our FIN ends it (the server discards input after a protocol error): no
  // close-wait timeout to count as well.
  c.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send);
  ASSERT_TRUE(eventually([&] { return live.ws.connection_count() == 0; }));
  EXPECT_EQ(errors_of(live.metrics, WebSocketMetrics::ErrorKind::protocol), 1u);
  EXPECT_EQ(all_errors(live.metrics), 1u);  // no other kind moved
  auto text = live.metrics.render();
  EXPECT_TRUE(has_line(text, "ebb_errors_total{kind=\"protocol\"} 1")) << text;
}

TEST(LiveMetrics, AClientThatStopsReadingIsCountedAsASlowConsumerClose) {
  auto o = options();
  o.max_send_queue = 64 * 1024;
  o.close_wait = 200ms;  // the client never answers the Close either
  Live live(o);
  live.ws.start();
  TestClient c(live.ws.port());  // never reads after the upgrade
  c.upgrade();
  ASSERT_TRUE(live.opened.wait_for(1));
  auto s = live.session();
  const std::string chunk(16 * 1024, 'x');
  // The socket buffers fill, then the send queue passes its cap.
  auto status = ebb::websocket::SendStatus::sent;
  for (int i = 0; i < 20000; ++i) {
    status = s->send_text(chunk);
    if (status == ebb::websocket::SendStatus::dropped ||
        status == ebb::websocket::SendStatus::closing)
      break;
  }
  ASSERT_TRUE(status == ebb::websocket::SendStatus::dropped ||
              status == ebb::websocket::SendStatus::closing);
  ASSERT_TRUE(eventually([&] { return live.ws.connection_count() == 0; }));
  EXPECT_EQ(live.metrics.slow_consumer_closes.value(), 1u);
  EXPECT_EQ(errors_of(live.metrics, WebSocketMetrics::ErrorKind::slow_consumer), 1u);
  EXPECT_EQ(closes_of(live.metrics, 1008), 1u);  // slow_consumer_close_code
}

TEST(LiveMetrics, TheRoomsGaugeFollowsJoinsAndLeaves) {
  Live live;
  live.ws.start();
  TestClient c(live.ws.port());
  c.upgrade();
  ASSERT_TRUE(live.opened.wait_for(1));
  auto s = live.session();
  auto& rooms = live.metrics.rooms;
  EXPECT_EQ(rooms.value(), 0.0);
  live.ws.join_room(s, "a");
  EXPECT_EQ(rooms.value(), 1.0);
  live.ws.join_room(s, "b");
  live.ws.join_room(s, "a");  // already a member: no new room
  EXPECT_EQ(rooms.value(), 2.0);
  live.ws.leave_room(s, "a");
  EXPECT_EQ(rooms.value(), 1.0);
  live.ws.leave_room(s, "b");
  EXPECT_EQ(rooms.value(), 0.0);
}

// A server with the long-polling bridge, mounted on an app, all reporting to
// `metrics`. Set callbacks on `ws`, then start(): it returns a client of the app.
struct LongPollLive {
  LongPollLive() {
    ws.set_metrics(metrics);
    ws.attach_long_polling_bridge(&bridge);
  }
  RawHttp& start() {
    ws.start();
    bridge.mount(app, "/lp");
    return http.emplace(app.listen(0));
  }
  static ebb::AppOptions app_options() {
    ebb::AppOptions o;
    o.host = "127.0.0.1";
    return o;
  }
  WebSocketMetrics metrics;  // outlives the bridge, the server and the app
  ebb::websocket::LongPollingBridge bridge{&metrics, 60s, 16};
  Server ws{options()};
  ebb::App app{app_options()};
  std::optional<RawHttp> http;
};

TEST(LiveMetrics, TheLongPollGaugeFollowsOpensAndCloses) {
  LongPollLive live;
  auto& metrics = live.metrics;
  RawHttp& http = live.start();
  auto open = [&] {
    auto r = http.roundtrip("POST", "/lp/open");
    EXPECT_TRUE(r && r->status == 200);
    return r ? std::string(boost::json::parse(r->body).at("sid").as_string()) : std::string();
  };
  EXPECT_EQ(metrics.longpoll_sessions_active.value(), 0.0);
  auto first = open();
  EXPECT_EQ(metrics.longpoll_sessions_active.value(), 1.0);
  open();
  EXPECT_EQ(metrics.longpoll_sessions_active.value(), 2.0);
  EXPECT_EQ(metrics.longpoll_sessions_opened.value(), 2u);
  auto close = http.roundtrip("POST", "/lp/close?sid=" + first);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->status, 204);
  EXPECT_EQ(metrics.longpoll_sessions_active.value(), 1.0);
  EXPECT_EQ(metrics.longpoll_sessions_opened.value(), 2u);
  auto text = metrics.render();
  EXPECT_TRUE(has_line(text, "ebb_longpoll_sessions_active 1")) << text;
}

// A long-poll session is one more session to the metrics too: its rooms
// count, and every message queued for it counts as sent exactly once,
// whether sent to it directly or broadcast.
TEST(LiveMetrics, LongPollSessionsCountTheirRoomsAndEveryMessageSentOnce) {
  LongPollLive live;
  auto& metrics = live.metrics;
  auto& ws = live.ws;
  std::mutex m;
  std::shared_ptr<Session> lp;
  ws.on_open([&](Session& s) {
    std::lock_guard l(m);
    lp = s.shared_from_this();
  });
  RawHttp& http = live.start();
  auto r = http.roundtrip("POST", "/lp/open");
  ASSERT_TRUE(r && r->status == 200);
  std::shared_ptr<Session> s;
  // on_open runs on I/O thread 0, posted: it may trail the HTTP answer.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard l(m);
    s = lp;
    return s != nullptr;
  }));
  ws.join_room(s, "lp-only");
  EXPECT_EQ(metrics.rooms.value(), 1.0);  // a room with only a long-poll member
  s->send_text("hello");                  // direct: 5 bytes
  ws.broadcast_text_to_room("lp-only", "abc");
  ws.broadcast_text("xy");
  EXPECT_EQ(metrics.messages_sent.at({0}).value(), 3u);
  EXPECT_EQ(metrics.sent_bytes.value(), 10u);
  ws.leave_room(s, "lp-only");
  EXPECT_EQ(metrics.rooms.value(), 0.0);
}

// Measured on the injected clock, so the duration is exact.
TEST(LiveMetrics, AStopRecordsHowLongTheDrainTook) {
  ManualClock clock;
  auto o = options();
  o.close_wait = 60s;  // only the client's Close ends its session
  o.shutdown_timeout = 60s;
  o.clock = clock.source();
  Live live(o);
  live.ws.start();
  TestClient c(live.ws.port());
  c.upgrade();
  ASSERT_TRUE(live.opened.wait_for(1));
  live.ws.stop_async();
  auto close = c.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1001);
  EXPECT_EQ(live.metrics.drain_duration_seconds.value(), 0.0);  // not over yet
  clock.advance(2500ms);
  c.send_close(1001);
  live.ws.stop();
  EXPECT_EQ(live.metrics.drain_duration_seconds.value(), 2.5);
  EXPECT_EQ(live.metrics.drain_sessions_closed_cleanly.value(), 1u);
  EXPECT_EQ(live.metrics.drain_sessions_forced.value(), 0u);
}

TEST(LiveMetrics, ASessionCutAtTheDrainDeadlineIsCountedForced) {
  ManualClock clock;
  auto o = options();
  o.close_wait = 60s;  // only the deadline can end the silent peer
  o.shutdown_timeout = 5s;
  o.clock = clock.source();
  Live live(o);
  live.ws.start();
  TestClient good(live.ws.port()), silent(live.ws.port());
  good.upgrade();
  silent.upgrade();
  ASSERT_TRUE(live.opened.wait_for(2));
  live.ws.stop_async();
  for (TestClient* c : {&good, &silent}) {
    auto close = c->read_frame();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1001);
  }
  good.send_close(1001);
  ASSERT_TRUE(eventually([&] { return live.ws.connection_count() == 1; }));
  EXPECT_EQ(live.metrics.drain_sessions_forced.value(), 0u);
  clock.advance(5s);  // the deadline: the next drain tick forces `silent`
  ASSERT_TRUE(eventually([&] { return live.ws.connection_count() == 0; }));
  live.ws.stop();
  EXPECT_EQ(live.metrics.drain_sessions_forced.value(), 1u);
  EXPECT_EQ(live.metrics.drain_sessions_closed_cleanly.value(), 1u);
  EXPECT_EQ(live.metrics.drain_duration_seconds.value(), 5.0);
}

}  // namespace
