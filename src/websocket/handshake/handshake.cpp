#include "websocket/handshake/handshake.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "text/ascii.hpp"

namespace ebb::websocket::handshake {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::string_view kEndOfHead = "\r\n\r\n";
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// ---- small text helpers ----

std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

using text::iequals;

/// Calls fn(element) for each non-empty, trimmed element of a comma list.
template <class Fn>
void for_each_element(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = trim(list.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

/// True when any instance of `name` lists `token` (case-insensitive).
template <class Fields>
bool has_token(const Fields& fields, http::field name, std::string_view token) {
  bool found = false;
  auto range = fields.equal_range(name);
  for (auto it = range.first; it != range.second && !found; ++it)
    for_each_element(sv(it->value()), [&](std::string_view t) { found |= iequals(t, token); });
  return found;
}

/// All instances of `name` joined with ", " (RFC 7230 §3.2.2).
template <class Fields>
std::string joined(const Fields& fields, http::field name) {
  std::string out;
  auto range = fields.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    if (!out.empty()) out += ", ";
    out += sv(it->value());
  }
  return out;
}

/// The value of a header that must appear exactly once, trimmed.
template <class Fields>
std::optional<std::string_view> single(const Fields& fields, http::field name) {
  if (fields.count(name) != 1) return std::nullopt;
  return trim(sv(fields.find(name)->value()));
}

std::string base64_encode(const unsigned char* p, std::size_t n) {
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (std::size_t i = 0; i < n; i += 3) {
    std::uint32_t v = std::uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= std::uint32_t{p[i + 1]} << 8;
    if (i + 2 < n) v |= p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kAlphabet[v & 63] : '=';
  }
  return out;
}

/// Strict RFC 4648 decoding: padded, canonical (unused bits zero), no spaces.
std::optional<std::string> base64_decode(std::string_view s) {
  if (s.size() % 4 != 0) return std::nullopt;
  std::size_t pad =
      s.size() >= 1 && s.back() == '=' ? (s.size() >= 2 && s[s.size() - 2] == '=') + 1 : 0;
  std::string out;
  std::uint32_t acc = 0;
  for (std::size_t i = 0; i < s.size() - pad; ++i) {
    std::size_t d = kAlphabet.find(s[i]);
    if (d == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    if (i % 4 == 3) {
      out += static_cast<char>(acc >> 16);
      out += static_cast<char>(acc >> 8);
      out += static_cast<char>(acc);
      acc = 0;
    }
  }
  if (pad == 1) {  // 3 symbols → 2 bytes, 2 unused bits
    if (acc & 3) return std::nullopt;
    out += static_cast<char>(acc >> 10);
    out += static_cast<char>(acc >> 2);
  } else if (pad == 2) {  // 2 symbols → 1 byte, 4 unused bits
    if (acc & 15) return std::nullopt;
    out += static_cast<char>(acc >> 4);
  }
  return out;
}

std::string_view reason(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default: {
      auto r = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
      return sv(r);
    }
  }
}

/// How much of `data` the message head takes, if it is complete and fits.
struct Head {
  enum { incomplete, too_large, complete } state;
  std::size_t length = 0;
};
Head find_head(std::string_view data, std::size_t max) {
  std::size_t eom = data.find(kEndOfHead);
  if (eom == std::string_view::npos)
    return {data.size() < max ? Head::incomplete : Head::too_large};
  std::size_t length = eom + kEndOfHead.size();
  if (length > max) return {Head::too_large};
  return {Head::complete, length};
}

std::uint32_t clamp_limit(std::size_t n) {
  return static_cast<std::uint32_t>(
      std::min<std::size_t>(n, std::numeric_limits<std::uint32_t>::max()));
}

// ---- server side ----

struct Rejection {
  int status;
  std::string why;
  std::string extra_headers;
};

ServerResult reject(ServerResult r, Rejection rej) {
  r.status = Status::rejected;
  r.http_status = rej.status;
  r.response = error_response(rej.status, rej.why, rej.extra_headers);
  r.error = std::move(rej.why);
  return r;
}

/// The path part of an origin-form target ("/chat?room=1" → "/chat").
std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
  return std::any_of(allowed.begin(), allowed.end(),
                     [&](const std::string& a) { return iequals(trim(a), origin); });
}

using Request = http::request<http::empty_body>;

/// RFC 6455 §4.2.1 checks on the request line and the upgrade headers.
std::optional<Rejection> check_upgrade(const Request& req, bool has_body) {
  if (req.method() != http::verb::get)
    return Rejection{405, "a WebSocket upgrade must use GET", "Allow: GET\r\n"};
  if (req.version() < 11) return Rejection{400, "a WebSocket upgrade requires HTTP/1.1", {}};
  if (has_body) return Rejection{400, "a WebSocket upgrade request must not have a body", {}};
  auto host = single(req, http::field::host);
  if (!host || host->empty())
    return Rejection{400, "exactly one non-empty Host header is required", {}};
  if (!has_token(req, http::field::upgrade, "websocket"))
    return Rejection{400, "the Upgrade header must contain \"websocket\"", {}};
  if (!has_token(req, http::field::connection, "upgrade"))
    return Rejection{400, "the Connection header must contain \"Upgrade\"", {}};
  auto version = single(req, http::field::sec_websocket_version);
  if (!version || *version != "13")
    return Rejection{426, "Sec-WebSocket-Version must be 13", "Sec-WebSocket-Version: 13\r\n"};
  auto key = single(req, http::field::sec_websocket_key);
  auto raw = key ? base64_decode(*key) : std::nullopt;
  if (!raw || raw->size() != 16)
    return Rejection{400, "Sec-WebSocket-Key must be 16 bytes in base64", {}};
  return std::nullopt;
}

/// Path and Origin policy. A missing Origin is accepted even with an
/// allowlist: browsers always send Origin on WebSocket requests (Fetch
/// standard), and the allowlist exists to stop cross-site WebSocket hijacking
/// from browsers; a non-browser client can forge any Origin anyway.
std::optional<Rejection> check_policy(const Request& req, const ServerPolicy& policy,
                                      ServerResult& r) {
  if (r.target.empty() || r.target.front() != '/')
    return Rejection{400, "the request target must be an absolute path", {}};
  std::string_view path = target_path(r.target);
  if (!policy.path.empty() && path != policy.path)
    return Rejection{404, "no WebSocket endpoint at " + std::string(path), {}};
  std::size_t origins = req.count(http::field::origin);
  if (origins > 1) return Rejection{403, "more than one Origin header", {}};
  if (origins == 1) r.origin = trim(sv(req[http::field::origin]));
  if (origins == 1 && !policy.allowed_origins.empty() &&
      !origin_allowed(r.origin, policy.allowed_origins))
    return Rejection{403, "origin " + r.origin + " is not allowed", {}};
  return std::nullopt;
}

/// The first protocol in the server's order that the client offered.
std::string choose_subprotocol(const Request& req, const std::vector<std::string>& server) {
  std::vector<std::string_view> offered;
  std::string all = joined(req, http::field::sec_websocket_protocol);
  for_each_element(all, [&](std::string_view p) { offered.push_back(p); });
  for (const std::string& p : server)
    if (std::find(offered.begin(), offered.end(), p) != offered.end()) return p;
  return {};
}

std::string switching_protocols(std::string_view key, const ServerResult& r,
                                std::string_view extensions) {
  std::string s =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  s += accept_key(key);
  s += "\r\n";
  if (!r.subprotocol.empty()) s += "Sec-WebSocket-Protocol: " + r.subprotocol + "\r\n";
  if (!extensions.empty()) s += "Sec-WebSocket-Extensions: " + std::string(extensions) + "\r\n";
  s += "\r\n";
  return s;
}

}  // namespace

