// ebb::websocket::Client on Boost.Asio (one io_context, one thread) and
// ebb's own codec.
//
// Threading: every member of Impl below the "client thread only" line is
// touched only on the client thread. Public calls from other threads post
// there; calls from the client thread (callbacks) run synchronously, which
// is what lets on_open/on_resume sends go out before the backlog.
//
// One connection attempt is a Conn. Its handlers hold a shared_ptr to it and
// return at once when it is `done`, so a late completion of an old attempt
// never touches the next one. Impl itself is reached through `this`: the
// thread is joined (or the io_context destroyed) before Impl dies.
#include "ebb/websocket/client.hpp"

#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ebb/websocket/close_code.hpp"
#include "ebb/websocket/error.hpp"
#include "log/log.hpp"
#include "websocket/client_backoff.hpp"
#include "websocket/codec/frame.hpp"
#include "websocket/codec/parser.hpp"
#include "websocket/codec/utf8.hpp"
#include "websocket/deflate/deflate.hpp"
#include "websocket/handshake/handshake.hpp"

namespace ebb::websocket {

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using codec::Opcode;

constexpr std::size_t kReadBufferSize = 64 * 1024;
constexpr std::size_t kWriteBatch = 256 * 1024;  // stop adding messages to a write past this

/// Where to connect, from the URL.
struct Endpoint {
  bool tls = false;
  std::string host;         ///< for the resolver and SNI (IPv6 without brackets)
  bool host_is_ip = false;  ///< no SNI for address literals (RFC 6066 §3)
  std::string port;
  std::string host_header;  ///< Host: value (port only when not the default)
  std::string target;       ///< path + query, at least "/"
};

[[noreturn]] void bad_url(const std::string& url, std::string_view why) {
  throw std::invalid_argument("ebb::websocket::Client: bad url \"" + url +
                              "\": " + std::string(why));
}

Endpoint parse_url(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) bad_url(url, parsed.error().message());
  const boost::urls::url_view& u = *parsed;
  Endpoint e;
  if (u.scheme_id() == boost::urls::scheme::ws) {
    e.tls = false;
  } else if (u.scheme_id() == boost::urls::scheme::wss) {
    e.tls = true;
  } else {
    bad_url(url, "the scheme must be ws or wss");
  }
  if (u.has_fragment()) bad_url(url, "a WebSocket URL has no fragment (RFC 6455 §3)");
  if (u.has_userinfo()) bad_url(url, "user info is not supported");
  using boost::urls::host_type;
  if (u.host_type() == host_type::ipvfuture) bad_url(url, "IPvFuture hosts are not supported");
  e.host = u.host_address();  // percent-decoded, IPv6 without brackets
  if (e.host.empty()) bad_url(url, "no host");
  e.host_is_ip = u.host_type() == host_type::ipv4 || u.host_type() == host_type::ipv6;

  const std::string default_port = e.tls ? "443" : "80";
  e.port = default_port;
  if (u.has_port()) {
    std::string_view p = u.port();
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || value == 0 || value > 65535)
      bad_url(url, "the port must be 1..65535");
    e.port = std::to_string(value);
  }
  e.host_header = std::string(u.encoded_host());
  if (e.port != default_port) e.host_header += ":" + e.port;
  e.target = std::string(u.encoded_target());
  if (e.target.empty() || e.target.front() != '/') e.target.insert(0, "/");
  return e;
}

[[noreturn]] void bad_option(std::string_view field, std::string_view why) {
  throw std::invalid_argument(std::string(field) + ": " + std::string(why));
}

void validate(const ClientOptions& o) {
  using std::chrono::milliseconds;
  if (o.reconnect_initial <= milliseconds(0)) bad_option("reconnect_initial", "must be > 0");
  if (o.reconnect_max < o.reconnect_initial)
    bad_option("reconnect_max", "must be >= reconnect_initial");
  if (!(o.reconnect_multiplier >= 1.0)) bad_option("reconnect_multiplier", "must be >= 1");
  if (!(o.reconnect_jitter >= 0.0 && o.reconnect_jitter <= 1.0))
    bad_option("reconnect_jitter", "must be in 0..1");
  if (o.max_reconnect_attempts < -1) bad_option("max_reconnect_attempts", "must be >= -1");
  if (o.connect_timeout <= milliseconds(0)) bad_option("connect_timeout", "must be > 0");
  if (o.close_timeout <= milliseconds(0)) bad_option("close_timeout", "must be > 0");
  if (o.ping_interval < milliseconds(0)) bad_option("ping_interval", "must be >= 0");
  if (o.ping_interval > milliseconds(0) && o.pong_timeout <= milliseconds(0))
    bad_option("pong_timeout", "must be > 0 when ping_interval is set");
  if (o.max_message_size == 0) bad_option("max_message_size", "must be > 0");
  if (o.max_queued_bytes == 0) bad_option("max_queued_bytes", "must be > 0");
  if (o.deflate_level < 1 || o.deflate_level > 9) bad_option("deflate_level", "must be 1..9");
}

/// splitmix64: masking keys and jitter need unpredictability against a
/// passive observer (RFC 6455 §10.3), not cryptographic strength, and one
/// key per frame must be cheap.
class FastRng {
 public:
  FastRng() {
    std::random_device rd;
    state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1).
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_ = 0;
};

struct Outgoing {
  Opcode opcode;
  std::string payload;
  /// Room protocol (join, leave, resume, publish): regenerated from the room
  /// state on the next open, so dropped from the backlog there.
  bool room = false;
  /// Bytes charged against max_queued_bytes (application sends only).
  std::size_t counted = 0;
};

namespace json = boost::json;

std::string typed(std::string_view type, json::object payload) {
  return json::serialize(json::object{{"type", type}, {"payload", std::move(payload)}});
}

const json::string* string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? &v->as_string() : nullptr;
}

std::optional<std::uint64_t> seq_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  return std::nullopt;
}

/// 16 hex digits: publish ids are "<prefix>-<n>", unique across clients in
/// practice (64 random bits) so that our own ids are recognized by prefix.
std::string make_id_prefix() {
  std::random_device rd;
  const std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(r));
  return buf;
}

void log_callback_exception(std::string_view which, const char* what) {
  log::logger()->error("ebb::websocket::Client: exception from {}: {}", which, what);
}

