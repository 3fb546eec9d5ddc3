#pragma once
// Internals of ebb::App: I/O threads, connections, the drain. Not public.
//
// Threading model (the same as the WebSocket server's, core.hpp there):
// - Each HttpThread owns one io_context run by exactly one thread and a
//   level-triggered epoll set of its connections' sockets, which Asio
//   watches as one descriptor. A connection lives on one thread for life;
//   everything it does happens there. Other threads post.
// - AppCore holds what threads share: routes (immutable after listen()),
//   the lifecycle flags and counters (atomics).
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ebb/config/config.hpp"
#include "ebb/http/app.hpp"
#include "ebb/metrics/websocket_metrics.hpp"
#include "http/parser.hpp"
#include "http/router.hpp"
#include "net/epoll_set.hpp"

namespace ebb::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class AppCore;
class HttpConnection;

/// Shared between a deferred Response's handle and its connection.
struct PendingState {
  Response response;
  std::weak_ptr<AppCore> core;
  std::weak_ptr<HttpConnection> connection;
  unsigned thread = 0;
  std::atomic<bool> sent{false};
};

/// What PendingResponse copies share: the last one gone unsent answers 500.
struct PendingHandle {
  explicit PendingHandle(std::shared_ptr<PendingState> s) : state(std::move(s)) {}
  ~PendingHandle();
  std::shared_ptr<PendingState> state;
};
/// Queues the response to its connection's thread, once.
void send_pending(const std::shared_ptr<PendingState>& state);

/// A PendingState bound to `owner` (null: a Response outside any app).
std::shared_ptr<PendingState> make_pending(HttpConnection* owner);

/// Lets the implementation reach Response's private parts.
class ResponseAccess {
 public:
  static std::shared_ptr<PendingState>& pending(Response& r) { return r.pending_; }
  static std::vector<Response::Header>& headers(Response& r) { return r.headers_; }
  static std::string& body(Response& r) { return r.body_; }
  static void set_owner(Response& r, HttpConnection* c) { r.owner_ = c; }
  static void reset(Response& r) {
    r.status_ = 200;
    r.headers_.clear();
    r.content_type_.clear();
    r.body_.clear();
    r.pending_.reset();
  }
};

class HttpThread {
 public:
  HttpThread(AppCore& core, unsigned index);
  ~HttpThread();
  void start();
  void join();
  asio::io_context& context() noexcept { return ctx_; }
  unsigned index() const noexcept { return index_; }
  bool is_current() const noexcept;

  void add(std::shared_ptr<HttpConnection> c);
  void remove(HttpConnection* c);
  void watch(int fd, HttpConnection* c, bool want_read, bool want_write, bool add = false) {
    epoll_.watch(fd, c, want_read, want_write, add);
  }
  void unwatch(int fd) { epoll_.unwatch(fd); }
  void begin_drain();
  void force_all();
  /// Once the listener is closed: the thread ends when its last connection does.
  void allow_finish();
  char* read_buffer() noexcept { return read_buffer_.get(); }
  static constexpr std::size_t read_buffer_size = 64 * 1024;
  /// "Date: ..." header line, refreshed at most once a second.
  const std::string& date_line();

 private:
  void arm_ready_wait();
  void run_ready();
  void schedule_sweep();
  void maybe_finish();

  AppCore& core_;
  unsigned index_;
  asio::io_context ctx_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::steady_timer sweep_timer_;
  std::thread thread_;
  std::unique_ptr<char[]> read_buffer_;
  std::vector<std::shared_ptr<HttpConnection>> connections_;
  std::vector<std::shared_ptr<HttpConnection>> graveyard_;
  net::EpollSet epoll_{ctx_};  // after ctx_: destroyed before it
  bool finishing_ = false;     // listener closed: end with the last connection
  bool finished_ = false;
  std::string date_line_;
  std::time_t date_second_ = 0;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(HttpThread& thread, AppCore& core, int fd, std::string remote_address,
                 std::uint16_t remote_port);
  ~HttpConnection();

  void start();
  void on_readable();
  void on_writable();
  void sweep(Clock::time_point now);
  /// Drain: close now if idle; otherwise the current response says
  /// Connection: close.
  void begin_drain();
  /// Cut now (deadline or force); counted as forced.
  void force();
  /// A deferred response arrives (on the owner thread).
  void complete_deferred(Response& response);
  /// Ties a deferred response's state to this connection.
  void bind_pending(PendingState& s);
  bool is_closed() const noexcept { return state_ == State::closed; }
  std::size_t registry_index = 0;

 private:
  enum class State : std::uint8_t {
    idle,       // waiting for a request (keep-alive)
    reading,    // part of a request received
    deferred,   // a handler answers later; input waits
    lingering,  // response sent, write side shut, discarding input until EOF
    closed,
  };
  void process_input();
  /// Parses and dispatches requests from `data`; returns bytes consumed.
  std::size_t parse_requests(char* data, std::size_t size);
  void on_partial_request(bool header_was_done);
  void reject_malformed(const boost::beast::error_code& ec);
  void dispatch();
  void answer(Response& res);
  void answer_error(int status, std::string_view message);
  void write_response(const Response& res, bool head_only);
  /// Gives the socket and the bytes from the upgrade request on to the
  /// WebSocket server; this connection ends without closing it.
  void handover_upgrade(const char* data, std::size_t size);
  void flush();
  void close_after_flush();
  void shut_write_side();
  void finish();
  void update_watch();

