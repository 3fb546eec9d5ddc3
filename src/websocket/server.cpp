// Server facade and ServerCore: accepting, distributing sessions over the
// I/O threads, rooms and broadcasts, stop.
#include "ebb/websocket/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <stdexcept>
#include <thread>

#include "ebb/config/config.hpp"
#include "ebb/executor/runtime_executor.hpp"
#include "log/log.hpp"
#include "websocket/detail/core.hpp"
#include "websocket/long_polling_impl.hpp"

namespace ebb::websocket {

namespace detail {

ServerCore::ServerCore(ServerOptions opts, std::shared_ptr<ebb::executor::RuntimeExecutor> exec)
    : options(std::move(opts)), executor(std::move(exec)) {
  options.validate();
  policy.path = options.path;
  policy.max_size = options.max_handshake_size;
  policy.allowed_origins = options.allowed_origins;
  policy.subprotocols = options.subprotocols;
  policy.deflate = options.deflate;
  if (options.tls.enabled()) {
    tls_context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_context->set_options(asio::ssl::context::default_workarounds |
                             asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                             asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    tls_context->use_certificate_chain_file(options.tls.cert_file, ec);
    if (ec)
      throw std::runtime_error("WEBSOCKET_TLS_CERT: cannot load \"" + options.tls.cert_file +
                               "\": " + ec.message());
    tls_context->use_private_key_file(options.tls.key_file, asio::ssl::context::pem, ec);
    if (ec)
      throw std::runtime_error("WEBSOCKET_TLS_KEY: cannot load \"" + options.tls.key_file +
                               "\": " + ec.message());
  }
}

ServerCore::~ServerCore() = default;

void ServerCore::start() {
  if (started.exchange(true)) throw std::logic_error("ebb::websocket::Server::start called twice");
  unsigned n =
      options.io_threads ? options.io_threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) threads_.push_back(std::make_unique<IoThread>(*this, i));
  if (external_listener) {
    // Single-port model: connections arrive through adopt() from ebb::App.
    for (auto& t : threads_) t->start();
    set_state(LifecycleState::ready);
    ready.store(true);
    if (stop_requested.load()) post_stop();
    log::logger()->info(
        "websocket server serving connections handed over by the HTTP app ({} I/O "
        "thread{})",
        n, n == 1 ? "" : "s");
    return;
  }
  auto& ctx = threads_[0]->context();
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options.host, ec);
  if (ec) throw std::system_error(ec, "WEBSOCKET_HOST \"" + options.host + "\"");
  tcp::endpoint ep(addr, options.port);
  acceptor_ = std::make_unique<tcp::acceptor>(ctx);
  acceptor_->open(ep.protocol());
  acceptor_->set_option(tcp::acceptor::reuse_address(true));
  acceptor_->bind(ep, ec);
  if (ec)
    throw std::system_error(
        ec, "cannot listen on " + options.host + ":" + std::to_string(options.port));
  acceptor_->listen(asio::socket_base::max_listen_connections);
  bound_port = acceptor_->local_endpoint().port();
  do_accept();
  for (auto& t : threads_) t->start();
  set_state(LifecycleState::ready);
  ready.store(true);
  if (stop_requested.load()) post_stop();  // stop_async() raced with start()
  log::logger()->info("websocket server listening on {}:{} ({} I/O thread{}{}{})", options.host,
                      bound_port.load(), n, n == 1 ? "" : "s", tls_context ? ", TLS" : "",
                      options.deflate.enabled ? ", permessage-deflate" : "");
}

// Spreads new connections over the I/O threads in turn; `counter` is the
// caller's own (the acceptor's on thread 0, adopt()'s under adopt_mutex_).
IoThread& ServerCore::next_thread(unsigned& counter) {
  IoThread& t = *threads_[counter % threads_.size()];
  counter = (counter + 1) % threads_.size();
  return t;
}

void ServerCore::do_accept() {
  IoThread& target = next_thread(next_thread_);
  acceptor_->async_accept(
      target.context(), [this, self = shared_from_this(), &target](
                            const boost::system::error_code& ec, tcp::socket s) {
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
        if (!ec) {
          serve_accepted(target, std::move(s));
        } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
          // Out of file descriptors: log and keep accepting; the backlog waits.
          log::logger()->warn("accept failed: {}", ec.message());
        }
        do_accept();
      });
}

