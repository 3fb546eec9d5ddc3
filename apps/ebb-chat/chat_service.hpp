#pragma once
// ebb::chat::ChatService: the chat's own protocol on top of ReliableRooms
// (docs/PROTOCOL.md has the room.* part):
//
//   client → server   chat.hello {name}        → chat.welcome {id, name}
//                     chat.rooms {}            → chat.rooms {rooms: [{name, members}]}
//                     chat.dashboard {}        → chat.stats samples from now on;
//                                                 in a drain this session is
//                                                 closed after every other one
//                                                 (Session::observe_drain)
//   server → client   chat.presence {room, members: [names]}   on join, leave, close
//                     chat.stats {connections, longpoll_sessions}   every page
//                     chat.stats {..., messages_per_second, state, sessions_left}
//                                                              dashboard pages
//                     chat.rooms {rooms}                       when the list changes
//
// A room message body is always {"name": <sender>, "text": <string>}: the
// publish filter stamps the sender's name and rejects any other shape.
//
// Threads: the callbacks it installs run on the server's threads; its own
// stats thread pushes samples. Every member is safe from any thread.
// Lifetime: install() before ws.start(); stop_stats() before the store
// closes; destroy after ws.stop() (callbacks use it).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ebb/json/json.hpp>
#include <ebb/metrics/prometheus.hpp>
#include <ebb/store/message_store.hpp>
#include <ebb/websocket/session.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace ebb::websocket {
class Server;
class ReliableRooms;
class LongPollingBridge;
class WebSocketMetrics;
}  // namespace ebb::websocket

namespace ebb::chat {

struct ChatOptions {
  std::size_t max_text = 2000;  ///< characters (code points) of a message text
  std::size_t max_name = 32;    ///< characters of a user name
  std::chrono::milliseconds stats_interval{250};
  std::chrono::milliseconds count_interval{2000};
};

class ChatService {
 public:
  /// `bridge` and `metrics` may be null.
  ChatService(websocket::Server& ws, websocket::ReliableRooms& rooms,
              websocket::MessageStore& store, websocket::LongPollingBridge* bridge,
              websocket::WebSocketMetrics* metrics, ChatOptions options);
  ~ChatService();
  ChatService(const ChatService&) = delete;
  ChatService& operator=(const ChatService&) = delete;

  /// Sets ws.on_open / on_typed_message / on_close and the rooms' publish
  /// filter and membership handler. Before ws.start().
  void install();

  /// Starts the thread that pushes stats. `announce` runs on it at every
  /// tick until it returns true (the program prints where it listens once
  /// the port is bound).
  void start_stats(std::function<bool()> announce = {});
  /// Stops and joins it. Idempotent.
  void stop_stats();

  /// The drain began (the app's shutdown callback): dashboards get a
  /// "draining" sample now, before the shutdown notices go out, and then a
  /// sample every stats interval until their own session closes, which the
  /// server does only once every other WebSocket session has ended (or at
  /// the drain deadline). When the last session that is not a dashboard
  /// ends, the dashboards get one more sample at once (sessions_left then
  /// counts only them).
  void drain_started();

  /// GET /api/stats.
  ebb::json::kvs stats() const;
  /// GET /api/rooms and chat.rooms: every room the store or a member knows.
  boost::json::array room_list() const;

 private:
  struct Member {
    websocket::SessionPtr session;
    std::string name;
    std::set<std::string> rooms;
    bool dashboard = false;
  };

  void on_open(websocket::Session& s);
  void on_typed(websocket::Session& s, const std::string& type, const ebb::json::kvs& payload);
  void on_close(websocket::Session& s);
  bool filter_publish(websocket::Session& s, const std::string& room, ebb::json::value& body,
                      std::string& error);
  void on_membership(websocket::Session& s, const std::string& room, bool joined);

  void hello(websocket::Session& s, const ebb::json::kvs& payload);
  /// The names in `room`, sorted; callers hold mu_.
  boost::json::array names_in(const std::string& room) const;
  void send_presence(const std::string& room);
  void mark_rooms_changed();

  void stats_loop(std::function<bool()> announce);
  void tick(std::chrono::steady_clock::time_point now);
  double messages_per_second(std::chrono::steady_clock::time_point now);
  void push_to_dashboards(const std::string& text);

  websocket::Server& ws_;
  websocket::ReliableRooms& rooms_;
  websocket::MessageStore& store_;
  websocket::LongPollingBridge* bridge_;
  ChatOptions options_;
  metrics::Counter* messages_metric_ = nullptr;

  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, Member> members_;
  std::size_t dashboards_ = 0;  ///< members_ with `dashboard` set
  std::map<std::string, std::set<std::uint64_t>> room_members_;
  std::set<std::string> known_rooms_;
  bool rooms_changed_ = false;

  std::atomic<std::uint64_t> messages_total_{0};
  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> sessions_at_drain_start_{0};

  // The stats thread; rate_ and last_count_* are touched by it only.
  std::mutex stats_mu_;
  std::condition_variable stats_cv_;
  bool stats_stop_ = false;
  std::thread stats_thread_;
  struct RateSample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t total;
  };
  std::vector<RateSample> rate_;
  std::atomic<double> last_rate_{0};
  std::size_t last_count_sent_ = static_cast<std::size_t>(-1);
  std::chrono::steady_clock::time_point last_count_at_{};
};

}  // namespace ebb::chat
