#include "ebb/http/request.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "http/request_builder.hpp"
#include "text/ascii.hpp"

namespace ebb {

namespace {
using text::iequals;

template <class List>
const typename List::value_type* find_param(const List& list, std::string_view name) noexcept {
  for (const auto& p : list)
    if (p.first == name) return &p;
  return nullptr;
}
}  // namespace

std::string_view Request::query_string() const noexcept {
  auto q = std::string_view(target_).find('?');
  return q == std::string_view::npos ? std::string_view{} : std::string_view(target_).substr(q + 1);
}

std::string_view Request::header(std::string_view name) const noexcept {
  for (const auto& h : headers_)
    if (iequals(h.first, name)) return h.second;
  return {};
}

bool Request::has_header(std::string_view name) const noexcept {
  for (const auto& h : headers_)
    if (iequals(h.first, name)) return true;
  return false;
}

std::string_view Request::param(std::string_view name) const noexcept {
  const auto* p = find_param(params_, name);
  return p ? std::string_view(p->second) : std::string_view{};
}

std::string_view Request::query(std::string_view name) const noexcept {
  const auto* p = find_param(query_, name);
  return p ? std::string_view(p->second) : std::string_view{};
}

bool Request::has_query(std::string_view name) const noexcept {
  return find_param(query_, name) != nullptr;
}

namespace http::detail {

bool RequestBuilder::set_target(std::string_view target) {
  r_.target_.assign(target);
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return false;
  const boost::urls::url_view& u = *parsed;
  r_.path_ = u.path();  // percent-decoded
  if (u.has_query()) {
    for (auto param : u.params())  // decoded; '+' is a space in query strings
      r_.query_.emplace_back(std::string(param.key), std::string(param.value));
  }
  return true;
}

}  // namespace http::detail
}  // namespace ebb
