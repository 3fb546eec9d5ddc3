#include "websocket/codec/close.hpp"

#include "ebb/websocket/close_code.hpp"
#include "websocket/codec/frame.hpp"
#include "websocket/codec/utf8.hpp"

namespace ebb::websocket::codec {

CloseParse parse_close_payload(std::string_view payload, ClosePayload& out) noexcept {
  if (payload.empty()) {
    out.code = close_code::no_status;
    out.reason = {};
    return CloseParse::ok;
  }
  if (payload.size() == 1 || payload.size() > max_control_payload) return CloseParse::bad_length;
  const auto hi = static_cast<std::uint8_t>(payload[0]);
  const auto lo = static_cast<std::uint8_t>(payload[1]);
  const auto code = static_cast<std::uint16_t>((hi << 8) | lo);
  if (!is_valid_wire_close_code(code)) return CloseParse::bad_code;
  const std::string_view reason = payload.substr(2);
  if (!is_valid_utf8(reason)) return CloseParse::bad_utf8;
  out.code = code;
  out.reason = reason;
  return CloseParse::ok;
}

}  // namespace ebb::websocket::codec
