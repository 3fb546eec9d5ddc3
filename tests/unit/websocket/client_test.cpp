// ebb::websocket::Client against a real third-party server: Node's `ws`
// (tests/integration/node/ws_test_server.mjs), started per test on a free
// port of 127.0.0.1. Every wait has a deadline.
#include "ebb/websocket/client.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ebb/websocket/error.hpp"
#include "unit/support/tls_files.hpp"
#include "unit/support/wait.hpp"
#include "websocket/client_backoff.hpp"
#include "websocket/handshake/handshake.hpp"

extern char** environ;

namespace ebb::websocket {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr auto kDeadline = 10s;

// ------------------------------------------------------------ helpers ---

/// A Node `ws` test server in a child process. The child also exits when its
/// stdin (a pipe we hold) closes, so a crashed test leaves nothing behind.
class NodeServer {
 public:
  explicit NodeServer(std::vector<std::string> extra) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    std::vector<std::string> args = {
        "node", EBB_SOURCE_DIR "/tests/integration/node/ws_test_server.mjs", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    const int rc = posix_spawnp(&pid_, "node", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      ::close(out[0]);
      pid_ = -1;
      throw std::runtime_error("cannot start node (is it on PATH?)");
    }
    port_ = read_port(out[0]);
    ::close(out[0]);
  }
  ~NodeServer() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto limit = std::chrono::steady_clock::now() + 5s;
    while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > limit) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  NodeServer(const NodeServer&) = delete;
  NodeServer& operator=(const NodeServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(std::string_view path = "/", std::string_view scheme = "ws",
                  std::string_view host = "127.0.0.1") const {
    return std::string(scheme) + "://" + std::string(host) + ":" + std::to_string(port_) +
           std::string(path);
  }

 private:
  /// Reads "PORT <n>\n" from the child's stdout within the deadline.
  static std::uint16_t read_port(int fd) {
    std::string text;
    const auto limit = std::chrono::steady_clock::now() + kDeadline;
    while (text.find('\n') == std::string::npos) {
      auto left =
          std::chrono::duration_cast<milliseconds>(limit - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("node server did not report its port");
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("node server exited before reporting its port");
      text.append(buf, static_cast<std::size_t>(n));
    }
    if (text.rfind("PORT ", 0) != 0) throw std::runtime_error("unexpected output: " + text);
    return static_cast<std::uint16_t>(std::stoi(text.substr(5)));
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  std::uint16_t port_ = 0;
};

/// Everything the client reported, for waiting on from the test thread.
struct Events {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> messages;
  std::vector<bool> binary;
  std::vector<bool> opens;  ///< the `reconnected` flag of each on_open
  std::vector<std::pair<std::uint16_t, std::string>> closes;
  std::vector<std::pair<std::error_code, std::string>> errors;
  std::vector<std::pair<int, milliseconds>> reconnects;

  /// Waits until `pred` (called under the lock) holds; false at the deadline.
  template <class Pred>
  bool wait(Pred pred, std::chrono::steady_clock::duration timeout = kDeadline) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, timeout, pred);
  }
  bool wait_messages(std::size_t n) {
    return wait([&] { return messages.size() >= n; });
  }
  bool wait_closes(std::size_t n) {
    return wait([&] { return closes.size() >= n; });
  }
  bool wait_opens(std::size_t n) {
    return wait([&] { return opens.size() >= n; });
  }
  template <class F>
  void record(F f) {
    std::lock_guard lock(m);
    f();
    cv.notify_all();
  }
  std::string message(std::size_t i) {
    std::lock_guard lock(m);
    return messages.at(i);
  }

  void attach(Client& c) {
    c.on_open([this](bool re) { record([&] { opens.push_back(re); }); });
    c.on_message([this](std::string_view msg, bool bin) {
      record([&] {
        messages.emplace_back(msg);
        binary.push_back(bin);
      });
    });
    c.on_close([this](std::uint16_t code, std::string_view reason) {
      record([&] { closes.emplace_back(code, std::string(reason)); });
    });
    c.on_error([this](std::error_code ec, std::string_view what) {
      record([&] { errors.emplace_back(ec, std::string(what)); });
    });
    c.on_reconnect([this](int attempt, milliseconds delay) {
      record([&] { reconnects.emplace_back(attempt, delay); });
    });
  }
};

ClientOptions options_for(const std::string& url) {
  ClientOptions o;
  o.url = url;
  o.reconnect_initial = 20ms;
  o.reconnect_max = 200ms;
  return o;
}

/// A port on 127.0.0.1 that nobody listens on (bound, then released).
std::uint16_t closed_port() {
  boost::asio::io_context ctx;
  boost::asio::ip::tcp::acceptor a(
      ctx, {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(0)});
  return a.local_endpoint().port();
}

std::string random_bytes(std::size_t n) {
  std::mt19937 gen(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// ------------------------------------------------------ pure functions ---

TEST(ClientBackoff, GrowsGeometricallyUpToTheMaximum) {
  detail::Backoff b{100ms, 1000ms, 2.0, 0.0};
  const std::vector<long> expected = {100, 200, 400, 800, 1000, 1000};
  for (int n = 0; n < 6; ++n) EXPECT_EQ(detail::backoff_delay(b, n, 0.5).count(), expected[n]) << n;
  EXPECT_EQ(detail::backoff_delay(b, 100000, 0.5), 1000ms);  // no overflow
  b.multiplier = 1.0;
  EXPECT_EQ(detail::backoff_delay(b, 50, 0.3), 100ms);
}

TEST(ClientBackoff, JitterStaysWithinItsBounds) {
  const detail::Backoff b{100ms, 1000ms, 3.0, 0.25};
  EXPECT_EQ(detail::backoff_delay(b, 0, 0.0), 75ms);
  EXPECT_EQ(detail::backoff_delay(b, 0, 1.0), 125ms);
  EXPECT_EQ(detail::backoff_delay(b, 9, 0.0), 750ms);
  EXPECT_EQ(detail::backoff_delay(b, 9, 1.0), 1250ms);  // max scaled by 1 + jitter
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  bool below = false, above = false;
  for (int i = 0; i < 1000; ++i) {
    const auto d = detail::backoff_delay(b, 1, unit(gen));
    EXPECT_GE(d, 225ms);
    EXPECT_LE(d, 375ms);
    below |= d < 280ms;
    above |= d > 320ms;
  }
  EXPECT_TRUE(below && above) << "the jitter does not spread the delays";
  EXPECT_EQ(detail::backoff_delay(b, 0, -3.0), 75ms);  // unit clamped
  EXPECT_EQ(detail::backoff_delay(b, 0, 7.0), 125ms);
}

TEST(ClientOptionsTest, BadUrlThrowsNamingTheUrl) {
  for (std::string url : {"http://127.0.0.1/", "ws://", "ws://h:0/", "ws://h:70000/",
                          "ws://h/#frag", "not a url", "ws://user@h/", ""}) {
    ClientOptions o;
    o.url = url;
    try {
      Client c(o);
      ADD_FAILURE() << "accepted " << url;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("\"" + url + "\""), std::string::npos) << e.what();
    }
  }
}

TEST(ClientOptionsTest, GoodUrlsAreAccepted) {
  for (std::string url : {"ws://127.0.0.1:1/x?y=1", "ws://[::1]:8080", "WS://Example.com/a",
                          "wss://localhost/", "ws://h:65535?q"}) {
    ClientOptions o;
    o.url = url;
    EXPECT_NO_THROW(Client{o}) << url;
  }
}

TEST(ClientOptionsTest, BadOptionsThrowNamingTheField) {
  auto expect_field = [](std::function<void(ClientOptions&)> change, std::string field) {
    ClientOptions o;
    o.url = "ws://127.0.0.1:1/";
    change(o);
    try {
      Client c(o);
      ADD_FAILURE() << "accepted a bad " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  expect_field([](auto& o) { o.reconnect_initial = 0ms; }, "reconnect_initial");
  expect_field([](auto& o) { o.reconnect_max = 1ms; }, "reconnect_max");
  expect_field([](auto& o) { o.reconnect_multiplier = 0.5; }, "reconnect_multiplier");
  expect_field([](auto& o) { o.reconnect_jitter = 1.5; }, "reconnect_jitter");
  expect_field([](auto& o) { o.max_reconnect_attempts = -2; }, "max_reconnect_attempts");
  expect_field([](auto& o) { o.connect_timeout = 0ms; }, "connect_timeout");
  expect_field([](auto& o) { o.max_queued_bytes = 0; }, "max_queued_bytes");
  expect_field([](auto& o) { o.origin = "a\r\nb"; }, "origin");
  expect_field(
      [](auto& o) {
        o.url = "wss://localhost/";
        o.tls_ca_file = "/nonexistent/ca.pem";
      },
      "tls_ca_file");
}

TEST(ClientOptionsTest, CloseWithACodeThatMayNotBeSentThrows) {
  Client c(options_for("ws://127.0.0.1:1/"));
  EXPECT_THROW(c.close(1006), std::invalid_argument);
  EXPECT_THROW(c.close(999), std::invalid_argument);
  EXPECT_THROW(c.close(2000), std::invalid_argument);
}

// ------------------------------------------------------ against Node ws ---

class ClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<NodeServer> server_;
  void start_server(std::vector<std::string> args = {}) {
    server_ = std::make_unique<NodeServer>(std::move(args));
  }
};

TEST_F(ClientTest, EchoesTextAndBinaryIncludingOneMebibyte) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  const std::string big = random_bytes(1 << 20);
  c.send_text("hello");
  c.send_binary(std::string("\0\1\2", 3));
  c.send_binary(big);
  c.send_text(std::string(70000, 'x'));  // 64-bit length form
  ASSERT_TRUE(ev.wait_messages(4));
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.messages[0], "hello");
  EXPECT_FALSE(ev.binary[0]);
  EXPECT_EQ(ev.messages[1], std::string("\0\1\2", 3));
  EXPECT_TRUE(ev.binary[1]);
  EXPECT_TRUE(ev.messages[2] == big) << "1 MiB echo differs";
  EXPECT_EQ(ev.messages[3], std::string(70000, 'x'));
  EXPECT_EQ(ev.opens, std::vector<bool>{false});
}

TEST_F(ClientTest, SendsOverTheQueueCapAreDroppedAndTheRestGoOutOnceOpen) {
  start_server();
  Events ev;
  auto o = options_for(server_->url());
  o.max_queued_bytes = 1000;
  Client c(o);
  ev.attach(c);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(c.send_text(std::to_string(i) + std::string(99, '.')), SendStatus::buffered) << i;
  EXPECT_EQ(c.queued_bytes(), 1000u);
  EXPECT_EQ(c.send_text("one byte too many"), SendStatus::dropped);
  EXPECT_EQ(c.send_binary(std::string(1001, 'b')), SendStatus::dropped);  // never fits
  c.connect();
  ASSERT_TRUE(ev.wait_messages(10));
  ASSERT_TRUE(ebb::test::eventually([&] { return c.queued_bytes() == 0; }));
  EXPECT_EQ(c.send_text("after"), SendStatus::buffered);
  ASSERT_TRUE(ev.wait_messages(11));
  {
    std::lock_guard lock(ev.m);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(ev.messages[i][0], '0' + i);
    EXPECT_EQ(ev.messages[10], "after");  // the dropped ones never went out
  }
  c.stop();
  EXPECT_EQ(c.send_text("late"), SendStatus::closing);
}

TEST_F(ClientTest, SendsBeforeConnectAreQueuedInOrder) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  for (int i = 0; i < 20; ++i) c.send_text("m" + std::to_string(i));
  c.connect();
  ASSERT_TRUE(ev.wait_messages(20));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ev.message(i), "m" + std::to_string(i));
}

