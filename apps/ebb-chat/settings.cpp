#include "settings.hpp"

#include <cstdlib>
#include <ostream>
#include <stdexcept>

#ifndef EBB_CHAT_WEB_DIR
#define EBB_CHAT_WEB_DIR "web"
#endif

namespace ebb::chat {

namespace {

constexpr std::string_view kShutdownNotice =
    R"({"type":"server.shutdown","payload":{"reconnect_ms":{reconnect_ms}}})";

struct Group {
  std::string_view title;
  std::vector<Setting> items;
};

const std::vector<Group>& groups() {
  static const std::vector<Group> all = {
      {"ebb-chat",
       {
           {"SERVER_HOST", "0.0.0.0", "address to listen on (page, API, /ws, /lp, /metrics)"},
           {"SERVER_PORT", "8080", "port to listen on (0: any free port)"},
           {"DATA_DIR", "./data", "directory for the message history (created on first run)"},
           {"CHAT_DB_FILE", "chat.db", "SQLite file of the history, relative to DATA_DIR"},
           {"CHAT_WEB_DIR", EBB_CHAT_WEB_DIR, "directory of the page (index.html, app.js, ...)"},
           {"CHAT_HISTORY_ON_JOIN", "50", "messages replayed to a client joining a room"},
           {"CHAT_MAX_TEXT", "2000", "longest message text, in characters"},
           {"CHAT_MAX_NAME", "32", "longest user name, in characters"},
           {"CHAT_STATS_INTERVAL_MS", "250", "how often /dashboard gets a stats sample"},
           {"CHAT_COUNT_INTERVAL_MS", "2000",
            "how often every page gets the live connection count (also on change)"},
           {"CHAT_EXECUTOR_THREADS", "2", "worker threads (history replays, store reads)"},
           {"CHAT_STORE_SYNCHRONOUS", "normal",
            "normal: survives kill -9; full: survives power loss (fsync per commit)"},
           {"CHAT_MAX_MESSAGES_PER_ROOM", "0", "retention: messages kept per room (0: all)"},
           {"LONGPOLL_TTL", "60s", "a long-poll session nobody polls for this long ends"},
           {"LONGPOLL_CAPACITY", "256", "messages buffered per long-poll session"},
           {"LONGPOLL_POLL_TIMEOUT", "25s", "how long a poll is held when nothing arrives"},
           {"EBB_LOG_LEVEL", "info", "trace, debug, info, warn, error, critical, off"},
       }},
      {"the drain (SIGTERM/SIGINT; a second signal forces)",
       {
           {"SHUTDOWN_TIMEOUT", "10s", "deadline of the whole drain; then sessions are forced",
            true},
           {"SHUTDOWN_READINESS_GRACE_MS", "0",
            "/health/ready turns 503 at once; the listener closes after this"},
           {"WEBSOCKET_SHUTDOWN_NOTICE", kShutdownNotice,
            "text each client gets before Close 1001 ({reconnect_ms} is filled in)", true},
           {"WEBSOCKET_SHUTDOWN_RECONNECT_MS", "1000", "reconnect delay put in the notice"},
           {"WEBSOCKET_SHUTDOWN_SPREAD_MS", "1000",
            "closes spread over this window, each notice with its own delay (no reconnect storm)",
            true},
       }},
      {"HTTP",
       {
           {"HTTP_IO_THREADS", "1", "I/O threads of the HTTP app (0: one per core)"},
           {"HTTP_MAX_HEADER_SIZE", "16k", "request line + headers (431 past it)"},
           {"HTTP_MAX_BODY_SIZE", "1M", "request body (413 past it)"},
           {"HTTP_HEADER_TIMEOUT_MS", "10000", "first byte to complete head (408 past it)"},
           {"HTTP_BODY_TIMEOUT_MS", "30000", "head to complete body (408 past it)"},
           {"HTTP_KEEPALIVE_TIMEOUT_MS", "60000", "an idle keep-alive connection closes after it"},
           {"HTTP_MAX_REQUESTS_PER_CONNECTION", "0", "requests per connection (0: no limit)"},
           {"HEALTH_LIVE_PATH", "/health/live", "liveness route (empty: off)"},
           {"HEALTH_READY_PATH", "/health/ready", "readiness route, 503 while draining"},
           {"ADMIN_SHUTDOWN_PATH", "/admin/shutdown", "POST with Bearer ADMIN_TOKEN drains"},
           {"ADMIN_TOKEN", "", "enables the admin shutdown route when set"},
       }},
      {"WebSocket (at /ws on SERVER_PORT)",
       {
           {"WEBSOCKET_IO_THREADS", "1", "I/O threads of the WebSocket server (0: one per core)"},
           {"WEBSOCKET_MAX_MESSAGE_SIZE", "16M", "largest message, also after inflating"},
           {"WEBSOCKET_MAX_HANDSHAKE_SIZE", "8192", "bytes of the upgrade request head"},
           {"WEBSOCKET_HANDSHAKE_TIMEOUT_MS", "5000", "upgrade must complete within it"},
           {"WEBSOCKET_IDLE_TIMEOUT_MS", "0", "close a silent session after it (0: off)"},
           {"WEBSOCKET_PING_INTERVAL_MS", "30000", "heartbeat ping interval (0: off)"},
           {"WEBSOCKET_PONG_TIMEOUT_MS", "10000", "a missing pong ends the session after it"},
           {"WEBSOCKET_CLOSE_WAIT_MS", "1000", "wait for the peer's Close before cutting"},
           {"WEBSOCKET_HALF_CLOSE_DELAY_MS", "0", "FIN after our unanswered Close (0: with it)"},
           {"WEBSOCKET_MAX_SEND_QUEUE", "16M", "send-queue bytes per session (slow consumer)"},
           {"WEBSOCKET_SLOW_CONSUMER_CLOSE_CODE", "1008", "1008 or 1013"},
           {"WEBSOCKET_ALLOWED_ORIGINS", "", "comma list of accepted Origins (empty: any)"},
           {"WEBSOCKET_SUBPROTOCOLS", "", "comma list, server preference order"},
           {"WEBSOCKET_DEFLATE", "false", "permessage-deflate"},
           {"WEBSOCKET_DEFLATE_SERVER_WINDOW_BITS", "15", "9..15"},
           {"WEBSOCKET_DEFLATE_CLIENT_WINDOW_BITS", "15", "9..15"},
           {"WEBSOCKET_DEFLATE_SERVER_NO_CONTEXT_TAKEOVER", "false", ""},
           {"WEBSOCKET_DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER", "false", ""},
           {"WEBSOCKET_DEFLATE_LEVEL", "6", "zlib level 1..9"},
           {"WEBSOCKET_DEFLATE_MIN_SIZE", "64", "smaller messages go uncompressed"},
       }},
  };
  return all;
}

std::string_view flag_value(int argc, char** argv, int& i, std::string_view flag) {
  std::string_view arg = argv[i];
  if (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag && arg[flag.size()] == '=')
    return arg.substr(flag.size() + 1);
  if (i + 1 >= argc) throw std::invalid_argument(std::string(flag) + " needs a value");
  return argv[++i];
}

bool is_flag(std::string_view arg, std::string_view flag) {
  return arg == flag || (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag &&
                         arg[flag.size()] == '=');
}

}  // namespace

const std::vector<Setting>& settings() {
  static const std::vector<Setting> flat = [] {
    std::vector<Setting> out;
    for (const auto& g : groups()) out.insert(out.end(), g.items.begin(), g.items.end());
    return out;
  }();
  return flat;
}

CommandLine parse_command_line(int argc, char** argv) {
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      cl.help = true;
    } else if (is_flag(arg, "--port")) {
      cl.port = std::string(flag_value(argc, argv, i, "--port"));
    } else if (is_flag(arg, "--host")) {
      cl.host = std::string(flag_value(argc, argv, i, "--host"));
    } else if (is_flag(arg, "--data-dir")) {
      cl.data_dir = std::string(flag_value(argc, argv, i, "--data-dir"));
    } else if (is_flag(arg, "--env-file")) {
      cl.env_file = std::string(flag_value(argc, argv, i, "--env-file"));
    } else {
      throw std::invalid_argument("unknown argument \"" + std::string(arg) + "\" (try --help)");
    }
  }
  return cl;
}

