// Connection: one WebSocket session's state machine, on its owner I/O thread.
//
// Reads: wait for readability, read once into the thread's buffer, parse
// every frame in it, answer with one gathered write (corking). Only an
// incomplete frame header (< 14 bytes) is kept per session between reads,
// so an idle session holds no read buffer.
// Writes: one ordered queue for data, pong and close; a write is tried at
// once (non-blocking) and only waits for writability when the kernel's
// buffer is full.
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <span>

#include "ebb/executor/runtime_executor.hpp"
#include "log/log.hpp"
#include "websocket/detail/core.hpp"
#include "websocket/detail/transport_fault.hpp"

namespace ebb::websocket::detail {

namespace {
// Owned output above this capacity is released once it drains, so a burst
// does not pin memory on an idle session.
constexpr std::size_t keep_out_capacity = 64 * 1024;
constexpr std::size_t max_iovecs = 64;
constexpr auto idle_release_after = std::chrono::seconds(1);
}  // namespace

Connection::TlsState::TlsState(tcp::socket s, asio::ssl::context& ctx)
    : socket(std::move(s)),
      stream(socket, ctx),
      buffer(new std::uint8_t[IoThread::read_buffer_size]) {}

Connection::Connection(std::uint64_t id, IoThread& thread, std::shared_ptr<ServerCore> core,
                       tcp::socket socket, bool allow_tls)
    : Session(id), thread_(thread), core_(std::move(core)) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (!ec) remote_endpoint_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  socket.set_option(tcp::no_delay(true), ec);  // corking is ours, not Nagle's
  socket.non_blocking(true, ec);
  if (core_->tls_context && allow_tls) {
    fd_ = socket.native_handle();
    tls_ = std::make_unique<TlsState>(std::move(socket), *core_->tls_context);
  } else {
    // Plain sockets leave Asio's reactor for the thread's own epoll set (see
    // core.hpp); the descriptor stays non-blocking.
    fd_ = socket.release(ec);
  }
}

Connection::~Connection() = default;

bool Connection::on_owner_thread() const noexcept { return thread_.is_current(); }

bool Connection::is_closing() const noexcept { return closing_.load(std::memory_order_acquire); }

std::size_t Connection::buffered_amount() const noexcept {
  // queued_bytes_ is owner-thread state; from elsewhere this is approximate.
  return cross_thread_bytes_.load(std::memory_order_relaxed) +
         (on_owner_thread() ? queued_bytes_ : 0);
}

// ---------------------------------------------------------------- start ---

void Connection::start() {
  last_received_ = core_->now();
  deadline_ = last_received_ + core_->options.handshake_timeout;
  // Accepted just before the listener closed: it gets its 503, but soon.
  if (core_->draining()) limit_handshake_deadline(last_received_ + core_->options.close_wait);
  if (tls()) {
    auto self = std::static_pointer_cast<Connection>(shared_from_this());
    tls_->stream.async_handshake(
        asio::ssl::stream_base::server, [self](const boost::system::error_code& ec) {
          if (self->state_ == State::closed) return;
          if (ec) return self->finish(close_code::abnormal, "TLS handshake failed");
          self->read_tls();
        });
    return;
  }
  thread_.watch(fd_, this, true, false, /*add=*/true);
}

void Connection::start_adopted(std::string received) {
  start();
  if (received.empty()) return;
  in_read_batch_ = true;
  process_handshake(reinterpret_cast<std::uint8_t*>(received.data()), received.size());
  in_read_batch_ = false;
  if (state_ != State::closed) flush();
}

// ---------------------------------------------------------------- reads ---