// Thread 0: hands an accepted socket to its I/O thread.
void ServerCore::serve_accepted(IoThread& target, tcp::socket s) {
  live_connections.fetch_add(1, std::memory_order_acq_rel);
  auto id = next_id_.fetch_add(1, std::memory_order_relaxed);
  auto c = std::make_shared<Connection>(id, target, shared_from_this(), std::move(s));
  asio::post(target.context(), [c, &target] {
    target.add(c);
    c->start();
  });
}

// Thread 0, as the drain starts. Connections the kernel has completed but
// nobody accepted yet would be reset by closing the listener (the client
// sees ECONNRESET); accept them instead, so their upgrades get the drain's
// 503. Bounded: a flood arriving meanwhile is refused by the close.
void ServerCore::accept_backlog() {
  boost::system::error_code ec;
  acceptor_->non_blocking(true, ec);
  for (int i = 0; !ec && i < asio::socket_base::max_listen_connections; ++i) {
    IoThread& target = next_thread(next_thread_);
    tcp::socket s(target.context());
    acceptor_->accept(s, ec);
    if (ec) break;  // would_block: the queue is empty
    serve_accepted(target, std::move(s));
  }
}

void ServerCore::adopt(int fd, std::string received) {
  {
    std::lock_guard lock(adopt_mutex_);
    if (ready.load() && !stop_posted.load() && !stop_requested.load()) {
      live_connections.fetch_add(1, std::memory_order_acq_rel);
      IoThread& target = next_thread(next_adopt_thread_);
      auto id = next_id_.fetch_add(1, std::memory_order_relaxed);
      asio::post(target.context(), [self = shared_from_this(), &target, fd, id,
                                    received = std::move(received)]() mutable {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        tcp::socket s(target.context());
        boost::system::error_code ec;
        s.assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
        if (ec) {
          ::close(fd);
          self->connection_ended(false, false, Outcome::by_peer);
          return;
        }
        auto c = std::make_shared<Connection>(id, target, self, std::move(s), /*tls=*/false);
        target.add(c);
        c->start_adopted(std::move(received));
      });
      return;
    }
  }
  // Not serving (not started, draining or stopped): answer like a late
  // upgrade on our own listener would be answered, then close.
  auto response = handshake::error_response(503, "server is shutting down", "Retry-After: 1\r\n");
  (void)!::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

void ServerCore::stop_async() noexcept {
  if (stop_requested.exchange(true)) return;
  if (ready.load()) post_stop();
}

void ServerCore::post_stop() noexcept {
  if (stop_claimed_.exchange(true)) return;
  try {
    // The drain's times are written before stop_posted is set: whoever sees
    // stop_posted (a session ending on an I/O thread, drain_report()) may
    // read them.
    drain_started_at_ = now();
    drain_deadline_ = drain_started_at_ + options.shutdown_timeout;
    stop_posted.store(true);
    threads_notifying_ = static_cast<unsigned>(threads_.size());
    set_state(LifecycleState::draining);
    log::logger()->info("drain started: {} sessions, deadline {} ms, close wait {} ms",
                        open_sessions.load(), options.shutdown_timeout.count(),
                        options.close_wait.count());
    // Stop admitting first (thread 0 owns the acceptor), then tell every
    // session, on all I/O threads at once.
    asio::post(threads_[0]->context(), [self = shared_from_this()] { self->close_and_drain(); });
  } catch (const std::exception& e) {
    log::logger()->error("stop_async: {}", e.what());
  }
}

// Thread 0. The begin_drain posts leave from here, after the acceptor is
// closed: an accept that completed before the close has already posted its
// connection to its thread (this same thread ran that handler), so FIFO
// order puts the connection ahead of begin_drain there. Posted earlier, a
// thread with no connections could wind down and never run the late
// connection's handler, leaving the drain waiting for it forever.
void ServerCore::close_and_drain() {
  boost::system::error_code ec;
  if (acceptor_) {
    accept_backlog();
    acceptor_->close(ec);
  }
  {
    // Under adopt_mutex_: an adopt() that saw no stop has posted its
    // connection already, so the drain finds it (FIFO per thread).
    std::lock_guard lock(adopt_mutex_);
    drain_others_left_.store(static_cast<std::int64_t>(threads_.size()));  // one per thread
    for (auto& t : threads_) asio::post(t->context(), [t = t.get()] { t->begin_drain(); });
  }
  if (live_connections.load() == 0) {  // nothing to wait for
    if (!drain_done_posted_.exchange(true)) record_drain_end();
    return;
  }
  drain_timer_ = std::make_unique<asio::steady_timer>(threads_[0]->context());
  schedule_drain_tick();
}

void ServerCore::schedule_drain_tick() {
  // Once per second, or at the deadline if sooner; past it (forcing) still
  // once per second, never in a tight loop. The wait is real time; the
  // deadline is judged by now() (ServerOptions::clock) when the tick runs.
  std::chrono::steady_clock::duration wait = std::chrono::seconds(1);
  if (auto left = drain_deadline_ - now(); left > left.zero()) wait = std::min(wait, left);
  drain_timer_->expires_after(wait);
  drain_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->drain_tick();
  });
}

