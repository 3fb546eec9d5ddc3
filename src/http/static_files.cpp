#include "http/static_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <string>
#include <system_error>

#include "http/http_date.hpp"
#include "text/ascii.hpp"

namespace ebb::http::detail {

namespace fs = std::filesystem;

namespace {

struct MimeEntry {
  std::string_view ext;
  std::string_view type;
};

constexpr std::string_view octet_stream = "application/octet-stream";

constexpr MimeEntry mime_table[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},  // RFC 9239
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},  // RFC 8259 defines no charset parameter
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"wav", "audio/wav"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
};

using text::iequals;

// Component-wise, so that /srv/www2 is not "inside" /srv/www.
bool is_inside(const fs::path& base, const fs::path& p) {
  const auto [b, q] = std::mismatch(base.begin(), base.end(), p.begin(), p.end());
  return b == base.end();
}

// Closes the descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

void append_hex(std::string& out, std::uint64_t v) {
  char buf[16];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  out.append(buf, r.ptr);
}

std::string make_etag(const struct stat& st) {
  const std::uint64_t mtime_ns = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000u +
                                 static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
  std::string tag = "\"";
  append_hex(tag, static_cast<std::uint64_t>(st.st_size));
  tag += '-';
  append_hex(tag, mtime_ns);
  tag += '"';
  return tag;
}

enum class Condition { none, not_modified, precondition_failed };

// RFC 9110 §13.2.2 order, for the two fields a static file server evaluates:
// If-None-Match first; If-Modified-Since only without it, and only for GET
// and HEAD (so is the 304: other methods get 412).
Condition evaluate_conditions(const ebb::Request& req, std::string_view etag, std::time_t mtime) {
  const bool get_or_head = req.method() == "GET" || req.method() == "HEAD";
  bool has_inm = false;
  bool inm_matches = false;
  std::string_view ims;
  int ims_count = 0;
  for (const auto& [name, value] : req.headers()) {
    if (iequals(name, "If-None-Match")) {
      has_inm = true;
      inm_matches = inm_matches || if_none_match_matches(value, etag);
    } else if (iequals(name, "If-Modified-Since")) {
      ims = value;
      ++ims_count;
    }
  }
  if (has_inm) {
    if (!inm_matches) return Condition::none;
    return get_or_head ? Condition::not_modified : Condition::precondition_failed;
  }
  if (!get_or_head || ims_count != 1) return Condition::none;
  const auto since = parse_http_date(ims);
  return since && mtime <= *since ? Condition::not_modified : Condition::none;
}

// Reads up to `size` bytes; a file that shrank meanwhile yields fewer.
bool read_all(int fd, std::size_t size, std::string& out) {
  out.resize(size);
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, out.data() + got, size - got);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return true;
}

void set_validators(ebb::Response& res, const std::string& etag, std::time_t mtime) {
  char date[http_date_size];
  format_http_date(mtime, date);
  res.header("ETag", etag);
  res.header("Last-Modified", std::string_view(date, sizeof date));
  res.header("Cache-Control", "no-cache");
}

}  // namespace

std::string_view content_type_for(const fs::path& p) {
  const std::string ext = p.extension().string();
  if (ext.size() < 2 || ext.size() > 6) return octet_stream;
  for (const auto& e : mime_table) {
    if (iequals(e.ext, std::string_view(ext).substr(1))) return e.type;
  }
  return octet_stream;
}

std::optional<fs::path> resolve_static(const fs::path& root, std::string_view relative) {
  if (relative.find('\0') != std::string_view::npos ||
      relative.find('\\') != std::string_view::npos) {
    return std::nullopt;
  }
  fs::path candidate = root;
  while (!relative.empty()) {
    const std::size_t slash = relative.find('/');
    const std::string_view seg = relative.substr(0, slash);
    relative.remove_prefix(slash == std::string_view::npos ? relative.size() : slash + 1);
    if (seg == "..") return std::nullopt;
    if (seg.empty() || seg == ".") continue;
    candidate /= seg;
  }

  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  fs::path real = fs::canonical(candidate, ec);
  if (ec || !is_inside(base, real)) return std::nullopt;
  if (fs::is_directory(real, ec)) {
    real = fs::canonical(real / "index.html", ec);  // index.html may itself be a symlink
    if (ec || !is_inside(base, real)) return std::nullopt;
  }
  if (!fs::is_regular_file(real, ec)) return std::nullopt;
  return real;
}

bool if_none_match_matches(std::string_view field, std::string_view etag) noexcept {
  if (etag.starts_with("W/")) etag.remove_prefix(2);  // weak comparison ignores W/
  const auto skip_ows = [&field] {
    while (!field.empty() && (field.front() == ' ' || field.front() == '\t')) {
      field.remove_prefix(1);
    }
  };
  for (;;) {
    while (!field.empty() &&
           (field.front() == ',' || field.front() == ' ' || field.front() == '\t')) {
      field.remove_prefix(1);
    }
    if (field.empty()) return false;
    if (field.front() == '*') return true;
    if (field.starts_with("W/")) field.remove_prefix(2);
    if (field.empty() || field.front() != '"') return false;
    const std::size_t close = field.find('"', 1);
    if (close == std::string_view::npos) return false;
    if (field.substr(0, close + 1) == etag) return true;
    field.remove_prefix(close + 1);
    skip_ows();
    if (!field.empty() && field.front() != ',') return false;
  }
}

void serve_file(const fs::path& path, const ebb::Request& req, ebb::Response& res) {
  // O_NONBLOCK: opening a FIFO must not block the I/O thread; it is then
  // refused as not a regular file.
  const Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
  struct stat st {};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    res.status(404).text("Not Found");
    return;
  }
  if (static_cast<std::uintmax_t>(st.st_size) > max_static_file_size) {
    res.status(500).text("file too large");
    return;
  }
  const std::string etag = make_etag(st);
  const std::time_t mtime = st.st_mtim.tv_sec;
  switch (evaluate_conditions(req, etag, mtime)) {
    case Condition::not_modified:
      res.status(304);
      set_validators(res, etag, mtime);
      return;
    case Condition::precondition_failed:
      res.status(412).text("Precondition Failed");
      return;
    case Condition::none:
      break;
  }
  std::string body;
  if (!read_all(fd.get(), static_cast<std::size_t>(st.st_size), body)) {
    res.status(500).text("read error");
    return;
  }
  res.status(200);
  set_validators(res, etag, mtime);
  res.body(std::move(body), content_type_for(path));
}

}  // namespace ebb::http::detail
