// ebb::websocket::Client's room protocol (join_room, publish, automatic
// resume) against a real Server + ReliableRooms + SqliteMessageStore on
// 127.0.0.1. Server restarts reuse the port and the store file, as a
// redeploy does. Every wait has a deadline.
#include <gtest/gtest.h>
#include <unistd.h>

#include <ebb.hpp>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "unit/support/wait.hpp"

namespace {

using ebb::test::eventually;
using namespace std::chrono_literals;
namespace json = boost::json;
namespace ws = ebb::websocket;

std::filesystem::path temp_db(const char* name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("ebb_client_rooms_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir / "messages.db";
}

ws::ServerOptions server_options(std::uint16_t port) {
  ws::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.io_threads = 2;
  o.shutdown_timeout = 5s;
  return o;
}

// A server whose typed messages go to ReliableRooms; stops in its destructor.
struct RoomServer {
  RoomServer(ws::MessageStore& store, std::uint16_t port)
      : executor(std::make_shared<ebb::executor::RuntimeExecutor>(2)),
        server(server_options(port), executor),
        rooms(server, store) {
    server.on_typed_message(
        [this](ws::Session& s, const std::string& type, const ebb::json::kvs& payload) {
          rooms.handle(s, type, payload);
        });
    server.start();
  }
  ~RoomServer() {
    server.stop();
    executor->stop();
  }
  std::shared_ptr<ebb::executor::RuntimeExecutor> executor;
  ws::Server server;
  ws::ReliableRooms rooms;
};

// The store and the server of one server "process"; shut down in the order
// a process exit does: the server drains, the store commits what it accepted
// (its completions broadcast through the still existing server), then the
// objects go.
struct ServerProcess {
  ServerProcess(const std::filesystem::path& db, std::uint16_t port)
      : store(std::make_unique<ws::SqliteMessageStore>(db.string())),
        srv(std::make_unique<RoomServer>(*store, port)) {}
  ~ServerProcess() {
    srv->server.stop();
    store->close();
    srv.reset();
  }
  std::uint16_t port() const { return srv->server.port(); }
  std::unique_ptr<ws::SqliteMessageStore> store;
  std::unique_ptr<RoomServer> srv;
};

// Stores every append but, while `swallow` is set, never reports it: the
// message is durable, yet nobody gets a room.ack or a room.message for it
// (an ack lost to a crash between commit and send).
class SwallowingStore : public ws::MessageStore {
 public:
  explicit SwallowingStore(ws::MessageStore& inner) : inner_(inner) {}
  std::atomic<bool> swallow{false};
  std::uint64_t append(std::string_view room, std::string_view body) override {
    return inner_.append(room, body);
  }
  void append_async(std::string room, std::string body, ws::AppendHandler done) override {
    if (swallow)
      return inner_.append_async(std::move(room), std::move(body), [](std::uint64_t, auto) {});
    inner_.append_async(std::move(room), std::move(body), std::move(done));
  }
  std::vector<ws::StoredMessage> read_after(std::string_view room, std::uint64_t after,
                                            std::size_t limit) override {
    return inner_.read_after(room, after, limit);
  }
  std::uint64_t last_seq(std::string_view room) override { return inner_.last_seq(room); }
  std::vector<std::string> rooms() override { return inner_.rooms(); }
  void flush() override { inner_.flush(); }
  void close() override { inner_.close(); }

 private:
  ws::MessageStore& inner_;
};

struct Delivery {
  std::uint64_t seq;
  std::string id;
  json::value body;
};

// What on_room_message delivered, per room; thread-safe.
class Recorder {
 public:
  void attach(ws::Client& c) {
    c.on_room_message([this](const std::string& room, std::uint64_t seq, const json::value& body,
                             std::string_view id) {
      std::lock_guard lock(mutex_);
      got_[room].push_back({seq, std::string(id), body});
    });
  }
  std::vector<std::uint64_t> seqs(const std::string& room) {
    std::lock_guard lock(mutex_);
    std::vector<std::uint64_t> out;
    for (const auto& d : got_[room]) out.push_back(d.seq);
    return out;
  }
  int count_id(const std::string& room, const std::string& id) {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& d : got_[room]) n += d.id == id;
    return n;
  }
  /// True once `room` got a message with seq >= `seq`, within the deadline.
  bool wait_seq(const std::string& room, std::uint64_t seq, std::chrono::milliseconds t = 10s) {
    return eventually(
        [&] {
          std::lock_guard lock(mutex_);
          auto& v = got_[room];
          return !v.empty() && v.back().seq >= seq;
        },
        t);
  }
  bool wait_id(const std::string& room, const std::string& id) {
    return eventually([&] { return count_id(room, id) > 0; });
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::vector<Delivery>> got_;
};

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> v;
  for (auto s = from; s <= to; ++s) v.push_back(s);
  return v;
}

ws::ClientOptions client_options(std::uint16_t port) {
  ws::ClientOptions o;
  o.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  o.reconnect_initial = 20ms;
  o.reconnect_max = 200ms;
  return o;
}

// Counts the messages of `room` in `store` whose stored id is `id`.
int stored_with_id(ws::MessageStore& store, const std::string& room, const std::string& id) {
  int n = 0;
  for (const auto& m : store.read_after(room, 0, 100000)) {
    auto v = json::parse(m.body).as_object();
    if (auto* s = v.if_contains("id"); s && s->is_string() && s->as_string() == id) ++n;
  }
  return n;
}

std::string typed(std::string_view type, json::object payload) {
  return json::serialize(json::object{{"type", type}, {"payload", std::move(payload)}});
}

TEST(ClientRooms, JoinReceivesHistoryThenLiveAndDropsDuplicates) {
  ServerProcess p(temp_db("join"), 0);
  for (int i = 1; i <= 5; ++i) p.srv->rooms.publish("r", json::object{{"n", i}});
  p.store->flush();

  // Declared before the client: its callbacks use them until it stops.
  Recorder rec;
  std::atomic<int> joined{0};
  ws::Client c(client_options(p.port()));
  rec.attach(c);
  c.on_message([&](std::string_view m, bool) {
    if (m.find("\"room.joined\"") != std::string_view::npos) ++joined;
  });
  c.join_room("r");  // before connect(): sent on open
  c.connect();
  ASSERT_TRUE(rec.wait_seq("r", 5));
  ASSERT_TRUE(eventually([&] { return joined == 1; }));
  EXPECT_EQ(c.last_seq("r"), 5u);

  // The server replays 1..5 again (a join from 0, behind the client's back):
  // the handler must not see them twice.
  c.send_text(typed("room.join", {{"room", "r"}, {"after", 0}}));
  ASSERT_TRUE(eventually([&] { return joined == 2; }));
  p.srv->rooms.publish("r", json::object{{"n", 6}});
  ASSERT_TRUE(rec.wait_seq("r", 6));
  EXPECT_EQ(rec.seqs("r"), range(1, 6));
  EXPECT_EQ(c.last_seq("r"), 6u);

  // After leave_room nothing more is delivered and there is no position.
  c.leave_room("r");
  c.join_room("other", 0);
  p.srv->rooms.publish("r", json::object{{"n", 7}});
  p.srv->rooms.publish("other", json::object{{"n", 1}});
  ASSERT_TRUE(rec.wait_seq("other", 1));
  EXPECT_EQ(rec.seqs("r"), range(1, 6));
  EXPECT_EQ(c.last_seq("r"), 0u);
  c.stop();
}

TEST(ClientRooms, ResumesAcrossAServerRestartWithExactlyTheMissedMessages) {
  const auto db = temp_db("restart");
  auto first = std::make_unique<ServerProcess>(db, 0);
  const std::uint16_t port = first->port();
  for (int i = 1; i <= 5; ++i) first->srv->rooms.publish("a", json::object{{"n", i}});
  first->store->flush();

  Recorder rec;
  std::atomic<int> opens{0};
  ws::Client c(client_options(port));
  rec.attach(c);
  c.on_open([&](bool) { ++opens; });
  c.join_room("a", 2);  // replay 3..5
  c.join_room("b", 0);  // empty so far
  c.connect();
  ASSERT_TRUE(rec.wait_seq("a", 5));
  first->srv->rooms.publish("b", json::object{{"n", 1}});
  ASSERT_TRUE(rec.wait_seq("b", 1));

  first.reset();  // the drain closes the client with 1001; it keeps retrying
  ASSERT_TRUE(eventually([&] { return !c.is_open(); }));
  {
    // Published while the client is away, before the new server listens.
    ws::SqliteMessageStore store(db.string());
    for (int i = 6; i <= 9; ++i) store.append("a", json::serialize(json::object{{"body", i}}));
    for (int i = 2; i <= 3; ++i) store.append("b", json::serialize(json::object{{"body", i}}));
  }
  ServerProcess second(db, port);
  ASSERT_TRUE(rec.wait_seq("a", 9));
  ASSERT_TRUE(rec.wait_seq("b", 3));
  second.srv->rooms.publish("a", json::object{{"n", 10}});
  ASSERT_TRUE(rec.wait_seq("a", 10));
  EXPECT_EQ(rec.seqs("a"), range(3, 10));
  EXPECT_EQ(rec.seqs("b"), range(1, 3));
  EXPECT_EQ(opens.load(), 2);
  c.stop();
}

TEST(ClientRooms, PublishMadeWhileDisconnectedIsSentAfterTheResumeExactlyOnce) {
  const auto db = temp_db("pending");
  auto first = std::make_unique<ServerProcess>(db, 0);
  const std::uint16_t port = first->port();
  Recorder rec;
  ws::Client c(client_options(port));
  rec.attach(c);
  c.join_room("r", 0);
  c.connect();
  const std::string id1 = c.publish("r", json::object{{"text", "one"}});
  ASSERT_TRUE(rec.wait_id("r", id1));
  ASSERT_TRUE(eventually([&] { return c.pending_publishes() == 0; }));

  first.reset();
  ASSERT_TRUE(eventually([&] { return !c.is_open(); }));
  const std::string id2 = c.publish("r", json::object{{"text", "two"}});
  EXPECT_NE(id1, id2);
  EXPECT_EQ(c.pending_publishes(), 1u);

  ServerProcess second(db, port);
  ASSERT_TRUE(rec.wait_id("r", id2));
  ASSERT_TRUE(eventually([&] { return c.pending_publishes() == 0; }));
  // A third publish proves the second was not sent twice: it gets seq 3.
  const std::string id3 = c.publish("r", json::object{{"text", "three"}});
  ASSERT_TRUE(rec.wait_id("r", id3));
  EXPECT_EQ(rec.seqs("r"), range(1, 3));
  second.store->flush();
  EXPECT_EQ(second.store->last_seq("r"), 3u);
  EXPECT_EQ(stored_with_id(*second.store, "r", id2), 1);
}

TEST(ClientRooms, PublishStoredButNeverAckedIsFoundInTheReplayAndNotSentAgain) {
  const auto db = temp_db("lost_ack");
  std::uint16_t port = 0;
  std::string lost;
  Recorder rec;
  std::unique_ptr<ws::Client> c;
  {
    ws::SqliteMessageStore real(db.string());
    SwallowingStore store(real);
    RoomServer srv(store, 0);
    port = srv.server.port();
    c = std::make_unique<ws::Client>(client_options(port));
    rec.attach(*c);
    c->join_room("r", 0);
    c->connect();
    ASSERT_TRUE(c->wait_open(10s));
    store.swallow = true;
    lost = c->publish("r", json::object{{"text", "stored, ack lost"}});
    ASSERT_TRUE(eventually([&] { return real.last_seq("r") == 1; }));
    EXPECT_EQ(c->pending_publishes(), 1u);  // no ack, no room.message
    srv.server.stop();                      // Close 1001
    real.close();                           // before the server object goes: completions use it
  }
  ASSERT_TRUE(eventually([&] { return !c->is_open(); }));

  ServerProcess second(db, port);
  // The resume replays seq 1 with the lost publish's id: done, not resent.
  ASSERT_TRUE(rec.wait_id("r", lost));
  ASSERT_TRUE(eventually([&] { return c->pending_publishes() == 0; }));
  const std::string next = c->publish("r", json::object{{"text", "next"}});
  ASSERT_TRUE(rec.wait_id("r", next));
  EXPECT_EQ(rec.seqs("r"), range(1, 2));
  second.store->flush();
  EXPECT_EQ(second.store->last_seq("r"), 2u);
  EXPECT_EQ(stored_with_id(*second.store, "r", lost), 1);
  c->stop();
}

// Publishes in flight while the server restarts, many times over: each id is
// stored exactly once, and the subscriber sees every seq once, in order.
TEST(ClientRooms, PublishingThroughRestartsStoresEachIdOnce) {
  const auto db = temp_db("churn");
  auto server = std::make_unique<ServerProcess>(db, 0);
  const std::uint16_t port = server->port();
  Recorder rec;
  ws::Client publisher(client_options(port));
  ws::Client subscriber(client_options(port));
  rec.attach(subscriber);
  publisher.join_room("r", 0);  // the publisher's replay is what finds stored ids
  subscriber.join_room("r", 0);
  publisher.connect();
  subscriber.connect();
  std::vector<std::string> ids;
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(publisher.wait_open(10s));
    for (int i = 0; i < 300; ++i) ids.push_back(publisher.publish("r", json::object{{"i", i}}));
    // Mid-stream: once some are acknowledged, the rest are unsent, in
    // flight, or stored without their ack having arrived.
    ASSERT_TRUE(eventually([&] { return publisher.pending_publishes() < 300; }));
    server.reset();
    server = std::make_unique<ServerProcess>(db, port);
  }
  ASSERT_TRUE(eventually([&] { return publisher.pending_publishes() == 0; }, 30s))
      << publisher.pending_publishes() << " still pending";
  ASSERT_TRUE(rec.wait_seq("r", ids.size(), 30s));
  server->store->flush();
  EXPECT_EQ(server->store->last_seq("r"), ids.size());
  EXPECT_EQ(rec.seqs("r"), range(1, ids.size()));
  for (const auto& id : ids) EXPECT_EQ(rec.count_id("r", id), 1) << id;
  publisher.stop();
  subscriber.stop();
}

}  // namespace
