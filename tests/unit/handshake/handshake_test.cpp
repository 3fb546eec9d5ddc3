#include "websocket/handshake/handshake.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ebb::websocket::handshake {
namespace {

const std::string kKey = "dGhlIHNhbXBsZSBub25jZQ==";
const std::string kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A valid request with `extra` header lines (each ending in CRLF) appended.
std::string request(const std::string& extra = {}, const std::string& target = "/chat") {
  return "GET " + target +
         " HTTP/1.1\r\n"
         "Host: server.example.com\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Key: " +
         kKey +
         "\r\n"
         "Sec-WebSocket-Version: 13\r\n" +
         extra + "\r\n";
}

/// `request()` with the line starting with `name` removed or replaced.
std::string request_with(const std::string& name, const std::string& line,
                         const std::string& extra = {}) {
  std::string r = request(extra);
  std::size_t at = r.find(name + ":");
  std::size_t end = r.find("\r\n", at) + 2;
  return r.replace(at, end - at, line.empty() ? "" : line + "\r\n");
}

/// Checks the error response's framing and returns its body.
std::string error_body(const ServerResult& r) {
  const std::string& s = r.response;
  EXPECT_EQ(s.rfind("HTTP/1.1 " + std::to_string(r.http_status) + " ", 0), 0u) << s;
  EXPECT_NE(s.find("\r\nContent-Type: text/plain\r\n"), std::string::npos) << s;
  EXPECT_NE(s.find("\r\nConnection: close\r\n"), std::string::npos) << s;
  std::size_t head_end = s.find("\r\n\r\n");
  EXPECT_NE(head_end, std::string::npos);
  std::string body = s.substr(head_end + 4);
  EXPECT_NE(s.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos)
      << s;
  return body;
}

void expect_rejected(const std::string& req, int status, const std::string& body_part,
                     const ServerPolicy& policy = {}) {
  ServerResult r = process_request(req, policy);
  ASSERT_EQ(r.status, Status::rejected) << req;
  EXPECT_EQ(r.http_status, status) << req;
  EXPECT_NE(r.error.find(body_part), std::string::npos) << r.error;
  EXPECT_NE(error_body(r).find(body_part), std::string::npos);
}

TEST(AcceptKey, Rfc6455Sample) { EXPECT_EQ(accept_key(kKey), kAccept); }

TEST(Server, AcceptsTheRfcSampleRequest) {
  std::string req = request("Origin: http://example.com\r\n");
  ServerResult r = process_request(req, {});
  ASSERT_EQ(r.status, Status::accepted) << r.error;
  EXPECT_EQ(r.http_status, 101);
  EXPECT_EQ(r.consumed, req.size());
  EXPECT_EQ(r.target, "/chat");
  EXPECT_EQ(r.origin, "http://example.com");
  EXPECT_EQ(r.subprotocol, "");
  EXPECT_FALSE(r.deflate);
  EXPECT_EQ(r.response,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: " +
                kAccept + "\r\n\r\n");
}

TEST(Server, NeedsMoreUntilTheHeadIsComplete) {
  const std::string req = request();
  for (std::size_t n = 0; n < req.size(); ++n) {
    ServerResult r = process_request(std::string_view(req).substr(0, n), {});
    ASSERT_EQ(r.status, Status::need_more) << n;
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_TRUE(r.response.empty());
  }
  EXPECT_EQ(process_request(req, {}).status, Status::accepted);
}

TEST(Server, PipelinedBytesAreNotConsumed) {
  const std::string req = request();
  const std::string frame = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  ServerResult r = process_request(req + frame, {});
  ASSERT_EQ(r.status, Status::accepted) << r.error;
  EXPECT_EQ(r.consumed, req.size());
  // Even bytes that look like another request head.
  r = process_request(req + req, {});
  EXPECT_EQ(r.consumed, req.size());
}

TEST(Server, ConnectionAndUpgradeAreTokenLists) {
  auto r = process_request(
      request_with("Connection", "Connection: keep-alive, UPGRADE",
                   "Upgrade: h2c\r\n"),  // a second Upgrade header carries websocket too
      {});
  EXPECT_EQ(r.status, Status::accepted) << r.error;
  r = process_request(request_with("Upgrade", "Upgrade: WebSocket"), {});
  EXPECT_EQ(r.status, Status::accepted) << r.error;
  r = process_request(request("Content-Length: 0\r\n"), {});
  EXPECT_EQ(r.status, Status::accepted) << r.error;
}

TEST(Server, Rejections) {
  std::string post = request();
  post.replace(0, 3, "POST");
  expect_rejected(post, 405, "GET");
  EXPECT_NE(process_request(post, {}).response.find("\r\nAllow: GET\r\n"), std::string::npos);

  std::string http10 = request();
  http10.replace(http10.find("HTTP/1.1"), 8, "HTTP/1.0");
  expect_rejected(http10, 400, "HTTP/1.1");

  expect_rejected(request_with("Host", ""), 400, "Host");
  expect_rejected(request("Host: other.example.com\r\n"), 400, "Host");
  expect_rejected(request_with("Upgrade", ""), 400, "Upgrade");
  expect_rejected(request_with("Upgrade", "Upgrade: h2c"), 400, "Upgrade");
  expect_rejected(request_with("Connection", ""), 400, "Connection");
  expect_rejected(request_with("Connection", "Connection: keep-alive"), 400, "Connection");
  expect_rejected(request_with("Connection", "Connection: upgraded"), 400, "Connection");

  for (const char* key : {"", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j",      // 15 bytes
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTE=",  // 17 bytes
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=!",
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",  // non-canonical
                          "Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ=="}) {
    expect_rejected(request_with("Sec-WebSocket-Key", key), 400, "Sec-WebSocket-Key");
  }
  expect_rejected(request("Sec-WebSocket-Key: " + kKey + "\r\n"), 400, "Sec-WebSocket-Key");

  for (const char* version : {"", "Sec-WebSocket-Version: 8", "Sec-WebSocket-Version: 13, 8"}) {
    auto req = request_with("Sec-WebSocket-Version", version);
    expect_rejected(req, 426, "Sec-WebSocket-Version must be 13");
    EXPECT_NE(process_request(req, {}).response.find("\r\nSec-WebSocket-Version: 13\r\n"),
              std::string::npos);
  }

  expect_rejected(request("Content-Length: 5\r\n") + "hello", 400, "body");
  expect_rejected(request("Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400, "body");
  expect_rejected("GARBAGE\r\n\r\n", 400, "malformed");
  expect_rejected("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, "malformed");
  expect_rejected(request({}, "chat"), 400, "target");
}

TEST(Server, PathPolicy) {
  ServerPolicy p;
  p.path = "/ws";
  EXPECT_EQ(process_request(request({}, "/ws"), p).status, Status::accepted);
  auto r = process_request(request({}, "/ws?room=1&token=x"), p);
  EXPECT_EQ(r.status, Status::accepted) << r.error;
  EXPECT_EQ(r.target, "/ws?room=1&token=x");
  expect_rejected(request({}, "/chat"), 404, "/chat", p);
  expect_rejected(request({}, "/ws/"), 404, "/ws/", p);
  expect_rejected(request({}, "/WS"), 404, "/WS", p);
}

TEST(Server, OriginPolicy) {
  ServerPolicy p;
  p.allowed_origins = {"https://chat.example.com", "http://localhost:8080"};
  auto ok = process_request(request("Origin: HTTPS://Chat.Example.com\r\n"), p);
  EXPECT_EQ(ok.status, Status::accepted) << ok.error;
  EXPECT_EQ(process_request(request("Origin: http://localhost:8080\r\n"), p).status,
            Status::accepted);
  // Non-browser clients send no Origin; they are let in (documented choice).
  EXPECT_EQ(process_request(request(), p).status, Status::accepted);
  expect_rejected(request("Origin: https://evil.example.com\r\n"), 403, "evil", p);
  expect_rejected(request("Origin: http://localhost:8081\r\n"), 403, "not allowed", p);
  expect_rejected(request("Origin: https://chat.example.com.evil.com\r\n"), 403, "not allowed", p);
  expect_rejected(request("Origin: null\r\n"), 403, "not allowed", p);
  expect_rejected(request("Origin: https://chat.example.com\r\nOrigin: https://x\r\n"), 403,
                  "Origin", p);
  // An empty list allows any origin.
  EXPECT_EQ(process_request(request("Origin: https://evil.example.com\r\n"), {}).status,
            Status::accepted);
}

TEST(Server, HeadTooLarge) {
  ServerPolicy p;
  p.max_size = 512;
  std::string big = request("X-Filler: " + std::string(600, 'a') + "\r\n");
  expect_rejected(big, 431, "larger", p);
  // Incomplete but already past the limit: no need to wait for the rest.
  expect_rejected(big.substr(0, 513), 431, "larger", p);
  EXPECT_EQ(process_request(big.substr(0, 511), p).status, Status::need_more);
  // Exactly at the limit is fine.
  std::string req = request();
  p.max_size = req.size();
  EXPECT_EQ(process_request(req, p).status, Status::accepted);
  p.max_size = req.size() - 1;
  EXPECT_EQ(process_request(req, p).status, Status::rejected);
}

TEST(Server, SubprotocolSelection) {
  ServerPolicy p;
  p.subprotocols = {"chat.v2", "chat.v1"};
  auto r = process_request(request("Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n"), p);
  ASSERT_EQ(r.status, Status::accepted);
  EXPECT_EQ(r.subprotocol, "chat.v2");  // server preference wins
  EXPECT_NE(r.response.find("\r\nSec-WebSocket-Protocol: chat.v2\r\n"), std::string::npos);

  r = process_request(
      request("Sec-WebSocket-Protocol: other\r\nSec-WebSocket-Protocol: x ,chat.v1\r\n"), p);
  EXPECT_EQ(r.subprotocol, "chat.v1");

  r = process_request(request("Sec-WebSocket-Protocol: other, chat.V2\r\n"), p);
  ASSERT_EQ(r.status, Status::accepted);
  EXPECT_EQ(r.subprotocol, "");
  EXPECT_EQ(r.response.find("Sec-WebSocket-Protocol"), std::string::npos);

  r = process_request(request("Sec-WebSocket-Protocol: chat.v1\r\n"), {});
  EXPECT_EQ(r.subprotocol, "");
}

TEST(Server, PermessageDeflate) {
  ServerPolicy p;
  p.deflate.enabled = true;
  auto r = process_request(
      request("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"
              "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
      p);
  ASSERT_EQ(r.status, Status::accepted) << r.error;
  ASSERT_TRUE(r.deflate);
  EXPECT_NE(r.response.find("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
            std::string::npos);

  r = process_request(request(), p);
  EXPECT_FALSE(r.deflate);
  EXPECT_EQ(r.response.find("Sec-WebSocket-Extensions"), std::string::npos);

  expect_rejected(request("Sec-WebSocket-Extensions: permessage-deflate; =\r\n"), 400,
                  "Sec-WebSocket-Extensions", p);

  // Disabled: the offer is ignored.
  r = process_request(request("Sec-WebSocket-Extensions: permessage-deflate\r\n"), {});
  EXPECT_EQ(r.status, Status::accepted);
  EXPECT_FALSE(r.deflate);
  EXPECT_EQ(r.response.find("Sec-WebSocket-Extensions"), std::string::npos);
}

TEST(ErrorResponse, Framing) {
  std::string s = error_response(503, "draining", "Retry-After: 1\r\n");
  EXPECT_EQ(s,
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 9\r\n"
            "Connection: close\r\n"
            "Retry-After: 1\r\n"
            "\r\n"
            "draining\n");
}

// ---- client side ----

TEST(Client, KeysAreRandomAndValid) {
  std::string a = make_client_key(), b = make_client_key();
  EXPECT_EQ(a.size(), 24u);
  EXPECT_NE(a, b);
  ServerResult r =
      process_request(request_with("Sec-WebSocket-Key", "Sec-WebSocket-Key: " + a), {});
  EXPECT_EQ(r.status, Status::accepted) << r.error;
}

TEST(Client, RoundTripThroughTheServer) {
  const std::string key = make_client_key();
  DeflateOptions client_deflate;
  client_deflate.enabled = true;
  client_deflate.server_max_window_bits = 12;
  const std::vector<std::string> protocols = {"chat.v1", "chat.v2"};
  std::string req =
      build_client_request("localhost:9001", "/ws?x=1", key, protocols, "http://localhost:8080",
                           deflate::client_offer(client_deflate));

  ServerPolicy policy;
  policy.path = "/ws";
  policy.allowed_origins = {"http://localhost:8080"};
  policy.subprotocols = {"chat.v2"};
  policy.deflate.enabled = true;
  policy.deflate.client_max_window_bits = 11;
  ServerResult s = process_request(req, policy);
  ASSERT_EQ(s.status, Status::accepted) << s.error;
  EXPECT_EQ(s.consumed, req.size());
  EXPECT_EQ(s.origin, "http://localhost:8080");

  const std::string frames = "\x81\x02hi";
  ClientResult c = process_response(s.response + frames, key, protocols, &client_deflate);
  ASSERT_EQ(c.status, Status::accepted) << c.error;
  EXPECT_EQ(c.http_status, 101);
  EXPECT_EQ(c.consumed, s.response.size());
  EXPECT_EQ(c.subprotocol, "chat.v2");
  ASSERT_TRUE(c.deflate);
  ASSERT_TRUE(s.deflate);
  EXPECT_EQ(c.deflate->server_max_window_bits, 12);
  EXPECT_EQ(s.deflate->server_max_window_bits, 12);
  EXPECT_EQ(c.deflate->client_max_window_bits, 11);
  EXPECT_EQ(s.deflate->client_max_window_bits, 11);

  for (std::size_t n = 0; n < s.response.size(); ++n)
    ASSERT_EQ(process_response(s.response.substr(0, n), key, protocols, &client_deflate).status,
              Status::need_more);
}

TEST(Client, MinimalRequest) {
  EXPECT_EQ(build_client_request("h", "", kKey, {}, "", ""),
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: " +
                kKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_THROW(build_client_request("h\r\nX: y", "/", kKey, {}, "", ""), std::invalid_argument);
  EXPECT_THROW(build_client_request("h", "/ HTTP/1.0", kKey, {}, "", ""), std::invalid_argument);
  EXPECT_THROW(build_client_request("h", "/", kKey, {"a\nb"}, "", ""), std::invalid_argument);
}

std::string response_101(const std::string& extra, const std::string& accept = kAccept) {
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " +
         accept + "\r\n" + extra + "\r\n";
}

TEST(Client, ResponseRejections) {
  DeflateOptions d;
  d.enabled = true;
  const std::vector<std::string> protos = {"a", "b"};
  auto check = [&](const std::string& resp, const std::string& why, const DeflateOptions* deflate) {
    ClientResult r = process_response(resp, kKey, protos, deflate);
    EXPECT_EQ(r.status, Status::rejected) << resp;
    EXPECT_NE(r.error.find(why), std::string::npos) << r.error;
  };
  ASSERT_EQ(process_response(response_101(""), kKey, protos, &d).status, Status::accepted);

  ClientResult r = process_response(
      "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope", kKey, protos,
      &d);
  EXPECT_EQ(r.status, Status::rejected);
  EXPECT_EQ(r.http_status, 403);
  EXPECT_NE(r.error.find("403 Forbidden"), std::string::npos);

  check(response_101("", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="), "Sec-WebSocket-Accept", &d);
  check("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
            kAccept + "\r\n\r\n",
        "Upgrade", &d);
  check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " +
            kAccept + "\r\n\r\n",
        "Connection", &d);
  check(response_101("Sec-WebSocket-Protocol: c\r\n"), "not offered", &d);
  check(response_101("Sec-WebSocket-Protocol: a, b\r\n"), "more than one", &d);
  check(response_101("Sec-WebSocket-Extensions: permessage-deflate\r\n"), "not offered", nullptr);
  check(response_101("Sec-WebSocket-Extensions: x-other\r\n"), "not offered", &d);
  check(response_101("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n"),
        "client_max_window_bits", &d);
  check("HTTP/1.1 101\r\n" + std::string(20000, 'x'), "larger", &d);
  check("NOT HTTP\r\n\r\n", "malformed", &d);

  r = process_response(response_101("Sec-WebSocket-Protocol: b\r\n"), kKey, protos, nullptr);
  EXPECT_EQ(r.status, Status::accepted);
  EXPECT_EQ(r.subprotocol, "b");
  EXPECT_FALSE(r.deflate);
}

}  // namespace
}  // namespace ebb::websocket::handshake
