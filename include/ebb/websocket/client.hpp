#pragma once
// ebb::websocket::Client: a WebSocket client for ws:// and wss:// with
// automatic reconnect (exponential backoff with jitter) and a resume hook.
//
// Threads: the client runs one I/O thread of its own. Callbacks run on it,
// one at a time. send_text/send_binary/close/stop are safe from any thread.
// Lifetime: the destructor calls stop() (must not be called from a callback).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ebb::websocket {

struct ClientOptions {
  std::string url;                        ///< ws://host:port/path or wss://...
  std::vector<std::string> subprotocols;  ///< offered in order
  std::string origin;                     ///< sent as Origin when not empty
  bool deflate = false;                   ///< offer permessage-deflate
  std::size_t max_message_size = 64u << 20;
  bool reconnect = true;                  ///< reconnect after an unexpected close
  std::chrono::milliseconds reconnect_initial{100};
  std::chrono::milliseconds reconnect_max{10000};
  double reconnect_multiplier = 2.0;
  double reconnect_jitter = 0.2;          ///< each delay is scaled by 1 ± jitter (random)
  int max_reconnect_attempts = -1;        ///< -1 = forever
  std::chrono::milliseconds connect_timeout{5000};
  bool tls_verify = true;                 ///< verify the server certificate for wss://
  std::string tls_ca_file;                ///< extra CA (PEM), e.g. a test certificate
};

class Client {
 public:
  using OpenHandler = std::function<void(bool reconnected)>;
  using MessageHandler = std::function<void(std::string_view message, bool binary)>;
  using CloseHandler = std::function<void(std::uint16_t code, std::string_view reason)>;
  using ErrorHandler = std::function<void(std::error_code, std::string_view what)>;
  /// Runs after every successful reconnect, before queued sends are flushed:
  /// the place to send "resume from sequence N" messages.
  using ResumeHandler = std::function<void(Client&)>;
  /// Called with the delay before each reconnect attempt (for logs and tests).
  using ReconnectHandler = std::function<void(int attempt, std::chrono::milliseconds delay)>;

  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void on_open(OpenHandler h);
  void on_message(MessageHandler h);
  void on_close(CloseHandler h);
  void on_error(ErrorHandler h);
  void on_resume(ResumeHandler h);
  void on_reconnect(ReconnectHandler h);

  /// Start connecting (non-blocking).
  void connect();
  /// Block until open or `timeout`; true when open.
  bool wait_open(std::chrono::milliseconds timeout);
  /// Queue a message; sent when connected (queued across reconnects).
  void send_text(std::string_view message);
  void send_binary(std::string_view message);
  /// Close handshake; no reconnect afterwards.
  void close(std::uint16_t code = 1000, std::string_view reason = {});
  /// Close (if open) and join the client thread. Idempotent.
  void stop();
  bool is_open() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ebb::websocket
