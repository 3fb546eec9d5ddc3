#pragma once
// permessage-deflate (RFC 7692): negotiation and the zlib streams.
// zlib state (~300 KiB per direction at 15 window bits) is allocated lazily,
// on the first compressed message, so idle sessions cost nothing.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ebb/websocket/options.hpp"

namespace ebb::websocket::deflate {

/// The agreed parameters (RFC 7692 §7.1). The window of our own compressor
/// is always 9..15: zlib cannot compress with a raw 8-bit window
/// (madler/zlib#171), so a server declines an offer that limits it to 8 and a
/// client rejects a response that does. The peer's window may be 8; the
/// Inflater decodes it with a 9-bit window (a larger window decodes anything).
struct Params {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;  ///< the server's compressor (server side: 9..15)
  int client_max_window_bits = 15;  ///< the client's compressor (client side: 9..15)
};

struct Negotiation {
  std::optional<Params> params;  ///< set when permessage-deflate was accepted
  std::string response;          ///< value for the response's Sec-WebSocket-Extensions
  std::string error;             ///< non-empty: the header was malformed (reject with 400)
};

/// Server side: walk the client's offers (Sec-WebSocket-Extensions, possibly
/// several headers joined with ','), accept the first acceptable
/// permessage-deflate offer within `options`. Unknown extensions are ignored.
/// An offer with unknown or duplicate parameters or bad values is skipped
/// (RFC 7692 §5: "decline"); a syntactically broken header is an error.
/// Declined as well: server_max_window_bits=8 (see Params). The response
/// carries server_no_context_takeover when offered or wanted by `options`,
/// client_no_context_takeover likewise, server_max_window_bits = min(offer,
/// options) when offered or below 15, client_max_window_bits only when
/// offered (= min(options, offered value, at least 9), omitted when 15).
/// Returns nothing (no error) when `options.enabled` is false.
Negotiation negotiate_server(std::string_view offers, const DeflateOptions& options);

/// Client side: the offer to send, and the check of the server's answer.
/// `options` keeps the server's point of view: server_* limit the server's
/// compressor (our inflater), client_* our compressor. Empty when disabled.
std::string client_offer(const DeflateOptions& options);
/// Parses the server's response extension value; nullopt + error when it
/// is not a valid answer to our offer (another extension, unknown/duplicate
/// parameters, a requested limit or no-context-takeover not granted, a
/// server window above the one asked for, client_max_window_bits=8).
std::optional<Params> parse_server_response(std::string_view value, const DeflateOptions& offered,
                                            std::string& error);

/// Compresses whole messages. Not thread-safe (one per session direction).
/// `window_bits` is clamped to 9..15, `level` to 0..9. With no context
/// takeover the stream is reset (not freed) after each message.
class Deflater {
 public:
  Deflater(int window_bits, bool no_context_takeover, int level);
  ~Deflater();
  /// Appends the compressed form of `in` to `out`, without the final
  /// 00 00 FF FF (RFC 7692 §7.2.1). Returns false on a zlib failure.
  bool compress(std::string_view in, std::string& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
  int window_bits_, level_;
  bool no_context_takeover_;
};

/// Decompresses whole messages with a size limit. Not thread-safe.
/// `window_bits` 8..15 (8 is decoded with 9).
class Inflater {
 public:
  enum class Result { ok, too_big, error };
  Inflater(int window_bits, bool no_context_takeover);
  ~Inflater();
  /// Appends the decompressed form of `in` (a message's payload without its
  /// 00 00 FF FF tail) to `out`. Stops with too_big as soon as this call
  /// would append more than `limit` bytes: `out` never grows (capacity
  /// included) past its old size + limit + 1. On too_big or error `out` is
  /// restored to its old size and the stream is reset; with context takeover
  /// later messages cannot be decoded then, so the caller closes (1009/1007).
  /// A final block (BFINAL, RFC 7692 §7.2.3.5) is accepted; the window is kept.
  Result decompress(std::string_view in, std::string& out, std::size_t limit);

 private:
  struct State;
  std::unique_ptr<State> state_;
  int window_bits_;
  bool no_context_takeover_;
};

}  // namespace ebb::websocket::deflate
