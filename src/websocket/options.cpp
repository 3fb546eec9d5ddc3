#include "ebb/websocket/options.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "config/shutdown_timeout.hpp"
#include "ebb/config/config.hpp"
#include "text/ascii.hpp"

namespace ebb::websocket {
namespace {

/// One inconsistency: the struct field, its config key, what is wrong.
struct Problem {
  const char* field;
  const char* key;
  std::string message;
};

// What a Sec-WebSocket-Protocol token may contain: RFC 9110 tchar.
using text::is_token;

std::optional<Problem> check_limits(const ServerOptions& o) {
  if (o.host.empty()) return Problem{"host", "WEBSOCKET_HOST", "must not be empty"};
  if (o.io_threads > 1024) {
    return Problem{"io_threads", "WEBSOCKET_IO_THREADS",
                   "must be 0 (hardware threads) .. 1024, got " + std::to_string(o.io_threads)};
  }
  if (!o.path.empty() && o.path.front() != '/') {
    return Problem{"path", "WEBSOCKET_PATH",
                   "must be empty or start with '/', got \"" + o.path + "\""};
  }
  if (o.max_message_size == 0) {
    return Problem{"max_message_size", "WEBSOCKET_MAX_MESSAGE_SIZE", "must be greater than 0"};
  }
  if (o.max_handshake_size == 0) {
    return Problem{"max_handshake_size", "WEBSOCKET_MAX_HANDSHAKE_SIZE", "must be greater than 0"};
  }
  if (o.max_send_queue == 0) {
    return Problem{"max_send_queue", "WEBSOCKET_MAX_SEND_QUEUE", "must be greater than 0"};
  }
  if (o.slow_consumer_close_code != 1008 && o.slow_consumer_close_code != 1013) {
    return Problem{"slow_consumer_close_code", "WEBSOCKET_SLOW_CONSUMER_CLOSE_CODE",
                   "must be 1008 (policy violation) or 1013 (try again later), got " +
                       std::to_string(o.slow_consumer_close_code)};
  }
  return std::nullopt;
}

std::optional<Problem> check_timers(const ServerOptions& o) {
  using std::chrono::milliseconds;
  if (o.handshake_timeout <= milliseconds::zero()) {
    return Problem{"handshake_timeout", "WEBSOCKET_HANDSHAKE_TIMEOUT_MS", "must be greater than 0"};
  }
  if (o.idle_timeout < milliseconds::zero()) {
    return Problem{"idle_timeout", "WEBSOCKET_IDLE_TIMEOUT_MS", "must not be negative"};
  }
  if (o.ping_interval < milliseconds::zero()) {
    return Problem{"ping_interval", "WEBSOCKET_PING_INTERVAL_MS", "must not be negative"};
  }
  if (o.pong_timeout < milliseconds::zero()) {
    return Problem{"pong_timeout", "WEBSOCKET_PONG_TIMEOUT_MS", "must not be negative"};
  }
  if (o.ping_interval > milliseconds::zero() && o.pong_timeout == milliseconds::zero()) {
    return Problem{"pong_timeout", "WEBSOCKET_PONG_TIMEOUT_MS",
                   "must be greater than 0 when heartbeats are on (ping_interval > 0)"};
  }
  if (o.close_wait < milliseconds::zero()) {
    return Problem{"close_wait", "WEBSOCKET_CLOSE_WAIT_MS", "must not be negative"};
  }
  if (o.half_close_delay < milliseconds::zero()) {
    return Problem{"half_close_delay", "WEBSOCKET_HALF_CLOSE_DELAY_MS", "must not be negative"};
  }
  return std::nullopt;
}

std::optional<Problem> check_drain(const ServerOptions& o) {
  using std::chrono::milliseconds;
  if (o.shutdown_timeout < milliseconds::zero())
    return Problem{"shutdown_timeout", "SHUTDOWN_TIMEOUT", "must not be negative"};
  if (o.shutdown_reconnect < milliseconds::zero())
    return Problem{"shutdown_reconnect", "WEBSOCKET_SHUTDOWN_RECONNECT_MS", "must not be negative"};
  if (o.shutdown_spread < milliseconds::zero())
    return Problem{"shutdown_spread", "WEBSOCKET_SHUTDOWN_SPREAD_MS", "must not be negative"};
  if (o.shutdown_spread >= o.shutdown_timeout && o.shutdown_spread > milliseconds::zero())
    return Problem{"shutdown_spread", "WEBSOCKET_SHUTDOWN_SPREAD_MS",
                   "must be shorter than SHUTDOWN_TIMEOUT, or the last closes would be forced"};
  return std::nullopt;
}

std::optional<Problem> check_deflate_and_tls(const ServerOptions& o) {
  const auto bits_ok = [](int bits) { return bits >= 9 && bits <= 15; };
  // RFC 7692 allows 8, but zlib's raw deflate cannot produce 8-bit windows.
  if (!bits_ok(o.deflate.server_max_window_bits)) {
    return Problem{"deflate.server_max_window_bits", "WEBSOCKET_DEFLATE_SERVER_WINDOW_BITS",
                   "must be in 9..15, got " + std::to_string(o.deflate.server_max_window_bits)};
  }
  if (!bits_ok(o.deflate.client_max_window_bits)) {
    return Problem{"deflate.client_max_window_bits", "WEBSOCKET_DEFLATE_CLIENT_WINDOW_BITS",
                   "must be in 9..15, got " + std::to_string(o.deflate.client_max_window_bits)};
  }
  if (o.deflate.level < 1 || o.deflate.level > 9) {
    return Problem{"deflate.level", "WEBSOCKET_DEFLATE_LEVEL",
                   "must be in 1..9, got " + std::to_string(o.deflate.level)};
  }
  if (o.tls.cert_file.empty() != o.tls.key_file.empty()) {
    const bool cert_missing = o.tls.cert_file.empty();
    return Problem{cert_missing ? "tls.cert_file" : "tls.key_file",
                   cert_missing ? "WEBSOCKET_TLS_CERT" : "WEBSOCKET_TLS_KEY",
                   "TLS needs both a certificate and a key; only the other one is set"};
  }
  return std::nullopt;
}

std::optional<Problem> check_lists(const ServerOptions& o) {
  for (const auto& protocol : o.subprotocols) {
    if (!is_token(protocol)) {
      return Problem{"subprotocols", "WEBSOCKET_SUBPROTOCOLS",
                     "\"" + protocol + "\" is not a valid protocol token"};
    }
  }
  for (const auto& origin : o.allowed_origins) {
    if (origin.empty()) {
      return Problem{"allowed_origins", "WEBSOCKET_ALLOWED_ORIGINS", "contains an empty origin"};
    }
  }
  return std::nullopt;
}

std::optional<Problem> find_problem(const ServerOptions& o) {
  if (auto p = check_limits(o)) return p;
  if (auto p = check_timers(o)) return p;
  if (auto p = check_deflate_and_tls(o)) return p;
  if (auto p = check_drain(o)) return p;
  return check_lists(o);
}

DeflateOptions deflate_from_config(const ebb::config::Config& cfg) {
  DeflateOptions d;
  d.enabled = cfg.get_bool("WEBSOCKET_DEFLATE", d.enabled);
  d.server_max_window_bits = static_cast<int>(
      cfg.get_int("WEBSOCKET_DEFLATE_SERVER_WINDOW_BITS", d.server_max_window_bits, 9, 15));
  d.client_max_window_bits = static_cast<int>(
      cfg.get_int("WEBSOCKET_DEFLATE_CLIENT_WINDOW_BITS", d.client_max_window_bits, 9, 15));
  d.server_no_context_takeover =
      cfg.get_bool("WEBSOCKET_DEFLATE_SERVER_NO_CONTEXT_TAKEOVER", d.server_no_context_takeover);
  d.client_no_context_takeover =
      cfg.get_bool("WEBSOCKET_DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER", d.client_no_context_takeover);
  d.level = static_cast<int>(cfg.get_int("WEBSOCKET_DEFLATE_LEVEL", d.level, 1, 9));
  d.min_size = cfg.get_size("WEBSOCKET_DEFLATE_MIN_SIZE", d.min_size);
  return d;
}

}  // namespace

ServerOptions ServerOptions::from_config(const ebb::config::Config& cfg) {
  ServerOptions o;
  o.host = cfg.get_string("WEBSOCKET_HOST", o.host);
  o.port = cfg.get_port("WEBSOCKET_PORT", o.port);
  o.io_threads = static_cast<unsigned>(cfg.get_int("WEBSOCKET_IO_THREADS", o.io_threads, 0, 1024));
  if (o.io_threads == 0) o.io_threads = std::max(1u, std::thread::hardware_concurrency());
  o.path = cfg.get_string("WEBSOCKET_PATH", o.path);
  o.max_message_size = cfg.get_size("WEBSOCKET_MAX_MESSAGE_SIZE", o.max_message_size);
  o.max_handshake_size = cfg.get_size("WEBSOCKET_MAX_HANDSHAKE_SIZE", o.max_handshake_size);
  o.handshake_timeout = cfg.get_duration("WEBSOCKET_HANDSHAKE_TIMEOUT_MS", o.handshake_timeout);
  o.idle_timeout = cfg.get_duration("WEBSOCKET_IDLE_TIMEOUT_MS", o.idle_timeout);
  o.ping_interval = cfg.get_duration("WEBSOCKET_PING_INTERVAL_MS", o.ping_interval);
  o.pong_timeout = cfg.get_duration("WEBSOCKET_PONG_TIMEOUT_MS", o.pong_timeout);
  o.close_wait = cfg.get_duration("WEBSOCKET_CLOSE_WAIT_MS", o.close_wait);
  o.half_close_delay = cfg.get_duration("WEBSOCKET_HALF_CLOSE_DELAY_MS", o.half_close_delay);
  o.shutdown_timeout = ebb::config::detail::shutdown_timeout_from(cfg, o.shutdown_timeout);
  o.shutdown_notice = cfg.get_string("WEBSOCKET_SHUTDOWN_NOTICE", o.shutdown_notice);
  o.shutdown_reconnect = cfg.get_duration("WEBSOCKET_SHUTDOWN_RECONNECT_MS", o.shutdown_reconnect);
  o.shutdown_spread = cfg.get_duration("WEBSOCKET_SHUTDOWN_SPREAD_MS", o.shutdown_spread);
  o.max_send_queue = cfg.get_size("WEBSOCKET_MAX_SEND_QUEUE", o.max_send_queue);
  o.slow_consumer_close_code = static_cast<std::uint16_t>(
      cfg.get_int("WEBSOCKET_SLOW_CONSUMER_CLOSE_CODE", o.slow_consumer_close_code, 0, 65535));
  o.allowed_origins = cfg.get_list("WEBSOCKET_ALLOWED_ORIGINS");
  o.subprotocols = cfg.get_list("WEBSOCKET_SUBPROTOCOLS");
  o.deflate = deflate_from_config(cfg);
  o.tls.cert_file = cfg.get_string("WEBSOCKET_TLS_CERT");
  o.tls.key_file = cfg.get_string("WEBSOCKET_TLS_KEY");
  if (const auto problem = find_problem(o))
    throw ebb::config::ConfigError(problem->key, problem->message);
  return o;
}

void ServerOptions::validate() const {
  if (const auto problem = find_problem(*this)) {
    throw std::invalid_argument(std::string(problem->field) + ": " + problem->message);
  }
}

}  // namespace ebb::websocket
