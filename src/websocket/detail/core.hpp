#pragma once
// Internals of the WebSocket server: the I/O threads, the connection state
// machine and the shared server core. Not a public header.
//
// Threading model (why it is safe):
// - Each IoThread owns one io_context that exactly one thread runs. Every
//   Connection is pinned to one IoThread and all of its state is touched only
//   there; calls from other threads are posted.
// - Plain (ws://) connections do not go through Asio's reactor per message:
//   Asio re-arms every async_wait with an epoll_ctl syscall, one per message
//   at one message in flight. Instead each IoThread keeps its own
//   level-triggered epoll set of plain sockets, which Asio watches as one
//   descriptor. A readable socket is read once into the thread's buffer; a
//   short read means drained, and level triggering reports any bytes that
//   arrive later (no EAGAIN read, no re-arm per message). Timers, posts,
//   accept and TLS stay on Asio.
// - ServerCore state shared across threads: handlers (immutable after
//   start), rooms (one mutex), counters (atomics).
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ebb/metrics/websocket_metrics.hpp"
#include "ebb/websocket/error.hpp"
#include "ebb/websocket/server.hpp"
#include "net/epoll_set.hpp"
#include "websocket/codec/parser.hpp"
#include "websocket/deflate/deflate.hpp"
#include "websocket/handshake/handshake.hpp"

namespace ebb::websocket::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class ServerCore;
class Connection;

/// One I/O thread: an io_context, the read buffer shared by its connections,
/// the registry of its live connections, and a periodic sweep for timers.
class IoThread;
/// The I/O thread running on this thread, if any. In the header so that
/// is_current(), asked once or twice per message, compiles to one compare.
inline thread_local IoThread* current_io_thread = nullptr;

class IoThread {
 public:
  IoThread(ServerCore& core, unsigned index);
  ~IoThread();

  void start();
  void join();
  void run_late_handlers();  ///< after join(): runs what was posted since
  asio::io_context& context() noexcept { return ctx_; }
  unsigned index() const noexcept { return index_; }
  bool is_current() const noexcept { return current_io_thread == this; }
  static IoThread* current() noexcept { return current_io_thread; }

  // Called on this thread only.
  void add(std::shared_ptr<Connection> c);
  void remove(Connection* c);
  /// The drain on this thread: notice + Close 1001 to every open session
  /// (now, or spread over options.shutdown_spread), 503 for late upgrades.
  void begin_drain();
  /// Shut down every remaining session now (deadline or second signal).
  void force_all();
  /// A session's scheduled drain Close went out (spread mode).
  void drain_close_issued();
  /// Every non-observer session of the drain has ended: Close the observers.
  void close_drain_observers();
  void for_each_open(const std::function<void(Connection&)>& f);
  /// The per-thread read buffer (all connections read into it in turn).
  std::uint8_t* read_buffer() noexcept { return read_buffer_.get(); }
  static constexpr std::size_t read_buffer_size = 256 * 1024;
  /// Per-thread buffers, reused so steady-state messages allocate nothing:
  /// inflated input, deflated output, and the copy for on_message(const std::string&).
  std::string& inflate_buffer() noexcept { return inflate_buffer_; }
  std::string& deflate_buffer() noexcept { return deflate_buffer_; }
  std::string& text_copy() noexcept { return text_copy_; }
  /// Called once the server stops: when the last connection leaves, the
  /// work guard is released so run() returns by itself.
  void begin_stop();

  // The thread's epoll set of plain sockets (level-triggered).
  void watch(int fd, Connection* c, bool want_read, bool want_write, bool add = false) {
    epoll_.watch(fd, c, want_read, want_write, add);
  }

 private:
  void arm_ready_wait();
  void run_ready();
  void schedule_sweep();
  void sweep();
  void maybe_finish_stop();

