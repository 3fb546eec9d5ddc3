// ebb::App and its core: listener, I/O threads, routing, built-in routes,
// and the HTTP drain (DESIGN.md §2).
#include "ebb/http/app.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <csignal>
#include <stdexcept>

#include "ebb/lifecycle/shutdown.hpp"
#include "ebb/metrics/websocket_metrics.hpp"
#include "ebb/websocket/server.hpp"
#include "http/core.hpp"
#include "http/http_date.hpp"
#include "http/static_files.hpp"
#include "log/log.hpp"

namespace ebb {
namespace http::detail {

namespace {
thread_local HttpThread* current_thread = nullptr;
constexpr auto sweep_period = std::chrono::milliseconds(250);

// Equal-length digests compared in constant time: neither the token's
// content nor its length leaks through timing.
bool token_matches(std::string_view given, std::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

bool starts_with_segment(std::string_view path, std::string_view prefix) {
  if (prefix == "/") return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/' || prefix.back() == '/';
}
}  // namespace

// ------------------------------------------------------------ HttpThread ---

HttpThread::HttpThread(AppCore& core, unsigned index)
    : core_(core),
      index_(index),
      ctx_(1),
      work_(asio::make_work_guard(ctx_)),
      sweep_timer_(ctx_),
      read_buffer_(new char[read_buffer_size]) {}

HttpThread::~HttpThread() { join(); }

void HttpThread::start() {
  arm_ready_wait();
  schedule_sweep();
  thread_ = std::thread([this] {
    current_thread = this;
    try {
      ctx_.run();
    } catch (const std::exception& e) {
      log::logger()->critical("HTTP I/O thread {} stopped by an exception: {}", index_, e.what());
    }
    graveyard_.clear();
    current_thread = nullptr;
  });
}

void HttpThread::join() {
  if (!thread_.joinable()) return;
  thread_.join();
  // Posts that raced with the end (a deferred response sent late) release
  // what they hold here; their connections are gone, so they do nothing.
  HttpThread* previous = current_thread;
  current_thread = this;
  ctx_.restart();
  ctx_.poll();
  graveyard_.clear();
  current_thread = previous;
}

bool HttpThread::is_current() const noexcept { return current_thread == this; }

void HttpThread::arm_ready_wait() {
  epoll_.async_wait([this] {
    run_ready();
    if (!finished_) arm_ready_wait();
  });
}

void HttpThread::run_ready() {
  epoll_.dispatch_ready<HttpConnection>();  // the graveyard keeps what ends meanwhile
  graveyard_.clear();
}

void HttpThread::schedule_sweep() {
  sweep_timer_.expires_after(sweep_period);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || finished_) return;
    auto now = Clock::now();
    for (std::size_t i = connections_.size(); i-- > 0;) {
      if (i >= connections_.size()) continue;
      auto c = connections_[i];
      c->sweep(now);
    }
    graveyard_.clear();
    if (!finished_) schedule_sweep();
  });
}

void HttpThread::add(std::shared_ptr<HttpConnection> c) {
  c->registry_index = connections_.size();
  connections_.push_back(std::move(c));
}

void HttpThread::remove(HttpConnection* c) {
  std::size_t i = c->registry_index;
  if (i >= connections_.size() || connections_[i].get() != c) return;
  graveyard_.push_back(std::move(connections_[i]));
  if (i + 1 != connections_.size()) {
    connections_[i] = std::move(connections_.back());
    connections_[i]->registry_index = i;
  }
  connections_.pop_back();
  maybe_finish();
}

void HttpThread::begin_drain() {
  auto snapshot = connections_;
  for (auto& c : snapshot) c->begin_drain();
  // Idle connections closed above are still in the graveyard; this handler
  // is not an epoll batch, so free them now.
  graveyard_.clear();
}

void HttpThread::force_all() {
  auto snapshot = connections_;
  for (auto& c : snapshot) c->force();
  graveyard_.clear();
}

void HttpThread::allow_finish() {
  finishing_ = true;
  maybe_finish();
}

