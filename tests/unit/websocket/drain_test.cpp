// The graceful drain of the WebSocket server (DESIGN.md §2), over real
// sockets: notice, queued data, Close 1001, deadline, force, spread.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ebb/websocket.hpp>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "unit/support/manual_clock.hpp"
#include "unit/support/tcp_segments.hpp"
#include "unit/support/wait.hpp"
#include "unit/websocket/test_client.hpp"

namespace {

using namespace std::chrono_literals;
using ebb::test::eventually;
using ebb::test::TestClient;
using ebb::websocket::DrainReport;
using ebb::websocket::LifecycleState;
using ebb::websocket::Server;
using ebb::websocket::ServerOptions;
using ebb::websocket::Session;
using Clock = std::chrono::steady_clock;

ServerOptions drain_options() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = 2;
  o.shutdown_notice = R"({"type":"server.shutdown","payload":{"reconnect_ms":{reconnect_ms}}})";
  o.shutdown_reconnect = 500ms;
  return o;
}

/// Waits until `n` sessions are open (on_open counted).
struct OpenCounter {
  std::mutex m;
  std::condition_variable cv;
  std::size_t n = 0;
  void attach(Server& ws) {
    ws.on_open([this](Session&) {
      std::lock_guard l(m);
      ++n;
      cv.notify_all();
    });
  }
  bool wait_for(std::size_t want, std::chrono::milliseconds t = 5s) {
    std::unique_lock l(m);
    return cv.wait_for(l, t, [&] { return n >= want; });
  }
};

/// A started server with one upgraded client whose session is open.
struct OneSession {
  explicit OneSession(const ServerOptions& o) : ws(o) {
    opened.attach(ws);
    ws.start();
    client.emplace(ws.port());
    client->upgrade();
  }
  bool open() { return opened.wait_for(1); }

  OpenCounter opened;  // before ws: its callback must outlive the server
  Server ws;
  std::optional<TestClient> client;
};

TEST(Drain, NoticeThenCloseGoingAwayThenCleanReport) {
  OpenCounter opened;
  Server ws(drain_options());
  opened.attach(ws);
  ws.start();
  EXPECT_EQ(ws.state(), LifecycleState::ready);
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<TestClient>(ws.port()));
    clients.back()->upgrade();
  }
  ASSERT_TRUE(opened.wait_for(6));
  ws.stop_async();
  ws.stop_async();  // idempotent
  EXPECT_NE(ws.state(), LifecycleState::ready);
  for (auto& c : clients) {
    auto notice = c->read_frame();
    ASSERT_TRUE(notice);
    EXPECT_EQ(notice->opcode, 0x1);
    EXPECT_EQ(notice->payload, R"({"type":"server.shutdown","payload":{"reconnect_ms":500}})");
    auto close = c->read_frame();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->opcode, 0x8);
    EXPECT_EQ(close->close_code(), 1001);
    c->send_close(1001);
    EXPECT_TRUE(c->wait_eof());
  }
  ws.stop();
  EXPECT_EQ(ws.state(), LifecycleState::stopped);
  DrainReport r = ws.drain_report();
  EXPECT_TRUE(r.happened);
  EXPECT_EQ(r.sessions_at_start, 6u);
  EXPECT_EQ(r.closed_cleanly, 6u);
  EXPECT_EQ(r.forced, 0u);
  EXPECT_TRUE(r.clean());
}

TEST(Drain, EverythingQueuedBeforeTheCloseIsDelivered) {
  OpenCounter opened;
  auto o = drain_options();
  o.shutdown_notice.clear();
  Server ws(o);
  opened.attach(ws);
  std::atomic<bool> queued{false};
  ws.on_message([&](Session& s, std::string_view) {
    // Queue far more than the socket takes at once, then ask for the drain
    // from inside the callback (allowed: stop_async never blocks).
    std::string chunk(32 * 1024, 'q');
    for (int i = 0; i < 200; ++i) {
      chunk[0] = static_cast<char>(i);
      s.send_binary(chunk);
    }
    queued = true;
    ws.stop_async();
  });
  ws.start();
  TestClient c(ws.port());
  c.upgrade();
  ASSERT_TRUE(opened.wait_for(1));
  c.send_text("go");
  for (int i = 0; i < 200; ++i) {
    auto f = c.read_frame();
    ASSERT_TRUE(f) << "message " << i;
    ASSERT_EQ(f->opcode, 0x2);
    ASSERT_EQ(static_cast<std::uint8_t>(f->payload[0]), i);
  }
  auto close = c.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1001);
  c.send_close(1001);
  ws.stop();
  EXPECT_TRUE(ws.drain_report().clean());
}