void Connection::on_readable() {
  std::uint8_t* buf = thread_.read_buffer();
  const std::size_t space = IoThread::read_buffer_size;
  // A partial frame header from the last read goes in front of new bytes.
  std::size_t prefix = carry_size_;
  if (prefix) std::memcpy(buf, carry_, prefix);
  carry_size_ = 0;
  ssize_t n = read_fault.take(id_) ? -1 : ::recv(fd_, buf + prefix, space - prefix, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    std::memcpy(carry_, buf, prefix);
    carry_size_ = static_cast<std::uint8_t>(prefix);
    return;
  }
  if (n <= 0) {  // EOF or reset: the transport is gone
    if (state_ == State::closing && (close_received_ || close_sent_))
      return finish(close_code_, close_reason_);
    return finish(close_code::abnormal, n == 0 ? "peer closed the connection" : "connection reset");
  }
  last_received_ = core_->now();
  awaiting_pong_ = false;
  in_read_batch_ = true;
  if (state_ == State::handshake)
    process_handshake(buf + prefix, static_cast<std::size_t>(n));  // never uses the carry
  else
    process_frames(buf, prefix + static_cast<std::size_t>(n));
  in_read_batch_ = false;
  if (state_ == State::closed) return;
  // Everything this read produced leaves in one gathered write (corking).
  flush();
  if (state_ != State::closed && parser_ && parser_->finished() && close_received_) stop_reading();
}

void Connection::on_writable() { flush(); }

void Connection::stop_reading() {
  if (tls() || !watch_read_) return;
  watch_read_ = false;
  update_watch();
}

void Connection::update_watch() {
  if (!tls() && fd_ >= 0) thread_.watch(fd_, this, watch_read_, watch_write_);
}

void Connection::read_tls() {
  if (reading_ || state_ == State::closed) return;
  reading_ = true;
  auto self = std::static_pointer_cast<Connection>(shared_from_this());
  std::size_t prefix = carry_size_;
  std::memcpy(tls_->buffer.get(), carry_, prefix);
  tls_->stream.async_read_some(
      asio::buffer(tls_->buffer.get() + prefix, IoThread::read_buffer_size - prefix),
      [self, prefix](boost::system::error_code ec, std::size_t n) {
        self->reading_ = false;
        if (self->state_ == State::closed) return;
        if (!ec && read_fault.take(self->id_)) ec.assign(errno, boost::system::system_category());
        if (ec) {
          if (self->state_ == State::closing)
            return self->finish(self->close_code_, self->close_reason_);
          return self->finish(close_code::abnormal, "TLS read failed");
        }
        self->carry_size_ = 0;
        self->last_received_ = self->core_->now();
        self->awaiting_pong_ = false;
        self->in_read_batch_ = true;
        if (self->state_ == State::handshake)
          self->process_handshake(self->tls_->buffer.get() + prefix, n);
        else
          self->process_frames(self->tls_->buffer.get(), prefix + n);
        self->in_read_batch_ = false;
        if (self->state_ == State::closed) return;
        self->flush();
        self->read_tls();
      });
}

void Connection::process_handshake(std::uint8_t* data, std::size_t size) {
  handshake_buf_.append(reinterpret_cast<const char*>(data), size);
  auto result = handshake::process_request(handshake_buf_, core_->policy);
  if (result.status == handshake::Status::need_more) return;
  if (result.status == handshake::Status::rejected) {
    log::logger()->debug("session {} from {}: upgrade rejected with {}: {}", id_, remote_endpoint_,
                         result.http_status, result.error);
    return reject_upgrade(result.response);
  }
  if (core_->stop_requested.load(std::memory_order_acquire)) {
    // Draining: no new sessions (the listener is already closed; this one
    // was accepted just before).
    return reject_upgrade(
        handshake::error_response(503, "server is shutting down", "Retry-After: 1\r\n"));
  }
  target_ = std::move(result.target);
  subprotocol_ = std::move(result.subprotocol);
  codec::ParserLimits limits;
  limits.max_message_size = core_->options.max_message_size;
  if (result.deflate) {
    limits.allow_rsv1 = true;
    const auto& p = *result.deflate;
    deflater_ = std::make_unique<deflate::Deflater>(
        p.server_max_window_bits, p.server_no_context_takeover, core_->options.deflate.level);
    inflater_ =
        std::make_unique<deflate::Inflater>(p.client_max_window_bits, p.client_no_context_takeover);
    deflate_min_size_ = core_->options.deflate.min_size;
  }
  parser_.emplace(codec::Role::server, limits, *this);
  std::size_t rest_offset = result.consumed;
  std::string rest = handshake_buf_.substr(rest_offset);
  std::string().swap(handshake_buf_);
  out_.append(result.response);
  segments_.push_back({nullptr, 0, out_.size()});
  queued_bytes_ += result.response.size();
  state_ = State::open;
  opened_ = true;
  release_after_flush_ = true;
  core_->open_sessions.fetch_add(1, std::memory_order_relaxed);
  if (auto* m = core_->metrics) {
    m->connections_total.inc();
    m->connections_active.inc();
  }
  if (core_->on_open) {
    try {
      core_->on_open(*this);
    } catch (const std::exception& e) {
      core_->report_error(*this, make_error_code(error::policy_violation),
                          std::string("on_open threw: ") + e.what());
    }
  }
  // Frames pipelined behind the request head.
  if (!rest.empty() && state_ == State::open)
    process_frames(reinterpret_cast<std::uint8_t*>(rest.data()), rest.size());
}