// Thread 0, every second of the drain: progress, and the deadline.
void ServerCore::drain_tick() {
  std::size_t left = live_connections.load();
  if (left == 0) return;
  auto t = now();
  if (t >= drain_deadline_ && !force_requested.load()) {
    log::logger()->warn("drain deadline ({} ms) reached: forcing {} sessions",
                        options.shutdown_timeout.count(), left);
    force_async();
  } else {
    auto to_deadline = std::chrono::duration<double>(drain_deadline_ - t).count();
    log::logger()->info("drain: {} sessions left, {:.1f} s to deadline ({})", left,
                        std::max(0.0, to_deadline), to_string(state.load()));
  }
  schedule_drain_tick();
}

void ServerCore::thread_drain_closes_done() {
  if (threads_notifying_.fetch_sub(1) == 1) {
    auto expected = LifecycleState::draining;
    state.compare_exchange_strong(expected, LifecycleState::closing);
  }
}

void ServerCore::thread_began_drain(std::size_t in_drain, std::size_t observers) {
  drain_at_start_.fetch_add(in_drain);
  drain_observers_.fetch_add(observers);
  drain_others_left_.fetch_add(static_cast<std::int64_t>(in_drain - observers));
  drain_other_ended();  // this thread's own count is in: give back its token
}

// Any I/O thread. The last non-observer session (or the last thread's
// token) sends every thread to close its observers.
void ServerCore::drain_other_ended() {
  if (drain_others_left_.fetch_sub(1) != 1 || drain_observers_.load() == 0) return;
  for (auto& t : threads_) post_to(*t, [t = t.get()] { t->close_drain_observers(); });
}

void ServerCore::connection_ended(bool in_drain, bool observer, Outcome outcome) {
  if (in_drain && !observer) drain_other_ended();
  if (metrics && draining() && in_drain) {
    if (outcome == Outcome::forced) metrics->drain_sessions_forced.inc();
    if (outcome == Outcome::clean) metrics->drain_sessions_closed_cleanly.inc();
  }
  if (draining() && in_drain) {
    switch (outcome) {
      case Outcome::clean:
        drain_clean_.fetch_add(1);
        break;
      case Outcome::by_peer:
        drain_by_peer_.fetch_add(1);
        break;
      case Outcome::forced:
        drain_forced_.fetch_add(1);
        break;
    }
  }
  if (live_connections.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (!stop_posted.load() || drain_done_posted_.exchange(true)) return;
  record_drain_end();
  // The last session is gone: stop the progress timer so thread 0 can end.
  asio::post(threads_[0]->context(), [self = shared_from_this()] {
    if (self->drain_timer_) self->drain_timer_->cancel();
  });
}

void ServerCore::force_async() noexcept {
  if (force_requested.exchange(true)) return;
  stop_async();
  if (!ready.load()) return;
  log::logger()->warn("drain forced: {} sessions left", live_connections.load());
  try {
    for (auto& t : threads_) asio::post(t->context(), [t = t.get()] { t->force_all(); });
  } catch (const std::exception& e) {
    log::logger()->error("force_async: {}", e.what());
  }
}

std::int64_t ServerCore::drain_elapsed_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now() - drain_started_at_).count();
}