void HttpThread::maybe_finish() {
  if (!finishing_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  sweep_timer_.cancel();
  epoll_.cancel();
  if (index_ == 0) core_.thread0_finished();
  work_.reset();
}

const std::string& HttpThread::date_line() {
  std::time_t now = std::time(nullptr);
  if (now != date_second_) {
    date_second_ = now;
    date_line_ = "Date: " + format_http_date(now) + "\r\n";
  }
  return date_line_;
}

// --------------------------------------------------------------- AppCore ---

AppCore::AppCore(AppOptions opts, ebb::config::Config cfg)
    : options(std::move(opts)), config(std::move(cfg)) {
  options.validate();
}

AppCore::~AppCore() = default;

std::uint16_t AppCore::listen(std::uint16_t port) {
  if (listening_.exchange(true)) throw std::logic_error("ebb::App: listen()/run() called twice");
  for (unsigned i = 0; i < options.io_threads; ++i)
    threads_.push_back(std::make_unique<HttpThread>(*this, i));
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options.host, ec);
  if (ec) throw std::system_error(ec, "SERVER_HOST \"" + options.host + "\"");
  tcp::endpoint ep(addr, port);
  acceptor_ = std::make_unique<tcp::acceptor>(threads_[0]->context());
  acceptor_->open(ep.protocol());
  acceptor_->set_option(tcp::acceptor::reuse_address(true));
  acceptor_->bind(ep, ec);
  if (ec) {
    acceptor_.reset();  // nothing started: leave no handler (and no cycle) behind
    threads_.clear();
    throw std::system_error(ec, "cannot listen on " + options.host + ":" + std::to_string(port));
  }
  acceptor_->listen(asio::socket_base::max_listen_connections);
  bound_port = acceptor_->local_endpoint().port();
  do_accept();
  for (auto& t : threads_) t->start();
  serving_.store(true);
  AppState expected = AppState::starting;
  state.compare_exchange_strong(expected, AppState::ready);
  log::logger()->info("http listening on {}:{} ({} I/O thread{})", options.host, bound_port.load(),
                      threads_.size(), threads_.size() == 1 ? "" : "s");
  if (draining.load()) begin_drain_on_threads();  // stop() came before listen()
  return bound_port;
}

void AppCore::do_accept() {
  HttpThread& target = *threads_[next_thread_];
  next_thread_ = (next_thread_ + 1) % threads_.size();
  acceptor_->async_accept(target.context(),
                          [this, self = shared_from_this(), &target](
                              const boost::system::error_code& ec, tcp::socket s) {
                            if (ec == asio::error::operation_aborted || !acceptor_->is_open())
                              return;
                            if (!ec) accept_one(target, std::move(s));
                            do_accept();
                          });
}

void AppCore::accept_one(HttpThread& target, tcp::socket s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return;  // reset before we looked: nothing to serve
  s.set_option(tcp::no_delay(true), ec);
  s.non_blocking(true, ec);
  int fd = s.release(ec);
  if (ec) return;
  connections.fetch_add(1, std::memory_order_acq_rel);
  auto c = std::make_shared<HttpConnection>(target, *this, fd, ep.address().to_string(), ep.port());
  asio::post(target.context(), [c, &target] {
    target.add(c);
    c->start();
  });
}

// The servers given to App::ws, unless ~App said they may be gone.
void AppCore::for_each_ws_server(const std::function<void(ebb::websocket::Server&)>& f) {
  if (ws_servers_gone_.load()) return;
  for (const auto& [path, server] : ws_routes) f(*server);
}

void AppCore::stop(bool reach_ws_servers) noexcept {
  if (!reach_ws_servers) ws_servers_gone_.store(true);
  if (stop_started_.exchange(true)) return;
  drain_started_ = Clock::now();
  drain_deadline_ = drain_started_ + options.shutdown_timeout;
  drain_in_flight_at_start_ = in_flight.load();
  draining.store(true, std::memory_order_release);
  AppState expected = AppState::ready;
  state.compare_exchange_strong(expected, AppState::draining);
  expected = AppState::starting;
  state.compare_exchange_strong(expected, AppState::draining);
  log::logger()->info("http drain started: {} connections, {} requests in flight, deadline {} ms",
                      connections.load(), in_flight.load(), options.shutdown_timeout.count());
  if (shutdown_callback) {
    try {
      shutdown_callback();
    } catch (const std::exception& e) {
      log::logger()->error("shutdown callback threw: {}", e.what());
    }
  }
  // Upgrades handed over through App::ws are the servers' sessions: they
  // drain with the app whatever the callback above does (one slot, which a
  // user may have taken from AttachedRuntime). stop_async() is idempotent.
  for_each_ws_server([](ebb::websocket::Server& server) { server.stop_async(); });
  if (serving_.load()) begin_drain_on_threads();
}

