#include "websocket/codec/utf8.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace ebb::websocket::codec {
namespace {

// Reference: decode code points the slow, obvious way (RFC 3629 §4).
// Returns the length of the longest prefix that can still start valid UTF-8
// or the size when everything is valid; `complete` says no sequence is open.
std::size_t reference_valid_prefix(std::string_view s, bool& complete) {
  std::size_t i = 0;
  complete = true;
  while (i < s.size()) {
    const auto b = static_cast<std::uint8_t>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    std::uint32_t min;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07, min = 0x10000;
    } else {
      return i;  // continuation byte as lead, or F8..FF
    }
    // Leads that no continuation can rescue: C0/C1 (always overlong) and
    // F5..F7 (always above U+10FFFF).
    if ((len == 2 && cp < 2) || (len == 4 && cp > 4)) return i;
    std::size_t k = 1;
    for (; k < len && i + k < s.size(); ++k) {
      const auto c = static_cast<std::uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return i + k;
      cp = (cp << 6) | (c & 0x3F);
      // Smallest and largest code points still reachable after this byte.
      const std::size_t left = len - k - 1;
      const std::uint32_t lo = cp << (6 * left);
      const std::uint32_t hi = lo | ((1u << (6 * left)) - 1);
      if (hi < min || lo > 0x10FFFF || (lo >= 0xD800 && hi <= 0xDFFF)) return i + k;
    }
    if (k < len) {
      complete = false;
      return s.size();
    }
    i += len;
  }
  return i;
}

// Feed one byte at a time and report the index of the first rejected byte.
std::size_t first_rejected_byte(std::string_view s) {
  Utf8Validator v;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!v.feed(s.substr(i, 1))) return i;
  }
  return s.size();
}

TEST(Utf8, ValidStrings) {
  const std::vector<std::string> valid = {
      "",
      "hello world, this is plain ASCII longer than sixteen bytes",
      "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",  // κόσμε (Autobahn 6.2.x)
      "\xC2\x80",                                      // U+0080, smallest 2-byte
      "\xDF\xBF",                                      // U+07FF
      "\xE0\xA0\x80",                                  // U+0800, smallest 3-byte
      "\xED\x9F\xBF",                                  // U+D7FF, before surrogates
      "\xEE\x80\x80",                                  // U+E000, after surrogates
      "\xEF\xBF\xBF",                                  // U+FFFF
      "\xEF\xBF\xBE",                                  // U+FFFE (noncharacter, valid)
      "\xF0\x90\x80\x80",                              // U+10000
      "\xF4\x8F\xBF\xBF",                              // U+10FFFF
      std::string("nul\0inside", 10),
      "mixed: \xF0\x9F\x98\x80 emoji and \xE2\x82\xAC euro after 16 bytes of ascii",
  };
  for (const auto& s : valid) {
    EXPECT_TRUE(is_valid_utf8(s)) << s;
    Utf8Validator v;
    EXPECT_TRUE(v.feed(s));
    EXPECT_TRUE(v.complete());
    EXPECT_FALSE(v.failed());
  }
}

struct Invalid {
  const char* name;
  std::string bytes;
  std::size_t first_bad;  // index of the byte at which it becomes impossible
};

std::vector<Invalid> invalid_cases() {
  return {
      // Autobahn 6.3: valid text with an embedded surrogate.
      {"kosme_surrogate",
       "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80"
       "edited",
       12},
      // 6.6/6.7: lone continuation bytes.
      {"lone_continuation_80", "ab\x80", 2},
      {"lone_continuation_bf", "\xBF", 0},
      // 6.9: lead byte followed by a non-continuation.
      {"lead2_then_ascii",
       "\xC2"
       "a",
       1},
      {"lead3_then_ascii",
       "\xE1\x80"
       "a",
       2},
      {"lead4_then_lead", "\xF1\x80\xC2", 2},
      // 6.11/6.12: impossible bytes.
      {"fe", "a\xFE", 1},
      {"ff", "\xFF", 0},
      {"f8_five_byte", "\xF8\x88\x80\x80\x80", 0},
      {"fc_six_byte", "\xFC\x84\x80\x80\x80\x80", 0},
      {"f5_above_max_lead", "\xF5\x80\x80\x80", 0},
      // 6.17-6.19: overlong forms.
      {"overlong_slash_2", "\xC0\xAF", 0},
      {"overlong_slash_3", "\xE0\x80\xAF", 1},
      {"overlong_slash_4", "\xF0\x80\x80\xAF", 1},
      {"overlong_max_2", "\xC1\xBF", 0},
      {"overlong_max_3", "\xE0\x9F\xBF", 1},
      {"overlong_max_4", "\xF0\x8F\xBF\xBF", 1},
      {"overlong_nul", "\xC0\x80", 0},
      // 6.20/6.21: surrogates, single and paired.
      {"surrogate_d800", "\xED\xA0\x80", 1},
      {"surrogate_dbff", "\xED\xAD\xBF", 1},
      {"surrogate_dc00", "\xED\xB0\x80", 1},
      {"surrogate_dfff", "\xED\xBF\xBF", 1},
      {"surrogate_pair", "\xED\xA0\x80\xED\xB0\x80", 1},
      // Above U+10FFFF.
      {"above_max", "\xF4\x90\x80\x80", 1},
      {"above_max_f7", "\xF7\xBF\xBF\xBF", 0},
      // Long ASCII run, then a bad byte (exercises the 8-byte path).
      {"ascii_run_then_bad", std::string(37, 'x') + "\xC0", 37},
  };
}

