#include "http/router.hpp"

#include <gtest/gtest.h>

namespace {

using ebb::http::detail::Router;

Router::Match match(const Router& r, std::string_view method, std::string_view path,
                    std::vector<ebb::Request::Param>* out = nullptr) {
  std::vector<ebb::Request::Param> params;
  auto m = r.match(method, path, params);
  if (out) *out = params;
  return m;
}

TEST(Router, LiteralBeatsParamBeatsRestWhateverTheOrder) {
  Router r;
  int hit = 0;
  r.add("GET", "/a/*", [&](ebb::Request&, ebb::Response&) { hit = 3; });
  r.add("GET", "/a/:x", [&](ebb::Request&, ebb::Response&) { hit = 2; });
  r.add("GET", "/a/b", [&](ebb::Request&, ebb::Response&) { hit = 1; });
  ebb::Request req;
  ebb::Response res;
  (*match(r, "GET", "/a/b").handler)(req, res);
  EXPECT_EQ(hit, 1);
  std::vector<ebb::Request::Param> p;
  (*match(r, "GET", "/a/c", &p).handler)(req, res);
  EXPECT_EQ(hit, 2);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].first, "x");
  EXPECT_EQ(p[0].second, "c");
  (*match(r, "GET", "/a/c/d", &p).handler)(req, res);
  EXPECT_EQ(hit, 3);
  EXPECT_EQ(p[0].second, "c/d");
}

TEST(Router, EmptyParamSegmentDoesNotMatch) {
  Router r;
  r.add("GET", "/u/:id", [](ebb::Request&, ebb::Response&) {});
  EXPECT_EQ(match(r, "GET", "/u/").handler, nullptr);
  EXPECT_EQ(match(r, "GET", "/u").handler, nullptr);
  EXPECT_NE(match(r, "GET", "/u/1").handler, nullptr);
  EXPECT_EQ(match(r, "GET", "/u/1/x").handler, nullptr);
}

TEST(Router, MethodNotAllowedListsAllowedMethods) {
  Router r;
  r.add("POST", "/x", [](ebb::Request&, ebb::Response&) {});
  r.add("GET", "/x", [](ebb::Request&, ebb::Response&) {});
  auto m = match(r, "PUT", "/x");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET, HEAD, POST");
  auto nf = match(r, "GET", "/y");
  EXPECT_FALSE(nf.path_known);
  EXPECT_NE(match(r, "HEAD", "/x").handler, nullptr);  // HEAD falls back to GET
}

TEST(Router, BadPatternsAreRejected) {
  Router r;
  auto h = [](ebb::Request&, ebb::Response&) {};
  EXPECT_THROW(r.add("GET", "nope", h), std::invalid_argument);
  EXPECT_THROW(r.add("GET", "/a/:", h), std::invalid_argument);
  EXPECT_THROW(r.add("GET", "/*/a", h), std::invalid_argument);
  r.add("GET", "/dup", h);
  EXPECT_THROW(r.add("GET", "/dup", h), std::invalid_argument);
}

}  // namespace
