// ReliableRooms with its store: what the store costs the sockets, and what it reports.
//
// ControlledStore wraps a real SqliteMessageStore with its own writer thread
// and gates the test opens and closes: an append, a replay read or a
// last-seq read can be held "on the disk" for as long as the test needs,
// deterministically. Every test opens the gates on exit (GatedRooms), so a
// failing assertion cannot leave a thread stuck.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <ebb.hpp>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "unit/support/wait.hpp"
#include "unit/websocket/test_client.hpp"

namespace {

namespace ws = ebb::websocket;
namespace json = boost::json;
using ebb::test::Counter;
using ebb::test::kDeadline;
using ebb::test::TestClient;
using namespace std::chrono_literals;

std::filesystem::path temp_db(const char* name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("ebb_rooms_store_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir / "messages.db";
}

// A gate threads pass through, open by default. close() also restarts the
// count of arrivals, so wait_arrived(1) means "someone is at the closed gate".
class Latch {
 public:
  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
    arrived_ = 0;
    passes_ = 0;
  }
  /// Closed, but the next `n` arrivals (or those waiting) go through.
  void let_through(int n) {
    std::lock_guard lock(mutex_);
    passes_ += n;
    cv_.notify_all();
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_ || passes_ > 0; });
    if (!open_) --passes_;
  }
  bool wait_arrived(int n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kDeadline, [&] { return arrived_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = true;
  int arrived_ = 0;
  int passes_ = 0;
};

// A MessageStore over a real one, with its own writer thread (appends
// complete there, in queue order, as the contract says) and gates on the
// append, read_after and last_seq paths; appends and reads can also be made
// to fail.
class ControlledStore final : public ws::MessageStore {
 public:
  explicit ControlledStore(ws::MessageStore& inner) : inner_(inner) {
    writer_ = std::thread([this] { run(); });
  }
  ~ControlledStore() override {
    open_all();
    stop();
  }

  Latch appends;
  Latch reads;
  Latch last_seqs;
  std::atomic<bool> fail_appends{false};
  std::atomic<bool> fail_reads{false};

  void open_all() {
    appends.open();
    reads.open();
    last_seqs.open();
  }

  std::uint64_t append(std::string_view room, std::string_view body) override {
    std::promise<std::pair<std::uint64_t, std::error_code>> result;
    auto future = result.get_future();
    append_async(std::string(room), std::string(body),
                 [&result](std::uint64_t seq, std::error_code ec) {
                   result.set_value({seq, ec});
                 });
    auto [seq, ec] = future.get();
    if (ec) throw std::system_error(ec);
    return seq;
  }
  void append_async(std::string room, std::string body, ws::AppendHandler done) override {
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        queue_.push_back({std::move(room), std::move(body), std::move(done)});
        ++queued_;
        cv_.notify_all();
        return;
      }
    }
    if (done) done(0, ws::store_error::closed);
  }
  std::vector<ws::StoredMessage> read_after(std::string_view room, std::uint64_t after,
                                            std::size_t limit) override {
    reads.pass();
    if (fail_reads) throw std::system_error(ws::store_error::read_failed);
    return inner_.read_after(room, after, limit);
  }
  std::uint64_t last_seq(std::string_view room) override {
    last_seqs.pass();
    return inner_.last_seq(room);
  }
  std::vector<std::string> rooms() override { return inner_.rooms(); }
  void flush() override {
    std::unique_lock lock(mutex_);
    const auto target = queued_;
    cv_.wait(lock, [&] { return completed_ >= target; });
  }
  void close() override {
    stop();
    inner_.close();
  }

 private:
  struct Item {
    std::string room;
    std::string body;
    ws::AppendHandler done;
  };

  void run() {
    for (;;) {
      Item item;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything accepted is done
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      appends.pass();
      std::uint64_t seq = 0;
      std::error_code ec;
      if (fail_appends) {
        ec = ws::store_error::write_failed;
      } else {
        try {
          seq = inner_.append(item.room, item.body);
        } catch (const std::system_error& e) {
          ec = e.code();
        }
      }
      if (item.done) item.done(seq, ec);
      std::lock_guard lock(mutex_);
      ++completed_;
      cv_.notify_all();
    }
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      cv_.notify_all();
    }
    if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id()) writer_.join();
  }

  ws::MessageStore& inner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::uint64_t queued_ = 0;
  std::uint64_t completed_ = 0;
  bool stopping_ = false;
  std::thread writer_;  // last: starts once everything it uses exists
};