// Once, when the last session of the drain is gone (or there was none).
void ServerCore::record_drain_end() {
  drain_duration_ms_ = drain_elapsed_ms();
  if (metrics) metrics->drain_duration_seconds.set(drain_duration_ms_.load() / 1000.0);
}

DrainReport ServerCore::drain_report() const {
  DrainReport r;
  r.happened = stop_posted.load();
  r.force_requested = force_requested.load();
  r.sessions_at_start = drain_at_start_.load();
  r.closed_cleanly = drain_clean_.load();
  r.closed_by_peer = drain_by_peer_.load();
  r.forced = drain_forced_.load();
  auto ms = drain_duration_ms_.load();
  if (ms < 0 && r.happened) ms = drain_elapsed_ms();
  r.duration = std::chrono::milliseconds(std::max<std::int64_t>(ms, 0));
  return r;
}

void ServerCore::join() {
  for (auto& t : threads_)
    if (t->is_current())
      throw std::logic_error(
          "ebb::websocket::Server::stop() called from one of the server's own I/O threads "
          "(for example inside a callback); it would wait for itself. Use stop_async() there.");
  std::lock_guard lock(join_mutex_);
  for (auto& t : threads_) t->join();
  joined.store(true);  // seq_cst: see post_to()
  while (posts_under_way_.load() != 0) std::this_thread::yield();
  // What other threads posted while the threads were ending, before the
  // gate above closed (sends, closes, broadcasts, long-poll events: every
  // post_to() that saw joined == false).
  for (auto& t : threads_) t->run_late_handlers();
  set_state(LifecycleState::stopped);
  if (final_logged_ || !stop_posted.load()) return;
  final_logged_ = true;
  auto r = drain_report();
  log::logger()->log(r.clean() ? spdlog::level::info : spdlog::level::warn,
                     "drain {} in {} ms: {} sessions at start, {} closed cleanly, {} closed by the "
                     "peer without a Close, {} forced",
                     r.clean() ? "clean" : "NOT clean", r.duration.count(), r.sessions_at_start,
                     r.closed_cleanly, r.closed_by_peer, r.forced);
}

std::string shutdown_notice_text(const ServerOptions& o, std::chrono::milliseconds delay) {
  std::string notice = o.shutdown_notice;
  static constexpr std::string_view placeholder = "{reconnect_ms}";
  std::string ms = std::to_string((o.shutdown_reconnect + delay).count());
  for (auto pos = notice.find(placeholder); pos != std::string::npos;
       pos = notice.find(placeholder, pos + ms.size()))
    notice.replace(pos, placeholder.size(), ms);
  return notice;
}

void ServerCore::deliver_text(Session& s, std::string_view text, std::string& scratch) {
  if (on_typed) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    const boost::json::object* obj = (!ec && v.is_object()) ? &v.as_object() : nullptr;
    const boost::json::value* type = obj ? obj->if_contains("type") : nullptr;
    const boost::json::value* payload = obj ? obj->if_contains("payload") : nullptr;
    if (!type || !type->is_string() || (payload && !payload->is_object())) {
      report_error(s, make_error_code(error::bad_json),
                   ec ? "typed message is not JSON: " + ec.message()
                      : "typed message must be {\"type\": string, \"payload\": object}");
      return;
    }
    static const boost::json::object empty;
    std::string type_str(type->as_string());
    on_typed(s, type_str, payload ? payload->as_object() : empty);
    return;
  }
  if (on_text_view) {
    on_text_view(s, text);
  } else if (on_text_string) {
    // One string per thread, reused: no allocation per message once warm.
    scratch.assign(text);
    on_text_string(s, scratch);
  }
}

// Through post_to()'s gate: a handler posted after join()'s last run of late
// handlers would never run, and it holds the core (a leak through the core's
// own io_context). Refused instead; `f` is destroyed here.
bool ServerCore::post_external(std::function<void()> f) {
  if (threads_.empty()) return false;
  return post_to(*threads_[0], std::move(f));
}

void ServerCore::external_opened(Session& s) {
  open_sessions.fetch_add(1, std::memory_order_relaxed);
  if (!on_open) return;
  try {
    on_open(s);
  } catch (const std::exception& e) {
    report_error(s, make_error_code(error::policy_violation),
                 std::string("on_open threw: ") + e.what());
  }
}

