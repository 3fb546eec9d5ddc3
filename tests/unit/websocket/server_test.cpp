// Server behaviour over real sockets on 127.0.0.1, with a raw test client
// that can send exactly the bytes a test needs.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <ebb/websocket.hpp>
#include <future>
#include <map>
#include <mutex>
#include <new>
#include <thread>

#include "unit/support/wait.hpp"
#include "unit/websocket/test_client.hpp"
#include "websocket/detail/core.hpp"
#include "websocket/detail/transport_fault.hpp"

// ---- allocation counting on the server's I/O threads -----------------------
namespace {
std::atomic<long> io_thread_allocations{0};
}
void* operator new(std::size_t n) {
  if (ebb::websocket::detail::IoThread::current())
    io_thread_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace std::chrono_literals;
using ebb::test::TestClient;
using ebb::websocket::Server;
using ebb::websocket::ServerOptions;
using ebb::websocket::Session;
using ebb::websocket::SessionPtr;

ServerOptions test_options(unsigned threads = 1) {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = threads;
  return o;
}

/// Records callbacks so tests can wait for them with a deadline.
struct Events {
  std::mutex m;
  std::condition_variable cv;
  std::map<std::uint64_t, int> closes;  // session id -> on_close count
  std::map<std::uint64_t, std::uint16_t> close_codes;
  std::vector<std::error_code> errors;
  std::vector<SessionPtr> opened;

  template <class Pred>
  bool wait(Pred p, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock l(m);
    return cv.wait_for(l, timeout, p);
  }
  void attach(Server& ws) {
    ws.on_open([this](Session& s) {
      std::lock_guard l(m);
      opened.push_back(s.shared_from_this());
      cv.notify_all();
    });
    ws.on_close([this](Session& s, std::uint16_t code, std::string_view) {
      std::lock_guard l(m);
      closes[s.id()]++;
      close_codes[s.id()] = code;
      cv.notify_all();
    });
    ws.on_error([this](Session&, std::error_code ec, std::string_view) {
      std::lock_guard l(m);
      errors.push_back(ec);
      cv.notify_all();
    });
  }
  std::size_t close_count() {
    std::lock_guard l(m);
    return closes.size();
  }
  bool has_error(ebb::websocket::error e) {
    std::lock_guard l(m);
    for (auto& ec : errors)
      if (ec == make_error_code(e)) return true;
    return false;
  }
};

struct EchoServer {
  explicit EchoServer(ServerOptions o = test_options()) : ws(std::move(o)) {  // NOLINT
    events.attach(ws);
    ws.on_message([](Session& s, std::string_view m) { s.send_text(m); });
    ws.on_binary([](Session& s, std::string_view m) { s.send_binary(m); });
  }
  void start() { ws.start(); }
  Events events;  // outlives ws: its callbacks run until ws has stopped
  Server ws;
};

TEST(Server, EchoesTextAndBinary) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  ASSERT_NE(c.upgrade().find("101 Switching Protocols"), std::string::npos);
  c.send_text("hello");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x1);
  EXPECT_EQ(f->payload, "hello");
  std::string big(300000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  c.send_binary(big);
  f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x2);
  EXPECT_EQ(f->payload, big);
}

/// A bare blocking socket speaking just enough WebSocket for short text
/// echoes: one descriptor each, so hundreds fit under a 1024 fd limit.
class RawWsClient {
 public:
  explicit RawWsClient(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};  // every read below is bounded
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          write_all(ebb::test::upgrade_request()) && read_head();
  }
  ~RawWsClient() { ::close(fd_); }
  bool ok() const { return ok_; }
  bool send_text(const std::string& text) {
    static const std::uint8_t mask[4] = {1, 2, 3, 4};
    std::string frame;
    ebb::websocket::codec::append_frame(frame, ebb::websocket::codec::Opcode::text, text, true,
                                        false, mask);
    return write_all(frame);
  }
  /// The next short unmasked text frame's payload, or "" on timeout/EOF.
  std::string read_text() {
    char head[2];
    if (!read_exact(head, 2) || head[0] != '\x81' || (head[1] & 0x80) || (head[1] & 0x7f) > 125)
      return {};
    std::string payload(static_cast<std::size_t>(head[1] & 0x7f), '\0');
    return read_exact(payload.data(), payload.size()) ? payload : std::string();
  }

 private:
  bool write_all(const std::string& b) {
    return ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size());
  }
  bool read_exact(char* p, std::size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }
  bool read_head() {
    std::string head;
    char ch;
    while (head.size() < 4096 && read_exact(&ch, 1)) {
      head += ch;
      if (head.ends_with("\r\n\r\n")) return head.find(" 101 ") != std::string::npos;
    }
    return false;
  }
  int fd_;
  bool ok_ = false;
};

