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

class Config {
 public:
  /// Only environment variables.
  Config();
  /// `.env` lines `KEY=value` (optional `export `, '#' comments, single or
  /// double quotes, \n \" \\ escapes in double quotes). A missing file is not
  /// an error (defaults apply); an unreadable or malformed one is (ConfigError
  /// with the line number). Environment variables win over the file.
  explicit Config(const std::string& env_file);
  /// From explicit values (tests, embedding); environment not consulted.
  static Config from_map(std::map<std::string, std::string> values);

  /// Overrides a value in this object (not the process environment).
  void set(const std::string& key, std::string value);

  bool has(const std::string& key) const;
  std::optional<std::string> raw(const std::string& key) const;

  std::string get_string(const std::string& key, const std::string& def = {}) const;
  std::int64_t get_int(const std::string& key, std::int64_t def,
                       std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX) const;
  std::uint16_t get_port(const std::string& key, std::uint16_t def) const;
  /// true/false, 1/0, yes/no, on/off (case-insensitive).
  bool get_bool(const std::string& key, bool def) const;
  /// Integer with optional unit: "1500ms", "30s", "2m", plain number = ms.
  std::chrono::milliseconds get_duration(const std::string& key, std::chrono::milliseconds def) const;
  /// Integer with optional unit: "512", "64k"/"64KiB", "16M"/"16MiB", "1G".
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