void ServerCore::external_closed(Session& s, std::uint16_t code, std::string_view reason) {
  {
    std::lock_guard lock(rooms_mutex_);
    auto it = external_memberships_.find(s.id());
    if (it != external_memberships_.end()) {
      for (const auto& room : it->second) {
        auto r = external_rooms_.find(room);
        if (r == external_rooms_.end()) continue;
        r->second.erase(s.id());
        if (r->second.empty()) external_rooms_.erase(r);
      }
      external_memberships_.erase(it);
      update_rooms_gauge();
    }
  }
  open_sessions.fetch_sub(1, std::memory_order_relaxed);
  if (!on_close) return;
  try {
    on_close(s, code, reason);
  } catch (const std::exception& e) {
    log::logger()->error("session {}: on_close threw: {}", s.id(), e.what());
  }
}

void ServerCore::join_external(const SessionPtr& s, const std::string& room) {
  if (s->is_closing()) return;
  std::lock_guard lock(rooms_mutex_);
  auto [it, inserted] = external_rooms_[room].emplace(s->id(), s);
  if (inserted) external_memberships_[s->id()].push_back(room);
  update_rooms_gauge();
}

void ServerCore::leave_external(const SessionPtr& s, const std::string& room) {
  std::lock_guard lock(rooms_mutex_);
  auto it = external_rooms_.find(room);
  if (it == external_rooms_.end()) return;
  it->second.erase(s->id());
  if (it->second.empty()) external_rooms_.erase(it);
  auto m = external_memberships_.find(s->id());
  if (m != external_memberships_.end()) std::erase(m->second, room);
  update_rooms_gauge();
}

void ServerCore::set_state(LifecycleState s) noexcept {
  state.store(s);
  if (metrics) metrics->set_lifecycle_state(to_string(s));
}

namespace {
WebSocketMetrics::ErrorKind error_kind(std::error_code ec) {
  using K = WebSocketMetrics::ErrorKind;
  if (ec.category() != websocket_category()) return K::io;
  switch (static_cast<error>(ec.value())) {
    case error::protocol_error:
    case error::inflate_failed:
      return K::protocol;
    case error::invalid_utf8:
      return K::utf8;
    case error::message_too_big:
      return K::too_big;
    case error::bad_json:
      return K::bad_json;
    case error::send_queue_overflow:
      return K::slow_consumer;
    case error::policy_violation:
      return K::handler_exception;
    case error::handshake_timeout:
    case error::idle_timeout:
    case error::pong_timeout:
    case error::close_timeout:
      return K::timeout;
    default:
      return K::other;
  }
}
}  // namespace

void ServerCore::report_error(Session& s, std::error_code ec, std::string_view what) {
  if (metrics) {
    metrics->count_error(error_kind(ec));
    if (ec == make_error_code(error::send_queue_overflow)) metrics->slow_consumer_closes.inc();
  }
  if (!on_error) return;
  try {
    on_error(s, ec, what);
  } catch (const std::exception& e) {
    log::logger()->error("session {}: on_error threw: {}", s.id(), e.what());
  }
}

// ---------------------------------------------------------------- rooms ---

// Under rooms_mutex_. A room counts once, whether its members hold
// WebSocket connections, long-poll sessions, or both.
void ServerCore::update_rooms_gauge() {
  if (!metrics) return;
  std::size_t n = rooms_.size();
  for (const auto& [room, members] : external_rooms_)
    if (!rooms_.contains(room)) ++n;
  metrics->rooms.set(static_cast<double>(n));
}

void ServerCore::join_room(const std::shared_ptr<Connection>& c, const std::string& room) {
  std::lock_guard lock(rooms_mutex_);
  if (c->rooms_closed) return;
  auto [it, inserted] = rooms_[room].emplace(c->id(), c);
  update_rooms_gauge();
  if (inserted) c->rooms.push_back(room);
}

void ServerCore::leave_room(const std::shared_ptr<Connection>& c, const std::string& room) {
  std::lock_guard lock(rooms_mutex_);
  auto it = rooms_.find(room);
  if (it == rooms_.end()) return;
  if (it->second.erase(c->id()) == 0) return;
  if (it->second.empty()) rooms_.erase(it);
  update_rooms_gauge();
  std::erase(c->rooms, room);
}

