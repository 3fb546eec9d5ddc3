#pragma once
// ebb::Request: one parsed HTTP/1.1 request, as a handler sees it.
//
// Threads and lifetime: a Request belongs to its connection's I/O thread and
// is valid only during the handler call (and the middleware around it). A
// handler that answers later (Response::defer) copies what it needs first.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ebb {

namespace http::detail {
class RequestBuilder;
}

class Request {
 public:
  using Header = std::pair<std::string, std::string>;
  using Param = std::pair<std::string, std::string>;

  /// Method token as sent ("GET", "POST", ...); methods are case-sensitive.
  const std::string& method() const noexcept { return method_; }
  /// The request-target as sent: path plus optional "?query".
  const std::string& target() const noexcept { return target_; }
  /// The path part of the target, percent-decoded ("/a b" for "/a%20b").
  const std::string& path() const noexcept { return path_; }
  /// The raw query string without '?' (empty when absent).
  std::string_view query_string() const noexcept;
  /// 11 for HTTP/1.1, 10 for HTTP/1.0.
  unsigned version() const noexcept { return version_; }

  /// First header with this name (case-insensitive); empty when absent.
  std::string_view header(std::string_view name) const noexcept;
  bool has_header(std::string_view name) const noexcept;
  /// Every header in arrival order, names as sent.
  const std::vector<Header>& headers() const noexcept { return headers_; }

  /// The whole body (chunked bodies arrive de-chunked).
  const std::string& body() const noexcept { return body_; }

  /// A path parameter of the matched route ("/users/:id" → param("id")),
  /// percent-decoded; empty when absent.
  std::string_view param(std::string_view name) const noexcept;
  const std::vector<Param>& params() const noexcept { return params_; }
  /// The first query parameter with this name, percent-decoded ('+' is a
  /// space); empty when absent. Parsed with Boost.URL.
  std::string_view query(std::string_view name) const noexcept;
  bool has_query(std::string_view name) const noexcept;
  const std::vector<Param>& query_params() const noexcept { return query_; }

  /// The peer's address ("127.0.0.1", "::1") and port.
  const std::string& remote_address() const noexcept { return remote_address_; }
  std::uint16_t remote_port() const noexcept { return remote_port_; }

  /// The client asked to keep the connection open (HTTP/1.1 default).
  bool keep_alive() const noexcept { return keep_alive_; }

 private:
  friend class http::detail::RequestBuilder;
  std::string method_;
  std::string target_;
  std::string path_;
  unsigned version_ = 11;
  std::vector<Header> headers_;
  std::string body_;
  std::vector<Param> params_;
  std::vector<Param> query_;
  std::string remote_address_;
  std::uint16_t remote_port_ = 0;
  bool keep_alive_ = true;
};

}  // namespace ebb
