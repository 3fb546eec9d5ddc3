// Resume latency: a client that missed N room messages rejoins with its last
// seq; how long until the replay is complete (room.joined) and every message
// arrived. Real server, real SQLite file, loopback WebSocket.
//
//   build/release/bench/resume_bench [missed=10000] [reps=5]
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <ebb.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
// Minimal blocking WebSocket client: enough for one upgrade and text frames.
class Ws {
 public:
  explicit Ws(std::uint16_t port) : socket_(ctx_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    socket_.set_option(tcp::no_delay(true));
    std::string req =
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    asio::write(socket_, asio::buffer(req));
    asio::read_until(socket_, asio::dynamic_buffer(buf_), "\r\n\r\n");
    buf_.erase(0, buf_.find("\r\n\r\n") + 4);
  }
  void send_text(const std::string& s) {
    std::string f;
    f.push_back(char(0x81));
    if (s.size() < 126) {
      f.push_back(char(0x80 | s.size()));
    } else {
      f.push_back(char(0x80 | 126));
      f.push_back(char(s.size() >> 8));
      f.push_back(char(s.size() & 0xff));
    }
    f.append(4, '\0');  // zero mask
    f += s;
    asio::write(socket_, asio::buffer(f));
  }
  std::string read_text() {
    for (;;) {
      if (buf_.size() >= 2) {
        std::size_t len = std::uint8_t(buf_[1]) & 0x7f, hdr = 2;
        if (len == 126 && buf_.size() >= 4) {
          len = (std::size_t(std::uint8_t(buf_[2])) << 8) | std::uint8_t(buf_[3]);
          hdr = 4;
        } else if (len == 127 && buf_.size() >= 10) {
          len = 0;
          for (int i = 2; i < 10; ++i) len = (len << 8) | std::uint8_t(buf_[i]);
          hdr = 10;
        }
        if (len < 126 || hdr > 2) {
          if (buf_.size() >= hdr + len) {
            std::string out = buf_.substr(hdr, len);
            buf_.erase(0, hdr + len);
            return out;
          }
        }
      }
      char tmp[65536];
      auto n = socket_.read_some(asio::buffer(tmp));
      buf_.append(tmp, n);
    }
  }

 private:
  asio::io_context ctx_;
  tcp::socket socket_;
  std::string buf_;
};
}  // namespace

int main(int argc, char** argv) {
  const int missed = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  auto dir = std::filesystem::temp_directory_path() / "ebb_resume_bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ebb::websocket::SqliteMessageStore store((dir / "messages.db").string());
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(2);
  ebb::websocket::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  ebb::websocket::Server ws{o, executor};
  ebb::websocket::ReliableRooms rooms{ws, store};
  ws.on_typed_message([&](ebb::websocket::Session& s, const std::string& t,
                          const ebb::json::kvs& p) { rooms.handle(s, t, p); });
  ws.start();
  // A typical chat message body.
  for (int i = 0; i < missed; ++i)
    rooms.publish("bench", ebb::json::object{{"name", "alice"},
                                             {"text", "message number " + std::to_string(i)}});
  store.flush();
  std::printf("resume_bench: %d missed messages, %d reps\n", missed, reps);
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    Ws c(ws.port());
    auto t0 = Clock::now();
    c.send_text(R"({"type":"room.join","payload":{"room":"bench","after":0}})");
    int got = 0;
    for (;;) {
      auto m = c.read_text();
      if (m.find("\"room.message\"") != std::string::npos) ++got;
      if (m.find("\"room.joined\"") != std::string::npos) break;
    }
    double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (got != missed) {
      std::fprintf(stderr, "got %d messages, expected %d\n", got, missed);
      return 1;
    }
    ms.push_back(elapsed);
    std::printf("rep %d: %.1f ms (%.0f messages/s)\n", r + 1, elapsed, missed / elapsed * 1000);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("RESULT resume missed=%d median_ms=%.1f min_ms=%.1f max_ms=%.1f\n", missed,
              ms[ms.size() / 2], ms.front(), ms.back());
  ws.stop();
  executor->stop();
  store.close();
  std::filesystem::remove_all(dir);
}
