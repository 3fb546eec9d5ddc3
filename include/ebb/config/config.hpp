#pragma once
// ebb::config::Config: settings from a .env file, overridden by environment
// variables, read through typed getters with defaults.
//
// Threads: immutable after construction; const members are safe from any
// thread. Lifetime: plain value type.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ebb::config {

/// A setting that is present but unusable. what() names the key, the value
/// and what was expected, e.g.
/// `WEBSOCKET_PORT: expected an integer in 0..65535, got "80a"`.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& message);
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

/// Lookup order for every key: set() overrides, then the process environment
/// (getenv, at the time of the call), then the .env file, then the getter's
/// default. An empty value counts as unset for every getter, so `KEY=` in a
/// .env file means "use the default"; raw() and has() still see it.
class Config {
 public:
  /// Only environment variables.
  Config();
  /// `.env` lines `KEY=value`: optional `export ` prefix; keys match
  /// `[A-Za-z_][A-Za-z0-9_]*`; blank lines and full-line `#` comments are
  /// skipped; an unquoted value is trimmed and ends at ` #` (a comment);
  /// 'single quotes' are literal; "double quotes" understand the escapes
  /// \n \t \r \" and \\ (any other backslash is kept). The last duplicate
  /// wins. A missing file is not an error (defaults apply); an unreadable or
  /// malformed one is (ConfigError whose key is the line's key, or the file
  /// path when the key is unreadable, and whose message names the file and
  /// line).
  explicit Config(const std::string& env_file);
  /// From explicit values (tests, embedding); environment not consulted.
  static Config from_map(std::map<std::string, std::string> values);

  /// Overrides a value in this object (not the process environment).
  void set(const std::string& key, std::string value);

  bool has(const std::string& key) const;
  std::optional<std::string> raw(const std::string& key) const;

  // Typed getters: `def` when the key is unset or empty; ConfigError(key, ...)
  // when the value is present but unusable. Surrounding blanks are ignored.

  std::string get_string(const std::string& key, const std::string& def = {}) const;
  /// Base 10, optional sign, nothing else; overflow and [min, max] checked.
  std::int64_t get_int(const std::string& key, std::int64_t def, std::int64_t min = INT64_MIN,
                       std::int64_t max = INT64_MAX) const;
  std::uint16_t get_port(const std::string& key, std::uint16_t def) const;
  /// true/false, 1/0, yes/no, on/off (case-insensitive).
  bool get_bool(const std::string& key, bool def) const;
  /// Non-negative integer with optional unit (case-insensitive): "1500ms",
  /// "30s", "2m", "1h"; a plain number is milliseconds. Overflow is an error.
  std::chrono::milliseconds get_duration(const std::string& key,
                                         std::chrono::milliseconds def) const;
  /// Non-negative integer with optional binary unit (case-insensitive):
  /// "512", "64k"/"64KiB", "16M"/"16MiB", "1G"/"1GiB". Overflow is an error.
  std::uint64_t get_size(const std::string& key, std::uint64_t def) const;
  /// Comma-separated, items trimmed, empty items dropped.
  std::vector<std::string> get_list(const std::string& key,
                                    const std::vector<std::string>& def = {}) const;

  /// Where the file values came from ("" when none).
  const std::string& source() const noexcept { return source_; }

 private:
  std::map<std::string, std::string> file_values_;
  std::map<std::string, std::string> overrides_;
  bool use_environment_ = true;
  std::string source_;
};

}  // namespace ebb::config
