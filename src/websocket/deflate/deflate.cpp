#include "websocket/deflate/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace ebb::websocket::deflate {
namespace {

// ---- Sec-WebSocket-Extensions grammar (RFC 6455 §9.1, RFC 7230 §3.2.6) ----

struct Param {
  std::string name;  // lower-cased
  std::optional<std::string> value;
};

struct Extension {
  std::string name;  // lower-cased
  std::vector<Param> params;
};

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

/// A cursor over one header value. Every parse_* returns false on a syntax error.
class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  void skip_ows() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool at_end() const { return pos_ >= s_.size(); }
  bool peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  void advance() { ++pos_; }

  bool parse_token(std::string& out) {
    std::size_t start = pos_;
    while (pos_ < s_.size() && is_tchar(s_[pos_])) ++pos_;
    out.assign(s_.substr(start, pos_ - start));
    return pos_ > start;
  }

  // quoted-string; the unescaped value must itself be a token (RFC 6455 §9.1).
  bool parse_quoted(std::string& out) {
    out.clear();
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return !out.empty() && std::all_of(out.begin(), out.end(), is_tchar);
      if (c == '\\') {
        if (pos_ >= s_.size()) return false;
        c = s_[pos_++];
      }
      out.push_back(c);
    }
    return false;  // unterminated
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

bool parse_param(Lexer& lx, Param& p) {
  lx.skip_ows();
  if (!lx.parse_token(p.name)) return false;
  p.name = to_lower(p.name);
  lx.skip_ows();
  if (!lx.peek('=')) return true;
  lx.advance();
  lx.skip_ows();
  std::string v;
  if (lx.peek('"') ? !lx.parse_quoted(v) : !lx.parse_token(v)) return false;
  p.value = std::move(v);
  lx.skip_ows();
  return true;
}

/// Parses `1#extension`; empty list elements are skipped (RFC 7230 §7).
bool parse_extensions(std::string_view value, std::vector<Extension>& out) {
  Lexer lx(value);
  for (;;) {
    lx.skip_ows();
    if (lx.at_end()) return true;
    if (lx.peek(',')) {
      lx.advance();
      continue;
    }
    Extension ext;
    if (!lx.parse_token(ext.name)) return false;
    ext.name = to_lower(ext.name);
    lx.skip_ows();
    while (lx.peek(';')) {
      lx.advance();
      Param p;
      if (!parse_param(lx, p)) return false;
      ext.params.push_back(std::move(p));
    }
    if (!lx.at_end() && !lx.peek(',')) return false;
    out.push_back(std::move(ext));
  }
}

constexpr std::string_view kName = "permessage-deflate";

/// RFC 7692 §7.1.2: a decimal integer 8..15 without leading zeros.
std::optional<int> parse_window_bits(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  if (v->size() == 1 && *v >= "8" && *v <= "9") return (*v)[0] - '0';
  if (v->size() == 2 && (*v)[0] == '1' && (*v)[1] >= '0' && (*v)[1] <= '5')
    return 10 + ((*v)[1] - '0');
  return std::nullopt;
}

/// The parameters of one permessage-deflate element, validated for syntax
/// only (RFC 7692 §7.1: unknown, duplicate or ill-valued parameters make the
/// element invalid).
struct Offer {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::optional<int> server_max_window_bits;
  bool client_max_window_bits = false;  // the parameter is present
  std::optional<int> client_max_window_bits_value;
};

/// Fills `o` from `params`; on failure names the offending parameter in `why`.
bool read_params(const std::vector<Param>& params, Offer& o, std::string& why) {
  std::array<bool, 4> seen{};
  for (const Param& p : params) {
    int idx = p.name == "server_no_context_takeover"   ? 0
              : p.name == "client_no_context_takeover" ? 1
              : p.name == "server_max_window_bits"     ? 2
              : p.name == "client_max_window_bits"     ? 3
                                                       : -1;
    if (idx < 0) return why = "unknown parameter " + p.name, false;
    if (seen[idx]) return why = "duplicate parameter " + p.name, false;
    seen[idx] = true;
    if (idx <= 1) {
      if (p.value) return why = p.name + " takes no value", false;
      (idx == 0 ? o.server_no_context_takeover : o.client_no_context_takeover) = true;
    } else if (idx == 2) {
      o.server_max_window_bits = parse_window_bits(p.value);
      if (!o.server_max_window_bits) return why = "server_max_window_bits must be 8..15", false;
    } else {
      o.client_max_window_bits = true;
      if (p.value) {
        o.client_max_window_bits_value = parse_window_bits(p.value);
        if (!o.client_max_window_bits_value)
          return why = "client_max_window_bits must be 8..15", false;
      }
    }
  }
  return true;
}

/// zlib cannot produce a raw deflate stream with a 256-byte window (it rejects
/// windowBits -8, madler/zlib#171), so our compressor never runs below 9.
constexpr int kMinZlibWindow = 9;

/// The server's answer to one syntactically valid offer, or nullopt to decline.
std::optional<Params> accept_offer(const Offer& o, const DeflateOptions& opt,
                                   std::string& response) {
  // The client caps our compressor's window. 8 cannot be honoured with zlib:
  // answering 9 (what some servers do) would break the client's limit, so the
  // offer is declined and the next one, if any, is considered.
  if (o.server_max_window_bits && *o.server_max_window_bits < kMinZlibWindow) return std::nullopt;

  Params p;
  p.server_no_context_takeover = o.server_no_context_takeover || opt.server_no_context_takeover;
  // The server may always ask the client to reset (RFC 7692 §7.1.1.2); when the
  // client offered it, echoing it lets us reset our inflater too.
  p.client_no_context_takeover = o.client_no_context_takeover || opt.client_no_context_takeover;
  p.server_max_window_bits = std::min(o.server_max_window_bits.value_or(15),
                                      std::clamp(opt.server_max_window_bits, kMinZlibWindow, 15));
  // client_max_window_bits may appear in the response only when offered
  // (RFC 7692 §7.1.2.2). The offered value is a hint we may use or ignore;
  // never answer below 9 so that zlib-based clients can comply.
  p.client_max_window_bits = 15;
  if (o.client_max_window_bits) {
    int want = std::clamp(opt.client_max_window_bits, kMinZlibWindow, 15);
    if (o.client_max_window_bits_value)
      want = std::min(want, std::max(*o.client_max_window_bits_value, kMinZlibWindow));
    p.client_max_window_bits = want;
  }

  response.assign(kName);
  if (p.server_no_context_takeover) response += "; server_no_context_takeover";
  if (p.client_no_context_takeover) response += "; client_no_context_takeover";
  // Sent when the client asked for a limit (mandatory, §7.1.2.1) or when ours
  // is smaller than the default (informative, allowed).
  if (o.server_max_window_bits || p.server_max_window_bits < 15)
    response += "; server_max_window_bits=" + std::to_string(p.server_max_window_bits);
  if (p.client_max_window_bits < 15)
    response += "; client_max_window_bits=" + std::to_string(p.client_max_window_bits);
  return p;
}

}  // namespace

