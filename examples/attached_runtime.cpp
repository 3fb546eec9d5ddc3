// The brief's minimal program: an HTTP app and a WebSocket server with one
// lifecycle. SIGINT/SIGTERM drain both (HTTP requests finish, every
// WebSocket client gets Close 1001); a second signal forces.
//
//   SERVER_PORT=8080 WEBSOCKET_PORT=9001 ./attached_runtime
//   EBB_WS_ON_APP_PORT=1 ./attached_runtime     # WebSocket at /ws on 8080
//
// Exit status: 0 when both drains were clean, 3 when something was forced.
#include <chrono>
#include <cstdlib>
#include <ebb.hpp>
#include <iostream>
#include <thread>

int main() {
  try {
    ebb::config::Config cfg{".env"};
    ebb::App app{cfg};
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(4);
    ebb::websocket::Server ws{cfg, executor};
    ws.on_message([](ebb::websocket::Session& s, std::string_view text) { s.send_text(text); });
    if (cfg.get_bool("EBB_WS_ON_APP_PORT", false)) app.ws("/ws", ws);

    app.get("/", [](ebb::Request&, ebb::Response& res) {
      res.json({{"status", "ok"}, {"http", true}});
    });
    // Answers after ?ms= milliseconds, from the executor: the kind of
    // request a drain must let finish.
    app.get("/slow", [executor, &app](ebb::Request& req, ebb::Response& res) {
      auto ms = std::strtol(std::string(req.query("ms")).c_str(), nullptr, 10);
      auto pending = res.defer();
      executor->post([pending, ms, &app]() mutable {
        // In slices: once a forced drain has stopped the app nobody waits
        // for the answer, and finalize_shutdown() must not wait for us.
        using namespace std::chrono_literals;
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until && app.state() != ebb::AppState::stopped)
          std::this_thread::sleep_for(5ms);
        pending.response().text("slept " + std::to_string(ms) + " ms\n");
        pending.send();
      });
    });

    ebb::websocket::AttachedRuntime runtime{app, ws, executor};
    app.run();
    runtime.finalize_shutdown();
    bool clean = app.drain_report().clean() && ws.drain_report().clean();
    return clean ? 0 : 3;
  } catch (const std::exception& e) {
    std::cerr << "attached_runtime: " << e.what() << "\n";
    return 1;
  }
}
