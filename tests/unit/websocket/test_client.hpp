#pragma once
// A deliberately plain, blocking WebSocket client for server tests: it lets
// a test send exactly the bytes it wants (including broken frames) and read
// exactly what the server sent, with a deadline on every read.
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "websocket/codec/frame.hpp"

namespace ebb::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Frame {
  std::uint8_t opcode = 0;
  bool fin = true;
  std::string payload;
  std::uint16_t close_code() const {
    return payload.size() >= 2 ? static_cast<std::uint16_t>((std::uint8_t(payload[0]) << 8) |
                                                            std::uint8_t(payload[1]))
                               : 1005;
  }
};

/// An upgrade request head with RFC 6455's sample key (§1.3).
inline std::string upgrade_request(const std::string& extra_headers = {},
                                   const std::string& target = "/", int version = 13) {
  return "GET " + target +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: " +
         std::to_string(version) + "\r\n" + extra_headers + "\r\n";
}

class TestClient {
 public:
  explicit TestClient(std::uint16_t port) : socket_(ctx_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    socket_.set_option(tcp::no_delay(true));
  }

  /// Sends the upgrade request and returns the whole response head.
  std::string upgrade(const std::string& extra_headers = {}, const std::string& target = "/") {
    write_raw(upgrade_request(extra_headers, target));
    return read_head();
  }

  std::string read_head(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    for (;;) {
      auto pos = buffer_.find("\r\n\r\n");
      if (pos != std::string::npos) {
        std::string head = buffer_.substr(0, pos + 4);
        buffer_.erase(0, pos + 4);
        return head;
      }
      if (!fill(timeout)) return buffer_;  // EOF: whatever arrived
    }
  }

  void write_raw(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  void send_frame(std::uint8_t opcode, const std::string& payload, bool fin = true,
                  bool masked = true, std::uint8_t extra_bits = 0) {
    std::string out;
    static const std::uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    ebb::websocket::codec::append_frame(out, static_cast<ebb::websocket::codec::Opcode>(opcode),
                                        payload, fin, false, masked ? mask : nullptr);
    out[0] = static_cast<char>(std::uint8_t(out[0]) | extra_bits);
    write_raw(out);
  }
  void send_text(const std::string& s) { send_frame(0x1, s); }
  void send_binary(const std::string& s) { send_frame(0x2, s); }
  void send_close(std::uint16_t code, const std::string& reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xff));
    send_frame(0x8, p + reason);
  }

  /// Next frame, or nullopt on EOF or timeout.
  std::optional<Frame> read_frame(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    for (;;) {
      if (auto f = try_parse()) return f;
      if (!fill(timeout)) return std::nullopt;
    }
  }

  /// True when the server closed the TCP connection within the timeout.
  bool wait_eof(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      buffer_.clear();
      if (!fill(std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now())))
        return eof_;
    }
    return false;
  }

  bool eof() const { return eof_; }
  tcp::socket& socket() { return socket_; }

 private:
  std::optional<Frame> try_parse() {
    ebb::websocket::codec::FrameHeader h;
    auto st = ebb::websocket::codec::decode_header(
        reinterpret_cast<const std::uint8_t*>(buffer_.data()), buffer_.size(), h);
    if (st != ebb::websocket::codec::HeaderStatus::ok) return std::nullopt;
    if (buffer_.size() < h.header_size + h.payload_length) return std::nullopt;
    Frame f;
    f.opcode = h.opcode;
    f.fin = h.fin;
    f.payload = buffer_.substr(h.header_size, h.payload_length);
    buffer_.erase(0, h.header_size + h.payload_length);
    return f;
  }

  // Reads more bytes with a deadline; false on EOF/error/timeout.
  bool fill(std::chrono::milliseconds timeout) {
    char tmp[65536];
    std::size_t got = 0;
    boost::system::error_code result = asio::error::timed_out;
    socket_.async_read_some(asio::buffer(tmp), [&](boost::system::error_code ec, std::size_t n) {
      result = ec;
      got = n;
    });
    ctx_.restart();
    ctx_.run_for(timeout);
    if (!ctx_.stopped()) {
      socket_.cancel();
      ctx_.restart();
      ctx_.run();
      return false;
    }
    if (result) {
      if (result == asio::error::eof || result == asio::error::connection_reset) eof_ = true;
      return false;
    }
    buffer_.append(tmp, got);
    return true;
  }

  asio::io_context ctx_;
  tcp::socket socket_;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace ebb::test