ServerResult process_request(std::string_view data, const ServerPolicy& policy) {
  ServerResult r;
  const Head head = find_head(data, policy.max_size);
  if (head.state == Head::incomplete) return r;  // need_more
  if (head.state == Head::too_large) {
    r.consumed = data.size();
    return reject(
        std::move(r),
        {431, "request head larger than " + std::to_string(policy.max_size) + " bytes", {}});
  }
  r.consumed = head.length;

  http::request_parser<http::empty_body> parser;
  parser.header_limit(clamp_limit(policy.max_size));
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data.data(), head.length), ec);
  if (ec == http::error::header_limit)
    return reject(std::move(r), {431, "request head too large", {}});
  if (ec || !parser.is_header_done())
    return reject(std::move(r), {400, "malformed HTTP request: " + ec.message(), {}});

  const Request& req = parser.get();
  r.target = sv(req.target());
  const bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;
  if (auto rej = check_upgrade(req, has_body)) return reject(std::move(r), std::move(*rej));
  if (auto rej = check_policy(req, policy, r)) return reject(std::move(r), std::move(*rej));

  r.subprotocol = choose_subprotocol(req, policy.subprotocols);
  deflate::Negotiation neg;
  if (policy.deflate.enabled) {
    neg = deflate::negotiate_server(joined(req, http::field::sec_websocket_extensions),
                                    policy.deflate);
    if (!neg.error.empty()) return reject(std::move(r), {400, neg.error, {}});
    r.deflate = neg.params;
  }
  r.status = Status::accepted;
  r.http_status = 101;
  r.response = switching_protocols(*single(req, http::field::sec_websocket_key), r, neg.response);
  return r;
}

std::string accept_key(std::string_view key) {
  std::string input(key);
  input += kGuid;
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
  return base64_encode(digest.data(), digest.size());
}

std::string error_response(int status, std::string_view body, std::string_view extra_headers) {
  std::string text(body);
  text += '\n';
  std::string s = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason(status)) + "\r\n";
  s += "Content-Type: text/plain\r\n";
  s += "Content-Length: " + std::to_string(text.size()) + "\r\n";
  s += "Connection: close\r\n";
  s += extra_headers;
  s += "\r\n";
  s += text;
  return s;
}

