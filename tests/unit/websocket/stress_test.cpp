// Shutdown under chaos (DESIGN.md §2 invariants). Hundreds of clients keep
// echoes in flight (every tenth with large messages and a slow reader, so
// the server's send queues are not empty when the Close goes out) while
// other threads call stop_async(), stop() (sometimes twice at once),
// Session::close(), Session::shutdown_now(), broadcast_text(),
// force_async() and send_text() from outside the I/O threads, in random
// interleavings. Meant to run under TSan and ASan (CI runs both); every
// phase is bounded, a hang aborts with the seed.
//
// Invariants checked after every iteration:
// - every opened session got on_close exactly once;
// - no callback ran after stop() returned;
// - a client that received a Close frame received every echo the server had
//   accepted (SendStatus sent/buffered) before it: counts are equal; and
//   every cross-thread send that returned buffered before any close of that
//   session began;
// - echoes arrive in order, without gaps; a client cut without a Close got
//   a prefix of what was accepted;
// - every client saw its connection end (no hang);
// - the drain report accounts for exactly the sessions it started with.
//
// Knobs: EBB_STRESS_CLIENTS (default 200), EBB_STRESS_ITERATIONS (default
// 200), EBB_STRESS_SEED=<seed> replays one iteration (its random choices
// repeat; thread timing does not), EBB_STRESS_KEEP_GOING=1 does not stop at
// the first failing iteration.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <ebb/websocket.hpp>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "unit/websocket/test_client.hpp"
#include "websocket/codec/frame.hpp"
#include "websocket/codec/parser.hpp"

namespace {

namespace asio = boost::asio;
namespace codec = ebb::websocket::codec;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ebb::websocket::DrainReport;
using ebb::websocket::LifecycleState;
using ebb::websocket::SendStatus;
using ebb::websocket::Server;
using ebb::websocket::ServerOptions;
using ebb::websocket::Session;
using ebb::websocket::SessionPtr;

constexpr auto connect_deadline = 10s;    // all clients open
constexpr auto iteration_deadline = 15s;  // chaos + stop + every client ended
constexpr std::uint64_t default_base_seed = 0x5eed'ebb0'0000ull;

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 0);
}

bool is_graceful_code(std::uint16_t code) { return code == 1001 || (code >= 4000 && code <= 4999); }

// ------------------------------------------------------------- watchdog ---

