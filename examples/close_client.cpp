// close_client: an operator closes one WebSocket client through HTTP.
//
//   SERVER_PORT=8080 WEBSOCKET_PORT=9001 ./close_client
//   curl localhost:8080/sessions                 → {"sessions":[{"id":1,"remote":"..."}]}
//   curl -X POST localhost:8080/sessions/1/close → 202; client 1 gets Close 1000
//                                                  "closed by operator"
//
// Each WebSocket client is told its id on open ("session <id>") and echoed.
// The HTTP app and the WebSocket server share one lifecycle (AttachedRuntime):
// SIGTERM/SIGINT drain both, a second signal forces both.
// Exit status: 0 clean drain, 3 forced, 1 start-up error.
#include <charconv>
#include <cstdio>
#include <ebb.hpp>
#include <map>
#include <mutex>

namespace {

using ebb::websocket::Session;
using ebb::websocket::SessionPtr;

// Open sessions by id. on_open/on_close run on WebSocket I/O threads and the
// routes on HTTP I/O threads, hence the mutex. The entries are weak: the
// server owns its sessions, and a registry must not keep a closed one alive.
class SessionRegistry {
 public:
  void add(Session& s) {
    std::lock_guard lock(mutex_);
    sessions_[s.id()] = s.weak_from_this();
  }
  void remove(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
  }
  // Null when unknown or already gone.
  SessionPtr find(std::uint64_t id) const {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.lock();
  }
  ebb::json::value list() const {
    ebb::json::value out;
    auto& items = out.emplace_array();
    std::lock_guard lock(mutex_);
    for (const auto& [id, weak] : sessions_)
      if (auto s = weak.lock()) items.push_back({{"id", id}, {"remote", s->remote_endpoint()}});
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions_;
};

void add_routes(ebb::App& app, SessionRegistry& registry) {
  app.get("/sessions", [&registry](ebb::Request&, ebb::Response& res) {
    res.json({{"sessions", registry.list()}});
  });
  app.post("/sessions/:id/close", [&registry](ebb::Request& req, ebb::Response& res) {
    auto text = req.param("id");
    std::uint64_t id = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec != std::errc{} || end != text.data() + text.size()) {
      res.status(400).json({{"error", "session id must be a number"}});
      return;
    }
    auto session = registry.find(id);
    if (!session) {
      res.status(404).json({{"error", "no such session"}});
      return;
    }
    // Thread-safe: posted to the session's I/O thread. The client gets what
    // was already queued for it, then the Close; on_close unregisters it.
    session->close(1000, "closed by operator");
    res.status(202).json({{"closing", id}});
  });
}

}  // namespace

int main() {
  try {
    ebb::config::Config cfg{".env"};
    ebb::App app{cfg};
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(2);
    ebb::websocket::Server ws{cfg, executor};
    SessionRegistry registry;

    ws.on_open([&registry](Session& s) {
      registry.add(s);
      s.send_text("session " + std::to_string(s.id()));
    });
    ws.on_close(
        [&registry](Session& s, std::uint16_t, std::string_view) { registry.remove(s.id()); });
    ws.on_message([](Session& s, std::string_view text) { s.send_text(text); });
    add_routes(app, registry);

    ebb::websocket::AttachedRuntime runtime{app, ws, executor};  // starts ws
    std::printf("close_client: websocket on port %u, http on port %u\n", ws.port(),
                app.options().port);
    std::fflush(stdout);
    app.run();                    // returns when both drains are done (SIGTERM/SIGINT start them)
    runtime.finalize_shutdown();  // joins the WebSocket threads, then stops the executor
    return app.drain_report().clean() && ws.drain_report().clean() ? 0 : 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "close_client: %s\n", e.what());
    return 1;
  }
}