void AppCore::begin_drain_on_threads() {
  if (drain_posted_.exchange(true)) return;
  // Handlers hold the core weakly: one posted after the threads ended (a
  // late force) must not keep it alive through its own io_context (a cycle).
  asio::post(threads_[0]->context(), [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->drain_timer_ = std::make_unique<asio::steady_timer>(self->threads_[0]->context());
    self->schedule_drain_tick();
    if (self->options.readiness_grace.count() > 0 && !self->force_requested.load()) {
      // Readiness already says 503; keep admitting (with Connection: close)
      // until load balancers have noticed.
      self->grace_timer_ = std::make_unique<asio::steady_timer>(self->threads_[0]->context());
      self->grace_timer_->expires_after(self->options.readiness_grace);
      self->grace_timer_->async_wait([weak](const boost::system::error_code&) {
        if (auto s = weak.lock()) s->close_listener();
      });
    } else {
      self->close_listener();
    }
  });
  for (auto& t : threads_) asio::post(t->context(), [t = t.get()] { t->begin_drain(); });
}

// Thread 0.
void AppCore::close_listener() {
  if (listener_closed_) return;
  listener_closed_ = true;
  boost::system::error_code ec;
  acceptor_->close(ec);
  if (grace_timer_) grace_timer_->cancel();
  for (auto& t : threads_) asio::post(t->context(), [t = t.get()] { t->allow_finish(); });
}

// Thread 0 has nothing left: its drain and grace timers must not hold it.
void AppCore::thread0_finished() {
  if (drain_timer_) drain_timer_->cancel();
  if (grace_timer_) grace_timer_->cancel();
}

void AppCore::schedule_drain_tick() {
  drain_timer_->expires_at(std::min(Clock::now() + std::chrono::seconds(1), drain_deadline_));
  drain_timer_->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (self && !ec) self->drain_tick();
  });
}

// Thread 0, every second of the drain: progress, and the deadline.
void AppCore::drain_tick() {
  if (connections.load() == 0 && listener_closed_) return;
  auto now = Clock::now();
  if (now >= drain_deadline_) {
    log::logger()->warn(
        "http drain deadline reached: forcing {} connections ({} requests in flight)",
        connections.load(), in_flight.load());
    force();
    return;
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline_ - now);
  log::logger()->info("http draining: {} connections, {} requests in flight, {:.1f} s to deadline",
                      connections.load(), in_flight.load(), left.count() / 1000.0);
  schedule_drain_tick();
}

void AppCore::force() noexcept {
  if (force_started_.exchange(true)) return;
  force_requested.store(true);
  stop();
  log::logger()->warn("http drain forced: cutting {} connections", connections.load());
  if (force_callback) {
    try {
      force_callback();
    } catch (const std::exception& e) {
      log::logger()->error("force callback threw: {}", e.what());
    }
  }
  // As in stop(): the servers given to ws() are forced with the app.
  for_each_ws_server([](ebb::websocket::Server& server) { server.force_async(); });
  if (!serving_.load()) return;
  asio::post(threads_[0]->context(), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->close_listener();
  });
  for (auto& t : threads_) asio::post(t->context(), [t = t.get()] { t->force_all(); });
}

void AppCore::wait() {
  for (auto& t : threads_)
    if (t->is_current())
      throw std::logic_error(
          "ebb::App::wait()/run() called from one of the app's own I/O threads (for example "
          "inside a handler); it would wait for itself. Use stop() there.");
  std::lock_guard lock(wait_mutex_);
  if (joined_) return;
  for (auto& t : threads_) t->join();
  joined_ = true;
  state.store(AppState::stopped);
  if (!stop_started_.load()) return;
  drain_duration_ms_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - drain_started_).count();
  auto r = drain_report();
  log::logger()->log(r.clean() ? spdlog::level::info : spdlog::level::warn,
                     "http drain {} in {} ms: {} requests in flight at start, {} answered during "
                     "the drain, {} connections forced",
                     r.clean() ? "clean" : "NOT clean", r.duration.count(), r.in_flight_at_start,
                     r.completed, r.forced);
}

HttpDrainReport AppCore::drain_report() const {
  HttpDrainReport r;
  r.happened = stop_started_.load();
  if (!r.happened) return r;
  r.in_flight_at_start = drain_in_flight_at_start_.load();
  r.completed = drain_completed_.load();
  r.forced = drain_forced_.load();
  auto ms = drain_duration_ms_.load();
  r.duration = std::chrono::milliseconds(
      ms >= 0 ? ms
              : std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - drain_started_)
                    .count());
  return r;
}

void AppCore::request_started() noexcept {
  in_flight.fetch_add(1, std::memory_order_acq_rel);
  if (metrics) metrics->http_requests_in_flight.inc();
}

