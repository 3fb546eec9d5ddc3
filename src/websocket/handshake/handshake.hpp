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
  std::string path;                          ///< empty: any path
  std::size_t max_size = 8192;               ///< request head limit (431 past it)
  std::vector<std::string> allowed_origins;  ///< empty: any; else exact, case-insensitive match
  std::vector<std::string> subprotocols;     ///< server preference order
  DeflateOptions deflate;
};

enum class Status { need_more, accepted, rejected };

struct ServerResult {
  Status status = Status::need_more;
  std::size_t consumed = 0;  ///< bytes of the request head; what follows are frames
  int http_status = 0;       ///< 101, or the error status sent
  std::string response;      ///< the full HTTP response to write (accepted or rejected)
  std::string error;         ///< why it was rejected (also the response body)
  std::string target;
  std::string origin;
  std::string subprotocol;
  std::optional<deflate::Params> deflate;
};

/// Decide on an upgrade request. Statuses: 400 malformed or missing/invalid
/// headers (Upgrade, Connection, Sec-WebSocket-Key of 16 bytes base64, Host),
/// 405 not GET, 426 version not 13 (with Sec-WebSocket-Version: 13), 403
/// Origin not allowed, 404 wrong path, 431 head too large, 400 body present.
/// A subprotocol is chosen only if the client offered one the server lists;
/// no overlap means no Sec-WebSocket-Protocol header (the client decides).
ServerResult process_request(std::string_view data, const ServerPolicy& policy);

/// Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view key);

/// A complete error response with Connection: close and a text body.
std::string error_response(int status, std::string_view body, std::string_view extra_headers = {});

// ---- client side ----
/// 16 random bytes, base64.
std::string make_client_key();
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
ClientResult process_response(std::string_view data, std::string_view key,
                              const std::vector<std::string>& offered_protocols,
                              const DeflateOptions* offered_deflate, std::size_t max_size = 16384);

}  // namespace ebb::websocket::handshake