// Sends an HTTP error response instead of the 101, then closes the
// connection once it is written (bounded by close_wait).
void Connection::reject_upgrade(std::string_view response) {
  // "HTTP/1.1 NNN ...": the status, for the failed-handshake counter.
  if (core_->metrics && response.size() > 12)
    core_->metrics->count_handshake_failure((response[9] - '0') * 100 + (response[10] - '0') * 10 +
                                            (response[11] - '0'));
  out_.append(response);
  segments_.push_back({nullptr, 0, out_.size()});
  queued_bytes_ += response.size();
  state_ = State::closing;
  closing_.store(true, std::memory_order_release);
  close_after_flush_ = true;
  deadline_ = core_->now() + core_->options.close_wait;
}

void Connection::process_frames(std::uint8_t* data, std::size_t size) {
  if (!parser_ || parser_->finished()) return;
  parser_->resume();  // a stop() from the last batch applied to that batch only
  std::size_t used = parser_->feed(data, size);
  if (parser_->finished() || state_ == State::closed) return;
  std::size_t left = size - used;
  if (left >= codec::max_header_size) {
    // The parser stopped early (a callback closed the session); drop input.
    return;
  }
  std::memcpy(carry_, data + used, left);
  carry_size_ = static_cast<std::uint8_t>(left);
}

// --------------------------------------------------------- parser events ---

void Connection::on_message(codec::Opcode op, std::string_view payload, bool compressed) {
  if (state_ != State::open) return;  // after our Close, data is ignored
  if (compressed) {
    if (!inflater_) return on_protocol_error(close_code::protocol_error, "unexpected RSV1");
    std::string& out = thread_.inflate_buffer();
    out.clear();
    auto r = inflater_->decompress(payload, out, core_->options.max_message_size);
    if (r == deflate::Inflater::Result::too_big)
      return on_protocol_error(close_code::message_too_big, "message too big after inflate");
    if (r != deflate::Inflater::Result::ok)
      return on_protocol_error(close_code::invalid_payload, "bad deflate data");
    if (op == codec::Opcode::text && !codec::is_valid_utf8(out))
      return on_protocol_error(close_code::invalid_payload, "invalid UTF-8 in text message");
    payload = out;
  }
  if (auto* m = core_->metrics)
    m->count_message_received(op == codec::Opcode::text ? WebSocketMetrics::MessageKind::text
                                                        : WebSocketMetrics::MessageKind::binary,
                              payload.size());
  try {
    if (op == codec::Opcode::text) {
      deliver_text(payload);
    } else if (core_->on_binary_view) {
      core_->on_binary_view(*this, payload);
    } else if (core_->on_binary_string) {
      std::string& copy = thread_.text_copy();
      copy.assign(payload);
      core_->on_binary_string(*this, copy);
    }
  } catch (const std::exception& e) {
    // An application bug must not take the server down; the session ends
    // with 1011 so the client knows the server failed it.
    core_->report_error(*this, make_error_code(error::policy_violation),
                        std::string("message handler threw: ") + e.what());
    close(close_code::internal_error, "internal error");
  }
  if (state_ != State::open && parser_) parser_->stop();
}

