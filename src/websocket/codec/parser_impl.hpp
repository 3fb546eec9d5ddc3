#pragma once
// Parser<Handler> member definitions; included at the bottom of parser.hpp.
//
// Shape of feed(): between frames, first try the fast path for the common
// frame (see try_fast_frame); otherwise decode a header (or stop: an
// incomplete header stays unconsumed). A frame whose payload is wholly present and that
// needs no assembly (a control frame, or a FIN data frame starting a message)
// is unmasked in place and delivered as a view. Anything else streams:
// payload bytes are unmasked, validated and copied as they arrive.
#include <algorithm>

#include "ebb/websocket/close_code.hpp"

namespace ebb::websocket::codec {

namespace parser_detail {

constexpr bool is_control(std::uint8_t opcode) noexcept { return (opcode & 0x8) != 0; }

inline std::string_view as_view(const std::uint8_t* p, std::size_t n) noexcept {
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace parser_detail

template <class Handler>
std::size_t Parser<Handler>::feed(std::uint8_t* data, std::size_t size) {
  std::size_t pos = 0;
  while (halt_ == 0) {
    if (in_frame_) {
      pos += stream_payload(data + pos, size - pos);
      if (in_frame_) break;  // all input consumed, frame still open (or failed)
      continue;
    }
    if (pos == size) break;
    if (const std::size_t n = try_fast_frame(data + pos, size - pos); n != 0) {
      pos += n;
      continue;
    }
    FrameHeader h;
    const HeaderStatus status = decode_header(data + pos, size - pos, h);
    if (status == HeaderStatus::need_more) break;
    if (status == HeaderStatus::bad_length) {
      fail(close_code::protocol_error, "payload length has its most significant bit set");
      break;
    }
    if (!check_header(h)) break;
    pos += h.header_size;
    const bool whole = h.payload_length <= size - pos;
    // check_header guarantees a non-continuation data frame starts a message.
    const bool single = parser_detail::is_control(h.opcode) ||
                        (h.fin && h.opcode != static_cast<std::uint8_t>(Opcode::continuation));
    if (whole && single) {
      const auto n = static_cast<std::size_t>(h.payload_length);
      deliver_in_place(h, data + pos, n);
      pos += n;
      continue;
    }
    begin_frame(h);
  }
  return pos;
}

// The common frame, checked straight from its first bytes: FIN, text or
// binary, RSV2/RSV3 clear, RSV1 only if negotiated, MASK as the role expects,
// a 7- or 16-bit length within max_message_size, no message in progress, and
// the whole payload in the buffer. Such a frame passes every check_header
// rule, so it is delivered in place at once. Returns the bytes consumed, or 0
// when the frame is not of this kind (nothing was done; the general path
// decides, and reports any error).
template <class Handler>
inline std::size_t Parser<Handler>::try_fast_frame(std::uint8_t* data, std::size_t size) {
  if (size < 2 || in_message_) return 0;
  const std::uint8_t b0 = data[0];
  const bool compressed = (b0 & rsv1_ok_) != 0;
  // FIN, opcode 1 or 2, no RSV bit left once an allowed RSV1 is taken out.
  if (static_cast<std::uint8_t>((b0 & ~rsv1_ok_) - 0x81) > 1) return 0;
  // 0..125 is a 7-bit length with the right MASK bit; anything else is a
  // 16-bit length (126, handled here), a 64-bit one, or a wrong MASK bit.
  std::size_t length = static_cast<std::uint8_t>(data[1] - mask_bit_);
  std::size_t header_size = 2 + mask_size_;
  if (length > 125) {
    if (length != 126 || size < 4) return 0;
    length = (std::size_t{data[2]} << 8) | data[3];
    header_size += 2;
  }
  if (size < header_size + length || length > limits_.max_message_size) return 0;
  std::uint8_t* payload = data + header_size;
  if (mask_size_ != 0) apply_mask(payload, length, payload - 4, 0);
  const std::string_view view = parser_detail::as_view(payload, length);
  const bool plain_text = (b0 & 0x4F) == 0x01;  // text opcode, RSV1 clear
  if (plain_text && !is_valid_utf8(view))
    fail(close_code::invalid_payload, "text message is not valid UTF-8");
  else
    handler_.on_message(static_cast<Opcode>(b0 & 0x0F), view, compressed);
  return header_size + length;
}

template <class Handler>
bool Parser<Handler>::mid_message() const noexcept {
  return in_message_ || in_frame_;
}

template <class Handler>
void Parser<Handler>::release_memory() noexcept {
  if (mid_message()) return;
  std::string().swap(assembly_);
  std::string().swap(control_);
}

template <class Handler>
bool Parser<Handler>::check_header(const FrameHeader& h) {
  using parser_detail::is_control;
  if (h.rsv2 || h.rsv3) {
    fail(close_code::protocol_error, "RSV2/RSV3 set without a negotiated extension");
    return false;
  }
  if (role_ == Role::server && !h.masked) {
    fail(close_code::protocol_error, "client frame is not masked");
    return false;
  }
  if (role_ == Role::client && h.masked) {
    fail(close_code::protocol_error, "server frame is masked");
    return false;
  }
  const auto op = static_cast<Opcode>(h.opcode);
  if (is_control(h.opcode)) {
    if (op != Opcode::close && op != Opcode::ping && op != Opcode::pong) {
      fail(close_code::protocol_error, "reserved control opcode");
      return false;
    }
    if (!h.fin) {
      fail(close_code::protocol_error, "fragmented control frame");
      return false;
    }
    if (h.payload_length > max_control_payload) {
      fail(close_code::protocol_error, "control frame payload over 125 bytes");
      return false;
    }
    if (h.rsv1) {
      fail(close_code::protocol_error, "RSV1 set on a control frame");
      return false;
    }
    return true;
  }
  if (op == Opcode::continuation) {
    if (!in_message_) {
      fail(close_code::protocol_error, "continuation frame without a message in progress");
      return false;
    }
    if (h.rsv1) {
      fail(close_code::protocol_error, "RSV1 set on a continuation frame");
      return false;
    }
  } else if (op == Opcode::text || op == Opcode::binary) {
    if (in_message_) {
      fail(close_code::protocol_error, "new data frame inside a fragmented message");
      return false;
    }
    if (h.rsv1 && !limits_.allow_rsv1) {
      fail(close_code::protocol_error, "RSV1 set without permessage-deflate");
      return false;
    }
  } else {
    fail(close_code::protocol_error, "reserved data opcode");
    return false;
  }
  const std::uint64_t so_far = op == Opcode::continuation ? message_size_ : 0;
  const std::uint64_t max = limits_.max_message_size;
  if (h.payload_length > max || so_far > max - h.payload_length) {
    fail(close_code::message_too_big, "message exceeds the maximum size");
    return false;
  }
  return true;
}

template <class Handler>
void Parser<Handler>::deliver_in_place(const FrameHeader& h, std::uint8_t* payload,
                                       std::size_t size) {
  if (h.masked) apply_mask(payload, size, h.mask, 0);
  const std::string_view view = parser_detail::as_view(payload, size);
  if (parser_detail::is_control(h.opcode)) {
    deliver_control(h.opcode, view);
    return;
  }
  const auto op = static_cast<Opcode>(h.opcode);
  if (op == Opcode::text && !h.rsv1 && !is_valid_utf8(view)) {
    fail(close_code::invalid_payload, "text message is not valid UTF-8");
    return;
  }
  handler_.on_message(op, view, h.rsv1);
}

template <class Handler>
void Parser<Handler>::begin_frame(const FrameHeader& h) {
  frame_ = h;
  in_frame_ = true;
  frame_received_ = 0;
  if (parser_detail::is_control(h.opcode)) {
    control_.clear();
    return;
  }
  if (h.opcode == static_cast<std::uint8_t>(Opcode::continuation)) {
    message_size_ += h.payload_length;
    return;
  }
  in_message_ = true;
  message_opcode_ = static_cast<Opcode>(h.opcode);
  message_compressed_ = h.rsv1;
  message_size_ = h.payload_length;
  utf8_.reset();
  assembly_.clear();
}

template <class Handler>
std::size_t Parser<Handler>::stream_payload(std::uint8_t* data, std::size_t size) {
  const std::uint64_t remaining = frame_.payload_length - frame_received_;
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, size));
  if (frame_.masked)
    apply_mask(data, n, frame_.mask, static_cast<std::size_t>(frame_received_ & 3));
  frame_received_ += n;
  const bool done = frame_received_ == frame_.payload_length;
  const std::string_view chunk = parser_detail::as_view(data, n);

