// ReliableRooms (sequenced rooms, exact resume) and the long-polling bridge,
// over real sockets and a real SQLite file.
#include <gtest/gtest.h>

#include <ebb.hpp>
#include <filesystem>
#include <random>
#include <thread>

#include "unit/http/raw_http.hpp"
#include "unit/support/wait.hpp"
#include "unit/websocket/test_client.hpp"
#include "websocket/long_polling_impl.hpp"

namespace {

using ebb::test::Counter;
using ebb::test::eventually;
using ebb::test::RawHttp;
using ebb::test::TestClient;
using namespace std::chrono_literals;
namespace json = boost::json;

std::filesystem::path temp_db(const char* name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("ebb_resume_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir / "messages.db";
}

ebb::websocket::ServerOptions server_options() {
  ebb::websocket::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = 2;
  o.shutdown_timeout = 5s;
  return o;
}

// A server whose typed messages go to ReliableRooms.
struct RoomServer {
  RoomServer(ebb::websocket::MessageStore& store,
             ebb::websocket::ServerOptions o = server_options())
      : executor(std::make_shared<ebb::executor::RuntimeExecutor>(2)),
        ws(std::move(o), executor),
        rooms(ws, store) {
    ws.on_typed_message([this](ebb::websocket::Session& s, const std::string& type,
                               const ebb::json::kvs& payload) { rooms.handle(s, type, payload); });
  }
  ~RoomServer() {
    ws.stop();
    executor->stop();
  }
  std::shared_ptr<ebb::executor::RuntimeExecutor> executor;
  ebb::websocket::Server ws;
  ebb::websocket::ReliableRooms rooms;
};

std::string typed(std::string_view type, json::object payload) {
  return json::serialize(json::object{{"type", type}, {"payload", std::move(payload)}});
}

// Reads typed messages until `done` says stop; returns false on timeout.
template <class F>
bool read_typed(TestClient& c, F&& on_message, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto f = c.read_frame(1s);
    if (!f) continue;
    if (f->opcode != 0x1) return false;
    auto v = json::parse(f->payload).as_object();
    if (on_message(std::string(v["type"].as_string()), v["payload"].as_object())) return true;
  }
  return false;
}

TEST(ReliableRooms, JoinWithoutPositionGetsHistoryThenLive) {
  auto path = temp_db("history");
  ebb::websocket::SqliteMessageStore store(path.string());
  RoomServer srv(store);
  srv.ws.start();
  for (int i = 1; i <= 60; ++i) srv.rooms.publish("general", json::object{{"n", i}});
  store.flush();
  TestClient c(srv.ws.port());
  c.upgrade();
  c.send_frame(0x1, typed("room.join", {{"room", "general"}}));
  std::vector<std::uint64_t> seqs;
  ASSERT_TRUE(read_typed(c, [&](const std::string& type, json::object& p) {
    if (type == "room.message") seqs.push_back(p["seq"].to_number<std::uint64_t>());
    return type == "room.joined";
  }));
  ASSERT_EQ(seqs.size(), 50u);  // history_on_join
  EXPECT_EQ(seqs.front(), 11u);
  EXPECT_EQ(seqs.back(), 60u);
  srv.rooms.publish("general", json::object{{"n", 61}});
  ASSERT_TRUE(read_typed(c, [&](const std::string& type, json::object& p) {
    return type == "room.message" && p["seq"].to_number<std::uint64_t>() == 61 &&
           p["body"].at("n").as_int64() == 61;
  }));
}

// The seam: clients join at arbitrary points while a publisher writes; each
// sees every message after its position exactly once, in order.
TEST(ReliableRooms, ResumeSeamHasNoGapAndNoDuplicateUnderConcurrentPublishing) {
  auto path = temp_db("seam");
  ebb::websocket::SqliteMessageStore store(path.string());
  RoomServer srv(store);
  srv.ws.start();
  constexpr int total = 2000;
  std::atomic<int> published{0};
  std::thread publisher([&] {
    for (int i = 1; i <= total; ++i) {
      srv.rooms.publish("seam", json::object{{"n", i}});
      published = i;
      if (i % 50 == 0) std::this_thread::sleep_for(1ms);  // spread over time
    }
  });
  std::mt19937 rng(42);
  constexpr int clients = 8;
  std::vector<std::thread> joiners;
  std::atomic<int> failures{0};
  for (int k = 0; k < clients; ++k) {
    // Wait until some messages exist, then join from a random earlier point.
    ASSERT_TRUE(eventually([&] { return published.load() >= (k + 1) * total / (clients + 1); }));
    // A position the client could have seen: at most what was broadcast
    // (publish() only queues; the seq exists once committed).
    std::uint64_t after = rng() % (srv.rooms.last_seq("seam") + 1);
    joiners.emplace_back([&, after] {
      TestClient c(srv.ws.port());
      c.upgrade();
      c.send_frame(0x1, typed("room.join", {{"room", "seam"}, {"after", after}}));
      std::uint64_t expected = after + 1;
      bool ok = read_typed(
          c,
          [&](const std::string& type, json::object& p) {
            if (type != "room.message") return false;
            auto seq = p["seq"].to_number<std::uint64_t>();
            if (seq != expected) {
              ADD_FAILURE() << "after " << after << ": got seq " << seq << ", expected "
                            << expected;
              failures++;
              return true;
            }
            ++expected;
            return seq == total;
          },
          60s);
      if (!ok) {
        ADD_FAILURE() << "after " << after << ": stopped at " << expected;
        failures++;
      }
    });
  }
  publisher.join();
  for (auto& t : joiners) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ReliableRooms, PublishIsAckedAndBadInputIsNacked) {
  auto path = temp_db("ack");
  ebb::websocket::SqliteMessageStore store(path.string());
  RoomServer srv(store);
  srv.ws.start();
  TestClient c(srv.ws.port());
  c.upgrade();
  c.send_frame(0x1, typed("room.join", {{"room", "r"}, {"after", 0}}));
  ASSERT_TRUE(
      read_typed(c, [](const std::string& t, json::object&) { return t == "room.joined"; }));
  c.send_frame(0x1,
               typed("room.publish", {{"room", "r"}, {"id", "m1"}, {"body", {{"text", "hi"}}}}));
  bool got_message = false;
  ASSERT_TRUE(read_typed(c, [&](const std::string& t, json::object& p) {
    if (t == "room.message") {
      got_message = true;
      EXPECT_EQ(p["id"].as_string(), "m1");
      EXPECT_EQ(p["body"].at("text").as_string(), "hi");
    }
    if (t != "room.ack") return false;
    EXPECT_EQ(p["id"].as_string(), "m1");
    EXPECT_EQ(p["seq"].to_number<std::uint64_t>(), 1u);
    return true;
  }));
  EXPECT_TRUE(got_message);  // the broadcast comes before the ack
  c.send_frame(0x1, typed("room.publish", {{"room", ""}, {"id", "m2"}}));
  ASSERT_TRUE(read_typed(c, [](const std::string& t, json::object& p) {
    return t == "room.nack" && p["id"].as_string() == "m2";
  }));
  c.send_frame(0x1, typed("room.join", {{"after", 3}}));
  ASSERT_TRUE(read_typed(c, [](const std::string& t, json::object&) { return t == "error"; }));
}

TEST(ReliableRooms, APublishResentWithTheSameIdIsStoredOnce) {
  auto path = temp_db("dedupe");
  ebb::websocket::SqliteMessageStore store(path.string());
  RoomServer srv(store);
  srv.ws.start();
  TestClient c(srv.ws.port());
  c.upgrade();
  // Back to back: the second copy arrives while the first may still be in flight.
  for (int i = 0; i < 2; ++i)
    c.send_frame(0x1, typed("room.publish", {{"room", "d"}, {"id", "same"}, {"body", "x"}}));
  std::vector<std::uint64_t> acks;
  ASSERT_TRUE(read_typed(c, [&](const std::string& t, json::object& p) {
    if (t == "room.ack") acks.push_back(p["seq"].to_number<std::uint64_t>());
    return acks.size() == 2;
  }));
  EXPECT_EQ(acks, (std::vector<std::uint64_t>{1, 1}));
  // Later, too (the id is remembered).
  c.send_frame(0x1, typed("room.publish", {{"room", "d"}, {"id", "same"}, {"body", "x"}}));
  ASSERT_TRUE(read_typed(c, [&](const std::string& t, json::object& p) {
    return t == "room.ack" && p["seq"].to_number<std::uint64_t>() == 1;
  }));
  store.flush();
  EXPECT_EQ(store.last_seq("d"), 1u);
}

TEST(ReliableRooms, ResumeAfterARestartOnTheSameStore) {
  auto path = temp_db("restart");
  {
    ebb::websocket::SqliteMessageStore store(path.string());
    RoomServer srv(store);
    srv.ws.start();
    for (int i = 1; i <= 30; ++i) srv.rooms.publish("r", json::object{{"n", i}});
    store.flush();
  }
  ebb::websocket::SqliteMessageStore store(path.string());
  RoomServer srv(store);
  srv.ws.start();
  EXPECT_EQ(srv.rooms.last_seq("r"), 30u);
  TestClient c(srv.ws.port());
  c.upgrade();
  c.send_frame(0x1, typed("room.resume", {{"rooms", {{"r", 25}}}}));
  std::vector<std::uint64_t> seqs;
  ASSERT_TRUE(read_typed(c, [&](const std::string& t, json::object& p) {
    if (t == "room.message") seqs.push_back(p["seq"].to_number<std::uint64_t>());
    return t == "room.joined";
  }));
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{26, 27, 28, 29, 30}));
}