// One I/O thread, so every session shares it: if anything blocks it, every
// client notices. Typed messages go to ReliableRooms; "echo" is answered
// on the I/O thread, as a probe that it is free.
struct RoomServer {
  explicit RoomServer(ws::MessageStore& store, ws::WebSocketMetrics* metrics = nullptr)
      : executor(std::make_shared<ebb::executor::RuntimeExecutor>(2)),
        server(options(), executor),
        rooms(server, store) {
    if (metrics) {
      server.set_metrics(*metrics);
      rooms.set_metrics(*metrics);
    }
    server.on_typed_message(
        [this](ws::Session& s, const std::string& type, const ebb::json::kvs& payload) {
          if (rooms.handle(s, type, payload)) return;
          if (type == "echo") s.send_text(json::serialize(json::object{{"type", "echo"}}));
        });
    server.start();
  }
  ~RoomServer() {
    server.stop();
    executor->stop();
  }
  static ws::ServerOptions options() {
    ws::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.io_threads = 1;
    o.shutdown_timeout = 5s;
    return o;
  }
  std::shared_ptr<ebb::executor::RuntimeExecutor> executor;
  ws::Server server;
  ws::ReliableRooms rooms;
};

// A real SQLite file behind a ControlledStore, and a RoomServer on it that
// reports to `metrics`. The gates open again before the server stops (a
// stuck store must not hold the test's end).
struct GatedRooms {
  explicit GatedRooms(const char* db, ws::SqliteStoreOptions options = {})
      : path(temp_db(db)), real(path.string(), options), store(real) {}
  ~GatedRooms() { store.open_all(); }
  std::filesystem::path path;
  ws::SqliteMessageStore real;
  ControlledStore store;
  ws::WebSocketMetrics metrics;
  Counter stored;  // outlives the server: its completions count here
  int published = 0;
  RoomServer srv{store, &metrics};

  /// n more messages in room "r", published by the server itself: true once
  /// all of them are stored.
  bool store_messages(int n) {
    for (int i = 0; i < n; ++i)
      srv.rooms.publish("r", json::object{{"n", ++published}}, {},
                        [this](std::uint64_t, std::error_code) { stored.add(); });
    return stored.wait_for(published);
  }
};

std::string typed(std::string_view type, json::object payload) {
  return json::serialize(json::object{{"type", type}, {"payload", std::move(payload)}});
}

// Reads typed messages until `on_message` returns true; false on timeout.
template <class F>
bool read_typed(TestClient& c, F&& on_message, std::chrono::milliseconds timeout = kDeadline) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto f = c.read_frame(1s);
    if (!f) continue;
    if (f->opcode != 0x1) return false;
    auto v = json::parse(f->payload).as_object();
    json::object payload;
    if (auto* p = v.if_contains("payload"); p && p->is_object()) payload = p->as_object();
    if (on_message(std::string(v["type"].as_string()), payload)) return true;
  }
  return false;
}

bool read_type(TestClient& c, std::string_view wanted) {
  return read_typed(c, [&](const std::string& type, json::object&) { return type == wanted; });
}

// Waits for the room.ack (true, seq) or room.nack (false) of publish `id`.
std::optional<std::pair<bool, std::uint64_t>> read_answer(TestClient& c, const std::string& id) {
  std::optional<std::pair<bool, std::uint64_t>> answer;
  read_typed(c, [&](const std::string& type, json::object& p) {
    if ((type != "room.ack" && type != "room.nack") || p["id"].as_string() != id) return false;
    answer.emplace(type == "room.ack",
                   type == "room.ack" ? p["seq"].to_number<std::uint64_t>() : 0u);
    return true;
  });
  return answer;
}

// The echo probe: true when the I/O thread answered.
bool echo_answered(TestClient& c) {
  c.send_text(typed("echo", {}));
  return read_type(c, "echo");
}

std::uint64_t store_errors(const ws::WebSocketMetrics& m) {
  return m.errors.at({static_cast<std::size_t>(ws::WebSocketMetrics::ErrorKind::store)}).value();
}

void publish(TestClient& c, const std::string& room, const std::string& id) {
  c.send_text(typed("room.publish", {{"room", room}, {"id", id}, {"body", {{"text", id}}}}));
}

// Publishes `id` to room "r" and reads its answer: the seq if it was acked.
std::optional<std::uint64_t> publish_acked(TestClient& c, const std::string& id) {
  publish(c, "r", id);
  auto answer = read_answer(c, id);
  if (!answer || !answer->first) return std::nullopt;
  return answer->second;
}

// Two clients of `g`: `joiner` asks to join room "r" after `after`, and its
// replay is held at its first store read; `publisher` acts meanwhile.
struct HeldReplay {
  explicit HeldReplay(GatedRooms& rooms) : g(rooms) {
    joiner.upgrade();
    publisher.upgrade();
  }
  bool start(std::uint64_t after) {
    g.store.reads.close();
    joiner.send_text(typed("room.join", {{"room", "r"}, {"after", after}}));
    return g.store.reads.wait_arrived(1);
  }
  GatedRooms& g;
  TestClient joiner{g.srv.server.port()};
  TestClient publisher{g.srv.server.port()};
};

