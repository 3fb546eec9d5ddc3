#include "http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace ebb::http::detail {

namespace {
// Splits "/a/b/" into {"a", "b", ""}; the leading '/' is not a segment.
template <class F>
void for_each_segment(std::string_view path, F&& f) {
  std::size_t i = 1;
  while (true) {
    std::size_t slash = path.find('/', i);
    if (!f(path.substr(i, slash == std::string_view::npos ? std::string_view::npos : slash - i)))
      return;
    if (slash == std::string_view::npos) return;
    i = slash + 1;
  }
}
}  // namespace

void Router::add(std::string method, std::string_view pattern, Handler h) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("route pattern must start with '/': \"" + std::string(pattern) +
                                "\"");
  Route r{std::move(method), std::string(pattern), {}, std::move(h), 0};
  int literal = 0, params = 0;
  bool bad = false;
  for_each_segment(pattern, [&](std::string_view s) {
    if (!r.segments.empty() && r.segments.back().kind == Segment::rest) bad = true;
    if (s == "*") {
      r.segments.push_back({Segment::rest, "*"});
    } else if (!s.empty() && s.front() == ':') {
      if (s.size() == 1) bad = true;
      r.segments.push_back({Segment::param, std::string(s.substr(1))});
      ++params;
    } else {
      r.segments.push_back({Segment::literal, std::string(s)});
      ++literal;
    }
    return true;
  });
  if (bad)
    throw std::invalid_argument("bad route pattern \"" + r.pattern +
                                "\": empty parameter name or '*' not last");
  for (const auto& other : routes_)
    if (other.method == r.method && other.pattern == r.pattern)
      throw std::invalid_argument("route registered twice: " + r.method + " " + r.pattern);
  const bool has_rest = !r.segments.empty() && r.segments.back().kind == Segment::rest;
  // Fewer wildcards first; among equals, the longer (more specific) pattern.
  r.rank = (has_rest ? 1'000'000 : 0) + params * 1000 - literal;
  auto pos = std::upper_bound(routes_.begin(), routes_.end(), r.rank,
                              [](int rank, const Route& x) { return rank < x.rank; });
  routes_.insert(pos, std::move(r));
}

bool Router::matches(const Route& r, std::string_view path, std::vector<Request::Param>* params) {
  if (path.empty() || path.front() != '/') return false;
  std::size_t k = 0;
  bool ok = true;
  std::size_t offset = 1;  // where the current segment starts in `path`
  for_each_segment(path, [&](std::string_view s) {
    if (k >= r.segments.size()) return ok = false;
    const Segment& seg = r.segments[k];
    if (seg.kind == Segment::rest) {
      if (params) params->emplace_back("*", std::string(path.substr(offset)));
      k = r.segments.size() + 1;  // consumed everything
      return false;
    }
    if (seg.kind == Segment::literal ? s != seg.text : s.empty()) return ok = false;
    if (seg.kind == Segment::param && params) params->emplace_back(seg.text, std::string(s));
    ++k;
    offset += s.size() + 1;
    return true;
  });
  if (!ok) return false;
  if (k == r.segments.size() + 1) return true;  // matched a rest
  // "/files/*" also matches "/files" (empty rest).
  if (k + 1 == r.segments.size() && r.segments[k].kind == Segment::rest) {
    if (params) params->emplace_back("*", "");
    return true;
  }
  return k == r.segments.size();
}

Router::Match Router::match(std::string_view method, std::string_view path,
                            std::vector<Request::Param>& params) const {
  Match m;
  const Route* fallback = nullptr;  // GET route answering a HEAD
  for (const auto& r : routes_) {
    const bool same = r.method == method;
    const bool head_get = method == "HEAD" && r.method == "GET";
    if (!same && !head_get && m.path_known) continue;
    if (!same && !head_get) {
      if (matches(r, path, nullptr)) m.path_known = true;
      continue;
    }
    if (same || !fallback) {
      params.clear();
      if (!matches(r, path, &params)) continue;
      m.path_known = true;
      if (same) {
        m.handler = &r.handler;
        return m;
      }
      fallback = &r;
    }
  }
  if (fallback) {
    params.clear();
    matches(*fallback, path, &params);
    m.handler = &fallback->handler;
    return m;
  }
  params.clear();
  if (!m.path_known) return m;
  // 405: list every method that has a route for this path.
  std::vector<std::string> allowed;
  for (const auto& r : routes_)
    if (matches(r, path, nullptr)) allowed.push_back(r.method);
  if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) allowed.push_back("HEAD");
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  for (const auto& a : allowed) m.allow += (m.allow.empty() ? "" : ", ") + a;
  return m;
}

}  // namespace ebb::http::detail