/// Runs a user callback; an exception is logged and swallowed so that the
/// client thread keeps its invariants.
template <class F, class... Args>
void invoke(std::string_view which, const F& f, Args&&... args) {
  if (!f) return;
  try {
    f(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    log_callback_exception(which, e.what());
  } catch (...) {
    log_callback_exception(which, "unknown exception");
  }
}

}  // namespace

struct Client::Impl {
  enum class State { idle, connecting, open, closing, waiting, stopped };
  struct Conn;

  /// Parser events, forwarded to the Impl with the connection they belong to.
  struct Sink {
    Impl* impl;
    Conn* conn;
    void on_message(Opcode op, std::string_view payload, bool compressed) {
      impl->on_frame_message(*conn, op, payload, compressed);
    }
    void on_ping(std::string_view payload) { impl->on_frame_ping(*conn, payload); }
    void on_pong(std::string_view) { conn->pong_received = true; }
    void on_close(std::uint16_t code, std::string_view reason) {
      impl->on_frame_close(*conn, code, reason);
    }
    void on_protocol_error(std::uint16_t code, std::string_view reason) {
      impl->on_frame_error(*conn, code, reason);
    }
  };

  /// One connection attempt and, once upgraded, the connection.
  struct Conn {
    Conn(Impl& impl, asio::io_context& ctx)
        : resolver(ctx), timer(ctx), heartbeat(ctx), sink{&impl, this} {
      if (impl.ssl_ctx_)
        tls = std::make_unique<ssl::stream<tcp::socket>>(ctx, *impl.ssl_ctx_);
      else
        plain = std::make_unique<tcp::socket>(ctx);
    }
    tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
    template <class F>
    void with_stream(F&& f) {
      if (tls)
        f(*tls);
      else
        f(*plain);
    }

    tcp::resolver resolver;
    std::unique_ptr<ssl::stream<tcp::socket>> tls;
    std::unique_ptr<tcp::socket> plain;
    asio::steady_timer timer;      ///< connect timeout, then close timeout
    asio::steady_timer heartbeat;  ///< ping interval / pong timeout
    bool done = false;             ///< finished: every late completion is ignored
    bool opened = false;

    std::string key;   ///< Sec-WebSocket-Key
    std::string head;  ///< response bytes while upgrading
    std::vector<std::uint8_t> rbuf = std::vector<std::uint8_t>(kReadBufferSize);
    std::size_t rhave = 0;  ///< unconsumed bytes (a partial frame header) at rbuf's start
    Sink sink;
    std::optional<codec::Parser<Sink>> parser;
    std::unique_ptr<deflate::Deflater> deflater;
    std::unique_ptr<deflate::Inflater> inflater;
    std::string inflated;    ///< the message on_message sees; the handler may send meanwhile
    std::string compressed;  ///< deflated payload being framed

    std::string wbuf;  ///< the write in flight
    bool writing = false;
    std::string control;  ///< encoded pongs/pings, sent before queued data

    // Close handshake.
    bool close_pending = false;  ///< a Close goes out after `close_after` queued messages
    std::size_t close_after = 0;
    std::uint16_t close_code = close_code::normal;
    std::string close_reason;
    bool close_sent = false;
    bool close_received = false;
    bool discard_input = false;  ///< after a Close or a failure: no more events
    std::uint16_t report_code = close_code::abnormal;  ///< for on_close
    std::string report_reason;

    bool pong_received = true;
  };

  Impl(Client& owner, ClientOptions options);

  // ---- any thread ----
  bool on_client_thread() const noexcept { return std::this_thread::get_id() == thread_id_.load(); }
  template <class F>
  void run_on_thread(F&& f) {
    if (on_client_thread())
      f();
    else
      asio::post(ctx_, std::forward<F>(f));
  }
  void start_thread();
  void set_open(bool open);
  SendStatus admit(std::size_t bytes);
  SendStatus send(Opcode op, std::string_view message);
  void set_settled();

  // ---- client thread only ----
  void do_connect();
  void do_close(std::uint16_t code, std::string reason);
  void do_stop();
  void enqueue(Opcode op, std::string payload, std::size_t counted);
  void discard(std::deque<Outgoing>& q);

  void start_attempt();
  void on_connected(const std::shared_ptr<Conn>& c);
  void send_upgrade(const std::shared_ptr<Conn>& c);
  void read_upgrade(const std::shared_ptr<Conn>& c);
  void on_upgraded(const std::shared_ptr<Conn>& c, const handshake::ClientResult& r,
                   std::size_t leftover);
  void read_frames(const std::shared_ptr<Conn>& c);
  void consume(const std::shared_ptr<Conn>& c, std::size_t total);
  void on_read_error(const std::shared_ptr<Conn>& c, const std::error_code& ec);
  void kick_writer(const std::shared_ptr<Conn>& c);
  void encode(Conn& c, const Outgoing& m);
  /// A fresh key per frame (RFC 6455 §5.3).
  void next_mask(std::uint8_t (&mask)[4]);
  void append_masked(std::string& out, Opcode op, std::string_view payload);
  void schedule_ping(const std::shared_ptr<Conn>& c, std::chrono::milliseconds after);
  void begin_close(const std::shared_ptr<Conn>& c, std::uint16_t code, std::string_view reason,
                   std::size_t after);
  void fail(const std::shared_ptr<Conn>& c, std::error_code ec, std::string what);
  void finish(std::shared_ptr<Conn> c);
  void after_connection(bool was_open);
  void schedule_reconnect(bool was_open);
  void settle_idle();

  void on_frame_message(Conn& c, Opcode op, std::string_view payload, bool compressed);
  void on_frame_ping(Conn& c, std::string_view payload);
  void on_frame_close(Conn& c, std::uint16_t code, std::string_view reason);
  void on_frame_error(Conn& c, std::uint16_t code, std::string_view reason);
  std::shared_ptr<Conn> current(Conn& c) { return conn_.get() == &c ? conn_ : nullptr; }

