#pragma once
// WebSocket close status codes (RFC 6455 §7.4) and the rules for which ones
// may travel on the wire.
#include <cstdint>

namespace ebb::websocket {

/// Close status codes ebb sends or interprets. Plain integers on the wire;
/// applications may use any valid code (3000-4999 are theirs).
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;  ///< server draining / page left
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
inline constexpr std::uint16_t no_status = 1005;         ///< never sent: "Close had no code"
inline constexpr std::uint16_t abnormal = 1006;          ///< never sent: "no Close at all"
inline constexpr std::uint16_t invalid_payload = 1007;   ///< bad UTF-8
inline constexpr std::uint16_t policy_violation = 1008;  ///< also: slow consumer
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t mandatory_extension = 1010;
inline constexpr std::uint16_t internal_error = 1011;
inline constexpr std::uint16_t service_restart = 1012;
inline constexpr std::uint16_t try_again_later = 1013;
}  // namespace close_code

/// True when `code` may appear in a Close frame sent by a peer (RFC 6455
/// §7.4.1/§7.4.2 and the IANA registry): 1000-1003, 1007-1014, 3000-4999.
constexpr bool is_valid_wire_close_code(std::uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999) return true;
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return false;
}

}  // namespace ebb::websocket