void ServerCore::leave_all_rooms(Connection& c) {
  std::lock_guard lock(rooms_mutex_);
  c.rooms_closed = true;
  for (auto& room : c.rooms) {
    auto it = rooms_.find(room);
    if (it == rooms_.end()) continue;
    it->second.erase(c.id());
    if (it->second.empty()) rooms_.erase(it);
    update_rooms_gauge();
  }
  c.rooms.clear();
}

std::size_t ServerCore::room_size(const std::string& room) const {
  std::lock_guard lock(rooms_mutex_);
  auto it = rooms_.find(room);
  auto ext = external_rooms_.find(room);
  return (it == rooms_.end() ? 0 : it->second.size()) +
         (ext == external_rooms_.end() ? 0 : ext->second.size());
}

std::shared_ptr<const std::string> ServerCore::encode_shared(codec::Opcode op,
                                                             std::string_view msg) const {
  auto frame = std::make_shared<std::string>();
  frame->reserve(msg.size() + codec::max_header_size);
  codec::append_frame(*frame, op, msg);
  return frame;
}

namespace {
bool by_thread_empty(const std::vector<std::vector<std::shared_ptr<Connection>>>& v) {
  for (const auto& t : v)
    if (!t.empty()) return false;
  return true;
}
}  // namespace

std::size_t ServerCore::broadcast_to_room(const std::string& room, codec::Opcode op,
                                          std::string_view msg) {
  // Group members by I/O thread under the lock; enqueue outside it.
  std::vector<std::vector<std::shared_ptr<Connection>>> by_thread(threads_.size());
  std::vector<SessionPtr> external;
  std::size_t count = 0;
  {
    std::lock_guard lock(rooms_mutex_);
    auto it = rooms_.find(room);
    if (it != rooms_.end()) {
      for (auto& [id, c] : it->second) by_thread[c->thread_index()].push_back(c);
      count = it->second.size();
    }
    if (auto ext = external_rooms_.find(room); ext != external_rooms_.end())
      for (auto& [id, w] : ext->second)
        if (auto s = w.lock()) external.push_back(std::move(s));
  }
  count_broadcast(op, msg.size(), count);  // external sessions count their own
  // External sessions queue text themselves (no frame to share).
  for (auto& s : external)
    if (op == codec::Opcode::text && s->send_text(msg) != SendStatus::closing) ++count;
  if (by_thread_empty(by_thread)) return count;
  auto frame = encode_shared(op, msg);  // encoded once for every member
  for (std::size_t i = 0; i < by_thread.size(); ++i) {
    if (by_thread[i].empty()) continue;
    if (threads_[i]->is_current()) {
      for (auto& c : by_thread[i]) c->enqueue_shared(frame);
    } else {
      post_to(*threads_[i], [frame, members = std::move(by_thread[i])] {
        for (auto& c : members) c->enqueue_shared(frame);
      });
    }
  }
  return count;
}

std::size_t ServerCore::broadcast_all(codec::Opcode op, std::string_view msg) {
  std::size_t external_sent = 0;  // counted by the sessions themselves
  if (external && op == codec::Opcode::text) external_sent = external->send_to_all(msg);
  auto frame = encode_shared(op, msg);
  for (auto& t : threads_) {
    auto run = [frame, t = t.get()] {
      t->for_each_open([&](Connection& c) { c.enqueue_shared(frame); });
    };
    if (t->is_current())
      run();
    else
      asio::post(t->context(), run);
  }
  auto n = open_sessions.load(std::memory_order_relaxed);
  count_broadcast(op, msg.size(), n > external_sent ? n - external_sent : 0);
  return n;
}

void ServerCore::count_broadcast(codec::Opcode op, std::size_t bytes, std::size_t recipients) {
  if (!metrics || recipients == 0) return;
  auto kind = op == codec::Opcode::text ? WebSocketMetrics::MessageKind::text
                                        : WebSocketMetrics::MessageKind::binary;
  metrics->messages_sent.at({static_cast<std::size_t>(kind)}).inc(recipients);
  metrics->sent_bytes.inc(bytes * recipients);
}

}  // namespace detail

// ------------------------------------------------------------- Server ----