TEST_F(ClientTest, SendsTheUrlPathAndQueryAsTarget) {
  start_server();
  Events ev;
  Client c(options_for(server_->url("/chat/room?x=1&y=%20z")));
  ev.attach(c);
  c.connect();
  c.send_text("target");
  ASSERT_TRUE(ev.wait_messages(1));
  EXPECT_EQ(ev.message(0), "/chat/room?x=1&y=%20z");
}

TEST_F(ClientTest, ConnectsByHostNameAndWithoutPath) {
  start_server();
  Events ev;
  Client c(options_for("ws://localhost:" + std::to_string(server_->port())));
  ev.attach(c);
  c.connect();
  c.send_text("target");
  ASSERT_TRUE(ev.wait_messages(1));
  EXPECT_EQ(ev.message(0), "/");
}

TEST_F(ClientTest, ConcurrentSendersKeepTheirOwnOrder) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  constexpr int kThreads = 4, kEach = 250;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t)
    senders.emplace_back([&c, t] {
      for (int i = 0; i < kEach; ++i) c.send_text(std::to_string(t) + ":" + std::to_string(i));
    });
  for (auto& t : senders) t.join();
  ASSERT_TRUE(ev.wait_messages(kThreads * kEach));
  std::vector<int> next(kThreads, 0);
  std::lock_guard lock(ev.m);
  for (const auto& m : ev.messages) {
    const int t = std::stoi(m.substr(0, m.find(':')));
    EXPECT_EQ(std::stoi(m.substr(m.find(':') + 1)), next[t]++) << m;
  }
}

