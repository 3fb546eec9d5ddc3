#include "http/http_date.hpp"

#include <algorithm>
#include <array>
#include <chrono>

namespace ebb::http::detail {

namespace {

namespace chr = std::chrono;

constexpr std::array<std::string_view, 7> short_days = {"Sun", "Mon", "Tue", "Wed",
                                                        "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> long_days = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// The representable range: 0000-01-01T00:00:00 .. 9999-12-31T23:59:59.
constexpr std::time_t min_time =
    chr::sys_days{chr::year{0} / 1 / 1}.time_since_epoch() / chr::seconds{1};
constexpr std::time_t max_time =
    chr::sys_days{chr::year{9999} / 12 / 31}.time_since_epoch() / chr::seconds{1} + 86399;

void put2(char* p, unsigned v) noexcept {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// A cursor over the field value; every read either consumes what it
// matched or reports failure (the caller then gives up on the whole value).
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  bool done() const noexcept { return s_.empty(); }
  bool lit(char c) noexcept {
    if (s_.empty() || s_.front() != c) return false;
    s_.remove_prefix(1);
    return true;
  }
  bool lit(std::string_view w) noexcept {
    if (!s_.starts_with(w)) return false;
    s_.remove_prefix(w.size());
    return true;
  }
  /// Exactly `n` decimal digits.
  std::optional<int> digits(std::size_t n) noexcept {
    if (s_.size() < n) return std::nullopt;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = s_[i];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    s_.remove_prefix(n);
    return v;
  }
  /// The leading run of ASCII letters.
  std::string_view word() noexcept {
    std::size_t n = 0;
    while (n < s_.size() && ((s_[n] >= 'A' && s_[n] <= 'Z') || (s_[n] >= 'a' && s_[n] <= 'z'))) {
      ++n;
    }
    const std::string_view w = s_.substr(0, n);
    s_.remove_prefix(n);
    return w;
  }
  /// A month name; 1..12.
  std::optional<unsigned> month() noexcept {
    for (std::size_t i = 0; i < months.size(); ++i) {
      if (lit(months[i])) return static_cast<unsigned>(i + 1);
    }
    return std::nullopt;
  }

 private:
  std::string_view s_;
};

struct Fields {
  int year = 0;
  unsigned month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

bool read_time(Reader& r, Fields& f) noexcept {
  const auto h = r.digits(2);
  if (!h || !r.lit(':')) return false;
  const auto m = r.digits(2);
  if (!m || !r.lit(':')) return false;
  const auto s = r.digits(2);
  if (!s) return false;
  f.hour = *h;
  f.minute = *m;
  f.second = *s;
  return true;
}

// After "Sun, ": "06 Nov 1994 08:49:37 GMT".
bool read_imf_fixdate(Reader& r, Fields& f) noexcept {
  const auto d = r.digits(2);
  if (!d || !r.lit(' ')) return false;
  const auto m = r.month();
  if (!m || !r.lit(' ')) return false;
  const auto y = r.digits(4);
  if (!y || !r.lit(' ') || !read_time(r, f)) return false;
  f.day = *d;
  f.month = *m;
  f.year = *y;
  return r.lit(" GMT");
}

// After "Sunday, ": "06-Nov-94 08:49:37 GMT".
bool read_rfc850(Reader& r, Fields& f) noexcept {
  const auto d = r.digits(2);
  if (!d || !r.lit('-')) return false;
  const auto m = r.month();
  if (!m || !r.lit('-')) return false;
  const auto y = r.digits(2);
  if (!y || !r.lit(' ') || !read_time(r, f)) return false;
  f.day = *d;
  f.month = *m;
  // A fixed pivot instead of RFC 9110's "50 years from now" rule keeps the
  // parser pure; the two agree until 2020 + 50.
  f.year = *y < 70 ? 2000 + *y : 1900 + *y;
  return r.lit(" GMT");
}

// After "Sun ": "Nov  6 08:49:37 1994".
bool read_asctime(Reader& r, Fields& f) noexcept {
  const auto m = r.month();
  if (!m || !r.lit(' ')) return false;
  std::optional<int> d;
  if (r.lit(' ')) {
    d = r.digits(1);
  } else {
    d = r.digits(2);
  }
  if (!d || !r.lit(' ') || !read_time(r, f) || !r.lit(' ')) return false;
  const auto y = r.digits(4);
  if (!y) return false;
  f.day = *d;
  f.month = *m;
  f.year = *y;
  return true;
}

std::optional<std::time_t> to_time(const Fields& f) noexcept {
  const chr::year_month_day ymd{chr::year{f.year}, chr::month{f.month},
                                chr::day{static_cast<unsigned>(f.day)}};
  if (!ymd.ok() || f.hour > 23 || f.minute > 59 || f.second > 60) return std::nullopt;
  const auto t =
      chr::sys_days{ymd} + chr::hours{f.hour} + chr::minutes{f.minute} + chr::seconds{f.second};
  return static_cast<std::time_t>(t.time_since_epoch() / chr::seconds{1});
}

bool is_one_of(std::string_view w, const auto& names) noexcept {
  return std::find(names.begin(), names.end(), w) != names.end();
}

}  // namespace

void format_http_date(std::time_t t, char* out) noexcept {
  t = std::clamp(t, min_time, max_time);
  const chr::sys_seconds s{chr::seconds{t}};
  const chr::sys_days d = chr::floor<chr::days>(s);
  const chr::year_month_day ymd{d};
  const chr::hh_mm_ss hms{s - d};
  const std::string_view wd = short_days[chr::weekday{d}.c_encoding()];
  const std::string_view mon = months[static_cast<unsigned>(ymd.month()) - 1];
  const auto year = static_cast<unsigned>(static_cast<int>(ymd.year()));

  // "Sun, 06 Nov 1994 08:49:37 GMT"
  //  0123456789012345678901234567 8
  std::copy(wd.begin(), wd.end(), out);
  out[3] = ',';
  out[4] = ' ';
  put2(out + 5, static_cast<unsigned>(ymd.day()));
  out[7] = ' ';
  std::copy(mon.begin(), mon.end(), out + 8);
  out[11] = ' ';
  put2(out + 12, year / 100);
  put2(out + 14, year % 100);
  out[16] = ' ';
  put2(out + 17, static_cast<unsigned>(hms.hours().count()));
  out[19] = ':';
  put2(out + 20, static_cast<unsigned>(hms.minutes().count()));
  out[22] = ':';
  put2(out + 23, static_cast<unsigned>(hms.seconds().count()));
  std::copy_n(" GMT", 4, out + 25);
}

std::string format_http_date(std::time_t t) {
  std::string s(http_date_size, '\0');
  format_http_date(t, s.data());
  return s;
}

std::optional<std::time_t> parse_http_date(std::string_view s) noexcept {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return std::nullopt;
  s = s.substr(first, s.find_last_not_of(" \t") - first + 1);

  Reader r{s};
  const std::string_view day_name = r.word();
  Fields f;
  bool ok = false;
  if (r.lit(", ")) {
    if (is_one_of(day_name, short_days)) {
      ok = read_imf_fixdate(r, f);
    } else if (is_one_of(day_name, long_days)) {
      ok = read_rfc850(r, f);
    }
  } else if (r.lit(' ') && is_one_of(day_name, short_days)) {
    ok = read_asctime(r, f);
  }
  if (!ok || !r.done()) return std::nullopt;
  return to_time(f);
}

}  // namespace ebb::http::detail
