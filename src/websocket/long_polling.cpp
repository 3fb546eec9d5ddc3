// LongPollingBridge: long-poll clients as sessions of the WebSocket server.
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>

#include "ebb/http/app.hpp"
#include "ebb/metrics/websocket_metrics.hpp"
#include "log/log.hpp"
#include "websocket/long_polling_impl.hpp"

namespace ebb::websocket {
namespace longpoll {

namespace json = boost::json;

namespace {
std::string random_sid() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    throw std::runtime_error("long-polling: no randomness for a session id");
  static const char* hex = "0123456789abcdef";
  std::string sid;
  for (unsigned char b : bytes) {
    sid.push_back(hex[b >> 4]);
    sid.push_back(hex[b & 15]);
  }
  return sid;
}

void json_error(ebb::Response& res, int status, std::string_view message) {
  res.status(status).json({{"error", message}});
}
}  // namespace

// ------------------------------------------------------- LongPollSession ---

LongPollSession::LongPollSession(std::uint64_t id, std::string sid, std::string remote,
                                 Impl& bridge)
    : Session(id), sid_(std::move(sid)), bridge_(bridge), last_seen_(Clock::now()) {
  remote_endpoint_ = std::move(remote);
  target_ = "long-polling";
}

SendStatus LongPollSession::send_text(std::string_view message) {
  std::unique_lock lock(mutex_);
  if (closed_) return SendStatus::closing;
  if (buffer_.size() >= bridge_.capacity) {
    // The slow-consumer policy of WebSocket sessions: close, never grow.
    if (bridge_.metrics) bridge_.metrics->longpoll_messages_dropped.inc();
    close_locked(lock, 1008, "long-poll buffer full");
    return SendStatus::dropped;
  }
  buffer_.emplace_back(message);
  buffered_bytes_ += message.size();
  if (bridge_.metrics) {
    bridge_.metrics->longpoll_messages_buffered.inc();
    // Every message to a long-poll session counts as sent here, direct or
    // broadcast (the server's broadcast counters count connections only).
    bridge_.metrics->count_message_sent(WebSocketMetrics::MessageKind::text, message.size());
  }
  if (held_) answer_locked(held_);
  return SendStatus::buffered;
}

SendStatus LongPollSession::send_binary(std::string_view) {
  log::logger()->warn("long-poll session {}: binary message dropped (text only)", id());
  return SendStatus::dropped;
}

void LongPollSession::close(std::uint16_t code, std::string_view reason) {
  std::unique_lock lock(mutex_);
  close_locked(lock, code, std::string(reason));
}

void LongPollSession::shutdown_now() {
  std::unique_lock lock(mutex_);
  close_locked(lock, 1006, "shut down");
}

bool LongPollSession::is_closing() const noexcept {
  std::lock_guard lock(mutex_);
  return closed_.has_value();
}

std::size_t LongPollSession::buffered_amount() const noexcept {
  std::lock_guard lock(mutex_);
  return buffered_bytes_;
}

void LongPollSession::close_locked(std::unique_lock<std::mutex>& lock, std::uint16_t code,
                                   std::string reason) {
  if (closed_) return;
  closed_ = CloseInfo{code, reason};
  if (held_) answer_locked(held_);
  auto self = std::static_pointer_cast<LongPollSession>(shared_from_this());
  lock.unlock();
  bridge_.deliver_close(self, code, std::move(reason));
  lock.lock();
}

// What is buffered (from first_index_), then the close marker if closed.
void LongPollSession::answer_locked(ebb::PendingResponse& pending) {
  json::array messages;
  for (const auto& m : buffer_) messages.emplace_back(json::string(m));
  json::value closed = nullptr;
  if (closed_) {
    closed = json::object{{"code", closed_->code},
                          {"reason", closed_->reason},
                          {"reconnect_ms", bridge_.reconnect_hint.count()}};
    close_delivered_ = true;
  }
  sent_end_ = first_index_ + buffer_.size();
  pending.response().json(json::object{{"messages", std::move(messages)},
                                       {"next", first_index_ + buffer_.size()},
                                       {"closed", std::move(closed)}});
  pending.send();
  pending = ebb::PendingResponse();
}

void LongPollSession::poll(std::uint64_t ack, ebb::PendingResponse pending) {
  std::unique_lock lock(mutex_);
  last_seen_ = Clock::now();
  // Drop what the client confirmed; keep the rest for a resend. Only what an
  // answer carried can be confirmed: a larger ack drops nothing unsent.
  ack = std::min(ack, sent_end_);
  while (!buffer_.empty() && first_index_ < ack) {
    buffered_bytes_ -= buffer_.front().size();
    buffer_.pop_front();
    ++first_index_;
  }
  // A newer poll replaces the held one. A poll is held only while nothing is
  // buffered and the session is open, so this answers it empty-handed.
  if (held_) answer_locked(held_);
  if (!buffer_.empty() || closed_) return answer_locked(pending);
  held_ = std::move(pending);
  held_until_ = last_seen_ + bridge_.poll_timeout;
}

bool LongPollSession::sweep(Clock::time_point now) {
  std::unique_lock lock(mutex_);
  if (held_ && now >= held_until_) {
    answer_locked(held_);
    last_seen_ = now;
  }
  if (!held_ && !closed_ && now - last_seen_ > bridge_.ttl) {
    close_locked(lock, 1006, "long-poll session expired");
    return true;
  }
  return closed_ && (close_delivered_ || now - last_seen_ > bridge_.ttl);
}

void LongPollSession::drain(const std::string& notice) {
  std::unique_lock lock(mutex_);
  if (closed_) return;
  if (!notice.empty()) {
    buffer_.push_back(notice);
    buffered_bytes_ += notice.size();
  }
  close_locked(lock, 1001, "server shutting down");
}

bool LongPollSession::holds_poll() const {
  std::lock_guard lock(mutex_);
  return static_cast<bool>(held_);
}

void LongPollSession::discard_unpolled() {
  std::lock_guard lock(mutex_);
  const std::uint64_t end = first_index_ + buffer_.size();
  const std::uint64_t unpolled = end - sent_end_;  // acks stop at sent_end_
  buffer_.clear();
  buffered_bytes_ = 0;
  first_index_ = sent_end_ = end;
  if (unpolled == 0) return;
  if (bridge_.metrics) bridge_.metrics->longpoll_messages_dropped.inc(unpolled);
  log::logger()->warn(
      "long-poll session {} ended ({}) with {} buffered messages no poll collected: dropped", sid_,
      closed_ ? closed_->reason : "bridge destroyed", unpolled);
}

bool LongPollSession::finished() const {
  std::lock_guard lock(mutex_);
  return closed_ && close_delivered_;
}

// ------------------------------------------------------------------ Impl ---

Impl::Impl(WebSocketMetrics* m, std::chrono::seconds t, std::size_t cap,
           std::chrono::milliseconds pt)
    : metrics(m), ttl(t), capacity(cap), poll_timeout(pt) {
  if (ttl.count() <= 0) throw std::invalid_argument("LongPollingBridge: ttl must be positive");
  if (capacity == 0) throw std::invalid_argument("LongPollingBridge: capacity must be positive");
  if (poll_timeout.count() <= 0)
    throw std::invalid_argument("LongPollingBridge: poll_timeout must be positive");
  sweeper = std::thread([this] { sweeper_loop(); });
}

Impl::~Impl() {
  {
    std::lock_guard lock(sweeper_mutex);
    stopping = true;
  }
  sweeper_cv.notify_all();
  if (sweeper.joinable()) sweeper.join();
  // Sessions still here leave with the bridge: their unpolled messages too.
  std::lock_guard lock(mutex);
  for (auto& [sid, s] : sessions) {
    s->discard_unpolled();
    if (metrics) metrics->longpoll_sessions_active.dec();
  }
}

void Impl::attach(std::shared_ptr<ebb::websocket::detail::ServerCore> c) {
  reconnect_hint = c->options.shutdown_reconnect;
  core = c;
  c->external = this;
}

std::shared_ptr<LongPollSession> Impl::find(const std::string& sid) {
  std::lock_guard lock(mutex);
  auto it = sessions.find(sid);
  return it == sessions.end() ? nullptr : it->second;
}

// Under the map's lock: once session_count() no longer counts the session,
// its dropped messages are counted.
void Impl::remove(const std::string& sid) {
  std::lock_guard lock(mutex);
  auto it = sessions.find(sid);
  if (it == sessions.end()) return;
  it->second->discard_unpolled();
  sessions.erase(it);
  if (metrics) metrics->longpoll_sessions_active.dec();
}

std::vector<std::shared_ptr<LongPollSession>> Impl::snapshot() {
  std::lock_guard lock(mutex);
  std::vector<std::shared_ptr<LongPollSession>> out;
  out.reserve(sessions.size());
  for (auto& [sid, s] : sessions) out.push_back(s);
  return out;
}

void Impl::deliver_close(const std::shared_ptr<LongPollSession>& s, std::uint16_t code,
                         std::string reason) {
  auto c = core.lock();
  if (!c) return;
  c->post_external(
      [c, s, code, reason = std::move(reason)] { c->external_closed(*s, code, reason); });
}

std::size_t Impl::send_to_all(std::string_view text) {
  std::size_t n = 0;
  for (auto& s : snapshot())
    if (s->send_text(text) != SendStatus::closing) ++n;
  return n;
}

void Impl::drain() {
  auto c = core.lock();
  std::string notice =
      c ? detail::shutdown_notice_text(c->options, std::chrono::milliseconds(0)) : "";
  for (auto& s : snapshot()) s->drain(notice);
}

void Impl::close_all() {
  for (auto& s : snapshot()) s->close(1006, "server stopped");
}

void Impl::sweeper_loop() {
  std::unique_lock lock(sweeper_mutex);
  while (!stopping) {
    sweeper_cv.wait_for(lock, std::chrono::milliseconds(250));
    if (stopping) break;
    lock.unlock();
    auto now = Clock::now();
    for (auto& s : snapshot())
      if (s->sweep(now)) remove(s->sid());
    lock.lock();
  }
}

}  // namespace longpoll

