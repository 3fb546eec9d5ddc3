// echo_server: echoes every text and binary message back to its sender.
// The standard target for conformance and load tests.
//
//   WEBSOCKET_PORT=9001 ./echo_server        (settings also from ./.env)
//
// SIGTERM or SIGINT stops it: every client gets Close 1001, then it exits 0.
#include <csignal>
#include <cstdio>
#include <ebb.hpp>

int main() {
  // Block the stop signals before any thread starts, so only sigwait() below
  // sees them (no work inside a signal handler).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    ebb::config::Config cfg{".env"};
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
    ebb::websocket::Server ws{cfg, executor};
    ws.on_message([](ebb::websocket::Session& s, std::string_view text) { s.send_text(text); });
    ws.on_binary([](ebb::websocket::Session& s, std::string_view data) { s.send_binary(data); });
    ws.start();
    std::printf("echo_server listening on port %u\n", ws.port());
    std::fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    ws.stop();
    executor->stop();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