Negotiation negotiate_server(std::string_view offers, const DeflateOptions& options) {
  Negotiation n;
  if (!options.enabled) return n;
  std::vector<Extension> exts;
  if (!parse_extensions(offers, exts)) {
    n.error = "malformed Sec-WebSocket-Extensions header";
    return n;
  }
  for (const Extension& e : exts) {
    if (e.name != kName) continue;
    Offer o;
    std::string why;
    if (!read_params(e.params, o, why)) continue;  // declined (RFC 7692 §5)
    n.params = accept_offer(o, options, n.response);
    if (n.params) break;
  }
  return n;
}

std::string client_offer(const DeflateOptions& options) {
  if (!options.enabled) return {};
  std::string s(kName);
  if (options.server_no_context_takeover) s += "; server_no_context_takeover";
  if (options.client_no_context_takeover) s += "; client_no_context_takeover";
  if (options.server_max_window_bits < 15)
    s += "; server_max_window_bits=" + std::to_string(options.server_max_window_bits);
  // Always announce support, so that the server may limit our window.
  s += "; client_max_window_bits";
  if (options.client_max_window_bits < 15)
    s += "=" + std::to_string(options.client_max_window_bits);
  return s;
}

std::optional<Params> parse_server_response(std::string_view value, const DeflateOptions& offered,
                                            std::string& error) {
  std::vector<Extension> exts;
  if (!parse_extensions(value, exts)) {
    error = "malformed Sec-WebSocket-Extensions in the response";
    return std::nullopt;
  }
  if (exts.size() != 1 || exts[0].name != kName) {
    error = "the server accepted extensions that were not offered: " + std::string(value);
    return std::nullopt;
  }
  Offer r;
  std::string why;
  if (!read_params(exts[0].params, r, why)) {
    error = "invalid permessage-deflate response: " + why;
    return std::nullopt;
  }
  auto fail = [&](std::string msg) {
    error = "invalid permessage-deflate response: " + std::move(msg);
    return std::nullopt;
  };
  if (r.client_max_window_bits && !r.client_max_window_bits_value)
    return fail("client_max_window_bits needs a value");
  if (offered.server_no_context_takeover && !r.server_no_context_takeover)
    return fail("server_no_context_takeover was requested but not accepted");
  int asked_server = std::clamp(offered.server_max_window_bits, kMinZlibWindow, 15);
  if (asked_server < 15 && !r.server_max_window_bits)
    return fail("server_max_window_bits was requested but not accepted");
  if (r.server_max_window_bits && *r.server_max_window_bits > asked_server)
    return fail("server_max_window_bits larger than requested");
  if (r.client_max_window_bits_value && *r.client_max_window_bits_value < kMinZlibWindow)
    return fail("client_max_window_bits=8 cannot be honoured (zlib needs at least 9)");

  Params p;
  p.server_no_context_takeover = r.server_no_context_takeover;
  // Resetting our own compressor more often than agreed is always safe.
  p.client_no_context_takeover = r.client_no_context_takeover || offered.client_no_context_takeover;
  p.server_max_window_bits = r.server_max_window_bits.value_or(15);
  int ours = std::clamp(offered.client_max_window_bits, kMinZlibWindow, 15);
  p.client_max_window_bits = std::min(ours, r.client_max_window_bits_value.value_or(15));
  return p;
}