// What a joining client gets up to its room.joined: the seqs replayed, in
// order, and what room.joined says.
struct Joined {
  std::vector<std::uint64_t> seqs;
  std::uint64_t last_seq = 0;
  bool gap = false;
};
std::optional<Joined> read_until_joined(TestClient& c) {
  Joined j;
  bool ok = read_typed(c, [&](const std::string& type, json::object& p) {
    if (type == "room.message") j.seqs.push_back(p["seq"].to_number<std::uint64_t>());
    if (type != "room.joined") return false;
    j.last_seq = p["last_seq"].to_number<std::uint64_t>();
    j.gap = p["gap"].as_bool();
    return true;
  });
  return ok ? std::optional<Joined>(std::move(j)) : std::nullopt;
}

TEST(ReliableRoomsStore, EveryPublishObservesTheStoreWriteLatency) {
  auto path = temp_db("latency");
  ws::SqliteMessageStore store(path.string());
  ws::WebSocketMetrics metrics;
  RoomServer srv(store, &metrics);
  const auto before = metrics.store_write_duration.snapshot();
  TestClient c(srv.server.port());
  c.upgrade();
  constexpr int over_the_wire = 4;
  for (int i = 0; i < over_the_wire; ++i) {
    const auto id = "m" + std::to_string(i);
    publish(c, "r", id);
    auto answer = read_answer(c, id);
    ASSERT_TRUE(answer && answer->first) << id;
  }
  Counter done;
  srv.rooms.publish("r", json::object{{"text", "from the app"}}, {},
                    [&](std::uint64_t, std::error_code) { done.add(); });
  ASSERT_TRUE(done.wait_for(1));
  const auto after = metrics.store_write_duration.snapshot();
  EXPECT_EQ(after.count - before.count, over_the_wire + 1u);  // one per append
  EXPECT_GT(after.sum, before.sum);
}

TEST(ReliableRoomsStore, AFailedAppendIsNackedAndCountedAsAStoreError) {
  GatedRooms g("failing");
  TestClient c(g.srv.server.port());
  c.upgrade();
  ASSERT_EQ(publish_acked(c, "ok1"), 1u);
  const auto errors_before = store_errors(g.metrics);
  const auto writes_before = g.metrics.store_write_duration.snapshot().count;

  g.store.fail_appends = true;
  constexpr int failures = 3;
  for (int i = 0; i < failures; ++i) {
    const auto id = "bad" + std::to_string(i);
    publish(c, "r", id);
    auto answer = read_answer(c, id);
    ASSERT_TRUE(answer) << id;
    EXPECT_FALSE(answer->first) << id << " was acked";
    EXPECT_EQ(store_errors(g.metrics), errors_before + i + 1);  // counted before the nack is sent
  }
  // Failed writes are writes too: observed, successful or not.
  EXPECT_EQ(g.metrics.store_write_duration.snapshot().count, writes_before + failures);

  g.store.fail_appends = false;
  EXPECT_EQ(publish_acked(c, "ok2"), 2u);  // the failed ones took no seq
  EXPECT_EQ(store_errors(g.metrics), errors_before + failures);
}

TEST(ReliableRoomsStore, AFailedReplayReadIsCountedAsAStoreError) {
  GatedRooms g("failing_read");
  ASSERT_TRUE(g.store_messages(1));
  const auto errors_before = store_errors(g.metrics);
  g.store.fail_reads = true;
  TestClient c(g.srv.server.port());
  c.upgrade();
  c.send_text(typed("room.join", {{"room", "r"}, {"after", 0}}));
  ASSERT_TRUE(read_type(c, "error"));
  EXPECT_EQ(store_errors(g.metrics), errors_before + 1);
}

// The claim "writes are off the I/O threads": a publish stuck in the store
// holds nothing the I/O thread needs.
TEST(ReliableRoomsStore, AnAppendStuckInTheStoreDoesNotStallTheIoThread) {
  GatedRooms g("stuck_append");
  TestClient publisher(g.srv.server.port());
  publisher.upgrade();
  TestClient other(g.srv.server.port());
  other.upgrade();
  publisher.send_text(typed("room.join", {{"room", "r"}, {"after", 0}}));
  ASSERT_TRUE(read_type(publisher, "room.joined"));

  g.store.appends.close();
  publish(publisher, "r", "stuck");
  ASSERT_TRUE(g.store.appends.wait_arrived(1));  // the store's writer holds it now
  EXPECT_TRUE(echo_answered(other));
  EXPECT_TRUE(echo_answered(publisher));  // its own session is not blocked either

  g.store.appends.open();
  bool broadcast = false;
  ASSERT_TRUE(read_typed(publisher, [&](const std::string& type, json::object& p) {
    if (type == "room.message") broadcast = p["seq"].to_number<std::uint64_t>() == 1;
    if (type != "room.ack") return false;
    EXPECT_EQ(p["id"].as_string(), "stuck");
    EXPECT_EQ(p["seq"].to_number<std::uint64_t>(), 1u);
    return true;
  }));
  EXPECT_TRUE(broadcast);
}

