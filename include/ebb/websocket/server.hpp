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

namespace ebb::config { class Config; }
namespace ebb::executor { class RuntimeExecutor; }

namespace ebb::websocket {

namespace detail { class ServerCore; }

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
  /// The bound port (useful with port 0). Valid after start().
  std::uint16_t port() const noexcept;
  /// Ask the server to stop; never blocks; idempotent; any thread, any
  /// callback. (The full drain arrives with the lifecycle work: today it
  /// stops accepting, sends Close 1001 to every session and lets them end.)
  void stop_async() noexcept;
  /// stop_async(), then wait for every session to end and join the I/O
  /// threads. No callback runs after it returns. Throws std::logic_error when
  /// called from one of this server's I/O threads.
  void stop();
  bool running() const noexcept;

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
  std::size_t session_count() const noexcept;

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