// ---- zlib streams ----

namespace {
constexpr std::array<unsigned char, 4> kTail = {0x00, 0x00, 0xff, 0xff};
constexpr std::size_t kChunk = 16 * 1024;
constexpr int kTooBig = 1000;  // not a zlib return code

bool fits_uint(std::size_t n) { return n <= std::numeric_limits<uInt>::max(); }

int zlib_window(int bits) { return -std::clamp(bits, kMinZlibWindow, 15); }
}  // namespace

struct Deflater::State {
  z_stream zs{};
  ~State() { deflateEnd(&zs); }
};

Deflater::Deflater(int window_bits, bool no_context_takeover, int level)
    : window_bits_(window_bits),
      level_(std::clamp(level, 0, 9)),
      no_context_takeover_(no_context_takeover) {}

Deflater::~Deflater() = default;

bool Deflater::compress(std::string_view in, std::string& out) {
  if (!fits_uint(in.size())) return false;
  // An empty message is one empty stored block header (RFC 7692 §7.2.3.6);
  // zlib would emit nothing after a previous flush, and the stream is unchanged.
  if (in.empty()) {
    out.push_back('\0');
    return true;
  }
  if (!state_) {
    auto s = std::make_unique<State>();
    if (deflateInit2(&s->zs, level_, Z_DEFLATED, zlib_window(window_bits_), 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      s->zs = z_stream{};  // nothing to free; keep ~State harmless
      return false;
    }
    state_ = std::move(s);
  }
  z_stream& zs = state_->zs;
  const std::size_t start = out.size();
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::size_t room = deflateBound(&zs, static_cast<uLong>(in.size())) + 16;
  std::size_t used = start;
  for (;;) {
    out.resize(used + room);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    zs.avail_out = static_cast<uInt>(room);
    int rc = ::deflate(&zs, Z_SYNC_FLUSH);
    used = out.size() - zs.avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) break;
    if (zs.avail_out != 0 && zs.avail_in == 0) {
      // Z_SYNC_FLUSH ends on an empty stored block: 00 00 FF FF, stripped here.
      out.resize(used);
      bool tail = used - start >= 4 && std::memcmp(out.data() + used - 4, kTail.data(), 4) == 0;
      if (!tail) break;
      out.resize(used - 4);
      if (no_context_takeover_) deflateReset(&zs);
      return true;
    }
    room = kChunk;
  }
  out.resize(start);
  deflateReset(&zs);
  return false;
}

struct Inflater::State {
  z_stream zs{};
  ~State() { inflateEnd(&zs); }
};

Inflater::Inflater(int window_bits, bool no_context_takeover)
    : window_bits_(window_bits), no_context_takeover_(no_context_takeover) {}

Inflater::~Inflater() = default;