// The first publish to a room reads its last seq from the store; that read
// must not happen on the I/O thread, and publishes made meanwhile keep order.
TEST(ReliableRoomsStore, ReadingANewRoomsLastSeqDoesNotStallTheIoThread) {
  GatedRooms g("stuck_last_seq");
  TestClient publisher(g.srv.server.port());
  publisher.upgrade();
  TestClient other(g.srv.server.port());
  other.upgrade();

  g.store.last_seqs.close();
  publish(publisher, "fresh", "m1");
  ASSERT_TRUE(g.store.last_seqs.wait_arrived(1));
  publish(publisher, "fresh", "m2");  // while the room is still being loaded
  EXPECT_TRUE(echo_answered(other));
  EXPECT_TRUE(echo_answered(publisher));

  g.store.last_seqs.open();
  auto m1 = read_answer(publisher, "m1");
  ASSERT_TRUE(m1 && m1->first);
  EXPECT_EQ(m1->second, 1u);
  auto m2 = read_answer(publisher, "m2");
  ASSERT_TRUE(m2 && m2->first);
  EXPECT_EQ(m2->second, 2u);  // in the order they were sent
}

// A replay reading a long history holds the room: publishes to it (on the
// I/O thread) and the store's writer must not wait for the whole replay,
// and the joining session still sees every message exactly once.
TEST(ReliableRoomsStore, AReplayStuckInTheStoreDoesNotStallPublishesToItsRoom) {
  GatedRooms g("stuck_replay");
  ASSERT_TRUE(g.store_messages(3));
  HeldReplay h(g);
  ASSERT_TRUE(h.start(0));  // the replay is reading the store
  EXPECT_EQ(publish_acked(h.publisher, "live"), 4u);
  EXPECT_TRUE(echo_answered(h.publisher));

  g.store.reads.open();
  auto joined = read_until_joined(h.joiner);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->seqs, (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(joined->last_seq, 4u);
  // Live from here: the next message arrives once, after room.joined.
  publish(h.publisher, "r", "after");
  ASSERT_TRUE(read_typed(h.joiner, [&](const std::string& type, json::object& p) {
    if (type != "room.message") return false;
    EXPECT_EQ(p["seq"].to_number<std::uint64_t>(), 5u);
    return true;
  }));
}

// The replay's catch-up (what was broadcast while it read the history) is
// read without the room's lock too: a publish to the room made while that
// read is stuck is answered, and the I/O thread stays free.
TEST(ReliableRoomsStore, AReplaysCatchUpReadStuckInTheStoreDoesNotStallPublishes) {
  GatedRooms g("stuck_catch_up");
  ASSERT_TRUE(g.store_messages(3));
  HeldReplay h(g);
  ASSERT_TRUE(h.start(0));                              // reading 1..3
  ASSERT_EQ(publish_acked(h.publisher, "during"), 4u);  // the catch-up's to read
  g.store.reads.let_through(1);                         // the history read finishes
  ASSERT_TRUE(g.store.reads.wait_arrived(2));           // the catch-up read is stuck
  EXPECT_EQ(publish_acked(h.publisher, "stuck"), 5u);
  EXPECT_TRUE(echo_answered(h.publisher));

  g.store.reads.open();
  auto joined = read_until_joined(h.joiner);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));  // no gap, no repeat
  EXPECT_EQ(joined->last_seq, 5u);
}

// Retention can remove what a replay was about to read while newer messages
// arrive: the replay must skip the hole and finish (it used to re-read the
// same batch forever once the next stored seq lay past its range).
TEST(ReliableRoomsStore, AReplayWhoseRangeRetentionEmptiedFinishes) {
  ws::SqliteStoreOptions keep_one;
  keep_one.max_messages_per_room = 1;  // every commit deletes all but the newest
  GatedRooms g("replay_retention", keep_one);
  ASSERT_TRUE(g.store_messages(3));  // the store holds seq 3 only
  HeldReplay h(g);
  ASSERT_TRUE(h.start(1));                             // wants 2, 3
  ASSERT_EQ(publish_acked(h.publisher, "newer"), 4u);  // retention now deletes 3

  g.store.reads.open();  // the replay finds only seq 4, past the 3 it was reading up to
  auto joined = read_until_joined(h.joiner);
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->last_seq, 4u);
  EXPECT_EQ(joined->seqs, (std::vector<std::uint64_t>{4}));  // once, before room.joined
  EXPECT_TRUE(joined->gap);                                  // 2 and 3 are gone: said so
}

}  // namespace
