#pragma once
// A stand-alone Prometheus endpoint, for programs that serve no HTTP
// themselves (an App can mount the same text with app.metrics("/metrics", m)).
#include <cstdint>
#include <stop_token>
#include <string>

namespace ebb::websocket {

class WebSocketMetrics;

/// Serves GET /metrics (and /health/live) on host:port and blocks until
/// `stop` is requested — or, with the default (never-stopping) token, until
/// SIGINT/SIGTERM. Stopping drains like the App does: in-flight scrapes are
/// answered, then the port closes. Throws std::system_error when the
/// address cannot be bound. `metrics` must outlive the call. Example:
///
///   std::jthread exporter([&](std::stop_token st) {
///     ebb::websocket::run_metrics_http_exporter(metrics, "127.0.0.1", 9100, st);
///   });   // request_stop() + join at scope end
void run_metrics_http_exporter(WebSocketMetrics& metrics, const std::string& host,
                               std::uint16_t port, std::stop_token stop = {});

}  // namespace ebb::websocket
