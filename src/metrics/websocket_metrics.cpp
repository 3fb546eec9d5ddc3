#include "ebb/metrics/websocket_metrics.hpp"

#include <memory>
#include <utility>

namespace ebb::websocket {
namespace {

using metrics::DenseCounterFamily;
using metrics::LabelValues;
using Zeros = DenseCounterFamily::Zeros;

// Request methods with their own label value; anything else is "other" (last).
constexpr std::array<std::string_view, 9> kHttpMethods{
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"};

std::vector<std::string> strings(std::span<const std::string_view> views) {
  return {views.begin(), views.end()};
}

std::size_t http_method_index(std::string_view method) noexcept {
  for (std::size_t i = 0; i < kHttpMethods.size(); ++i) {
    if (kHttpMethods[i] == method) return i;
  }
  return kHttpMethods.size();
}

static_assert(WebSocketMetrics::error_kinds.size() ==
              static_cast<std::size_t>(WebSocketMetrics::ErrorKind::other) + 1);

LabelValues http_status_label() { return LabelValues::integer_range("status", 100, 599); }

LabelValues message_kind_label() { return LabelValues("kind", {"text", "binary"}); }

DenseCounterFamily& dense(metrics::Registry& registry, std::string name, std::string help,
                          std::vector<LabelValues> labels, Zeros zeros) {
  return registry.add(std::make_unique<DenseCounterFamily>(std::move(name), std::move(help),
                                                           std::move(labels), zeros));
}

metrics::OneHotGauge& one_hot(metrics::Registry& registry, std::string name, std::string help,
                              std::string label, std::span<const std::string_view> states) {
  return registry.add(std::make_unique<metrics::OneHotGauge>(std::move(name), std::move(help),
                                                             std::move(label), strings(states)));
}

}  // namespace

const std::vector<double>& WebSocketMetrics::duration_buckets() {
  static const std::vector<double> buckets{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return buckets;
}

WebSocketMetrics::WebSocketMetrics()
    : connections_active(
          registry_.gauge("ebb_websocket_connections_active", "WebSocket sessions open now.")),
      connections_total(registry_.counter("ebb_websocket_connections_total",
                                          "WebSocket sessions opened (upgrade completed).")),
      handshakes_failed(dense(registry_, "ebb_websocket_handshakes_failed_total",
                              "WebSocket upgrade requests refused, by HTTP status sent.",
                              {http_status_label()}, Zeros::skip)),
      messages_received(dense(registry_, "ebb_websocket_messages_received_total",
                              "Complete WebSocket messages received, by kind.",
                              {message_kind_label()}, Zeros::render)),
      messages_sent(dense(registry_, "ebb_websocket_messages_sent_total",
                          "WebSocket messages accepted for sending, by kind.",
                          {message_kind_label()}, Zeros::render)),
      received_bytes(registry_.counter("ebb_websocket_received_bytes_total",
                                       "Payload bytes of WebSocket messages received.")),
      sent_bytes(registry_.counter("ebb_websocket_sent_bytes_total",
                                   "Payload bytes of WebSocket messages accepted for sending.")),
      closes(dense(registry_, "ebb_websocket_closes_total",
                   "WebSocket sessions ended, by the close code that ended them.",
                   {LabelValues::integer_range("code", 1000, 4999)}, Zeros::skip)),
      errors(dense(registry_, "ebb_errors_total", "Failures, by kind.",
                   {LabelValues("kind", strings(error_kinds))}, Zeros::render)),
      slow_consumer_closes(
          registry_.counter("ebb_websocket_slow_consumer_closes_total",
                            "WebSocket sessions closed by the slow-consumer policy.")),
      longpoll_sessions_active(
          registry_.gauge("ebb_longpoll_sessions_active", "Long-polling sessions alive now.")),
      longpoll_sessions_opened(
          registry_.counter("ebb_longpoll_sessions_opened_total", "Long-polling sessions opened.")),
      longpoll_messages_buffered(
          registry_.counter("ebb_longpoll_messages_buffered_total",
                            "Messages queued for a long-polling session's next poll.")),
      longpoll_messages_dropped(
          registry_.counter("ebb_longpoll_messages_dropped_total",
                            "Long-poll messages no poll ever carried: buffer full, or the session "
                            "left (expired, closed, drained).")),
      rooms(registry_.gauge("ebb_rooms", "Rooms that exist now.")),
      lifecycle_state(one_hot(registry_, "ebb_lifecycle_state",
                              "Server lifecycle state: 1 for the current one.", "state",
                              lifecycle_states)),
      drain_duration_seconds(registry_.gauge(
          "ebb_drain_duration_seconds",
          "Duration of the last drain, from stop request to the last session's end.")),
      drain_sessions_forced(
          registry_.counter("ebb_drain_sessions_forced_total", "Sessions cut during a drain.")),
      drain_sessions_closed_cleanly(
          registry_.counter("ebb_drain_sessions_closed_cleanly_total",
                            "Sessions that completed the close handshake during a drain.")),
      store_write_duration(registry_.histogram("ebb_store_write_duration_seconds",
                                               "Latency of message store writes.",
                                               duration_buckets())),
      http_requests(dense(registry_, "ebb_http_requests_total",
                          "HTTP responses sent, by method and status.",
                          {LabelValues("method",
                                       [] {
                                         std::vector<std::string> v = strings(kHttpMethods);
                                         v.emplace_back("other");
                                         return v;
                                       }()),
                           http_status_label()},
                          Zeros::skip)),
      http_request_duration(registry_.histogram(
          "ebb_http_request_duration_seconds",
          "HTTP request latency, from first byte read to last byte written.", duration_buckets())),
      http_requests_in_flight(registry_.gauge("ebb_http_requests_in_flight",
                                              "HTTP requests read but not yet answered.")) {}

void WebSocketMetrics::count_handshake_failure(int http_status) noexcept {
  handshakes_failed.at({handshakes_failed.labels()[0].index_of(http_status)}).inc();
}

void WebSocketMetrics::count_message_received(MessageKind kind,
                                              std::uint64_t payload_bytes) noexcept {
  messages_received.at({static_cast<std::size_t>(kind)}).inc();
  received_bytes.inc(payload_bytes);
}

void WebSocketMetrics::count_message_sent(MessageKind kind, std::uint64_t payload_bytes) noexcept {
  messages_sent.at({static_cast<std::size_t>(kind)}).inc();
  sent_bytes.inc(payload_bytes);
}

void WebSocketMetrics::count_close(int code) noexcept {
  closes.at({closes.labels()[0].index_of(code)}).inc();
}

void WebSocketMetrics::count_error(ErrorKind kind) noexcept {
  errors.at({static_cast<std::size_t>(kind)}).inc();
}

bool WebSocketMetrics::set_lifecycle_state(std::string_view state) noexcept {
  for (std::size_t i = 0; i < lifecycle_states.size(); ++i) {
    if (lifecycle_states[i] == state) {
      lifecycle_state.set(i);
      return true;
    }
  }
  return false;
}

void WebSocketMetrics::count_http_request(std::string_view method, int status) noexcept {
  http_requests.at({http_method_index(method), http_requests.labels()[1].index_of(status)}).inc();
}

}  // namespace ebb::websocket
