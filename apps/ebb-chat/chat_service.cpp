#include "chat_service.hpp"

#include <algorithm>
#include <ebb/metrics/websocket_metrics.hpp>
#include <ebb/websocket/long_polling.hpp>
#include <ebb/websocket/reliable_rooms.hpp>
#include <ebb/websocket/server.hpp>
#include <iostream>
#include <utility>
#include <vector>

namespace ebb::chat {

namespace {

using Clock = std::chrono::steady_clock;

std::string envelope(std::string_view type, ebb::json::kvs payload) {
  ebb::json::kvs o;
  o["type"] = type;
  o["payload"] = std::move(payload);
  return ebb::json::serialize(o);
}

std::string error_message(std::string_view message, std::string_view about) {
  return envelope("error", {{"message", message}, {"for", about}});
}

/// Code points in valid UTF-8 (the server validated it on arrival).
std::size_t utf8_length(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

bool has_control_char(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

std::string display_name(const std::string& name, std::uint64_t id) {
  return name.empty() ? "guest-" + std::to_string(id) : name;
}

void send_all(const std::vector<websocket::SessionPtr>& to, const std::string& text) {
  for (const auto& s : to) s->send_text(text);
}

}  // namespace

ChatService::ChatService(websocket::Server& ws, websocket::ReliableRooms& rooms,
                         websocket::MessageStore& store, websocket::LongPollingBridge* bridge,
                         websocket::WebSocketMetrics* metrics, ChatOptions options)
    : ws_(ws), rooms_(rooms), store_(store), bridge_(bridge), options_(options) {
  if (metrics != nullptr)
    messages_metric_ = &metrics->registry().counter(
        "ebb_chat_messages_total", "Chat messages accepted for publishing (before the commit).");
  for (auto& room : store_.rooms()) known_rooms_.insert(std::move(room));
}

ChatService::~ChatService() { stop_stats(); }

void ChatService::install() {
  ws_.on_open([this](websocket::Session& s) { on_open(s); });
  ws_.on_typed_message([this](websocket::Session& s, const std::string& type,
                              const ebb::json::kvs& payload) { on_typed(s, type, payload); });
  ws_.on_close([this](websocket::Session& s, std::uint16_t, std::string_view) { on_close(s); });
  rooms_.on_publish([this](websocket::Session& s, const std::string& room, ebb::json::value& body,
                           std::string& error) { return filter_publish(s, room, body, error); });
  rooms_.on_membership([this](websocket::Session& s, const std::string& room, bool joined) {
    on_membership(s, room, joined);
  });
}

// ------------------------------------------------------------ sessions ---

void ChatService::on_open(websocket::Session& s) {
  std::lock_guard lock(mu_);
  members_[s.id()].session = s.shared_from_this();
}

void ChatService::on_typed(websocket::Session& s, const std::string& type,
                           const ebb::json::kvs& payload) {
  if (rooms_.handle(s, type, payload)) return;
  if (type == "chat.hello") {
    hello(s, payload);
  } else if (type == "chat.rooms") {
    s.send_text(envelope("chat.rooms", {{"rooms", room_list()}}));
  } else if (type == "chat.dashboard") {
    // Closed last in a drain: the dashboard watches every other session leave.
    s.observe_drain();
    {
      std::lock_guard lock(mu_);
      auto it = members_.find(s.id());
      if (it != members_.end() && !it->second.dashboard) {
        it->second.dashboard = true;
        ++dashboards_;
      }
    }
    s.send_text(envelope("chat.stats", stats()));
  } else {
    s.send_text(error_message("unknown message type", type));
  }
}

void ChatService::hello(websocket::Session& s, const ebb::json::kvs& payload) {
  const auto* given = payload.if_contains("name");
  if (given == nullptr || !given->is_string()) {
    s.send_text(error_message("chat.hello needs {\"name\": string}", "chat.hello"));
    return;
  }
  const std::string name(trim(std::string_view(given->as_string())));
  if (name.empty() || utf8_length(name) > options_.max_name || has_control_char(name)) {
    s.send_text(error_message(
        "a name has 1 to " + std::to_string(options_.max_name) + " printable characters",
        "chat.hello"));
    return;
  }
  std::set<std::string> rooms;
  {
    std::lock_guard lock(mu_);
    auto& m = members_[s.id()];
    if (!m.session) m.session = s.shared_from_this();
    m.name = name;
    rooms = m.rooms;
  }
  s.send_text(envelope("chat.welcome",
                       {{"id", s.id()}, {"name", name}, {"connections", ws_.session_count()}}));
  for (const auto& room : rooms) send_presence(room);
}

void ChatService::on_close(websocket::Session& s) {
  std::set<std::string> rooms;
  bool only_dashboards_left = false;
  {
    std::lock_guard lock(mu_);
    auto it = members_.find(s.id());
    if (it == members_.end()) return;
    rooms = std::move(it->second.rooms);
    const bool was_dashboard = it->second.dashboard;
    members_.erase(it);
    if (was_dashboard) --dashboards_;
    only_dashboards_left =
        draining_.load() && !was_dashboard && dashboards_ > 0 && members_.size() == dashboards_;
    for (const auto& room : rooms) {
      auto r = room_members_.find(room);
      if (r == room_members_.end()) continue;
      r->second.erase(s.id());
      if (r->second.empty()) room_members_.erase(r);
    }
    if (!rooms.empty()) rooms_changed_ = true;
  }
  // The last of the others left: the dashboards see it now, ahead of their
  // own Close (queued after this sample), not at the next tick they may not get.
  if (only_dashboards_left) push_to_dashboards(envelope("chat.stats", stats()));
  for (const auto& room : rooms) send_presence(room);
}

// ------------------------------------------------------------ rooms ---

bool ChatService::filter_publish(websocket::Session& s, const std::string& room,
                                 ebb::json::value& body, std::string& error) {
  const auto* obj = body.if_object();
  const auto* text = obj != nullptr ? obj->if_contains("text") : nullptr;
  if (text == nullptr || !text->is_string() || obj->size() != 1) {
    error = "a chat message body is {\"text\": string}";
    return false;
  }
  std::string_view t(text->as_string());
  if (trim(t).empty()) {
    error = "empty message";
    return false;
  }
  if (utf8_length(t) > options_.max_text) {
    error = "message longer than " + std::to_string(options_.max_text) + " characters";
    return false;
  }
  std::string name;
  {
    std::lock_guard lock(mu_);
    auto it = members_.find(s.id());
    if (it != members_.end()) name = it->second.name;
    if (name.empty()) {
      error = "say chat.hello first";
      return false;
    }
    if (known_rooms_.insert(room).second) rooms_changed_ = true;
  }
  ebb::json::kvs stamped;
  stamped["name"] = name;
  stamped["text"] = std::string(t);
  body = std::move(stamped);
  messages_total_.fetch_add(1, std::memory_order_relaxed);
  if (messages_metric_ != nullptr) messages_metric_->inc();
  return true;
}

void ChatService::on_membership(websocket::Session& s, const std::string& room, bool joined) {
  {
    std::lock_guard lock(mu_);
    auto it = members_.find(s.id());
    // A join whose replay finished after the session closed: nothing to show.
    if (it == members_.end()) return;
    if (joined) {
      it->second.rooms.insert(room);
      room_members_[room].insert(s.id());
      known_rooms_.insert(room);
    } else {
      if (it->second.rooms.erase(room) == 0) return;
      auto r = room_members_.find(room);
      if (r != room_members_.end()) {
        r->second.erase(s.id());
        if (r->second.empty()) room_members_.erase(r);
      }
    }
    rooms_changed_ = true;
  }
  send_presence(room);
}

boost::json::array ChatService::names_in(const std::string& room) const {
  std::vector<std::string> names;
  auto r = room_members_.find(room);
  if (r != room_members_.end())
    for (auto id : r->second) {
      auto m = members_.find(id);
      if (m != members_.end()) names.push_back(display_name(m->second.name, id));
    }
  std::sort(names.begin(), names.end());
  boost::json::array out;
  for (auto& n : names) out.emplace_back(std::move(n));
  return out;
}

void ChatService::send_presence(const std::string& room) {
  std::vector<websocket::SessionPtr> to;
  std::string text;
  {
    std::lock_guard lock(mu_);
    text = envelope("chat.presence", {{"room", room}, {"members", names_in(room)}});
    auto r = room_members_.find(room);
    if (r != room_members_.end())
      for (auto id : r->second) {
        auto m = members_.find(id);
        if (m != members_.end()) to.push_back(m->second.session);
      }
  }
  send_all(to, text);
}

boost::json::array ChatService::room_list() const {
  std::lock_guard lock(mu_);
  std::set<std::string> names = known_rooms_;
  for (const auto& [room, _] : room_members_) names.insert(room);
  boost::json::array out;
  for (const auto& name : names) {
    auto r = room_members_.find(name);
    std::size_t members = r == room_members_.end() ? 0 : r->second.size();
    out.push_back(ebb::json::kvs{{"name", name}, {"members", members}});
  }
  return out;
}

// ------------------------------------------------------------ stats ---

ebb::json::kvs ChatService::stats() const {
  const auto state = ws_.state();
  const bool draining = draining_.load() || state != websocket::LifecycleState::ready;
  const auto sessions = ws_.session_count();
  ebb::json::kvs o;
  o["connections"] = sessions;
  o["longpoll_sessions"] = bridge_ != nullptr ? bridge_->session_count() : 0;
  o["messages_total"] = messages_total_.load(std::memory_order_relaxed);
  o["messages_per_second"] = last_rate_.load(std::memory_order_relaxed);
  o["state"] = state == websocket::LifecycleState::ready && draining_.load()
                   ? "draining"
                   : websocket::to_string(state);
  o["sessions_left"] = draining ? sessions : 0;
  // Counted here rather than from DrainReport, which leaves long-poll
  // sessions out while session_count() includes them.
  if (draining) o["sessions_at_drain_start"] = sessions_at_drain_start_.load();
  {
    std::lock_guard lock(mu_);
    o["rooms"] = known_rooms_.size();
  }
  return o;
}

void ChatService::start_stats(std::function<bool()> announce) {
  std::lock_guard lock(stats_mu_);
  if (stats_thread_.joinable() || stats_stop_) return;
  stats_thread_ = std::thread([this, f = std::move(announce)] { stats_loop(f); });
}

void ChatService::stop_stats() {
  std::thread t;
  {
    std::lock_guard lock(stats_mu_);
    stats_stop_ = true;
    t = std::move(stats_thread_);
  }
  stats_cv_.notify_all();
  if (t.joinable()) t.join();
}

void ChatService::drain_started() {
  sessions_at_drain_start_.store(ws_.session_count());
  draining_.store(true);
  push_to_dashboards(envelope("chat.stats", stats()));
}

void ChatService::stats_loop(std::function<bool()> announce) {
  std::unique_lock lock(stats_mu_);
  while (!stats_stop_) {
    stats_cv_.wait_for(lock, options_.stats_interval, [this] { return stats_stop_; });
    if (stats_stop_) break;
    lock.unlock();
    if (announce && announce()) announce = nullptr;
    tick(Clock::now());
    lock.lock();
  }
}

double ChatService::messages_per_second(Clock::time_point now) {
  const auto total = messages_total_.load(std::memory_order_relaxed);
  rate_.push_back({now, total});
  // Keep one sample at least a second old: the rate is over the last second.
  while (rate_.size() > 2 && now - rate_[1].at >= std::chrono::seconds(1))
    rate_.erase(rate_.begin());
  const auto span = std::chrono::duration<double>(now - rate_.front().at).count();
  return span > 0 ? static_cast<double>(total - rate_.front().total) / span : 0.0;
}

void ChatService::tick(Clock::time_point now) {
  last_rate_.store(messages_per_second(now), std::memory_order_relaxed);
  push_to_dashboards(envelope("chat.stats", stats()));

  const auto count = ws_.session_count();
  if (count != last_count_sent_ || now - last_count_at_ >= options_.count_interval) {
    last_count_sent_ = count;
    last_count_at_ = now;
    ws_.broadcast_text(envelope(
        "chat.stats", {{"connections", count},
                       {"longpoll_sessions", bridge_ != nullptr ? bridge_->session_count() : 0}}));
  }
  bool rooms_changed = false;
  {
    std::lock_guard lock(mu_);
    rooms_changed = std::exchange(rooms_changed_, false);
  }
  if (rooms_changed) ws_.broadcast_text(envelope("chat.rooms", {{"rooms", room_list()}}));
}

void ChatService::push_to_dashboards(const std::string& text) {
  std::vector<websocket::SessionPtr> to;
  {
    std::lock_guard lock(mu_);
    for (const auto& [_, m] : members_)
      if (m.dashboard) to.push_back(m.session);
  }
  send_all(to, text);
}

}  // namespace ebb::chat
