#pragma once
// A deliberately dumb blocking HTTP/1.1 client for tests: it sends exactly
// the bytes it is given and parses responses just enough (status, headers,
// Content-Length bodies) to check what the server wrote.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ebb::test {

struct RawResponse {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
  std::string header(std::string_view name) const {
    std::string lower_head, lower_name(name);
    for (char c : head) lower_head.push_back(static_cast<char>(std::tolower(c)));
    for (auto& c : lower_name) c = static_cast<char>(std::tolower(c));
    auto pos = lower_head.find("\r\n" + lower_name + ":");
    if (pos == std::string::npos) return {};
    auto start = pos + 2 + lower_name.size() + 1;
    while (start < head.size() && head[start] == ' ') ++start;
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

class RawHttp {
 public:
  explicit RawHttp(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawHttp() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return fd_ >= 0; }

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Reads one response (Content-Length framing, or to EOF without it).
  /// `head_only`: the answer to a HEAD (no body whatever Content-Length says).
  std::optional<RawResponse> read_response(
      bool head_only = false, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) return std::nullopt;
    RawResponse r;
    r.head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    r.status = std::stoi(r.head.substr(9, 3));
    if (r.status == 100) return read_response(head_only, timeout);  // interim
    auto cl = r.header("Content-Length");
    if (head_only || r.status == 304 || r.status == 204) return r;
    if (cl.empty()) {
      while (fill(deadline)) {
      }
      r.body = std::move(buf_);
      buf_.clear();
      return r;
    }
    std::size_t len = std::stoul(cl);
    while (buf_.size() < len)
      if (!fill(deadline)) return std::nullopt;
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return r;
  }

  /// True when the server closed the connection (EOF or reset) in time.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto before = buf_.size();
      if (!fill(deadline)) return eof_;
      if (buf_.size() == before) return false;
    }
  }

  std::string request(std::string_view method, std::string_view target, std::string_view extra = {},
                      std::string_view body = {}) {
    std::string r(method);
    r += " ";
    r += target;
    r += " HTTP/1.1\r\nHost: test\r\n";
    r += extra;
    if (!body.empty() || method == "POST" || method == "PUT")
      r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += "\r\n";
    r += body;
    return r;
  }

  std::optional<RawResponse> roundtrip(std::string_view method, std::string_view target,
                                       std::string_view extra = {}, std::string_view body = {}) {
    send(request(method, target, extra, body));
    return read_response(method == "HEAD");
  }

  const std::string& buffered() const { return buf_; }

 private:
  // Reads more into buf_; false on EOF, error or deadline.
  bool fill(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char tmp[65536];
    auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace ebb::test