/// Bounds a phase: unless disarmed before the deadline, prints what hung and
/// aborts the process, so a hang fails CI at once instead of at its timeout.
class Watchdog {
 public:
  Watchdog() : thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard l(m_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  /// `state` is called on the watchdog thread when the deadline passes.
  void arm(Clock::time_point deadline, std::string what, std::function<std::string()> state) {
    std::lock_guard l(m_);
    armed_ = true;
    ++generation_;
    deadline_ = deadline;
    what_ = std::move(what);
    state_ = std::move(state);
    cv_.notify_all();
  }
  void disarm() {
    std::lock_guard l(m_);
    armed_ = false;
    ++generation_;
    state_ = nullptr;
    cv_.notify_all();
  }

 private:
  void run() {
    std::unique_lock l(m_);
    while (!quit_) {
      if (!armed_) {
        cv_.wait(l);
        continue;
      }
      auto g = generation_;
      if (cv_.wait_until(l, deadline_, [&] { return quit_ || generation_ != g; })) continue;
      std::string state = state_ ? state_() : std::string();
      std::fprintf(stderr, "\nstress_test: HANG: %s\n%s\n", what_.c_str(), state.c_str());
      std::fflush(stderr);
      std::abort();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool armed_ = false;
  std::uint64_t generation_ = 0;
  Clock::time_point deadline_{};
  std::string what_;
  std::function<std::string()> state_;
  std::thread thread_;  // last: starts after the members above exist
};

// --------------------------------------------------------------- client ---

/// What one client observed. Written on the driver's thread only; read after
/// that thread was joined.
struct ClientResult {
  bool upgraded = false;
  std::uint64_t id = 0;  ///< server session id, from the "id:<n>" message
  std::uint64_t sent = 0;
  std::uint64_t echoes = 0;  ///< echoes 0..echoes-1 arrived, in order
  std::uint64_t broadcasts = 0;
  std::uint64_t pushes = 0;  ///< "p" messages sent from a non-I/O thread
  bool got_close = false;    ///< a whole Close frame arrived from the server
  std::uint16_t close_code = 0;
  bool ended = false;  ///< the server ended the transport (EOF or reset)
  std::string error;   ///< first protocol or ordering error
};

class Driver;

/// One WebSocket client on the driver's io_context, like a browser tab: it
/// keeps `in_flight` numbered text messages outstanding, answers a server
/// Close with a Close, and reads until the server ends the connection.
/// A bulk client pads its messages to 16-64 KB, announces a small MSS, keeps
/// a small receive buffer and pauses between reads, so the server's echoes
/// back up into its send queue (the kernel's buffers on loopback hold MBs
/// otherwise): only then does "nothing queued before the Close is lost" have
/// something to lose.
class StressClient {
 public:
  StressClient(Driver& driver, asio::io_context& ctx, std::uint32_t seed, bool bulk)
      : driver_(driver),
        socket_(ctx),
        pause_(ctx),
        parser_(codec::Role::client, {}, *this),
        rng_(seed),
        bulk_(bulk) {
    for (int i = 0; i < 4; ++i) mask_[i] = static_cast<std::uint8_t>(rng_() | 1u);
  }
  StressClient(const StressClient&) = delete;
  StressClient& operator=(const StressClient&) = delete;

  void start(const tcp::endpoint& server);
  /// The driver stops: drop the socket (a client still open then is a failure).
  void abandon() {
    boost::system::error_code ec;
    socket_.close(ec);
    pause_.cancel();
  }
  const ClientResult& result() const { return r_; }

  // codec::Parser handler.
  void on_message(codec::Opcode op, std::string_view payload, bool compressed);
  void on_ping(std::string_view payload) {
    if (!close_sent_) send_frame(codec::Opcode::pong, payload);
  }
  void on_pong(std::string_view) {}
  void on_close(std::uint16_t code, std::string_view reason);
  void on_protocol_error(std::uint16_t code, std::string_view reason) {
    fail("protocol error " + std::to_string(code) + ": " + std::string(reason));
  }

 private:
  static constexpr int in_flight = 4;
  static constexpr int bulk_receive_buffer = 4096;
  static constexpr int bulk_mss = 536;
  static constexpr auto bulk_read_pause = 1ms;

  void read_head();
  void read_frames();
  void feed(std::size_t size);
  void send_next();
  void send_frame(codec::Opcode op, std::string_view payload);
  void write_more();
  void ended(const boost::system::error_code& ec);
  void fail(std::string why) {
    if (r_.error.empty()) r_.error = std::move(why);
  }

  Driver& driver_;
  tcp::socket socket_;
  asio::steady_timer pause_;  // bulk: between reads
  std::uint8_t mask_[4] = {};
  codec::Parser<StressClient> parser_;
  std::string head_;
  std::vector<std::uint8_t> buf_ = std::vector<std::uint8_t>(64 * 1024);
  std::size_t carry_ = 0;  // incomplete frame header kept at the front of buf_
  std::string pending_;    // frames not yet handed to async_write
  std::string writing_;    // frames of the write in progress
  bool write_busy_ = false;
  bool write_failed_ = false;
  bool close_sent_ = false;
  std::mt19937 rng_;
  bool bulk_;
  std::deque<std::string> unanswered_;  // sent, echo not yet received, oldest first
  ClientResult r_;
};

/// Runs every client on one io_context thread. Counters for the main thread
/// are under a mutex; everything else is read only after finish().
class Driver {
 public:
  Driver(std::uint16_t port, std::size_t clients, std::uint64_t seed) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed));
    for (std::size_t i = 0; i < clients; ++i)
      clients_.push_back(std::make_unique<StressClient>(*this, ctx_, rng(), i % 10 == 0));
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
    thread_ = std::thread([this, ep] { run(ep); });
  }
  ~Driver() { finish(); }

  bool wait_identified(Clock::time_point deadline) {
    std::unique_lock l(m_);
    return cv_.wait_until(l, deadline, [&] { return identified_ == clients_.size(); });
  }
  bool wait_ended(Clock::time_point deadline) {
    std::unique_lock l(m_);
    return cv_.wait_until(l, deadline, [&] { return ended_ == clients_.size(); });
  }
  std::string progress() {
    std::lock_guard l(m_);
    return "clients identified " + std::to_string(identified_) + ", ended " +
           std::to_string(ended_) + " of " + std::to_string(clients_.size());
  }
  /// Stops the io thread (bounded: it runs in short slices) and joins it.
  void finish() {
    quit_ = true;
    if (thread_.joinable()) thread_.join();
  }
  const std::vector<std::unique_ptr<StressClient>>& clients() const { return clients_; }

  // Called by clients on the io thread.
  void note_identified() {
    std::lock_guard l(m_);
    ++identified_;
    cv_.notify_all();
  }
  void note_ended() {
    std::lock_guard l(m_);
    ++ended_;
    cv_.notify_all();
  }

