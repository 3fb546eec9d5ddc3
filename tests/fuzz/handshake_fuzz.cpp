// libFuzzer target for the opening handshake and permessage-deflate
// negotiation: the server's request parser, the client's response parser,
// both extension negotiators and the Inflater, on the same input. Invariants trap.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "websocket/deflate/deflate.hpp"
#include "websocket/handshake/handshake.hpp"

namespace hs = ebb::websocket::handshake;
namespace df = ebb::websocket::deflate;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

const hs::ServerPolicy& policy() {
  static const hs::ServerPolicy p = [] {
    hs::ServerPolicy p;
    p.path = "/chat";
    p.max_size = 4096;
    p.allowed_origins = {"http://example.com", "https://chat.example.com:8443"};
    p.subprotocols = {"chat.v2", "chat.v1"};
    p.deflate.enabled = true;
    p.deflate.server_max_window_bits = 12;
    p.deflate.client_max_window_bits = 11;
    return p;
  }();
  return p;
}

void fuzz_request(std::string_view in) {
  const hs::ServerResult r = hs::process_request(in, policy());
  check(r.consumed <= in.size());
  switch (r.status) {
    case hs::Status::need_more:
      check(r.consumed == 0 && r.response.empty() && in.size() < policy().max_size);
      break;
    case hs::Status::accepted:
      check(starts_with(r.response, "HTTP/1.1 101 Switching Protocols\r\n"));
      check(r.http_status == 101 && r.consumed > 0 && r.error.empty());
      check(r.consumed <= policy().max_size);
      check(r.subprotocol.empty() || r.subprotocol == "chat.v2" || r.subprotocol == "chat.v1");
      check(starts_with(r.target, "/chat"));
      if (r.deflate) {
        check(r.deflate->server_max_window_bits >= 9 && r.deflate->server_max_window_bits <= 12);
        check(r.deflate->client_max_window_bits >= 9 && r.deflate->client_max_window_bits <= 15);
      }
      break;
    case hs::Status::rejected:
      check(r.http_status >= 400 && r.http_status < 500 && !r.error.empty());
      check(starts_with(r.response, "HTTP/1.1 " + std::to_string(r.http_status) + " "));
      check(r.response.find("\r\nConnection: close\r\n") != std::string::npos);
      break;
  }
}

void fuzz_response(std::string_view in) {
  static const std::string key = "dGhlIHNhbXBsZSBub25jZQ==";
  static const std::vector<std::string> protocols = {"chat.v1", "chat.v2"};
  ebb::websocket::DeflateOptions offered;
  offered.enabled = true;
  offered.server_max_window_bits = 11;
  const hs::ClientResult r = hs::process_response(in, key, protocols, &offered, 4096);
  check(r.consumed <= in.size());
  if (r.status == hs::Status::need_more) check(r.consumed == 0 && in.size() < 4096);
  if (r.status == hs::Status::accepted) {
    check(r.http_status == 101 && r.consumed > 0);
    check(r.subprotocol.empty() || r.subprotocol == "chat.v1" || r.subprotocol == "chat.v2");
    if (r.deflate) check(r.deflate->server_max_window_bits <= 11);
    if (r.deflate) check(r.deflate->client_max_window_bits >= 9);
  }
  if (r.status == hs::Status::rejected) check(!r.error.empty());
}

void fuzz_extensions(std::string_view in) {
  const df::Negotiation n = df::negotiate_server(in, policy().deflate);
  check(!(n.params && !n.error.empty()));
  check(n.params.has_value() == !n.response.empty());
  if (!n.params) return;
  check(starts_with(n.response, "permessage-deflate"));
  // Our own answer must satisfy a client that made the same offer.
  check(df::negotiate_server(n.response, policy().deflate).params.has_value());
  std::string error;
  ebb::websocket::DeflateOptions as_client;
  as_client.enabled = true;
  auto p = df::parse_server_response(in, as_client, error);
  check(p.has_value() || !error.empty());
}

/// Peer bytes through the Inflater (bounded), and a round trip of the input.
void fuzz_inflate(std::string_view in) {
  constexpr std::size_t kLimit = 64 * 1024;
  df::Inflater inflater(15, false);
  std::string out;
  auto rc = inflater.decompress(in, out, kLimit);
  check(out.size() <= kLimit && (rc == df::Inflater::Result::ok || out.empty()));

  const bool reset = !in.empty() && (in[0] & 1);
  df::Deflater deflater(9 + static_cast<int>(in.size() % 7), reset, 6);
  df::Inflater back(15, reset);
  for (int i = 0; i < 2; ++i) {
    std::string z, plain;
    check(deflater.compress(in, z));
    check(back.decompress(z, plain, in.size()) == df::Inflater::Result::ok);
    check(plain == in);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz_request(in);
  fuzz_response(in);
  fuzz_extensions(in);
  fuzz_inflate(in);
  // The whole input as a header value too, behind a valid request.
  if (size < 2048 && in.find_first_of("\r\n") == std::string_view::npos) {
    std::string req =
        "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: ";
    req.append(in);
    req += "\r\nSec-WebSocket-Protocol: ";
    req.append(in);
    req += "\r\n\r\n";
    fuzz_request(req);
  }
  return 0;
}
