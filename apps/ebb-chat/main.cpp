// ebb-chat: a chat service on one port: the page at /, the dashboard at
// /dashboard, WebSocket at /ws, the long-polling fallback at /lp, history in
// SQLite under DATA_DIR, /metrics, /health/live, /health/ready, /api/stats.
//
//   ./ebb-chat                          # zero configuration: port 8080, ./data
//   ./ebb-chat --port 9000 --data-dir /var/lib/ebb-chat
//   ./ebb-chat --help                   # every setting, its default and meaning
//
// SIGTERM/SIGINT drain: readiness turns 503, every client gets the
// server.shutdown notice then Close 1001 (spread over
// WEBSOCKET_SHUTDOWN_SPREAD_MS), held long-polls are answered, the store is
// flushed and closed. Clients reconnect and resume from their last seq.
// Exit status: 0 clean drain, 3 something had to be forced, 1 start-up error.
#include <cstdio>
#include <cstdlib>
#include <ebb.hpp>
#include <ebb/websocket/long_polling.hpp>
#include <ebb/websocket/reliable_rooms.hpp>
#include <filesystem>
#include <iostream>
#include <memory>

#include "chat_service.hpp"
#include "settings.hpp"

namespace {

namespace ws = ebb::websocket;

ws::SqliteStoreOptions store_options(const ebb::config::Config& cfg) {
  ws::SqliteStoreOptions o;
  const auto sync = cfg.get_string("CHAT_STORE_SYNCHRONOUS", "normal");
  if (sync == "full")
    o.synchronous = ws::SqliteSynchronous::full;
  else if (sync != "normal")
    throw ebb::config::ConfigError("CHAT_STORE_SYNCHRONOUS",
                                   "expected normal or full, got \"" + sync + "\"");
  o.max_messages_per_room =
      static_cast<std::size_t>(cfg.get_int("CHAT_MAX_MESSAGES_PER_ROOM", 0, 0));
  return o;
}

ebb::chat::ChatOptions chat_options(const ebb::config::Config& cfg) {
  ebb::chat::ChatOptions o;
  o.max_text = static_cast<std::size_t>(cfg.get_int("CHAT_MAX_TEXT", 2000, 1, 1 << 20));
  o.max_name = static_cast<std::size_t>(cfg.get_int("CHAT_MAX_NAME", 32, 1, 1024));
  o.stats_interval = cfg.get_duration("CHAT_STATS_INTERVAL_MS", std::chrono::milliseconds(250));
  o.count_interval = cfg.get_duration("CHAT_COUNT_INTERVAL_MS", std::chrono::milliseconds(2000));
  if (o.stats_interval.count() <= 0)
    throw ebb::config::ConfigError("CHAT_STATS_INTERVAL_MS", "must be positive");
  return o;
}

struct LongPollSettings {
  std::chrono::seconds ttl;
  std::size_t capacity;
  std::chrono::milliseconds poll_timeout;
};

LongPollSettings longpoll_settings(const ebb::config::Config& cfg) {
  using std::chrono::duration_cast;
  LongPollSettings s{duration_cast<std::chrono::seconds>(
                         cfg.get_duration("LONGPOLL_TTL", std::chrono::seconds(60))),
                     static_cast<std::size_t>(cfg.get_int("LONGPOLL_CAPACITY", 256, 1, 1 << 20)),
                     cfg.get_duration("LONGPOLL_POLL_TIMEOUT", std::chrono::seconds(25))};
  if (s.ttl.count() < 1) throw ebb::config::ConfigError("LONGPOLL_TTL", "must be at least 1s");
  if (s.poll_timeout.count() <= 0)
    throw ebb::config::ConfigError("LONGPOLL_POLL_TIMEOUT", "must be positive");
  if (s.poll_timeout >= s.ttl)
    throw ebb::config::ConfigError("LONGPOLL_POLL_TIMEOUT", "must be shorter than LONGPOLL_TTL");
  return s;
}

/// The WebSocket shares the app's plain-HTTP port: TLS for it alone cannot
/// work, and a setting that cannot work is a start-up error, not ignored.
void refuse_unsupported(const ebb::config::Config& cfg) {
  for (const char* key : {"WEBSOCKET_TLS_CERT", "WEBSOCKET_TLS_KEY"})
    if (!cfg.get_string(key).empty())
      throw ebb::config::ConfigError(
          key,
          "not supported by ebb-chat (WebSocket shares SERVER_PORT at /ws): terminate TLS "
          "in a proxy in front of it");
}

std::filesystem::path database_path(const ebb::config::Config& cfg) {
  std::filesystem::path dir = cfg.get_string("DATA_DIR", "./data");
  std::filesystem::create_directories(dir);
  return dir / cfg.get_string("CHAT_DB_FILE", "chat.db");
}

/// The logger reads EBB_LOG_LEVEL from the environment only; a .env value
/// reaches it through the environment.
void export_log_level(const ebb::config::Config& cfg) {
  if (std::getenv("EBB_LOG_LEVEL") != nullptr) return;
  if (auto level = cfg.raw("EBB_LOG_LEVEL"); level && !level->empty())
    ::setenv("EBB_LOG_LEVEL", level->c_str(), 1);
}

int run(const ebb::chat::CommandLine& cl) {
  ebb::config::Config cfg{cl.env_file.value_or(".env")};
  ebb::chat::apply(cl, cfg);
  export_log_level(cfg);
  refuse_unsupported(cfg);
  const auto web = ebb::chat::web_dir(cfg);
  const auto db = database_path(cfg);

  // Declaration order is destruction order in reverse: everything a callback
  // uses outlives the server, the app and the runtime.
  ws::WebSocketMetrics metrics;
  ws::SqliteMessageStore store{db.string(), store_options(cfg)};
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(
      static_cast<std::size_t>(cfg.get_int("CHAT_EXECUTOR_THREADS", 2, 1, 256)));
  const auto lp = longpoll_settings(cfg);
  ws::LongPollingBridge bridge{&metrics, lp.ttl, lp.capacity, lp.poll_timeout};
  ws::Server server{cfg, executor};
  server.set_metrics(metrics);
  server.attach_long_polling_bridge(&bridge);
  ws::ReliableRoomsOptions rooms_options;
  rooms_options.history_on_join =
      static_cast<std::size_t>(cfg.get_int("CHAT_HISTORY_ON_JOIN", 50, 0, 100000));
  ws::ReliableRooms rooms{server, store, rooms_options};
  rooms.set_metrics(metrics);  // store write latency and store errors
  ebb::chat::ChatService chat{server, rooms, store, &bridge, &metrics, chat_options(cfg)};
  chat.install();

  ebb::App app{cfg};
  app.ws("/ws", server);
  bridge.mount(app, "/lp");
  app.metrics("/metrics", metrics);
  app.get("/api/stats", [&chat](ebb::Request&, ebb::Response& res) { res.json(chat.stats()); });
  app.get("/api/rooms", [&chat](ebb::Request&, ebb::Response& res) {
    res.json(ebb::json::kvs{{"rooms", chat.room_list()}});
  });
  app.get("/dashboard",
          [web](ebb::Request& req, ebb::Response& res) { res.file(web / "dashboard.html", req); });
  app.static_files("/", web);

  ws::AttachedRuntime runtime{app, server, executor};
  // Replaces the runtime's shutdown callback with one that does the same
  // (ws.stop_async()) after the dashboards got a "draining" sample: the
  // notices that follow close their sessions. Captures only objects that
  // outlive the app.
  app.set_shutdown_callback([&chat, &server] {
    chat.drain_started();
    server.stop_async();
  });
  chat.start_stats([&app, &cfg, web, db] {
    // Once the port is known (run() binds it; SERVER_PORT may be 0).
    if (app.port() == 0) return false;
    std::printf("ebb-chat listening on http://%s:%u/ (history: %s, web: %s)\n",
                cfg.get_string("SERVER_HOST", "0.0.0.0").c_str(), app.port(), db.string().c_str(),
                web.string().c_str());
    std::fflush(stdout);
    return true;
  });

  try {
    app.run();  // blocks until the HTTP and the WebSocket drains are done
  } catch (...) {
    chat.stop_stats();  // its thread reads `app`, which unwinding destroys first
    throw;
  }
  chat.stop_stats();
  runtime.finalize_shutdown();
  store.close();
  const bool clean = app.drain_report().clean() && server.drain_report().clean();
  std::printf("ebb-chat stopped: %s drain\n", clean ? "clean" : "forced");
  return clean ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto cl = ebb::chat::parse_command_line(argc, argv);
    if (cl.help) {
      ebb::chat::print_help(std::cout, "ebb-chat");
      return 0;
    }
    return run(cl);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ebb-chat: %s\n", e.what());
    return 1;
  }
}