  // ---- rooms (client thread, except where noted) ----
  struct PendingPublish {
    std::string text;           ///< the room.publish message
    std::uint64_t sent_on = 0;  ///< conn_gen_ of the connection it was queued on; 0 = never
  };
  void send_room(std::string text);
  void rooms_on_open();
  void do_join_room(const std::string& room, std::optional<std::uint64_t> after);
  void do_leave_room(const std::string& room);
  /// Queues publish `n` unless a resume is in progress (flush_pending sends
  /// it then) or it already went out on this connection.
  void send_pending(std::uint64_t n);
  void flush_pending();
  void update_tracking();  ///< under rooms_mutex_
  void on_room_text(std::string_view text);
  void on_room_message_in(const json::object& p);
  void on_room_joined(const json::object& p);
  /// The publish number of one of our ids ("<prefix>-<n>"); any thread.
  std::optional<std::uint64_t> own_publish(std::string_view id) const;
  void forget_publish(std::string_view id);

  Client& owner_;
  const ClientOptions opts_;
  const Endpoint ep_;
  DeflateOptions deflate_opts_;
  std::optional<ssl::context> ssl_ctx_;  // before ctx_: outlives every stream
  asio::io_context ctx_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::atomic<bool> is_open_{false};

  std::atomic<std::size_t> queued_bytes_{0};  ///< see Client::queued_bytes()
  std::mutex api_mutex_;  ///< thread_started_, stop_called_; thread_ is written under it
  bool thread_started_ = false;
  /// Written under api_mutex_; sends read it without the lock and are refused.
  std::atomic<bool> stop_called_{false};
  std::mutex join_mutex_;  ///< thread_ once stop_called_ is set

  std::mutex wait_mutex_;  ///< open_, settled_, thread_done_
  std::condition_variable wait_cv_;
  bool open_ = false;
  bool settled_ = false;
  bool thread_done_ = false;

  // ---- client thread only ----
  OpenHandler on_open_;
  MessageHandler on_message_;
  CloseHandler on_close_;
  ErrorHandler on_error_;
  ResumeHandler on_resume_;
  ReconnectHandler on_reconnect_;

  State state_ = State::idle;
  std::shared_ptr<Conn> conn_;
  asio::steady_timer reconnect_timer_{ctx_};
  std::deque<Outgoing> queue_;  ///< data not yet encoded; survives reconnects
  int attempt_ = 0;             ///< reconnect attempts since the last open
  bool had_open_ = false;       ///< a connection of this connect() was open
  bool user_closed_ = false;    ///< close()/stop(): no reconnect
  bool stopping_ = false;
  bool connect_after_close_ = false;
  std::error_code last_error_;
  std::string last_what_;
  FastRng rng_;

  // ---- rooms ----
  /// rooms_ and pending_ are written on the client thread, pending_ also by
  /// publish() on any thread; read elsewhere by last_seq/pending_publishes.
  mutable std::mutex rooms_mutex_;
  /// Joined rooms and the highest seq received (or the `after` asked for).
  std::map<std::string, std::optional<std::uint64_t>, std::less<>> rooms_;
  std::map<std::uint64_t, PendingPublish> pending_;  ///< by publish number: publish order
  /// A room joined or a publish pending: only then is incoming text parsed.
  std::atomic<bool> tracking_{false};
  std::atomic<std::uint64_t> publish_count_{0};
  const std::string id_prefix_ = make_id_prefix();
  // client thread only
  RoomMessageHandler on_room_message_;
  std::uint64_t conn_gen_ = 0;  ///< connections opened so far
  bool resuming_ = false;       ///< waiting for room.joined of every room in awaiting_
  std::set<std::string, std::less<>> awaiting_;
};

// ------------------------------------------------------------- set-up ---

Client::Impl::Impl(Client& owner, ClientOptions options)
    : owner_(owner), opts_(std::move(options)), ep_(parse_url(opts_.url)) {
  validate(opts_);
  deflate_opts_.enabled = opts_.deflate;
  deflate_opts_.level = opts_.deflate_level;
  deflate_opts_.min_size = opts_.deflate_min_size;
  // Header values with CR/LF or a bad subprotocol fail here, not at connect.
  try {
    (void)handshake::build_client_request(ep_.host_header, ep_.target, handshake::make_client_key(),
                                          opts_.subprotocols, opts_.origin,
                                          deflate::client_offer(deflate_opts_));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("ebb::websocket::Client options: ") + e.what());
  }
  if (!ep_.tls) return;
  ssl_ctx_.emplace(ssl::context::tls_client);
  ssl_ctx_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                        ssl::context::no_tlsv1_1);  // TLS 1.2+
  boost::system::error_code ec;
  ssl_ctx_->set_default_verify_paths(ec);
  if (ec) log::logger()->warn("ebb::websocket::Client: no default CA paths: {}", ec.message());
  if (!opts_.tls_ca_file.empty()) {
    ssl_ctx_->load_verify_file(opts_.tls_ca_file, ec);
    if (ec)
      throw std::invalid_argument("tls_ca_file: cannot load \"" + opts_.tls_ca_file +
                                  "\": " + ec.message());
  }
  ssl_ctx_->set_verify_mode(opts_.tls_verify ? ssl::verify_peer : ssl::verify_none);
}

void Client::Impl::start_thread() {
  work_.emplace(ctx_.get_executor());
  thread_ = std::thread([this] {
    thread_id_.store(std::this_thread::get_id());
    for (;;) {
      try {
        ctx_.run();
        break;
      } catch (const std::exception& e) {  // not from callbacks: invoke() catches those
        log::logger()->error("ebb::websocket::Client: error on the client thread: {}", e.what());
      }
    }
    // A later thread may reuse this id: it must not look like ours.
    thread_id_.store(std::thread::id{});
    std::lock_guard lock(wait_mutex_);
    thread_done_ = true;
    wait_cv_.notify_all();
  });
}

void Client::Impl::set_open(bool open) {
  is_open_.store(open);
  std::lock_guard lock(wait_mutex_);
  open_ = open;
  wait_cv_.notify_all();
}

void Client::Impl::set_settled() {
  std::lock_guard lock(wait_mutex_);
  settled_ = true;
  wait_cv_.notify_all();
}

// ------------------------------------------------- public entry points ---

void Client::Impl::do_connect() {
  if (stopping_) return;
  if (state_ == State::idle) {
    user_closed_ = false;
    attempt_ = 0;
    had_open_ = false;
    start_attempt();
  } else if (state_ == State::closing && user_closed_) {
    connect_after_close_ = true;  // a new connect() once our close is done
  }
  // Otherwise already connecting, open, waiting to reconnect, or closing
  // because of the server (a reconnect follows).
}