void Connection::deliver_text(std::string_view text) {
  core_->deliver_text(*this, text, thread_.text_copy());
}

void Connection::on_ping(std::string_view payload) {
  if (state_ != State::open) return;
  append_frame(codec::Opcode::pong, payload);
  if (!in_read_batch_) schedule_flush();
}

void Connection::on_pong(std::string_view) { awaiting_pong_ = false; }

void Connection::on_close(std::uint16_t code, std::string_view reason) {
  close_received_ = true;
  if (state_ == State::open) {
    // Peer initiated: answer with the same code after what is queued, then
    // close the transport (the server closes TCP first, RFC 6455 §7.1.1).
    close_code_ = code;
    close_reason_.assign(reason);
    std::uint16_t echo = code == close_code::no_status ? close_code::no_status : code;
    state_ = State::closing;
    closing_.store(true, std::memory_order_release);
    std::size_t before = out_.size();
    codec::append_close_frame(out_, echo, {});
    segments_.push_back({nullptr, before, out_.size()});
    queued_bytes_ += out_.size() - before;
    close_sent_ = true;
    close_after_flush_ = true;
    deadline_ = core_->now() + core_->options.close_wait;
    if (!in_read_batch_) schedule_flush();
    return;
  }
  // We initiated and this is the answer: the handshake is complete.
  close_after_flush_ = true;
  if (queued_bytes_ == 0 && !writing_) finish(close_code_, close_reason_);
}

void Connection::on_protocol_error(std::uint16_t code, std::string_view reason) {
  error e = code == close_code::invalid_payload   ? error::invalid_utf8
            : code == close_code::message_too_big ? error::message_too_big
                                                  : error::protocol_error;
  core_->report_error(*this, make_error_code(e), reason);
  // Keep reading (and discarding) until the peer's EOF or close_wait: closing
  // with unread input would make the kernel send RST, and the peer would
  // lose our Close frame with its code.
  if (state_ == State::open) start_close(code, reason, true);
}

// ---------------------------------------------------------------- sends ---

SendStatus Connection::send_text(std::string_view message) {
  return send(codec::Opcode::text, message);
}
SendStatus Connection::send_binary(std::string_view message) {
  return send(codec::Opcode::binary, message);
}

SendStatus Connection::send(codec::Opcode op, std::string_view message) {
  if (on_owner_thread()) return send_local(op, message);
  return send_from_other_thread(op, message);
}

// Out of line: keeps send(), on every echo's path, a compare and a jump.
SendStatus Connection::send_from_other_thread(codec::Opcode op, std::string_view message) {
  if (is_closing()) return SendStatus::closing;
  std::size_t pending =
      cross_thread_bytes_.fetch_add(message.size(), std::memory_order_relaxed) + message.size();
  if (pending > core_->options.max_send_queue) {
    cross_thread_bytes_.fetch_sub(message.size(), std::memory_order_relaxed);
    auto self = std::static_pointer_cast<Connection>(shared_from_this());
    core_->post_to(thread_, [self] {
      if (self->state_ != State::open) return;
      self->core_->report_error(*self, make_error_code(error::send_queue_overflow),
                                "send queue over max_send_queue");
      self->start_close(self->core_->options.slow_consumer_close_code, "send queue overflow", true);
    });
    return SendStatus::dropped;
  }
  const bool posted =
      core_->post_to(thread_, [self = std::static_pointer_cast<Connection>(shared_from_this()), op,
                               msg = std::string(message)] {
        self->cross_thread_bytes_.fetch_sub(msg.size(), std::memory_order_relaxed);
        self->send_local(op, msg);
      });
  if (posted) return SendStatus::buffered;
  cross_thread_bytes_.fetch_sub(message.size(), std::memory_order_relaxed);
  return SendStatus::closing;  // the server has stopped
}

