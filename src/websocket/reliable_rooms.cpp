// ReliableRooms: durable, sequenced room messages and exact resume (see the
// header for why the seam is exact, docs/PROTOCOL.md for the wire format).
#include "ebb/websocket/reliable_rooms.hpp"

#include <deque>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "ebb/executor/runtime_executor.hpp"
#include "ebb/websocket/server.hpp"
#include "log/log.hpp"

namespace ebb::websocket {

namespace json = boost::json;

namespace {
// One room's seam: the last seq broadcast, guarded with the broadcast itself.
struct Room {
  std::mutex mutex;
  bool loaded = false;  // broadcast_seq read from the store
  std::uint64_t broadcast_seq = 0;
  // Publish ids seen lately (room.publish "id"), under `mutex`: a client
  // that resends after a reconnect, while its first copy is still being
  // stored, gets that copy's ack instead of a second message. 0 = in flight.
  std::unordered_map<std::string, std::uint64_t> recent_ids;
  std::deque<std::string> recent_order;
  std::unordered_map<std::string, std::vector<AppendHandler>> waiting;  // acks for in-flight ids
};
constexpr std::size_t recent_ids_per_room = 4096;

std::string message_text(const std::string& room, std::uint64_t seq, std::int64_t ts,
                         std::string_view stored) {
  // The store keeps {"id": ..., "body": ...}; the wire adds room, seq, ts.
  json::object payload;
  payload["room"] = room;
  payload["seq"] = seq;
  payload["ts"] = ts;
  boost::system::error_code ec;
  auto v = json::parse(stored, ec);
  if (!ec && v.is_object()) {
    auto& o = v.as_object();
    if (auto* id = o.if_contains("id"); id && id->is_string() && !id->as_string().empty())
      payload["id"] = *id;
    payload["body"] = o.contains("body") ? o["body"] : json::value(nullptr);
  } else {
    payload["body"] = json::string(stored);  // written by someone else: pass it on as text
  }
  return json::serialize(json::object{{"type", "room.message"}, {"payload", std::move(payload)}});
}

std::string typed(std::string_view type, json::object payload) {
  return json::serialize(json::object{{"type", type}, {"payload", std::move(payload)}});
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

struct ReliableRooms::State {
  Server* ws = nullptr;
  MessageStore* store = nullptr;
  ReliableRoomsOptions options;
  PublishFilter filter;
  MembershipHandler membership;

  std::mutex rooms_mutex;
  std::unordered_map<std::string, std::shared_ptr<Room>> rooms;

  // Store completions and replays may outlive the ReliableRooms object
  // (and so the Server it points to): they hold this shared, the destructor
  // takes it exclusively and sets `detached`, after which they touch nothing.
  std::shared_mutex life;
  bool detached = false;

  std::shared_ptr<Room> room(const std::string& name) {
    std::lock_guard lock(rooms_mutex);
    auto& r = rooms[name];
    if (!r) r = std::make_shared<Room>();
    return r;
  }
  // Under r.mutex. Read once, before this object queued any append for the
  // room, so the store's last seq is exactly what was broadcast before us.
  void load(Room& r, const std::string& name) {
    if (r.loaded) return;
    r.broadcast_seq = store->last_seq(name);
    r.loaded = true;
  }
  void send_error(Session& s, std::string message) {
    s.send_text(typed("error", {{"message", std::move(message)}}));
  }
  bool valid_room(const std::string& name) const {
    return !name.empty() && name.size() <= options.max_room_name;
  }
  // Runs the replay where reading the store does not stall an I/O thread.
  void run_off_io(std::function<void()> f) {
    const auto& exec = ws->executor();
    if (!exec || !exec->post(f)) f();
  }
  void replay_and_join(const SessionPtr& s, const std::string& name,
                       std::optional<std::uint64_t> after);
};

ReliableRooms::ReliableRooms(Server& ws, MessageStore& store, ReliableRoomsOptions options)
    : state_(std::make_shared<State>()) {
  state_->ws = &ws;
  state_->store = &store;
  state_->options = options;
}

ReliableRooms::~ReliableRooms() {
  // Completions already queued run now, while the server is still there.
  try {
    state_->store->flush();
  } catch (const std::exception& e) {
    log::logger()->warn("ReliableRooms: flushing the store at destruction: {}", e.what());
  }
  std::unique_lock lock(state_->life);
  state_->detached = true;
}

void ReliableRooms::on_publish(PublishFilter f) { state_->filter = std::move(f); }
void ReliableRooms::on_membership(MembershipHandler f) { state_->membership = std::move(f); }

void ReliableRooms::publish(const std::string& room, json::value body, std::string id,
                            AppendHandler done) {
  auto r = state_->room(room);
  {
    std::lock_guard lock(r->mutex);
    state_->load(*r, room);
    if (!id.empty()) {
      auto it = r->recent_ids.find(id);
      if (it != r->recent_ids.end()) {  // a resend: answer with the first copy
        if (it->second != 0) {
          if (done) done(it->second, {});
        } else if (done) {
          r->waiting[id].push_back(std::move(done));
        }
        return;
      }
      r->recent_ids.emplace(id, 0);
      r->recent_order.push_back(id);
      if (r->recent_order.size() > recent_ids_per_room) {
        r->recent_ids.erase(r->recent_order.front());
        r->recent_order.pop_front();
      }
    }
  }
  json::object stored{{"body", std::move(body)}};
  if (!id.empty()) stored["id"] = id;
  std::string text = json::serialize(stored);
  auto state = state_;
  // The completion runs on the store's writer thread, in seq order.
  state_->store->append_async(
      room, text,
      [state, r, room, id, text, done = std::move(done)](std::uint64_t seq, std::error_code ec) {
        std::shared_lock life(state->life);
        if (state->detached) return;
        std::vector<AppendHandler> waiters;
        {
          std::lock_guard lock(r->mutex);
          if (!ec) {
            r->broadcast_seq = seq;
            state->ws->broadcast_text_to_room(room, message_text(room, seq, now_ms(), text));
          }
          if (!id.empty()) {
            if (auto w = r->waiting.find(id); w != r->waiting.end()) {
              waiters = std::move(w->second);
              r->waiting.erase(w);
            }
            if (ec)
              r->recent_ids.erase(id);  // not stored: a resend must be stored
            else if (auto it = r->recent_ids.find(id); it != r->recent_ids.end())
              it->second = seq;
          }
        }
        if (done) done(seq, ec);
        for (auto& w : waiters) w(seq, ec);
      });
}

void ReliableRooms::State::replay_and_join(const SessionPtr& s, const std::string& name,
                                           std::optional<std::uint64_t> after) {
  std::shared_lock life_lock(life);
  if (detached) return;
  auto r = room(name);
  std::uint64_t last = 0, replayed = 0;
  bool gap = false;
  try {
    std::lock_guard lock(r->mutex);
    load(*r, name);
    last = r->broadcast_seq;
    std::uint64_t from;
    if (after) {
      if (*after > last) gap = true;  // the client knows more than the store: history was reset
      from = std::min(*after, last);
      if (last - from > options.max_replay) {
        from = last - options.max_replay;
        gap = true;
      }
    } else {
      from = last > options.history_on_join ? last - options.history_on_join : 0;
    }
    // In batches, up to `last` only: newer messages reach us live.
    while (from < last && !s->is_closing()) {
      auto batch = store->read_after(name, from, std::min<std::uint64_t>(1000, last - from));
      if (batch.empty()) break;
      if (after && replayed == 0 && batch.front().seq > from + 1) gap = true;  // retention
      for (const auto& m : batch) {
        if (m.seq > last) break;
        s->send_text(message_text(name, m.seq, m.unix_ms, m.body));
        ++replayed;
        from = m.seq;
      }
    }
    // room.joined before any live message: everything up to `last` is sent.
    s->send_text(typed("room.joined",
                       {{"room", name}, {"last_seq", last}, {"replayed", replayed}, {"gap", gap}}));
    ws->join_room(s, name);
  } catch (const std::exception& e) {
    log::logger()->error("room {}: replay for session {} failed: {}", name, s->id(), e.what());
    send_error(*s, "room " + name + ": history unavailable");
    return;
  }
  if (membership) membership(*s, name, true);
}

void ReliableRooms::subscribe(const SessionPtr& s, const std::string& room,
                              std::optional<std::uint64_t> after_seq) {
  auto state = state_;
  state_->run_off_io([state, s, room, after_seq] { state->replay_and_join(s, room, after_seq); });
}

void ReliableRooms::unsubscribe(const SessionPtr& s, const std::string& room) {
  state_->ws->leave_room(s, room);
  s->send_text(typed("room.left", {{"room", room}}));
  if (state_->membership) state_->membership(*s, room, false);
}

std::uint64_t ReliableRooms::last_seq(const std::string& room) {
  auto r = state_->room(room);
  std::lock_guard lock(r->mutex);
  state_->load(*r, room);
  return r->broadcast_seq;
}

namespace {
const json::string* string_field(const ebb::json::kvs& p, std::string_view key) {
  auto* v = p.if_contains(key);
  return v && v->is_string() ? &v->as_string() : nullptr;
}
std::optional<std::uint64_t> seq_field(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  return std::nullopt;
}
}  // namespace

bool ReliableRooms::handle(Session& session, const std::string& type, const ebb::json::kvs& p) {
  if (type.rfind("room.", 0) != 0) return false;
  auto& st = *state_;
  auto self = session.shared_from_this();
  if (type == "room.join" || type == "room.leave") {
    auto* room = string_field(p, "room");
    if (!room || !st.valid_room(std::string(*room))) {
      st.send_error(session, type + ": \"room\" must be a non-empty string of at most " +
                                 std::to_string(st.options.max_room_name) + " bytes");
      return true;
    }
    std::string name(*room);
    if (type == "room.leave") {
      unsubscribe(self, name);
      return true;
    }
    auto* after_v = p.if_contains("after");
    auto after = seq_field(after_v);
    if (after_v && !after && !after_v->is_null()) {
      st.send_error(session, "room.join: \"after\" must be a non-negative integer");
      return true;
    }
    subscribe(self, name, after);
    return true;
  }
  if (type == "room.resume") {
    auto* rooms = p.if_contains("rooms");
    if (!rooms || !rooms->is_object()) {
      st.send_error(session, "room.resume: \"rooms\" must be an object {room: last_seq}");
      return true;
    }
    for (const auto& [name, seq] : rooms->as_object()) {
      auto after = seq_field(&seq);
      std::string room_name(name);
      if (!after || !st.valid_room(room_name)) {
        st.send_error(session, "room.resume: bad entry for room \"" + room_name + "\"");
        continue;
      }
      subscribe(self, room_name, after);
    }
    return true;
  }
  if (type == "room.publish") {
    auto* room = string_field(p, "room");
    auto* id_v = string_field(p, "id");
    std::string id = id_v ? std::string(*id_v) : std::string();
    auto nack = [&](const std::string& room_name, std::string error) {
      session.send_text(typed("room.nack", {{"id", id}, {"room", room_name}, {"error", error}}));
    };
    if (!room || !st.valid_room(std::string(*room))) {
      nack(room ? std::string(*room) : "", "\"room\" must be a non-empty string");
      return true;
    }
    std::string name(*room);
    if (id.size() > 64) return nack(name, "\"id\" longer than 64 bytes"), true;
    json::value body = p.contains("body") ? p.at("body") : json::value(nullptr);
    std::string error;
    if (st.filter && !st.filter(session, name, body, error))
      return nack(name, error.empty() ? "rejected" : error), true;
    if (json::serialize(body).size() > st.options.max_body_size)
      return nack(name, "body larger than " + std::to_string(st.options.max_body_size) + " bytes"),
             true;
    std::weak_ptr<Session> weak = self;
    publish(name, std::move(body), id, [weak, name, id](std::uint64_t seq, std::error_code ec) {
      auto s = weak.lock();
      if (!s) return;
      if (ec)
        s->send_text(typed("room.nack", {{"id", id}, {"room", name}, {"error", ec.message()}}));
      else
        s->send_text(typed("room.ack", {{"id", id}, {"room", name}, {"seq", seq}}));
    });
    return true;
  }
  st.send_error(session, "unknown room message type \"" + type + "\"");
  return true;
}

}  // namespace ebb::websocket