void Client::Impl::do_close(std::uint16_t code, std::string reason) {
  if (state_ == State::stopped) return;
  user_closed_ = true;
  connect_after_close_ = false;
  switch (state_) {
    case State::open:
      begin_close(conn_, code, reason, queue_.size());
      return;
    case State::connecting:
      finish(conn_);  // no on_close: it never opened
      return;
    case State::waiting:
      reconnect_timer_.cancel();
      settle_idle();
      return;
    case State::idle:
      set_settled();
      return;
    default:
      return;  // closing: the running handshake ends it, without a reconnect
  }
}

void Client::Impl::do_stop() {
  if (stopping_) return;
  stopping_ = true;
  discard(queue_);
  do_close(close_code::normal, {});
  if (state_ == State::idle) after_connection(true);
}

void Client::Impl::enqueue(Opcode op, std::string payload, std::size_t counted) {
  if (stopping_) {
    queued_bytes_.fetch_sub(counted, std::memory_order_relaxed);
    return;
  }
  queue_.push_back({op, std::move(payload), false, counted});
  if (state_ == State::open) kick_writer(conn_);
}

// --------------------------------------------------------- connecting ---

void Client::Impl::start_attempt() {
  state_ = State::connecting;
  auto c = std::make_shared<Conn>(*this, ctx_);
  conn_ = c;
  c->timer.expires_after(opts_.connect_timeout);
  c->timer.async_wait([this, c](const boost::system::error_code& ec) {
    if (ec || c->done || c->opened) return;
    fail(c, std::make_error_code(std::errc::timed_out),
         "connect timeout (" + std::to_string(opts_.connect_timeout.count()) + " ms) to " +
             opts_.url);
  });
  c->resolver.async_resolve(
      ep_.host, ep_.port,
      [this, c](const boost::system::error_code& ec, const tcp::resolver::results_type& results) {
        if (c->done) return;
        if (ec) return fail(c, ec, "resolve " + ep_.host + ": " + ec.message());
        asio::async_connect(
            c->socket(), results,
            [this, c](const boost::system::error_code& ec, const tcp::endpoint&) {
              if (c->done) return;
              if (ec)
                return fail(c, ec, "connect to " + ep_.host + ":" + ep_.port + ": " + ec.message());
              on_connected(c);
            });
      });
}

void Client::Impl::on_connected(const std::shared_ptr<Conn>& c) {
  boost::system::error_code ignored;
  c->socket().set_option(tcp::no_delay(true), ignored);
  if (!c->tls) return send_upgrade(c);
  SSL* ssl = c->tls->native_handle();
  if (!ep_.host_is_ip && !SSL_set_tlsext_host_name(ssl, ep_.host.c_str()))
    return fail(c, make_error_code(error::handshake_failed), "TLS: cannot set SNI");
  if (opts_.tls_verify) c->tls->set_verify_callback(ssl::host_name_verification(ep_.host));
  c->tls->async_handshake(ssl::stream_base::client, [this, c](const boost::system::error_code& ec) {
    if (c->done) return;
    if (ec) return fail(c, ec, "TLS handshake with " + ep_.host + ": " + ec.message());
    send_upgrade(c);
  });
}

void Client::Impl::send_upgrade(const std::shared_ptr<Conn>& c) {
  c->key = handshake::make_client_key();
  c->wbuf = handshake::build_client_request(ep_.host_header, ep_.target, c->key, opts_.subprotocols,
                                            opts_.origin, deflate::client_offer(deflate_opts_));
  c->writing = true;
  c->with_stream([&](auto& stream) {
    asio::async_write(stream, asio::buffer(c->wbuf),
                      [this, c](const boost::system::error_code& ec, std::size_t) {
                        if (c->done) return;
                        c->writing = false;
                        if (ec) return fail(c, ec, "sending the upgrade request: " + ec.message());
                        // The response may have been handled already.
                        if (c->opened) kick_writer(c);
                      });
  });
  read_upgrade(c);
}

void Client::Impl::read_upgrade(const std::shared_ptr<Conn>& c) {
  c->with_stream([&](auto& stream) {
    stream.async_read_some(
        asio::buffer(c->rbuf), [this, c](const boost::system::error_code& ec, std::size_t n) {
          if (c->done) return;
          if (ec) return fail(c, ec, "reading the upgrade response: " + ec.message());
          const std::size_t before = c->head.size();
          c->head.append(reinterpret_cast<const char*>(c->rbuf.data()), n);
          auto r = handshake::process_response(c->head, c->key, opts_.subprotocols,
                                               opts_.deflate ? &deflate_opts_ : nullptr);
          if (r.status == handshake::Status::need_more) return read_upgrade(c);
          if (r.status == handshake::Status::rejected)
            return fail(c, make_error_code(error::handshake_failed),
                        "upgrade to " + opts_.url + " rejected: " + r.error);
          // Frames that arrived with the response: move them to rbuf's start.
          const std::size_t leftover = c->head.size() - r.consumed;
          const std::size_t at = r.consumed - before;  // offset in this read
          std::memmove(c->rbuf.data(), c->rbuf.data() + at, leftover);
          on_upgraded(c, r, leftover);
        });
  });
}

void Client::Impl::on_upgraded(const std::shared_ptr<Conn>& c, const handshake::ClientResult& r,
                               std::size_t leftover) {
  c->timer.cancel();
  c->head.clear();
  c->head.shrink_to_fit();
  codec::ParserLimits limits;
  limits.max_message_size = opts_.max_message_size;
  limits.allow_rsv1 = r.deflate.has_value();
  c->parser.emplace(codec::Role::client, limits, c->sink);
  if (r.deflate) {
    c->deflater = std::make_unique<deflate::Deflater>(r.deflate->client_max_window_bits,
                                                      r.deflate->client_no_context_takeover,
                                                      opts_.deflate_level);
    c->inflater = std::make_unique<deflate::Inflater>(r.deflate->server_max_window_bits,
                                                      r.deflate->server_no_context_takeover);
  }
  c->opened = true;
  state_ = State::open;
  const bool reconnected = had_open_;
  had_open_ = true;
  attempt_ = 0;
  set_open(true);
  log::logger()->debug("ebb::websocket::Client: open {} (reconnected: {})", opts_.url, reconnected);

  // What on_open and on_resume send goes before the backlog.
  std::deque<Outgoing> backlog;
  backlog.swap(queue_);
  std::erase_if(backlog, [](const Outgoing& m) { return m.room; });
  rooms_on_open();
  invoke("on_open", on_open_, reconnected);
  if (reconnected && !c->done && state_ == State::open) invoke("on_resume", on_resume_, owner_);
  if (stopping_) discard(backlog);
  if (c->close_pending && !c->close_sent) c->close_after += backlog.size();
  for (auto& m : backlog) queue_.push_back(std::move(m));
  if (c->done) return;

  if (opts_.ping_interval.count() > 0) schedule_ping(c, opts_.ping_interval);
  kick_writer(c);
  consume(c, leftover);
}

