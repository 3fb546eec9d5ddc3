#include "websocket/codec/parser.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

namespace ebb::websocket::codec {
namespace {

const std::uint8_t client_mask[4] = {0xA1, 0x5B, 0x03, 0xEC};

struct Event {
  enum Kind { message, ping, pong, close, error } kind;
  Opcode opcode = Opcode::text;
  std::string data;
  bool compressed = false;
  std::uint16_t code = 0;

  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "Event{" << e.kind << ", op " << static_cast<int>(e.opcode) << ", '" << e.data
            << "', compressed " << e.compressed << ", code " << e.code << "}";
}

struct Recorder {
  std::vector<Event> events;
  std::vector<std::string_view> views;  // raw payload views of on_message
  std::function<void()> after_event;    // e.g. calls parser.stop()

  void on_message(Opcode op, std::string_view payload, bool compressed) {
    views.push_back(payload);
    push({Event::message, op, std::string(payload), compressed, 0});
  }
  void on_ping(std::string_view p) { push({Event::ping, Opcode::ping, std::string(p)}); }
  void on_pong(std::string_view p) { push({Event::pong, Opcode::pong, std::string(p)}); }
  void on_close(std::uint16_t code, std::string_view reason) {
    push({Event::close, Opcode::close, std::string(reason), false, code});
  }
  void on_protocol_error(std::uint16_t code, std::string_view reason) {
    EXPECT_FALSE(reason.empty());
    push({Event::error, Opcode::close, {}, false, code});
  }
  void push(Event e) {
    events.push_back(std::move(e));
    if (after_event) after_event();
  }
};

Event msg(std::string data, Opcode op = Opcode::text, bool compressed = false) {
  return {Event::message, op, std::move(data), compressed, 0};
}
Event error(std::uint16_t code) { return {Event::error, Opcode::close, {}, false, code}; }

// A frame as a client sends it (masked), unless told otherwise.
std::string frame(Opcode op, std::string_view payload, bool fin = true, bool rsv1 = false,
                  bool masked = true) {
  std::string out;
  append_frame(out, op, payload, fin, rsv1, masked ? client_mask : nullptr);
  return out;
}

// A frame with an arbitrary first byte (reserved opcodes and bits).
std::string raw_frame(std::uint8_t byte0, std::string_view payload, bool masked = true) {
  std::string out = frame(Opcode::binary, payload, true, false, masked);
  out[0] = static_cast<char>(byte0);
  return out;
}

std::uint8_t* bytes(std::string& s) { return reinterpret_cast<std::uint8_t*>(s.data()); }

struct Harness {
  explicit Harness(Role role = Role::server, ParserLimits limits = {})
      : parser(role, limits, rec) {}

  /// Feed `stream` in chunks as a socket reader would: keep the unconsumed
  /// tail and present it again in front of the next chunk.
  void feed_in_chunks(std::string stream, const std::vector<std::size_t>& chunk_sizes) {
    std::string buffer;
    std::size_t pos = 0;
    std::size_t next = 0;
    while (pos < stream.size() && !parser.finished()) {
      std::size_t n =
          chunk_sizes.empty() ? stream.size() : chunk_sizes[next++ % chunk_sizes.size()];
      n = std::min(n, stream.size() - pos);
      buffer.append(stream, pos, n);
      pos += n;
      const std::size_t used = parser.feed(bytes(buffer), buffer.size());
      ASSERT_LE(used, buffer.size());
      buffer.erase(0, used);
      if (!parser.finished()) {
        ASSERT_LT(buffer.size(), max_header_size);
      }
    }
  }
  std::size_t feed(std::string& s) { return parser.feed(bytes(s), s.size()); }

