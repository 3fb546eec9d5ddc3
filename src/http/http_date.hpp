#pragma once
// HTTP-date (RFC 9110 §5.6.7): formatting for Date / Last-Modified, parsing
// for If-Modified-Since. Pure functions, no locale, no time zone, no locks:
// safe from any thread.
#include <cstddef>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace ebb::http::detail {

/// Length of an IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
inline constexpr std::size_t http_date_size = 29;

/// Writes the IMF-fixdate of `t` (seconds since the epoch, UTC) into
/// `out[0..29)`, without a terminating NUL. Years outside 0000..9999 are
/// clamped to them. No allocation; a few dozen integer operations, so the
/// caller may call it per response (caching it per second is cheaper still).
void format_http_date(std::time_t t, char* out) noexcept;
/// The same, as a string.
std::string format_http_date(std::time_t t);

/// Parses the three forms RFC 9110 requires recipients to accept:
///   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
///   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"  (two-digit year: 70..99 →
///                19xx, 00..69 → 20xx)
///   asctime      "Sun Nov  6 08:49:37 1994"
/// Surrounding spaces and tabs are ignored; the weekday must be a valid name
/// but is not checked against the date. Anything else (a bad day of month,
/// an hour past 23, trailing text) is nullopt.
std::optional<std::time_t> parse_http_date(std::string_view s) noexcept;

}  // namespace ebb::http::detail