TEST_F(ClientTest, ConcurrentStopsAreSafe) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  std::thread a([&] { c.stop(); });
  std::thread b([&] { c.stop(); });
  c.stop();
  a.join();
  b.join();
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.closes.size(), 1u);
}

TEST_F(ClientTest, ReceivesFragmentedMessages) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  c.send_text("fragments:hello, fragmented world");
  c.send_text("bin-fragments:100000");
  ASSERT_TRUE(ev.wait_messages(2));
  std::string expected(100000, '\0');
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<char>(i % 251);
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.messages[0], "hello, fragmented world");
  EXPECT_FALSE(ev.binary[0]);
  EXPECT_TRUE(ev.messages[1] == expected);
  EXPECT_TRUE(ev.binary[1]);
}

TEST_F(ClientTest, PermessageDeflateBothWays) {
  start_server({"--deflate"});
  Events ev;
  auto o = options_for(server_->url());
  o.deflate = true;
  Client c(o);
  ev.attach(c);
  c.connect();
  c.send_text("extensions");
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + " of compressible text\n";
  const std::string bin = random_bytes(300000);
  c.send_text(text);
  c.send_binary(bin);
  c.send_text("tiny");  // under deflate_min_size: sent uncompressed
  c.send_text(text);    // context takeover across messages
  ASSERT_TRUE(ev.wait_messages(5));
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.messages[0], "permessage-deflate");
  EXPECT_TRUE(ev.messages[1] == text);
  EXPECT_TRUE(ev.messages[2] == bin);
  EXPECT_EQ(ev.messages[3], "tiny");
  EXPECT_TRUE(ev.messages[4] == text);
}