  if (parser_detail::is_control(frame_.opcode)) {
    control_.append(chunk);
    if (done) {
      in_frame_ = false;
      deliver_control(frame_.opcode, control_);
    }
    return n;
  }
  if (message_opcode_ == Opcode::text && !message_compressed_ && !utf8_.feed(chunk)) {
    fail(close_code::invalid_payload, "text message is not valid UTF-8");
    return n;
  }
  assembly_.append(chunk);
  if (done) {
    in_frame_ = false;
    if (frame_.fin) finish_message();
  }
  return n;
}

template <class Handler>
void Parser<Handler>::finish_message() {
  in_message_ = false;
  if (message_opcode_ == Opcode::text && !message_compressed_ && !utf8_.complete()) {
    fail(close_code::invalid_payload, "text message ends inside a UTF-8 sequence");
    return;
  }
  handler_.on_message(message_opcode_, std::string_view(assembly_), message_compressed_);
  assembly_.clear();
}

template <class Handler>
void Parser<Handler>::deliver_control(std::uint8_t opcode, std::string_view payload) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::ping:
      handler_.on_ping(payload);
      return;
    case Opcode::pong:
      handler_.on_pong(payload);
      return;
    case Opcode::close:
      break;
    default:
      return;  // unreachable: check_header rejects reserved opcodes
  }
  ClosePayload close;
  switch (parse_close_payload(payload, close)) {
    case CloseParse::ok:
      halt_ |= halt_finished;
      handler_.on_close(close.code, close.reason);
      return;
    case CloseParse::bad_length:
      fail(close_code::protocol_error, "close payload of 1 byte");
      return;
    case CloseParse::bad_code:
      fail(close_code::protocol_error, "close code not allowed on the wire");
      return;
    case CloseParse::bad_utf8:
      fail(close_code::invalid_payload, "close reason is not valid UTF-8");
      return;
  }
}

template <class Handler>
void Parser<Handler>::fail(std::uint16_t close_code, std::string_view reason) {
  halt_ |= halt_finished;
  handler_.on_protocol_error(close_code, reason);
}

}  // namespace ebb::websocket::codec