// ------------------------------------------------------------ long-polling ---

json::object body_json(const std::optional<ebb::test::RawResponse>& r) {
  return json::parse(r->body).as_object();
}

// The store a long-polling test runs on: a fresh SQLite file per test.
struct LpStore {
  explicit LpStore(const char* name) : path(temp_db(name)), store(path.string()) {}
  std::filesystem::path path;
  ebb::websocket::SqliteMessageStore store;
};

// One long-polling test's setup: its store, a RoomServer with the bridge,
// the bridge mounted on a listening app, and a raw HTTP client on it.
// Declaration order is destruction order reversed: the store and counters
// outlive the server whose callbacks use them; the bridge outlives server
// and app. `outer_metrics`: the bridge reports there instead (to read what
// it counts when it is destroyed).
struct LpTest : LpStore {
  explicit LpTest(const char* db, std::size_t capacity = 256, std::chrono::seconds ttl = 60s,
                  std::chrono::milliseconds poll_timeout = 1500ms,
                  ebb::websocket::WebSocketMetrics* outer_metrics = nullptr)
      : LpStore(db),
        bridge(outer_metrics ? outer_metrics : &metrics, ttl, capacity, poll_timeout),
        srv(store,
            [] {
              auto o = server_options();
              o.shutdown_notice =
                  R"({"type":"server.shutdown","payload":{"reconnect_ms":{reconnect_ms}}})";
              return o;
            }()),
        port(start()) {}
  // Runs while `port` is initialised: everything declared before it exists.
  std::uint16_t start() {
    srv.ws.attach_long_polling_bridge(&bridge);
    srv.ws.on_open([this](ebb::websocket::Session&) { opened.add(); });
    srv.ws.on_close([this](ebb::websocket::Session&, std::uint16_t code, std::string_view) {
      last_close = code;
      closed.add();
    });
    srv.ws.start();
    bridge.mount(app, "/lp");
    return app.listen(0);
  }
  static ebb::AppOptions app_options() {
    ebb::AppOptions o;
    o.host = "127.0.0.1";
    return o;
  }
  /// POST /lp/open: the new session's id.
  std::string open_session() {
    return std::string(body_json(http.roundtrip("POST", "/lp/open"))["sid"].as_string());
  }
  ebb::websocket::WebSocketMetrics metrics;
  Counter opened, closed;
  std::atomic<int> last_close{0};
  ebb::websocket::LongPollingBridge bridge;
  RoomServer srv;
  ebb::App app{app_options()};
  std::uint16_t port;
  RawHttp http{port};
};