Server::Server(const ebb::config::Config& cfg,
               std::shared_ptr<ebb::executor::RuntimeExecutor> executor)
    : Server(ServerOptions::from_config(cfg), std::move(executor)) {}

Server::Server(ServerOptions options, std::shared_ptr<ebb::executor::RuntimeExecutor> executor)
    : core_(std::make_shared<detail::ServerCore>(std::move(options), std::move(executor))) {}

Server::~Server() {
  if (!core_->started.load()) return;
  stop_async();
  try {
    core_->join();
  } catch (const std::exception& e) {
    log::logger()->critical("~Server: {}", e.what());
  }
}

void Server::on_open(OpenHandler h) { core_->on_open = std::move(h); }
void Server::on_typed_message(TypedHandler h) { core_->on_typed = std::move(h); }
void Server::on_close(CloseHandler h) { core_->on_close = std::move(h); }
void Server::on_error(ErrorHandler h) { core_->on_error = std::move(h); }
void Server::set_text_view_handler(MessageViewHandler h) { core_->on_text_view = std::move(h); }
void Server::set_text_string_handler(MessageHandler h) { core_->on_text_string = std::move(h); }
void Server::set_binary_view_handler(MessageViewHandler h) { core_->on_binary_view = std::move(h); }
void Server::set_binary_string_handler(MessageHandler h) { core_->on_binary_string = std::move(h); }

void Server::start() { core_->start(); }
void Server::set_metrics(WebSocketMetrics& metrics) noexcept {
  core_->metrics = &metrics;
  metrics.set_lifecycle_state(to_string(core_->state.load()));
}
void Server::attach_long_polling_bridge(LongPollingBridge* bridge) {
  if (core_->started.load())
    throw std::logic_error("attach_long_polling_bridge must be called before start()");
  bridge->impl()->attach(core_);
}
void Server::use_external_listener() noexcept { core_->external_listener = true; }
void Server::adopt_connection(int native_socket, std::string received) {
  core_->adopt(native_socket, std::move(received));
}
std::uint16_t Server::port() const noexcept { return core_->bound_port.load(); }
void Server::stop_async() noexcept { core_->stop_async(); }
void Server::stop() {
  stop_async();
  core_->join();
}
void Server::force_async() noexcept { core_->force_async(); }
LifecycleState Server::state() const noexcept { return core_->state.load(); }
DrainReport Server::drain_report() const { return core_->drain_report(); }

const char* to_string(LifecycleState s) noexcept {
  switch (s) {
    case LifecycleState::starting:
      return "starting";
    case LifecycleState::ready:
      return "ready";
    case LifecycleState::draining:
      return "draining";
    case LifecycleState::closing:
      return "closing";
    case LifecycleState::stopped:
      return "stopped";
  }
  return "unknown";
}

bool Server::running() const noexcept {
  return core_->started.load() && !core_->stop_requested.load();
}

void Server::join_room(const SessionPtr& s, const std::string& room) {
  if (auto c = std::dynamic_pointer_cast<detail::Connection>(s)) return core_->join_room(c, room);
  if (!core_->external) throw std::invalid_argument("session does not belong to this server");
  core_->join_external(s, room);
}
void Server::leave_room(const SessionPtr& s, const std::string& room) {
  if (auto c = std::dynamic_pointer_cast<detail::Connection>(s)) return core_->leave_room(c, room);
  if (core_->external) core_->leave_external(s, room);
}
std::size_t Server::broadcast_text_to_room(const std::string& room, std::string_view m) {
  return core_->broadcast_to_room(room, codec::Opcode::text, m);
}
std::size_t Server::broadcast_binary_to_room(const std::string& room, std::string_view m) {
  return core_->broadcast_to_room(room, codec::Opcode::binary, m);
}
std::size_t Server::broadcast_text(std::string_view m) {
  return core_->broadcast_all(codec::Opcode::text, m);
}
std::size_t Server::room_size(const std::string& room) const { return core_->room_size(room); }
std::size_t Server::session_count() const noexcept { return core_->open_sessions.load(); }
std::size_t Server::connection_count() const noexcept { return core_->live_connections.load(); }
const ServerOptions& Server::options() const noexcept { return core_->options; }
const std::shared_ptr<ebb::executor::RuntimeExecutor>& Server::executor() const noexcept {
  return core_->executor;
}

}  // namespace ebb::websocket
