#pragma once
// The opening handshake (RFC 6455 §4), parsed with Boost.Beast's HTTP parser.
// Pure: bytes in, a decision and the response bytes out.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ebb/websocket/options.hpp"
#include "websocket/deflate/deflate.hpp"

namespace ebb::websocket::handshake {

struct ServerPolicy {
  std::string path;             ///< empty: any path; else exact match, query ignored
  std::size_t max_size = 8192;  ///< request head limit, CRLFCRLF included (431 past it)
  /// Empty: any. Else the Origin must equal an entry (scheme://host[:port],
  /// case-insensitive, no normalisation of default ports). A request without
  /// Origin is still accepted: browsers always send it on WebSocket requests,
  /// and the check exists to stop cross-site WebSocket hijacking from
  /// browsers; a non-browser client could forge any Origin anyway.
  std::vector<std::string> allowed_origins;
  std::vector<std::string> subprotocols;  ///< server preference order
  DeflateOptions deflate;
};

enum class Status { need_more, accepted, rejected };

struct ServerResult {
  Status status = Status::need_more;
  /// Bytes of the request head (0 while need_more); what follows are frames.
  /// After a rejection, write `response` and close the connection.
  std::size_t consumed = 0;
  int http_status = 0;   ///< 101, or the error status sent
  std::string response;  ///< the full HTTP response to write (accepted or rejected)
  std::string error;     ///< why it was rejected (also the response body)
  std::string target;    ///< as sent, query included
  std::string origin;    ///< empty when absent
  std::string subprotocol;
  std::optional<deflate::Params> deflate;
};

/// Decide on an upgrade request. `data` is everything received so far; call
/// again with more bytes on need_more (each call re-parses from the start).
/// Statuses: 400 malformed or missing/invalid headers (Upgrade, Connection,
/// Sec-WebSocket-Key of 16 bytes in canonical base64, exactly one Host), HTTP
/// below 1.1, a body, a target that is not an absolute path, or a malformed
/// Sec-WebSocket-Extensions when deflate is enabled; 405 not GET (with
/// Allow: GET); 426 version missing or not 13 (with Sec-WebSocket-Version:
/// 13); 404 wrong path; 403 Origin not allowed or repeated; 431 head larger
/// than max_size (decided as soon as max_size bytes hold no complete head).
/// A subprotocol is chosen only if the client offered one the server lists
/// (first in the server's order, exact match); no overlap means no
/// Sec-WebSocket-Protocol header (the client decides).
ServerResult process_request(std::string_view data, const ServerPolicy& policy);

/// Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view key);

/// A complete error response with Connection: close and a text/plain body
/// (`body` plus a newline). `extra_headers`: complete lines, each ending CRLF.
std::string error_response(int status, std::string_view body, std::string_view extra_headers = {});

// ---- client side ----
/// 16 random bytes, base64.
/// Throws std::runtime_error if OpenSSL has no randomness.
std::string make_client_key();
/// The upgrade request. Throws std::invalid_argument when an argument would
/// inject header lines (CR, LF, NUL; a space in the target). Empty target: "/".
std::string build_client_request(std::string_view host_port, std::string_view target,
                                 std::string_view key, const std::vector<std::string>& protocols,
                                 std::string_view origin, std::string_view extensions_offer);

struct ClientResult {
  Status status = Status::need_more;
  std::size_t consumed = 0;
  int http_status = 0;
  std::string error;
  std::string subprotocol;
  std::optional<deflate::Params> deflate;
};
/// Checks the server's answer to our request: 101, Upgrade/Connection tokens,
/// Sec-WebSocket-Accept for `key`, a subprotocol we offered (or none), and
/// extensions only as an answer to `offered_deflate` (null: none offered).
/// `consumed` is the head's length; bytes after it are already frames.
ClientResult process_response(std::string_view data, std::string_view key,
                              const std::vector<std::string>& offered_protocols,
                              const DeflateOptions* offered_deflate, std::size_t max_size = 16384);

}  // namespace ebb::websocket::handshake
