// resume_client: an ebb::websocket::Client subscribed to one room with the
// room protocol, for the process-level resume test (resume_test.mjs).
//
//   ./resume_client ws://127.0.0.1:8080/ws general
//
// stdout, flushed per line: "<seq> <id>" for every room.message delivered
// (the client drops duplicates itself; "-" when the message has no id),
// "# open <0|1>" whenever a connection opens (1 = a reconnect) and
// "# joined <last_seq> <replayed>" for every room.joined (the replay is
// complete). It reconnects forever, the first retry after
// RECONNECT_INITIAL_MS (default 50, no jitter), and resumes by itself; it
// exits 0 on SIGTERM, SIGINT or when its stdin reaches EOF (so it never
// outlives the test), 2 on bad arguments.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ebb.hpp>
#include <thread>

namespace {
void print_joined(std::string_view message) {
  boost::system::error_code ec;
  auto v = ebb::json::parse(message, ec);
  if (ec || !v.is_object()) return;
  const auto* payload = v.as_object().if_contains("payload");
  if (!payload || !payload->is_object()) return;
  const auto& p = payload->as_object();
  const auto* last = p.if_contains("last_seq");
  const auto* replayed = p.if_contains("replayed");
  if (!last || !replayed) return;
  std::printf("# joined %llu %llu\n",
              static_cast<unsigned long long>(last->to_number<std::uint64_t>()),
              static_cast<unsigned long long>(replayed->to_number<std::uint64_t>()));
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ws://host:port/path room\n", argv[0]);
    return 2;
  }
  // Blocked before any thread starts, so every thread inherits the mask and
  // only sigwait below sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    ebb::websocket::ClientOptions options;
    options.url = argv[1];
    const char* initial = std::getenv("RECONNECT_INITIAL_MS");
    options.reconnect_initial = std::chrono::milliseconds(initial ? std::atoi(initial) : 50);
    options.reconnect_max = std::max(options.reconnect_initial, std::chrono::milliseconds(1000));
    options.reconnect_jitter = 0;
    ebb::websocket::Client client{options};
    client.on_open([](bool reconnected) {
      std::printf("# open %d\n", reconnected ? 1 : 0);
      std::fflush(stdout);
    });
    client.on_message([](std::string_view message, bool binary) {
      if (!binary && message.find("\"room.joined\"") != std::string_view::npos)
        print_joined(message);
    });
    client.on_room_message(
        [](const std::string&, std::uint64_t seq, const ebb::json::value&, std::string_view id) {
          std::printf("%llu %.*s\n", static_cast<unsigned long long>(seq),
                      static_cast<int>(id.empty() ? 1 : id.size()), id.empty() ? "-" : id.data());
          std::fflush(stdout);
        });
    client.join_room(argv[2], 0);
    client.connect();

    // stdin EOF ends the process like SIGTERM does.
    std::thread([] {
      char buf[256];
      while (::read(STDIN_FILENO, buf, sizeof buf) > 0) {
      }
      ::kill(::getpid(), SIGTERM);
    }).detach();
    int sig = 0;
    sigwait(&stop_signals, &sig);
    client.stop();
    std::fflush(stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resume_client: %s\n", e.what());
    return 1;
  }
}