TEST(Drain, UpgradeDuringTheDrainGets503AndNewConnectionsAreRefused) {
  OpenCounter opened;
  auto o = drain_options();
  o.io_threads = 1;
  Server ws(o);
  opened.attach(ws);
  ws.start();
  TestClient live(ws.port());
  live.upgrade();
  ASSERT_TRUE(opened.wait_for(1));
  // Accepted before the drain, request not finished yet.
  TestClient late(ws.port());
  late.write_raw("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n");
  // It must be accepted (not still in the backlog) before the drain starts.
  ASSERT_TRUE(eventually([&] { return ws.connection_count() == 2; }, 5s));
  std::jthread stopper([&] { ws.stop(); });
  // The live session is told; hold the drain open by not answering yet.
  auto notice = live.read_frame();
  ASSERT_TRUE(notice);
  late.write_raw(
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n");
  auto head = late.read_head();
  EXPECT_NE(head.find("503"), std::string::npos) << head;
  // The listener is closed: a new connection is refused (or reset at once).
  bool refused = false;
  try {
    TestClient fresh(ws.port());
    refused = fresh.wait_eof(2s);
  } catch (const std::exception&) {
    refused = true;
  }
  EXPECT_TRUE(refused);
  auto close = live.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1001);
  live.send_close(1001);
  stopper.join();
}

// Connections the kernel completed but the server had not accepted yet when
// the drain began are accepted and answered 503, not reset by the listener's
// close. Thread 0 is held inside a callback while they queue up, so they are
// certainly still in the kernel's accept queue when the drain runs.
TEST(Drain, ConnectionsStillInTheAcceptQueueGet503NotAReset) {
  auto o = drain_options();
  o.io_threads = 1;
  Server ws(o);
  std::mutex m;
  std::condition_variable cv;
  bool holding = false, release = false;
  ws.on_message([&](Session&, std::string_view) {
    ws.stop_async();  // queued behind this callback on thread 0
    std::unique_lock l(m);
    holding = true;
    cv.notify_all();
    cv.wait_for(l, 10s, [&] { return release; });
  });
  ws.start();
  TestClient live(ws.port());
  live.upgrade();
  live.send_text("hold thread 0");
  {
    std::unique_lock l(m);
    ASSERT_TRUE(cv.wait_for(l, 5s, [&] { return holding; }));
  }
  std::vector<std::unique_ptr<TestClient>> queued;
  for (int i = 0; i < 5; ++i) {
    queued.push_back(std::make_unique<TestClient>(ws.port()));  // the kernel completes it
    queued.back()->write_raw(ebb::test::upgrade_request());
  }
  {
    std::lock_guard l(m);
    release = true;
  }
  cv.notify_all();
  for (auto& c : queued) {
    auto head = c->read_head();
    EXPECT_NE(head.find("503"), std::string::npos) << "got: \"" << head << "\"";
  }
  ws.stop();
}