TEST_F(ClientTest, SendingFromOnMessageKeepsTheReceivedViewIntact) {
  start_server({"--deflate"});
  Events ev;
  auto o = options_for(server_->url());
  o.deflate = true;
  Client c(o);
  ev.attach(c);
  auto payload = [](int i) { return std::to_string(i) + std::string(5000, 'a' + i % 26); };
  c.on_message([&](std::string_view msg, bool) {
    const int i = std::stoi(std::string(msg.substr(0, msg.find_first_not_of("0123456789"))));
    if (i < 10) c.send_text(payload(i + 1));  // compresses while `msg` is still in use
    ev.record([&] { ev.messages.emplace_back(msg); });
  });
  c.connect();
  c.send_text(payload(0));
  ASSERT_TRUE(ev.wait_messages(11));
  for (int i = 0; i <= 10; ++i) EXPECT_TRUE(ev.message(i) == payload(i)) << i;
}

TEST_F(ClientTest, NoDeflateUnlessAsked) {
  start_server({"--deflate"});
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  c.send_text("extensions");
  ASSERT_TRUE(ev.wait_messages(1));
  EXPECT_EQ(ev.message(0), "");
}

TEST_F(ClientTest, AnswersPingsWithPongs) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  c.send_text("ping:abc");
  c.send_text("ping:");
  ASSERT_TRUE(ev.wait_messages(2));
  EXPECT_EQ(ev.message(0), "pong-seen:abc");
  EXPECT_EQ(ev.message(1), "pong-seen:");
}

TEST_F(ClientTest, HeartbeatPingsTheServer) {
  start_server();
  Events ev;
  auto o = options_for(server_->url());
  o.ping_interval = 30ms;
  o.pong_timeout = 1000ms;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  // Ask until the server has seen three pings (bounded by the deadline).
  const auto limit = std::chrono::steady_clock::now() + kDeadline;
  bool seen = false;
  for (std::size_t asked = 0; !seen && std::chrono::steady_clock::now() < limit;) {
    c.send_text("pings");
    ASSERT_TRUE(ev.wait_messages(++asked));
    seen = std::stoi(ev.message(asked - 1).substr(6)) >= 3;
    if (!seen) ev.wait([] { return false; }, 30ms);  // pace the questions
  }
  EXPECT_TRUE(seen);
  std::lock_guard lock(ev.m);
  EXPECT_TRUE(ev.errors.empty());
  EXPECT_EQ(ev.opens.size(), 1u);
}

TEST_F(ClientTest, MissingPongFailsTheConnectionAndReconnects) {
  start_server({"--no-autopong"});
  Events ev;
  auto o = options_for(server_->url());
  o.ping_interval = 50ms;
  o.pong_timeout = 100ms;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(ev.wait_opens(2));
  std::lock_guard lock(ev.m);
  ASSERT_FALSE(ev.errors.empty());
  EXPECT_EQ(ev.errors[0].first, make_error_code(error::pong_timeout));
  ASSERT_FALSE(ev.closes.empty());
  EXPECT_EQ(ev.closes[0].first, 1006);
  EXPECT_EQ(ev.opens[1], true);
}

TEST_F(ClientTest, ServerCloseIsReportedAndReconnects) {
  start_server();
  for (std::uint16_t code : {1000, 1001, 1012, 4000}) {
    Events ev;
    Client c(options_for(server_->url()));
    ev.attach(c);
    c.connect();
    ASSERT_TRUE(c.wait_open(kDeadline));
    c.send_text("close:" + std::to_string(code) + ":bye");
    ASSERT_TRUE(ev.wait_opens(2)) << code;
    std::lock_guard lock(ev.m);
    ASSERT_EQ(ev.closes.size(), 1u);
    EXPECT_EQ(ev.closes[0].first, code);
    EXPECT_EQ(ev.closes[0].second, "bye");
    ASSERT_EQ(ev.reconnects.size(), 1u);
    EXPECT_EQ(ev.reconnects[0].first, 1);
    EXPECT_EQ(ev.opens, (std::vector<bool>{false, true}));
    EXPECT_TRUE(ev.errors.empty()) << ev.errors[0].second;
  }
}

TEST_F(ClientTest, ServerCloseWithoutReconnectEndsTheClient) {
  start_server();
  Events ev;
  auto o = options_for(server_->url());
  o.reconnect = false;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  c.send_text("close:1001");
  ASSERT_TRUE(ev.wait_closes(1));
  // Settled: wait_open returns at once instead of at its deadline.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.wait_open(kDeadline));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kDeadline / 2);
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.closes[0].first, 1001);
  EXPECT_TRUE(ev.reconnects.empty());
}