  HttpThread& thread_;
  AppCore& core_;
  int fd_;
  State state_ = State::idle;
  bool watch_read_ = true;
  bool watch_write_ = false;
  bool close_after_flush_ = false;
  bool responding_close_ = false;  // the current response ends the connection
  bool in_flight_ = false;         // a request is counted in AppCore::in_flight
  bool head_request_ = false;
  bool continue_sent_ = false;  // "100 Continue" written for this request
  bool forced_ = false;
  std::size_t requests_served_ = 0;
  Clock::time_point deadline_{};
  Clock::time_point request_started_at_{};  // only with metrics
  Request request_;
  Response response_;  // reused: its storage survives between requests
  std::optional<RequestParser> parser_;
  std::string pending_;  // unparsed input kept between reads
  std::string out_;      // response bytes not yet written
  std::size_t out_offset_ = 0;
};

class AppCore : public std::enable_shared_from_this<AppCore> {
 public:
  AppCore(AppOptions options, ebb::config::Config cfg);
  ~AppCore();

  std::uint16_t listen(std::uint16_t port);
  /// Starts the drain, once: the shutdown callback, then stop_async() on
  /// every server in ws_routes (unless `reach_ws_servers` is false: ~App,
  /// when they may already be destroyed), then the drain on the threads.
  void stop(bool reach_ws_servers = true) noexcept;
  /// The drain forced, once: the force callback, force_async() on every
  /// server in ws_routes (as stop()), then every connection cut.
  void force() noexcept;
  void wait();
  HttpDrainReport drain_report() const;

  // Called by connections (owner threads).
  /// Routes a complete request: built-in routes, middleware, handler.
  void handle(Request& req, Response& res);
  void request_started() noexcept;
  /// `answered`: a response was written (not cut by a force or a reset).
  void request_finished(bool answered = true) noexcept;
  void connection_ended(bool forced) noexcept;
  /// Thread 0 is winding down (last connection gone, listener closed).
  void thread0_finished();
  /// The WebSocket server for an upgrade to `path`, or null.
  ebb::websocket::Server* ws_for(std::string_view path) const;
  bool is_ws_path(std::string_view path) const { return ws_for(path) != nullptr; }
  void post_to(unsigned thread, std::function<void()> f);

  const AppOptions options;
  const ebb::config::Config config;
  Router router;
  std::vector<App::Before> befores;
  std::vector<App::After> afters;
  std::vector<std::pair<std::string, std::filesystem::path>> static_roots;
  std::map<std::string, ebb::websocket::Server*, std::less<>> ws_routes;
  std::function<void()> shutdown_callback;
  std::function<void()> force_callback;
  std::function<void()> drained_callback;
  ebb::websocket::WebSocketMetrics* metrics = nullptr;  // set before listen()

  std::atomic<AppState> state{AppState::starting};
  std::atomic<bool> draining{false};
  std::atomic<bool> force_requested{false};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<std::size_t> connections{0};
  std::atomic<std::uint16_t> bound_port{0};

 private:
  void do_accept();
  void accept_one(HttpThread& target, tcp::socket s);
  void begin_drain_on_threads();
  void close_listener();
  void drain_tick();
  void schedule_drain_tick();
  /// Health, readiness, admin shutdown, and 426 for WebSocket paths.
  bool serve_builtin(Request& req, Response& res);
  bool serve_static(Request& req, Response& res);
  void route(Request& req, Response& res);

  std::vector<std::unique_ptr<HttpThread>> threads_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<asio::steady_timer> grace_timer_;  // thread 0
  std::unique_ptr<asio::steady_timer> drain_timer_;  // thread 0
  unsigned next_thread_ = 0;
  std::atomic<bool> listening_{false};  // listen() was called
  std::atomic<bool> serving_{false};    // listen() succeeded: threads run
  std::atomic<bool> stop_started_{false};
  std::atomic<bool> ws_servers_gone_{false};  // ~App: the ws() servers may be destroyed
  void for_each_ws_server(const std::function<void(ebb::websocket::Server&)>& f);
  std::atomic<bool> force_started_{false};
  std::atomic<bool> drain_posted_{false};
  bool listener_closed_ = false;  // thread 0
  Clock::time_point drain_started_{};
  Clock::time_point drain_deadline_{};
  std::atomic<std::size_t> drain_in_flight_at_start_{0};
  std::atomic<std::size_t> drain_completed_{0};
  std::atomic<std::size_t> drain_forced_{0};
  std::atomic<std::int64_t> drain_duration_ms_{-1};
  std::mutex wait_mutex_;
  bool joined_ = false;  // under wait_mutex_
};

/// "200 OK" style reason phrases.
std::string_view reason_phrase(int status) noexcept;

}  // namespace ebb::http::detail
