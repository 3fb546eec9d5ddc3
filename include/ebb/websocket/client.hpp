#pragma once
// ebb::websocket::Client: a WebSocket client for ws:// and wss:// with
// automatic reconnect (exponential backoff with jitter) and a resume hook.
//
// Threads: the client runs one I/O thread of its own (started by connect()).
// Callbacks run on it, one at a time, never concurrently. send_text,
// send_binary, close, stop, connect and the on_* setters are safe from any
// thread, callbacks included. An exception thrown by a callback is logged
// and swallowed.
//
// Events, per connect():
// - on_open(reconnected) once per established connection; `reconnected` is
//   true when an earlier connection of this connect() was open.
// - on_close(code, reason) once per established connection when it ends:
//   the code of the server's Close frame (1005 if it had none), the code we
//   sent when we failed the connection (1002, 1007, 1009), or 1006 when the
//   transport ended without a Close. It also fires once, with 1006, when the
//   client stops trying without having been open since the last on_close
//   (first connect failed with reconnect off, or reconnect attempts
//   exhausted). close() or stop() while no connection is open fire nothing.
// - on_error(ec, what) for every failure: resolve, connect, TLS, upgrade,
//   connect timeout, a protocol violation by the server, a lost transport,
//   a Close that was not answered in time, giving up.
// - on_reconnect(attempt, delay) before each wait for a reconnect attempt.
//
// Reconnect: after any end of a connection or failed attempt that close()
// or stop() did not request (transport error, server Close of any code,
// including 1000, 1001 Going Away and 1012 Service Restart), when
// `reconnect` is true. Delay n (0-based) is
// min(reconnect_max, reconnect_initial * reconnect_multiplier^n) scaled by a
// random factor in [1 - jitter, 1 + jitter]. The attempt counter resets when
// a connection opens. After `max_reconnect_attempts` failed attempts the
// client gives up: on_error, then on_close(1006) as described above.
//
// Ordering and delivery: messages leave in the order they were sent (per
// sending thread; sends from the client thread take effect immediately).
// While no connection is open (or while the socket is slower than the
// sender) they are queued, up to `max_queued_bytes` of payload: a send that
// would pass the cap is not queued and returns SendStatus::dropped (the
// connection is unaffected; retry when queued_bytes() went down). Queued
// messages go out after the next open, behind anything on_open and
// on_resume sent. A message is lost only if the transport fails while it is
// being written; use the resume hook (e.g. "resume from sequence N") to
// recover those. When the server closes, unsent messages stay queued for the
// next connection. Messages sent after close() stay queued until the next
// connect(); after stop() they are discarded.
//
// Rooms (docs/PROTOCOL.md): join_room() and publish() speak ReliableRooms'
// protocol and make resuming automatic. The client remembers, per joined
// room, the highest seq it received. On every open it first sends
// room.resume {room: last seq} for those rooms (room.join for a room that
// has no position yet), before what on_open and on_resume send and before
// the backlog, so it receives exactly what it missed; room.message
// duplicates (seq <= last seen) are dropped before on_room_message. Each
// publish() is kept until its room.ack (or its id comes back in a
// room.message). After an open, pending publishes wait until every room
// resumed on that connection has sent room.joined (its replay is complete):
// those whose id was in a replay are done, the rest are sent again, in
// publish order. Room protocol messages of an earlier connection that were
// still queued are not sent on the next one (the resume replaces them).
// Exactly-once publishing needs the room joined: a publish into a room the
// client has not joined cannot be found in a replay, so after a reconnect
// it is sent again even if it was stored (at-least-once). Likewise when the
// connection dropped while the same server process was still committing a
// publish: the replay cannot show it yet, so it may be sent again (the
// server does not deduplicate ids). A room.joined that never comes (the
// server answered with an error) holds pending publishes until the next
// open. on_message still sees every message as received. Incoming text is
// parsed as JSON only while a room is joined or a publish is pending.
//
// Lifetime: the destructor calls stop(). Destroying the Client from one of
// its own callbacks is a programming error: the process aborts with a message.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ebb/json/json.hpp"
#include "ebb/websocket/send_status.hpp"