TEST_F(ClientTest, OwnCloseCompletesTheHandshakeWithoutReconnect) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  for (int i = 0; i < 5; ++i) c.send_text("before-close-" + std::to_string(i));
  c.close(4001, "done here");
  ASSERT_TRUE(ev.wait_closes(1));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.wait_open(kDeadline));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kDeadline / 2);
  EXPECT_FALSE(c.is_open());
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.closes[0].first, 4001);  // the server echoed our code
  EXPECT_EQ(ev.closes[0].second, "done here");
  EXPECT_TRUE(ev.reconnects.empty());
  EXPECT_TRUE(ev.errors.empty());
  // Everything sent before close() was echoed before the Close.
  ASSERT_EQ(ev.messages.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ev.messages[i], "before-close-" + std::to_string(i));
}

TEST_F(ClientTest, ConnectAgainAfterClose) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  c.close();
  c.connect();  // runs once the close handshake is done
  ASSERT_TRUE(ev.wait_opens(2));
  c.send_text("again");
  ASSERT_TRUE(ev.wait_messages(1));
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.closes.size(), 1u);
  EXPECT_EQ(ev.opens, (std::vector<bool>{false, false}));  // a new connect(), not a reconnect
}

TEST_F(ClientTest, ReconnectsAfterTheTransportDrops) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  c.send_text("drop");
  ASSERT_TRUE(ev.wait_opens(2));
  c.send_text("after");
  ASSERT_TRUE(ev.wait_messages(1));
  std::lock_guard lock(ev.m);
  ASSERT_EQ(ev.closes.size(), 1u);
  EXPECT_EQ(ev.closes[0].first, 1006);
  EXPECT_FALSE(ev.errors.empty());
  ASSERT_EQ(ev.reconnects.size(), 1u);
  EXPECT_EQ(ev.reconnects[0].first, 1);
  EXPECT_GE(ev.reconnects[0].second, 16ms);  // 20 ms ± 20 %
  EXPECT_LE(ev.reconnects[0].second, 24ms);
  EXPECT_EQ(ev.opens, (std::vector<bool>{false, true}));
  EXPECT_EQ(ev.messages[0], "after");
}

TEST_F(ClientTest, ResumeHookRunsBeforeQueuedSends) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  // Our own on_open/on_close replace the recorder's: they also send.
  c.on_open([&](bool reconnected) {
    if (reconnected) c.send_text("from-on-open");
    ev.record([&] { ev.opens.push_back(reconnected); });
  });
  c.on_resume([&](Client& self) {
    self.send_text("resume-1");
    self.send_text("resume-2");
  });
  c.on_close([&](std::uint16_t code, std::string_view) {
    c.send_text("queued-1");  // disconnected now: queued
    ev.record([&] { ev.closes.emplace_back(code, ""); });
  });
  c.on_reconnect([&](int, milliseconds) { c.send_text("queued-2"); });
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  c.send_text("drop");
  ASSERT_TRUE(ev.wait_messages(5));
  std::lock_guard lock(ev.m);
  const std::vector<std::string> expected = {"from-on-open", "resume-1", "resume-2", "queued-1",
                                             "queued-2"};
  EXPECT_EQ(ev.messages, expected);
  EXPECT_EQ(ev.opens, (std::vector<bool>{false, true}));
}

TEST_F(ClientTest, ResumeHookDoesNotRunOnTheFirstOpen) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.on_resume([](Client& self) { self.send_text("resumed"); });
  c.send_text("first");
  c.connect();
  ASSERT_TRUE(ev.wait_messages(1));
  c.send_text("second");
  ASSERT_TRUE(ev.wait_messages(2));
  EXPECT_EQ(ev.message(0), "first");
  EXPECT_EQ(ev.message(1), "second");
}

TEST_F(ClientTest, TooBigMessageFailsWith1009AndReconnects) {
  start_server();
  Events ev;
  auto o = options_for(server_->url());
  o.max_message_size = 1000;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  c.send_text(std::string(2000, 'a'));
  ASSERT_TRUE(ev.wait_opens(2));
  std::lock_guard lock(ev.m);
  ASSERT_FALSE(ev.errors.empty());
  EXPECT_EQ(ev.errors[0].first, make_error_code(error::message_too_big));
  ASSERT_EQ(ev.closes.size(), 1u);
  EXPECT_EQ(ev.closes[0].first, 1009);
}

TEST_F(ClientTest, StopFromACallbackDoesNotDeadlock) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.on_message([&](std::string_view msg, bool) {
    c.stop();  // on the client thread: starts the shutdown, does not join
    ev.record([&] { ev.messages.emplace_back(msg); });
  });
  c.connect();
  c.send_text("stop please");
  ASSERT_TRUE(ev.wait_messages(1));
  ASSERT_TRUE(ev.wait_closes(1));
  EXPECT_FALSE(c.wait_open(1ms));
  c.stop();  // from this thread: joins
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.closes[0].first, 1000);
  EXPECT_TRUE(ev.reconnects.empty());
  EXPECT_THROW(c.connect(), std::logic_error);
}