// ------------------------------------------------------------ reading ---

void Client::Impl::read_frames(const std::shared_ptr<Conn>& c) {
  c->with_stream([&](auto& stream) {
    stream.async_read_some(asio::buffer(c->rbuf.data() + c->rhave, c->rbuf.size() - c->rhave),
                           [this, c](const boost::system::error_code& ec, std::size_t n) {
                             if (c->done) return;
                             if (ec) return on_read_error(c, ec);
                             consume(c, c->rhave + n);
                           });
  });
}

void Client::Impl::consume(const std::shared_ptr<Conn>& c, std::size_t total) {
  std::size_t used = 0;
  if (!c->discard_input) used = c->parser->feed(c->rbuf.data(), total);
  if (c->done) return;
  if (c->discard_input || c->parser->finished()) {
    c->rhave = 0;  // after a Close or a failure the rest is ignored
  } else {
    c->rhave = total - used;  // a partial header, < max_header_size bytes
    std::memmove(c->rbuf.data(), c->rbuf.data() + used, c->rhave);
  }
  read_frames(c);
}

void Client::Impl::on_read_error(const std::shared_ptr<Conn>& c, const std::error_code& ec) {
  if (c->close_sent || c->close_received || c->discard_input) return finish(c);
  // The transport ended without a Close handshake.
  fail(c, ec, "connection to " + opts_.url + " lost: " + ec.message());
}

void Client::Impl::on_frame_message(Conn& c, Opcode op, std::string_view payload, bool compressed) {
  if (c.discard_input) return;
  if (compressed) {
    c.inflated.clear();
    auto r = c.inflater ? c.inflater->decompress(payload, c.inflated, opts_.max_message_size)
                        : deflate::Inflater::Result::error;
    if (r == deflate::Inflater::Result::too_big)
      return on_frame_error(c, close_code::message_too_big, "message too big after inflate");
    if (r != deflate::Inflater::Result::ok)
      return on_frame_error(c, close_code::invalid_payload, "bad permessage-deflate data");
    if (op == Opcode::text && !codec::is_valid_utf8(c.inflated))
      return on_frame_error(c, close_code::invalid_payload, "invalid UTF-8 in a text message");
    payload = c.inflated;
  }
  invoke("on_message", on_message_, payload, op == Opcode::binary);
  if (op == Opcode::text && tracking_.load(std::memory_order_relaxed)) on_room_text(payload);
}

void Client::Impl::on_frame_ping(Conn& c, std::string_view payload) {
  if (c.close_sent || c.discard_input) return;
  append_masked(c.control, Opcode::pong, payload);
  if (auto self = current(c)) kick_writer(self);
}

void Client::Impl::on_frame_close(Conn& c, std::uint16_t code, std::string_view reason) {
  c.close_received = true;
  c.discard_input = true;
  c.report_code = code;
  c.report_reason = std::string(reason);
  auto self = current(c);
  if (!self) return;
  log::logger()->debug("ebb::websocket::Client: server closed {} with {}", opts_.url, code);
  if (c.close_sent) return;  // the answer to ours: wait for the server's TCP close
  if (c.close_pending) {
    // Our Close waits behind data the server will not read any more.
    c.close_after = 0;
    return kick_writer(self);
  }
  // Echo the code; unsent data stays queued for the next connection.
  begin_close(self, code, {}, 0);
}

void Client::Impl::on_frame_error(Conn& c, std::uint16_t code, std::string_view reason) {
  if (c.discard_input) return;
  c.discard_input = true;
  if (c.parser) c.parser->stop();
  error e = code == close_code::invalid_payload   ? error::invalid_utf8
            : code == close_code::message_too_big ? error::message_too_big
                                                  : error::protocol_error;
  last_error_ = make_error_code(e);
  invoke("on_error", on_error_, last_error_, reason);
  auto self = current(c);
  if (!self || c.close_sent) return;
  c.report_code = code;
  c.report_reason = std::string(reason);
  begin_close(self, code, reason, 0);
}

// ------------------------------------------------------------ writing ---

void Client::Impl::next_mask(std::uint8_t (&mask)[4]) {
  const std::uint64_t r = rng_.next();
  std::memcpy(mask, &r, sizeof mask);
}

void Client::Impl::append_masked(std::string& out, Opcode op, std::string_view payload) {
  std::uint8_t mask[4];
  next_mask(mask);
  codec::append_frame(out, op, payload, true, false, mask);
}

void Client::Impl::encode(Conn& c, const Outgoing& m) {
  std::uint8_t mask[4];
  next_mask(mask);
  if (c.deflater && m.payload.size() >= opts_.deflate_min_size) {
    c.compressed.clear();
    if (c.deflater->compress(m.payload, c.compressed)) {
      codec::append_frame(c.wbuf, m.opcode, c.compressed, true, true, mask);
      return;
    }
    log::logger()->warn("ebb::websocket::Client: deflate failed; message sent uncompressed");
  }
  codec::append_frame(c.wbuf, m.opcode, m.payload, true, false, mask);
}

