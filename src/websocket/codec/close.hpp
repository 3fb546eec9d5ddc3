#pragma once
// Close frame payloads (RFC 6455 §5.5.1, §7.4).
#include <cstdint>
#include <string_view>

namespace ebb::websocket::codec {

struct ClosePayload {
  std::uint16_t code = 1005;  ///< 1005 (no_status) when the payload was empty
  std::string_view reason;    ///< points into the parsed payload
};

enum class CloseParse {
  ok,
  bad_length,  ///< 1 byte, or > 125: protocol error (1002)
  bad_code,    ///< code not allowed on the wire: protocol error (1002)
  bad_utf8,    ///< reason not UTF-8: 1007
};

CloseParse parse_close_payload(std::string_view payload, ClosePayload& out) noexcept;

}  // namespace ebb::websocket::codec