// More sockets ready at once than one epoll_wait returns (256): the rest
// must still be served with no new traffic to wake the thread. The I/O
// thread is held in a callback while 300 clients each send one message.
TEST(Server, MoreReadySocketsThanOneBatchAreAllServed) {
  auto o = test_options();
  o.ping_interval = 0ms;  // no heartbeat traffic to wake the thread by chance
  Server ws(o);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> holding{false};
  ws.on_message([&](Session& s, std::string_view m) {
    if (m == "hold") {
      holding = true;
      released.wait();  // the test releases it once every client has sent
      return;
    }
    s.send_text(m);
  });
  ws.start();
  constexpr int n = 300;
  std::vector<std::unique_ptr<RawWsClient>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<RawWsClient>(ws.port()));
    ASSERT_TRUE(clients.back()->ok()) << "client " << i;
  }
  RawWsClient holder(ws.port());
  ASSERT_TRUE(holder.ok());
  holder.send_text("hold");
  ASSERT_TRUE(ebb::test::eventually([&] { return holding.load(); }));
  for (int i = 0; i < n; ++i) ASSERT_TRUE(clients[i]->send_text("m" + std::to_string(i)));
  release.set_value();
  int echoed = 0;
  for (int i = 0; i < n; ++i)
    if (clients[i]->read_text() == "m" + std::to_string(i)) ++echoed;
  EXPECT_EQ(echoed, n);
  ws.stop();
}

TEST(Server, FramesPipelinedBehindTheRequestHead) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  std::string req = ebb::test::upgrade_request();
  std::string frame;
  static const std::uint8_t mask[4] = {1, 2, 3, 4};
  ebb::websocket::codec::append_frame(frame, ebb::websocket::codec::Opcode::text, "early", true,
                                      false, mask);
  c.write_raw(req + frame);
  ASSERT_NE(c.read_head().find("101"), std::string::npos);
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "early");
}

// Transport failures injected where the kernel would report them
// (detail::read_fault / write_fault): the failing session ends once, with
// 1006, leaves its rooms, and the other session does not notice.
void expect_injected_fault_ends_only_that_session(ebb::websocket::detail::TransportFault& fault,
                                                  int error) {
  EchoServer s;
  s.start();
  TestClient victim(s.ws.port()), bystander(s.ws.port());
  victim.upgrade();
  bystander.upgrade();
  ASSERT_TRUE(s.events.wait([&] { return s.events.opened.size() == 2; }));
  {
    std::lock_guard l(s.events.m);
    for (auto& session : s.events.opened) s.ws.join_room(session, "r");
  }
  ASSERT_TRUE(ebb::test::eventually([&] { return s.ws.room_size("r") == 2; }));
  // Which accepted connection is `victim` is not known here: find out by
  // its echo, with the fault still unarmed.
  victim.send_text("who");
  ASSERT_TRUE(victim.read_frame());

  fault.arm(1, error);  // only the victim has I/O to do now
  victim.send_text("this read or its echo fails");
  EXPECT_TRUE(victim.wait_eof());  // no Close frame: the transport "failed"
  ASSERT_TRUE(s.events.wait([&] { return s.events.closes.size() == 1; }));
  EXPECT_EQ(s.ws.room_size("r"), 1u);
  bystander.send_text("still here");
  auto f = bystander.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "still here");
  std::lock_guard l(s.events.m);
  ASSERT_EQ(s.events.closes.size(), 1u);
  EXPECT_EQ(s.events.closes.begin()->second, 1);  // exactly once
  EXPECT_EQ(s.events.close_codes.begin()->second, 1006);
  fault.arm(0, 0);
}

TEST(Server, InjectedReadErrorEndsOnlyThatSessionOnce) {
  expect_injected_fault_ends_only_that_session(ebb::websocket::detail::read_fault, ECONNRESET);
}

