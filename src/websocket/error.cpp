#include "ebb/websocket/error.hpp"

#include <string>

namespace ebb::websocket {
namespace {

class WebSocketCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ebb.websocket"; }

  std::string message(int value) const override {
    switch (static_cast<error>(value)) {
      case error::protocol_error:
        return "WebSocket protocol error";
      case error::invalid_utf8:
        return "invalid UTF-8 in a text message or close reason";
      case error::message_too_big:
        return "message exceeds the maximum message size";
      case error::policy_violation:
        return "policy violation";
      case error::send_queue_overflow:
        return "send queue overflow (slow consumer)";
      case error::handshake_failed:
        return "WebSocket handshake failed";
      case error::handshake_timeout:
        return "WebSocket handshake timed out";
      case error::idle_timeout:
        return "connection idle timeout";
      case error::pong_timeout:
        return "no pong received in time";
      case error::close_timeout:
        return "peer did not answer the close frame in time";
      case error::bad_json:
        return "typed message is not {\"type\": string, \"payload\": object}";
      case error::inflate_failed:
        return "permessage-deflate data failed to decompress";
      case error::server_stopped:
        return "server stopped";
      case error::forced_shutdown:
        return "connection shut down forcibly";
    }
    return "unknown ebb.websocket error " + std::to_string(value);
  }

  // Lets callers test `ec == std::errc::timed_out` without knowing the enum.
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<error>(value)) {
      case error::handshake_timeout:
      case error::idle_timeout:
      case error::pong_timeout:
      case error::close_timeout:
        return std::make_error_condition(std::errc::timed_out);
      case error::message_too_big:
        return std::make_error_condition(std::errc::message_size);
      case error::server_stopped:
      case error::forced_shutdown:
        return std::make_error_condition(std::errc::operation_canceled);
      default:
        return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& websocket_category() noexcept {
  static const WebSocketCategory category;
  return category;
}

}  // namespace ebb::websocket
