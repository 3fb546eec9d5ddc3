#include "log/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <optional>
#include <string_view>

namespace ebb::log {
namespace {

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  using spdlog::level::level_enum;
  if (name == "trace") return level_enum::trace;
  if (name == "debug") return level_enum::debug;
  if (name == "info") return level_enum::info;
  if (name == "warn" || name == "warning") return level_enum::warn;
  if (name == "error") return level_enum::err;
  if (name == "critical") return level_enum::critical;
  if (name == "off") return level_enum::off;
  return std::nullopt;
}

std::shared_ptr<spdlog::logger> make_logger() {
  if (auto existing = spdlog::get("ebb")) return existing;
  auto made =
      std::make_shared<spdlog::logger>("ebb", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  made->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] [ebb] %v");
  const char* env = std::getenv("EBB_LOG_LEVEL");
  const auto level = env != nullptr ? parse_level(env) : std::nullopt;
  made->set_level(level.value_or(spdlog::level::info));
  if (env != nullptr && *env != '\0' && !level) {
    made->warn("EBB_LOG_LEVEL: unknown level \"{}\", using info", env);
  }
  return made;
}

}  // namespace

const std::shared_ptr<spdlog::logger>& logger() {
  static const std::shared_ptr<spdlog::logger> instance = make_logger();
  return instance;
}

}  // namespace ebb::log
