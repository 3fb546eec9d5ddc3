#pragma once
// Every knob of ebb::App, with defaults and the configuration key of each.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ebb::config {
class Config;
}

namespace ebb {

struct AppOptions {
  std::string host = "0.0.0.0";  ///< SERVER_HOST
  std::uint16_t port = 8080;     ///< SERVER_PORT (0 = any free port)
  /// HTTP_IO_THREADS, 1..1024 (0 = hardware concurrency).
  unsigned io_threads = 1;
  /// Request line + headers, bytes (431 past it). HTTP_MAX_HEADER_SIZE
  std::size_t max_header_size = 16 * 1024;
  /// Request body, bytes, also for chunked bodies (413 past it). HTTP_MAX_BODY_SIZE
  std::size_t max_body_size = 1024 * 1024;
  /// From a request's first byte to its complete head (408 past it; the
  /// slowloris cut). HTTP_HEADER_TIMEOUT_MS
  std::chrono::milliseconds header_timeout{10000};
  /// From the head to the complete body (408 past it). HTTP_BODY_TIMEOUT_MS
  std::chrono::milliseconds body_timeout{30000};
  /// An idle keep-alive connection is closed after this. HTTP_KEEPALIVE_TIMEOUT_MS
  std::chrono::milliseconds keepalive_timeout{60000};
  /// Requests served on one connection before it is closed (0 = no limit).
  /// HTTP_MAX_REQUESTS_PER_CONNECTION
  std::size_t max_requests_per_connection = 0;

  // ---- the drain; see docs/LIFECYCLE.md ----
  /// Deadline for in-flight requests once the drain starts; then forced.
  /// SHUTDOWN_TIMEOUT ("30s", "1500ms"; a plain number means seconds)
  std::chrono::milliseconds shutdown_timeout{30000};
  /// Readiness reports 503 at once, but the listener stays open this long
  /// so that load balancers see it and stop routing first. During the grace
  /// requests are still served, each with Connection: close.
  /// SHUTDOWN_READINESS_GRACE_MS
  std::chrono::milliseconds readiness_grace{0};

  // ---- built-in routes ----
  // Empty turns the probe off (404); so does the key set to an empty value,
  // unlike other keys, where empty means the default.
  std::string health_live_path = "/health/live";    ///< HEALTH_LIVE_PATH (empty: off)
  std::string health_ready_path = "/health/ready";  ///< HEALTH_READY_PATH (empty: off)
  /// POST here with `Authorization: Bearer <token>` starts the drain.
  /// Disabled (404) while ADMIN_TOKEN is empty. ADMIN_SHUTDOWN_PATH
  std::string admin_shutdown_path = "/admin/shutdown";
  std::string admin_token;  ///< ADMIN_TOKEN

  /// Reads every key above (sizes accept k/M/G, durations ms/s/m/h), then
  /// validates; throws ebb::config::ConfigError naming the key.
  static AppOptions from_config(const ebb::config::Config& cfg);
  /// Throws std::invalid_argument starting with the field name on an
  /// impossible value (empty host, zero sizes, non-positive timeouts, a path
  /// not starting with '/').
  void validate() const;
};

}  // namespace ebb
