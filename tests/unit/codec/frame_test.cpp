#include "websocket/codec/frame.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "websocket/codec/close.hpp"
#include "websocket/codec/utf8.hpp"

namespace ebb::websocket::codec {
namespace {

const std::uint8_t test_mask[4] = {0x37, 0xFA, 0x21, 0x3D};

FrameHeader round_trip(Opcode op, bool fin, bool rsv1, std::uint64_t length,
                       const std::uint8_t* mask, std::size_t expected_size) {
  std::uint8_t buf[max_header_size + 1];
  std::memset(buf, 0xEE, sizeof buf);
  const std::size_t n = encode_header(buf, op, fin, rsv1, length, mask);
  EXPECT_EQ(n, expected_size);
  EXPECT_EQ(buf[n], 0xEE) << "encode_header wrote past the header";
  FrameHeader h;
  EXPECT_EQ(decode_header(buf, n, h), HeaderStatus::ok);
  EXPECT_EQ(h.header_size, n);
  // Every shorter prefix is incomplete.
  for (std::size_t k = 0; k < n; ++k) {
    FrameHeader partial;
    EXPECT_EQ(decode_header(buf, k, partial), HeaderStatus::need_more) << "prefix " << k;
  }
  return h;
}

struct LengthCase {
  std::uint64_t length;
  std::size_t header_size;  // unmasked
};

class HeaderRoundTrip : public ::testing::TestWithParam<LengthCase> {};

TEST_P(HeaderRoundTrip, UnmaskedAndMasked) {
  const LengthCase c = GetParam();
  FrameHeader h = round_trip(Opcode::binary, true, false, c.length, nullptr, c.header_size);
  EXPECT_TRUE(h.fin);
  EXPECT_FALSE(h.rsv1);
  EXPECT_FALSE(h.masked);
  EXPECT_EQ(h.opcode, 0x2);
  EXPECT_EQ(h.payload_length, c.length);

  h = round_trip(Opcode::text, false, true, c.length, test_mask, c.header_size + 4);
  EXPECT_FALSE(h.fin);
  EXPECT_TRUE(h.rsv1);
  EXPECT_FALSE(h.rsv2);
  EXPECT_FALSE(h.rsv3);
  EXPECT_TRUE(h.masked);
  EXPECT_EQ(h.opcode, 0x1);
  EXPECT_EQ(h.payload_length, c.length);
  EXPECT_EQ(0, std::memcmp(h.mask, test_mask, 4));
}

INSTANTIATE_TEST_SUITE_P(AllLengthEncodings, HeaderRoundTrip,
                         ::testing::Values(LengthCase{0, 2}, LengthCase{1, 2}, LengthCase{125, 2},
                                           LengthCase{126, 4}, LengthCase{65535, 4},
                                           LengthCase{65536, 10}, LengthCase{(1ull << 32) + 7, 10},
                                           LengthCase{(1ull << 63) - 1, 10}));

TEST(FrameHeader, DecodesKnownBytes) {
  // RFC 6455 §5.7: a masked "Hello".
  const std::uint8_t bytes[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  FrameHeader h;
  ASSERT_EQ(decode_header(bytes, sizeof bytes, h), HeaderStatus::ok);
  EXPECT_TRUE(h.fin);
  EXPECT_EQ(h.opcode, 0x1);
  EXPECT_TRUE(h.masked);
  EXPECT_EQ(h.payload_length, 5u);
  EXPECT_EQ(h.header_size, 6);
  std::uint8_t payload[5];
  std::memcpy(payload, bytes + 6, 5);
  apply_mask(payload, 5, h.mask);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(payload), 5), "Hello");
}

TEST(FrameHeader, ReservedBitsAndOpcodesAreReportedNotJudged) {
  const std::uint8_t bytes[] = {0x7B, 0x00};  // FIN=0, RSV1-3 set, opcode 0xB
  FrameHeader h;
  ASSERT_EQ(decode_header(bytes, 2, h), HeaderStatus::ok);
  EXPECT_FALSE(h.fin);
  EXPECT_TRUE(h.rsv1);
  EXPECT_TRUE(h.rsv2);
  EXPECT_TRUE(h.rsv3);
  EXPECT_EQ(h.opcode, 0xB);
}

TEST(FrameHeader, SixtyFourBitLengthWithMsbIsRejected) {
  std::uint8_t bytes[10] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
  FrameHeader h;
  EXPECT_EQ(decode_header(bytes, 10, h), HeaderStatus::bad_length);
  bytes[2] = 0x7F;
  EXPECT_EQ(decode_header(bytes, 10, h), HeaderStatus::ok);
}

TEST(FrameHeader, EmptyInputNeedsMore) {
  FrameHeader h;
  EXPECT_EQ(decode_header(nullptr, 0, h), HeaderStatus::need_more);
}

void naive_mask(std::uint8_t* data, std::size_t size, const std::uint8_t mask[4],
                std::size_t offset) {
  for (std::size_t i = 0; i < size; ++i) data[i] ^= mask[(offset + i) % 4];
}

TEST(ApplyMask, MatchesNaiveAtEveryOffsetSizeAndAlignment) {
  std::mt19937 rng(12345);
  std::vector<std::uint8_t> base(100 + 16);
  for (int trial = 0; trial < 4; ++trial) {
    std::uint8_t mask[4];
    for (auto& m : mask) m = static_cast<std::uint8_t>(rng());
    for (auto& b : base) b = static_cast<std::uint8_t>(rng());
    for (std::size_t offset = 0; offset < 16; ++offset) {
      for (std::size_t align = 0; align < 8; ++align) {
        for (std::size_t size = 0; size <= 100; ++size) {
          std::vector<std::uint8_t> fast(base), slow(base);
          apply_mask(fast.data() + align, size, mask, offset);
          naive_mask(slow.data() + align, size, mask, offset);
          ASSERT_EQ(fast, slow) << "offset " << offset << " align " << align << " size " << size;
        }
      }
    }
  }
}

TEST(ApplyMask, PieceByPieceEqualsWhole) {
  std::mt19937 rng(7);
  std::vector<std::uint8_t> data(1000);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  std::vector<std::uint8_t> whole(data), pieces(data);
  apply_mask(whole.data(), whole.size(), test_mask);
  std::size_t pos = 0;
  while (pos < pieces.size()) {
    const std::size_t n = std::min<std::size_t>(rng() % 37, pieces.size() - pos);
    apply_mask(pieces.data() + pos, n, test_mask, pos);
    pos += n;
  }
  EXPECT_EQ(whole, pieces);
}

TEST(ApplyMask, LargeSizesMatchNaiveAtEveryOffset) {
  // Sizes past the inline path (64 bytes and up): the unrolled loop plus
  // every tail length.
  std::mt19937 rng(777);
  std::vector<std::uint8_t> base(400 + 8);
  for (auto& b : base) b = static_cast<std::uint8_t>(rng());
  for (std::size_t offset = 0; offset < 4; ++offset) {
    for (std::size_t align = 0; align < 8; align += 3) {
      for (std::size_t size = 60; size <= 400; ++size) {
        std::vector<std::uint8_t> fast(base), slow(base);
        apply_mask(fast.data() + align, size, test_mask, offset);
        naive_mask(slow.data() + align, size, test_mask, offset);
        ASSERT_EQ(fast, slow) << "offset " << offset << " align " << align << " size " << size;
      }
    }
  }
}

TEST(AppendFrame, UnmaskedAndMasked) {
  std::string out = "prefix";
  append_frame(out, Opcode::text, "Hello");
  EXPECT_EQ(out, std::string("prefix\x81\x05Hello", 13));

  const std::string payload = "Hello";
  std::string masked;
  append_frame(masked, Opcode::text, payload, true, false, test_mask);
  const std::uint8_t expected[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
  ASSERT_EQ(masked.size(), sizeof expected);
  EXPECT_EQ(0, std::memcmp(masked.data(), expected, sizeof expected));
  EXPECT_EQ(payload, "Hello");
}

TEST(AppendFrame, LargePayloadUsesExtendedLength) {
  const std::string payload(70000, 'x');
  std::string out;
  append_frame(out, Opcode::binary, payload, false, true);
  FrameHeader h;
  ASSERT_EQ(decode_header(reinterpret_cast<const std::uint8_t*>(out.data()), out.size(), h),
            HeaderStatus::ok);
  EXPECT_EQ(h.header_size, 10);
  EXPECT_FALSE(h.fin);
  EXPECT_TRUE(h.rsv1);
  EXPECT_EQ(h.payload_length, 70000u);
  EXPECT_EQ(out.size(), 70010u);
}

TEST(AppendFrame, EverySizeRoundTripsAfterExistingContent) {
  // Small unmasked frames take a single-append path, the rest the general
  // one; both must write the same frame after what `out` already holds.
  std::mt19937 rng(31);
  for (std::size_t size = 0; size <= 300; ++size) {
    std::string payload(size, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    for (const std::uint8_t* mask : {static_cast<const std::uint8_t*>(nullptr), test_mask}) {
      std::string out = "existing";
      append_frame(out, Opcode::binary, payload, size % 2 == 0, size % 3 == 0, mask);
      ASSERT_EQ(out.substr(0, 8), "existing");
      FrameHeader h;
      ASSERT_EQ(
          decode_header(reinterpret_cast<const std::uint8_t*>(out.data()) + 8, out.size() - 8, h),
          HeaderStatus::ok)
          << size;
      EXPECT_EQ(h.opcode, 0x2);
      EXPECT_EQ(h.fin, size % 2 == 0);
      EXPECT_EQ(h.rsv1, size % 3 == 0);
      EXPECT_EQ(h.masked, mask != nullptr);
      EXPECT_EQ(h.header_size, (size < 126 ? 2 : 4) + (mask != nullptr ? 4 : 0));
      ASSERT_EQ(h.payload_length, size);
      ASSERT_EQ(out.size(), 8 + h.header_size + size);
      std::string body = out.substr(8 + h.header_size);
      if (mask != nullptr)
        apply_mask(reinterpret_cast<std::uint8_t*>(body.data()), body.size(), h.mask);
      ASSERT_EQ(body, payload) << size;
    }
  }
}

std::string_view close_payload_of(const std::string& frame, FrameHeader& h) {
  EXPECT_EQ(decode_header(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size(), h),
            HeaderStatus::ok);
  EXPECT_EQ(h.opcode, 0x8);
  EXPECT_EQ(frame.size(), h.header_size + h.payload_length);
  return std::string_view(frame).substr(h.header_size);
}

TEST(AppendCloseFrame, CodeAndReason) {
  std::string out;
  append_close_frame(out, 1001, "bye");
  EXPECT_EQ(out, std::string("\x88\x05\x03\xE9"
                             "bye",
                             7));
}

TEST(AppendCloseFrame, NoStatusIsEmpty) {
  std::string out;
  append_close_frame(out, 1005, "ignored");
  EXPECT_EQ(out, std::string("\x88\x00", 2));
}

TEST(AppendCloseFrame, LongReasonCutOnUtf8Boundary) {
  // 122 ASCII bytes then a 3-byte character: 123 bytes would split it.
  std::string reason(122, 'a');
  reason += "\xE2\x82\xAC";  // U+20AC
  reason += "tail";
  std::string out;
  append_close_frame(out, 1000, reason);
  FrameHeader h;
  const std::string_view payload = close_payload_of(out, h);
  EXPECT_EQ(payload.size(), 2u + 122u);
  ClosePayload parsed;
  ASSERT_EQ(parse_close_payload(payload, parsed), CloseParse::ok);
  EXPECT_EQ(parsed.code, 1000);
  EXPECT_EQ(parsed.reason, std::string(122, 'a'));

  // Exactly 123 ASCII bytes survive; the payload is then the 125 maximum.
  out.clear();
  append_close_frame(out, 4000, std::string(300, 'b'));
  EXPECT_EQ(close_payload_of(out, h).size(), 125u);
}

TEST(AppendCloseFrame, MaskedRoundTrip) {
  std::string out;
  append_close_frame(out, 3000, "\xC3\xA9t\xC3\xA9", test_mask);
  FrameHeader h;
  ASSERT_EQ(decode_header(reinterpret_cast<const std::uint8_t*>(out.data()), out.size(), h),
            HeaderStatus::ok);
  ASSERT_TRUE(h.masked);
  std::string payload = out.substr(h.header_size);
  apply_mask(reinterpret_cast<std::uint8_t*>(payload.data()), payload.size(), h.mask);
  ClosePayload parsed;
  ASSERT_EQ(parse_close_payload(payload, parsed), CloseParse::ok);
  EXPECT_EQ(parsed.code, 3000);
  EXPECT_EQ(parsed.reason, "\xC3\xA9t\xC3\xA9");
}

}  // namespace
}  // namespace ebb::websocket::codec
