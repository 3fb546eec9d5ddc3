#pragma once
// Incremental UTF-8 validation (RFC 3629): rejects overlong forms, surrogates
// (U+D800..DFFF), code points above U+10FFFF, and fails as early as the first
// impossible byte, even when a sequence is split across fragments.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace ebb::websocket::codec {

class Utf8Validator {
 public:
  /// Feed the next piece; false as soon as the bytes so far cannot be the
  /// start of valid UTF-8. After false the validator stays failed until reset().
  bool feed(const std::uint8_t* data, std::size_t size) noexcept;
  bool feed(std::string_view s) noexcept {
    return feed(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  }
  /// True when everything fed so far is complete, valid UTF-8 (no sequence open).
  bool complete() const noexcept { return state_ == 0; }
  bool failed() const noexcept { return state_ == reject_state; }
  void reset() noexcept { state_ = 0; }

  static constexpr std::uint32_t reject_state = 1;

 private:
  std::uint32_t state_ = 0;
};

namespace utf8_detail {

/// Whole-buffer check with the DFA (out of line).
bool is_valid_utf8_dfa(const std::uint8_t* data, std::size_t size) noexcept;

inline std::uint64_t load8(const std::uint8_t* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

inline std::uint32_t load4(const std::uint8_t* p) noexcept {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

inline constexpr std::uint64_t high_bits = 0x8080808080808080ull;

}  // namespace utf8_detail

/// Whole-buffer check. The common short ASCII message is settled inline in a
/// few instructions (two words that may overlap cover up to 16 bytes); the
/// rest goes to the DFA, which skips ASCII runs a block at a time. Forced
/// inline: a call costs as much as the check.
[[gnu::always_inline]] inline bool is_valid_utf8(std::string_view s) noexcept {
  using namespace utf8_detail;
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  const std::size_t n = s.size();
  bool ascii = true;
  if (n > 16)
    ascii = false;
  else if (n >= 8)
    ascii = ((load8(p) | load8(p + n - 8)) & high_bits) == 0;
  else if (n >= 4)
    ascii = ((load4(p) | load4(p + n - 4)) & 0x80808080u) == 0;
  else if (n > 0)
    ascii = ((p[0] | p[n / 2] | p[n - 1]) & 0x80) == 0;
  return ascii || is_valid_utf8_dfa(p, n);
}

}  // namespace ebb::websocket::codec
