// ws_client: a command-line WebSocket client on ebb::websocket::Client.
//
//   ws_client ws://127.0.0.1:9001/ [--send TEXT]... [--reconnect]
//
// Prints one line per event on stdout: "open", "message <text>",
// "binary <n bytes>", "close <code> <reason>", "error <what>". Without
// --reconnect it exits after the first close (status 0 if the close code was
// 1000 or 1001, 2 otherwise). SIGINT/SIGTERM close it with 1000.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ebb.hpp>
#include <future>
#include <mutex>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ws_client URL [--send TEXT]... [--reconnect]\n");
    return 1;
  }
  ebb::websocket::ClientOptions options;
  options.url = argv[1];
  options.reconnect = false;
  std::vector<std::string> to_send;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reconnect"))
      options.reconnect = true;
    else if (!std::strcmp(argv[i], "--send") && i + 1 < argc)
      to_send.push_back(argv[++i]);
    else {
      std::fprintf(stderr, "ws_client: unknown argument %s\n", argv[i]);
      return 1;
    }
  }
  ebb::lifecycle::Shutdown shutdown;
  shutdown.capture_signals();
  try {
    std::mutex out;
    auto say = [&](const std::string& line) {
      std::lock_guard l(out);
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    };
    std::promise<std::uint16_t> closed;
    ebb::websocket::Client client(options);
    client.on_open([&](bool reconnected) { say(reconnected ? "open (reconnected)" : "open"); });
    client.on_message([&](std::string_view m, bool binary) {
      say(binary ? "binary " + std::to_string(m.size()) + " bytes" : "message " + std::string(m));
    });
    client.on_error(
        [&](std::error_code, std::string_view what) { say("error " + std::string(what)); });
    bool done = false;
    client.on_close([&](std::uint16_t code, std::string_view reason) {
      say("close " + std::to_string(code) + " " + std::string(reason));
      if ((!options.reconnect || shutdown.is_shutdown()) && !done) {
        done = true;
        closed.set_value(code);
      }
    });
    shutdown.on_trigger([&] { client.close(1000, "bye"); });
    for (auto& m : to_send) client.send_text(m);
    client.connect();
    auto code = closed.get_future().get();
    client.stop();
    return code == 1000 || code == 1001 ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ws_client: %s\n", e.what());
    return 1;
  }
}