TEST_F(ClientTest, StopWhileOpenClosesCleanlyAndNoCallbackFollows) {
  start_server();
  Events ev;
  Client c(options_for(server_->url()));
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  c.stop();
  std::lock_guard lock(ev.m);
  ASSERT_EQ(ev.closes.size(), 1u);  // before stop() returned
  EXPECT_EQ(ev.closes[0].first, 1000);
  EXPECT_TRUE(ev.errors.empty());
  EXPECT_TRUE(ev.reconnects.empty());
  EXPECT_FALSE(c.is_open());
  c.send_text("ignored after stop");
  c.stop();  // idempotent
}

TEST_F(ClientTest, StopWhileWaitingToReconnectReturnsPromptly) {
  Events ev;
  auto o = options_for("ws://127.0.0.1:" + std::to_string(closed_port()) + "/");
  o.reconnect_initial = 60s;
  o.reconnect_max = 60s;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(ev.wait([&] { return !ev.reconnects.empty(); }));
  const auto t0 = std::chrono::steady_clock::now();
  c.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_F(ClientTest, BackoffAgainstAClosedPortRespectsMaxAttempts) {
  Events ev;
  auto o = options_for("ws://127.0.0.1:" + std::to_string(closed_port()) + "/");
  o.reconnect_initial = 10ms;
  o.reconnect_max = 40ms;
  o.reconnect_multiplier = 2.0;
  o.reconnect_jitter = 0.5;
  o.max_reconnect_attempts = 5;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(ev.wait_closes(1));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.wait_open(kDeadline));  // settled: returns at once
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kDeadline / 2);
  std::lock_guard lock(ev.m);
  ASSERT_EQ(ev.reconnects.size(), 5u);
  const std::vector<double> base = {10, 20, 40, 40, 40};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(ev.reconnects[i].first, static_cast<int>(i + 1));
    const auto d = static_cast<double>(ev.reconnects[i].second.count());
    EXPECT_GE(d, std::floor(base[i] * 0.5)) << i;
    EXPECT_LE(d, std::ceil(base[i] * 1.5)) << i;
  }
  ASSERT_EQ(ev.closes.size(), 1u);  // once, when it gave up
  EXPECT_EQ(ev.closes[0].first, 1006);
  ASSERT_EQ(ev.errors.size(), 7u);  // 6 refused connections, then giving up
  EXPECT_EQ(ev.errors[0].first, std::errc::connection_refused);
  EXPECT_NE(ev.errors.back().second.find("giving up"), std::string::npos);
  EXPECT_TRUE(ev.opens.empty());
}

TEST_F(ClientTest, FirstConnectFailureWithoutReconnectReportsOnce) {
  Events ev;
  auto o = options_for("ws://127.0.0.1:" + std::to_string(closed_port()) + "/");
  o.reconnect = false;
  Client c(o);
  ev.attach(c);
  c.connect();
  EXPECT_FALSE(c.wait_open(kDeadline));
  ASSERT_TRUE(ev.wait_closes(1));
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.closes[0].first, 1006);
  EXPECT_EQ(ev.errors.size(), 1u);
  EXPECT_TRUE(ev.reconnects.empty());
}

/// Accepts one connection on 127.0.0.1, reads the request head and answers
/// with respond(head); then hangs up, or (hang_up false) reads and ignores
/// everything, never answering a Close. Runs for at most kDeadline.
class ScriptedServer {
 public:
  /// `keep_reading` false: after answering, the server reads nothing more
  /// (a stalled peer: the client's writes back up).
  ScriptedServer(std::function<std::string(const std::string& head)> respond, bool hang_up,
                 bool keep_reading = true)
      : acceptor_(ctx_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        socket_(ctx_),
        respond_(std::move(respond)),
        hang_up_(hang_up),
        keep_reading_(keep_reading) {
    acceptor_.async_accept(socket_, [this](const boost::system::error_code& ec) {
      if (!ec) read();
    });
    thread_ = std::thread([this] { ctx_.run_for(kDeadline); });
  }
  ~ScriptedServer() {
    boost::asio::post(ctx_, [this] { ctx_.stop(); });
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port()) + "/"; }

  /// A valid 101 answer to the request head, followed by `frames`.
  static std::string upgrade(const std::string& head, std::string_view frames = {}) {
    const auto at = head.find("Sec-WebSocket-Key: ") + 19;
    const std::string key = head.substr(at, head.find("\r\n", at) - at);
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: " +
           handshake::accept_key(key) + "\r\n\r\n" + std::string(frames);
  }