SendStatus Connection::send_local(codec::Opcode op, std::string_view message) {
  if (state_ != State::open) return SendStatus::closing;
  if (queued_bytes_ + message.size() > core_->options.max_send_queue) {
    core_->report_error(*this, make_error_code(error::send_queue_overflow),
                        "send queue over max_send_queue");
    start_close(core_->options.slow_consumer_close_code, "send queue overflow", true);
    return SendStatus::dropped;
  }
  if (auto* m = core_->metrics)
    m->count_message_sent(op == codec::Opcode::text ? WebSocketMetrics::MessageKind::text
                                                    : WebSocketMetrics::MessageKind::binary,
                          message.size());
  if (deflater_ && message.size() >= deflate_min_size_) {
    // Not the inflate buffer: an echo sends the very view it was given.
    std::string& z = thread_.deflate_buffer();
    z.clear();
    if (deflater_->compress(message, z)) {
      append_frame(op, z, true);
    } else {
      append_frame(op, message);
    }
  } else {
    append_frame(op, message);
  }
  if (in_read_batch_) return SendStatus::buffered;  // flushed at the end of the batch
  if (writing_) return SendStatus::buffered;
  flush();
  return queued_bytes_ == 0 ? SendStatus::sent : SendStatus::buffered;
}

void Connection::append_frame(codec::Opcode op, std::string_view payload, bool rsv1) {
  std::size_t before = out_.size();
  codec::append_frame(out_, op, payload, true, rsv1, nullptr);
  if (!segments_.empty() && !segments_.back().shared && segments_.back().end == before)
    segments_.back().end = out_.size();
  else
    segments_.push_back({nullptr, before, out_.size()});
  queued_bytes_ += out_.size() - before;
}

void Connection::enqueue_shared(const std::shared_ptr<const std::string>& frame) {
  if (state_ != State::open) return;
  if (queued_bytes_ + frame->size() > core_->options.max_send_queue) {
    core_->report_error(*this, make_error_code(error::send_queue_overflow),
                        "send queue over max_send_queue (broadcast)");
    start_close(core_->options.slow_consumer_close_code, "send queue overflow", true);
    return;
  }
  segments_.push_back({frame, 0, frame->size()});
  queued_bytes_ += frame->size();
  if (!in_read_batch_) schedule_flush();
}

void Connection::schedule_flush() {
  if (flush_scheduled_ || writing_) return;
  flush_scheduled_ = true;
  // Posted, so several sends in one handler leave as one gathered write.
  asio::post(thread_.context(), [self = std::static_pointer_cast<Connection>(shared_from_this())] {
    self->flush_scheduled_ = false;
    self->flush();
  });
}

void Connection::flush() {
  if (writing_ || state_ == State::closed) return;
  if (segments_.empty()) return after_flush();
  if (tls()) return flush_tls();
  flush_plain();
}

void Connection::flush_plain() {
  while (!segments_.empty()) {
    iovec iov[max_iovecs];
    std::size_t count = 0;
    for (auto& seg : segments_) {
      if (count == max_iovecs) break;
      const char* base = seg.shared ? seg.shared->data() : out_.data();
      iov[count].iov_base = const_cast<char*>(base + seg.begin);
      iov[count].iov_len = seg.end - seg.begin;
      ++count;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    // The write that ends with our Close is held back (MSG_MORE) when a
    // half-close follows it at once: shutdown() then tacks the FIN onto that
    // unsent segment, so Close and FIN travel in one packet (see after_flush).
    int flags = MSG_NOSIGNAL;
    if (close_after_flush_ && count == segments_.size() && half_close_follows()) flags |= MSG_MORE;
    ssize_t n = write_fault.take(id_) ? -1 : ::sendmsg(fd_, &msg, flags);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The kernel's buffer is full: wait for EPOLLOUT (level-triggered).
      if (!watch_write_) {
        watch_write_ = true;
        update_watch();
      }
      return;
    }
    if (n < 0) return finish(close_code::abnormal, "write failed");
    consume_written(static_cast<std::size_t>(n));
  }
  if (watch_write_) {
    watch_write_ = false;
    update_watch();
  }
  after_flush();
}

