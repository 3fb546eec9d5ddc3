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

/// The agreed parameters (RFC 7692 §7.1).
struct Params {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;  ///< 9..15 (8 is raised to 9: zlib cannot do 8)
  int client_max_window_bits = 15;
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
Negotiation negotiate_server(std::string_view offers, const DeflateOptions& options);

/// Client side: the offer to send, and the check of the server's answer.
std::string client_offer(const DeflateOptions& options);
/// Parses the server's response extension value; nullopt + error when it
/// is not a valid answer to our offer.
std::optional<Params> parse_server_response(std::string_view value, const DeflateOptions& offered,
                                            std::string& error);

/// Compresses whole messages. Not thread-safe (one per session direction).
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

/// Decompresses whole messages with a size limit.
class Inflater {
 public:
  enum class Result { ok, too_big, error };
  Inflater(int window_bits, bool no_context_takeover);
  ~Inflater();
  /// Appends the decompressed form of `in` (a message's payload without its
  /// 00 00 FF FF tail) to `out`. Stops with too_big as soon as more than
  /// `limit` bytes would be produced (a zip bomb never grows past it).
  Result decompress(std::string_view in, std::string& out, std::size_t limit);

 private:
  struct State;
  std::unique_ptr<State> state_;
  int window_bits_;
  bool no_context_takeover_;
};

}  // namespace ebb::websocket::deflate
