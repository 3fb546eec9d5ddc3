#pragma once
// ebb::websocket::WebSocketMetrics: every metric the server, the long-polling
// bridge, the message store and the HTTP app report, in one registry, served
// as Prometheus text at `/metrics`.
//
//   ebb::websocket::WebSocketMetrics metrics;
//   metrics.connections_active.inc();                  // members are updated directly
//   metrics.count_message_received(WebSocketMetrics::MessageKind::text, 42);
//   metrics.count_close(1001);
//   metrics.set_lifecycle_state("draining");           // to_string(LifecycleState)
//   std::string body = metrics.render();               // Content-Type: content_type
//
// Threads: every member (the public metric references included) may be used
// from any thread at once. Every update is lock-free and allocation-free
// (relaxed atomics, see ebb/metrics/prometheus.hpp); render() locks only
// against registration.
//
// Lifetime: not copyable or movable; the public references and registry()
// stay valid for the object's lifetime. It must outlive every component that
// updates it (the server, bridge and store take a pointer to it).
//
// Units: durations in seconds, sizes in bytes. Every name starts with `ebb_`.
// Label values come from fixed sets (cardinality is bounded by construction):
// integer labels outside their range render as "other".
//
// This header depends on nothing from the server: the lifecycle state is set
// by name, so the server passes to_string(LifecycleState).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ebb/metrics/prometheus.hpp"

namespace ebb::websocket {

class WebSocketMetrics {
 private:
  // First: the public references below point into it.
  metrics::Registry registry_;

 public:
  /// Label `kind` of the message counters.
  enum class MessageKind : std::uint8_t { text, binary };
  /// Label `kind` of ebb_errors_total. `other` is for the failure that has no
  /// better kind (a `catch (...)` logs a line and counts `other`).
  enum class ErrorKind : std::uint8_t {
    protocol,           ///< peer broke RFC 6455 (bad frame, opcode, mask, control frame size)
    utf8,               ///< invalid UTF-8 in a text message or close reason
    too_big,            ///< frame or message over the configured size limit
    bad_json,           ///< an application message that should be JSON is not
    slow_consumer,      ///< a send hit the send-queue cap (the policy acted)
    handler_exception,  ///< a user callback threw
    io,                 ///< socket read/write/accept failed (not a clean EOF)
    timeout,            ///< handshake, idle, heartbeat or close-wait timer expired
    store,              ///< the message store failed a read or write
    other,
  };
  static constexpr std::array<std::string_view, 10> error_kinds{
      "protocol",          "utf8", "too_big", "bad_json", "slow_consumer",
      "handler_exception", "io",   "timeout", "store",    "other"};
  /// The values of `ebb_lifecycle_state{state=...}`, in order; they are the
  /// names to_string(ebb::websocket::LifecycleState) returns.
  static constexpr std::array<std::string_view, 5> lifecycle_states{"starting", "ready", "draining",
                                                                    "closing", "stopped"};
  /// Bounds of the duration histograms, in seconds: 100 µs to 5 s.
  static const std::vector<double>& duration_buckets();

  static constexpr std::string_view content_type = metrics::Registry::content_type;

  WebSocketMetrics();
  WebSocketMetrics(const WebSocketMetrics&) = delete;
  WebSocketMetrics& operator=(const WebSocketMetrics&) = delete;

  // ---- WebSocket connections --------------------------------------------
  /// ebb_websocket_connections_active (gauge): sessions open now (upgrade
  /// done, session not yet ended). inc on open, dec on end.
  metrics::Gauge& connections_active;
  /// ebb_websocket_connections_total (counter): sessions ever opened.
  metrics::Counter& connections_total;
  /// ebb_websocket_handshakes_failed_total{status} (counter): upgrade
  /// requests answered with an HTTP error instead of 101; status 100..599.
  metrics::DenseCounterFamily& handshakes_failed;
  void count_handshake_failure(int http_status) noexcept;

