#pragma once
// Fills an ebb::Request (its fields are private to keep the public type
// read-only for handlers). Reuses the request's storage between requests of
// one connection, so steady-state keep-alive traffic allocates little.
#include <string_view>

#include "ebb/http/request.hpp"

namespace ebb::http::detail {

class RequestBuilder {
 public:
  explicit RequestBuilder(Request& r) : r_(r) {}

  /// Clears everything but the remote address (fixed per connection).
  void reset() {
    r_.method_.clear();
    r_.target_.clear();
    r_.path_.clear();
    r_.headers_.clear();
    r_.body_.clear();
    r_.params_.clear();
    r_.query_.clear();
    r_.version_ = 11;
    r_.keep_alive_ = true;
  }
  void set_remote(std::string address, std::uint16_t port) {
    r_.remote_address_ = std::move(address);
    r_.remote_port_ = port;
  }
  void set_method(std::string_view m) { r_.method_.assign(m); }
  /// Sets target_ and derives path_ (percent-decoded) and the query list.
  /// Returns false for a target that is not origin-form ("/..." ).
  bool set_target(std::string_view target);
  void set_version(unsigned v) { r_.version_ = v; }
  void set_keep_alive(bool k) { r_.keep_alive_ = k; }
  void add_header(std::string_view name, std::string_view value) {
    r_.headers_.emplace_back(std::string(name), std::string(value));
  }
  std::string& body() { return r_.body_; }
  std::vector<Request::Param>& params() { return r_.params_; }

 private:
  Request& r_;
};

}  // namespace ebb::http::detail