TEST(LongPolling, ALongPollClientIsOneMoreSession) {
  LpTest f("lp");
  auto open = f.http.roundtrip("POST", "/lp/open");
  ASSERT_TRUE(open);
  ASSERT_EQ(open->status, 200);
  std::string sid(body_json(open)["sid"].as_string());
  EXPECT_EQ(sid.size(), 32u);
  ASSERT_TRUE(f.opened.wait_for(1));

  // Join a room over long-polling; a WebSocket client publishes into it.
  auto send = f.http.roundtrip("POST", "/lp/send?sid=" + sid, {},
                               typed("room.join", {{"room", "mixed"}, {"after", 0}}));
  ASSERT_TRUE(send);
  EXPECT_EQ(send->status, 204);
  std::uint64_t next = 0;
  std::vector<std::string> got;
  auto poll_until = [&](auto pred) {
    return eventually(
        [&] {
          auto r = f.http.roundtrip("GET", "/lp/poll?sid=" + sid + "&ack=" + std::to_string(next));
          if (!r || r->status != 200) return false;
          auto b = body_json(r);
          for (auto& m : b["messages"].as_array()) got.emplace_back(m.as_string());
          next = b["next"].to_number<std::uint64_t>();
          return pred();
        },
        10s);
  };
  ASSERT_TRUE(poll_until(
      [&] { return !got.empty() && got.back().find("room.joined") != std::string::npos; }));
  TestClient ws_client(f.srv.ws.port());
  ws_client.upgrade();
  ws_client.send_frame(0x1, typed("room.publish", {{"room", "mixed"}, {"body", "from ws"}}));
  got.clear();
  ASSERT_TRUE(poll_until([&] {
    for (auto& m : got)
      if (m.find("from ws") != std::string::npos) return true;
    return false;
  }));
  // And the other way: the long-poll client publishes, the WebSocket one joins and sees it.
  ASSERT_EQ(f.http
                .roundtrip("POST", "/lp/send?sid=" + sid, {},
                           typed("room.publish", {{"room", "mixed"}, {"body", "from lp"}}))
                ->status,
            204);
  ws_client.send_frame(0x1, typed("room.join", {{"room", "mixed"}, {"after", 1}}));
  ASSERT_TRUE(read_typed(ws_client, [](const std::string& t, json::object& p) {
    return t == "room.message" && p["body"] == "from lp";
  }));
  // The join replays before it adds the session to the live room.
  EXPECT_TRUE(eventually([&] { return f.srv.ws.room_size("mixed") == 2u; }));

  auto close = f.http.roundtrip("POST", "/lp/close?sid=" + sid);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->status, 204);
  ASSERT_TRUE(f.closed.wait_for(1));
  EXPECT_EQ(f.last_close.load(), 1000);
  EXPECT_EQ(f.http.roundtrip("GET", "/lp/poll?sid=" + sid)->status, 404);
  EXPECT_EQ(f.http.roundtrip("GET", "/lp/poll?sid=0123")->status, 404);
}

