#pragma once
// ebb::websocket::LongPollingBridge: HTTP long-polling for clients that
// cannot hold a WebSocket (proxies that strip Upgrade, locked-down
// networks). To the application a long-poll client is one more Session:
// on_open, on_message / on_typed_message, rooms, broadcasts, on_close and
// the drain work the same way. Endpoints and payloads: docs/PROTOCOL.md.
//
//   ebb::websocket::WebSocketMetrics metrics;
//   ebb::websocket::LongPollingBridge bridge{&metrics, std::chrono::seconds{60}, 256};
//   ws.attach_long_polling_bridge(&bridge);   // before ws.start()
//   bridge.mount(app, "/lp");                 // before app.listen()/run()
//
// Policy:
// - Each session buffers up to `capacity` messages until a poll collects
//   them. A poll acknowledges what the previous one returned (its `ack`), so
//   a response lost on the way is sent again, not dropped. When the buffer
//   is full the session is closed with 1008 (slow consumer, the WebSocket
//   policy): what was buffered is still delivered, then the close.
// - A session nobody polled for `ttl` expires: on_close with 1006, as for
//   a WebSocket whose transport died. Session ids are 128-bit random, sent
//   as 32 lowercase hex digits.
// - A poll is held until a message arrives (it is answered then) or
//   `poll_timeout` passes (answered with no messages).
// - During the drain every held poll is answered at once: buffered
//   messages, the shutdown notice, and a close marker (1001) with a
//   reconnect hint. A session with no poll held keeps all that for its
//   next poll (until `ttl` after its last one).
// - Nothing buffered is dropped silently: when a session leaves the bridge
//   (expired, closed by the client, closed and its close marker delivered,
//   or the bridge destroyed) the messages no poll answer carried are added
//   to ebb_longpoll_messages_dropped_total and logged in one warning with
//   the session id and the count. Messages an answer carried but the client
//   never acknowledged are not counted.
//
// Threads: all members are safe from any thread. Lifetime: outlives the
// server and the app it is attached to (declare it before them).
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace ebb {
class App;
}

namespace ebb::websocket {

class WebSocketMetrics;

class LongPollingBridge {
 public:
  /// `metrics` may be null. `ttl` > 0, `capacity` > 0.
  LongPollingBridge(WebSocketMetrics* metrics, std::chrono::seconds ttl, std::size_t capacity,
                    std::chrono::milliseconds poll_timeout = std::chrono::seconds(25));
  ~LongPollingBridge();
  LongPollingBridge(const LongPollingBridge&) = delete;
  LongPollingBridge& operator=(const LongPollingBridge&) = delete;

  /// Routes under `prefix`: POST open, GET poll, POST send, POST close.
  void mount(ebb::App& app, const std::string& prefix = "/lp");
  /// Long-poll sessions open now.
  std::size_t session_count() const noexcept;

  struct Impl;
  std::shared_ptr<Impl> impl() const noexcept { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ebb::websocket
