#pragma once
// ebb::Response: what a handler answers, and PendingResponse for answers
// that come later from another thread.
//
// Threads and lifetime: the Response passed to a handler belongs to the
// connection's I/O thread and is sent when the handler (and the after
// middleware) returns — unless the handler called defer(). A PendingResponse
// is a handle that may be moved to any thread; send() it exactly once.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ebb/json/json.hpp"

namespace ebb {

namespace http::detail {
struct PendingState;
struct PendingHandle;
class ResponseAccess;
class HttpConnection;
}  // namespace http::detail

class Request;
class PendingResponse;

class Response {
 public:
  using Header = std::pair<std::string, std::string>;

  /// 200 unless set. Any 100..999 code; ebb adds the standard reason phrase.
  Response& status(int code);
  int status() const noexcept { return status_; }

  /// Sets a header, replacing earlier ones of the same name (case-insensitive).
  /// Throws std::invalid_argument when the name is not an HTTP token or the
  /// value holds CR, LF or NUL (header injection). Content-Length,
  /// Transfer-Encoding, Connection and Date are ebb's to write and ignored.
  Response& header(std::string_view name, std::string_view value);
  /// Adds a header line even if one of that name exists (Set-Cookie).
  Response& add_header(std::string_view name, std::string_view value);
  /// The first header of this name (case-insensitive); empty when absent.
  std::string_view header(std::string_view name) const noexcept;
  /// Every header set, except Content-Type, which is kept apart (it is set
  /// on almost every response; its storage is reused between requests).
  const std::vector<Header>& headers() const noexcept { return headers_; }
  const std::string& content_type() const noexcept { return content_type_; }

  /// Body with a content type.
  Response& body(std::string body, std::string_view content_type);
  const std::string& body() const noexcept { return body_; }
  /// text/plain; charset=utf-8
  Response& text(std::string body);
  /// text/html; charset=utf-8
  Response& html(std::string body);
  /// application/json. Accepts any JSON value, including initializer lists:
  /// `res.json({{"status", "ok"}, {"http", true}})`.
  Response& json(const ebb::json::value& value);

  /// Serves a file: content type from its extension, ETag and Last-Modified,
  /// 304 for a matching If-None-Match / If-Modified-Since of `request`, 404
  /// when it does not exist or is not a regular file. Reads the whole file.
  Response& file(const std::filesystem::path& path, const Request& request);

  /// The handler answers later: it returns without a response and completes
  /// the returned handle from any thread. The request stays in flight (the
  /// drain waits for it) until the handle is sent or dropped; a handle
  /// dropped without send() answers 500. Further requests on the same
  /// connection wait (responses go out in request order).
  PendingResponse defer();
  bool deferred() const noexcept { return pending_ != nullptr; }

 private:
  friend class http::detail::ResponseAccess;
  int status_ = 200;
  std::vector<Header> headers_;
  std::string content_type_;
  std::string body_;
  std::shared_ptr<http::detail::PendingState> pending_;
  http::detail::HttpConnection* owner_ = nullptr;  // the connection answering, for defer()
};

/// Handle to a deferred response. Copies share one response (so it fits in
/// a std::function); any thread, but not the same handle from two threads
/// at once.
class PendingResponse {
 public:
  PendingResponse() = default;
  /// When the last copy goes without send(), the client gets a 500 (it is
  /// never left waiting).
  ~PendingResponse() = default;

  /// The response to fill in before send(). Not shared with other threads.
  Response& response();
  /// Queues the response to its connection (any thread). Once; later calls
  /// and calls on an empty handle do nothing. If the connection is gone the
  /// response is dropped.
  void send();
  explicit operator bool() const noexcept { return handle_ != nullptr; }

 private:
  friend class Response;
  explicit PendingResponse(std::shared_ptr<http::detail::PendingHandle> h)
      : handle_(std::move(h)) {}
  std::shared_ptr<http::detail::PendingHandle> handle_;
};

}  // namespace ebb
