#pragma once
// ebb-chat's settings: every key it reads (its own and the library's), with
// the default the chat uses and what it means. One table feeds --help and
// the defaults, so the help text cannot drift from what the program does.
//
// Precedence for every key: command-line flag, then the environment, then
// `.env` in the working directory, then the default below.
#include <ebb/config/config.hpp>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ebb::chat {

struct Setting {
  std::string_view key;
  /// The chat's default as text ("" = empty / off); what --help prints.
  std::string_view default_value;
  std::string_view meaning;
  /// True when the chat's default differs from the library's: it is put into
  /// the Config (Config::set) unless the key is present, so the library reads it.
  bool chat_default = false;
};

/// Every key, grouped: the chat's own first, then the HTTP app, the
/// WebSocket server, the drain.
const std::vector<Setting>& settings();

/// What the command line asked for.
struct CommandLine {
  bool help = false;
  std::optional<std::string> port;      ///< --port N      (SERVER_PORT)
  std::optional<std::string> host;      ///< --host H      (SERVER_HOST)
  std::optional<std::string> data_dir;  ///< --data-dir D  (DATA_DIR)
  std::optional<std::string> env_file;  ///< --env-file F  (default .env)
};

/// Throws std::invalid_argument naming the bad argument.
CommandLine parse_command_line(int argc, char** argv);

void print_help(std::ostream& out, std::string_view program);

/// Applies the chat's defaults (where a key is unset) and the flags
/// (which override everything) to `cfg`.
void apply(const CommandLine& cl, ebb::config::Config& cfg);

/// The web directory: CHAT_WEB_DIR, else the one compiled in. Throws
/// std::runtime_error when it has no index.html.
std::filesystem::path web_dir(const ebb::config::Config& cfg);

}  // namespace ebb::chat