// ---------------------------------------------------- LongPollingBridge ---

LongPollingBridge::LongPollingBridge(WebSocketMetrics* metrics, std::chrono::seconds ttl,
                                     std::size_t capacity, std::chrono::milliseconds poll_timeout)
    : impl_(std::make_shared<Impl>(metrics, ttl, capacity, poll_timeout)) {}

LongPollingBridge::~LongPollingBridge() = default;

std::size_t LongPollingBridge::session_count() const noexcept {
  std::lock_guard lock(impl_->mutex);
  return impl_->sessions.size();
}

namespace {
std::uint64_t parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}
}  // namespace

void LongPollingBridge::mount(ebb::App& app, const std::string& prefix) {
  std::weak_ptr<longpoll::Impl> weak = impl_;
  auto session_of = [weak](ebb::Request& req,
                           ebb::Response& res) -> std::shared_ptr<longpoll::LongPollSession> {
    auto b = weak.lock();
    auto s = b ? b->find(std::string(req.query("sid"))) : nullptr;
    if (!s) longpoll::json_error(res, 404, "unknown session");
    return s;
  };

  app.post(prefix + "/open", [weak](ebb::Request& req, ebb::Response& res) {
    auto b = weak.lock();
    auto core = b ? b->core.lock() : nullptr;
    if (!core || !core->admits_external()) {
      res.header("Retry-After", "1");
      return longpoll::json_error(res, 503, "server is shutting down");
    }
    auto s = std::make_shared<longpoll::LongPollSession>(
        core->next_session_id(), longpoll::random_sid(),
        req.remote_address() + ":" + std::to_string(req.remote_port()), *b);
    {
      std::lock_guard lock(b->mutex);  // insert + post on_open together (see impl header)
      b->sessions.emplace(s->sid(), s);
      core->post_external([core, s] { core->external_opened(*s); });
    }
    if (b->metrics) {
      b->metrics->longpoll_sessions_opened.inc();
      b->metrics->longpoll_sessions_active.inc();
    }
    res.json({{"sid", s->sid()}, {"poll_timeout_ms", b->poll_timeout.count()}});
  });

  app.get(prefix + "/poll", [session_of](ebb::Request& req, ebb::Response& res) {
    auto s = session_of(req, res);
    if (s) s->poll(parse_u64(req.query("ack")), res.defer());
  });

  app.post(prefix + "/send", [weak, session_of](ebb::Request& req, ebb::Response& res) {
    auto s = session_of(req, res);
    if (!s) return;
    auto b = weak.lock();
    auto core = b ? b->core.lock() : nullptr;
    if (!core || s->is_closing()) return longpoll::json_error(res, 409, "session closed");
    core->post_external([core, s, text = req.body()] {
      if (s->is_closing()) return;  // as a WebSocket ignores data after its Close
      if (core->metrics)
        core->metrics->count_message_received(WebSocketMetrics::MessageKind::text, text.size());
      thread_local std::string scratch;
      try {
        core->deliver_text(*s, text, scratch);
      } catch (const std::exception& e) {
        core->report_error(*s, make_error_code(error::policy_violation),
                           std::string("message handler threw: ") + e.what());
        s->close(1011, "internal error");
      }
    });
    res.status(204);
  });

  app.post(prefix + "/close", [weak, session_of](ebb::Request& req, ebb::Response& res) {
    auto s = session_of(req, res);
    if (!s) return;
    s->close(1000, "closed by client");
    if (auto b = weak.lock()) b->remove(s->sid());
    res.status(204);
  });
}

}  // namespace ebb::websocket
