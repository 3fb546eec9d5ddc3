#pragma once
// Internal logging for the library (never in public headers).
//
// Threads: logger() may be called from any thread; the first call creates the
// logger (thread-safe lazy init). The logger itself is thread-safe.
#include <spdlog/logger.h>

#include <memory>

namespace ebb::log {

/// The library's logger, named "ebb", writing to stderr. Its level comes from
/// EBB_LOG_LEVEL (trace, debug, info, warn, error, critical, off; default
/// info), read once. If the application registered its own spdlog logger
/// named "ebb" before the first call, that one is used instead, so an app can
/// redirect or silence the library.
const std::shared_ptr<spdlog::logger>& logger();

}  // namespace ebb::log