TEST(Utf8, InvalidClassesFailAtTheFirstImpossibleByte) {
  for (const auto& c : invalid_cases()) {
    EXPECT_FALSE(is_valid_utf8(c.bytes)) << c.name;
    EXPECT_EQ(first_rejected_byte(c.bytes), c.first_bad) << c.name;
    bool complete;
    EXPECT_EQ(reference_valid_prefix(c.bytes, complete), c.first_bad) << c.name << " (reference)";
  }
}

TEST(Utf8, TruncatedSequencesAreIncompleteNotFailed) {
  const std::vector<std::string> truncated = {"\xC2",         "\xE0\xA0", "\xE1",
                                              "\xF0\x90\x80", "\xF4\x8F", "abc\xF3"};
  for (const auto& s : truncated) {
    Utf8Validator v;
    EXPECT_TRUE(v.feed(s)) << "prefix of a valid sequence must be accepted";
    EXPECT_FALSE(v.complete());
    EXPECT_FALSE(v.failed());
    EXPECT_FALSE(is_valid_utf8(s));
  }
}

TEST(Utf8, SplitAtEveryPositionEqualsWhole) {
  std::vector<std::string> inputs = {
      "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5 plus some ascii to cross 8 bytes",
      "\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xE0\xA0\x80\xC2\x80",
  };
  for (const auto& c : invalid_cases()) inputs.push_back(c.bytes);
  for (const auto& s : inputs) {
    const bool whole = is_valid_utf8(s);
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
      Utf8Validator v;
      const bool a = v.feed(std::string_view(s).substr(0, cut));
      const bool b = v.feed(std::string_view(s).substr(cut));
      EXPECT_EQ(a && b && v.complete(), whole) << "cut " << cut;
      if (!whole) {
        EXPECT_TRUE(v.failed()) << "cut " << cut;
      }
    }
  }
}

TEST(Utf8, StaysFailedUntilReset) {
  Utf8Validator v;
  EXPECT_FALSE(v.feed("\xFF"));
  EXPECT_TRUE(v.failed());
  EXPECT_FALSE(v.feed("abc"));
  EXPECT_FALSE(v.feed(""));
  v.reset();
  EXPECT_TRUE(v.feed("abc"));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8, EveryCodePointEncodingIsAccepted) {
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 61)) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    ASSERT_EQ(is_valid_utf8(s), !surrogate) << std::hex << cp;
  }
}

TEST(Utf8, ShortAndLongAsciiWithOneNonAsciiSpotAnywhere) {
  // The whole-buffer check settles short ASCII with overlapping word reads;
  // a non-ASCII byte at any position, length and alignment must reach the DFA.
  const std::string ascii(8 + 80, 'a');
  for (std::size_t align = 0; align < 8; ++align) {
    for (std::size_t n = 0; n <= 80; ++n) {
      ASSERT_TRUE(is_valid_utf8(std::string_view(ascii.data() + align, n))) << n;
      for (std::size_t pos = 0; pos < n; ++pos) {
        SCOPED_TRACE(testing::Message() << "align " << align << " n " << n << " pos " << pos);
        std::string buf = ascii;
        const std::string_view s(buf.data() + align, n);
        buf[align + pos] = '\x80';  // a lone continuation byte
        ASSERT_FALSE(is_valid_utf8(s));
        buf[align + pos] = '\xC3';  // a lead byte: valid only if a continuation follows
        ASSERT_FALSE(is_valid_utf8(s));
        if (pos + 1 < n) {
          buf[align + pos + 1] = '\xA9';
          ASSERT_TRUE(is_valid_utf8(s));
        }
      }
    }
  }
}

TEST(Utf8, MatchesReferenceOnRandomInput) {
  std::mt19937 rng(2024);
  // Bytes biased towards the interesting boundaries.
  const std::uint8_t pool[] = {'a',  0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                               0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED,
                               0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF};
  for (int trial = 0; trial < 20000; ++trial) {
    std::string s(rng() % 24, '\0');
    for (auto& c : s) c = static_cast<char>(pool[rng() % sizeof pool]);
    bool complete;
    const std::size_t ref = reference_valid_prefix(s, complete);
    const bool ref_valid = ref == s.size() && complete;
    ASSERT_EQ(is_valid_utf8(s), ref_valid) << trial;
    const std::size_t bad = first_rejected_byte(s);
    ASSERT_EQ(bad, ref) << trial;
  }
}

}  // namespace
}  // namespace ebb::websocket::codec