/// Starts the next write if none is in flight: control frames first, then
/// queued data (up to the pending Close), then the Close itself.
void Client::Impl::kick_writer(const std::shared_ptr<Conn>& c) {
  if (!c || c->done || !c->opened || c->writing) return;
  c->wbuf.clear();
  c->wbuf.swap(c->control);
  if (!c->close_sent) {
    while (!queue_.empty() && c->wbuf.size() < kWriteBatch &&
           (!c->close_pending || c->close_after > 0) && !c->close_received) {
      encode(*c, queue_.front());
      queued_bytes_.fetch_sub(queue_.front().counted, std::memory_order_relaxed);
      queue_.pop_front();
      if (c->close_pending) --c->close_after;
    }
    if (c->close_pending && (c->close_after == 0 || c->close_received)) {
      std::uint8_t mask[4];
      next_mask(mask);
      codec::append_close_frame(c->wbuf, c->close_code, c->close_reason, mask);
      c->close_sent = true;
    }
  }
  if (c->wbuf.empty()) return;
  c->writing = true;
  c->with_stream([&](auto& stream) {
    asio::async_write(stream, asio::buffer(c->wbuf),
                      [this, c](const boost::system::error_code& ec, std::size_t) {
                        if (c->done) return;
                        c->writing = false;
                        if (!ec) return kick_writer(c);
                        if (c->close_sent || c->close_received) return finish(c);
                        fail(c, ec, "writing to " + opts_.url + ": " + ec.message());
                      });
  });
}

/// Heartbeat: ping, then fail the connection unless a pong came within
/// pong_timeout; the next ping follows ping_interval after the previous one.
void Client::Impl::schedule_ping(const std::shared_ptr<Conn>& c, std::chrono::milliseconds after) {
  c->heartbeat.expires_after(after);
  c->heartbeat.async_wait([this, c](const boost::system::error_code& ec) {
    if (ec || c->done || c->close_pending) return;
    c->pong_received = false;
    append_masked(c->control, Opcode::ping, {});
    kick_writer(c);
    c->heartbeat.expires_after(opts_.pong_timeout);
    c->heartbeat.async_wait([this, c](const boost::system::error_code& ec) {
      if (ec || c->done || c->close_pending) return;
      if (!c->pong_received)
        return fail(c, make_error_code(error::pong_timeout),
                    "no pong from " + opts_.url + " within " +
                        std::to_string(opts_.pong_timeout.count()) + " ms");
      schedule_ping(
          c, std::max(opts_.ping_interval - opts_.pong_timeout, std::chrono::milliseconds(0)));
    });
  });
}

// ------------------------------------------------------------ closing ---

void Client::Impl::begin_close(const std::shared_ptr<Conn>& c, std::uint16_t code,
                               std::string_view reason, std::size_t after) {
  if (!c || c->close_pending) return;
  c->close_pending = true;
  c->close_after = after;
  c->close_code = code;
  c->close_reason = std::string(reason);
  c->heartbeat.cancel();
  state_ = State::closing;
  c->timer.expires_after(opts_.close_timeout);
  c->timer.async_wait([this, c](const boost::system::error_code& ec) {
    if (ec || c->done) return;
    if (!c->close_received) {
      last_error_ = make_error_code(error::close_timeout);
      invoke("on_error", on_error_, last_error_,
             std::string_view("the server did not answer our Close in time"));
    }
    finish(c);
  });
  kick_writer(c);
}

void Client::Impl::fail(const std::shared_ptr<Conn>& c, std::error_code ec, std::string what) {
  if (c->done) return;
  last_error_ = ec;
  last_what_ = what;
  log::logger()->debug("ebb::websocket::Client: {}", what);
  invoke("on_error", on_error_, ec, what);
  finish(c);
}

// `c` by value: callers pass conn_ itself, which is reset below.
void Client::Impl::finish(std::shared_ptr<Conn> c) {
  if (!c || c->done) return;
  c->done = true;
  boost::system::error_code ignored;
  c->timer.cancel();
  c->heartbeat.cancel();
  c->resolver.cancel();
  c->socket().close(ignored);
  if (conn_ == c) conn_.reset();
  const bool was_open = c->opened;
  state_ = State::idle;
  if (was_open) {
    set_open(false);
    if (c->close_received && c->report_code == close_code::abnormal) c->report_code = 1005;
    invoke("on_close", on_close_, c->report_code, std::string_view(c->report_reason));
  }
  after_connection(was_open);
}

/// Decides what follows the end of a connection or attempt. A callback may
/// already have connected again (state no longer idle): then nothing.
void Client::Impl::after_connection(bool was_open) {
  if (stopping_) {
    if (state_ == State::stopped) return;
    state_ = State::stopped;
    reconnect_timer_.cancel();
    work_.reset();  // run() returns once the last handler is done
    set_settled();
    return;
  }
  if (state_ != State::idle) return;
  if (user_closed_) {
    if (!connect_after_close_) return settle_idle();
    connect_after_close_ = false;  // not settled: wait_open keeps waiting
    return do_connect();
  }
  if (!opts_.reconnect) {
    if (!was_open)
      invoke("on_close", on_close_, close_code::abnormal, std::string_view(last_what_));
    return settle_idle();
  }
  schedule_reconnect(was_open);
}

void Client::Impl::schedule_reconnect(bool was_open) {
  const int max = opts_.max_reconnect_attempts;
  if (max >= 0 && attempt_ >= max) {
    std::string what = "giving up on " + opts_.url + " after " + std::to_string(attempt_) +
                       " reconnect attempt(s)";
    if (!last_what_.empty()) what += "; last error: " + last_what_;
    invoke("on_error", on_error_,
           last_error_ ? last_error_ : std::make_error_code(std::errc::not_connected),
           std::string_view(what));
    if (!was_open) invoke("on_close", on_close_, close_code::abnormal, std::string_view(what));
    return settle_idle();
  }
  const detail::Backoff policy{opts_.reconnect_initial, opts_.reconnect_max,
                               opts_.reconnect_multiplier, opts_.reconnect_jitter};
  const auto delay = detail::backoff_delay(policy, attempt_, rng_.unit());
  ++attempt_;
  state_ = State::waiting;
  invoke("on_reconnect", on_reconnect_, attempt_, delay);
  if (state_ != State::waiting) return;  // the callback closed or stopped
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || state_ != State::waiting) return;
    start_attempt();
  });
}

void Client::Impl::settle_idle() {
  state_ = State::idle;
  set_settled();
}

// -------------------------------------------------------------- rooms ---

void Client::Impl::send_room(std::string text) {
  if (stopping_) return;
  queue_.push_back({Opcode::text, std::move(text), true});
  if (state_ == State::open) kick_writer(conn_);
}