 private:
  void read() {
    socket_.async_read_some(
        boost::asio::buffer(buf_), [this](const boost::system::error_code& ec, std::size_t n) {
          if (ec) return;
          if (answered_) return read();  // ignore frames, never answer
          head_.append(buf_, n);
          if (head_.find("\r\n\r\n") == std::string::npos) return read();
          answered_ = true;
          response_ = respond_(head_);
          boost::asio::async_write(socket_, boost::asio::buffer(response_),
                                   [this](const boost::system::error_code&, std::size_t) {
                                     boost::system::error_code ignored;
                                     if (hang_up_)
                                       socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both,
                                                        ignored);
                                   });
          if (!hang_up_ && keep_reading_) read();
        });
  }

  boost::asio::io_context ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ip::tcp::socket socket_;
  std::function<std::string(const std::string&)> respond_;
  bool hang_up_;
  bool keep_reading_;
  bool answered_ = false;
  std::string response_;
  char buf_[4096];
  std::string head_;
  std::thread thread_;
};

TEST(ClientHandshake, AnUpgradeAnsweredWithoutA101IsReported) {
  ScriptedServer http(
      [](const std::string&) { return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"; },
      true);
  Events ev;
  auto o = options_for(http.url());
  o.reconnect = false;
  Client c(o);
  ev.attach(c);
  c.connect();
  EXPECT_FALSE(c.wait_open(kDeadline));
  ASSERT_TRUE(ev.wait_closes(1));
  std::lock_guard lock(ev.m);
  ASSERT_EQ(ev.errors.size(), 1u);
  EXPECT_EQ(ev.errors[0].first, make_error_code(error::handshake_failed));
  EXPECT_NE(ev.errors[0].second.find("404"), std::string::npos) << ev.errors[0].second;
}

TEST(ClientHandshake, AnUnansweredCloseIsBoundedByCloseTimeout) {
  ScriptedServer ws([](const std::string& head) { return ScriptedServer::upgrade(head); }, false);
  Events ev;
  auto o = options_for(ws.url());
  o.close_timeout = 200ms;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  const auto t0 = std::chrono::steady_clock::now();
  c.close();
  ASSERT_TRUE(ev.wait_closes(1));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.closes[0].first, 1006);  // no Close came back
  ASSERT_EQ(ev.errors.size(), 1u);
  EXPECT_EQ(ev.errors[0].first, make_error_code(error::close_timeout));
  EXPECT_TRUE(ev.reconnects.empty());
}

TEST(ClientHandshake, AMaskedFrameFromTheServerFailsTheConnectionWith1002) {
  // A server must not mask (RFC 6455 §5.1): "hello" masked with 01 02 03 04.
  std::string frame = "\x81\x85\x01\x02\x03\x04";
  const std::string hello = "hello";
  for (std::size_t i = 0; i < hello.size(); ++i) frame += static_cast<char>(hello[i] ^ (i % 4 + 1));
  ScriptedServer ws([&](const std::string& head) { return ScriptedServer::upgrade(head, frame); },
                    false);
  Events ev;
  auto o = options_for(ws.url());
  o.close_timeout = 100ms;
  o.reconnect = false;
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(ev.wait_closes(1));
  std::lock_guard lock(ev.m);
  EXPECT_TRUE(ev.messages.empty());
  EXPECT_EQ(ev.closes[0].first, 1002);
  ASSERT_FALSE(ev.errors.empty());
  EXPECT_EQ(ev.errors[0].first, make_error_code(error::protocol_error));
}

TEST(ClientHandshake, FramesInTheSameReadAsTheResponseAreDelivered) {
  const std::string frames = std::string("\x81\x02hi", 4) + std::string("\x82\x01\x00", 3);
  ScriptedServer ws([&](const std::string& head) { return ScriptedServer::upgrade(head, frames); },
                    false);
  Events ev;
  auto o = options_for(ws.url());
  o.close_timeout = 100ms;  // the scripted server never answers our Close
  Client c(o);
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(ev.wait_messages(2));
  std::lock_guard lock(ev.m);
  EXPECT_EQ(ev.messages[0], "hi");
  EXPECT_EQ(ev.messages[1], std::string(1, '\0'));
  EXPECT_TRUE(ev.binary[1]);
}

TEST(ClientHandshake, ASilentServerHitsTheConnectTimeout) {
  // Accepts (the kernel does) but never answers the upgrade.
  boost::asio::io_context ctx;
  boost::asio::ip::tcp::acceptor quiet(
      ctx, {boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(0)});
  Events ev;
  auto o = options_for("ws://127.0.0.1:" + std::to_string(quiet.local_endpoint().port()) + "/");
  o.reconnect = false;
  o.connect_timeout = 200ms;
  Client c(o);
  ev.attach(c);
  const auto t0 = std::chrono::steady_clock::now();
  c.connect();
  EXPECT_FALSE(c.wait_open(kDeadline));
  ASSERT_TRUE(ev.wait_closes(1));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
  std::lock_guard lock(ev.m);
  ASSERT_EQ(ev.errors.size(), 1u);
  EXPECT_EQ(ev.errors[0].first, std::errc::timed_out);
}