TEST(LongPolling, UnacknowledgedMessagesAreSentAgainAndOverflowClosesWith1008) {
  LpTest f("lp_ack", /*capacity=*/4);
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  f.srv.ws.broadcast_text("one");
  f.srv.ws.broadcast_text("two");
  auto first = body_json(f.http.roundtrip("GET", "/lp/poll?sid=" + sid + "&ack=0"));
  ASSERT_EQ(first["messages"].as_array().size(), 2u);
  // The answer was "lost": polling again without acknowledging resends it.
  auto again = body_json(f.http.roundtrip("GET", "/lp/poll?sid=" + sid + "&ack=0"));
  EXPECT_EQ(again["messages"].as_array().size(), 2u);
  // Five more: the buffer (4, the two unacknowledged included) overflows at
  // the third. Acknowledged ones go; what fitted is still delivered.
  for (int i = 0; i < 5; ++i) f.srv.ws.broadcast_text("m" + std::to_string(i));
  auto after = body_json(f.http.roundtrip("GET", "/lp/poll?sid=" + sid + "&ack=2"));
  ASSERT_EQ(after["messages"].as_array().size(), 2u);
  EXPECT_EQ(after["messages"].as_array()[1].as_string(), "m1");
  ASSERT_TRUE(after["closed"].is_object());
  EXPECT_EQ(after["closed"].at("code").as_int64(), 1008);
  ASSERT_TRUE(f.closed.wait_for(1));
  EXPECT_EQ(f.last_close.load(), 1008);
}