/// First thing on every open: rejoin every room from where we are, then let
/// pending publishes out once the replays had their chance to show them.
void Client::Impl::rooms_on_open() {
  ++conn_gen_;
  awaiting_.clear();
  json::object positions;
  std::vector<std::string> fresh;  // no position yet: a plain join (history)
  {
    std::lock_guard lock(rooms_mutex_);
    for (const auto& [room, pos] : rooms_) {
      awaiting_.insert(room);
      if (pos)
        positions[room] = *pos;
      else
        fresh.push_back(room);
    }
  }
  if (!positions.empty()) send_room(typed("room.resume", {{"rooms", std::move(positions)}}));
  for (auto& room : fresh) send_room(typed("room.join", {{"room", room}}));
  resuming_ = !awaiting_.empty();
  if (!resuming_) flush_pending();
}

void Client::Impl::do_join_room(const std::string& room, std::optional<std::uint64_t> after) {
  {
    std::lock_guard lock(rooms_mutex_);
    if (!rooms_.emplace(room, after).second) return;
    update_tracking();
  }
  if (state_ != State::open) return;  // rooms_on_open joins it
  json::object payload{{"room", room}};
  if (after) payload["after"] = *after;
  send_room(typed("room.join", std::move(payload)));
}

void Client::Impl::do_leave_room(const std::string& room) {
  {
    std::lock_guard lock(rooms_mutex_);
    if (rooms_.erase(room) == 0) return;
    update_tracking();
  }
  if (state_ == State::open) send_room(typed("room.leave", {{"room", room}}));
}

void Client::Impl::send_pending(std::uint64_t n) {
  if (state_ != State::open || resuming_ || stopping_) return;
  {
    std::lock_guard lock(rooms_mutex_);
    auto it = pending_.find(n);
    if (it == pending_.end() || it->second.sent_on == conn_gen_) return;
    it->second.sent_on = conn_gen_;
    queue_.push_back({Opcode::text, it->second.text, true});
  }
  kick_writer(conn_);
}

void Client::Impl::flush_pending() {
  if (state_ != State::open || stopping_) return;
  {
    std::lock_guard lock(rooms_mutex_);
    for (auto& [n, p] : pending_) {
      if (p.sent_on == conn_gen_) continue;
      p.sent_on = conn_gen_;
      queue_.push_back({Opcode::text, p.text, true});
    }
  }
  kick_writer(conn_);
}

void Client::Impl::update_tracking() {
  tracking_.store(!rooms_.empty() || !pending_.empty(), std::memory_order_relaxed);
}

void Client::Impl::on_room_text(std::string_view text) {
  if (text.find("\"room.") == std::string_view::npos) return;  // cheap: not ours
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return;
  const auto* type = string_field(v.as_object(), "type");
  const auto* payload = v.as_object().if_contains("payload");
  if (!type || !payload || !payload->is_object()) return;
  const json::object& p = payload->as_object();
  if (*type == "room.message") return on_room_message_in(p);
  if (*type == "room.joined") return on_room_joined(p);
  const auto* id = string_field(p, "id");
  if (!id) return;
  if (*type == "room.ack") return forget_publish(*id);
  if (*type == "room.nack" && own_publish(*id)) {
    const auto* error = string_field(p, "error");
    log::logger()->warn("ebb::websocket::Client: publish {} refused: {}", std::string_view(*id),
                        error ? std::string_view(*error) : std::string_view("?"));
    forget_publish(*id);
  }
}

void Client::Impl::on_room_message_in(const json::object& p) {
  const auto* room = string_field(p, "room");
  const auto seq = seq_field(p, "seq");
  if (!room || !seq) return;
  const auto* id_v = string_field(p, "id");
  const std::string_view id = id_v ? std::string_view(*id_v) : std::string_view();
  if (!id.empty()) forget_publish(id);  // stored: never send it again
  std::string name(*room);
  {
    std::lock_guard lock(rooms_mutex_);
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;                 // not joined (or left)
    if (it->second && *seq <= *it->second) return;  // a duplicate
    it->second = *seq;
  }
  static const json::value null_body;
  const auto* body = p.if_contains("body");
  invoke("on_room_message", on_room_message_, name, *seq, body ? *body : null_body, id);
}

void Client::Impl::on_room_joined(const json::object& p) {
  const auto* room = string_field(p, "room");
  const auto last = seq_field(p, "last_seq");
  if (!room || !last) return;
  const auto* gap = p.if_contains("gap");
  {
    std::lock_guard lock(rooms_mutex_);
    if (auto it = rooms_.find(std::string_view(*room)); it != rooms_.end()) {
      auto& pos = it->second;
      // Everything up to `last` was sent. A position beyond it with a gap
      // means the server's history restarted below what we saw: adopt its
      // numbering, else its new messages would look like duplicates.
      if (!pos || *pos < *last || (gap && gap->is_bool() && gap->as_bool() && *pos > *last))
        pos = *last;
    }
  }
  auto it = awaiting_.find(std::string_view(*room));
  if (it == awaiting_.end()) return;
  awaiting_.erase(it);
  if (resuming_ && awaiting_.empty()) {
    resuming_ = false;
    flush_pending();
  }
}

std::optional<std::uint64_t> Client::Impl::own_publish(std::string_view id) const {
  if (id.size() <= id_prefix_.size() + 1 || id.substr(0, id_prefix_.size()) != id_prefix_ ||
      id[id_prefix_.size()] != '-')
    return std::nullopt;
  const auto digits = id.substr(id_prefix_.size() + 1);
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return n;
}

void Client::Impl::forget_publish(std::string_view id) {
  const auto n = own_publish(id);
  if (!n) return;
  std::lock_guard lock(rooms_mutex_);
  if (pending_.erase(*n) != 0) update_tracking();
}

// ------------------------------------------------------------- Client ---

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>(*this, std::move(options))) {}

Client::~Client() {
  if (impl_->on_client_thread()) {
    std::fprintf(stderr,
                 "ebb::websocket::Client destroyed from its own callback (the client thread); "
                 "this is a programming error: destroy it from another thread\n");
    std::abort();
  }
  stop();
}

namespace {
// Handlers are members of the client thread's state: set them there.
template <class Impl, class Handler>
void post_set_handler(Impl* impl, Handler Impl::*member, Handler h) {
  asio::post(impl->ctx_,
             [impl, member, h = std::move(h)]() mutable { impl->*member = std::move(h); });
}
}  // namespace

