#pragma once
// The RFC 6455 message parser: bytes in, events out. Pure (no I/O), driven
// from byte spans, so it is unit-tested and fuzzed on its own.
//
// It validates everything the RFC asks of a receiver: masking per role,
// reserved bits (RSV1 only when permessage-deflate was negotiated, and only
// on the first frame of a data message), reserved opcodes, control frames
// (FIN set, payload <= 125, may interleave a fragmented message),
// continuation sequencing, max message size (1009), incremental UTF-8 of
// uncompressed text across fragments (1007, failing at the first bad byte),
// Close payloads (code and reason). After an error or a Close it consumes
// nothing more.
//
// Zero-copy: a complete unfragmented frame that lies wholly in the buffer is
// unmasked in place and delivered as a view into the caller's buffer; only
// fragmented or split messages are assembled into the parser's own buffer.
//
// Handler requirements (all views valid only during the call):
//   void on_message(Opcode op /*text|binary*/, std::string_view payload, bool compressed);
//       compressed == true: payload is raw permessage-deflate data; the caller
//       inflates it and validates UTF-8 for text itself.
//   void on_ping(std::string_view payload);
//   void on_pong(std::string_view payload);
//   void on_close(std::uint16_t code, std::string_view reason);  // code 1005 if empty
//   void on_protocol_error(std::uint16_t close_code, std::string_view reason);
// A handler may call stop() on the parser to make feed() return early (for
// example when the application closed the session from inside on_message).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "websocket/codec/close.hpp"
#include "websocket/codec/frame.hpp"
#include "websocket/codec/utf8.hpp"

namespace ebb::websocket::codec {

struct ParserLimits {
  std::uint64_t max_message_size = 16u << 20;  ///< bytes of one (assembled) message
  bool allow_rsv1 = false;                     ///< permessage-deflate negotiated
};

template <class Handler>
class Parser {
 public:
  Parser(Role role, ParserLimits limits, Handler& handler)
      : role_(role),
        limits_(limits),
        handler_(handler),
        mask_bit_(role == Role::server ? frame_detail::mask_bit : 0),
        mask_size_(role == Role::server ? 4 : 0),
        rsv1_ok_(limits.allow_rsv1 ? frame_detail::rsv1_bit : 0) {}

  /// Consume bytes (and unmask them in place). Returns how many bytes were
  /// consumed. Any unconsumed tail is an incomplete frame header (always
  /// fewer than max_header_size bytes): the caller presents it again, followed
  /// by more data. Payload bytes are always consumed as they arrive, so a
  /// large frame is never re-presented.
  std::size_t feed(std::uint8_t* data, std::size_t size);

  /// Stop consuming: feed() returns after the current event.
  void stop() noexcept { halt_ |= halt_stopped; }
  /// Allow feed() again after stop() (the state machine continues).
  void resume() noexcept { halt_ &= static_cast<std::uint8_t>(~halt_stopped); }
  /// True after a Close frame or a protocol error: nothing more is consumed.
  bool finished() const noexcept { return (halt_ & halt_finished) != 0; }
  /// True between frames of a fragmented message or inside a frame payload.
  bool mid_message() const noexcept;
  /// Capacity held for assembling messages (for memory accounting);
  /// release_memory() frees it when no message is in progress.
  std::size_t buffered_capacity() const noexcept { return assembly_.capacity(); }
  /// Frees the assembly buffers unless a message is in progress (for idle
  /// sessions). Not from inside on_message: the payload view may point into
  /// the buffer being freed.
  void release_memory() noexcept;

 private:
  // Implementation in parser_impl.hpp (included below).
  // Forced inline: called once per frame from feed()'s loop, where a call
  // would save and restore registers that feed() already holds.
  [[gnu::always_inline]] inline std::size_t try_fast_frame(std::uint8_t* data, std::size_t size);
  bool check_header(const FrameHeader& h);
  void deliver_in_place(const FrameHeader& h, std::uint8_t* payload, std::size_t size);
  void begin_frame(const FrameHeader& h);
  std::size_t stream_payload(std::uint8_t* data, std::size_t size);
  void finish_message();
  void deliver_control(std::uint8_t opcode, std::string_view payload);
  void fail(std::uint16_t close_code, std::string_view reason);

  Role role_;
  ParserLimits limits_;
  Handler& handler_;
  // Derived from role and limits for the per-frame fast path.
  std::uint8_t mask_bit_;   ///< the MASK bit every incoming frame must have
  std::uint8_t mask_size_;  ///< bytes of masking key in every incoming header
  std::uint8_t rsv1_ok_;    ///< rsv1_bit if RSV1 may be set on a data frame, else 0
  // Why feed() must return: one flag word, so the loop tests it once.
  static constexpr std::uint8_t halt_stopped = 1;   ///< stop() until resume()
  static constexpr std::uint8_t halt_finished = 2;  ///< after a Close or an error, for good
  std::uint8_t halt_ = 0;

  // Current frame, while its payload is streaming in.
  FrameHeader frame_{};
  bool in_frame_ = false;
  std::uint64_t frame_received_ = 0;  ///< payload bytes of the current frame seen
  // Current data message (possibly fragmented).
  bool in_message_ = false;  ///< a text/binary message started, FIN not yet seen
  Opcode message_opcode_ = Opcode::text;
  bool message_compressed_ = false;
  std::uint64_t message_size_ = 0;
  Utf8Validator utf8_;
  std::string assembly_;  ///< fragments / split frames of the current data message
  std::string control_;   ///< a control frame split across reads (<= 125 bytes)
};

}  // namespace ebb::websocket::codec

#include "websocket/codec/parser_impl.hpp"