  ServerCore& core_;
  unsigned index_;
  asio::io_context ctx_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::steady_timer sweep_timer_;
  std::thread thread_;
  std::unique_ptr<std::uint8_t[]> read_buffer_;
  std::string inflate_buffer_;
  std::string deflate_buffer_;
  std::string text_copy_;
  std::vector<std::shared_ptr<Connection>> connections_;  // index kept in Connection
  // Ended connections wait here until the current epoll batch is done: the
  // batch holds raw pointers to them.
  std::vector<std::shared_ptr<Connection>> graveyard_;
  net::EpollSet epoll_{ctx_};  // after ctx_: destroyed before it
  bool stopping_ = false;
  bool quiesced_ = false;                 // waits cancelled after the last connection left
  std::size_t drain_closes_pending_ = 0;  // spread mode: Closes not yet sent
  bool drain_reported_ = false;           // told the core all Closes are out
  void report_drain_closes_done();
};

/// A queued piece of output: either a range of the connection's own byte
/// buffer, or a shared, already-encoded frame (broadcasts: encoded once).
struct OutSegment {
  std::shared_ptr<const std::string> shared;  // null: range of Connection::out_
  std::size_t begin = 0;
  std::size_t end = 0;
};

class Connection final : public Session {
 public:
  /// `allow_tls` false: plain even when the server has TLS (a connection
  /// handed over by the HTTP app has done its TLS, if any, already).
  Connection(std::uint64_t id, IoThread& thread, std::shared_ptr<ServerCore> core,
             tcp::socket socket, bool allow_tls = true);
  ~Connection() override;

  // Session API (any thread).
  SendStatus send_text(std::string_view message) override;
  SendStatus send_binary(std::string_view message) override;
  void close(std::uint16_t code, std::string_view reason) override;
  void shutdown_now() override;
  bool is_closing() const noexcept override;
  std::size_t buffered_amount() const noexcept override;

  // Owner thread only.
  void start();  // begin reading the handshake
  /// start() for a socket handed over by the HTTP app: `received` holds the
  /// upgrade request (and anything the client sent after it).
  void start_adopted(std::string received);
  /// The socket is readable / writable (plain connections; from IoThread).
  void on_readable();
  void on_writable();
  bool is_closed() const noexcept { return state_ == State::closed; }
  void sweep(Clock::time_point now);
  /// Drain: queue the notice (if any) now, and Close 1001 after `delay`
  /// (0: now). Returns true when the Close is scheduled for later. A drain
  /// observer gets only the notice here, its Close from close_observer().
  bool begin_drain(std::chrono::milliseconds delay);
  /// The drain observer's Close 1001: every other session has ended.
  void close_observer();
  /// Deadline or second signal: transport down now, counted as forced.
  void force();
  bool in_handshake() const noexcept { return state_ == State::handshake; }
  /// Counts this opened session in the drain report, as an observer if the
  /// application asked for it (decided once, here); false if not opened.
  bool mark_in_drain() noexcept {
    in_drain_ = opened_ && state_ != State::closed;
    drain_observer_ = in_drain_ && observes_drain();
    return in_drain_;
  }
  bool is_drain_observer() const noexcept { return drain_observer_; }
  void limit_handshake_deadline(Clock::time_point t) {
    if (deadline_ > t) deadline_ = t;
  }
  void enqueue_shared(const std::shared_ptr<const std::string>& frame);
  bool is_open() const noexcept { return state_ == State::open; }
  unsigned thread_index() const noexcept { return thread_.index(); }
  std::size_t registry_index = 0;

  // Rooms bookkeeping, guarded by ServerCore::rooms_mutex_.
  std::vector<std::string> rooms;
  bool rooms_closed = false;

  // Parser events (owner thread).
  void on_message(codec::Opcode op, std::string_view payload, bool compressed);
  void on_ping(std::string_view payload);
  void on_pong(std::string_view payload);
  void on_close(std::uint16_t code, std::string_view reason);
  void on_protocol_error(std::uint16_t code, std::string_view reason);

 private:
  enum class State : std::uint8_t {
    handshake,  // reading the upgrade request
    open,       // frames flow both ways
    closing,    // a Close is queued or sent; waiting for the peer's Close or EOF
    closed,     // transport gone, on_close delivered
  };