namespace ebb::websocket {

/// Client settings. The constructor validates them and throws
/// std::invalid_argument naming the field (or the URL) on a bad value.
struct ClientOptions {
  /// ws://host[:port][/path][?query] or wss://...; host may be a name, an IPv4
  /// or a bracketed IPv6 address. Default ports 80 and 443. No fragment, no
  /// user info.
  std::string url;
  std::vector<std::string> subprotocols;             ///< offered in order
  std::string origin;                                ///< sent as Origin when not empty
  bool deflate = false;                              ///< offer permessage-deflate (RFC 7692)
  int deflate_level = 6;                             ///< zlib level 1..9 for what we send
  std::size_t deflate_min_size = 64;                 ///< smaller messages are sent uncompressed
  std::size_t max_message_size = 64u << 20;          ///< received, also after inflate (else 1009)
  bool reconnect = true;                             ///< reconnect after an unexpected close
  std::chrono::milliseconds reconnect_initial{100};  ///< > 0
  std::chrono::milliseconds reconnect_max{10000};    ///< >= reconnect_initial
  double reconnect_multiplier = 2.0;                 ///< >= 1
  double reconnect_jitter = 0.2;    ///< 0..1; each delay is scaled by 1 ± jitter (random)
  int max_reconnect_attempts = -1;  ///< -1 = forever; 0 = never retry
  /// Bounds the whole opening: resolve, TCP connect, TLS handshake and the
  /// HTTP upgrade.
  std::chrono::milliseconds connect_timeout{5000};
  /// How long close()/stop() or an answered server Close waits for the Close
  /// handshake and the server's TCP close before the socket is closed anyway.
  std::chrono::milliseconds close_timeout{2000};
  /// Heartbeat: send a ping this often (0 = off). A pong that does not come
  /// within `pong_timeout` fails the connection (on_error pong_timeout,
  /// on_close 1006) and, with `reconnect`, a new one is made.
  std::chrono::milliseconds ping_interval{0};
  std::chrono::milliseconds pong_timeout{10000};  ///< > 0 when ping_interval > 0
  /// Cap on the payload bytes of send_text/send_binary messages queued and
  /// not yet handed to the socket, across reconnects (> 0). Room protocol
  /// messages (join, resume, publish) are not counted: pending_publishes()
  /// bounds those.
  std::size_t max_queued_bytes = 64u << 20;
  bool tls_verify = true;   ///< verify the server certificate and host name for wss://
  std::string tls_ca_file;  ///< extra CA (PEM), e.g. a test certificate
};

class Client {
 public:
  using OpenHandler = std::function<void(bool reconnected)>;
  /// `message` is valid only during the call.
  using MessageHandler = std::function<void(std::string_view message, bool binary)>;
  using CloseHandler = std::function<void(std::uint16_t code, std::string_view reason)>;
  using ErrorHandler = std::function<void(std::error_code, std::string_view what)>;
  /// Runs after every successful reconnect, after on_open and before queued
  /// sends are flushed: what it sends goes first. The place to send
  /// "resume from sequence N" messages.
  using ResumeHandler = std::function<void(Client&)>;
  /// Called with the delay before each reconnect attempt (1-based) (for logs
  /// and tests).
  using ReconnectHandler = std::function<void(int attempt, std::chrono::milliseconds delay)>;
  /// One room.message of a joined room, once per (room, seq), in seq order.
  /// `body` and `id` are valid only during the call; `id` is the publisher's
  /// id ("" when it gave none).
  using RoomMessageHandler = std::function<void(const std::string& room, std::uint64_t seq,
                                                const ebb::json::value& body, std::string_view id)>;

  /// Validates `options` (std::invalid_argument naming the field or the URL;
  /// an unreadable tls_ca_file too). Connects only when connect() is called.
  explicit Client(ClientOptions options);
  /// stop(). Aborts the process when called on the client thread.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Setters take effect on the client thread; set them before connect() to
  /// see every event. A setter called from a callback takes effect after it.
  void on_open(OpenHandler h);
  void on_message(MessageHandler h);
  void on_close(CloseHandler h);
  void on_error(ErrorHandler h);
  void on_resume(ResumeHandler h);
  void on_reconnect(ReconnectHandler h);
  /// room.message handler: called once per (room, seq), in seq order;
  /// duplicates (seq <= last seen) are dropped before it. Only for rooms
  /// joined with join_room().
  void on_room_message(RoomMessageHandler h);

  /// Start connecting (non-blocking). No-op while connecting, open or waiting
  /// to reconnect; after close() it connects again (once the close is done).
  /// Throws std::logic_error after stop().
  void connect();
  /// Block until open, `timeout`, or the client settled without a connection
  /// (gave up, close(), stop()); true when open. From the client thread it
  /// does not wait and returns is_open().
  bool wait_open(std::chrono::milliseconds timeout);
  /// Queue a message; sent when connected (queued across reconnects).
  /// buffered: queued; dropped: over max_queued_bytes, not queued; closing:
  /// after stop(), not queued. Never SendStatus::sent: the client thread
  /// writes it.
  SendStatus send_text(std::string_view message);
  SendStatus send_binary(std::string_view message);
  /// Payload bytes of send_text/send_binary messages not yet handed to the
  /// socket (what max_queued_bytes caps).
  std::size_t queued_bytes() const noexcept;
  /// Close handshake (after the messages sent before it); no reconnect
  /// afterwards. Non-blocking. `code` must be a valid wire code (1000-1003,
  /// 1007-1014, 3000-4999) or 1005 for an empty Close, else
  /// std::invalid_argument. The reason is cut to 123 bytes.
  void close(std::uint16_t code = 1000, std::string_view reason = {});
  /// Close (if open, code 1000, waiting at most close_timeout), stop
  /// reconnecting and join the client thread; no callback runs after it
  /// returns. Idempotent, safe from several threads at once. From a callback
  /// (the client thread) it cannot join: it starts the same shutdown and
  /// returns at once; the thread ends by itself and ~Client joins it.
  void stop();
  bool is_open() const noexcept;

  // ---- rooms (docs/PROTOCOL.md); safe from any thread, callbacks included ----
  /// Joins `room` with the room protocol: now if open, else on open. With
  /// `after`, the server replays every message with seq > after; without,
  /// its recent history. After every reconnect the client sends room.resume
  /// with the last seq it received per joined room, before anything else
  /// queued, so it receives exactly what it missed. Joining a room already
  /// joined does nothing.
  void join_room(const std::string& room, std::optional<std::uint64_t> after = std::nullopt);
  /// Sends room.leave (if open) and forgets the room: no resume, no more
  /// on_room_message for it.
  void leave_room(const std::string& room);
  /// room.publish with a fresh id, kept until room.ack (or its id seen in a
  /// room.message); a room.nack drops it (logged). After a reconnect,
  /// pending publishes whose id arrived in the replay are not sent again;
  /// the rest are sent again after the resume. Returns the id.
  std::string publish(const std::string& room, const ebb::json::value& body);
  /// The highest seq received in `room` (or the `after` it was joined with);
  /// 0 for a room not joined or without a position yet. Calls from other
  /// threads see the client thread's state, which may lag behind a
  /// join_room() they just made.
  std::uint64_t last_seq(const std::string& room) const;
  /// Publishes not yet acknowledged (by room.ack or their room.message).
  std::size_t pending_publishes() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace ebb::websocket
