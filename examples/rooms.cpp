// rooms: chat rooms over plain-text WebSocket commands.
//
//   WEBSOCKET_PORT=9001 ./rooms
//   client → "join lobby"          server → "joined lobby"
//   client → "say lobby hello"     every member of lobby → "lobby <id>: hello"
//   client → "leave lobby"         server → "left lobby"
//
// The server keeps the room membership (join_room / leave_room) and encodes
// a broadcast once for all members; a closed session leaves every room by
// itself, so on_close needs no cleanup. The session's own list of rooms
// lives in its user_data, touched only from its callbacks (which run on its
// I/O thread, one at a time), so it needs no lock.
//
// SIGTERM/SIGINT drain (Close 1001 to everyone); a second signal forces.
// Exit status: 0 clean drain, 3 forced, 1 start-up error.
#include <csignal>
#include <cstdio>
#include <ebb.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace {

using ebb::websocket::Server;
using ebb::websocket::Session;
using Rooms = std::set<std::string, std::less<>>;

// The rooms this session joined, created on first use.
Rooms& rooms_of(Session& s) {
  if (!s.user_data().has_value()) s.user_data() = Rooms{};
  return std::any_cast<Rooms&>(s.user_data());
}

// Splits "verb rest" at the first space; rest is empty when there is none.
std::pair<std::string_view, std::string_view> split_word(std::string_view line) {
  auto space = line.find(' ');
  if (space == std::string_view::npos) return {line, {}};
  return {line.substr(0, space), line.substr(space + 1)};
}

void handle(Server& ws, Session& s, std::string_view line) {
  auto [verb, rest] = split_word(line);
  Rooms& mine = rooms_of(s);
  if (verb == "join" && !rest.empty()) {
    ws.join_room(s.shared_from_this(), std::string(rest));
    mine.emplace(rest);
    s.send_text("joined " + std::string(rest));
  } else if (verb == "leave" && !rest.empty()) {
    ws.leave_room(s.shared_from_this(), std::string(rest));
    mine.erase(std::string(rest));
    s.send_text("left " + std::string(rest));
  } else if (verb == "say") {
    auto [room_view, text] = split_word(rest);
    const std::string room(room_view);
    // Only members may speak: otherwise anyone could write into any room.
    if (room.empty() || mine.find(room) == mine.end()) {
      s.send_text("error: join " + room + " first");
      return;
    }
    const std::string message = room + " " + std::to_string(s.id()) + ": " + std::string(text);
    ws.broadcast_text_to_room(room, message);
  } else {
    s.send_text("error: expected join <room>, leave <room> or say <room> <text>");
  }
}

}  // namespace

int main() {
  try {
    // Signals are captured before any thread starts; a signal arriving
    // after the drain, while the process exits, is ignored (not fatal).
    std::signal(SIGTERM, SIG_IGN);
    std::signal(SIGINT, SIG_IGN);
    ebb::lifecycle::Shutdown shutdown;
    shutdown.capture_signals();

    ebb::config::Config cfg{".env"};
    auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
    Server ws{cfg, executor};
    ws.on_open([](Session& s) { s.send_text("hello " + std::to_string(s.id())); });
    ws.on_message([&ws](Session& s, std::string_view line) { handle(ws, s, line); });
    ws.start();
    // Callbacks only start the drain: they run on the signal watcher thread,
    // which must not block on the drain itself.
    auto on_trigger = shutdown.on_trigger([&] { ws.stop_async(); });
    auto on_force = shutdown.on_force([&] { ws.force_async(); });
    std::printf("rooms listening on port %u\n", ws.port());
    std::fflush(stdout);

    shutdown.wait_for_shutdown();
    ws.stop();
    // Nothing may call into `ws` once it is destroyed.
    shutdown.remove_callback(on_trigger);
    shutdown.remove_callback(on_force);
    executor->stop();
    return ws.drain_report().clean() ? 0 : 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rooms: %s\n", e.what());
    return 1;
  }
}