  SendStatus send(codec::Opcode op, std::string_view message);
  SendStatus send_local(codec::Opcode op, std::string_view message);
  [[gnu::noinline]] SendStatus send_from_other_thread(codec::Opcode op, std::string_view message);
  void close_local(std::uint16_t code, std::string_view reason);
  void start_close(std::uint16_t code, std::string_view reason, bool wait_for_peer);
  void start_drain_close();  // Close 1001 "server shutting down" (every drain path)
  void read_tls();
  void stop_reading();
  void update_watch();
  void process_handshake(std::uint8_t* data, std::size_t size);
  void reject_upgrade(std::string_view response);
  void process_frames(std::uint8_t* data, std::size_t size);
  void deliver_text(std::string_view text);
  void append_frame(codec::Opcode op, std::string_view payload, bool rsv1 = false);
  void schedule_flush();
  void flush();
  void flush_plain();
  void flush_tls();
  void tls_written(std::size_t n);
  void consume_written(std::size_t n);
  void after_flush();
  void release_idle_memory();
  void finish(std::uint16_t code, std::string_view reason);
  bool on_owner_thread() const noexcept;
  bool tls() const noexcept { return tls_ != nullptr; }
  bool awaiting_close_answer() const noexcept;
  bool half_close_follows() const noexcept;

  IoThread& thread_;
  std::shared_ptr<ServerCore> core_;
  std::mutex fd_mutex_;  // guards fd_ against close vs cross-thread shutdown_now
  int fd_ = -1;
  bool watch_read_ = true;    // plain: EPOLLIN wanted
  bool watch_write_ = false;  // plain: EPOLLOUT wanted (kernel buffer was full)
  // TLS connections keep their Asio socket and stream here; plain ones
  // hold only fd_ (smaller idle sessions: no socket object, no TLS buffer).
  struct TlsState {
    TlsState(tcp::socket s, asio::ssl::context& ctx);
    tcp::socket socket;
    asio::ssl::stream<tcp::socket&> stream;
    std::unique_ptr<std::uint8_t[]> buffer;
    // The output under the write in flight: Asio encrypts it record by
    // record, one completion each, so it must not move until the write ends;
    // sends made meanwhile go to out_/segments_ (the two swap each write).
    std::string writing_out;
    std::vector<OutSegment> writing_segments;
  };
  std::unique_ptr<TlsState> tls_;
  State state_ = State::handshake;
  bool opened_ = false;   // on_open delivered (so on_close is owed)
  bool reading_ = false;  // TLS: a read is in flight
  bool writing_ = false;  // a write wait/operation is in progress
  bool flush_scheduled_ = false;
  bool in_read_batch_ = false;        // sends are corked until the batch ends
  bool close_after_flush_ = false;    // shut the transport once output drains
  bool release_after_flush_ = false;  // free the output buffers once the 101 is out
  bool close_sent_ = false;
  bool close_received_ = false;
  std::atomic<bool> closing_{false};  // mirror of state >= closing for other threads
  std::atomic<std::size_t> cross_thread_bytes_{0};
  std::uint16_t close_code_ = close_code::abnormal;
  std::string close_reason_;
  Clock::time_point deadline_{};  // handshake timeout / close wait (by state)
  Clock::time_point last_received_{};
  Clock::time_point ping_sent_at_{};
  bool awaiting_pong_ = false;
  std::atomic<bool> forced_{false};   // ended by close_wait expiry, deadline or force
  bool drain_close_pending_ = false;  // spread drain: Close 1001 due at drain_close_at_
  bool in_drain_ = false;             // counted in the drain report (see begin_drain)
  bool drain_observer_ = false;       // in_drain_, and its Close waits for the others
  Clock::time_point drain_close_at_{};
  bool half_close_pending_ = false;  // half_close_delay > 0: SHUT_WR due at half_close_at_
  Clock::time_point half_close_at_{};

  std::string handshake_buf_;
  std::uint8_t carry_[codec::max_header_size] = {};
  std::uint8_t carry_size_ = 0;
  std::optional<codec::Parser<Connection>> parser_;
  std::unique_ptr<deflate::Deflater> deflater_;
  std::unique_ptr<deflate::Inflater> inflater_;
  std::size_t deflate_min_size_ = 0;

