#include "ebb/http/response.hpp"

#include <stdexcept>

#include "http/core.hpp"
#include "http/static_files.hpp"
#include "text/ascii.hpp"

namespace ebb {

namespace {
using text::iequals;

void check_header(std::string_view name, std::string_view value) {
  if (name.empty()) throw std::invalid_argument("response header name must not be empty");
  if (!text::is_token(name))
    throw std::invalid_argument("response header name is not an HTTP token: \"" +
                                std::string(name) + "\"");
  for (char c : value)
    if (c == '\r' || c == '\n' || c == '\0')
      throw std::invalid_argument("response header \"" + std::string(name) +
                                  "\" has CR, LF or NUL in its value");
}

// Framing and connection management are ebb's: a handler setting them could
// desynchronise the connection (request smuggling, truncated responses).
bool reserved(std::string_view name) noexcept {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "date");
}
}  // namespace

Response& Response::status(int code) {
  if (code < 100 || code > 999)
    throw std::invalid_argument("HTTP status must be in 100..999, got " + std::to_string(code));
  status_ = code;
  return *this;
}

Response& Response::header(std::string_view name, std::string_view value) {
  check_header(name, value);
  if (reserved(name)) return *this;
  if (iequals(name, "content-type")) {
    content_type_.assign(value);
    return *this;
  }
  for (auto& h : headers_) {
    if (iequals(h.first, name)) {
      h.second.assign(value);
      // Drop later duplicates so the header appears once.
      std::erase_if(headers_, [&](const Header& x) { return &x != &h && iequals(x.first, name); });
      return *this;
    }
  }
  headers_.emplace_back(std::string(name), std::string(value));
  return *this;
}

Response& Response::add_header(std::string_view name, std::string_view value) {
  check_header(name, value);
  if (iequals(name, "content-type")) return header(name, value);
  if (!reserved(name)) headers_.emplace_back(std::string(name), std::string(value));
  return *this;
}

std::string_view Response::header(std::string_view name) const noexcept {
  if (iequals(name, "content-type")) return content_type_;
  for (const auto& h : headers_)
    if (iequals(h.first, name)) return h.second;
  return {};
}

Response& Response::body(std::string b, std::string_view content_type) {
  body_ = std::move(b);
  return header("Content-Type", content_type);
}
Response& Response::text(std::string b) { return body(std::move(b), "text/plain; charset=utf-8"); }
Response& Response::html(std::string b) { return body(std::move(b), "text/html; charset=utf-8"); }
Response& Response::json(const ebb::json::value& v) {
  // Into body_ itself: its capacity survives between requests of a connection.
  body_.clear();
  boost::json::serializer sr;
  sr.reset(&v);
  char buf[4096];
  while (!sr.done()) body_.append(sr.read(buf));
  return header("Content-Type", "application/json");
}

Response& Response::file(const std::filesystem::path& path, const Request& request) {
  http::detail::serve_file(path, request, *this);
  return *this;
}

PendingResponse Response::defer() {
  if (!pending_) pending_ = http::detail::make_pending(owner_);
  return PendingResponse(std::make_shared<http::detail::PendingHandle>(pending_));
}

// ------------------------------------------------------ PendingResponse ---

Response& PendingResponse::response() {
  if (!handle_) throw std::logic_error("PendingResponse::response() on an empty handle");
  return handle_->state->response;
}

void PendingResponse::send() {
  if (handle_) http::detail::send_pending(handle_->state);
}

}  // namespace ebb

namespace ebb::http::detail {

PendingHandle::~PendingHandle() {
  if (state->sent.load()) return;
  try {
    state->response.status(500).text("handler dropped its deferred response\n");
  } catch (...) {
  }
  send_pending(state);
}

void send_pending(const std::shared_ptr<PendingState>& state) {
  if (state->sent.exchange(true)) return;
  auto core = state->core.lock();
  if (!core) return;  // the app is gone; nobody is waiting
  core->post_to(state->thread, [state] {
    if (auto c = state->connection.lock()) c->complete_deferred(state->response);
  });
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace ebb::http::detail