void Client::on_open(OpenHandler h) {
  post_set_handler(impl_.get(), &Impl::on_open_, std::move(h));
}
void Client::on_message(MessageHandler h) {
  post_set_handler(impl_.get(), &Impl::on_message_, std::move(h));
}
void Client::on_close(CloseHandler h) {
  post_set_handler(impl_.get(), &Impl::on_close_, std::move(h));
}
void Client::on_error(ErrorHandler h) {
  post_set_handler(impl_.get(), &Impl::on_error_, std::move(h));
}
void Client::on_resume(ResumeHandler h) {
  post_set_handler(impl_.get(), &Impl::on_resume_, std::move(h));
}
void Client::on_reconnect(ReconnectHandler h) {
  post_set_handler(impl_.get(), &Impl::on_reconnect_, std::move(h));
}
void Client::on_room_message(RoomMessageHandler h) {
  post_set_handler(impl_.get(), &Impl::on_room_message_, std::move(h));
}

void Client::connect() {
  Impl& i = *impl_;
  {
    std::lock_guard lock(i.api_mutex_);
    if (i.stop_called_) throw std::logic_error("ebb::websocket::Client::connect() after stop()");
    if (!i.thread_started_) {
      i.start_thread();
      i.thread_started_ = true;
    }
  }
  {
    std::lock_guard lock(i.wait_mutex_);
    i.settled_ = false;
  }
  i.run_on_thread([&i] { i.do_connect(); });
}

bool Client::wait_open(std::chrono::milliseconds timeout) {
  Impl& i = *impl_;
  if (i.on_client_thread()) return is_open();
  std::unique_lock lock(i.wait_mutex_);
  i.wait_cv_.wait_for(lock, timeout, [&] { return i.open_ || i.settled_; });
  return i.open_;
}

// Charged before the message is posted, so concurrent senders cannot pass
// the cap together; released when the message is encoded or discarded.
SendStatus Client::Impl::admit(std::size_t bytes) {
  if (stop_called_.load(std::memory_order_acquire)) return SendStatus::closing;
  auto cur = queued_bytes_.load(std::memory_order_relaxed);
  do {
    if (bytes > opts_.max_queued_bytes || cur > opts_.max_queued_bytes - bytes)
      return SendStatus::dropped;
  } while (!queued_bytes_.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
  return SendStatus::buffered;
}

SendStatus Client::Impl::send(Opcode op, std::string_view message) {
  auto status = admit(message.size());
  if (status != SendStatus::buffered) return status;
  run_on_thread([this, op, m = std::string(message)]() mutable {
    const auto n = m.size();
    enqueue(op, std::move(m), n);
  });
  return status;
}

void Client::Impl::discard(std::deque<Outgoing>& q) {
  for (const auto& m : q) queued_bytes_.fetch_sub(m.counted, std::memory_order_relaxed);
  q.clear();
}

SendStatus Client::send_text(std::string_view message) {
  return impl_->send(Opcode::text, message);
}

SendStatus Client::send_binary(std::string_view message) {
  return impl_->send(Opcode::binary, message);
}

std::size_t Client::queued_bytes() const noexcept {
  return impl_->queued_bytes_.load(std::memory_order_relaxed);
}

void Client::close(std::uint16_t code, std::string_view reason) {
  if (code != close_code::no_status && !is_valid_wire_close_code(code))
    throw std::invalid_argument("ebb::websocket::Client::close: code " + std::to_string(code) +
                                " may not be sent in a Close frame");
  impl_->run_on_thread([i = impl_.get(), code, r = std::string(reason)]() mutable {
    i->do_close(code, std::move(r));
  });
}

void Client::stop() {
  Impl& i = *impl_;
  {
    std::lock_guard lock(i.api_mutex_);
    i.stop_called_.store(true, std::memory_order_release);
    if (!i.thread_started_) return;  // never connected
  }
  if (i.on_client_thread()) {
    i.do_stop();  // cannot join ourselves: the thread ends by itself
    return;
  }
  asio::post(i.ctx_, [&i] { i.do_stop(); });
  {
    // The close handshake is bounded by close_timeout; past that (a callback
    // that blocks, a resolver stuck in getaddrinfo) the loop is stopped.
    std::unique_lock lock(i.wait_mutex_);
    const auto limit = i.opts_.close_timeout + std::chrono::seconds(1);
    if (!i.wait_cv_.wait_for(lock, limit, [&] { return i.thread_done_; })) {
      log::logger()->warn("ebb::websocket::Client::stop: forcing the client loop to stop");
      i.ctx_.stop();
    }
  }
  std::lock_guard join_lock(i.join_mutex_);
  if (i.thread_.joinable()) i.thread_.join();
}

bool Client::is_open() const noexcept { return impl_->is_open_.load(); }

void Client::join_room(const std::string& room, std::optional<std::uint64_t> after) {
  impl_->run_on_thread([i = impl_.get(), room, after] { i->do_join_room(room, after); });
}

void Client::leave_room(const std::string& room) {
  impl_->run_on_thread([i = impl_.get(), room] { i->do_leave_room(room); });
}

std::string Client::publish(const std::string& room, const ebb::json::value& body) {
  Impl& i = *impl_;
  // Recorded here, not on the client thread, so that pending_publishes()
  // counts it as soon as publish() returns.
  const std::uint64_t n = ++i.publish_count_;
  std::string id = i.id_prefix_ + "-" + std::to_string(n);
  {
    std::string text = typed("room.publish", {{"room", room}, {"body", body}, {"id", id}});
    std::lock_guard lock(i.rooms_mutex_);
    i.pending_.emplace(n, Impl::PendingPublish{std::move(text)});
    i.update_tracking();
  }
  i.run_on_thread([&i, n] { i.send_pending(n); });
  return id;
}

std::uint64_t Client::last_seq(const std::string& room) const {
  std::lock_guard lock(impl_->rooms_mutex_);
  auto it = impl_->rooms_.find(room);
  return it == impl_->rooms_.end() ? 0 : it->second.value_or(0);
}

std::size_t Client::pending_publishes() const {
  std::lock_guard lock(impl_->rooms_mutex_);
  return impl_->pending_.size();
}

}  // namespace ebb::websocket
