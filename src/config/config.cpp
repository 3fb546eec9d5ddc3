#include "ebb/config/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string_view>
#include <system_error>
#include <utility>

#include "config/shutdown_timeout.hpp"

namespace ebb::config {
namespace {

constexpr std::string_view kSpace = " \t\r\n\v\f";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kSpace);
  return s.substr(first, last - first + 1);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string quote_value(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool is_key_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_key_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// ---- .env parsing ----------------------------------------------------------

/// A problem on one line; `key` is empty when the line broke before the key.
struct LineError {
  std::string key;
  std::string message;
};

/// After a closing quote only blanks or a comment may follow.
void expect_line_end(std::string_view rest, const std::string& key) {
  rest = trim(rest);
  if (!rest.empty() && rest.front() != '#') {
    throw LineError{key, "unexpected text after the closing quote: " + quote_value(rest)};
  }
}

std::string parse_single_quoted(std::string_view v, const std::string& key) {
  const auto close = v.find('\'', 1);
  if (close == std::string_view::npos) throw LineError{key, "unterminated single-quoted value"};
  expect_line_end(v.substr(close + 1), key);
  return std::string(v.substr(1, close - 1));
}

/// Escapes: \n \t \r \" \\; any other backslash is kept literally (so Windows
/// paths survive).
std::string parse_double_quoted(std::string_view v, const std::string& key) {
  std::string out;
  for (std::size_t i = 1; i < v.size(); ++i) {
    const char c = v[i];
    if (c == '"') {
      expect_line_end(v.substr(i + 1), key);
      return out;
    }
    if (c != '\\' || i + 1 == v.size()) {
      out.push_back(c);
      continue;
    }
    const char next = v[++i];
    switch (next) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case '"':
        out.push_back('"');
        break;
      case '\\':
        out.push_back('\\');
        break;
      default:
        out.push_back('\\');
        out.push_back(next);
        break;
    }
  }
  throw LineError{key, "unterminated double-quoted value"};
}

/// Unquoted: a '#' preceded by a blank starts a comment; blanks are trimmed.
std::string parse_unquoted(std::string_view v) {
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
      v = v.substr(0, i);
      break;
    }
  }
  return std::string(trim(v));
}

/// Parses one non-blank, non-comment line into `out`.
void parse_line(std::string_view line, std::map<std::string, std::string>& out) {
  if (line.starts_with("export") && line.size() > 6 && (line[6] == ' ' || line[6] == '\t')) {
    line = trim(line.substr(6));
  }
  if (line.empty() || !is_key_start(line.front())) {
    throw LineError{{}, "expected KEY=value with KEY matching [A-Za-z_][A-Za-z0-9_]*"};
  }
  std::size_t end = 1;
  while (end < line.size() && is_key_char(line[end])) ++end;
  std::string key(line.substr(0, end));
  std::string_view rest = trim(line.substr(end));
  if (rest.empty() || rest.front() != '=') {
    throw LineError{key, "expected '=' after the key (keys are [A-Za-z_][A-Za-z0-9_]*)"};
  }
  const std::string_view after_equals = rest.substr(1);
  const std::string_view v = trim(after_equals);
  std::string value;
  if (v.starts_with('\'')) {
    value = parse_single_quoted(v, key);
  } else if (v.starts_with('"')) {
    value = parse_double_quoted(v, key);
  } else {
    value = parse_unquoted(after_equals);  // untrimmed: "KEY= #c" is a comment
  }
  out[std::move(key)] = std::move(value);
}

std::map<std::string, std::string> parse_env_file(const std::string& path, std::istream& in) {
  std::map<std::string, std::string> values;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    std::string_view content = line;
    if (number == 1 && content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);  // UTF-8 BOM
    content = trim(content);
    if (content.empty() || content.front() == '#') continue;
    try {
      parse_line(content, values);
    } catch (const LineError& e) {
      const std::string line_no = std::to_string(number);
      if (e.key.empty()) throw ConfigError(path, "line " + line_no + ": " + e.message);
      throw ConfigError(e.key, e.message + " (" + path + " line " + line_no + ")");
    }
  }
  if (in.bad()) throw ConfigError(path, "read error");
  return values;
}

// ---- typed values ----------------------------------------------------------

std::string int_expectation(std::int64_t min, std::int64_t max) {
  constexpr auto lo = std::numeric_limits<std::int64_t>::min();
  constexpr auto hi = std::numeric_limits<std::int64_t>::max();
  if (min == lo && max == hi) return "expected an integer";
  if (max == hi) return "expected an integer >= " + std::to_string(min);
  if (min == lo) return "expected an integer <= " + std::to_string(max);
  return "expected an integer in " + std::to_string(min) + ".." + std::to_string(max);
}

/// Whole-string base-10 parse with optional sign; nullopt on junk or overflow.
template <typename Int>
std::optional<Int> parse_integer(std::string_view s) {
  if (s.starts_with('+')) {
    s.remove_prefix(1);
    if (s.starts_with('-')) return std::nullopt;
  }
  if (s.empty()) return std::nullopt;
  Int value{};
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return value;
}

