#pragma once
// RFC 6455 §5.2 frame headers, masking and encoding. Pure: no I/O, no
// allocation except where a std::string is appended to.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ebb::websocket::codec {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/// Which end we are: a server expects masked frames and sends unmasked ones;
/// a client the reverse (RFC 6455 §5.1).
enum class Role { server, client };

inline constexpr std::size_t max_header_size = 14;
inline constexpr std::size_t max_control_payload = 125;

struct FrameHeader {
  bool fin = false;
  bool rsv1 = false;
  bool rsv2 = false;
  bool rsv3 = false;
  std::uint8_t opcode = 0;  ///< raw 4 bits; may be a reserved value
  bool masked = false;
  std::uint8_t mask[4] = {0, 0, 0, 0};
  std::uint64_t payload_length = 0;
  std::uint8_t header_size = 0;  ///< bytes the header occupied (2..14)
};

enum class HeaderStatus {
  ok,          ///< header decoded; `header_size` bytes consumed
  need_more,   ///< fewer bytes than the header needs
  bad_length,  ///< 64-bit length with its most significant bit set (RFC 6455 §5.2)
};

/// Decode a frame header from `data` (no validation of opcodes or bits: the
/// Parser does that).
HeaderStatus decode_header(const std::uint8_t* data, std::size_t size, FrameHeader& out) noexcept;

/// Write a header for a frame of `payload_length` bytes; `mask` (4 bytes) or
/// nullptr. Returns the header size. `out` must hold max_header_size bytes.
std::size_t encode_header(std::uint8_t* out, Opcode opcode, bool fin, bool rsv1,
                          std::uint64_t payload_length, const std::uint8_t* mask) noexcept;

/// XOR `size` bytes with the 4-byte mask, as if the data started at byte
/// `offset` of the payload (so a payload can be unmasked piece by piece).
void apply_mask(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4],
                std::size_t offset = 0) noexcept;

/// Append a whole frame (header + payload) to `out`. With a mask the payload
/// copy is masked; the source is untouched.
void append_frame(std::string& out, Opcode opcode, std::string_view payload, bool fin = true,
                  bool rsv1 = false, const std::uint8_t* mask = nullptr);

/// Append a Close frame with code and reason (reason cut to 123 bytes on a
/// UTF-8 boundary). Code 1005 (no_status) writes an empty Close payload.
void append_close_frame(std::string& out, std::uint16_t code, std::string_view reason,
                        const std::uint8_t* mask = nullptr);

}  // namespace ebb::websocket::codec