TEST(LongPolling, HeldPollIsAnsweredAtOnceByTheDrain) {
  LpTest f("lp_drain");
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  f.http.send(f.http.request("GET", "/lp/poll?sid=" + sid + "&ack=0"));  // held: nothing buffered
  ASSERT_TRUE(eventually([&] { return f.app.in_flight() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  f.srv.ws.stop_async();
  auto resp = f.http.read_response();
  ASSERT_TRUE(resp);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);  // not the 1.5 s poll timeout
  auto b = body_json(resp);
  ASSERT_EQ(b["messages"].as_array().size(), 1u);
  EXPECT_NE(std::string(b["messages"].as_array()[0].as_string()).find("server.shutdown"),
            std::string::npos);
  EXPECT_EQ(b["closed"].at("code").as_int64(), 1001);
  EXPECT_TRUE(b["closed"].as_object().contains("reconnect_ms"));
  ASSERT_TRUE(f.closed.wait_for(1));
  EXPECT_EQ(f.last_close.load(), 1001);
  // New long-poll sessions are refused while the server drains.
  EXPECT_EQ(RawHttp(f.port).roundtrip("POST", "/lp/open")->status, 503);
}

TEST(LongPolling, AnIdleSessionExpires) {
  LpTest f("lp_ttl", 256, /*ttl=*/1s);
  std::string sid = f.open_session();
  ASSERT_TRUE(f.closed.wait_for(1, 5s));
  EXPECT_EQ(f.last_close.load(), 1006);
  EXPECT_TRUE(eventually([&] { return f.bridge.session_count() == 0; }));
}

// A held poll is answered by the message that arrives, not by its timeout:
// the read's deadline is far below the 20 s poll timeout.
TEST(LongPolling, AHeldPollIsAnsweredWhenAMessageArrives) {
  LpTest f("lp_wake", 256, 60s, /*poll_timeout=*/20s);
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  auto session = f.bridge.impl()->find(sid);
  ASSERT_TRUE(session);
  f.http.send(f.http.request("GET", "/lp/poll?sid=" + sid + "&ack=0"));
  ASSERT_TRUE(eventually([&] { return session->holds_poll(); }));  // held, not yet answered
  f.srv.ws.broadcast_text("wake up");
  auto resp = f.http.read_response(false, 5s);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->status, 200);
  auto b = body_json(resp);
  ASSERT_EQ(b["messages"].as_array().size(), 1u);
  EXPECT_EQ(b["messages"].as_array()[0].as_string(), "wake up");
  EXPECT_EQ(b["next"].to_number<std::uint64_t>(), 1u);
  EXPECT_TRUE(b["closed"].is_null());
}

TEST(LongPolling, AHeldPollWithNothingToSayIsAnsweredEmptyAtItsTimeout) {
  LpTest f("lp_timeout");  // poll timeout 1.5 s
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  f.http.send(f.http.request("GET", "/lp/poll?sid=" + sid + "&ack=0"));
  auto resp = f.http.read_response(false, 10s);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->status, 200);
  auto b = body_json(resp);
  EXPECT_TRUE(b["messages"].as_array().empty());
  EXPECT_EQ(b["next"].to_number<std::uint64_t>(), 0u);
  EXPECT_TRUE(b["closed"].is_null());
  // Still open: the timeout only ends the poll.
  EXPECT_EQ(f.bridge.session_count(), 1u);
  EXPECT_EQ(f.closed.value(), 0);
}

TEST(LongPolling, SessionIdsAreDistinct32DigitLowercaseHex) {
  LpTest f("lp_sids");
  constexpr std::size_t n = 100;
  std::vector<std::string> sids;
  for (std::size_t i = 0; i < n; ++i) {
    auto open = f.http.roundtrip("POST", "/lp/open");
    ASSERT_TRUE(open);
    ASSERT_EQ(open->status, 200);
    std::string sid(body_json(open)["sid"].as_string());
    EXPECT_EQ(sid.size(), 32u) << sid;
    EXPECT_TRUE(std::all_of(sid.begin(), sid.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    })) << sid;
    sids.push_back(std::move(sid));
  }
  std::sort(sids.begin(), sids.end());
  EXPECT_EQ(std::adjacent_find(sids.begin(), sids.end()), sids.end());
  EXPECT_EQ(f.bridge.session_count(), n);
}

