#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <numeric>
#include <random>
#include <system_error>

#include "log/log.hpp"
#include "websocket/detail/core.hpp"

namespace ebb::websocket::detail {

namespace {
// Timers (handshake, idle, ping/pong, close wait) are checked by one sweep
// per thread instead of a timer per session: no per-session timer memory,
// no per-message timer work. 100 ms is the timers' resolution.
constexpr auto sweep_period = std::chrono::milliseconds(100);
}  // namespace

IoThread::IoThread(ServerCore& core, unsigned index)
    : core_(core),
      index_(index),
      ctx_(1),  // one thread runs it: lets Asio skip internal locking
      work_(asio::make_work_guard(ctx_)),
      sweep_timer_(ctx_),
      read_buffer_(new std::uint8_t[read_buffer_size]) {}

IoThread::~IoThread() { join(); }

void IoThread::arm_ready_wait() {
  epoll_.async_wait([this] {
    run_ready();
    // The batch may have ended the last connection of a stopping thread:
    // then nothing is left to wait for.
    if (!quiesced_) arm_ready_wait();
  });
}

// One batch of ready plain sockets. Level-triggered: whatever a handler
// leaves unread is reported again in the next batch.
void IoThread::run_ready() {
  epoll_.dispatch_ready<Connection>();  // the graveyard keeps what ends meanwhile
  graveyard_.clear();
}

void IoThread::start() {
  arm_ready_wait();
  schedule_sweep();
  thread_ = std::thread([this] {
    current_io_thread = this;
    try {
      ctx_.run();
    } catch (const std::exception& e) {
      // Handlers catch application exceptions; reaching here is a bug in ebb.
      log::logger()->critical("I/O thread {} stopped by an exception: {}", index_, e.what());
    }
    graveyard_.clear();
    current_io_thread = nullptr;
  });
}

void IoThread::join() {
  if (!thread_.joinable()) return;
  thread_.join();
  run_late_handlers();
}

// Handlers posted from other threads after run() returned (a send racing
// with the stop) still hold their sessions (and so the server core): run
// them here, as the owner, so they release what they hold. Sessions are
// closed by now, so none of them calls back into the application.
void IoThread::run_late_handlers() {
  IoThread* previous = current_io_thread;
  current_io_thread = this;
  ctx_.restart();
  ctx_.poll();
  graveyard_.clear();
  current_io_thread = previous;
}

void IoThread::add(std::shared_ptr<Connection> c) {
  c->registry_index = connections_.size();
  connections_.push_back(std::move(c));
  if (quiesced_) {
    // Accepted just before the listener closed, after this thread had wound
    // down: serve it (it gets its 503) until it ends.
    quiesced_ = false;
    arm_ready_wait();
    schedule_sweep();
  }
}

void IoThread::remove(Connection* c) {
  std::size_t i = c->registry_index;
  if (i >= connections_.size() || connections_[i].get() != c) return;
  // Not destroyed here: the caller may be inside `c`, and the current epoll
  // batch may still hold its pointer. Freed at the end of the batch/handler.
  graveyard_.push_back(std::move(connections_[i]));
  if (i + 1 != connections_.size()) {
    connections_[i] = std::move(connections_.back());
    connections_[i]->registry_index = i;
  }
  connections_.pop_back();
  maybe_finish_stop();
}

void IoThread::begin_drain() {
  const auto& o = core_.options;
  auto snapshot = connections_;
  // Spread mode: each open session gets its own slot in [0, spread), in a
  // random order, so reconnects to the next instance arrive evenly.
  std::vector<std::size_t> order(snapshot.size());
  std::iota(order.begin(), order.end(), 0);
  if (o.shutdown_spread.count() > 0) {
    std::shuffle(order.begin(), order.end(), std::mt19937_64(std::random_device{}()));
  }
  const auto close_wait_cap = core_.now() + o.close_wait;
  // Counted first, on the sessions' own thread and before any of them can
  // end (the loop below may end some), so the report's "at start" and its
  // outcomes cover exactly the same sessions, and observers wait for them.
  std::size_t in_drain = 0, observers = 0;
  for (auto& c : snapshot) {
    if (!c->in_handshake() && c->mark_in_drain()) {
      ++in_drain;
      if (c->is_drain_observer()) ++observers;
    }
  }
  core_.thread_began_drain(in_drain, observers);
  for (std::size_t rank = 0; rank < snapshot.size(); ++rank) {
    auto& c = snapshot[order[rank]];
    if (c->in_handshake()) {
      // Let it finish its request so it gets a clear 503, but not for long.
      c->limit_handshake_deadline(close_wait_cap);
      continue;
    }
    auto delay = std::chrono::milliseconds(0);
    if (o.shutdown_spread.count() > 0)
      delay = std::chrono::milliseconds(o.shutdown_spread.count() * static_cast<long long>(rank) /
                                        static_cast<long long>(snapshot.size()));
    if (c->begin_drain(delay)) ++drain_closes_pending_;
  }
  if (index_ == 0 && core_.external) core_.external->drain();
  stopping_ = true;
  if (drain_closes_pending_ == 0) report_drain_closes_done();
  maybe_finish_stop();
}

void IoThread::close_drain_observers() {
  auto snapshot = connections_;  // a Close may end a session (and reorder the list)
  for (auto& c : snapshot)
    if (c->is_drain_observer()) c->close_observer();
  graveyard_.clear();
}

void IoThread::drain_close_issued() {
  if (drain_closes_pending_ > 0 && --drain_closes_pending_ == 0) report_drain_closes_done();
}

void IoThread::report_drain_closes_done() {
  if (drain_reported_) return;
  drain_reported_ = true;
  core_.thread_drain_closes_done();
}

void IoThread::force_all() {
  if (index_ == 0 && core_.external) core_.external->close_all();
  auto snapshot = connections_;
  for (auto& c : snapshot) c->force();
  stopping_ = true;
  drain_closes_pending_ = 0;
  report_drain_closes_done();
  maybe_finish_stop();
}

void IoThread::for_each_open(const std::function<void(Connection&)>& f) {
  for (auto& c : connections_)
    if (c->is_open()) f(*c);
}

void IoThread::begin_stop() {
  stopping_ = true;
  maybe_finish_stop();
}

void IoThread::maybe_finish_stop() {
  if (!stopping_ || !connections_.empty()) return;
  // Graceful: nothing is aborted; once the sweep timer is cancelled and the
  // guard released, run() returns when the last handler has run.
  sweep_timer_.cancel();
  epoll_.cancel();
  quiesced_ = true;
  work_.reset();
}

void IoThread::schedule_sweep() {
  sweep_timer_.expires_after(sweep_period);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || (stopping_ && connections_.empty())) return;
    sweep();
    graveyard_.clear();
    if (!quiesced_) schedule_sweep();
  });
}

void IoThread::sweep() {
  auto now = core_.now();
  // Walk downwards: a connection that times out removes only itself, and
  // remove() moves the last entry (already visited) into its slot.
  for (std::size_t i = connections_.size(); i-- > 0;) {
    if (i >= connections_.size()) continue;
    std::shared_ptr<Connection> c = connections_[i];
    c->sweep(now);
  }
}

}  // namespace ebb::websocket::detail