 private:
  void run(const tcp::endpoint& ep) {
    auto guard = asio::make_work_guard(ctx_);
    for (auto& c : clients_) c->start(ep);
    while (!quit_) ctx_.run_for(20ms);
    // Cancelled operations still hold `this` of their client: run them now.
    for (auto& c : clients_) c->abandon();
    guard.reset();
    ctx_.restart();
    ctx_.poll();
  }

  asio::io_context ctx_;  // first: outlives the clients' sockets
  std::vector<std::unique_ptr<StressClient>> clients_;
  std::atomic<bool> quit_{false};
  std::mutex m_;
  std::condition_variable cv_;
  std::size_t identified_ = 0;
  std::size_t ended_ = 0;
  std::thread thread_;
};

void StressClient::start(const tcp::endpoint& server) {
  boost::system::error_code ec;
  socket_.open(server.protocol(), ec);
  if (!ec && bulk_) {
    socket_.set_option(asio::socket_base::receive_buffer_size(bulk_receive_buffer), ec);
    // The server's segments to us shrink to this, and with them its send buffer.
    int mss = bulk_mss;
    if (::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss) != 0)
      ec.assign(errno, boost::system::system_category());
  }
  if (ec) {
    fail("socket: " + ec.message());
    return ended(ec);
  }
  socket_.async_connect(server, [this](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      fail("connect: " + ec.message());
      return ended(ec);
    }
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    pending_ = ebb::test::upgrade_request({}, "/stress");
    write_more();
    read_head();
  });
}

void StressClient::read_head() {
  socket_.async_read_some(asio::buffer(buf_),
                          [this](const boost::system::error_code& ec, std::size_t n) {
                            if (ec == asio::error::operation_aborted) return;
                            if (ec) {
                              fail("no upgrade response: " + ec.message());
                              return ended(ec);
                            }
                            head_.append(reinterpret_cast<const char*>(buf_.data()), n);
                            auto end = head_.find("\r\n\r\n");
                            if (end == std::string::npos) return read_head();
                            if (head_.rfind("HTTP/1.1 101", 0) != 0) {
                              fail("upgrade refused: " + head_.substr(0, head_.find("\r\n")));
                              return read_frames();  // read on to the EOF
                            }
                            r_.upgraded = true;
                            std::string rest = head_.substr(end + 4);
                            head_.clear();
                            for (int i = 0; i < in_flight; ++i) send_next();
                            std::copy(rest.begin(), rest.end(), buf_.begin());
                            feed(rest.size());
                            read_frames();
                          });
}

void StressClient::read_frames() {
  socket_.async_read_some(asio::buffer(buf_.data() + carry_, buf_.size() - carry_),
                          [this](const boost::system::error_code& ec, std::size_t n) {
                            if (ec == asio::error::operation_aborted) return;
                            if (ec) return ended(ec);
                            feed(carry_ + n);
                            if (!bulk_) return read_frames();
                            pause_.expires_after(bulk_read_pause);
                            pause_.async_wait([this](const boost::system::error_code& ec) {
                              if (ec != asio::error::operation_aborted) read_frames();
                            });
                          });
}

// Frames in buf_[0, size); an incomplete header is kept for the next read.
void StressClient::feed(std::size_t size) {
  carry_ = 0;
  if (!r_.upgraded || parser_.finished()) return;  // after the Close: discard
  std::size_t used = parser_.feed(buf_.data(), size);
  if (parser_.finished()) return;
  carry_ = size - used;
  std::memmove(buf_.data(), buf_.data() + used, carry_);
}

void StressClient::on_message(codec::Opcode op, std::string_view payload, bool) {
  if (op != codec::Opcode::text) return fail("unexpected binary message");
  if (payload.starts_with("id:")) {
    if (r_.id != 0 || r_.echoes != 0 || r_.broadcasts != 0)
      return fail("the id message was not the first message");
    r_.id = std::strtoull(std::string(payload.substr(3)).c_str(), nullptr, 10);
    driver_.note_identified();
    return;
  }
  if (r_.id == 0) return fail("a message before the id message: " + std::string(payload));
  if (payload == "b") {
    ++r_.broadcasts;
    return;
  }
  if (payload == "p") {
    ++r_.pushes;
    return;
  }
  if (!r_.error.empty()) return;  // counts are meaningless after a gap
  if (unanswered_.empty() || payload != unanswered_.front()) {
    auto head = [](std::string_view m) { return std::string(m.substr(0, m.find(':'))); };
    return fail("echo out of order: got \"" + head(payload) + "\" (" +
                std::to_string(payload.size()) + " bytes), expected " +
                (unanswered_.empty() ? std::string("none")
                                     : "\"" + head(unanswered_.front()) + "\" (" +
                                           std::to_string(unanswered_.front().size()) + " bytes)"));
  }
  unanswered_.pop_front();
  ++r_.echoes;
  send_next();
}