TEST(Server, InjectedWriteErrorEndsOnlyThatSessionOnce) {
  expect_injected_fault_ends_only_that_session(ebb::websocket::detail::write_fault, EPIPE);
}

TEST(Server, ClientCloseIsAnsweredAndOnCloseFiresOnce) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  c.upgrade();
  c.send_close(1000, "bye");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x8);
  EXPECT_EQ(f->close_code(), 1000);
  EXPECT_TRUE(c.wait_eof());
  ASSERT_TRUE(s.events.wait([&] { return s.events.closes.size() == 1; }));
  std::lock_guard l(s.events.m);
  EXPECT_EQ(s.events.closes.begin()->second, 1);
  EXPECT_EQ(s.events.close_codes.begin()->second, 1000);
}

TEST(Server, ServerCloseSendsCodeAndReasonAfterQueuedData) {
  Events ev;  // declared first: callbacks use it until ws has stopped
  Server ws(test_options());
  ev.attach(ws);
  ws.on_message([](Session& s, std::string_view) {
    s.send_text("first");
    s.send_text("second");
    s.close(4001, "bye now");
  });
  ws.start();
  TestClient c(ws.port());
  c.upgrade();
  c.send_text("go");
  auto a = c.read_frame(), b = c.read_frame(), cl = c.read_frame();
  ASSERT_TRUE(a && b && cl);
  EXPECT_EQ(a->payload, "first");
  EXPECT_EQ(b->payload, "second");
  EXPECT_EQ(cl->opcode, 0x8);
  EXPECT_EQ(cl->close_code(), 4001);
  EXPECT_EQ(cl->payload.substr(2), "bye now");
  c.send_close(4001);
  EXPECT_TRUE(c.wait_eof());
  ASSERT_TRUE(ev.wait([&] { return ev.closes.size() == 1; }));
  std::lock_guard l(ev.m);
  EXPECT_EQ(ev.close_codes.begin()->second, 4001);
}

TEST(Server, PeerThatNeverAnswersCloseIsCutAfterCloseWait) {
  auto o = test_options();
  o.close_wait = 300ms;
  Events ev;
  Server ws(o);
  ev.attach(ws);
  ws.on_message([](Session& s, std::string_view) { s.close(1000, "done"); });
  ws.start();
  TestClient c(ws.port());
  c.upgrade();
  c.send_text("x");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x8);
  // We never answer; the server must still end the session.
  ASSERT_TRUE(ev.wait([&] { return ev.closes.size() == 1; }, 3s));
  EXPECT_TRUE(ev.has_error(ebb::websocket::error::close_timeout) || c.wait_eof());
}

TEST(Server, ShutdownNowFromAnotherThreadEndsWithoutCloseFrame) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  c.upgrade();
  ASSERT_TRUE(s.events.wait([&] { return s.events.opened.size() == 1; }));
  SessionPtr session;
  {
    std::lock_guard l(s.events.m);
    session = s.events.opened[0];
  }
  session->shutdown_now();
  session->shutdown_now();  // idempotent
  auto f = c.read_frame();
  EXPECT_FALSE(f.has_value());  // EOF, no Close frame
  ASSERT_TRUE(s.events.wait([&] { return s.events.closes.size() == 1; }));
  std::lock_guard l(s.events.m);
  EXPECT_EQ(s.events.closes.begin()->second, 1);
  EXPECT_EQ(s.events.close_codes.begin()->second, 1006);
}

TEST(Server, ProtocolErrorsCloseWithTheRightCode) {
  struct Case {
    const char* name;
    std::function<void(TestClient&)> send;
    std::uint16_t code;
  };
  std::vector<Case> cases = {
      {"unmasked", [](TestClient& c) { c.send_frame(0x1, "x", true, false); }, 1002},
      {"reserved opcode", [](TestClient& c) { c.send_frame(0x3, "x"); }, 1002},
      {"rsv2", [](TestClient& c) { c.send_frame(0x1, "x", true, true, 0x20); }, 1002},
      {"bad utf8", [](TestClient& c) { c.send_frame(0x1, "\xc3\x28"); }, 1007},
      {"fragmented ping", [](TestClient& c) { c.send_frame(0x9, "p", false); }, 1002},
      {"lone continuation", [](TestClient& c) { c.send_frame(0x0, "x"); }, 1002},
  };
  for (auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    auto o = test_options();
    o.close_wait = 200ms;  // the client below never answers our Close
    EchoServer s(o);
    s.start();
    TestClient c(s.ws.port());
    c.upgrade();
    tc.send(c);
    auto f = c.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->opcode, 0x8);
    EXPECT_EQ(f->close_code(), tc.code);
    EXPECT_TRUE(c.wait_eof());
    ASSERT_TRUE(s.events.wait([&] { return s.events.closes.size() == 1; }));
  }
}

