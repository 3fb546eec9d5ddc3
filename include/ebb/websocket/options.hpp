#pragma once
// Every knob of the WebSocket server, with defaults, and how each is read
// from ebb::config::Config. Unknown or malformed values are start-up errors.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ebb::config {
class Config;
}

namespace ebb::websocket {

/// permessage-deflate (RFC 7692) settings. Off unless enabled.
struct DeflateOptions {
  bool enabled = false;                     ///< WEBSOCKET_DEFLATE
  int server_max_window_bits = 15;          ///< WEBSOCKET_DEFLATE_SERVER_WINDOW_BITS (9..15)
  int client_max_window_bits = 15;          ///< WEBSOCKET_DEFLATE_CLIENT_WINDOW_BITS (9..15)
  bool server_no_context_takeover = false;  ///< WEBSOCKET_DEFLATE_SERVER_NO_CONTEXT_TAKEOVER
  bool client_no_context_takeover = false;  ///< WEBSOCKET_DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER
  int level = 6;                            ///< zlib level 1..9 (WEBSOCKET_DEFLATE_LEVEL)
  std::size_t min_size = 64;  ///< smaller messages go uncompressed (WEBSOCKET_DEFLATE_MIN_SIZE)
};

/// TLS (wss://). Enabled when both files are set.
struct TlsOptions {
  std::string cert_file;  ///< WEBSOCKET_TLS_CERT (PEM chain)
  std::string key_file;   ///< WEBSOCKET_TLS_KEY (PEM)
  bool enabled() const { return !cert_file.empty() && !key_file.empty(); }
};

struct ServerOptions {
  std::string host = "0.0.0.0";  ///< WEBSOCKET_HOST
  std::uint16_t port = 9001;     ///< WEBSOCKET_PORT (0 = any free port)
  /// WEBSOCKET_IO_THREADS, 0..1024; 0 = std::thread::hardware_concurrency()
  /// (from_config resolves it; a server given 0 directly must do the same).
  unsigned io_threads = 1;
  std::string path = "";  ///< WEBSOCKET_PATH; empty accepts any path
  std::size_t max_message_size = 16u
                                 << 20;   ///< WEBSOCKET_MAX_MESSAGE_SIZE, bytes, also after inflate
  std::size_t max_handshake_size = 8192;  ///< WEBSOCKET_MAX_HANDSHAKE_SIZE, bytes of request head
  std::chrono::milliseconds handshake_timeout{5000};  ///< WEBSOCKET_HANDSHAKE_TIMEOUT_MS
  std::chrono::milliseconds idle_timeout{0};          ///< WEBSOCKET_IDLE_TIMEOUT_MS (0 = off)
  std::chrono::milliseconds ping_interval{
      30000};                                     ///< WEBSOCKET_PING_INTERVAL_MS (0 = no heartbeat)
  std::chrono::milliseconds pong_timeout{10000};  ///< WEBSOCKET_PONG_TIMEOUT_MS
  std::chrono::milliseconds close_wait{
      1000};  ///< WEBSOCKET_CLOSE_WAIT_MS: wait for the peer's Close
  /// WEBSOCKET_HALF_CLOSE_DELAY_MS: when our Close is out and unanswered, the
  /// write side is shut (FIN) after this long. 0: at once, in the Close's own
  /// TCP segment (cheapest; the peer can finish on one read). Behind a proxy
  /// that ends the whole tunnel on the server's FIN (nginx), a delay lets
  /// frames the client sent meanwhile still arrive. Checked every 100 ms.
  std::chrono::milliseconds half_close_delay{0};
  /// Bytes that may wait in one session's send queue. Past it the message is
  /// dropped and the session is closed with `slow_consumer_close_code`
  /// (policy: a slow consumer is disconnected, never buffered without bound).
  std::size_t max_send_queue = 16u << 20;  ///< WEBSOCKET_MAX_SEND_QUEUE
  std::uint16_t slow_consumer_close_code =
      1008;                                  ///< WEBSOCKET_SLOW_CONSUMER_CLOSE_CODE (1008|1013)
  std::vector<std::string> allowed_origins;  ///< WEBSOCKET_ALLOWED_ORIGINS, comma list; empty = any
  std::vector<std::string>
      subprotocols;  ///< WEBSOCKET_SUBPROTOCOLS, comma list, server preference order
  DeflateOptions deflate;
  TlsOptions tls;

  // ---- the drain (Server::stop_async); see docs/LIFECYCLE.md ----
  /// Deadline for the whole drain; sessions left then are forced.
  /// SHUTDOWN_TIMEOUT: "30s", "1500ms", "2m"; a plain number means seconds.
  std::chrono::milliseconds shutdown_timeout{30000};
  /// Text message sent to every session before its Close 1001, e.g.
  /// {"type":"server.shutdown","payload":{"reconnect_ms":{reconnect_ms}}}.
  /// "{reconnect_ms}" is replaced by the session's own reconnect delay.
  /// Empty: no notice. WEBSOCKET_SHUTDOWN_NOTICE
  std::string shutdown_notice;
  /// Base reconnect delay put in the notice. WEBSOCKET_SHUTDOWN_RECONNECT_MS
  std::chrono::milliseconds shutdown_reconnect{1000};
  /// Reconnect-storm control: spread the Close frames evenly over this
  /// window (in random session order), and add each session's own offset to
  /// the reconnect delay of its notice. 0: close everyone at once.
  /// WEBSOCKET_SHUTDOWN_SPREAD_MS
  std::chrono::milliseconds shutdown_spread{0};

  /// Tests: the clock every timeout reads (handshake, idle, heartbeat, close
  /// wait, the spread, the drain deadline and its progress lines). Empty =
  /// std::chrono::steady_clock::now. The loops still wake on real time (the
  /// sweep every 100 ms, the drain tick every second); what they decide uses
  /// this clock, so a test that holds it still sees no timeout fire, and one
  /// that moves it past a deadline sees that deadline act at the next wake-up.
  /// Called on the I/O threads; must be thread-safe and never go backwards.
  std::function<std::chrono::steady_clock::time_point()> clock;

  /// Reads every key above from `cfg` (sizes accept k/M/G units, durations
  /// ms/s/m/h with plain numbers meaning ms), then validates; throws
  /// ebb::config::ConfigError naming the key on a bad value or an
  /// inconsistent combination.
  static ServerOptions from_config(const ebb::config::Config& cfg);
  /// Throws std::invalid_argument, message starting with the field name, on
  /// an impossible value: empty host; io_threads > 1024; path not starting
  /// with '/'; max_message_size, max_handshake_size or max_send_queue 0;
  /// handshake_timeout <= 0 or any negative duration; ping_interval > 0 with
  /// pong_timeout 0; slow_consumer_close_code not 1008/1013; window bits
  /// outside 9..15 (RFC 7692 allows 8, zlib raw deflate needs >= 9); deflate
  /// level outside 1..9; only one of the TLS cert/key; a subprotocol that is
  /// not an HTTP token; an empty origin.
  void validate() const;
};

}  // namespace ebb::websocket
