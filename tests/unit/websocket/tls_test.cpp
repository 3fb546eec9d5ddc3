// The server's wss:// side against ebb's own client over real TLS sockets.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <ebb/websocket.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "unit/support/tls_files.hpp"
#include "unit/support/wait.hpp"
#include "websocket/detail/transport_fault.hpp"

namespace {

using namespace std::chrono_literals;
using ebb::websocket::Client;
using ebb::websocket::ClientOptions;
using ebb::websocket::Server;
using ebb::websocket::ServerOptions;
using ebb::websocket::Session;
using ebb::websocket::detail::TransportFault;

/// Messages a client received, in order.
struct Inbox {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> messages;
  void attach(Client& c) {
    c.on_message([this](std::string_view msg, bool) {
      std::lock_guard l(m);
      messages.emplace_back(msg);
      cv.notify_all();
    });
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds t = 10s) {
    std::unique_lock l(m);
    return cv.wait_for(l, t, [&] { return messages.size() >= n; });
  }
};

/// A wss:// server on a test certificate that records its sessions and the
/// codes they closed with. Set handlers on `ws`, then start it.
struct TlsServer {
  TlsServer() : ws(options(files)) {
    ws.on_open([this](Session& s) {
      std::lock_guard l(m);
      sessions.push_back(s.shared_from_this());
      cv.notify_all();
    });
    ws.on_close([this](Session&, std::uint16_t code, std::string_view) {
      std::lock_guard l(m);
      close_codes.push_back(code);
      cv.notify_all();
    });
  }
  static ServerOptions options(const ebb::test::TlsFiles& files) {
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.tls.cert_file = files.cert();
    o.tls.key_file = files.key();
    return o;
  }
  void echo() {
    ws.on_message([](Session& s, std::string_view msg) { s.send_text(msg); });
    ws.on_binary([](Session& s, std::string_view msg) { s.send_binary(msg); });
  }
  /// A wss:// client trusting the test certificate, connecting, its
  /// messages going to `inbox`.
  std::unique_ptr<Client> connect(Inbox& inbox) const {
    ClientOptions o;
    o.url = "wss://127.0.0.1:" + std::to_string(ws.port()) + "/";
    o.tls_ca_file = files.cert();
    o.reconnect = false;
    auto client = std::make_unique<Client>(o);
    inbox.attach(*client);
    client->connect();
    return client;
  }
  template <class Pred>
  bool wait(Pred done) {
    std::unique_lock l(m);
    return cv.wait_for(l, 10s, done);
  }

  ebb::test::TlsFiles files;  // first: the server reads them
  std::mutex m;               // before ws: its callbacks use these
  std::condition_variable cv;
  std::vector<std::shared_ptr<Session>> sessions;
  std::vector<std::uint16_t> close_codes;
  Server ws;
};

TEST(ServerTls, EchoesOverWss) {
  TlsServer server;
  ASSERT_TRUE(server.files.ok()) << "openssl could not make a certificate";
  server.echo();
  server.ws.start();
  Inbox inbox;
  auto client = server.connect(inbox);
  ASSERT_TRUE(client->wait_open(5s));
  client->send_text("hello over TLS");
  ASSERT_TRUE(inbox.wait_for(1));
  EXPECT_EQ(inbox.messages[0], "hello over TLS");
  client->stop();
  server.ws.stop();
}

// Sends made while a TLS write is still going (a message longer than one
// TLS record is written record by record, one completion each) must not move
// the bytes under that write: each send from another thread is its own
// handler on the session's thread, so the 4 MiB one is queued while the
// 1 MiB one is mid-write. It crashed in SSL_write when they moved.
TEST(ServerTls, SendsDuringAnUnfinishedTlsWriteArriveIntact) {
  TlsServer server;
  ASSERT_TRUE(server.files.ok()) << "openssl could not make a certificate";
  server.ws.start();
  Inbox inbox;
  auto client = server.connect(inbox);
  ASSERT_TRUE(client->wait_open(5s));
  ASSERT_TRUE(server.wait([&] { return server.sessions.size() == 1; }));
  auto session = server.sessions[0];

  const std::string first(1u << 20, 'a');
  const std::string second(4u << 20, 'b');
  session->send_binary(first);
  session->send_binary(second);
  session->send_text("done");
  ASSERT_TRUE(inbox.wait_for(3, 20s));
  EXPECT_EQ(inbox.messages[0].size(), first.size());
  EXPECT_TRUE(inbox.messages[0] == first);
  EXPECT_EQ(inbox.messages[1].size(), second.size());
  EXPECT_TRUE(inbox.messages[1] == second);
  EXPECT_EQ(inbox.messages[2], "done");
  client->stop();
  server.ws.stop();
}

// As Server.Injected*ErrorEndsOnlyThatSessionOnce, over TLS: a failed read or
// write ends that session once with 1006, out of its rooms; the other lives.
void expect_tls_fault_ends_only_that_session(TransportFault& fault, int error) {
  TlsServer server;
  ASSERT_TRUE(server.files.ok()) << "openssl could not make a certificate";
  server.echo();
  server.ws.start();
  Inbox victim_in, bystander_in;
  auto victim = server.connect(victim_in);
  ASSERT_TRUE(victim->wait_open(5s));
  ASSERT_TRUE(server.wait([&] { return server.sessions.size() == 1; }));
  auto bystander = server.connect(bystander_in);
  ASSERT_TRUE(bystander->wait_open(5s));
  ASSERT_TRUE(server.wait([&] { return server.sessions.size() == 2; }));
  for (auto& s : server.sessions) server.ws.join_room(s, "r");
  ASSERT_TRUE(ebb::test::eventually([&] { return server.ws.room_size("r") == 2; }));

  struct Disarm {
    TransportFault& fault;
    ~Disarm() { fault.arm(0, 0); }  // also when an assertion returns early
  } disarm{fault};
  // Only the victim's: the bystander's 101 write may still be completing.
  fault.arm(1, error, server.sessions[0]->id());
  victim->send_text("this read or its echo fails");
  ASSERT_TRUE(server.wait([&] { return server.close_codes.size() == 1; }));
  EXPECT_EQ(server.close_codes[0], 1006);
  EXPECT_TRUE(server.sessions[0]->is_closing());
  EXPECT_EQ(server.ws.room_size("r"), 1u);
  bystander->send_text("still here");
  ASSERT_TRUE(bystander_in.wait_for(1));
  EXPECT_EQ(bystander_in.messages[0], "still here");
  victim->stop();
  bystander->stop();
  server.ws.stop();
  EXPECT_EQ(server.close_codes.size(), 2u);  // the victim's once, the bystander's
}

TEST(ServerTls, InjectedReadErrorEndsOnlyThatSessionOnce) {
  expect_tls_fault_ends_only_that_session(ebb::websocket::detail::read_fault, ECONNRESET);
}

TEST(ServerTls, InjectedWriteErrorEndsOnlyThatSessionOnce) {
  expect_tls_fault_ends_only_that_session(ebb::websocket::detail::write_fault, EPIPE);
}

}  // namespace
