// ReliableRooms: durable, sequenced room messages and exact resume (see the
// header for why the seam is exact, docs/PROTOCOL.md for the wire format).
#include "ebb/websocket/reliable_rooms.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ebb/executor/runtime_executor.hpp"
#include "ebb/metrics/websocket_metrics.hpp"
#include "ebb/websocket/server.hpp"
#include "log/log.hpp"

namespace ebb::websocket {

namespace json = boost::json;

namespace {
// One publish on its way to the store.
struct Publish {
  std::string id;
  std::string text;  // what the store keeps: {"body": ..., "id": ...}
  AppendHandler done;
};

// One room's seam: the last seq broadcast, guarded with the broadcast itself.
// `mutex` is never held across a store call that can wait on the disk,
// except a replay's last catch-up read when its room is so busy that a few
// unlocked rounds did not catch up (see replay_and_join).
struct Room {
  std::mutex mutex;
  bool loaded = false;  // broadcast_seq read from the store
  std::uint64_t broadcast_seq = 0;
  // Publishes made before `loaded`, or while the loader still holds older
  // ones, wait here; the one loader task (`loading`) appends them in order.
  bool loading = false;
  std::vector<Publish> pending;
  // Publish ids seen lately (room.publish "id"), under `mutex`: a client
  // that resends after a reconnect, while its first copy is still being
  // stored, gets that copy's ack instead of a second message. 0 = in flight.
  std::unordered_map<std::string, std::uint64_t> recent_ids;
  std::deque<std::string> recent_order;
  std::unordered_map<std::string, std::vector<AppendHandler>> waiting;  // acks for in-flight ids
};
constexpr std::size_t recent_ids_per_room = 4096;
// A replay's catch-up rounds without the room's lock (each reads what was
// broadcast during the one before; usually one round finds nothing).
constexpr int unlocked_catch_up_rounds = 4;

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

// The error_code of a failed store call (the store throws std::system_error).
std::error_code store_failure(const std::exception& e) {
  if (const auto* se = dynamic_cast<const std::system_error*>(&e)) return se->code();
  return store_error::read_failed;
}

// Work that uses the Server and the store enters the gate; the destructor
// closes it and waits for what entered. Entering may nest on one thread (a
// rejected append completes inline, inside the task that queued it).
class Gate {
 public:
  bool enter() {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    ++inside_;
    return true;
  }
  void leave() {
    std::lock_guard lock(mutex_);
    if (--inside_ == 0) idle_.notify_all();
  }
  void close() {
    std::unique_lock lock(mutex_);
    closed_ = true;
    idle_.wait(lock, [&] { return inside_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  std::size_t inside_ = 0;
  bool closed_ = false;
};

class GateHolder {
 public:
  explicit GateHolder(Gate& gate) : gate_(gate), entered_(gate.enter()) {}
  ~GateHolder() {
    if (entered_) gate_.leave();
  }
  GateHolder(const GateHolder&) = delete;
  GateHolder& operator=(const GateHolder&) = delete;
  explicit operator bool() const noexcept { return entered_; }

 private:
  Gate& gate_;
  bool entered_;
};
}  // namespace

struct ReliableRooms::State : std::enable_shared_from_this<State> {
  Server* ws = nullptr;
  MessageStore* store = nullptr;
  WebSocketMetrics* metrics = nullptr;
  ReliableRoomsOptions options;
  PublishFilter filter;
  MembershipHandler membership;

  std::mutex rooms_mutex;
  std::unordered_map<std::string, std::shared_ptr<Room>> rooms;

  // Store completions, loads and replays may outlive the ReliableRooms
  // object (and so the Server it points to): they enter this gate, and the
  // destructor closes it, after which they touch nothing.
  Gate life;

  std::shared_ptr<Room> room(const std::string& name) {
    std::lock_guard lock(rooms_mutex);
    auto& r = rooms[name];
    if (!r) r = std::make_shared<Room>();
    return r;
  }
  // Returns with `lock` (on r.mutex) held and r.loaded true. The store is
  // read with the lock released, so publishes to the room do not wait on
  // the disk; that is exact because nothing is appended for the room before
  // it is loaded (publishes wait in `pending`), so the store's last seq is
  // what was broadcast before us. Throws what the store throws (lock
  // released).
  void ensure_loaded(std::unique_lock<std::mutex>& lock, Room& r, const std::string& name) {
    if (r.loaded) return;
    lock.unlock();
    const auto seq = store->last_seq(name);
    lock.lock();
    if (r.loaded) return;  // another reader was first: same value
    r.broadcast_seq = seq;
    r.loaded = true;
  }
  void count_store_error() {
    if (metrics) metrics->count_error(WebSocketMetrics::ErrorKind::store);
  }
  void send_error(Session& s, std::string message) {
    s.send_text(typed("error", {{"message", std::move(message)}}));
  }
  bool valid_room(const std::string& name) const {
    return !name.empty() && name.size() <= options.max_room_name;
  }
  // Runs `f` where reading the store does not stall an I/O thread.
  void run_off_io(std::function<void()> f) {
    const auto& exec = ws->executor();
    if (!exec || !exec->post(f)) f();
  }

  void publish(const std::string& name, json::value body, std::string id, AppendHandler done,
               bool load_here);
  void append(const std::shared_ptr<Room>& r, const std::string& name, Publish p);
  void complete(Room& r, const std::string& name, const Publish& p, std::uint64_t seq,
                std::error_code ec);
  void append_pending(const std::shared_ptr<Room>& r, const std::string& name);
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
  state_->life.close();
}

void ReliableRooms::on_publish(PublishFilter f) { state_->filter = std::move(f); }
void ReliableRooms::on_membership(MembershipHandler f) { state_->membership = std::move(f); }
void ReliableRooms::set_metrics(WebSocketMetrics& metrics) noexcept { state_->metrics = &metrics; }

void ReliableRooms::publish(const std::string& room, json::value body, std::string id,
                            AppendHandler done) {
  state_->publish(room, std::move(body), std::move(id), std::move(done), true);
}

// `load_here`: a room not loaded yet is loaded on the calling thread (the
// public publish()); otherwise (handle(), on an I/O thread) by a task on the
// executor while the publish waits in `pending`.
void ReliableRooms::State::publish(const std::string& name, json::value body, std::string id,
                                   AppendHandler done, bool load_here) {
  auto r = room(name);
  json::object stored{{"body", std::move(body)}};
  if (!id.empty()) stored["id"] = id;
  Publish p{std::move(id), json::serialize(stored), std::move(done)};
  std::unique_lock lock(r->mutex);
  if (!p.id.empty()) {
    auto it = r->recent_ids.find(p.id);
    if (it != r->recent_ids.end()) {  // a resend: answer with the first copy
      if (it->second != 0) {
        if (p.done) p.done(it->second, {});
      } else if (p.done) {
        r->waiting[p.id].push_back(std::move(p.done));
      }
      return;
    }
    r->recent_ids.emplace(p.id, 0);
    r->recent_order.push_back(p.id);
    if (r->recent_order.size() > recent_ids_per_room) {
      r->recent_ids.erase(r->recent_order.front());
      r->recent_order.pop_front();
    }
  }
  if (load_here && !r->loaded && !r->loading) {
    try {
      ensure_loaded(lock, *r, name);
    } catch (const std::exception& e) {
      log::logger()->error("room {}: reading its last seq failed: {}", name, e.what());
      count_store_error();
      if (lock.owns_lock()) lock.unlock();
      complete(*r, name, p, 0, store_failure(e));
      return;
    }
  }
  if (r->loaded && !r->loading) {
    lock.unlock();
    append(r, name, std::move(p));
    return;
  }
  r->pending.push_back(std::move(p));
  if (r->loading) return;
  r->loading = true;
  lock.unlock();
  auto self = shared_from_this();
  run_off_io([self, r, name] { self->append_pending(r, name); });
}

// Loads the room (off the I/O threads), then appends what waited, in order,
// until nothing more does.
void ReliableRooms::State::append_pending(const std::shared_ptr<Room>& r, const std::string& name) {
  GateHolder entered(life);
  if (!entered) return;
  std::error_code failed;
  try {
    std::unique_lock lock(r->mutex);
    ensure_loaded(lock, *r, name);
  } catch (const std::exception& e) {
    log::logger()->error("room {}: reading its last seq failed: {}", name, e.what());
    count_store_error();
    failed = store_failure(e);  // these publishes fail; the next one tries again
  }
  for (;;) {
    std::vector<Publish> batch;
    {
      std::lock_guard lock(r->mutex);
      batch.swap(r->pending);
      if (batch.empty()) {
        r->loading = false;
        return;
      }
    }
    for (auto& p : batch) {
      if (failed)
        complete(*r, name, p, 0, failed);
      else
        append(r, name, std::move(p));
    }
  }
}

// Not under r->mutex: a rejected append completes inline and takes it.
void ReliableRooms::State::append(const std::shared_ptr<Room>& r, const std::string& name,
                                  Publish p) {
  auto self = shared_from_this();
  std::string text = p.text;
  const auto queued = std::chrono::steady_clock::now();
  // Runs on the store's writer thread, in seq order (or inline if rejected).
  store->append_async(
      name, std::move(text),
      [self, r, name, queued, p = std::move(p)](std::uint64_t seq, std::error_code ec) {
        GateHolder entered(self->life);
        if (!entered) return;
        if (self->metrics) {
          self->metrics->store_write_duration.observe(std::chrono::steady_clock::now() - queued);
          if (ec) self->count_store_error();
        }
        self->complete(*r, name, p, seq, ec);
      });
}

// Broadcasts a stored publish (seq order: the caller is the writer thread)
// and answers the publisher and any resend of it. Not under r.mutex.
void ReliableRooms::State::complete(Room& r, const std::string& name, const Publish& p,
                                    std::uint64_t seq, std::error_code ec) {
  std::vector<AppendHandler> waiters;
  {
    std::lock_guard lock(r.mutex);
    if (!ec) {
      r.broadcast_seq = seq;
      ws->broadcast_text_to_room(name, message_text(name, seq, now_ms(), p.text));
    }
    if (!p.id.empty()) {
      if (auto w = r.waiting.find(p.id); w != r.waiting.end()) {
        waiters = std::move(w->second);
        r.waiting.erase(w);
      }
      if (ec)
        r.recent_ids.erase(p.id);  // not stored: a resend must be stored
      else if (auto it = r.recent_ids.find(p.id); it != r.recent_ids.end())
        it->second = seq;
    }
  }
  if (p.done) p.done(seq, ec);
  for (auto& w : waiters) w(seq, ec);
}

// The replay reads the store without the room's lock up to the last seq
// broadcast when it started, then catches up, still unlocked, with what was
// broadcast meanwhile (a few rounds at most). Under the lock it sends room.joined
// and joins the server room, so no broadcast falls between the replay and
// the live stream. The lock is held across a read only if the room kept
// publishing through every unlocked round: publishes and the store's writer
// then wait for that one short read, never for the whole replay.
void ReliableRooms::State::replay_and_join(const SessionPtr& s, const std::string& name,
                                           std::optional<std::uint64_t> after) {
  GateHolder entered(life);
  if (!entered) return;
  auto r = room(name);
  std::uint64_t replayed = 0;
  bool gap = false;
  try {
    std::unique_lock lock(r->mutex);
    ensure_loaded(lock, *r, name);
    const std::uint64_t last = r->broadcast_seq;
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
    // Sends (from, to] in batches; newer messages reach us live.
    const auto send_through = [&](std::uint64_t to) {
      while (from < to && !s->is_closing()) {
        auto batch = store->read_after(name, from, std::min<std::uint64_t>(1000, to - from));
        if (!batch.empty() && after && replayed == 0 && batch.front().seq > from + 1)
          gap = true;  // retention
        // Nothing left in (from, to]: retention removed it, and what the
        // store has next (if anything) was published after `to`.
        if (batch.empty() || batch.front().seq > to) {
          from = to;
          break;
        }
        for (const auto& m : batch) {
          if (m.seq > to) break;
          s->send_text(message_text(name, m.seq, m.unix_ms, m.body));
          ++replayed;
          from = m.seq;
        }
      }
    };
    lock.unlock();
    send_through(last);
    lock.lock();
    for (int round = 0;
         round < unlocked_catch_up_rounds && from < r->broadcast_seq && !s->is_closing(); ++round) {
      const std::uint64_t target = r->broadcast_seq;
      lock.unlock();
      send_through(target);
      lock.lock();
    }
    send_through(r->broadcast_seq);  // reads only if the rounds above fell behind
    // room.joined before any live message: everything up to last_seq is sent.
    s->send_text(typed(
        "room.joined",
        {{"room", name}, {"last_seq", r->broadcast_seq}, {"replayed", replayed}, {"gap", gap}}));
    ws->join_room(s, name);
  } catch (const std::exception& e) {
    log::logger()->error("room {}: replay for session {} failed: {}", name, s->id(), e.what());
    count_store_error();
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
  std::unique_lock lock(r->mutex);
  state_->ensure_loaded(lock, *r, room);
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
    // On an I/O thread: a room not loaded yet is loaded on the executor.
    st.publish(
        name, std::move(body), id,
        [weak, name, id](std::uint64_t seq, std::error_code ec) {
          auto s = weak.lock();
          if (!s) return;
          if (ec)
            s->send_text(typed("room.nack", {{"id", id}, {"room", name}, {"error", ec.message()}}));
          else
            s->send_text(typed("room.ack", {{"id", id}, {"room", name}, {"seq", seq}}));
        },
        false);
    return true;
  }
  st.send_error(session, "unknown room message type \"" + type + "\"");
  return true;
}

}  // namespace ebb::websocket
