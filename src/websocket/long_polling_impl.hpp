#pragma once
// Internals of LongPollingBridge (see the public header for the policy and
// docs/PROTOCOL.md for the endpoints).
//
// Threads: HTTP handlers (the app's I/O threads) and the sweeper thread
// touch sessions under each session's mutex; the bridge's map has its own.
// Lock order: the map's, then a session's (remove); nothing holding a
// session's mutex takes the map's.
// Every application callback for a long-poll session runs on the WebSocket
// server's I/O thread 0 (ServerCore::post_external), so they are serialized
// like a connection's. on_open is posted while the session is inserted in
// the map (under the map's mutex), and on_close is always posted, never run
// inline: callbacks keep their order.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "ebb/http/response.hpp"
#include "ebb/websocket/long_polling.hpp"
#include "ebb/websocket/session.hpp"
#include "websocket/detail/core.hpp"

namespace ebb::websocket::longpoll {

using Clock = std::chrono::steady_clock;

struct Impl;

class LongPollSession final : public Session {
 public:
  LongPollSession(std::uint64_t id, std::string sid, std::string remote, Impl& bridge);

  SendStatus send_text(std::string_view message) override;
  /// Long-polling carries text only: binary messages are refused (dropped).
  SendStatus send_binary(std::string_view message) override;
  void close(std::uint16_t code, std::string_view reason) override;
  void shutdown_now() override;
  bool is_closing() const noexcept override;
  std::size_t buffered_amount() const noexcept override;

  const std::string& sid() const noexcept { return sid_; }
  /// A poll: drop what `ack` acknowledges, then answer now (something to
  /// say) or hold `pending` until a message, the close, or the timeout.
  void poll(std::uint64_t ack, ebb::PendingResponse pending);
  /// Answers a held poll whose time is up; true when the session expired.
  bool sweep(Clock::time_point now);
  /// Closes with the shutdown notice first (the drain).
  void drain(const std::string& notice);
  bool finished() const;  // closed and the close marker was delivered
  /// A poll is held (tests: to know a message will answer it, not find it).
  bool holds_poll() const;
  /// The session leaves the bridge (removed or the bridge destroyed): its
  /// buffer is emptied, and messages no answer ever carried are added to
  /// longpoll_messages_dropped and logged (one warning with sid and count).
  /// Messages an answer carried but the client did not acknowledge are not
  /// counted: they reached the HTTP connection.
  void discard_unpolled();

 private:
  struct CloseInfo {
    std::uint16_t code;
    std::string reason;
  };
  void close_locked(std::unique_lock<std::mutex>& lock, std::uint16_t code, std::string reason);
  void answer_locked(ebb::PendingResponse& pending);

  std::string sid_;
  Impl& bridge_;
  mutable std::mutex mutex_;
  std::deque<std::string> buffer_;
  std::uint64_t first_index_ = 0;  // index of buffer_.front()
  std::uint64_t sent_end_ = 0;     // one past the last message an answer carried
  std::size_t buffered_bytes_ = 0;
  std::optional<CloseInfo> closed_;
  bool close_delivered_ = false;
  ebb::PendingResponse held_;
  Clock::time_point held_until_{};
  Clock::time_point last_seen_;
};

struct Impl : std::enable_shared_from_this<Impl>, ebb::websocket::detail::ExternalSessions {
  Impl(WebSocketMetrics* m, std::chrono::seconds ttl, std::size_t capacity,
       std::chrono::milliseconds poll_timeout);
  ~Impl() override;

  // ExternalSessions (called by the server).
  std::size_t send_to_all(std::string_view text) override;
  void drain() override;
  void close_all() override;

  void attach(std::shared_ptr<ebb::websocket::detail::ServerCore> core);
  std::shared_ptr<LongPollSession> find(const std::string& sid);
  /// Takes the session out of the map and discards its buffer
  /// (LongPollSession::discard_unpolled), under the map's mutex.
  void remove(const std::string& sid);
  std::vector<std::shared_ptr<LongPollSession>> snapshot();
  /// Posts on_close to thread 0 (exactly once per session: the caller checks).
  void deliver_close(const std::shared_ptr<LongPollSession>& s, std::uint16_t code,
                     std::string reason);
  void sweeper_loop();

  WebSocketMetrics* metrics;
  const std::chrono::seconds ttl;
  const std::size_t capacity;
  const std::chrono::milliseconds poll_timeout;
  std::weak_ptr<ebb::websocket::detail::ServerCore> core;
  std::chrono::milliseconds reconnect_hint{1000};

  mutable std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<LongPollSession>> sessions;

  std::mutex sweeper_mutex;
  std::condition_variable sweeper_cv;
  bool stopping = false;
  std::thread sweeper;
};

}  // namespace ebb::websocket::longpoll

namespace ebb::websocket {
struct LongPollingBridge::Impl : longpoll::Impl {
  using longpoll::Impl::Impl;
};
}  // namespace ebb::websocket
