#pragma once
// ebb::websocket::Server: the WebSocket server.
//
// Threads: the server runs its own I/O threads (ServerOptions::io_threads),
// each with one io_context; a session lives on one of them for life. All
// callbacks for a session run on its I/O thread, one at a time, so code in a
// callback never races with other callbacks of the same session.
// Set callbacks before start(); they must not be changed afterwards.
// Every public member function is safe to call from any thread, including
// from inside callbacks, except stop(), which must not be called from an I/O
// thread (it would wait for itself; it throws std::logic_error instead).
// Lifetime: the Server must outlive every call into it; Sessions may outlive
// the Server (their operations then do nothing).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "ebb/json/json.hpp"
#include "ebb/websocket/options.hpp"
#include "ebb/websocket/session.hpp"

namespace ebb::config {
class Config;
}
namespace ebb::executor {
class RuntimeExecutor;
}

namespace ebb::websocket {

namespace detail {
class ServerCore;
}
class WebSocketMetrics;
class LongPollingBridge;

/// Where the server is in its life (DESIGN.md §2). Moves only forward.
enum class LifecycleState {
  starting,  ///< constructed, not yet listening
  ready,     ///< listening and serving
  draining,  ///< stop requested: listener closed, notices and Close 1001 going out
  closing,   ///< every Close is queued; waiting for close handshakes (bounded)
  stopped,   ///< I/O threads joined; no callback runs any more
};
const char* to_string(LifecycleState s) noexcept;

/// How a drain went. Counts only sessions that were open when it began or
/// opened after it (none can: upgrades during a drain get 503).
struct DrainReport {
  bool happened = false;         ///< a drain was started
  bool force_requested = false;  ///< force_async() (a second signal) or the deadline
  std::size_t sessions_at_start = 0;
  std::size_t closed_cleanly = 0;  ///< the peer answered our Close (full handshake)
  std::size_t closed_by_peer = 0;  ///< the peer closed TCP without answering our Close
  std::size_t forced = 0;  ///< cut by close_wait, the deadline, force_async() or shutdown_now()
  std::chrono::milliseconds duration{0};  ///< from stop_async() to the last session's end
  /// True when no session had to be forced.
  bool clean() const noexcept { return forced == 0; }
};

class Server {
 public:
  using OpenHandler = std::function<void(Session&)>;
  using MessageViewHandler = std::function<void(Session&, std::string_view)>;
  using MessageHandler = std::function<void(Session&, const std::string&)>;
  using CloseHandler = std::function<void(Session&, std::uint16_t code, std::string_view reason)>;
  using ErrorHandler = std::function<void(Session&, std::error_code, std::string_view what)>;
  using TypedHandler =
      std::function<void(Session&, const std::string& type, const ebb::json::kvs& payload)>;

  /// Reads ServerOptions from `cfg` (throws ConfigError naming a bad key).
  /// The executor is the application's worker pool; the server keeps it alive
  /// and never stops it (AttachedRuntime orders that).
  Server(const ebb::config::Config& cfg, std::shared_ptr<ebb::executor::RuntimeExecutor> executor);
  explicit Server(ServerOptions options,
                  std::shared_ptr<ebb::executor::RuntimeExecutor> executor = nullptr);
  /// Stops (as stop()) if still running. Must not run on an I/O thread.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // ---- callbacks (set before start) ----
  void on_open(OpenHandler h);
  /// Text messages. Accepts `(Session&, std::string_view)` (zero-copy: the
  /// view is valid during the call only) or `(Session&, const std::string&)`.
  template <class F>
  void on_message(F&& f) {
    if constexpr (std::is_invocable_v<F&, Session&, std::string_view>)
      set_text_view_handler(MessageViewHandler(std::forward<F>(f)));
    else
      set_text_string_handler(MessageHandler(std::forward<F>(f)));
  }
  /// Binary messages; same two forms as on_message.
  template <class F>
  void on_binary(F&& f) {
    if constexpr (std::is_invocable_v<F&, Session&, std::string_view>)
      set_binary_view_handler(MessageViewHandler(std::forward<F>(f)));
    else
      set_binary_string_handler(MessageHandler(std::forward<F>(f)));
  }
  /// Text messages shaped {"type": string, "payload": object}. When set, text
  /// messages go here instead of on_message; anything else reaches on_error
  /// with error::bad_json (the session stays open).
  void on_typed_message(TypedHandler h);
  /// Exactly once per opened session, whatever closed it. `code` is the code
  /// the peer sent, or the one ebb closed with, or 1006 if the transport died.
  void on_close(CloseHandler h);
  void on_error(ErrorHandler h);