TEST(ClientHandshake, StopDuringTheHandshakeEndsTheAttemptWithoutCallbacks) {
  // The server reads the upgrade and never answers: the client is mid-handshake.
  std::atomic<bool> head_seen{false};
  ScriptedServer ws(
      [&](const std::string&) {
        head_seen = true;
        return std::string();
      },
      false);
  Events ev;
  Client c(options_for(ws.url()));
  ev.attach(c);
  c.connect();
  ASSERT_TRUE(ebb::test::eventually([&] { return head_seen.load(); }));
  c.stop();  // once dereferenced the attempt it had just dropped
  EXPECT_FALSE(c.is_open());
  std::lock_guard lock(ev.m);
  EXPECT_TRUE(ev.closes.empty());  // it never opened: no on_close
}

// ------------------------------------------------------ send queue cap ---

TEST(ClientSendQueue, AStalledServerMakesSendsDropAtTheCapAndTheConnectionStays) {
  ScriptedServer ws([](const std::string& head) { return ScriptedServer::upgrade(head); }, false,
                    /*keep_reading=*/false);
  auto o = options_for(ws.url());
  o.max_queued_bytes = 1 << 20;
  o.close_timeout = 100ms;
  Client c(o);
  c.connect();
  ASSERT_TRUE(c.wait_open(kDeadline));
  // The kernel's buffers fill first, then the client's queue up to the cap.
  const std::string chunk(64 * 1024, 'x');
  SendStatus last = SendStatus::buffered;
  std::size_t queued_before_last = 0;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (last == SendStatus::buffered && std::chrono::steady_clock::now() < deadline) {
    queued_before_last = c.queued_bytes();
    last = c.send_binary(chunk);
    if (last == SendStatus::buffered && c.queued_bytes() > 0) std::this_thread::yield();
  }
  EXPECT_EQ(last, SendStatus::dropped);
  EXPECT_LE(c.queued_bytes(), o.max_queued_bytes);
  // Dropped only at the cap. Read before the send: the client thread may
  // still move bytes to the kernel (its buffers can grow) and so only lower
  // the count, and the drop means the count at that moment plus the chunk
  // exceeded the cap.
  EXPECT_GT(queued_before_last, o.max_queued_bytes - chunk.size());
  EXPECT_TRUE(c.is_open());  // dropping a message does not end the connection
  c.stop();
  EXPECT_EQ(c.send_text("after stop"), SendStatus::closing);
}

// ----------------------------------------------------------------- TLS ---

TEST_F(ClientTest, WssEchoWithATestCertificate) {
  ebb::test::TlsFiles tls;
  ASSERT_TRUE(tls.ok()) << "openssl could not make a certificate";
  start_server({"--tls", tls.cert(), tls.key()});
  for (std::string host : {"localhost", "127.0.0.1"}) {
    Events ev;
    auto o = options_for(server_->url("/secure?x=1", "wss", host));
    o.tls_ca_file = tls.cert();
    Client c(o);
    ev.attach(c);
    c.connect();
    ASSERT_TRUE(c.wait_open(kDeadline)) << host;
    const std::string big = random_bytes(200000);
    c.send_text("target");
    c.send_binary(big);
    ASSERT_TRUE(ev.wait_messages(2)) << host;
    EXPECT_EQ(ev.message(0), "/secure?x=1");
    EXPECT_TRUE(ev.message(1) == big);
    c.close();
    ASSERT_TRUE(ev.wait_closes(1));
    std::lock_guard lock(ev.m);
    EXPECT_EQ(ev.closes[0].first, 1000);
    EXPECT_TRUE(ev.errors.empty()) << ev.errors[0].second;
  }
}

TEST_F(ClientTest, WssRejectsAnUntrustedCertificate) {
  ebb::test::TlsFiles tls;
  ASSERT_TRUE(tls.ok());
  start_server({"--tls", tls.cert(), tls.key()});
  Events ev;
  auto o = options_for(server_->url("/", "wss", "localhost"));
  o.reconnect = false;  // no tls_ca_file: the self-signed certificate is unknown
  Client c(o);
  ev.attach(c);
  c.connect();
  EXPECT_FALSE(c.wait_open(kDeadline));
  ASSERT_TRUE(ev.wait_closes(1));
  std::lock_guard lock(ev.m);
  ASSERT_EQ(ev.errors.size(), 1u);
  EXPECT_NE(ev.errors[0].second.find("TLS handshake"), std::string::npos) << ev.errors[0].second;
  EXPECT_TRUE(ev.opens.empty());
}

TEST_F(ClientTest, WssWithoutVerificationAcceptsAnyCertificate) {
  ebb::test::TlsFiles tls;
  ASSERT_TRUE(tls.ok());
  start_server({"--tls", tls.cert(), tls.key()});
  auto o = options_for(server_->url("/", "wss", "localhost"));
  o.tls_verify = false;
  Client c(o);
  c.connect();
  EXPECT_TRUE(c.wait_open(kDeadline));
}

}  // namespace
}  // namespace ebb::websocket