TEST(Server, OversizeMessageGets1009) {
  auto o = test_options();
  o.max_message_size = 1000;
  EchoServer s(o);
  s.start();
  TestClient c(s.ws.port());
  c.upgrade();
  c.send_binary(std::string(1001, 'a'));
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 1009);
}

TEST(Server, PingIsAnsweredWithPong) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  c.upgrade();
  c.send_frame(0x9, "are you there");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0xA);
  EXPECT_EQ(f->payload, "are you there");
}

TEST(Server, DeadPeerIsClosedAfterPongTimeout) {
  auto o = test_options();
  o.ping_interval = 200ms;
  o.pong_timeout = 200ms;
  EchoServer s(o);
  s.start();
  TestClient c(s.ws.port());
  c.upgrade();
  auto f = c.read_frame(2s);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->opcode, 0x9);  // heartbeat ping; we do not answer
  ASSERT_TRUE(s.events.wait([&] { return s.events.closes.size() == 1; }, 3s));
  EXPECT_TRUE(s.events.has_error(ebb::websocket::error::pong_timeout));
}

TEST(Server, SlowlorisHandshakeIsCut) {
  auto o = test_options();
  o.handshake_timeout = 200ms;
  EchoServer s(o);
  s.start();
  TestClient c(s.ws.port());
  c.write_raw("GET / HTTP/1.1\r\nHost: x\r\n");
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.wait_eof(3s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(Server, BadVersionGets426) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  c.write_raw(ebb::test::upgrade_request({}, "/", 12));
  auto head = c.read_head();
  EXPECT_NE(head.find("426"), std::string::npos) << head;
  EXPECT_NE(head.find("Sec-WebSocket-Version: 13"), std::string::npos) << head;
  EXPECT_TRUE(c.wait_eof());
}

TEST(Server, RoomsBroadcastAcrossThreadsAndClosedSessionsLeave) {
  Events ev;
  Server ws(test_options(2));
  ev.attach(ws);
  ws.on_open([&](Session& s) {
    ws.join_room(s.shared_from_this(), "lobby");
    std::lock_guard l(ev.m);
    ev.opened.push_back(s.shared_from_this());
    ev.cv.notify_all();
  });
  ws.on_message([&](Session&, std::string_view m) { ws.broadcast_text_to_room("lobby", m); });
  ws.start();
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<TestClient>(ws.port()));
    clients.back()->upgrade();
  }
  ASSERT_TRUE(ev.wait([&] { return ev.opened.size() == 4; }));
  EXPECT_EQ(ws.room_size("lobby"), 4u);
  clients[0]->send_text("to all");
  for (auto& c : clients) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->payload, "to all");
  }
  clients[1]->send_close(1000);
  ASSERT_TRUE(ev.wait([&] { return ev.closes.size() == 1; }));
  EXPECT_EQ(ws.room_size("lobby"), 3u);
  ws.leave_room(ev.opened[0], "lobby");
  EXPECT_EQ(ws.room_size("lobby"), 2u);
  // A closed session cannot rejoin.
  ws.join_room(ev.opened[1], "lobby");
  EXPECT_EQ(ws.room_size("lobby"), 2u);
}

TEST(Server, SendFromAnotherThreadKeepsOrder) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  c.upgrade();
  ASSERT_TRUE(s.events.wait([&] { return s.events.opened.size() == 1; }));
  SessionPtr session = s.events.opened[0];
  std::jthread sender([&] {
    for (int i = 0; i < 1000; ++i) session->send_text(std::to_string(i));
  });
  for (int i = 0; i < 1000; ++i) {
    auto f = c.read_frame();
    ASSERT_TRUE(f);
    ASSERT_EQ(f->payload, std::to_string(i));
  }
  sender.join();
}

