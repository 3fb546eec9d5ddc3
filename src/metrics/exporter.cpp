#include "ebb/metrics/exporter.hpp"

#include "ebb/http/app.hpp"
#include "ebb/metrics/websocket_metrics.hpp"

namespace ebb::websocket {

void run_metrics_http_exporter(WebSocketMetrics& metrics, const std::string& host,
                               std::uint16_t port, std::stop_token stop) {
  ebb::AppOptions options;
  options.host = host;
  options.health_ready_path.clear();
  options.shutdown_timeout = std::chrono::seconds(5);
  ebb::App app{options};
  app.metrics("/metrics", metrics);
  if (!stop.stop_possible()) return app.run(port);
  std::stop_callback on_stop(stop, [&app] { app.stop(); });
  app.listen(port);
  app.wait();
}

}  // namespace ebb::websocket