// ---- client side ----

std::string make_client_key() {
  std::array<unsigned char, 16> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1)
    throw std::runtime_error("RAND_bytes failed: no randomness for Sec-WebSocket-Key");
  return base64_encode(nonce.data(), nonce.size());
}

namespace {
void require_header_safe(std::string_view what, std::string_view v) {
  if (v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
    throw std::invalid_argument(std::string(what) + " contains CR, LF or NUL");
}
}  // namespace

std::string build_client_request(std::string_view host_port, std::string_view target,
                                 std::string_view key, const std::vector<std::string>& protocols,
                                 std::string_view origin, std::string_view extensions_offer) {
  require_header_safe("host", host_port);
  require_header_safe("target", target);
  require_header_safe("key", key);
  require_header_safe("origin", origin);
  require_header_safe("extensions", extensions_offer);
  if (target.find(' ') != std::string_view::npos)
    throw std::invalid_argument("target contains a space");
  std::string s = "GET " + std::string(target.empty() ? "/" : target) + " HTTP/1.1\r\n";
  s += "Host: " + std::string(host_port) + "\r\n";
  s += "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  s += "Sec-WebSocket-Key: " + std::string(key) + "\r\n";
  s += "Sec-WebSocket-Version: 13\r\n";
  if (!origin.empty()) s += "Origin: " + std::string(origin) + "\r\n";
  if (!protocols.empty()) {
    s += "Sec-WebSocket-Protocol: ";
    for (std::size_t i = 0; i < protocols.size(); ++i) {
      require_header_safe("protocol", protocols[i]);
      s += (i ? ", " : "") + protocols[i];
    }
    s += "\r\n";
  }
  if (!extensions_offer.empty())
    s += "Sec-WebSocket-Extensions: " + std::string(extensions_offer) + "\r\n";
  s += "\r\n";
  return s;
}

namespace {
using Response = http::response<http::empty_body>;

ClientResult fail(ClientResult r, std::string why) {
  r.status = Status::rejected;
  r.error = std::move(why);
  return r;
}

std::optional<std::string> check_subprotocol(const Response& res,
                                             const std::vector<std::string>& offered,
                                             std::string& chosen) {
  std::size_t n = res.count(http::field::sec_websocket_protocol);
  if (n == 0) return std::nullopt;
  auto value = single(res, http::field::sec_websocket_protocol);
  if (!value || value->find(',') != std::string_view::npos)
    return "the server selected more than one subprotocol";
  if (std::find(offered.begin(), offered.end(), *value) == offered.end())
    return "the server selected subprotocol \"" + std::string(*value) + "\", which was not offered";
  chosen = *value;
  return std::nullopt;
}
}  // namespace

ClientResult process_response(std::string_view data, std::string_view key,
                              const std::vector<std::string>& offered_protocols,
                              const DeflateOptions* offered_deflate, std::size_t max_size) {
  ClientResult r;
  const Head head = find_head(data, max_size);
  if (head.state == Head::incomplete) return r;
  if (head.state == Head::too_large) {
    r.consumed = data.size();
    return fail(std::move(r), "response head larger than " + std::to_string(max_size) + " bytes");
  }
  r.consumed = head.length;

  http::response_parser<http::empty_body> parser;
  parser.header_limit(clamp_limit(max_size));
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data.data(), head.length), ec);
  if (ec || !parser.is_header_done())
    return fail(std::move(r), "malformed HTTP response: " + ec.message());

  const Response& res = parser.get();
  r.http_status = static_cast<int>(res.result_int());
  if (r.http_status != 101)
    return fail(std::move(r), "the server answered " + std::to_string(r.http_status) + " " +
                                  std::string(sv(res.reason())) +
                                  " instead of 101 Switching Protocols");
  if (!has_token(res, http::field::upgrade, "websocket"))
    return fail(std::move(r), "the response's Upgrade header does not contain \"websocket\"");
  if (!has_token(res, http::field::connection, "upgrade"))
    return fail(std::move(r), "the response's Connection header does not contain \"Upgrade\"");
  auto accept = single(res, http::field::sec_websocket_accept);
  if (!accept || *accept != accept_key(key))
    return fail(std::move(r), "Sec-WebSocket-Accept does not match the key");
  if (auto why = check_subprotocol(res, offered_protocols, r.subprotocol))
    return fail(std::move(r), std::move(*why));

  std::string extensions = joined(res, http::field::sec_websocket_extensions);
  if (!trim(extensions).empty()) {
    if (!offered_deflate || !offered_deflate->enabled)
      return fail(std::move(r),
                  "the server accepted extensions that were not offered: " + extensions);
    std::string why;
    r.deflate = deflate::parse_server_response(extensions, *offered_deflate, why);
    if (!r.deflate) return fail(std::move(r), std::move(why));
  }
  r.status = Status::accepted;
  return r;
}

}  // namespace ebb::websocket::handshake