  Recorder rec;
  Parser<Recorder> parser;
};

TEST(Parser, MaskedTextFrameIsDeliveredInPlace) {
  Harness h;
  std::string in = frame(Opcode::text, "Hello");
  EXPECT_EQ(h.feed(in), in.size());
  ASSERT_EQ(h.rec.events, std::vector<Event>{msg("Hello")});
  // Zero-copy: the view points into the input buffer, right after the header.
  ASSERT_EQ(h.rec.views.size(), 1u);
  EXPECT_EQ(h.rec.views[0].data(), in.data() + 6);
  EXPECT_EQ(h.parser.buffered_capacity(), std::string().capacity())
      << "no assembly on the fast path";
  EXPECT_FALSE(h.parser.mid_message());
}

TEST(Parser, SeveralFramesInOneBufferAreAllInPlace) {
  Harness h;
  std::string in = frame(Opcode::binary, std::string("\0\1\2", 3)) + frame(Opcode::ping, "p") +
                   frame(Opcode::text, "") + frame(Opcode::pong, "q");
  EXPECT_EQ(h.feed(in), in.size());
  const std::vector<Event> expected = {msg(std::string("\0\1\2", 3), Opcode::binary),
                                       {Event::ping, Opcode::ping, "p"},
                                       msg(""),
                                       {Event::pong, Opcode::pong, "q"}};
  EXPECT_EQ(h.rec.events, expected);
  EXPECT_GE(h.rec.views[0].data(), in.data());
  EXPECT_LT(h.rec.views[0].data(), in.data() + in.size());
  EXPECT_EQ(h.parser.buffered_capacity(), std::string().capacity());
}

TEST(Parser, IncompleteHeaderIsLeftUnconsumed) {
  Harness h;
  std::string in = frame(Opcode::text, std::string(300, 'a'));  // 2 + 2 + 4 header bytes
  for (std::size_t n = 0; n < 8; ++n) {
    EXPECT_EQ(h.parser.feed(bytes(in), n), 0u) << n;
  }
  EXPECT_TRUE(h.rec.events.empty());
  // Header complete, payload partial: header and available payload are consumed.
  EXPECT_EQ(h.parser.feed(bytes(in), 20), 20u);
  EXPECT_TRUE(h.parser.mid_message());
}

TEST(Parser, ClientRoleAcceptsUnmaskedFrames) {
  Harness h(Role::client);
  std::string in = frame(Opcode::text, "from server", true, false, false) +
                   frame(Opcode::close, std::string("\x03\xE8", 2), true, false, false);
  EXPECT_EQ(h.feed(in), in.size());
  const std::vector<Event> expected = {msg("from server"),
                                       {Event::close, Opcode::close, "", false, 1000}};
  EXPECT_EQ(h.rec.events, expected);
  EXPECT_TRUE(h.parser.finished());
}

TEST(Parser, SixteenBitLengthFrameIsDeliveredInPlace) {
  const std::string payload(300, 'm');
  for (const Role role : {Role::server, Role::client}) {
    Harness h(role);
    const bool masked = role == Role::server;
    std::string in = frame(Opcode::binary, payload, true, false, masked);
    EXPECT_EQ(h.feed(in), in.size());
    ASSERT_EQ(h.rec.events, std::vector<Event>{msg(payload, Opcode::binary)});
    EXPECT_EQ(h.rec.views[0].data(), in.data() + (masked ? 8 : 4));
    EXPECT_EQ(h.parser.buffered_capacity(), std::string().capacity());
  }
}

TEST(Parser, EveryPayloadSizeIsUnmaskedInPlace) {
  std::mt19937 rng(5);
  std::vector<Event> expected;
  std::string in;
  for (std::size_t size = 0; size <= 300; ++size) {
    std::string payload(size, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    in += frame(Opcode::binary, payload);
    expected.push_back(msg(payload, Opcode::binary));
  }
  Harness h;
  EXPECT_EQ(h.feed(in), in.size());
  EXPECT_EQ(h.rec.events, expected);
}

TEST(Parser, NonMinimalLengthEncodingsAreAccepted) {
  // A 5-byte payload announced with a 16-bit and with a 64-bit length.
  const std::string mask(reinterpret_cast<const char*>(client_mask), 4);
  std::string masked = "hello";
  for (std::size_t i = 0; i < masked.size(); ++i) masked[i] ^= mask[i % 4];
  std::string in = std::string("\x81\xFE\x00\x05", 4) + mask + masked +
                   std::string("\x82\xFF\0\0\0\0\0\0\0\x05", 10) + mask + masked;
  Harness h;
  EXPECT_EQ(h.feed(in), in.size());
  const std::vector<Event> expected = {msg("hello"), msg("hello", Opcode::binary)};
  EXPECT_EQ(h.rec.events, expected);
}

// A frame with first bytes b0 and b1 and whatever extended length, mask and
// payload they announce (lengths 126 and 127 stand for 130 and 3 bytes).
// The payload is mostly ASCII, sometimes with a high byte, masked if b1 says so.
std::string frame_from_first_bytes(std::uint8_t b0, std::uint8_t b1, std::mt19937& rng) {
  std::string out{static_cast<char>(b0), static_cast<char>(b1)};
  std::size_t length = b1 & 0x7F;
  if (length == 126) {
    length = 130;
    out += std::string("\x00\x82", 2);
  } else if (length == 127) {
    length = 3;
    out += std::string("\0\0\0\0\0\0\0\x03", 8);
  }
  std::string payload(length, '\0');
  for (auto& c : payload) c = static_cast<char>('a' + rng() % 26);
  if (length > 0 && rng() % 3 == 0) payload[rng() % length] = static_cast<char>(0x80 + rng() % 128);
  if (b1 & 0x80) {
    out.append(reinterpret_cast<const char*>(client_mask), 4);
    for (std::size_t i = 0; i < length; ++i) payload[i] ^= static_cast<char>(client_mask[i % 4]);
  }
  return out + payload;
}

TEST(Parser, WholeFramesMatchByteAtATimeForEveryFirstByte) {
  // Whole frames in one buffer take the fast path when they qualify;
  // presented a byte at a time they never do. Events must not differ, for
  // every first byte, both MASK bits, each length form, role, RSV1 setting
  // and a size limit that some of the lengths exceed.
  std::mt19937 rng(4242);
  for (const Role role : {Role::server, Role::client}) {
    for (const int config : {0, 1, 2}) {
      ParserLimits limits;
      limits.allow_rsv1 = config == 1;
      if (config == 2) limits.max_message_size = 5;
      const std::string next = frame(Opcode::text, "next", true, false, role == Role::server);
      for (int b0 = 0; b0 < 256; ++b0) {
        for (const std::uint8_t len : {0, 1, 5, 16, 125, 126, 127}) {
          for (const std::uint8_t mask_bit : {0x00, 0x80}) {
            const auto b1 = static_cast<std::uint8_t>(mask_bit | len);
            SCOPED_TRACE(testing::Message() << "role " << static_cast<int>(role) << " config "
                                            << config << " b0 " << b0 << " b1 " << int{b1});
            const std::string in =
                frame_from_first_bytes(static_cast<std::uint8_t>(b0), b1, rng) + next;
            Harness whole(role, limits);
            whole.feed_in_chunks(in, {});
            Harness bytewise(role, limits);
            bytewise.feed_in_chunks(in, {1});
            ASSERT_EQ(whole.rec.events, bytewise.rec.events);
            ASSERT_EQ(whole.parser.finished(), bytewise.parser.finished());
            ASSERT_FALSE(whole.rec.events.empty());
          }
        }
      }
    }
  }
}

// Feeds `in` whole and expects exactly one protocol error with `code`.
void expect_error(std::string in, std::uint16_t code, Role role = Role::server,
                  ParserLimits limits = {}, std::vector<Event> before = {}) {
  Harness h(role, limits);
  h.feed(in);
  before.push_back(error(code));
  EXPECT_EQ(h.rec.events, before);
  EXPECT_TRUE(h.parser.finished());
  // Nothing more is consumed.
  std::string more = frame(Opcode::text, "x");
  EXPECT_EQ(h.feed(more), 0u);
  EXPECT_EQ(h.rec.events.size(), before.size());
}

TEST(ParserErrors, UnmaskedFrameToServer) {
  expect_error(frame(Opcode::text, "hi", true, false, false), 1002);
}

TEST(ParserErrors, MaskedFrameToClient) {
  expect_error(frame(Opcode::text, "hi"), 1002, Role::client);
}

TEST(ParserErrors, Rsv1WithoutDeflate) {
  expect_error(frame(Opcode::text, "hi", true, true), 1002);
}

TEST(ParserErrors, Rsv2AndRsv3) {
  expect_error(raw_frame(0x80 | 0x20 | 0x1, "hi"), 1002);
  expect_error(raw_frame(0x80 | 0x10 | 0x1, "hi"), 1002);
  ParserLimits deflate;
  deflate.allow_rsv1 = true;
  expect_error(raw_frame(0x80 | 0x40 | 0x20 | 0x2, "hi"), 1002, Role::server, deflate);
}

TEST(ParserErrors, ReservedOpcodes) {
  for (std::uint8_t op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
    SCOPED_TRACE(static_cast<int>(op));
    expect_error(raw_frame(0x80 | op, ""), 1002);
    expect_error(raw_frame(0x80 | op, "payload"), 1002);
  }
}

TEST(ParserErrors, FragmentedControlFrame) {
  expect_error(frame(Opcode::ping, "p", false), 1002);
  expect_error(frame(Opcode::close, "", false), 1002);
}

TEST(ParserErrors, ControlFrameOver125Bytes) {
  expect_error(frame(Opcode::ping, std::string(126, 'p')), 1002);
  expect_error(frame(Opcode::pong, std::string(126, 'p')), 1002);
  // The error is raised from the header alone.
  Harness h;
  std::string in = frame(Opcode::ping, std::string(126, 'p'));
  h.parser.feed(bytes(in), 8);
  EXPECT_EQ(h.rec.events, std::vector<Event>{error(1002)});
}

TEST(ParserErrors, Rsv1OnControlOrContinuationEvenWithDeflate) {
  ParserLimits deflate;
  deflate.allow_rsv1 = true;
  expect_error(frame(Opcode::ping, "p", true, true), 1002, Role::server, deflate);
  expect_error(frame(Opcode::text, "a", false, true) + frame(Opcode::continuation, "b", true, true),
               1002, Role::server, deflate);
}

TEST(ParserErrors, ContinuationWithoutMessage) {
  expect_error(frame(Opcode::continuation, "x"), 1002);
  // Also after a message has completed.
  expect_error(frame(Opcode::text, "a") + frame(Opcode::continuation, "b"), 1002, Role::server, {},
               {msg("a")});
}

TEST(ParserErrors, NewDataFrameInsideFragmentedMessage) {
  expect_error(frame(Opcode::text, "a", false) + frame(Opcode::text, "b"), 1002);
  expect_error(frame(Opcode::binary, "a", false) + frame(Opcode::binary, "b", false), 1002);
}

TEST(ParserErrors, SixtyFourBitLengthWithMsb) {
  std::string in = "\x82\xFF";
  in += std::string("\x80\0\0\0\0\0\0\0", 8);
  in += std::string(reinterpret_cast<const char*>(client_mask), 4);
  expect_error(in, 1002);
}

TEST(ParserErrors, MessageTooBigFromTheHeaderAlone) {
  ParserLimits limits;
  limits.max_message_size = 100;
  Harness h(Role::server, limits);
  std::string in = frame(Opcode::binary, std::string(101, 'x'));
  // Only the header is presented: the limit is checked before any payload.
  EXPECT_EQ(h.parser.feed(bytes(in), 8), 0u);
  EXPECT_EQ(h.rec.events, std::vector<Event>{error(1009)});

  // Exactly the limit is fine.
  Harness ok(Role::server, limits);
  std::string at_limit = frame(Opcode::binary, std::string(100, 'x'));
  EXPECT_EQ(ok.feed(at_limit), at_limit.size());
  ASSERT_EQ(ok.rec.events.size(), 1u);
  EXPECT_EQ(ok.rec.events[0].data.size(), 100u);
}

TEST(ParserErrors, MessageTooBigAcrossFragments) {
  ParserLimits limits;
  limits.max_message_size = 100;
  Harness h(Role::server, limits);
  std::string in = frame(Opcode::text, std::string(60, 'a'), false) +
                   frame(Opcode::ping, "between") +
                   frame(Opcode::continuation, std::string(40, 'b'), false);
  EXPECT_EQ(h.feed(in), in.size());
  std::string third = frame(Opcode::continuation, "c");
  // Only the header of the fragment that crosses the limit.
  h.parser.feed(bytes(third), 6);
  const std::vector<Event> expected = {{Event::ping, Opcode::ping, "between"}, error(1009)};
  EXPECT_EQ(h.rec.events, expected);
}

TEST(ParserErrors, HugeAnnouncedLengthDoesNotOverflowTheSizeCheck) {
  ParserLimits limits;
  limits.max_message_size = ~std::uint64_t{0};
  std::string in = frame(Opcode::binary, "x", false);
  std::string huge = "\x80\xFF";
  huge += std::string("\x7F\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 8);
  huge += std::string(reinterpret_cast<const char*>(client_mask), 4);
  Harness h(Role::server, limits);
  std::string both = in + huge;
  EXPECT_EQ(h.feed(both), both.size());  // accepted: 1 + (2^63 - 1) fits in 64 bits
  EXPECT_TRUE(h.rec.events.empty());

  limits.max_message_size = (1ull << 63) - 1;
  expect_error(in + huge, 1009, Role::server, limits);
}

TEST(ParserErrors, InvalidUtf8InSingleFrame) {
  expect_error(frame(Opcode::text, "ok\xED\xA0\x80"), 1007);
  expect_error(frame(Opcode::text, "truncated\xE2\x82"), 1007);
}

TEST(ParserErrors, InvalidUtf8FailsAtTheFirstBadFragment) {
  Harness h;
  std::string first = frame(Opcode::text, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", false);
  std::string second = frame(Opcode::continuation, "\xF4\x90\x80\x80", false);
  std::string in = first + second;
  EXPECT_EQ(h.feed(in), in.size());
  // Rejected without waiting for the rest of the message.
  EXPECT_EQ(h.rec.events, std::vector<Event>{error(1007)});
}

TEST(ParserErrors, InvalidUtf8FailsInsideAPartialFrame) {
  Harness h;
  std::string in = frame(Opcode::text, "abc\xFF" + std::string(1000, 'z'));
  h.parser.feed(bytes(in), 8 + 4);  // header + "abc\xFF"
  EXPECT_EQ(h.rec.events, std::vector<Event>{error(1007)});
}

TEST(ParserErrors, TextEndingInsideASequence) {
  expect_error(frame(Opcode::text, "a\xE2", false) + frame(Opcode::continuation, "\x82"), 1007);
}

TEST(ParserErrors, ClosePayloads) {
  expect_error(frame(Opcode::close, "\x03"), 1002);
  expect_error(frame(Opcode::close, std::string("\x03\xED", 2)), 1002);  // 1005 not on the wire
  expect_error(frame(Opcode::close, std::string("\x03\xE7", 2)), 1002);  // 999
  expect_error(frame(Opcode::close, std::string("\x03\xE8\xFF", 3)), 1007);
}

TEST(Parser, CloseIsDeliveredAndEndsParsing) {
  Harness h;
  std::string in = frame(Opcode::close, std::string("\x0F\xA0"
                                                    "bye",
                                                    5)) +
                   frame(Opcode::ping, "");
  const std::size_t close_size = in.size() - 6;
  EXPECT_EQ(h.feed(in), close_size);
  EXPECT_EQ(h.rec.events, (std::vector<Event>{{Event::close, Opcode::close, "bye", false, 4000}}));
  EXPECT_TRUE(h.parser.finished());
}

TEST(Parser, EmptyCloseMeansNoStatus) {
  Harness h;
  std::string in = frame(Opcode::close, "");
  EXPECT_EQ(h.feed(in), in.size());
  EXPECT_EQ(h.rec.events, (std::vector<Event>{{Event::close, Opcode::close, "", false, 1005}}));
}

TEST(Parser, CloseInsideFragmentedMessage) {
  Harness h;
  std::string in = frame(Opcode::text, "part", false) + frame(Opcode::close, "");
  EXPECT_EQ(h.feed(in), in.size());
  EXPECT_EQ(h.rec.events, (std::vector<Event>{{Event::close, Opcode::close, "", false, 1005}}));
}

TEST(Parser, FragmentedMessageWithInterleavedPing) {
  Harness h;
  std::string in = frame(Opcode::text, "Hel", false) + frame(Opcode::ping, "ping!") +
                   frame(Opcode::continuation, "", false) + frame(Opcode::pong, "") +
                   frame(Opcode::continuation, "lo \xE2\x82", false) +
                   frame(Opcode::continuation, "\xAC");
  EXPECT_EQ(h.feed(in), in.size());
  const std::vector<Event> expected = {{Event::ping, Opcode::ping, "ping!"},
                                       {Event::pong, Opcode::pong, ""},
                                       msg("Hello \xE2\x82\xAC")};
  EXPECT_EQ(h.rec.events, expected);
  EXPECT_FALSE(h.parser.mid_message());
}

TEST(Parser, CompressedMessagesSkipUtf8AndReportCompression) {
  ParserLimits deflate;
  deflate.allow_rsv1 = true;
  Harness h(Role::server, deflate);
  // Deflate output is not UTF-8; the caller validates after inflating.
  std::string in = frame(Opcode::text, "\xFF\xFE", true, true) +
                   frame(Opcode::text, "\xFF", false, true) + frame(Opcode::continuation, "\xFE") +
                   frame(Opcode::binary, "raw", true, false);
  EXPECT_EQ(h.feed(in), in.size());
  const std::vector<Event> expected = {msg("\xFF\xFE", Opcode::text, true),
                                       msg("\xFF\xFE", Opcode::text, true),
                                       msg("raw", Opcode::binary, false)};
  EXPECT_EQ(h.rec.events, expected);
}

std::string mixed_stream() {
  std::string s;
  s += frame(Opcode::text, "Hello, \xF0\x9F\x98\x80");
  s += frame(Opcode::binary, std::string(70000, '\x5A'));
  s += frame(Opcode::text, "frag \xCE", false);
  s += frame(Opcode::ping, "keepalive");
  s += frame(Opcode::continuation, std::string("\xBA", 1) + std::string(300, 'k'), false);
  s += frame(Opcode::continuation, "end");
  s += frame(Opcode::binary, "");
  s += frame(Opcode::pong, std::string(125, 'P'));
  s += frame(Opcode::binary, std::string(200, '\x01'), false);
  s += frame(Opcode::continuation, std::string(65536, '\x02'));
  s += frame(Opcode::close, std::string("\x03\xE9"
                                        "done",
                                        6));
  return s;
}

TEST(Parser, ByteAtATimeEqualsOneShot) {
  Harness whole;
  whole.feed_in_chunks(mixed_stream(), {});
  ASSERT_EQ(whole.rec.events.size(), 8u);
  EXPECT_EQ(whole.rec.events.back().code, 1001);
  EXPECT_EQ(whole.rec.events[3], msg("frag \xCE\xBA" + std::string(300, 'k') + "end"));

  Harness bytewise;
  bytewise.feed_in_chunks(mixed_stream(), {1});
  EXPECT_EQ(bytewise.rec.events, whole.rec.events);
  EXPECT_TRUE(bytewise.parser.finished());
}

TEST(Parser, RandomChunkingEqualsOneShot) {
  Harness whole;
  whole.feed_in_chunks(mixed_stream(), {});
  std::mt19937 rng(99);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<std::size_t> sizes(50);
    for (auto& s : sizes) s = 1 + rng() % (trial < 10 ? 20 : 5000);
    Harness h;
    h.feed_in_chunks(mixed_stream(), sizes);
    ASSERT_EQ(h.rec.events, whole.rec.events) << "trial " << trial;
  }
}

TEST(Parser, ControlFrameSplitAcrossReadsIsAssembled) {
  Harness h;
  h.feed_in_chunks(frame(Opcode::ping, "split ping payload") + frame(Opcode::text, "after"),
                   {9, 5, 100});
  const std::vector<Event> expected = {{Event::ping, Opcode::ping, "split ping payload"},
                                       msg("after")};
  EXPECT_EQ(h.rec.events, expected);
}

TEST(Parser, StopReturnsRightAfterTheEvent) {
  Harness h;
  h.rec.after_event = [&] { h.parser.stop(); };
  std::string a = frame(Opcode::text, "first");
  std::string in = a + frame(Opcode::ping, "x") + frame(Opcode::text, "third");
  EXPECT_EQ(h.feed(in), a.size());
  EXPECT_EQ(h.rec.events, std::vector<Event>{msg("first")});
  EXPECT_FALSE(h.parser.finished());

  // Stopped: nothing is consumed until resume().
  std::string rest = in.substr(a.size());
  EXPECT_EQ(h.feed(rest), 0u);
  h.parser.resume();
  const std::size_t used = h.feed(rest);
  EXPECT_EQ(used, 7u);  // the ping (2 + 4 + 1), then stopped again
  EXPECT_EQ(h.rec.events.back(), (Event{Event::ping, Opcode::ping, "x"}));
  h.rec.after_event = nullptr;
  h.parser.resume();
  rest.erase(0, used);
  EXPECT_EQ(h.feed(rest), rest.size());
  EXPECT_EQ(h.rec.events.back(), msg("third"));
}

TEST(Parser, StopAfterAssembledMessage) {
  Harness h;
  h.rec.after_event = [&] { h.parser.stop(); };
  std::string first = frame(Opcode::binary, "ab", false) + frame(Opcode::continuation, "cd");
  std::string in = first + frame(Opcode::binary, "next");
  EXPECT_EQ(h.feed(in), first.size());
  EXPECT_EQ(h.rec.events, std::vector<Event>{msg("abcd", Opcode::binary)});
}

TEST(Parser, ReleaseMemoryOnlyBetweenMessages) {
  Harness h;
  std::string part = frame(Opcode::binary, std::string(4096, 'a'), false);
  h.feed(part);
  ASSERT_TRUE(h.parser.mid_message());
  const std::size_t held = h.parser.buffered_capacity();
  EXPECT_GE(held, 4096u);
  h.parser.release_memory();
  EXPECT_EQ(h.parser.buffered_capacity(), held) << "a message in progress keeps its buffer";

  std::string end = frame(Opcode::continuation, "b");
  h.feed(end);
  ASSERT_EQ(h.rec.events.size(), 1u);
  EXPECT_EQ(h.rec.events[0].data.size(), 4097u);
  EXPECT_FALSE(h.parser.mid_message());
  h.parser.release_memory();
  EXPECT_EQ(h.parser.buffered_capacity(), std::string().capacity());

  // The parser still works afterwards.
  std::string again = frame(Opcode::text, "x", false) + frame(Opcode::continuation, "y");
  EXPECT_EQ(h.feed(again), again.size());
  EXPECT_EQ(h.rec.events.back(), msg("xy"));
}

TEST(Parser, SplitUnfragmentedFrameIsAssembled) {
  Harness h;
  std::string payload(1000, 'q');
  std::string in = frame(Opcode::text, payload);
  h.feed_in_chunks(in, {500, 600});
  EXPECT_EQ(h.rec.events, std::vector<Event>{msg(payload)});
}

}  // namespace
}  // namespace ebb::websocket::codec
