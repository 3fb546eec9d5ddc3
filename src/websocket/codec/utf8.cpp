#include "websocket/codec/utf8.hpp"

#include <array>
#include <cstring>

namespace ebb::websocket::codec {

namespace {

// A DFA over byte classes. A state names what the next byte must be; the
// narrowed second-byte ranges after E0, ED, F0 and F4 are what reject
// overlong forms, surrogates and code points above U+10FFFF.
//
// Byte classes.
enum : std::uint8_t {
  c_ascii,     // 00..7F
  c_cont_lo,   // 80..8F
  c_cont_mid,  // 90..9F
  c_cont_hi,   // A0..BF
  c_bad,       // C0, C1, F5..FF: never valid
  c_lead2,     // C2..DF
  c_e0,        // E0: second byte A0..BF (else overlong)
  c_lead3,     // E1..EC, EE, EF
  c_ed,        // ED: second byte 80..9F (else surrogate)
  c_f0,        // F0: second byte 90..BF (else overlong)
  c_lead4,     // F1..F3
  c_f4,        // F4: second byte 80..8F (else > U+10FFFF)
  class_count
};

// States; accept (0) and reject (1) are fixed by the header.
enum : std::uint8_t {
  s_accept = 0,
  s_reject = Utf8Validator::reject_state,
  s_need1,     // one continuation byte left
  s_need2,     // two left, any continuation
  s_need2_e0,  // after E0
  s_need2_ed,  // after ED
  s_need3,     // three left, any continuation
  s_need3_f0,  // after F0
  s_need3_f4,  // after F4
  state_count
};

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> c{};
  for (int b = 0; b < 256; ++b) {
    std::uint8_t k = c_bad;
    if (b <= 0x7F)
      k = c_ascii;
    else if (b <= 0x8F)
      k = c_cont_lo;
    else if (b <= 0x9F)
      k = c_cont_mid;
    else if (b <= 0xBF)
      k = c_cont_hi;
    else if (b <= 0xC1)
      k = c_bad;
    else if (b <= 0xDF)
      k = c_lead2;
    else if (b == 0xE0)
      k = c_e0;
    else if (b == 0xED)
      k = c_ed;
    else if (b <= 0xEF)
      k = c_lead3;
    else if (b == 0xF0)
      k = c_f0;
    else if (b <= 0xF3)
      k = c_lead4;
    else if (b == 0xF4)
      k = c_f4;
    c[b] = k;
  }
  return c;
}

using Row = std::array<std::uint8_t, class_count>;

// Row for a state that accepts continuation bytes of the given classes only.
constexpr Row cont_row(bool lo, bool mid, bool hi, std::uint8_t next) {
  Row r{};
  for (auto& x : r) x = s_reject;
  if (lo) r[c_cont_lo] = next;
  if (mid) r[c_cont_mid] = next;
  if (hi) r[c_cont_hi] = next;
  return r;
}

constexpr std::array<Row, state_count> make_transitions() {
  std::array<Row, state_count> t{};
  Row& a = t[s_accept];
  for (auto& x : a) x = s_reject;
  a[c_ascii] = s_accept;
  a[c_lead2] = s_need1;
  a[c_e0] = s_need2_e0;
  a[c_lead3] = s_need2;
  a[c_ed] = s_need2_ed;
  a[c_f0] = s_need3_f0;
  a[c_lead4] = s_need3;
  a[c_f4] = s_need3_f4;
  t[s_reject] = cont_row(false, false, false, s_reject);
  t[s_need1] = cont_row(true, true, true, s_accept);
  t[s_need2] = cont_row(true, true, true, s_need1);
  t[s_need2_e0] = cont_row(false, false, true, s_need1);
  t[s_need2_ed] = cont_row(true, true, false, s_need1);
  t[s_need3] = cont_row(true, true, true, s_need2);
  t[s_need3_f0] = cont_row(false, true, true, s_need2);
  t[s_need3_f4] = cont_row(true, false, false, s_need2);
  return t;
}

constexpr auto byte_class = make_classes();
constexpr auto transitions = make_transitions();

using utf8_detail::high_bits;

// Index of the first byte at or after `i` that is not ASCII, or a position
// from which fewer than 16 bytes remain; reads 16 bytes per step.
std::size_t skip_ascii(const std::uint8_t* data, std::size_t size, std::size_t i) noexcept {
  while (i + 16 <= size) {
    std::uint64_t a, b;
    std::memcpy(&a, data + i, 8);
    std::memcpy(&b, data + i + 8, 8);
    if (((a | b) & high_bits) != 0) break;
    i += 16;
  }
  if (i + 8 <= size) {
    std::uint64_t a;
    std::memcpy(&a, data + i, 8);
    if ((a & high_bits) == 0) i += 8;
  }
  return i;
}

}  // namespace

bool Utf8Validator::feed(const std::uint8_t* data, std::size_t size) noexcept {
  std::uint32_t s = state_;
  if (s == s_reject) return false;
  std::size_t i = 0;
  while (i < size) {
    if (s == s_accept) {
      i = skip_ascii(data, size, i);
      if (i == size) break;
    }
    s = transitions[s][byte_class[data[i]]];
    if (s == s_reject) {
      state_ = s;
      return false;
    }
    ++i;
  }
  state_ = s;
  return true;
}

namespace utf8_detail {

bool is_valid_utf8_dfa(const std::uint8_t* data, std::size_t size) noexcept {
  Utf8Validator v;
  return v.feed(data, size) && v.complete();
}

}  // namespace utf8_detail

}  // namespace ebb::websocket::codec
