#include "ebb/http/options.hpp"

#include <optional>
#include <stdexcept>
#include <thread>

#include "config/shutdown_timeout.hpp"
#include "ebb/config/config.hpp"

namespace ebb {
namespace {

struct Problem {
  const char* field;
  const char* key;
  std::string message;
};

bool path_ok(const std::string& p) { return p.empty() || p.front() == '/'; }

// A built-in probe's path. Unset keeps `def`; set but empty (or blank)
// turns the probe off: the one place where an empty value is not "use the
// default", as the key's documentation says.
std::string probe_path(const ebb::config::Config& cfg, const std::string& key,
                       const std::string& def) {
  const auto raw = cfg.raw(key);
  if (raw && raw->find_first_not_of(" \t") == std::string::npos) return {};
  return cfg.get_string(key, def);
}

std::optional<Problem> find_problem(const AppOptions& o) {
  using std::chrono::milliseconds;
  if (o.host.empty()) return Problem{"host", "SERVER_HOST", "must not be empty"};
  if (o.io_threads == 0 || o.io_threads > 1024)
    return Problem{"io_threads", "HTTP_IO_THREADS", "must be in 1..1024"};
  if (o.max_header_size < 256)
    return Problem{"max_header_size", "HTTP_MAX_HEADER_SIZE", "must be at least 256 bytes"};
  if (o.header_timeout <= milliseconds::zero())
    return Problem{"header_timeout", "HTTP_HEADER_TIMEOUT_MS", "must be positive"};
  if (o.body_timeout <= milliseconds::zero())
    return Problem{"body_timeout", "HTTP_BODY_TIMEOUT_MS", "must be positive"};
  if (o.keepalive_timeout <= milliseconds::zero())
    return Problem{"keepalive_timeout", "HTTP_KEEPALIVE_TIMEOUT_MS", "must be positive"};
  if (o.shutdown_timeout < milliseconds::zero())
    return Problem{"shutdown_timeout", "SHUTDOWN_TIMEOUT", "must not be negative"};
  if (o.readiness_grace < milliseconds::zero())
    return Problem{"readiness_grace", "SHUTDOWN_READINESS_GRACE_MS", "must not be negative"};
  if (o.readiness_grace > milliseconds::zero() && o.readiness_grace >= o.shutdown_timeout)
    return Problem{"readiness_grace", "SHUTDOWN_READINESS_GRACE_MS",
                   "must be shorter than SHUTDOWN_TIMEOUT"};
  if (!path_ok(o.health_live_path))
    return Problem{"health_live_path", "HEALTH_LIVE_PATH", "must start with '/'"};
  if (!path_ok(o.health_ready_path))
    return Problem{"health_ready_path", "HEALTH_READY_PATH", "must start with '/'"};
  if (o.admin_shutdown_path.empty() || o.admin_shutdown_path.front() != '/')
    return Problem{"admin_shutdown_path", "ADMIN_SHUTDOWN_PATH", "must start with '/'"};
  if (!o.admin_token.empty() && o.admin_token.size() < 16)
    return Problem{"admin_token", "ADMIN_TOKEN",
                   "must be at least 16 characters (it guards the shutdown route)"};
  return std::nullopt;
}

}  // namespace

AppOptions AppOptions::from_config(const ebb::config::Config& cfg) {
  AppOptions o;
  o.host = cfg.get_string("SERVER_HOST", o.host);
  o.port = cfg.get_port("SERVER_PORT", o.port);
  o.io_threads = static_cast<unsigned>(cfg.get_int("HTTP_IO_THREADS", o.io_threads, 0, 1024));
  if (o.io_threads == 0) o.io_threads = std::max(1u, std::thread::hardware_concurrency());
  o.max_header_size = cfg.get_size("HTTP_MAX_HEADER_SIZE", o.max_header_size);
  o.max_body_size = cfg.get_size("HTTP_MAX_BODY_SIZE", o.max_body_size);
  o.header_timeout = cfg.get_duration("HTTP_HEADER_TIMEOUT_MS", o.header_timeout);
  o.body_timeout = cfg.get_duration("HTTP_BODY_TIMEOUT_MS", o.body_timeout);
  o.keepalive_timeout = cfg.get_duration("HTTP_KEEPALIVE_TIMEOUT_MS", o.keepalive_timeout);
  o.max_requests_per_connection =
      cfg.get_size("HTTP_MAX_REQUESTS_PER_CONNECTION", o.max_requests_per_connection);
  o.shutdown_timeout = ebb::config::detail::shutdown_timeout_from(cfg, o.shutdown_timeout);
  o.readiness_grace = cfg.get_duration("SHUTDOWN_READINESS_GRACE_MS", o.readiness_grace);
  o.health_live_path = probe_path(cfg, "HEALTH_LIVE_PATH", o.health_live_path);
  o.health_ready_path = probe_path(cfg, "HEALTH_READY_PATH", o.health_ready_path);
  o.admin_shutdown_path = cfg.get_string("ADMIN_SHUTDOWN_PATH", o.admin_shutdown_path);
  o.admin_token = cfg.get_string("ADMIN_TOKEN", o.admin_token);
  if (const auto p = find_problem(o)) throw ebb::config::ConfigError(p->key, p->message);
  return o;
}

void AppOptions::validate() const {
  if (const auto p = find_problem(*this))
    throw std::invalid_argument(std::string(p->field) + ": " + p->message);
}

}  // namespace ebb