  // ---- messages ---------------------------------------------------------
  /// ebb_websocket_messages_received_total{kind} / _sent_total{kind}
  /// (counters): complete messages (not frames), text or binary.
  metrics::DenseCounterFamily& messages_received;
  metrics::DenseCounterFamily& messages_sent;
  /// ebb_websocket_received_bytes_total / ebb_websocket_sent_bytes_total
  /// (counters): application payload bytes of those messages (after
  /// inflating / before deflating; frame headers not included).
  metrics::Counter& received_bytes;
  metrics::Counter& sent_bytes;
  /// One message and its payload bytes on both counters.
  void count_message_received(MessageKind kind, std::uint64_t payload_bytes) noexcept;
  /// Counted when the message is accepted for sending (sent or buffered).
  void count_message_sent(MessageKind kind, std::uint64_t payload_bytes) noexcept;

  // ---- endings and errors -----------------------------------------------
  /// ebb_websocket_closes_total{code} (counter): sessions ended, by the close
  /// code that ended them (the peer's, or ours when we closed first; 1006
  /// when no Close frame was exchanged). 1000..4999, else "other". Only codes
  /// seen so far are rendered.
  metrics::DenseCounterFamily& closes;
  void count_close(int code) noexcept;
  /// ebb_errors_total{kind} (counter): failures by ErrorKind; all kinds are
  /// always rendered.
  metrics::DenseCounterFamily& errors;
  void count_error(ErrorKind kind) noexcept;
  /// ebb_websocket_slow_consumer_closes_total (counter): sessions closed by
  /// the slow-consumer policy (a subset of the closes above).
  metrics::Counter& slow_consumer_closes;

  // ---- long polling -----------------------------------------------------
  /// ebb_longpoll_sessions_active (gauge): long-polling sessions alive now.
  metrics::Gauge& longpoll_sessions_active;
  /// ebb_longpoll_sessions_opened_total (counter).
  metrics::Counter& longpoll_sessions_opened;
  /// ebb_longpoll_messages_buffered_total (counter): messages queued into a
  /// session's buffer for its next poll.
  metrics::Counter& longpoll_messages_buffered;
  /// ebb_longpoll_messages_dropped_total (counter): messages no poll ever
  /// carried: the buffer was full, or the session left (expired, closed,
  /// drained) with them unpolled.
  metrics::Counter& longpoll_messages_dropped;

  // ---- rooms ------------------------------------------------------------
  /// ebb_rooms (gauge): rooms that exist now.
  metrics::Gauge& rooms;

  // ---- lifecycle and drain ----------------------------------------------
  /// ebb_lifecycle_state{state} (gauge): 1 for the current state, 0 for the
  /// others (one atomic: a scrape never sees two). Starts at "starting".
  metrics::OneHotGauge& lifecycle_state;
  /// Sets the state by name (one of lifecycle_states). Returns false and
  /// changes nothing for any other name.
  bool set_lifecycle_state(std::string_view state) noexcept;
  /// ebb_drain_duration_seconds (gauge): how long the last drain took, from
  /// the stop request to the last session's end; 0 before any drain.
  metrics::Gauge& drain_duration_seconds;
  /// ebb_drain_sessions_forced_total (counter): sessions cut during a drain
  /// (close-wait timeout, drain deadline, force).
  metrics::Counter& drain_sessions_forced;
  /// ebb_drain_sessions_closed_cleanly_total (counter): sessions that
  /// finished the close handshake during a drain.
  metrics::Counter& drain_sessions_closed_cleanly;

  // ---- message store ----------------------------------------------------
  /// ebb_store_write_duration_seconds (histogram, duration_buckets()): one
  /// observation per store write (append), successful or not.
  metrics::Histogram& store_write_duration;

  // ---- HTTP -------------------------------------------------------------
  /// ebb_http_requests_total{method,status} (counter): responses sent.
  /// method: GET HEAD POST PUT DELETE PATCH OPTIONS CONNECT TRACE, else
  /// "other"; status 100..599, else "other". Only pairs seen are rendered.
  metrics::DenseCounterFamily& http_requests;
  void count_http_request(std::string_view method, int status) noexcept;
  /// ebb_http_request_duration_seconds (histogram, duration_buckets()): from
  /// the request's first byte read to its response's last byte written.
  metrics::Histogram& http_request_duration;
  /// ebb_http_requests_in_flight (gauge): requests read but not yet answered.
  metrics::Gauge& http_requests_in_flight;

  /// The text exposition of every metric above, plus any the application
  /// added to registry().
  std::string render() const { return registry_.render(); }
  /// To register application metrics that render alongside these.
  metrics::Registry& registry() noexcept { return registry_; }
};

}  // namespace ebb::websocket