void Connection::flush_tls() {
  writing_ = true;
  auto& t = *tls_;
  t.writing_out.swap(out_);
  t.writing_segments.swap(segments_);
  std::vector<asio::const_buffer> bufs;
  bufs.reserve(t.writing_segments.size());
  for (auto& seg : t.writing_segments) {
    const char* base = seg.shared ? seg.shared->data() : t.writing_out.data();
    bufs.emplace_back(base + seg.begin, seg.end - seg.begin);
  }
  asio::async_write(t.stream, bufs,
                    [self = std::static_pointer_cast<Connection>(shared_from_this())](
                        boost::system::error_code ec, std::size_t n) {
                      self->writing_ = false;
                      if (!ec && write_fault.take(self->id_))
                        ec.assign(errno, boost::system::system_category());
                      self->tls_written(n);
                      if (self->state_ == State::closed) return;
                      if (ec) return self->finish(close_code::abnormal, "TLS write failed");
                      self->flush();
                    });
}

// The TLS write is over (all of it, or an error): its buffers can go.
void Connection::tls_written(std::size_t n) {
  auto& t = *tls_;
  queued_bytes_ -= std::min(n, queued_bytes_);
  t.writing_segments.clear();
  t.writing_out.clear();
  if (t.writing_out.capacity() > keep_out_capacity) std::string().swap(t.writing_out);
}

void Connection::consume_written(std::size_t n) {
  queued_bytes_ -= n;
  std::size_t i = 0;
  while (n > 0 && i < segments_.size()) {
    auto& s = segments_[i];
    std::size_t len = s.end - s.begin;
    if (n >= len) {
      n -= len;
      ++i;
    } else {
      s.begin += n;
      n = 0;
    }
  }
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(i));
  if (segments_.empty()) {
    out_.clear();
    if (out_.capacity() > keep_out_capacity) std::string().swap(out_);
  }
}

void Connection::after_flush() {
  if (!segments_.empty()) return;
  if (release_after_flush_) {
    // The 101 response is out: most sessions then idle, so do not keep its
    // buffer (busy ones regrow theirs once and keep it).
    release_after_flush_ = false;
    std::string().swap(out_);
    std::vector<OutSegment>().swap(segments_);
  }
  if (close_after_flush_ && (close_received_ || state_ == State::closing)) {
    if (close_received_ || !opened_) {
      // Handshake complete (or an HTTP rejection sent): the server closes TCP.
      return finish(close_code_, close_reason_);
    }
    // Our Close is out and the peer has not answered: half-close now, so the
    // FIN rides on the Close's own segment (flush_plain held it back with
    // MSG_MORE). A peer sees Close and EOF in one read and can finish in one
    // pass, and a peer that only reacts to EOF hangs up at once; we keep
    // reading for its Close until close_wait. With half_close_delay the FIN
    // waits (sweep()): a proxy that ends the whole tunnel on the server's FIN
    // (nginx) then still carries frames the client sent meanwhile.
    if (half_close_follows()) {
      ::shutdown(fd_, SHUT_WR);
    } else if (awaiting_close_answer() && !half_close_pending_) {
      half_close_pending_ = true;
      half_close_at_ = core_->now() + core_->options.half_close_delay;
    }
  }
}

// Our Close is the last output and the peer has not sent its own (plain TCP:
// a TLS session ends with close_notify, not a bare FIN).
bool Connection::awaiting_close_answer() const noexcept {
  return close_after_flush_ && state_ == State::closing && !close_received_ && opened_ && !tls();
}

bool Connection::half_close_follows() const noexcept {
  return awaiting_close_answer() && core_->options.half_close_delay.count() <= 0;
}