TEST(Drain, PeersThatNeverAnswerAreForcedAtTheDeadline) {
  OpenCounter opened;
  auto o = drain_options();
  o.close_wait = 30s;  // so only the drain deadline can end them
  o.shutdown_timeout = 600ms;
  Server ws(o);
  opened.attach(ws);
  ws.start();
  TestClient good(ws.port()), silent(ws.port());
  good.upgrade();
  silent.upgrade();
  ASSERT_TRUE(opened.wait_for(2));
  auto start = Clock::now();
  std::jthread stopper([&] { ws.stop(); });
  // `good` answers; `silent` reads nothing and never answers.
  ASSERT_TRUE(good.read_frame());  // notice
  auto close = good.read_frame();
  ASSERT_TRUE(close);
  good.send_close(1001);
  stopper.join();
  auto took = Clock::now() - start;
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 3s);
  DrainReport r = ws.drain_report();
  EXPECT_EQ(r.closed_cleanly, 1u);
  EXPECT_EQ(r.forced, 1u);
  EXPECT_FALSE(r.clean());
  EXPECT_TRUE(r.force_requested);
  // The silent peer still got its 1001 before the transport went down.
  ASSERT_TRUE(silent.read_frame());  // notice
  auto silent_close = silent.read_frame();
  ASSERT_TRUE(silent_close);
  EXPECT_EQ(silent_close->close_code(), 1001);
}

using ebb::test::ManualClock;

// Negative checks below hold the clock still for 1.5 s of real time: that is
// at least one drain tick and a dozen sweeps that could have acted, and did
// not. Nothing depends on how fast the machine is.
constexpr auto kQuietPeriod = 1500ms;

TEST(Drain, DeadlineIsJudgedByTheInjectedClock) {
  ManualClock clock;
  auto o = drain_options();
  o.shutdown_timeout = 30s;
  o.close_wait = 60s;  // only the deadline can end the silent peer
  o.clock = clock.source();
  OneSession one(o);
  Server& ws = one.ws;
  TestClient& silent = *one.client;
  ASSERT_TRUE(one.open());
  ws.stop_async();
  ASSERT_TRUE(silent.read_frame());  // notice
  auto close = silent.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1001);

  clock.advance(30s - 1ms);  // one millisecond before the deadline
  std::this_thread::sleep_for(kQuietPeriod);
  EXPECT_EQ(ws.connection_count(), 1u);
  EXPECT_FALSE(ws.drain_report().force_requested);

  clock.advance(1ms);  // at the deadline
  ASSERT_TRUE(eventually([&] { return ws.connection_count() == 0; }, 5s));
  ws.stop();
  DrainReport r = ws.drain_report();
  EXPECT_TRUE(r.force_requested);
  EXPECT_EQ(r.forced, 1u);
  EXPECT_EQ(r.duration, 30s);  // measured on the same clock: exact
}

TEST(Drain, CloseWaitIsJudgedByTheInjectedClock) {
  ManualClock clock;
  OpenCounter opened;
  std::atomic<int> closes{0};
  auto o = drain_options();
  o.close_wait = 10s;
  o.ping_interval = 0ms;
  o.clock = clock.source();
  Server ws(o);
  opened.attach(ws);
  std::shared_ptr<Session> session;
  std::mutex m;
  ws.on_open([&](Session& s) {
    std::lock_guard l(m);
    session = s.shared_from_this();
  });
  ws.on_close([&](Session&, std::uint16_t, std::string_view) { ++closes; });
  ws.start();
  TestClient silent(ws.port());
  silent.upgrade();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard l(m);
    return session != nullptr;
  }));
  {
    std::lock_guard l(m);
    session->close(4000, "bye");
  }
  auto close = silent.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 4000);

  std::this_thread::sleep_for(kQuietPeriod);  // the clock stands still
  EXPECT_EQ(closes.load(), 0);
  EXPECT_EQ(ws.connection_count(), 1u);

  clock.advance(10s);
  ASSERT_TRUE(eventually([&] { return closes.load() == 1; }, 5s));
  EXPECT_TRUE(silent.wait_eof());
  ws.stop();
}

TEST(Drain, HalfCloseDelayHoldsTheFinUntilItPasses) {
  ManualClock clock;
  auto o = drain_options();
  o.close_wait = 60s;
  o.half_close_delay = 2s;
  o.clock = clock.source();
  OneSession one(o);
  Server& ws = one.ws;
  TestClient& c = *one.client;
  ASSERT_TRUE(one.open());
  ws.stop_async();
  ASSERT_TRUE(c.read_frame());  // notice
  auto close = c.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1001);
  EXPECT_FALSE(c.wait_eof(kQuietPeriod));  // the clock stands still: no FIN yet

  clock.advance(2s);
  EXPECT_TRUE(c.wait_eof());
  c.send_close(1001);
  ws.stop();
  EXPECT_EQ(ws.drain_report().closed_cleanly, 1u);
}