// A client between two polls when the drain starts: its next poll collects
// what was buffered, the notice, then the close; nothing is counted dropped.
TEST(LongPolling, MessagesBufferedBeforeTheDrainComeWithTheClosingAnswer) {
  LpTest f("lp_drain_buffered");
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  for (const char* m : {"a", "b", "c"}) f.srv.ws.broadcast_text(m);  // buffered, not polled
  f.srv.ws.stop_async();
  ASSERT_TRUE(f.closed.wait_for(1));  // the drain closed the session
  EXPECT_EQ(f.last_close.load(), 1001);
  auto resp = f.http.roundtrip("GET", "/lp/poll?sid=" + sid + "&ack=0");
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->status, 200);
  auto b = body_json(resp);
  auto& messages = b["messages"].as_array();
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[0].as_string(), "a");
  EXPECT_EQ(messages[1].as_string(), "b");
  EXPECT_EQ(messages[2].as_string(), "c");
  EXPECT_NE(std::string(messages[3].as_string()).find("server.shutdown"), std::string::npos);
  ASSERT_TRUE(b["closed"].is_object());
  EXPECT_EQ(b["closed"].at("code").as_int64(), 1001);
  EXPECT_TRUE(b["closed"].as_object().contains("reconnect_ms"));
  // The closing answer carried everything: the session leaves, nothing dropped.
  ASSERT_TRUE(eventually([&] { return f.bridge.session_count() == 0; }));
  EXPECT_EQ(f.metrics.longpoll_messages_dropped.value(), 0u);
}

// Counted exactly: the three messages no poll collected, not the one an
// answer carried without an ack.
TEST(LongPolling, MessagesNoPollCollectedAreCountedDroppedWhenTheSessionExpires) {
  LpTest f("lp_ttl_dropped", 256, /*ttl=*/2s);
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  f.srv.ws.broadcast_text("carried");
  auto first = body_json(f.http.roundtrip("GET", "/lp/poll?sid=" + sid + "&ack=0"));
  ASSERT_EQ(first["messages"].as_array().size(), 1u);
  for (const char* m : {"x", "y", "z"}) f.srv.ws.broadcast_text(m);
  ASSERT_EQ(f.metrics.longpoll_messages_buffered.value(), 4u);  // all before the expiry
  ASSERT_TRUE(f.closed.wait_for(1, 10s));
  EXPECT_EQ(f.last_close.load(), 1006);
  ASSERT_TRUE(eventually([&] { return f.bridge.session_count() == 0; }));
  EXPECT_EQ(f.metrics.longpoll_messages_dropped.value(), 3u);
  EXPECT_EQ(f.metrics.longpoll_sessions_active.value(), 0.0);
}

TEST(LongPolling, ClosingASessionWithUnpolledMessagesCountsThemDropped) {
  LpTest f("lp_close_dropped");
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  f.srv.ws.broadcast_text("one");
  f.srv.ws.broadcast_text("two");
  auto close = f.http.roundtrip("POST", "/lp/close?sid=" + sid);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->status, 204);
  EXPECT_EQ(f.metrics.longpoll_messages_dropped.value(), 2u);
}

// `ack` confirms only what an answer carried: a larger one (a buggy or stale
// client) must not discard messages that were never sent.
TEST(LongPolling, AnAckBeyondWhatWasSentDropsNothing) {
  LpTest f("lp_ack_clamp");
  std::string sid = f.open_session();
  ASSERT_TRUE(f.opened.wait_for(1));
  f.srv.ws.broadcast_text("one");
  f.srv.ws.broadcast_text("two");
  auto b = body_json(f.http.roundtrip("GET", "/lp/poll?sid=" + sid + "&ack=5"));
  ASSERT_EQ(b["messages"].as_array().size(), 2u);
  EXPECT_EQ(b["messages"].as_array()[0].as_string(), "one");
  EXPECT_EQ(b["next"].to_number<std::uint64_t>(), 2u);
}

// The drained client never polls again (its next poll could not reach a
// draining app): what it never collected is counted when the bridge goes.
TEST(LongPolling, MessagesLeftWhenTheBridgeIsDestroyedAreCountedDropped) {
  ebb::websocket::WebSocketMetrics metrics;  // outlives the bridge
  {
    LpTest f("lp_bridge_dropped", 256, 60s, 1500ms, &metrics);
    std::string sid = f.open_session();
    ASSERT_TRUE(f.opened.wait_for(1));
    for (const char* m : {"a", "b", "c"}) f.srv.ws.broadcast_text(m);
    f.srv.ws.stop();  // the notice joins them; the session waits for a poll
    EXPECT_EQ(metrics.longpoll_messages_dropped.value(), 0u);
    EXPECT_EQ(f.bridge.session_count(), 1u);
  }
  EXPECT_EQ(metrics.longpoll_messages_dropped.value(), 4u);  // a, b, c and the notice
  EXPECT_EQ(metrics.longpoll_sessions_active.value(), 0.0);
}

}  // namespace
