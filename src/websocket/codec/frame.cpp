#include "websocket/codec/frame.hpp"

#include <cstring>

namespace ebb::websocket::codec {

namespace {

using frame_detail::fin_bit;
using frame_detail::mask_bit;
using frame_detail::rsv1_bit;
constexpr std::uint8_t rsv2_bit = 0x20;
constexpr std::uint8_t rsv3_bit = 0x10;
constexpr std::uint8_t opcode_bits = 0x0F;
constexpr std::uint8_t length_bits = 0x7F;
constexpr std::uint8_t length_16 = 126;  // 7-bit marker: a 16-bit length follows
constexpr std::uint8_t length_64 = 127;  // 7-bit marker: a 64-bit length follows

std::uint64_t read_be(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

void write_be(std::uint8_t* p, std::uint64_t v, std::size_t n) noexcept {
  for (std::size_t i = n; i-- > 0;) {
    p[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

// Reason bytes that fit in a Close payload (125 - 2 code bytes) without
// splitting a UTF-8 sequence: back off over continuation bytes.
std::size_t close_reason_fit(std::string_view reason) noexcept {
  constexpr std::size_t max_reason = max_control_payload - 2;
  if (reason.size() <= max_reason) return reason.size();
  std::size_t n = max_reason;
  while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

HeaderStatus decode_header(const std::uint8_t* data, std::size_t size, FrameHeader& out) noexcept {
  if (size < 2) return HeaderStatus::need_more;
  const std::uint8_t b0 = data[0];
  const std::uint8_t b1 = data[1];
  const std::uint8_t len7 = b1 & length_bits;
  const std::size_t ext = len7 == length_64 ? 8 : (len7 == length_16 ? 2 : 0);
  const bool masked = (b1 & mask_bit) != 0;
  const std::size_t header_size = 2 + ext + (masked ? 4 : 0);
  if (size < header_size) return HeaderStatus::need_more;

  std::uint64_t length = ext == 0 ? len7 : read_be(data + 2, ext);
  if (ext == 8 && (length >> 63) != 0) return HeaderStatus::bad_length;

  out.fin = (b0 & fin_bit) != 0;
  out.rsv1 = (b0 & rsv1_bit) != 0;
  out.rsv2 = (b0 & rsv2_bit) != 0;
  out.rsv3 = (b0 & rsv3_bit) != 0;
  out.opcode = b0 & opcode_bits;
  out.masked = masked;
  if (masked) {
    std::memcpy(out.mask, data + 2 + ext, 4);
  } else {
    std::memset(out.mask, 0, 4);
  }
  out.payload_length = length;
  out.header_size = static_cast<std::uint8_t>(header_size);
  return HeaderStatus::ok;
}

std::size_t encode_header(std::uint8_t* out, Opcode opcode, bool fin, bool rsv1,
                          std::uint64_t payload_length, const std::uint8_t* mask) noexcept {
  out[0] = static_cast<std::uint8_t>((fin ? fin_bit : 0) | (rsv1 ? rsv1_bit : 0) |
                                     static_cast<std::uint8_t>(opcode));
  const std::uint8_t mbit = mask != nullptr ? mask_bit : 0;
  std::size_t n = 2;
  if (payload_length < length_16) {
    out[1] = static_cast<std::uint8_t>(mbit | payload_length);
  } else if (payload_length <= 0xFFFF) {
    out[1] = mbit | length_16;
    write_be(out + 2, payload_length, 2);
    n += 2;
  } else {
    out[1] = mbit | length_64;
    write_be(out + 2, payload_length, 8);
    n += 8;
  }
  if (mask != nullptr) {
    std::memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

namespace frame_detail {

void mask_bulk(std::uint8_t* data, std::size_t size, std::uint32_t key) noexcept {
  const std::uint64_t key64 = (std::uint64_t{key} << 32) | key;
  for (; size >= 32; data += 32, size -= 32) {
    xor8(data, key64);
    xor8(data + 8, key64);
    xor8(data + 16, key64);
    xor8(data + 24, key64);
  }
  // `data` moved by a multiple of 4, so `key` still lines up.
  mask_small(data, size, key);
}

void append_frame_general(std::string& out, Opcode opcode, std::string_view payload, bool fin,
                          bool rsv1, const std::uint8_t* mask) {
  std::uint8_t header[max_header_size];
  const std::size_t header_size = encode_header(header, opcode, fin, rsv1, payload.size(), mask);
  const std::size_t start = out.size();
  out.reserve(start + header_size + payload.size());
  out.append(reinterpret_cast<const char*>(header), header_size);
  out.append(payload);
  if (mask != nullptr) {
    auto* dst = reinterpret_cast<std::uint8_t*>(out.data()) + start + header_size;
    apply_mask(dst, payload.size(), mask);
  }
}

}  // namespace frame_detail

void append_close_frame(std::string& out, std::uint16_t code, std::string_view reason,
                        const std::uint8_t* mask) {
  if (code == 1005) {
    append_frame(out, Opcode::close, {}, true, false, mask);
    return;
  }
  char payload[max_control_payload];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  const std::size_t n = close_reason_fit(reason);
  if (n > 0) std::memcpy(payload + 2, reason.data(), n);
  append_frame(out, Opcode::close, std::string_view(payload, 2 + n), true, false, mask);
}

}  // namespace ebb::websocket::codec