void print_help(std::ostream& out, std::string_view program) {
  out << "Usage: " << program << " [--port N] [--host H] [--data-dir D] [--env-file F]\n\n"
      << "A chat server: web page at /, dashboard at /dashboard, WebSocket at /ws,\n"
      << "long-polling fallback at /lp, Prometheus metrics at /metrics, health at\n"
      << "/health/live and /health/ready, stats at /api/stats. Runs with no configuration.\n\n"
      << "Every setting comes from (first wins): the flags above, the environment,\n"
      << "the .env file in the working directory (or --env-file), the default.\n"
      << "SIGTERM/SIGINT drain gracefully; a second signal forces.\n"
      << "Exit status: 0 clean drain, 3 sessions had to be forced, 1 start-up error.\n"
      << "WEBSOCKET_HOST, WEBSOCKET_PORT and WEBSOCKET_PATH do not apply (the WebSocket\n"
      << "shares SERVER_PORT at /ws); WEBSOCKET_TLS_* is refused (put TLS in a proxy).\n";
  for (const auto& g : groups()) {
    out << "\n" << g.title << ":\n";
    for (const auto& s : g.items) {
      out << "  " << s.key << " (default: "
          << (s.default_value.empty() ? std::string_view("empty") : s.default_value) << ")\n";
      if (!s.meaning.empty()) out << "      " << s.meaning << "\n";
    }
  }
}

void apply(const CommandLine& cl, ebb::config::Config& cfg) {
  for (const auto& s : settings())
    if (s.chat_default && !cfg.has(std::string(s.key)))
      cfg.set(std::string(s.key), std::string(s.default_value));
  if (cl.port) cfg.set("SERVER_PORT", *cl.port);
  if (cl.host) cfg.set("SERVER_HOST", *cl.host);
  if (cl.data_dir) cfg.set("DATA_DIR", *cl.data_dir);
}

std::filesystem::path web_dir(const ebb::config::Config& cfg) {
  std::filesystem::path dir = cfg.get_string("CHAT_WEB_DIR", EBB_CHAT_WEB_DIR);
  if (!std::filesystem::is_regular_file(dir / "index.html"))
    throw std::runtime_error("CHAT_WEB_DIR: no index.html in \"" + dir.string() + "\"");
  return dir;
}

}  // namespace ebb::chat
