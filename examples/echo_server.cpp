// echo_server: echoes every text and binary message back to its sender.
// The standard target for conformance and load tests.
//
//   WEBSOCKET_PORT=9001 ./echo_server        (settings also from ./.env)
//
// SIGTERM or SIGINT starts the graceful drain: the listener closes, every
// client gets the shutdown notice, then Close 1001; a second signal forces
// what is left. Exit status: 0 when the drain was clean, 3 when sessions
// had to be forced (deadline, close wait or second signal), 1 on a start-up
// error (bad configuration, port in use).
#include <csignal>
#include <cstdio>
#include <ebb.hpp>

int main() {
  try {
    // Signals are captured before any thread starts; the handler only wakes
    // the Shutdown watcher thread, which calls stop_async()/force_async().
    // A signal that arrives after the drain, while the process exits, must
    // not kill it with a signal status: Shutdown restores this SIG_IGN.
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGINT, SIG_IGN);
    ebb::lifecycle::Shutdown shutdown;
    shutdown.capture_signals();

    ebb::config::Config cfg{".env"};
    if (!cfg.has("WEBSOCKET_SHUTDOWN_NOTICE"))
      cfg.set("WEBSOCKET_SHUTDOWN_NOTICE",
              R"({"type":"server.shutdown","payload":{"reconnect_ms":{reconnect_ms}}})");
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
    ebb::websocket::Server ws{cfg, executor};
    ws.on_message([](ebb::websocket::Session& s, std::string_view text) { s.send_text(text); });
    ws.on_binary([](ebb::websocket::Session& s, std::string_view data) { s.send_binary(data); });
    ws.start();
    auto on_trigger = shutdown.on_trigger([&] { ws.stop_async(); });
    auto on_force = shutdown.on_force([&] { ws.force_async(); });
    std::printf("echo_server listening on port %u\n", ws.port());
    std::fflush(stdout);

    shutdown.wait_for_shutdown();
    ws.stop();  // the drain: returns when every session has ended
    shutdown.remove_callback(on_trigger);
    shutdown.remove_callback(on_force);
    executor->stop();
    return ws.drain_report().clean() ? 0 : 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
