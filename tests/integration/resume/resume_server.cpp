// resume_server: the server the process-level resume test (resume_test.mjs)
// stops and restarts. One ebb::App on SERVER_PORT serves the room protocol
// of docs/PROTOCOL.md three ways: WebSocket at /ws, long-polling at /lp,
// and GET /rooms/:room/last_seq (the highest seq stored, for the test).
// Messages live in $DATA_DIR/messages.db (SqliteMessageStore, WAL), so a
// restarted process resumes where the last one stopped, even after kill -9.
//
//   SERVER_PORT=8080 DATA_DIR=/tmp/x ./resume_server
//
// SIGTERM/SIGINT drain (WebSocket clients get the shutdown notice and Close
// 1001, held polls are answered with "closed"); a second signal forces.
// Exit status: 0 when the drain was clean, 3 when something was forced, 1
// on a start-up error.
#include <chrono>
#include <cstdlib>
#include <ebb.hpp>
#include <filesystem>
#include <iostream>

int main() {
  try {
    ebb::config::Config cfg{".env"};
    if (!cfg.has("WEBSOCKET_SHUTDOWN_NOTICE"))
      cfg.set("WEBSOCKET_SHUTDOWN_NOTICE",
              R"({"type":"server.shutdown","payload":{"reconnect_ms":{reconnect_ms}}})");
    const char* data_dir = std::getenv("DATA_DIR");
    const std::filesystem::path db =
        std::filesystem::path(data_dir && *data_dir ? data_dir : ".") / "messages.db";

    // Declaration order is the reverse of destruction: the store outlives
    // the rooms and the server that write to it; the bridge outlives the
    // server and the app it is attached to.
    ebb::websocket::SqliteMessageStore store{db.string()};
    // A resumed long-poll client may be sent thousands of missed messages
    // before its next poll: room for them, not a 1008.
    ebb::websocket::LongPollingBridge bridge{
        nullptr, std::chrono::seconds(60),
        static_cast<std::size_t>(cfg.get_int("LP_CAPACITY", 200000))};
    ebb::App app{cfg};
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(4);
    ebb::websocket::Server ws{cfg, executor};
    ebb::websocket::ReliableRooms rooms{ws, store};
    ws.on_typed_message([&rooms](ebb::websocket::Session& s, const std::string& type,
                                 const ebb::json::kvs& payload) {
      if (!rooms.handle(s, type, payload))
        s.send_text(R"({"type":"error","payload":{"message":"unknown type"}})");
    });
    ws.attach_long_polling_bridge(&bridge);
    app.ws("/ws", ws);
    bridge.mount(app, "/lp");
    app.get("/rooms/:room/last_seq", [&rooms](ebb::Request& req, ebb::Response& res) {
      res.json({{"last_seq", rooms.last_seq(std::string(req.param("room")))}});
    });

    ebb::websocket::AttachedRuntime runtime{app, ws, executor};
    app.run();
    runtime.finalize_shutdown();
    store.close();  // commits what the drain accepted before the exit status
    const bool clean = app.drain_report().clean() && ws.drain_report().clean();
    return clean ? 0 : 3;
  } catch (const std::exception& e) {
    std::cerr << "resume_server: " << e.what() << "\n";
    return 1;
  }
}
