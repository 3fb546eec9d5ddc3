#pragma once
// Incremental UTF-8 validation (RFC 3629): rejects overlong forms, surrogates
// (U+D800..DFFF), code points above U+10FFFF, and fails as early as the first
// impossible byte, even when a sequence is split across fragments.
#include <cstddef>
#include <cstdint>
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

/// Whole-buffer check.
bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace ebb::websocket::codec
