// typed_messages: a JSON protocol of typed envelopes, {"type": ..., "payload": {...}}.
//
//   WEBSOCKET_PORT=9001 ./typed_messages
//   client → {"type":"chat.send","payload":{"room":"lobby","text":"hi"}}
//   server → {"type":"chat.sent","payload":{"room":"lobby","text":"hi","seq":1}}
//   client → {"type":"nope"}       server → {"type":"error","payload":{...}}
//   client → not json              server → {"type":"error","payload":{"code":"bad_json",...}}
//
// With on_typed_message set, ebb parses each text message once and checks
// the envelope shape; the handler sees the type and the payload object and
// only validates the fields of its own types. A malformed message reaches
// on_error and the session stays open: one bad message from a client is
// answered, not punished with a disconnect.
//
// SIGTERM/SIGINT drain (Close 1001 to everyone); a second signal forces.
// Exit status: 0 clean drain, 3 forced, 1 start-up error.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ebb.hpp>
#include <string>

namespace {

using ebb::websocket::Session;

void send_typed(Session& s, std::string_view type, ebb::json::kvs payload) {
  ebb::json::kvs envelope;
  envelope["type"] = type;
  envelope["payload"] = std::move(payload);
  s.send_text(ebb::json::serialize(envelope));
}

void send_error(Session& s, std::string_view code, std::string_view message) {
  send_typed(s, "error", {{"code", code}, {"message", message}});
}

// The string field `key` of `payload`, or nullptr when absent or not a string.
const ebb::json::value* string_field(const ebb::json::kvs& payload, std::string_view key) {
  const auto* v = payload.if_contains(key);
  return v != nullptr && v->is_string() ? v : nullptr;
}

}  // namespace

int main() {
  try {
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGINT, SIG_IGN);
    ebb::lifecycle::Shutdown shutdown;
    shutdown.capture_signals();

    ebb::config::Config cfg{".env"};
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
    ebb::websocket::Server ws{cfg, executor};
    // Sessions live on several I/O threads: a shared counter must be atomic.
    std::atomic<std::uint64_t> seq{0};

    ws.on_typed_message([&seq](Session& s, const std::string& type, const ebb::json::kvs& payload) {
      if (type == "chat.send") {
        const auto* room = string_field(payload, "room");
        const auto* text = string_field(payload, "text");
        if (room == nullptr || text == nullptr)
          return send_error(s, "bad_payload", "chat.send needs string fields room and text");
        send_typed(s, "chat.sent", {{"room", *room}, {"text", *text}, {"seq", ++seq}});
      } else if (type == "ping") {
        send_typed(s, "pong", payload);
      } else {
        send_error(s, "unknown_type", "unknown type \"" + type + "\"");
      }
    });
    // Also called for transport errors; only a bad message is worth answering.
    ws.on_error([](Session& s, std::error_code ec, std::string_view what) {
      if (ec == ebb::websocket::error::bad_json) send_error(s, "bad_json", what);
    });
    ws.start();
    auto on_trigger = shutdown.on_trigger([&] { ws.stop_async(); });
    auto on_force = shutdown.on_force([&] { ws.force_async(); });
    std::printf("typed_messages listening on port %u\n", ws.port());
    std::fflush(stdout);

    shutdown.wait_for_shutdown();
    ws.stop();
    shutdown.remove_callback(on_trigger);
    shutdown.remove_callback(on_force);
    executor->stop();
    return ws.drain_report().clean() ? 0 : 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "typed_messages: %s\n", e.what());
    return 1;
  }
}