// ---------------------------------------------------------------- close ---

void Connection::close(std::uint16_t code, std::string_view reason) {
  if (!on_owner_thread()) {
    // Flag first: sends from other threads now return `closing` instead of
    // queueing behind a Close that is about to be posted.
    if (closing_.exchange(true, std::memory_order_acq_rel)) return;
    core_->post_to(thread_, [self = std::static_pointer_cast<Connection>(shared_from_this()), code,
                             r = std::string(reason)] { self->close_local(code, r); });
    return;
  }
  close_local(code, reason);
}

void Connection::close_local(std::uint16_t code, std::string_view reason) {
  if (state_ == State::handshake) return finish(close_code::abnormal, "closed during handshake");
  if (state_ != State::open) return;
  start_close(code, reason, true);
}

void Connection::start_close(std::uint16_t code, std::string_view reason, bool wait_for_peer) {
  if (state_ != State::open) return;
  if (!is_valid_wire_close_code(code)) code = close_code::normal;
  state_ = State::closing;
  closing_.store(true, std::memory_order_release);
  close_code_ = code;
  close_reason_.assign(reason.substr(0, 123));
  std::size_t before = out_.size();
  codec::append_close_frame(out_, code, reason);
  segments_.push_back({nullptr, before, out_.size()});
  queued_bytes_ += out_.size() - before;
  close_sent_ = true;
  close_after_flush_ = true;
  deadline_ = core_->now() + core_->options.close_wait;
  if (!wait_for_peer) close_received_ = true;  // protocol error: do not wait for an answer
  if (parser_) parser_->stop();
  if (!in_read_batch_) schedule_flush();
}

void Connection::shutdown_now() {
  if (!on_owner_thread()) {
    {
      // fd_mutex_ keeps the owner from closing (and the kernel from reusing)
      // the descriptor while we shut it down; the owner then sees EOF/HUP.
      std::lock_guard lock(fd_mutex_);
      if (fd_ < 0) return;
      forced_ = true;  // the owner may see EOF before the posted call below
      closing_.store(true, std::memory_order_release);
      ::shutdown(fd_, SHUT_RDWR);
    }
    core_->post_to(thread_, [self = std::static_pointer_cast<Connection>(shared_from_this())] {
      self->shutdown_now();
    });
    return;
  }
  if (state_ == State::closed) return;
  forced_ = true;
  core_->report_error(*this, make_error_code(error::forced_shutdown), "shutdown_now");
  finish(close_code::abnormal, "shutdown_now");
}

bool Connection::begin_drain(std::chrono::milliseconds delay) {
  if (state_ != State::open) return false;  // already closing: it ends by itself
  const auto& o = core_->options;
  // Corked like a read batch: the notice and the Close leave in one write
  // (10,000 sessions: one sendmsg each, not two, and no Close waits behind
  // every other session's notice).
  in_read_batch_ = true;
  if (!o.shutdown_notice.empty()) send_local(codec::Opcode::text, shutdown_notice_text(o, delay));
  bool scheduled = false;
  if (state_ == State::open && !drain_observer_) {  // not closed by a notice over the cap
    if (delay.count() <= 0) {
      start_drain_close();
    } else {
      drain_close_pending_ = true;
      drain_close_at_ = core_->now() + delay;
      scheduled = true;
    }
  }
  in_read_batch_ = false;
  flush();
  return scheduled;
}

void Connection::start_drain_close() {
  start_close(close_code::going_away, "server shutting down", true);
}

void Connection::close_observer() {
  if (state_ != State::open) return;
  start_drain_close();
  flush();
}

void Connection::force() {
  if (state_ == State::closed) return;
  forced_ = true;
  finish(close_code::abnormal, "forced shutdown");
}

