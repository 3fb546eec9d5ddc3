#pragma once
// Route table: method + path pattern → handler. Patterns are literal
// segments, ":name" segments (one segment, bound as a parameter) and an
// optional final "*" (the rest of the path, bound as "*"). Literal segments
// win over parameters, which win over "*", whatever the registration order.
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ebb/http/request.hpp"
#include "ebb/http/response.hpp"

namespace ebb::http::detail {

using Handler = std::function<void(Request&, Response&)>;

class Router {
 public:
  /// Throws std::invalid_argument for a pattern that does not start with
  /// '/', an empty ":" name, a "*" that is not the last segment, or the same
  /// method and pattern twice.
  void add(std::string method, std::string_view pattern, Handler h);

  struct Match {
    const Handler* handler = nullptr;  ///< null: no route for this method
    bool path_known = false;           ///< some method has a route for the path
    std::string allow;                 ///< for 405: "GET, HEAD, POST"
  };
  /// Finds the handler for `method` and `path` (decoded); fills `params`.
  /// HEAD falls back to GET.
  Match match(std::string_view method, std::string_view path,
              std::vector<Request::Param>& params) const;
  bool empty() const noexcept { return routes_.empty(); }

 private:
  struct Segment {
    enum Kind { literal, param, rest } kind;
    std::string text;  // literal text or parameter name
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    int rank;  // lower wins: more literal segments first
  };
  static bool matches(const Route& r, std::string_view path, std::vector<Request::Param>* params);
  std::vector<Route> routes_;  // sorted by rank, stable
};

}  // namespace ebb::http::detail
