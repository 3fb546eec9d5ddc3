#pragma once
// The request parser: Boost.Beast's basic_parser, writing straight into an
// ebb::Request (no intermediate beast::http::message, no per-field node
// allocations beyond the Request's own vectors).
#include <boost/beast/http/basic_parser.hpp>
#include <string_view>

#include "http/request_builder.hpp"
#include "text/ascii.hpp"

namespace ebb::http::detail {

namespace beast_http = boost::beast::http;

class RequestParser final : public beast_http::basic_parser<true> {
 public:
  RequestParser(Request& request, std::size_t header_limit, std::size_t body_limit)
      : builder_(request) {
    builder_.reset();
    this->header_limit(static_cast<std::uint32_t>(header_limit));
    this->body_limit(body_limit);
    eager(true);
  }
  /// The target was not origin-form ("/path?query").
  bool bad_target() const noexcept { return bad_target_; }
  /// The client sent "Expect: 100-continue".
  bool expects_continue() const noexcept { return expect_continue_; }

 private:
  using sv = boost::beast::string_view;
  static std::string_view std_sv(sv s) { return {s.data(), s.size()}; }

  void on_request_impl(beast_http::verb, sv method, sv target, int version,
                       boost::beast::error_code&) override {
    builder_.set_method(std_sv(method));
    builder_.set_version(static_cast<unsigned>(version));
    bad_target_ = !builder_.set_target(std_sv(target));
  }
  void on_response_impl(int, sv, int, boost::beast::error_code&) override {}
  void on_field_impl(beast_http::field f, sv name, sv value, boost::beast::error_code&) override {
    builder_.add_header(std_sv(name), std_sv(value));
    if (f == beast_http::field::expect && text::iequals(std_sv(value), "100-continue"))
      expect_continue_ = true;
  }
  void on_header_impl(boost::beast::error_code&) override { builder_.set_keep_alive(keep_alive()); }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         boost::beast::error_code&) override {
    if (length) builder_.body().reserve(static_cast<std::size_t>(*length));
  }
  std::size_t on_body_impl(sv body, boost::beast::error_code&) override {
    builder_.body().append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, sv, boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, sv body, boost::beast::error_code&) override {
    builder_.body().append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(boost::beast::error_code&) override {}

  RequestBuilder builder_;
  bool bad_target_ = false;
  bool expect_continue_ = false;
};

}  // namespace ebb::http::detail