TEST(Server, StopFromACallbackIsDetected) {
  std::atomic<bool> detected{false};
  Server ws(test_options());
  ws.on_message([&](Session& s, std::string_view) {
    try {
      ws.stop();
    } catch (const std::logic_error&) {
      detected = true;
    }
    s.send_text("after");
  });
  ws.start();
  TestClient c(ws.port());
  c.upgrade();
  c.send_text("x");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_TRUE(detected.load());
}

TEST(Server, StopClosesEverySessionWith1001) {
  EchoServer s;
  s.start();
  TestClient a(s.ws.port()), b(s.ws.port());
  a.upgrade();
  b.upgrade();
  ASSERT_TRUE(s.events.wait([&] { return s.events.opened.size() == 2; }));
  std::jthread stopper([&] { s.ws.stop(); });
  for (auto* c : {&a, &b}) {
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->close_code(), 1001);
    c->send_close(1001);
  }
  stopper.join();
  EXPECT_EQ(s.events.close_count(), 2u);
  s.ws.stop();  // idempotent
  s.ws.stop_async();
}

TEST(Server, SlowConsumerIsDisconnectedNotBufferedForever) {
  auto o = test_options();
  o.max_send_queue = 256 * 1024;
  Events ev;
  std::atomic<int> dropped{0};
  Server ws(o);
  ev.attach(ws);
  ws.on_message([&](Session& s, std::string_view) {
    std::string chunk(64 * 1024, 'z');
    for (int i = 0; i < 4096; ++i) {  // up to 256 MiB: far past any kernel buffer
      auto st = s.send_binary(chunk);
      if (st == ebb::websocket::SendStatus::dropped) {
        std::lock_guard l(ev.m);
        dropped++;
        ev.cv.notify_all();
        break;
      }
      if (st == ebb::websocket::SendStatus::closing) break;
    }
  });
  ws.start();
  TestClient c(ws.port());
  c.upgrade();
  c.send_text("flood me");  // and do not read
  ASSERT_TRUE(ev.wait([&] { return !ev.errors.empty() && dropped.load() > 0; }));
  EXPECT_TRUE(ev.has_error(ebb::websocket::error::send_queue_overflow));
  EXPECT_EQ(dropped.load(), 1);
  // Reading everything that was queued ends with Close 1008.
  std::optional<ebb::test::Frame> f;
  for (int i = 0; i < 10000; ++i) {
    f = c.read_frame();
    if (!f || f->opcode == 0x8) break;
  }
  ASSERT_TRUE(f);
  EXPECT_EQ(f->close_code(), 1008);
}

TEST(Server, TypedMessagesAndBadJsonReachOnError) {
  Events ev;  // declared first: callbacks use it until ws has stopped
  Server ws(test_options());
  ev.attach(ws);
  ws.on_typed_message([](Session& s, const std::string& type, const ebb::json::kvs& payload) {
    auto it = payload.find("n");
    s.send_text(type + ":" + (it != payload.end() ? ebb::json::serialize(it->value()) : "-"));
  });
  ws.start();
  TestClient c(ws.port());
  c.upgrade();
  c.send_text(R"({"type":"add","payload":{"n":41}})");
  auto f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "add:41");
  c.send_text("{not json");
  c.send_text(R"({"payload":{}})");
  ASSERT_TRUE(ev.wait([&] { return ev.errors.size() == 2; }));
  EXPECT_TRUE(ev.has_error(ebb::websocket::error::bad_json));
  c.send_text(R"({"type":"still-open"})");
  f = c.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "still-open:-");
}

TEST(Server, SteadyStateEchoAllocatesNothingOnTheIoThread) {
  EchoServer s;
  s.start();
  TestClient c(s.ws.port());
  c.upgrade();
  auto round_trip = [&](int n) {
    for (int i = 0; i < n; ++i) {
      c.send_binary("0123456789abcdef");
      auto f = c.read_frame();
      ASSERT_TRUE(f);
    }
  };
  round_trip(200);  // warm up: buffers reach their steady capacity
  long before = io_thread_allocations.load();
  round_trip(2000);
  EXPECT_EQ(io_thread_allocations.load() - before, 0);
}

}  // namespace
