// manual_stop: a standalone WebSocket server that decides itself when to stop
// — no signals. A test fixture, a batch job or a game loop has this shape.
//
//   WEBSOCKET_PORT=9001 ./manual_stop --run-for-ms 5000
//   ./manual_stop                  # until a client sends "stop"
//
// Echoes text messages; a client sending "stop" ends the server. Either
// way the program runs the full drain (every client gets Close 1001), then
// prints the drain report and exits: 0 clean, 3 forced, 1 start-up error.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ebb.hpp>
#include <optional>
#include <thread>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// --run-for-ms N, or nullopt (run until a client says "stop").
std::optional<std::chrono::milliseconds> parse_run_for(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--run-for-ms") != 0) continue;
    char* end = nullptr;
    long ms = std::strtol(argv[i + 1], &end, 10);
    if (*end != '\0' || ms < 0) throw std::invalid_argument("--run-for-ms: expected milliseconds");
    return std::chrono::milliseconds(ms);
  }
  return std::nullopt;
}

void print_report(const ebb::websocket::DrainReport& r) {
  std::printf(
      "drain %s in %lld ms: %zu sessions at start, %zu closed cleanly, %zu closed by peer, "
      "%zu forced\n",
      r.clean() ? "clean" : "NOT clean", static_cast<long long>(r.duration.count()),
      r.sessions_at_start, r.closed_cleanly, r.closed_by_peer, r.forced);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto run_for = parse_run_for(argc, argv);
    ebb::config::Config cfg{".env"};
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
    ebb::websocket::Server ws{cfg, executor};

    // A callback runs on a server I/O thread, where stop() would wait for
    // itself (it throws there). So the callback only raises the flag; the
    // main thread, which owns the server, does the stopping.
    std::atomic<bool> stop_requested{false};
    ws.on_message([&stop_requested](ebb::websocket::Session& s, std::string_view text) {
      if (text == "stop")
        stop_requested.store(true);
      else
        s.send_text(text);
    });
    ws.start();
    std::printf("manual_stop listening on port %u\n", ws.port());
    std::fflush(stdout);

    // The program's own main loop; a real one would do its work here
    // between checks.
    const auto deadline = run_for ? Clock::now() + *run_for : Clock::time_point::max();
    while (!stop_requested.load() && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
    std::printf("stopping: %s\n", stop_requested.load() ? "a client sent stop" : "time is up");
    std::fflush(stdout);

    ws.stop();  // the whole drain; returns when every session has ended
    executor->stop();
    const auto report = ws.drain_report();
    print_report(report);
    return report.clean() ? 0 : 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manual_stop: %s\n", e.what());
    return 1;
  }
}