TEST(Drain, CloseWaitBoundsEachSilentPeer) {
  auto o = drain_options();
  o.close_wait = 300ms;
  OneSession one(o);
  auto& ws = one.ws;
  ASSERT_TRUE(one.open());
  auto start = Clock::now();
  ws.stop();
  EXPECT_LT(Clock::now() - start, 1500ms);  // close_wait + sweep resolution, far below 30 s
  EXPECT_EQ(ws.drain_report().forced, 1u);
}

TEST(Drain, PeerThatClosesOnEofIsCountedAsClosedByPeer) {
  OneSession one(drain_options());
  Server& ws = one.ws;
  auto& c = one.client;
  ASSERT_TRUE(one.open());
  std::jthread stopper([&] { ws.stop(); });
  ASSERT_TRUE(c->read_frame());  // notice
  ASSERT_TRUE(c->read_frame());  // Close 1001
  EXPECT_TRUE(c->wait_eof());    // the server half-closed with its Close
  c.reset();                     // like wsload -R: close the socket on EOF, no Close frame
  stopper.join();
  auto r = ws.drain_report();
  EXPECT_EQ(r.closed_by_peer, 1u);
  EXPECT_EQ(r.forced, 0u);
}

// At a drain every session's notice, Close and FIN leave in one segment: the
// client can read all of it and finish in one pass, and 10,000 sessions cost
// 10,000 loopback deliveries, not 20,000 (docs/PERFORMANCE.md, drain10k).
TEST(Drain, NoticeCloseAndFinArriveInOneSegment) {
  OneSession one(drain_options());
  Server& ws = one.ws;
  TestClient& c = *one.client;
  ASSERT_TRUE(one.open());
  const std::uint32_t before = ebb::test::tcp_segments_received(c.socket().native_handle());
  ASSERT_GT(before, 0u);  // the kernel reports segment counts
  std::jthread stopper([&] { ws.stop(); });
  auto notice = c.read_frame();
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->opcode, 0x1);
  auto close = c.read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code(), 1001);
  ASSERT_TRUE(c.wait_eof());
  EXPECT_EQ(ebb::test::tcp_segments_received(c.socket().native_handle()) - before, 1u);
  c.send_close(1001);  // still allowed: only the server's side is shut
  stopper.join();
  EXPECT_EQ(ws.drain_report().closed_cleanly, 1u);
}

TEST(Drain, SecondRequestForcesAtOnce) {
  OpenCounter opened;
  auto o = drain_options();
  o.close_wait = 30s;
  o.shutdown_timeout = 30s;
  Server ws(o);
  std::atomic<int> closes{0};
  ws.on_close([&](Session&, std::uint16_t, std::string_view) { closes++; });
  opened.attach(ws);
  ws.start();
  TestClient silent(ws.port());
  silent.upgrade();
  ASSERT_TRUE(opened.wait_for(1));
  auto start = Clock::now();
  std::jthread stopper([&] { ws.stop(); });
  ASSERT_TRUE(silent.read_frame());  // notice: the drain is under way
  ws.force_async();                  // "second SIGTERM"
  ws.force_async();
  stopper.join();
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_EQ(closes.load(), 1);
  EXPECT_EQ(ws.drain_report().forced, 1u);
}