void StressClient::on_close(std::uint16_t code, std::string_view) {
  r_.got_close = true;
  r_.close_code = code;
  if (close_sent_) return;
  close_sent_ = true;
  codec::append_close_frame(pending_, code, {}, mask_);
  write_more();
}

void StressClient::send_next() {
  if (r_.got_close || close_sent_ || write_failed_) return;
  std::string message = std::to_string(r_.sent++);
  if (bulk_) {
    message += ':';
    message.append(16 * 1024 + rng_() % (48 * 1024), static_cast<char>('a' + r_.sent % 26));
  }
  send_frame(codec::Opcode::text, message);
  unanswered_.push_back(std::move(message));
}

void StressClient::send_frame(codec::Opcode op, std::string_view payload) {
  codec::append_frame(pending_, op, payload, true, false, mask_);
  write_more();
}

void StressClient::write_more() {
  if (write_busy_ || write_failed_ || pending_.empty() || r_.ended) return;
  writing_.swap(pending_);
  pending_.clear();
  write_busy_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [this](const boost::system::error_code& ec, std::size_t) {
                      write_busy_ = false;
                      writing_.clear();
                      if (ec) {
                        write_failed_ = true;  // the server cut us: the read sees it too
                        return;
                      }
                      write_more();
                    });
}

void StressClient::ended(const boost::system::error_code&) {
  if (r_.ended) return;
  r_.ended = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  driver_.note_ended();
}

// --------------------------------------------------------------- server ---

/// Per-session bookkeeping. `accepted` is touched only in the session's
/// callbacks (one I/O thread) and read after stop() joined those threads.
struct SessionRecord {
  SessionPtr session;
  std::uint64_t accepted = 0;  ///< echoes send_text accepted (sent or buffered)
  std::atomic<int> closes{0};
  std::atomic<std::uint16_t> close_code{0};
};

/// The application side: records sessions, echoes, and flags any callback
/// that runs after stop() returned.
struct App {
  std::mutex m;
  std::map<std::uint64_t, std::unique_ptr<SessionRecord>> sessions;
  std::atomic<bool> stop_returned{false};
  std::atomic<int> late_callbacks{0};
  std::atomic<int> id_send_refused{0};
  std::atomic<int> unknown_session_callbacks{0};

  void check_late() {
    if (stop_returned.load()) late_callbacks.fetch_add(1);
  }
  static SessionRecord* record(Session& s) {
    auto* p = std::any_cast<SessionRecord*>(&s.user_data());
    return p ? *p : nullptr;
  }

  void attach(Server& ws) {
    ws.on_open([this](Session& s) {
      check_late();
      auto rec = std::make_unique<SessionRecord>();
      rec->session = s.shared_from_this();
      s.user_data() = rec.get();
      {
        std::lock_guard l(m);
        sessions.emplace(s.id(), std::move(rec));
      }
      auto st = s.send_text("id:" + std::to_string(s.id()));
      if (st != SendStatus::sent && st != SendStatus::buffered) id_send_refused.fetch_add(1);
    });
    ws.on_message([this](Session& s, std::string_view msg) {
      check_late();
      auto* rec = record(s);
      if (rec == nullptr) {
        unknown_session_callbacks.fetch_add(1);
        return;
      }
      auto st = s.send_text(msg);
      if (st == SendStatus::sent || st == SendStatus::buffered) ++rec->accepted;
    });
    ws.on_close([this](Session& s, std::uint16_t code, std::string_view) {
      check_late();
      auto* rec = record(s);
      if (rec == nullptr) {
        unknown_session_callbacks.fetch_add(1);
        return;
      }
      rec->close_code = code;
      rec->closes.fetch_add(1);
    });
    ws.on_error([this](Session&, std::error_code, std::string_view) { check_late(); });
  }

  std::size_t opened() {
    std::lock_guard l(m);
    return sessions.size();
  }
  std::vector<SessionPtr> snapshot() {
    std::lock_guard l(m);
    std::vector<SessionPtr> v;
    for (auto& [id, rec] : sessions) v.push_back(rec->session);
    return v;
  }
};

// ---------------------------------------------------------------- chaos ---