void AppCore::request_finished(bool answered) noexcept {
  in_flight.fetch_sub(1, std::memory_order_acq_rel);
  if (metrics) metrics->http_requests_in_flight.dec();
  if (answered && draining.load(std::memory_order_acquire)) drain_completed_.fetch_add(1);
}

void AppCore::connection_ended(bool forced) noexcept {
  connections.fetch_sub(1, std::memory_order_acq_rel);
  if (forced) drain_forced_.fetch_add(1);
}

ebb::websocket::Server* AppCore::ws_for(std::string_view path) const {
  auto it = ws_routes.find(path);
  return it == ws_routes.end() ? nullptr : it->second;
}

void AppCore::post_to(unsigned thread, std::function<void()> f) {
  if (thread < threads_.size()) asio::post(threads_[thread]->context(), std::move(f));
}

// ---------------------------------------------------------------- routing ---

bool AppCore::serve_builtin(Request& req, Response& res) {
  const auto& path = req.path();
  const bool get = req.method() == "GET" || req.method() == "HEAD";
  if (!options.health_live_path.empty() && path == options.health_live_path && get) {
    res.json({{"status", "live"}});
    return true;
  }
  if (!options.health_ready_path.empty() && path == options.health_ready_path && get) {
    const bool ready = state.load() == AppState::ready;
    res.status(ready ? 200 : 503).json({{"status", ready ? "ready" : "draining"}});
    if (!ready) res.header("Retry-After", "1");
    return true;
  }
  if (!options.admin_token.empty() && path == options.admin_shutdown_path) {
    if (req.method() != "POST") {
      res.status(405).header("Allow", "POST").text("use POST\n");
      return true;
    }
    std::string_view auth = req.header("Authorization");
    constexpr std::string_view bearer = "Bearer ";
    const bool ok = auth.size() > bearer.size() && auth.substr(0, bearer.size()) == bearer &&
                    token_matches(auth.substr(bearer.size()), options.admin_token);
    if (!ok) {
      log::logger()->warn("admin shutdown refused: bad or missing token from {}",
                          req.remote_address());
      res.status(401).header("WWW-Authenticate", "Bearer").text("unauthorized\n");
      return true;
    }
    log::logger()->info("admin shutdown requested from {}", req.remote_address());
    res.status(202).json({{"status", "draining"}});
    stop();
    return true;
  }
  if (is_ws_path(path)) {
    // An upgrade for this path never reaches here (handed over at parse).
    res.status(426).header("Upgrade", "websocket").text("this path speaks WebSocket only\n");
    return true;
  }
  return false;
}

bool AppCore::serve_static(Request& req, Response& res) {
  if (req.method() != "GET" && req.method() != "HEAD") return false;
  for (const auto& [prefix, root] : static_roots) {
    if (!starts_with_segment(req.path(), prefix)) continue;
    std::string_view rest = std::string_view(req.path()).substr(prefix.size());
    while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    if (auto file = resolve_static(root, rest)) {
      serve_file(*file, req, res);
      return true;
    }
  }
  return false;
}

void AppCore::route(Request& req, Response& res) {
  for (const auto& before : befores)
    if (!before(req, res)) return;
  auto m = router.match(req.method(), req.path(), RequestBuilder(req).params());
  if (m.handler) return (*m.handler)(req, res);
  if (serve_static(req, res)) return;
  if (m.path_known) {
    res.status(405).header("Allow", m.allow).text("method not allowed\n");
    return;
  }
  res.status(404).text("not found\n");
}

void AppCore::handle(Request& req, Response& res) {
  if (serve_builtin(req, res)) return;
  try {
    route(req, res);
    if (!res.deferred())
      for (const auto& after : afters) after(req, res);
  } catch (const std::exception& e) {
    log::logger()->error("{} {}: handler threw: {}", req.method(), req.target(), e.what());
    ResponseAccess::reset(res);
    res.status(500).text("internal server error\n");
  } catch (...) {
    log::logger()->error("{} {}: handler threw a non-exception", req.method(), req.target());
    ResponseAccess::reset(res);
    res.status(500).text("internal server error\n");
  }
}

}  // namespace http::detail

// ------------------------------------------------------------------ App ---

const char* to_string(AppState s) noexcept {
  switch (s) {
    case AppState::starting:
      return "starting";
    case AppState::ready:
      return "ready";
    case AppState::draining:
      return "draining";
    case AppState::stopped:
      return "stopped";
  }
  return "unknown";
}