  std::string out_;                   // owned output bytes
  std::vector<OutSegment> segments_;  // output in order
  std::size_t queued_bytes_ = 0;
};

/// Sessions that are not WebSocket connections (the long-polling bridge).
/// Their callbacks run on I/O thread 0, serialized like a connection's.
class ExternalSessions {
 public:
  virtual ~ExternalSessions() = default;
  /// broadcast_text: every open external session gets `text`.
  /// Returns how many sessions took it.
  virtual std::size_t send_to_all(std::string_view text) = 0;
  /// The drain (on thread 0): the notice, then close 1001, for each.
  virtual void drain() = 0;
  /// The server stopped or was forced: close what is left (1006).
  virtual void close_all() = 0;
};

/// The shutdown notice with {reconnect_ms} filled in (empty: no notice).
std::string shutdown_notice_text(const ServerOptions& o, std::chrono::milliseconds delay);

/// State shared by the Server facade, its I/O threads and its connections.
class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(ServerOptions options, std::shared_ptr<ebb::executor::RuntimeExecutor> executor);
  ~ServerCore();

  void start();
  /// A plain, accepted socket from ebb::App (Server::adopt_connection).
  void adopt(int fd, std::string received);
  bool external_listener = false;  // no acceptor: connections come via adopt()
  void stop_async() noexcept;
  void force_async() noexcept;
  void join();
  DrainReport drain_report() const;

  // Rooms (any thread).
  void join_room(const std::shared_ptr<Connection>& c, const std::string& room);
  void leave_room(const std::shared_ptr<Connection>& c, const std::string& room);
  void leave_all_rooms(Connection& c);
  std::size_t broadcast_to_room(const std::string& room, codec::Opcode op, std::string_view msg);
  std::size_t broadcast_all(codec::Opcode op, std::string_view msg);
  std::size_t room_size(const std::string& room) const;

  const ServerOptions options;
  /// The clock of every timeout and of the drain (ServerOptions::clock).
  Clock::time_point now() const { return options.clock ? options.clock() : Clock::now(); }
  std::shared_ptr<ebb::executor::RuntimeExecutor> executor;
  handshake::ServerPolicy policy;
  std::unique_ptr<asio::ssl::context> tls_context;

  Server::OpenHandler on_open;
  Server::MessageViewHandler on_text_view;
  Server::MessageHandler on_text_string;
  Server::MessageViewHandler on_binary_view;
  Server::MessageHandler on_binary_string;
  Server::TypedHandler on_typed;
  Server::CloseHandler on_close;
  Server::ErrorHandler on_error;

  std::atomic<std::size_t> open_sessions{0};
  std::atomic<std::uint16_t> bound_port{0};
  std::atomic<bool> started{false};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> joined{false};
  /// Posts `f` to `t` from any thread unless join() has finished. A handler
  /// left in an I/O thread's io_context after join() never runs, and one that
  /// holds a session holds the core that owns that io_context: a leak. join()
  /// waits for posts under way (seq_cst against its store to `joined`), then
  /// runs what they left. False: refused, `f` destroyed here.
  template <class F>
  bool post_to(IoThread& t, F&& f) {
    posts_under_way_.fetch_add(1);
    const bool open = !joined.load();
    if (open) asio::post(t.context(), std::forward<F>(f));
    posts_under_way_.fetch_sub(1);
    return open;
  }
  std::atomic<int> posts_under_way_{0};
  std::atomic<bool> ready{false};          // threads running, acceptor open
  std::atomic<bool> stop_claimed_{false};  // one post_stop() goes on
  std::atomic<bool> stop_posted{false};    // drain times written, the stop work posted

  void report_error(Session& s, std::error_code ec, std::string_view what);
  /// on_typed_message or on_message for a text message (any session kind).
  void deliver_text(Session& s, std::string_view text, std::string& scratch);

  // ---- external sessions (long-polling) ----
  ExternalSessions* external = nullptr;  // set before start
  /// Admitting new external sessions: started and not draining.
  bool admits_external() const noexcept { return ready.load() && !stop_requested.load(); }
  std::uint64_t next_session_id() noexcept { return next_id_.fetch_add(1); }
  /// Runs `f` on thread 0 (external sessions' thread); false when stopped.
  bool post_external(std::function<void()> f);
  void external_opened(Session& s);
  void external_closed(Session& s, std::uint16_t code, std::string_view reason);

  /// Optional (Server::set_metrics); set before start, then read-only.
  WebSocketMetrics* metrics = nullptr;
  /// state.store() plus the lifecycle gauge.
  void set_state(LifecycleState s) noexcept;

  // Lifecycle (DESIGN.md §2).
  std::atomic<LifecycleState> state{LifecycleState::starting};
  std::atomic<std::size_t> live_connections{0};  // accepted and not finished, any state
  enum class Outcome { clean, by_peer, forced };
  /// Called by every Connection as it ends (owner thread). `in_drain`: it was
  /// counted by begin_drain; `observer`: as a drain observer.
  void connection_ended(bool in_drain, bool observer, Outcome outcome);
  /// Called by each IoThread once all of its drain Closes are queued.
  void thread_drain_closes_done();
  /// Each IoThread's begin_drain: what it counted (`in_drain` sessions, of
  /// them `observers`). Before any of those sessions can end.
  void thread_began_drain(std::size_t in_drain, std::size_t observers);
  bool draining() const noexcept { return stop_requested.load(std::memory_order_acquire); }
  std::atomic<bool> force_requested{false};

 private:
  void do_accept();
  void serve_accepted(IoThread& target, tcp::socket s);
  void accept_backlog();
  void post_stop() noexcept;
  void post_force() noexcept;
  void drain_tick();
  void close_and_drain();
  void schedule_drain_tick();
  IoThread& next_thread(unsigned& counter);
  std::int64_t drain_elapsed_ms() const;
  void record_drain_end();

  Clock::time_point drain_started_at_{};  // written before the drain is posted
  Clock::time_point drain_deadline_{};
  std::atomic<std::int64_t> drain_duration_ms_{-1};
  std::atomic<std::size_t> drain_at_start_{0}, drain_clean_{0}, drain_by_peer_{0}, drain_forced_{0};
  std::atomic<unsigned> threads_notifying_{0};
  // Non-observer drain sessions not yet ended, plus one per thread that has
  // not counted yet: zero means the observers' turn has come.
  std::atomic<std::int64_t> drain_others_left_{0};
  std::atomic<std::size_t> drain_observers_{0};
  void drain_other_ended();
  std::atomic<bool> drain_done_posted_{false};
  bool final_logged_ = false;  // under join_mutex_
  std::shared_ptr<const std::string> encode_shared(codec::Opcode op, std::string_view msg) const;
  void count_broadcast(codec::Opcode op, std::size_t bytes, std::size_t recipients);

  std::vector<std::unique_ptr<IoThread>> threads_;
  // Declared after threads_ so it is destroyed before the io_context it uses.
  std::unique_ptr<asio::steady_timer> drain_timer_;  // thread 0: progress + deadline
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::atomic<std::uint64_t> next_id_{1};
  unsigned next_thread_ = 0;
  std::mutex join_mutex_;
  std::mutex adopt_mutex_;          // orders adopt() posts before the drain's posts
  unsigned next_adopt_thread_ = 0;  // under adopt_mutex_

  mutable std::mutex rooms_mutex_;
  void update_rooms_gauge();  // under rooms_mutex_
  // External members by room (rooms_ holds connections only).
  std::unordered_map<std::string, std::unordered_map<std::uint64_t, std::weak_ptr<Session>>>
      external_rooms_;
  std::unordered_map<std::uint64_t, std::vector<std::string>> external_memberships_;

 public:
  void join_external(const SessionPtr& s, const std::string& room);
  void leave_external(const SessionPtr& s, const std::string& room);

 private:
  std::unordered_map<std::string, std::unordered_map<std::uint64_t, std::shared_ptr<Connection>>>
      rooms_;
};

}  // namespace ebb::websocket::detail
