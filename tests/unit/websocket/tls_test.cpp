// The server's wss:// side against ebb's own client over real TLS sockets.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <ebb/websocket.hpp>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "unit/support/tls_files.hpp"

namespace {

using namespace std::chrono_literals;
using ebb::websocket::Client;
using ebb::websocket::ClientOptions;
using ebb::websocket::Server;
using ebb::websocket::ServerOptions;
using ebb::websocket::Session;

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
  bool wait_for(std::size_t n, std::chrono::milliseconds t) {
    std::unique_lock l(m);
    return cv.wait_for(l, t, [&] { return messages.size() >= n; });
  }
};

struct TlsServer {
  explicit TlsServer(const ebb::test::TlsFiles& files) : ws(options(files)) {
    ws.on_open([this](Session& s) { opened.set_value(s.shared_from_this()); });
  }
  static ServerOptions options(const ebb::test::TlsFiles& files) {
    ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.tls.cert_file = files.cert();
    o.tls.key_file = files.key();
    return o;
  }
  /// A wss:// client trusting the test certificate, connecting, its
  /// messages going to `inbox`.
  std::unique_ptr<Client> connect(const ebb::test::TlsFiles& files, Inbox& inbox) const {
    ClientOptions o;
    o.url = "wss://127.0.0.1:" + std::to_string(ws.port()) + "/";
    o.tls_ca_file = files.cert();
    o.reconnect = false;
    auto client = std::make_unique<Client>(o);
    inbox.attach(*client);
    client->connect();
    return client;
  }
  std::shared_ptr<Session> session() {
    auto f = opened.get_future();
    return f.wait_for(5s) == std::future_status::ready ? f.get() : nullptr;
  }

  std::promise<std::shared_ptr<Session>> opened;  // before ws: its callback sets it
  Server ws;
};

TEST(ServerTls, EchoesOverWss) {
  ebb::test::TlsFiles files;
  ASSERT_TRUE(files.ok()) << "openssl could not make a certificate";
  TlsServer server(files);
  server.ws.on_message([](Session& s, std::string_view msg) { s.send_text(msg); });
  server.ws.on_binary([](Session& s, std::string_view msg) { s.send_binary(msg); });
  server.ws.start();
  Inbox inbox;
  auto client = server.connect(files, inbox);
  ASSERT_TRUE(client->wait_open(5s));
  client->send_text("hello over TLS");
  ASSERT_TRUE(inbox.wait_for(1, 5s));
  EXPECT_EQ(inbox.messages[0], "hello over TLS");
  client->stop();
  server.ws.stop();
}

// Sends made while a TLS write is still going (a message longer than one
// TLS record is written record by record, one completion each) must not move
// the bytes under that write: each send from another thread is its own
// handler on the session's thread, so the 4 MiB one is queued while the
// 1 MiB one is mid-write. ASan sees a use after free if they move.
TEST(ServerTls, SendsDuringAnUnfinishedTlsWriteArriveIntact) {
  ebb::test::TlsFiles files;
  ASSERT_TRUE(files.ok()) << "openssl could not make a certificate";
  TlsServer server(files);
  server.ws.start();
  Inbox inbox;
  auto client = server.connect(files, inbox);
  ASSERT_TRUE(client->wait_open(5s));
  auto session = server.session();
  ASSERT_TRUE(session);

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

}  // namespace