TEST(Drain, ReconnectStormControlSpreadsClosesAndDelays) {
  OpenCounter opened;
  auto o = drain_options();
  o.io_threads = 1;
  o.shutdown_spread = 1000ms;
  o.shutdown_timeout = 10s;
  Server ws(o);
  opened.attach(ws);
  ws.start();
  constexpr int n = 10;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<TestClient>(ws.port()));
    clients.back()->upgrade();
  }
  ASSERT_TRUE(opened.wait_for(n));
  auto start = Clock::now();
  ws.stop_async();
  std::set<long> delays;
  for (auto& c : clients) {
    auto notice = c->read_frame();
    ASSERT_TRUE(notice);
    auto pos = notice->payload.find("\"reconnect_ms\":");
    ASSERT_NE(pos, std::string::npos);
    delays.insert(std::stol(notice->payload.substr(pos + 15)));
  }
  // Each session has its own slot: base 500 + rank * 1000 / n.
  EXPECT_EQ(delays.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(*delays.begin(), 500);
  EXPECT_EQ(*delays.rbegin(), 500 + 1000 * (n - 1) / n);
  // And the Close frames really arrive spread over the window.
  // One reader per client, so each arrival time is its own.
  std::vector<Clock::duration> arrivals(n, Clock::duration::max());
  std::vector<std::uint16_t> codes(n, 0);
  std::vector<std::jthread> readers;
  for (int i = 0; i < n; ++i)
    readers.emplace_back([&, i] {
      auto close = clients[i]->read_frame(3s);
      if (!close) return;
      arrivals[i] = Clock::now() - start;
      codes[i] = close->close_code();
      clients[i]->send_close(1001);
    });
  for (auto& t : readers) t.join();
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(codes[i], 1001) << "client " << i;
    ASSERT_NE(arrivals[i], Clock::duration::max()) << "client " << i;
  }
  auto [lo, hi] = std::minmax_element(arrivals.begin(), arrivals.end());
  EXPECT_GE(*hi - *lo, 600ms);
  ws.stop();
  EXPECT_TRUE(ws.drain_report().clean());
}

TEST(Drain, StopWithoutSessionsReturnsPromptlyAndEveryApiIsIdempotent) {
  Server ws(drain_options());
  ws.start();
  auto start = Clock::now();
  std::vector<std::jthread> callers;
  for (int i = 0; i < 4; ++i)
    callers.emplace_back([&, i] {
      if (i % 2)
        ws.stop_async();
      else
        ws.stop();
    });
  for (auto& t : callers) t.join();
  ws.stop();
  ws.force_async();
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(ws.state(), LifecycleState::stopped);
}

// Connections that arrive while the drain starts are either served (and
// closed by the drain) or refused, never lost: a connection accepted just
// before the listener closed, for an I/O thread that had nothing to drain,
// once left the drain waiting for it forever (the thread had wound down
// before the connection was handed to it).
TEST(Drain, ConnectionsArrivingAsTheDrainStartsNeverStallIt) {
  for (int iteration = 0; iteration < 100; ++iteration) {
    ServerOptions o = drain_options();
    o.close_wait = 200ms;
    o.shutdown_timeout = 2s;
    Server ws(o);
    ws.start();
    const auto port = ws.port();
    std::atomic<bool> done{false};
    std::atomic<int> connects{0};
    // Connect and hang up at once, over and over: the server's threads keep
    // getting fresh connections and are often empty in between.
    std::jthread connector([&] {
      while (!done.load()) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) ++connects;
        ::close(fd);
      }
    });
    ASSERT_TRUE(eventually([&] { return connects.load() > iteration % 7; }));
    auto stopped = std::make_shared<std::promise<void>>();
    auto future = stopped->get_future();
    std::thread([&ws, stopped] {
      ws.stop();
      stopped->set_value();
    }).detach();
    if (future.wait_for(o.shutdown_timeout + 3s) != std::future_status::ready) {
      ADD_FAILURE() << "iteration " << iteration << ": stop() did not return; "
                    << ws.connection_count() << " connection(s) never ended";
      std::fflush(nullptr);
      std::_Exit(1);  // the server cannot be destroyed while stop() runs
    }
    done = true;
    connector.join();
    EXPECT_EQ(ws.connection_count(), 0u);
    EXPECT_EQ(ws.state(), LifecycleState::stopped);
  }
}