App::App() : App(ebb::config::Config(".env")) {}
App::App(const ebb::config::Config& cfg)
    : core_(std::make_shared<http::detail::AppCore>(AppOptions::from_config(cfg), cfg)) {}
App::App(AppOptions options)
    : core_(std::make_shared<http::detail::AppCore>(std::move(options),
                                                    ebb::config::Config::from_map({}))) {}

App::~App() {
  try {
    // The servers given to ws() may be gone already (declared after the
    // app): they drained, or drain, on their own.
    core_->stop(false);
    core_->wait();
  } catch (const std::exception& e) {
    log::logger()->critical("ebb::App destroyed badly: {}", e.what());
  }
}

App& App::route(std::string method, std::string pattern, Handler h) {
  core_->router.add(std::move(method), pattern, std::move(h));
  return *this;
}
App& App::get(std::string p, Handler h) { return route("GET", std::move(p), std::move(h)); }
App& App::post(std::string p, Handler h) { return route("POST", std::move(p), std::move(h)); }
App& App::put(std::string p, Handler h) { return route("PUT", std::move(p), std::move(h)); }
App& App::patch(std::string p, Handler h) { return route("PATCH", std::move(p), std::move(h)); }
App& App::del(std::string p, Handler h) { return route("DELETE", std::move(p), std::move(h)); }
App& App::before(Before f) {
  core_->befores.push_back(std::move(f));
  return *this;
}
App& App::after(After f) {
  core_->afters.push_back(std::move(f));
  return *this;
}
App& App::static_files(std::string url_prefix, std::filesystem::path root) {
  if (url_prefix.empty() || url_prefix.front() != '/')
    throw std::invalid_argument("static_files: URL prefix must start with '/': \"" + url_prefix +
                                "\"");
  std::error_code ec;
  auto canonical = std::filesystem::canonical(root, ec);
  if (ec || !std::filesystem::is_directory(canonical))
    throw std::invalid_argument("static_files: \"" + root.string() + "\" is not a directory");
  if (url_prefix.size() > 1 && url_prefix.back() == '/') url_prefix.pop_back();
  core_->static_roots.emplace_back(std::move(url_prefix), std::move(canonical));
  return *this;
}
App& App::ws(std::string path, ebb::websocket::Server& server) {
  if (path.empty() || path.front() != '/')
    throw std::invalid_argument("ws: path must start with '/': \"" + path + "\"");
  server.use_external_listener();
  core_->ws_routes[std::move(path)] = &server;
  return *this;
}

App& App::metrics(std::string path, ebb::websocket::WebSocketMetrics& m) {
  core_->metrics = &m;
  get(std::move(path), [&m](ebb::Request&, ebb::Response& res) {
    res.body(m.render(), ebb::websocket::WebSocketMetrics::content_type);
  });
  return *this;
}

void App::set_shutdown_callback(std::function<void()> f) {
  core_->shutdown_callback = std::move(f);
}
void App::set_force_callback(std::function<void()> f) { core_->force_callback = std::move(f); }
void App::set_drained_callback(std::function<void()> f) { core_->drained_callback = std::move(f); }

std::uint16_t App::listen(std::uint16_t port) { return core_->listen(port); }
std::uint16_t App::listen() { return core_->listen(core_->options.port); }

void App::run(std::uint16_t port) {
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
      std::signal(sig, SIG_IGN);
  }
  ebb::lifecycle::Shutdown shutdown;
  shutdown.capture_signals();
  std::weak_ptr<http::detail::AppCore> weak = core_;
  shutdown.on_trigger([weak] {
    if (auto c = weak.lock()) c->stop();
  });
  shutdown.on_force([weak] {
    if (auto c = weak.lock()) c->force();
  });
  listen(port);
  wait();
  if (core_->drained_callback) core_->drained_callback();
}
void App::run() { run(core_->options.port); }
void App::wait() { core_->wait(); }
void App::stop() noexcept { core_->stop(); }
void App::force() noexcept { core_->force(); }

std::uint16_t App::port() const noexcept { return core_->bound_port.load(); }
AppState App::state() const noexcept { return core_->state.load(); }
HttpDrainReport App::drain_report() const { return core_->drain_report(); }
std::size_t App::in_flight() const noexcept { return core_->in_flight.load(); }
std::size_t App::connection_count() const noexcept { return core_->connections.load(); }
const AppOptions& App::options() const noexcept { return core_->options; }
const ebb::config::Config& App::config() const noexcept { return core_->config; }

}  // namespace ebb
