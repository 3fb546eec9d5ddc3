#pragma once
// Errors of the WebSocket module, as std::error_code (one enum, one category).
#include <system_error>

namespace ebb::websocket {

enum class error {
  protocol_error = 1,   ///< peer broke RFC 6455 (closed with 1002)
  invalid_utf8,         ///< text or close reason not UTF-8 (1007)
  message_too_big,      ///< over max_message_size, also after inflate (1009)
  policy_violation,     ///< 1008
  send_queue_overflow,  ///< slow consumer: per-session send cap exceeded
  handshake_failed,     ///< bad upgrade request / response
  handshake_timeout,    ///< upgrade not complete within handshake_timeout
  idle_timeout,         ///< nothing received within idle_timeout
  pong_timeout,         ///< no pong within pong_timeout after our ping
  close_timeout,        ///< peer did not answer our Close in close_wait
  bad_json,             ///< on_typed_message: not {"type": string, "payload": object}
  inflate_failed,       ///< permessage-deflate data did not decompress
  server_stopped,       ///< operation after the server stopped
  forced_shutdown,      ///< Session::shutdown_now() or a forced drain
};

/// The category, named "ebb.websocket". Portable conditions: the four
/// timeouts compare equal to std::errc::timed_out, message_too_big to
/// std::errc::message_size, server_stopped and forced_shutdown to
/// std::errc::operation_canceled.
const std::error_category& websocket_category() noexcept;

inline std::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), websocket_category()};
}

}  // namespace ebb::websocket

template <>
struct std::is_error_code_enum<ebb::websocket::error> : std::true_type {};