/// A server whose sessions become drain observers when they send "observe",
/// and which tells its observers "left" as each other session closes (a
/// dashboard watching the drain).
struct ObserverServer {
  ObserverServer() : ws(drain_options()) {
    opened.attach(ws);
    ws.on_message([this](Session& s, const std::string& m) {
      if (m != "observe") return;
      s.observe_drain();
      {
        std::lock_guard l(mutex);
        observer = s.shared_from_this();
      }
      s.send_text("ok");
    });
    ws.on_close([this](Session& s, std::uint16_t, std::string_view) {
      std::lock_guard l(mutex);
      closed.push_back(s.id());
      if (observer && observer.get() != &s) observer->send_text("left");
    });
    ws.start();
  }
  std::unique_ptr<TestClient> connect_observer() {
    auto c = std::make_unique<TestClient>(ws.port());
    c->upgrade();
    c->send_text("observe");
    auto ok = c->read_frame();
    EXPECT_TRUE(ok && ok->payload == "ok");
    return c;
  }
  std::uint64_t observer_id() {
    std::lock_guard l(mutex);
    return observer ? observer->id() : 0;
  }

  OpenCounter opened;  // before ws: callbacks must outlive the server
  std::mutex mutex;
  std::shared_ptr<Session> observer;
  std::vector<std::uint64_t> closed;
  Server ws;
};

TEST(Drain, AnObserverIsClosedOnlyAfterEveryOtherSessionHasEnded) {
  ObserverServer server;
  auto observer = server.connect_observer();
  std::vector<std::unique_ptr<TestClient>> others;
  for (int i = 0; i < 3; ++i) {
    others.push_back(std::make_unique<TestClient>(server.ws.port()));
    others.back()->upgrade();
  }
  ASSERT_TRUE(server.opened.wait_for(4));  // two I/O threads: the sessions are on both
  server.ws.stop_async();
  for (auto& c : others) {  // notice, Close 1001; not answered yet
    ASSERT_TRUE(c->read_frame());
    auto close = c->read_frame();
    ASSERT_TRUE(close && close->opcode == 0x8);
  }
  auto notice = observer->read_frame();  // the observer gets the notice with everyone
  ASSERT_TRUE(notice && notice->opcode == 0x1);
  // The others are still in their close handshake: nothing more for the observer.
  EXPECT_FALSE(observer->read_frame(300ms)) << "observer closed while others were open";
  for (auto& c : others) {
    c->send_close(1001);
    EXPECT_TRUE(c->wait_eof());
  }
  // It saw every one of them leave, then got its own Close.
  for (int i = 0; i < 3; ++i) {
    auto left = observer->read_frame();
    ASSERT_TRUE(left);
    EXPECT_EQ(left->payload, "left");
  }
  auto close = observer->read_frame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, 0x8);
  EXPECT_EQ(close->close_code(), 1001);
  observer->send_close(1001);
  EXPECT_TRUE(observer->wait_eof());
  server.ws.stop();
  const auto observer_id = server.observer_id();
  std::lock_guard l(server.mutex);
  ASSERT_EQ(server.closed.size(), 4u);
  EXPECT_EQ(server.closed.back(), observer_id);
  auto r = server.ws.drain_report();
  EXPECT_EQ(r.sessions_at_start, 4u);
  EXPECT_EQ(r.closed_cleanly, 4u);
}

TEST(Drain, ObserversAloneAreClosedAtOnceAndForcedLikeAnyOther) {
  ObserverServer server;
  auto a = server.connect_observer();
  auto b = server.connect_observer();
  ASSERT_TRUE(server.opened.wait_for(2));
  server.ws.stop_async();
  for (auto* c : {a.get(), b.get()}) {  // nothing to wait for: notice, then Close
    ASSERT_TRUE(c->read_frame());
    auto close = c->read_frame();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1001);
  }
  server.ws.force_async();  // neither answers: the force ends them
  server.ws.stop();
  EXPECT_EQ(server.ws.drain_report().forced, 2u);
}

TEST(Drain, StopBeforeStartIsHarmless) {
  Server ws(drain_options());
  ws.stop_async();
  ws.stop();
  EXPECT_FALSE(ws.running());
}

}  // namespace
