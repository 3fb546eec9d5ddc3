#pragma once
// SHUTDOWN_TIMEOUT is shared by the HTTP app and the WebSocket server.
#include <chrono>

#include "ebb/config/config.hpp"

namespace ebb::config::detail {

/// SHUTDOWN_TIMEOUT has no unit in its name, and operators write "30" for
/// thirty seconds; a plain number is therefore seconds here, not ms.
std::chrono::milliseconds shutdown_timeout_from(const Config& cfg, std::chrono::milliseconds def);

}  // namespace ebb::config::detail