/// Every random choice of one iteration, drawn from its seed up front.
struct Plan {
  std::chrono::microseconds window{};
  std::optional<std::chrono::microseconds> stop_async_a, stop_async_e, force_at;
  std::vector<std::chrono::microseconds> closes, cuts, broadcasts, pushes;
  enum class StopMode { after_chaos, during_chaos, twice_during_chaos } stop_mode{};
  std::chrono::microseconds stop_at{};
  std::uint64_t thread_seed = 0;

  static Plan make(std::uint64_t seed, std::size_t clients) {
    std::mt19937_64 rng(seed);
    auto pct = [&](int p) { return static_cast<int>(rng() % 100) < p; };
    Plan p;
    p.window = std::chrono::microseconds(5000 + rng() % 45001);
    auto at = [&] { return std::chrono::microseconds(rng() % (p.window.count() + 1)); };
    auto times = [&](std::size_t max) {
      std::vector<std::chrono::microseconds> v(rng() % (max + 1));
      for (auto& t : v) t = at();
      std::sort(v.begin(), v.end());
      return v;
    };
    if (pct(75)) p.stop_async_a = at();
    if (pct(50)) p.stop_async_e = at();
    if (pct(10)) p.force_at = at();
    p.closes = times(clients / 4);
    p.cuts = times(clients / 10);
    p.broadcasts = times(5);
    if (p.broadcasts.empty()) p.broadcasts.push_back(at());
    p.pushes = times(clients / 2);
    int mode = static_cast<int>(rng() % 100);
    p.stop_mode = mode < 40   ? StopMode::after_chaos
                  : mode < 75 ? StopMode::during_chaos
                              : StopMode::twice_during_chaos;
    p.stop_at = at();
    p.thread_seed = rng();
    return p;
  }

  std::string describe() const {
    auto us = [](auto d) { return std::to_string(d.count()) + "us"; };
    std::string s = "window " + us(window);
    s += ", stop_async A " + (stop_async_a ? us(*stop_async_a) : std::string("never"));
    s += ", stop_async E " + (stop_async_e ? us(*stop_async_e) : std::string("never"));
    s += ", force_async " + (force_at ? us(*force_at) : std::string("never"));
    s += ", closes " + std::to_string(closes.size()) + ", cuts " + std::to_string(cuts.size()) +
         ", broadcasts " + std::to_string(broadcasts.size()) + ", pushes " +
         std::to_string(pushes.size());
    s += stop_mode == StopMode::after_chaos    ? ", stop() after chaos"
         : stop_mode == StopMode::during_chaos ? ", stop() at " + us(stop_at)
                                               : ", two stop() at " + us(stop_at);
    return s;
  }
};

/// When each close was initiated and each push returned, so the check can
/// tell a push that was sent before any close began (it must arrive at a
/// client that got a Close) from one racing a close. Clock readings, not a
/// shared counter: a counter would order the chaos threads for TSan and hide
/// races between them. Each vector has one writer; read after the joins.
struct ChaosLog {
  using Stamp = Clock::time_point;
  std::vector<Stamp> stop_async_a, stop_async_e, force, stop_1, stop_2;  // whole server
  std::vector<std::pair<std::size_t, Stamp>> closes, cuts;               // session index
  struct Push {
    std::size_t session;
    Stamp returned;
    bool buffered;
  };
  std::vector<Push> pushes;

  /// When the first close of any kind was initiated for sessions[i].
  Stamp first_close(std::size_t i) const {
    Stamp first = Stamp::max();
    for (const auto* v : {&stop_async_a, &stop_async_e, &force, &stop_1, &stop_2})
      for (auto t : *v) first = std::min(first, t);
    for (const auto* v : {&closes, &cuts})
      for (auto& [s, t] : *v)
        if (s == i) first = std::min(first, t);
    return first;
  }
};

/// Calls `op` at each time (sorted, relative to t0), stamping each call in
/// `stamps` first when given.
void run_at(Clock::time_point t0, const std::vector<std::chrono::microseconds>& times,
            const std::function<void()>& op, std::vector<Clock::time_point>* stamps = nullptr) {
  for (auto t : times) {
    std::this_thread::sleep_until(t0 + t);
    if (stamps != nullptr) stamps->push_back(Clock::now());
    op();
  }
}

