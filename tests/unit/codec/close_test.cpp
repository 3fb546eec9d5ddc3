#include "websocket/codec/close.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ebb/websocket/close_code.hpp"

namespace ebb::websocket::codec {
namespace {

std::string payload(std::uint16_t code, std::string_view reason = {}) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xFF);
  p += reason;
  return p;
}

TEST(ClosePayload, EmptyMeansNoStatus) {
  ClosePayload out;
  out.code = 1;
  out.reason = "stale";
  ASSERT_EQ(parse_close_payload({}, out), CloseParse::ok);
  EXPECT_EQ(out.code, close_code::no_status);
  EXPECT_TRUE(out.reason.empty());
}

TEST(ClosePayload, OneByteIsBadLength) {
  ClosePayload out;
  EXPECT_EQ(parse_close_payload(std::string_view("\x03", 1), out), CloseParse::bad_length);
}

TEST(ClosePayload, OverMaxControlPayloadIsBadLength) {
  ClosePayload out;
  EXPECT_EQ(parse_close_payload(payload(1000, std::string(123, 'a')), out), CloseParse::ok);
  EXPECT_EQ(parse_close_payload(payload(1000, std::string(124, 'a')), out), CloseParse::bad_length);
}

TEST(ClosePayload, CodeAndReasonPointIntoPayload) {
  const std::string p = payload(1001, "going away");
  ClosePayload out;
  ASSERT_EQ(parse_close_payload(p, out), CloseParse::ok);
  EXPECT_EQ(out.code, 1001);
  EXPECT_EQ(out.reason, "going away");
  EXPECT_EQ(out.reason.data(), p.data() + 2);
}

TEST(ClosePayload, WireCodeRules) {
  // Autobahn 7.7 (valid) and 7.9 (invalid) code lists, plus the range edges.
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                             3000, 3999, 4000, 4999}) {
    ClosePayload out;
    EXPECT_EQ(parse_close_payload(payload(code), out), CloseParse::ok) << code;
    EXPECT_EQ(out.code, code);
  }
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    ClosePayload out;
    EXPECT_EQ(parse_close_payload(payload(code), out), CloseParse::bad_code) << code;
  }
}

TEST(ClosePayload, ReasonMustBeUtf8) {
  ClosePayload out;
  EXPECT_EQ(parse_close_payload(payload(1000, "\xCE\xBA\xE1\xBD\xB9"), out), CloseParse::ok);
  EXPECT_EQ(parse_close_payload(payload(1000, "\xED\xA0\x80"), out), CloseParse::bad_utf8);
  EXPECT_EQ(parse_close_payload(payload(1000, "ok\xE1\xBD"), out), CloseParse::bad_utf8)
      << "a truncated sequence at the end is invalid";
}

}  // namespace
}  // namespace ebb::websocket::codec