  // ---- lifecycle ----
  /// Bind and serve on the I/O threads. Returns once listening; throws
  /// std::system_error if the address cannot be bound. Once only.
  void start();
  /// Count connections, messages, closes, errors, rooms and the drain in
  /// `metrics` (lock-free updates). Before start(); `metrics` must outlive
  /// the server.
  void set_metrics(WebSocketMetrics& metrics) noexcept;
  /// Long-poll clients become sessions of this server (rooms, broadcasts,
  /// callbacks, the drain). Before start(); the bridge must outlive the server.
  void attach_long_polling_bridge(LongPollingBridge* bridge);
  /// Single-port model (ebb::App::ws calls it): start() opens no listener;
  /// connections arrive through adopt_connection(). Before start().
  void use_external_listener() noexcept;
  /// Takes ownership of an accepted, non-blocking plain TCP socket whose
  /// bytes received so far are `received` (an HTTP upgrade request first).
  /// The server answers the upgrade, serves and drains the session like one
  /// it accepted itself. When it is not serving (not started, draining,
  /// stopped) it answers 503 and closes the socket. Any thread.
  void adopt_connection(int native_socket, std::string received);
  /// The bound port (useful with port 0). Valid after start(); 0 with an
  /// external listener.
  std::uint16_t port() const noexcept;
  /// Start the graceful drain; never blocks; idempotent; safe from any
  /// thread, any callback and a signal-watching thread. The drain: close the
  /// listener (late upgrades get 503), send every session the optional
  /// shutdown notice, then what was already queued for it, then Close 1001 —
  /// on all I/O threads at once, optionally spread over shutdown_spread —
  /// wait for the close handshakes (each bounded by close_wait), log
  /// progress every second, and force what is left at shutdown_timeout.
  void stop_async() noexcept;
  /// Force now: shut down the transport of every remaining session without
  /// waiting (on_close still fires, with 1006). Starts the drain if it had not
  /// started. For a second SIGINT/SIGTERM. Idempotent; any thread.
  void force_async() noexcept;
  /// stop_async(), then wait for every session to end and join the I/O
  /// threads. No callback runs after it returns. Throws std::logic_error when
  /// called from one of this server's I/O threads.
  void stop();
  bool running() const noexcept;
  LifecycleState state() const noexcept;
  /// Final after stop() returned; a live snapshot while draining.
  DrainReport drain_report() const;

  // ---- rooms (any thread) ----
  void join_room(const SessionPtr& session, const std::string& room);
  void leave_room(const SessionPtr& session, const std::string& room);
  /// Encodes the frame once and queues it to every member. Returns how many
  /// sessions it was queued to.
  std::size_t broadcast_text_to_room(const std::string& room, std::string_view message);
  std::size_t broadcast_binary_to_room(const std::string& room, std::string_view message);
  /// Every open session.
  std::size_t broadcast_text(std::string_view message);
  std::size_t room_size(const std::string& room) const;
  /// Open sessions (on_open delivered, on_close not yet).
  std::size_t session_count() const noexcept;
  /// Accepted connections not yet ended, including those still in their
  /// opening handshake.
  std::size_t connection_count() const noexcept;

  const ServerOptions& options() const noexcept;
  const std::shared_ptr<ebb::executor::RuntimeExecutor>& executor() const noexcept;

 private:
  void set_text_view_handler(MessageViewHandler h);
  void set_text_string_handler(MessageHandler h);
  void set_binary_view_handler(MessageViewHandler h);
  void set_binary_string_handler(MessageHandler h);

  std::shared_ptr<detail::ServerCore> core_;
};

}  // namespace ebb::websocket