/// One thread per kind of chaos, each on its own schedule from the plan.
std::vector<std::future<void>> start_chaos(Server& ws, const Plan& plan,
                                           const std::vector<SessionPtr>& sessions, ChaosLog& log,
                                           Clock::time_point t0) {
  std::vector<std::future<void>> threads;
  auto once = [](std::optional<std::chrono::microseconds> t) {
    return t ? std::vector<std::chrono::microseconds>{*t}
             : std::vector<std::chrono::microseconds>{};
  };
  auto launch = [&](std::function<void()> f) {
    threads.push_back(std::async(std::launch::async, std::move(f)));
  };
  const std::size_t n = sessions.size();
  launch([&ws, &log, t0, t = once(plan.stop_async_a)] {
    run_at(
        t0, t, [&] { ws.stop_async(); }, &log.stop_async_a);
  });
  launch([&sessions, &plan, &log, n, t0, seed = plan.thread_seed] {
    std::mt19937_64 rng(seed ^ 0xB);
    run_at(t0, plan.closes, [&] {
      std::size_t i = rng() % n;
      log.closes.emplace_back(i, Clock::now());
      sessions[i]->close(static_cast<std::uint16_t>(4000 + rng() % 1000), "chaos");
    });
  });
  launch([&sessions, &plan, &log, n, t0, seed = plan.thread_seed] {
    std::mt19937_64 rng(seed ^ 0xC);
    run_at(t0, plan.cuts, [&] {
      std::size_t i = rng() % n;
      log.cuts.emplace_back(i, Clock::now());
      sessions[i]->shutdown_now();
    });
  });
  launch([&ws, &plan, t0] { run_at(t0, plan.broadcasts, [&] { ws.broadcast_text("b"); }); });
  launch([&ws, &log, t0, t = once(plan.stop_async_e)] {
    run_at(
        t0, t, [&] { ws.stop_async(); }, &log.stop_async_e);
  });
  launch([&ws, &log, t0, t = once(plan.force_at)] {
    run_at(
        t0, t, [&] { ws.force_async(); }, &log.force);
  });
  launch([&sessions, &plan, &log, n, t0, seed = plan.thread_seed] {
    std::mt19937_64 rng(seed ^ 0xF);
    run_at(t0, plan.pushes, [&] {
      std::size_t i = rng() % n;
      bool buffered = sessions[i]->send_text("p") == SendStatus::buffered;
      log.pushes.push_back({i, Clock::now(), buffered});
    });
  });
  return threads;
}

// ------------------------------------------------------------ iteration ---

/// Cross-thread sends to one session that send_text reported buffered; of
/// them, those that returned well before any close of it was initiated.
struct PushCounts {
  std::uint64_t buffered = 0;
  std::uint64_t before_close = 0;
};

struct Totals {
  std::size_t graceful_1001 = 0, graceful_4xxx = 0, cut = 0, echoes = 0, broadcasts = 0;
  std::size_t drains_forced = 0, stopped_during_chaos = 0;
  // Sends from a non-I/O thread. "Racing": sent while a close was already
  // under way; such a push may be dropped although send_text said buffered.
  std::size_t pushes_buffered = 0, pushes_before_close = 0, pushes_received = 0;
  std::size_t racing_pushes_dropped = 0;
};

ServerOptions stress_options() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.io_threads = 2;
  o.close_wait = 200ms;
  o.shutdown_timeout = 2s;
  o.shutdown_notice.clear();
  return o;
}

