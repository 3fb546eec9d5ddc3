// One HTTP/1.1 connection: parse (Beast), dispatch, write, keep-alive,
// pipelining in order, deferred responses, limits and timeouts, the drain.
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/http/error.hpp>
#include <cerrno>
#include <charconv>

#include "ebb/websocket/server.hpp"
#include "http/core.hpp"
#include "log/log.hpp"

namespace ebb::http::detail {

namespace {
// Unsent response bytes past which reading pauses (a client pipelining
// requests without reading the answers cannot grow our memory).
constexpr std::size_t max_unsent = 1 << 20;
// After an error response: how long to keep reading (and discarding) so the
// client sees the response instead of a reset.
constexpr auto linger_time = std::chrono::seconds(2);
// At the drain, how long a connection that has sent nothing yet may take to
// start its first request. A client that connected just before the drain
// sends at once and gets its answer (Connection: close); a spare connection
// a browser opened ahead of need (preconnect) may never send, and must not
// hold the drain for the whole header timeout.
constexpr auto drain_first_request_grace = std::chrono::seconds(1);
constexpr std::size_t keep_out_capacity = 64 * 1024;

void append_number(std::string& out, std::size_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

bool no_body_status(int s) { return (s >= 100 && s < 200) || s == 204 || s == 304; }
}  // namespace

std::shared_ptr<PendingState> make_pending(HttpConnection* owner) {
  auto s = std::make_shared<PendingState>();
  if (owner) owner->bind_pending(*s);
  return s;
}

HttpConnection::HttpConnection(HttpThread& thread, AppCore& core, int fd,
                               std::string remote_address, std::uint16_t remote_port)
    : thread_(thread), core_(core), fd_(fd) {
  RequestBuilder(request_).set_remote(std::move(remote_address), remote_port);
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void HttpConnection::bind_pending(PendingState& s) {
  s.core = core_.weak_from_this();
  s.connection = weak_from_this();
  s.thread = thread_.index();
}

void HttpConnection::start() {
  deadline_ = Clock::now() + core_.options.keepalive_timeout;
  thread_.watch(fd_, this, true, false, /*add=*/true);
}

// ---------------------------------------------------------------- input ---

void HttpConnection::on_readable() {
  char* buf = thread_.read_buffer();
  ssize_t n = ::recv(fd_, buf, HttpThread::read_buffer_size, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    return finish();
  }
  if (state_ == State::lingering) {
    if (n == 0) finish();
    return;  // discarded
  }
  if (n == 0) {
    // The peer closed its side. A deferred answer may still be read by it.
    if (state_ == State::deferred) {
      watch_read_ = false;
      update_watch();
      return;
    }
    return finish();
  }
  const auto size = static_cast<std::size_t>(n);
  if (pending_.empty()) {
    std::size_t used = parse_requests(buf, size);
    if (state_ != State::closed && used < size) pending_.assign(buf + used, size - used);
  } else {
    pending_.append(buf, size);
    process_input();
  }
  if (state_ != State::closed) flush();
}

void HttpConnection::process_input() {
  std::size_t used = parse_requests(pending_.data(), pending_.size());
  if (state_ != State::closed) pending_.erase(0, used);
}

std::size_t HttpConnection::parse_requests(char* data, std::size_t size) {
  std::size_t pos = 0;
  while (pos < size && (state_ == State::idle || state_ == State::reading) && !close_after_flush_) {
    if (!parser_) {
      parser_.emplace(request_, core_.options.max_header_size, core_.options.max_body_size);
      state_ = State::reading;
      deadline_ = Clock::now() + core_.options.header_timeout;
      continue_sent_ = false;
    }
    const bool header_was_done = parser_->is_header_done();
    const std::size_t put_start = pos;
    boost::beast::error_code ec;
    pos += parser_->put(boost::asio::buffer(data + pos, size - pos), ec);
    if (ec == beast_http::error::need_more) {
      on_partial_request(header_was_done);
      break;
    }
    if (ec) {
      reject_malformed(ec);
      return pos;
    }
    if (!parser_->is_done()) {
      on_partial_request(header_was_done);
      continue;
    }
    if (parser_->upgrade() && core_.is_ws_path(request_.path())) {
      if (header_was_done) {
        answer_error(400, "an upgrade request must not have a body");
        return pos;
      }
      handover_upgrade(data + put_start, size - put_start);
      return size;
    }
    const bool bad_target = parser_->bad_target();
    parser_.reset();
    if (bad_target) {
      answer_error(400, "request target must be an absolute path (origin-form)");
      return pos;
    }
    dispatch();
  }
  return pos;
}

// Head complete but body not yet: the body gets its own deadline, and a
// client waiting on "Expect: 100-continue" is told to go on.
void HttpConnection::on_partial_request(bool header_was_done) {
  if (!parser_->is_header_done() || header_was_done) return;
  deadline_ = Clock::now() + core_.options.body_timeout;
  if (parser_->expects_continue() && !continue_sent_ && request_.version() >= 11) {
    out_.append("HTTP/1.1 100 Continue\r\n\r\n");
    continue_sent_ = true;
  }
}

void HttpConnection::reject_malformed(const boost::beast::error_code& ec) {
  using e = beast_http::error;
  if (ec == e::header_limit) return answer_error(431, "request header too large");
  if (ec == e::body_limit) return answer_error(413, "request body too large");
  if (ec == e::bad_version) return answer_error(505, "HTTP version not supported");
  answer_error(400, "malformed request: " + ec.message());
}

// ------------------------------------------------------------- dispatch ---

void HttpConnection::dispatch() {
  ++requests_served_;
  head_request_ = request_.method() == "HEAD";
  const std::size_t max_requests = core_.options.max_requests_per_connection;
  responding_close_ = !request_.keep_alive() || core_.draining.load(std::memory_order_acquire) ||
                      (max_requests != 0 && requests_served_ >= max_requests);
  // Counted before the handler runs, never inside it: the drain waits for it.
  in_flight_ = true;
  core_.request_started();
  if (core_.metrics) request_started_at_ = Clock::now();
  ResponseAccess::reset(response_);
  ResponseAccess::set_owner(response_, this);
  core_.handle(request_, response_);
  if (response_.deferred()) {
    state_ = State::deferred;
    watch_read_ = false;  // later requests wait in the kernel: answers stay in order
    update_watch();
    return;
  }
  answer(response_);
}

void HttpConnection::complete_deferred(Response& response) {
  if (state_ != State::deferred) return;
  if (core_.draining.load(std::memory_order_acquire)) responding_close_ = true;
  answer(response);
  if (state_ == State::closed) return;
  if (!close_after_flush_) {
    watch_read_ = true;
    update_watch();
    if (!pending_.empty()) process_input();
  }
  if (state_ != State::closed) flush();
}

void HttpConnection::answer(Response& res) {
  if (auto* m = core_.metrics; m && in_flight_) {
    m->count_http_request(request_.method(), res.status());
    m->http_request_duration.observe(Clock::now() - request_started_at_);
  }
  // The drain may have begun while the handler ran (the admin route starts it).
  if (core_.draining.load(std::memory_order_acquire)) responding_close_ = true;
  write_response(res, head_request_);
  if (in_flight_) {
    in_flight_ = false;
    core_.request_finished();
  }
  state_ = State::idle;
  deadline_ = Clock::now() + core_.options.keepalive_timeout;
  if (responding_close_) close_after_flush();
}

void HttpConnection::answer_error(int status, std::string_view message) {
  parser_.reset();
  Response res;
  res.status(status).text(std::string(message) + "\n");
  responding_close_ = true;
  write_response(res, false);
  if (in_flight_) {
    in_flight_ = false;
    core_.request_finished();
  }
  state_ = State::idle;
  close_after_flush();
}

void HttpConnection::write_response(const Response& res, bool head_only) {
  const int status = res.status();
  out_.append("HTTP/1.1 ");
  append_number(out_, static_cast<std::size_t>(status));
  out_.push_back(' ');
  out_.append(reason_phrase(status));
  out_.append("\r\n");
  if (!res.content_type().empty()) {
    out_.append("Content-Type: ");
    out_.append(res.content_type());
    out_.append("\r\n");
  }
  for (const auto& [name, value] : res.headers()) {
    out_.append(name);
    out_.append(": ");
    out_.append(value);
    out_.append("\r\n");
  }
  if (!no_body_status(status)) {
    out_.append("Content-Length: ");
    append_number(out_, res.body().size());
    out_.append("\r\n");
  }
  out_.append(thread_.date_line());
  if (responding_close_)
    out_.append("Connection: close\r\n");
  else if (request_.version() == 10)
    out_.append("Connection: keep-alive\r\n");
  out_.append("\r\n");
  if (!head_only && !no_body_status(status)) out_.append(res.body());
}

void HttpConnection::handover_upgrade(const char* data, std::size_t size) {
  auto* ws = core_.ws_for(request_.path());
  std::string received(data, size);
  int fd = fd_;
  fd_ = -1;
  thread_.unwatch(fd);
  state_ = State::closed;
  parser_.reset();
  thread_.remove(this);
  core_.connection_ended(false);
  ws->adopt_connection(fd, std::move(received));
}

// --------------------------------------------------------------- output ---

void HttpConnection::flush() {
  while (out_offset_ < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        const bool pause = out_.size() - out_offset_ > max_unsent;
        if (!watch_write_ || (pause && watch_read_)) {
          watch_write_ = true;
          if (pause) watch_read_ = false;
          update_watch();
        }
        return;
      }
      return finish();
    }
    out_offset_ += static_cast<std::size_t>(n);
  }
  out_.clear();
  out_offset_ = 0;
  if (out_.capacity() > keep_out_capacity) std::string().swap(out_);
  if (close_after_flush_) return shut_write_side();
  const bool resume_read = !watch_read_ && state_ != State::deferred;
  if (watch_write_ || resume_read) {
    watch_write_ = false;
    if (resume_read) watch_read_ = true;
    update_watch();
  }
}

void HttpConnection::on_writable() {
  flush();
  // Reading was paused for a backlog that is gone: parse what waited.
  if (state_ != State::closed && watch_read_ && !pending_.empty() &&
      (state_ == State::idle || state_ == State::reading)) {
    process_input();
    if (state_ != State::closed) flush();
  }
}

void HttpConnection::close_after_flush() { close_after_flush_ = true; }

// Everything is written: half-close, then discard input until the peer
// closes (a reset would destroy the response before the client read it).
void HttpConnection::shut_write_side() {
  if (state_ == State::lingering) return;
  ::shutdown(fd_, SHUT_WR);
  int unread = 0;
  if (state_ == State::idle && pending_.empty() && ::ioctl(fd_, FIONREAD, &unread) == 0 &&
      unread == 0)
    return finish();  // nothing the client sent is left to reset the answer
  state_ = State::lingering;
  deadline_ = Clock::now() + linger_time;
  pending_.clear();
  watch_read_ = true;
  watch_write_ = false;
  update_watch();
}

void HttpConnection::update_watch() {
  if (fd_ >= 0) thread_.watch(fd_, this, watch_read_, watch_write_);
}

// ------------------------------------------------------------ lifecycle ---

void HttpConnection::sweep(Clock::time_point now) {
  if (state_ == State::deferred || state_ == State::closed || now < deadline_) return;
  switch (state_) {
    case State::idle:
    case State::lingering:
      return finish();
    case State::reading: {
      const bool head = !parser_ || !parser_->is_header_done();
      answer_error(408, head ? "request header timeout" : "request body timeout");
      flush();
      return;
    }
    default:
      return;
  }
}

void HttpConnection::begin_drain() {
  // A connection that has not sent its first request yet gets a short grace
  // to start it (then it is answered, with Connection: close).
  if (requests_served_ == 0 && state_ == State::idle) {
    deadline_ =
        std::min(deadline_, Clock::now() + std::min<Clock::duration>(core_.options.header_timeout,
                                                                     drain_first_request_grace));
    return;
  }
  if (state_ == State::idle && pending_.empty() && out_offset_ >= out_.size()) return finish();
  if (state_ == State::idle) close_after_flush();  // answer written, not yet sent
  if (state_ == State::deferred) responding_close_ = true;
  // reading: the request being received gets its answer with Connection: close.
}

void HttpConnection::force() {
  forced_ = true;
  finish();
}

void HttpConnection::finish() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  if (fd_ >= 0) {
    ::close(fd_);  // also leaves the epoll set
    fd_ = -1;
  }
  if (in_flight_) {
    in_flight_ = false;
    core_.request_finished(/*answered=*/false);
  }
  thread_.remove(this);
  core_.connection_ended(forced_);
}

}  // namespace ebb::http::detail