namespace {
/// Grows `out` to `size`, never reserving more than `cap` bytes in total, so a
/// bomb stopped at the limit has not allocated past it.
/// (std::string::reserve may round up to twice the old capacity; a fresh
/// string's reserve is exact.)
void grow_to(std::string& out, std::size_t size, std::size_t cap) {
  if (size > out.capacity()) {
    std::string bigger;
    bigger.reserve(std::min(std::max(size, 2 * out.capacity()), cap));
    bigger.append(out);
    out.swap(bigger);
  }
  out.resize(size);
}

/// Runs inflate until the input is used up, the stream ends or the output
/// passes `limit`. Returns Z_OK, Z_STREAM_END, kTooBig or a zlib error.
int inflate_into(z_stream& zs, std::string& out, std::size_t start, std::size_t limit) {
  for (;;) {
    const std::size_t produced = out.size() - start;
    if (produced > limit) return kTooBig;
    const std::size_t grow = std::min(kChunk, limit + 1 - produced);
    const std::size_t before = out.size();
    grow_to(out, before + grow, start + limit + 1);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    zs.avail_out = static_cast<uInt>(grow);
    const uInt in_before = zs.avail_in;
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    const bool progress = zs.avail_in != in_before || zs.avail_out != grow;
    out.resize(out.size() - zs.avail_out);
    if (rc == Z_STREAM_END) return rc;
    if (rc == Z_BUF_ERROR) return zs.avail_in == 0 ? Z_OK : Z_DATA_ERROR;
    if (rc != Z_OK) return rc;
    if (zs.avail_in == 0 && zs.avail_out != 0) return Z_OK;
    if (!progress) return Z_DATA_ERROR;
  }
}

/// After a block with BFINAL set (RFC 7692 §7.2.3.5) zlib considers the stream
/// finished; start a new one, keeping the window unless no context takeover
/// was agreed, so later messages may still refer to earlier ones.
int restart(z_stream& zs, bool keep_window) {
  if (!keep_window) return inflateReset(&zs);
  std::string window(std::size_t{1} << 15, '\0');
  uInt n = 0;
  int rc = inflateGetDictionary(&zs, reinterpret_cast<Bytef*>(window.data()), &n);
  if (rc == Z_OK) rc = inflateReset(&zs);
  if (rc == Z_OK && n != 0)
    rc = inflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(window.data()), n);
  return rc;
}

/// Feeds one buffer. `ended_at_end` tells whether the buffer finished exactly
/// at the end of a final block.
int feed(z_stream& zs, const void* p, std::size_t n, std::string& out, std::size_t start,
         std::size_t limit, bool keep_window, bool& ended_at_end) {
  zs.next_in = static_cast<Bytef*>(const_cast<void*>(p));
  zs.avail_in = static_cast<uInt>(n);
  ended_at_end = false;
  for (;;) {
    int rc = inflate_into(zs, out, start, limit);
    if (rc != Z_STREAM_END) return rc;
    if ((rc = restart(zs, keep_window)) != Z_OK) return rc;
    if (zs.avail_in == 0) {
      ended_at_end = true;
      return Z_OK;
    }
  }
}
}  // namespace

Inflater::Result Inflater::decompress(std::string_view in, std::string& out, std::size_t limit) {
  if (!fits_uint(in.size())) return Result::error;
  limit = std::min(limit, std::numeric_limits<std::size_t>::max() - out.size() - 1);
  if (!state_) {
    auto s = std::make_unique<State>();
    if (inflateInit2(&s->zs, zlib_window(window_bits_)) != Z_OK) {
      s->zs = z_stream{};
      return Result::error;
    }
    state_ = std::move(s);
  }
  z_stream& zs = state_->zs;
  const std::size_t start = out.size();
  const bool keep = !no_context_takeover_;
  bool ended = false;
  int rc = feed(zs, in.data(), in.size(), out, start, limit, keep, ended);
  // A sender that ended the message with a final block and no empty stored
  // block after it has nothing the tail could complete: skip the tail.
  if (rc == Z_OK && !ended)
    rc = feed(zs, kTail.data(), kTail.size(), out, start, limit, keep, ended);
  if (rc == Z_OK && out.size() - start > limit) rc = kTooBig;
  if (rc != Z_OK) {
    out.resize(start);
    inflateReset(&zs);
    return rc == kTooBig ? Result::too_big : Result::error;
  }
  if (no_context_takeover_) inflateReset(&zs);
  return Result::ok;
}

}  // namespace ebb::websocket::deflate
