#pragma once
// One WebSocket connection as the application sees it.
//
// Threads: every member function is safe to call from any thread. A session
// is owned by one I/O thread for its whole life; calls from other threads
// are posted to it, so messages from one caller keep their order.
// Lifetime: held by std::shared_ptr. The server keeps a reference until
// on_close has run; an application may keep its own longer, and every call
// on a closed session is a harmless no-op (sends return SendStatus::closing).
#include <any>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ebb/websocket/send_status.hpp"

namespace ebb::websocket {

class Session : public std::enable_shared_from_this<Session> {
 public:
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Process-unique, never reused.
  std::uint64_t id() const noexcept { return id_; }
  /// "address:port" of the peer, fixed at accept.
  const std::string& remote_endpoint() const noexcept { return remote_endpoint_; }
  /// Request target of the upgrade ("/chat?room=a").
  const std::string& target() const noexcept { return target_; }
  /// Negotiated subprotocol, empty if none.
  const std::string& subprotocol() const noexcept { return subprotocol_; }

  /// Queue a text (must be UTF-8: not checked on send) or binary message.
  /// Messages from one thread go out in the order sent. Past the send-queue
  /// cap the message is dropped and the session closes (slow-consumer policy,
  /// see ServerOptions::max_send_queue).
  virtual SendStatus send_text(std::string_view message) = 0;
  virtual SendStatus send_binary(std::string_view message) = 0;

  /// Start the close handshake: everything queued before goes out first,
  /// then Close(code, reason). The reason is cut to 123 bytes. Idempotent.
  virtual void close(std::uint16_t code, std::string_view reason) = 0;
  void close(std::string_view reason) { close(1000, reason); }
  void close() { close(1000, {}); }

  /// Shut the transport down now, without a close handshake or waiting for
  /// queued data. on_close still fires (code 1006). Idempotent.
  virtual void shutdown_now() = 0;

  /// True once close(), shutdown_now(), an error or the peer began closing.
  virtual bool is_closing() const noexcept = 0;
  /// Bytes waiting in the send queue (approximate from other threads).
  virtual std::size_t buffered_amount() const noexcept = 0;

  /// Makes this session a drain observer (a monitoring page, say): at a
  /// drain it gets the notice with everyone else, but its Close only once
  /// every other WebSocket session has ended, so it can watch the drain to
  /// its end. The deadline and a second signal force it like any other.
  /// Any thread; set it before the drain starts (later has no effect on that
  /// drain). Long-polling sessions ignore it (their polls are answered at once).
  void observe_drain() noexcept { observes_drain_.store(true, std::memory_order_relaxed); }
  bool observes_drain() const noexcept { return observes_drain_.load(std::memory_order_relaxed); }

  /// Per-session application data. Touch it from one thread at a time (for
  /// example only from callbacks, which run on the session's I/O thread).
  std::any& user_data() noexcept { return user_data_; }

 protected:
  explicit Session(std::uint64_t id) : id_(id) {}

  std::uint64_t id_;
  std::string remote_endpoint_;
  std::string target_;
  std::string subprotocol_;
  std::any user_data_;
  std::atomic<bool> observes_drain_{false};
};

using SessionPtr = std::shared_ptr<Session>;

}  // namespace ebb::websocket
