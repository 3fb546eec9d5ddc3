#pragma once
// RFC 6455 §5.2 frame headers, masking and encoding. Pure: no I/O, no
// allocation except where a std::string is appended to.
//
// Masking and the append of a small unmasked frame are inline: they run once
// per message on the echo path, where a call and a generic loop cost more
// than the work itself.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
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

namespace frame_detail {

inline constexpr std::uint8_t fin_bit = 0x80;
inline constexpr std::uint8_t rsv1_bit = 0x40;
inline constexpr std::uint8_t mask_bit = 0x80;
inline constexpr std::size_t max_7bit_length = 125;

/// The 4 mask bytes in memory order, rotated so that the first one applies to
/// payload byte `offset`. Repeating it covers any run of bytes from there.
inline std::uint32_t mask_word(const std::uint8_t mask[4], std::size_t offset) noexcept {
  std::uint32_t k;
  std::memcpy(&k, mask, 4);
  const int shift = static_cast<int>((offset & 3) * 8);
  if constexpr (std::endian::native == std::endian::little) return std::rotr(k, shift);
  return std::rotl(k, shift);
}

/// XOR 64 bytes or more with the repeated mask word (out of line, unrolled).
void mask_bulk(std::uint8_t* data, std::size_t size, std::uint32_t key) noexcept;

inline void xor8(std::uint8_t* p, std::uint64_t key64) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  w ^= key64;
  std::memcpy(p, &w, 8);
}

/// XOR fewer than 64 bytes without a loop: one step per set bit of `size`,
/// largest first, so every step up to the 2-byte one starts a multiple of 4
/// bytes on, where `key` still lines up.
inline void mask_small(std::uint8_t* data, std::size_t size, std::uint32_t key) noexcept {
  const std::uint64_t key64 = (std::uint64_t{key} << 32) | key;  // same bytes in both halves
  if (size & 32) {
    xor8(data, key64);
    xor8(data + 8, key64);
    xor8(data + 16, key64);
    xor8(data + 24, key64);
    data += 32;
  }
  if (size & 16) {
    xor8(data, key64);
    xor8(data + 8, key64);
    data += 16;
  }
  if (size & 8) {
    xor8(data, key64);
    data += 8;
  }
  if (size & 4) {
    std::uint32_t w;
    std::memcpy(&w, data, 4);
    w ^= key;
    std::memcpy(data, &w, 4);
    data += 4;
  }
  if (size & 2) {
    std::uint16_t w, k;
    std::memcpy(&w, data, 2);
    std::memcpy(&k, &key, 2);
    w ^= k;
    std::memcpy(data, &w, 2);
    data += 2;
    key = std::rotr(key, 16);  // 2 bytes on, whichever the byte order
  }
  if (size & 1) {
    std::uint8_t k;
    std::memcpy(&k, &key, 1);
    *data ^= k;
  }
}

}  // namespace frame_detail

/// XOR `size` bytes with the 4-byte mask, as if the data started at byte
/// `offset` of the payload (so a payload can be unmasked piece by piece).
inline void apply_mask(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4],
                       std::size_t offset = 0) noexcept {
  const std::uint32_t key = frame_detail::mask_word(mask, offset);
  if (size >= 64) {
    frame_detail::mask_bulk(data, size, key);
    return;
  }
  frame_detail::mask_small(data, size, key);
}

namespace frame_detail {
void append_frame_general(std::string& out, Opcode opcode, std::string_view payload, bool fin,
                          bool rsv1, const std::uint8_t* mask);
}  // namespace frame_detail

/// Append a whole frame (header + payload) to `out`. With a mask the payload
/// copy is masked; the source is untouched.
inline void append_frame(std::string& out, Opcode opcode, std::string_view payload, bool fin = true,
                         bool rsv1 = false, const std::uint8_t* mask = nullptr) {
  using namespace frame_detail;
  if (mask != nullptr || payload.size() > max_7bit_length) {
    append_frame_general(out, opcode, payload, fin, rsv1, mask);
    return;
  }
  // One append of header + payload: cheaper than two appends or a resize
  // (which zero-fills first).
  char frame[2 + max_7bit_length];
  frame[0] = static_cast<char>((fin ? fin_bit : 0) | (rsv1 ? rsv1_bit : 0) |
                               static_cast<std::uint8_t>(opcode));
  frame[1] = static_cast<char>(payload.size());
  if (!payload.empty()) std::memcpy(frame + 2, payload.data(), payload.size());
  out.append(frame, 2 + payload.size());
}

/// Append a Close frame with code and reason (reason cut to 123 bytes on a
/// UTF-8 boundary). Code 1005 (no_status) writes an empty Close payload.
void append_close_frame(std::string& out, std::uint16_t code, std::string_view reason,
                        const std::uint8_t* mask = nullptr);

}  // namespace ebb::websocket::codec