/// Splits "30s" into digits "30" and unit "s" (blanks between are allowed).
std::pair<std::string_view, std::string> split_unit(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[i])) || (i == 0 && s[i] == '-'))) {
    ++i;
  }
  return {s.substr(0, i), lower(trim(s.substr(i)))};
}

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

}  // namespace

ConfigError::ConfigError(std::string key, const std::string& message)
    : std::runtime_error(key + ": " + message), key_(std::move(key)) {}

Config::Config() = default;

Config::Config(const std::string& env_file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(env_file, ec);
  if (status.type() == fs::file_type::not_found) return;
  if (ec) throw ConfigError(env_file, "cannot access: " + ec.message());
  if (fs::is_directory(status)) throw ConfigError(env_file, "is a directory, expected a .env file");
  std::ifstream in(env_file, std::ios::binary);
  if (!in) throw ConfigError(env_file, "cannot open for reading");
  file_values_ = parse_env_file(env_file, in);
  source_ = env_file;
}

Config Config::from_map(std::map<std::string, std::string> values) {
  Config cfg;
  cfg.file_values_ = std::move(values);
  cfg.use_environment_ = false;
  return cfg;
}

void Config::set(const std::string& key, std::string value) { overrides_[key] = std::move(value); }

bool Config::has(const std::string& key) const { return raw(key).has_value(); }

std::optional<std::string> Config::raw(const std::string& key) const {
  if (auto it = overrides_.find(key); it != overrides_.end()) return it->second;
  if (use_environment_) {
    if (const char* env = std::getenv(key.c_str())) return std::string(env);
  }
  if (auto it = file_values_.find(key); it != file_values_.end()) return it->second;
  return std::nullopt;
}

std::string Config::get_string(const std::string& key, const std::string& def) const {
  const auto value = raw(key);
  return value && !value->empty() ? *value : def;
}

std::int64_t Config::get_int(const std::string& key, std::int64_t def, std::int64_t min,
                             std::int64_t max) const {
  const auto value = raw(key);
  if (!value || trim(*value).empty()) return def;
  const auto parsed = parse_integer<std::int64_t>(trim(*value));
  if (!parsed || *parsed < min || *parsed > max) {
    throw ConfigError(key, int_expectation(min, max) + ", got " + quote_value(*value));
  }
  return *parsed;
}

std::uint16_t Config::get_port(const std::string& key, std::uint16_t def) const {
  return static_cast<std::uint16_t>(get_int(key, def, 0, 65535));
}

bool Config::get_bool(const std::string& key, bool def) const {
  const auto value = raw(key);
  if (!value || trim(*value).empty()) return def;
  const std::string v = lower(trim(*value));
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw ConfigError(
      key, "expected a boolean (true/false, 1/0, yes/no, on/off), got " + quote_value(*value));
}

std::chrono::milliseconds Config::get_duration(const std::string& key,
                                               std::chrono::milliseconds def) const {
  const auto value = raw(key);
  if (!value || trim(*value).empty()) return def;
  const auto fail = [&] {
    return ConfigError(key,
                       "expected a non-negative duration such as 1500ms, 30s, 2m, 1h "
                       "(a plain number is milliseconds), got " +
                           quote_value(*value));
  };
  const auto [digits, unit] = split_unit(trim(*value));
  const auto count = parse_integer<std::uint64_t>(digits);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m" || unit == "min")
    scale = 60'000;
  else if (unit == "h")
    scale = 3'600'000;
  std::uint64_t ms = 0;
  if (!count || scale == 0 || !checked_mul(*count, scale, ms) ||
      ms > static_cast<std::uint64_t>(std::chrono::milliseconds::max().count())) {
    throw fail();
  }
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
}

std::uint64_t Config::get_size(const std::string& key, std::uint64_t def) const {
  const auto value = raw(key);
  if (!value || trim(*value).empty()) return def;
  const auto [digits, unit] = split_unit(trim(*value));
  const auto count = parse_integer<std::uint64_t>(digits);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "b")
    scale = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    scale = 1ull << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    scale = 1ull << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib")
    scale = 1ull << 30;
  std::uint64_t bytes = 0;
  if (!count || scale == 0 || !checked_mul(*count, scale, bytes)) {
    throw ConfigError(key,
                      "expected a size in bytes such as 512, 64k, 64KiB, 16M, 1G "
                      "(binary multiples), got " +
                          quote_value(*value));
  }
  return bytes;
}

std::vector<std::string> Config::get_list(const std::string& key,
                                          const std::vector<std::string>& def) const {
  const auto value = raw(key);
  if (!value || trim(*value).empty()) return def;
  std::vector<std::string> items;
  std::string_view rest = *value;
  while (true) {
    const auto comma = rest.find(',');
    const auto item = trim(rest.substr(0, comma));
    if (!item.empty()) items.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return items;
}

}  // namespace ebb::config

namespace ebb::config::detail {

std::chrono::milliseconds shutdown_timeout_from(const Config& cfg, std::chrono::milliseconds def) {
  auto raw = cfg.raw("SHUTDOWN_TIMEOUT");
  if (raw && !raw->empty() &&
      std::all_of(raw->begin(), raw->end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::chrono::seconds(cfg.get_int("SHUTDOWN_TIMEOUT", 30, 0, 86400));
  return cfg.get_duration("SHUTDOWN_TIMEOUT", def);
}

}  // namespace ebb::config::detail