// A session that has been quiet this long gives its output buffers and the
// parser's assembly buffer back: idle connections then cost only the object
// itself (bench: 10,000 idle sessions), while busy ones keep their capacity
// and allocate nothing per message.
void Connection::release_idle_memory() {
  if (!segments_.empty() || writing_) return;
  if (out_.capacity() > 0) std::string().swap(out_);
  if (segments_.capacity() > 0) std::vector<OutSegment>().swap(segments_);
  if (tls_) {
    std::string().swap(tls_->writing_out);
    std::vector<OutSegment>().swap(tls_->writing_segments);
  }
  if (parser_ && !parser_->mid_message()) parser_->release_memory();
}

void Connection::sweep(Clock::time_point now) {
  const auto& o = core_->options;
  if (drain_close_pending_ && state_ == State::open && now >= drain_close_at_) {
    drain_close_pending_ = false;
    start_drain_close();
    thread_.drain_close_issued();
    return;
  }
  switch (state_) {
    case State::handshake:
      if (now >= deadline_) {
        log::logger()->debug("session {} from {}: handshake timeout", id_, remote_endpoint_);
        finish(close_code::abnormal, "handshake timeout");
      }
      return;
    case State::closing:
      if (half_close_pending_ && now >= half_close_at_ && !close_received_) {
        half_close_pending_ = false;
        ::shutdown(fd_, SHUT_WR);
      }
      if (now >= deadline_) {
        if (opened_ && !close_received_) {
          forced_ = true;
          core_->report_error(*this, make_error_code(error::close_timeout),
                              "peer did not answer Close within close_wait");
        }
        finish(close_code_, close_reason_);
      }
      return;
    case State::open:
      break;
    case State::closed:
      return;
  }
  if (now - last_received_ >= idle_release_after) release_idle_memory();
  switch (state_) {
    case State::open:
      break;
    default:
      return;
  }
  if (o.idle_timeout.count() > 0 && now - last_received_ >= o.idle_timeout) {
    core_->report_error(*this, make_error_code(error::idle_timeout), "idle timeout");
    start_close(close_code::going_away, "idle timeout", true);
    return;
  }
  if (o.ping_interval.count() <= 0) return;
  if (awaiting_pong_) {
    if (now - ping_sent_at_ >= o.pong_timeout) {
      core_->report_error(*this, make_error_code(error::pong_timeout),
                          "no pong within pong_timeout");
      finish(close_code::abnormal, "pong timeout");
    }
    return;
  }
  if (now - last_received_ >= o.ping_interval) {
    awaiting_pong_ = true;
    ping_sent_at_ = now;
    append_frame(codec::Opcode::ping, {});
    flush();
  }
}

void Connection::finish(std::uint16_t code, std::string_view reason) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  closing_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(fd_mutex_);
    if (tls()) {
      boost::system::error_code ec;
      tls_->socket.cancel(ec);
      tls_->socket.close(ec);
    } else if (fd_ >= 0) {
      ::close(fd_);  // also leaves the epoll set: the descriptor is not shared
    }
    fd_ = -1;
  }
  segments_.clear();
  std::string().swap(out_);
  std::string().swap(handshake_buf_);
  core_->leave_all_rooms(*this);
  auto self = shared_from_this();  // remove() drops the registry's reference
  if (opened_) {
    core_->open_sessions.fetch_sub(1, std::memory_order_relaxed);
    if (auto* m = core_->metrics) {
      m->connections_active.dec();
      m->count_close(code);
    }
    if (core_->on_close) {
      try {
        core_->on_close(*this, code, reason);
      } catch (const std::exception& e) {
        log::logger()->error("session {}: on_close threw: {}", id_, e.what());
      }
    }
  }
  parser_.reset();
  deflater_.reset();
  inflater_.reset();
  if (drain_close_pending_) {
    drain_close_pending_ = false;
    thread_.drain_close_issued();
  }
  auto outcome = forced_           ? ServerCore::Outcome::forced
                 : close_received_ ? ServerCore::Outcome::clean
                                   : ServerCore::Outcome::by_peer;
  core_->connection_ended(in_drain_, drain_observer_, outcome);
  thread_.remove(this);
}

}  // namespace ebb::websocket::detail