/// Waits for `f` until `deadline`; a miss is a hang: report and abort.
/// A future already waited for is skipped.
void bounded(std::future<void>& f, Clock::time_point deadline, const std::string& what) {
  if (!f.valid()) return;
  if (f.wait_until(deadline) == std::future_status::ready) return f.get();
  std::fprintf(stderr, "\nstress_test: HANG: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void check_invariants(App& app, Driver& driver, const DrainReport& report, std::size_t n,
                      const std::map<std::uint64_t, PushCounts>& pushes_by_id, Totals& totals) {
  EXPECT_EQ(app.late_callbacks.load(), 0) << "callbacks ran after stop() returned";
  EXPECT_EQ(app.id_send_refused.load(), 0) << "send_text refused in on_open";
  EXPECT_EQ(app.unknown_session_callbacks.load(), 0) << "callback for a session never opened";

  // Exactly-once close for every opened session.
  std::lock_guard l(app.m);
  std::size_t bad_closes = 0;
  for (auto& [id, rec] : app.sessions) {
    if (rec->closes.load() != 1 && ++bad_closes <= 5)
      ADD_FAILURE() << "session " << id << ": on_close ran " << rec->closes.load() << " times";
  }
  EXPECT_EQ(bad_closes, 0u) << "sessions without exactly one on_close";

  // What each client saw against what the server accepted for it.
  std::size_t bad_clients = 0;
  auto client_failure = [&] { return ++bad_clients <= 5; };
  std::map<std::uint64_t, int> ids_seen;
  for (std::size_t i = 0; i < driver.clients().size(); ++i) {
    const ClientResult& c = driver.clients()[i]->result();
    std::string who = "client " + std::to_string(i) + " (session " + std::to_string(c.id) + ")";
    if (!c.error.empty() && client_failure()) ADD_FAILURE() << who << ": " << c.error;
    if (!c.ended && client_failure())
      ADD_FAILURE() << who << ": the server never ended the connection";
    auto it = app.sessions.find(c.id);
    if (it == app.sessions.end()) {
      if (client_failure()) ADD_FAILURE() << who << ": no such session on the server";
      continue;
    }
    if (++ids_seen[c.id] != 1 && client_failure()) ADD_FAILURE() << who << ": id seen twice";
    const SessionRecord& rec = *it->second;
    totals.echoes += c.echoes;
    totals.broadcasts += c.broadcasts;
    PushCounts pushed = pushes_by_id.count(c.id) ? pushes_by_id.at(c.id) : PushCounts{};
    totals.pushes_buffered += pushed.buffered;
    totals.pushes_before_close += pushed.before_close;
    totals.pushes_received += c.pushes;
    if (c.pushes > pushed.buffered && client_failure())
      ADD_FAILURE() << who << ": " << c.pushes << " pushes received, " << pushed.buffered
                    << " sent";
    if (c.got_close && c.pushes < pushed.before_close && client_failure())
      ADD_FAILURE() << who << ": got Close " << c.close_code << " and " << c.pushes
                    << " pushes, but " << pushed.before_close
                    << " were sent (buffered) before any close began (messages lost)";
    if (c.got_close)
      totals.racing_pushes_dropped += pushed.buffered - std::min(pushed.buffered, c.pushes);
    if (c.got_close) {
      if (!is_graceful_code(c.close_code) && client_failure())
        ADD_FAILURE() << who << ": unexpected Close code " << c.close_code;
      // Everything queued before the Close frame must have arrived.
      if (c.echoes != rec.accepted && client_failure())
        ADD_FAILURE() << who << ": got Close " << c.close_code << " after " << c.echoes
                      << " echoes, but the server accepted " << rec.accepted
                      << " before it (messages lost)";
      std::uint16_t server_code = rec.close_code.load();
      if (server_code != c.close_code && server_code != 1006 && client_failure())
        ADD_FAILURE() << who << ": server on_close code " << server_code << ", Close frame code "
                      << c.close_code;
      (c.close_code == 1001 ? totals.graceful_1001 : totals.graceful_4xxx)++;
    } else {
      if (c.echoes > rec.accepted && client_failure())
        ADD_FAILURE() << who << ": " << c.echoes << " echoes but the server accepted only "
                      << rec.accepted;
      ++totals.cut;
    }
  }
  EXPECT_EQ(bad_clients, 0u) << "clients that broke an invariant (first 5 shown)";
  EXPECT_EQ(app.sessions.size(), n) << "sessions opened";

  // DrainReport: "Counts only sessions that were open when it began"; once
  // stop() returned every one of them has ended one way or another.
  EXPECT_TRUE(report.happened);
  EXPECT_LE(report.sessions_at_start, n);
  EXPECT_EQ(report.closed_cleanly + report.closed_by_peer + report.forced, report.sessions_at_start)
      << "drain report: at start " << report.sessions_at_start << ", clean "
      << report.closed_cleanly << ", by peer " << report.closed_by_peer << ", forced "
      << report.forced;
  if (report.forced > 0) ++totals.drains_forced;
}

void run_iteration(std::uint64_t seed, std::size_t n, Watchdog& watchdog, Totals& totals) {
  const Plan plan = Plan::make(seed, n);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (EBB_STRESS_SEED=" + std::to_string(seed) +
               " replays it): " + plan.describe());
  App app;
  Server ws(stress_options());
  app.attach(ws);
  auto state = [&] {
    return "seed " + std::to_string(seed) + ", " + plan.describe() + "\nserver state " +
           ebb::websocket::to_string(ws.state()) + ", open sessions " +
           std::to_string(ws.session_count());
  };
  struct Disarm {
    Watchdog& w;
    ~Disarm() { w.disarm(); }  // before the state lambdas go out of scope
  } disarm_on_exit{watchdog};
  watchdog.arm(Clock::now() + connect_deadline + 5s, "start and connect", state);
  ws.start();
  Driver driver(ws.port(), n, seed);
  auto with_clients = [&] { return state() + "\n" + driver.progress(); };

  bool all_open = driver.wait_identified(Clock::now() + connect_deadline);
  const Clock::time_point deadline = Clock::now() + iteration_deadline;
  watchdog.arm(deadline + 1s, "chaos, stop() and client end", with_clients);
  if (!all_open) {
    ADD_FAILURE() << "not every client opened within 10 s: " << driver.progress();
    ws.force_async();
    auto f = std::async(std::launch::async, [&] { ws.stop(); });
    bounded(f, deadline, "stop() after a failed connect phase\n" + with_clients());
    driver.wait_ended(deadline);
    driver.finish();
    watchdog.disarm();
    return;
  }

  const std::vector<SessionPtr> sessions = app.snapshot();
  ChaosLog log;
  const Clock::time_point t0 = Clock::now();
  auto chaos = start_chaos(ws, plan, sessions, log, t0);
  auto join_chaos = [&] {
    for (auto& f : chaos) bounded(f, deadline, "a chaos thread\n" + with_clients());
  };
  auto stopper = [&](std::vector<Clock::time_point>* stamp) {
    stamp->push_back(Clock::now());
    ws.stop();
    app.stop_returned = true;
  };
  std::vector<std::future<void>> stops;
  if (plan.stop_mode == Plan::StopMode::after_chaos) {
    join_chaos();
    stops.push_back(std::async(std::launch::async, stopper, &log.stop_1));
  } else {
    std::this_thread::sleep_until(t0 + plan.stop_at);
    stops.push_back(std::async(std::launch::async, stopper, &log.stop_1));
    if (plan.stop_mode == Plan::StopMode::twice_during_chaos)
      stops.push_back(std::async(std::launch::async, stopper, &log.stop_2));
    ++totals.stopped_during_chaos;
  }
  for (auto& f : stops) bounded(f, deadline, "stop()\n" + with_clients());
  EXPECT_EQ(ws.state(), LifecycleState::stopped);
  EXPECT_EQ(ws.session_count(), 0u);
  join_chaos();  // they may still call into the stopped server: no callback may run

  bool all_ended = driver.wait_ended(deadline);
  EXPECT_TRUE(all_ended) << "clients still connected after stop() returned: " << driver.progress();
  driver.finish();
  watchdog.disarm();
  std::map<std::uint64_t, PushCounts> pushes_by_id;
  for (const auto& push : log.pushes) {
    if (!push.buffered) continue;
    PushCounts& counts = pushes_by_id[sessions[push.session]->id()];
    ++counts.buffered;
    // The margin keeps clock skew between cores from counting a race as order.
    if (push.returned + 50us < log.first_close(push.session)) ++counts.before_close;
  }
  check_invariants(app, driver, ws.drain_report(), n, pushes_by_id, totals);
}

TEST(Stress, ShutdownUnderChaosKeepsEveryInvariant) {
  // The drain logs a line or two per iteration; keep the output readable.
  setenv("EBB_LOG_LEVEL", "error", 0);
  const std::size_t clients = env_u64("EBB_STRESS_CLIENTS", 200);
  std::size_t iterations = env_u64("EBB_STRESS_ITERATIONS", 200);
  const std::uint64_t replay = env_u64("EBB_STRESS_SEED", 0);
  if (replay != 0) iterations = 1;
  const bool keep_going = env_u64("EBB_STRESS_KEEP_GOING", 0) != 0;
  ASSERT_GE(clients, 1u);
  Watchdog watchdog;
  Totals totals;
  const auto started = Clock::now();
  std::size_t done = 0;
  for (std::size_t i = 0; i < iterations; ++i) {
    std::uint64_t seed = replay != 0 ? replay : default_base_seed + i;
    run_iteration(seed, clients, watchdog, totals);
    ++done;
    // The first failing seed is the one to replay; EBB_STRESS_KEEP_GOING=1
    // runs on to see what else fails.
    if (HasFailure() && !keep_going) break;
  }
  auto secs = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf(
      "stress: %zu iterations x %zu clients in %.1f s; sessions closed with 1001: %zu, with "
      "4xxx: %zu, cut without Close: %zu; echoes %zu, broadcasts %zu; drains with forced "
      "sessions %zu; stop() during chaos %zu; cross-thread sends buffered %zu (%zu before any "
      "close began), received %zu, dropped while racing a close %zu\n",
      done, clients, secs, totals.graceful_1001, totals.graceful_4xxx, totals.cut, totals.echoes,
      totals.broadcasts, totals.drains_forced, totals.stopped_during_chaos, totals.pushes_buffered,
      totals.pushes_before_close, totals.pushes_received, totals.racing_pushes_dropped);
}

}  // namespace
