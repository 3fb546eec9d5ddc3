// libFuzzer target for the RFC 6455 parser.
//
// Input layout: byte 0 picks the options (split position, limits, whether the
// handler calls stop() after every event); the rest is the byte stream. For
// each role the stream is parsed twice, in one piece and split in two as a
// socket reader would present it (unconsumed tail re-presented in front of
// the next read), and the two event logs must be identical. Every event is
// checked against the parser's contract; a violation traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ebb/websocket/close_code.hpp"
#include "websocket/codec/parser.hpp"

namespace codec = ebb::websocket::codec;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Options {
  codec::Role role;
  codec::ParserLimits limits;
  bool stop_every_event;
};

struct Handler {
  Options opt;
  codec::Parser<Handler>* parser = nullptr;
  std::string log;  // every event, serialised, for the split/unsplit comparison
  bool ended = false;
  bool stop_requested = false;

  void event(char kind, std::string_view payload, std::uint16_t code) {
    check(!ended);  // nothing after a Close or an error
    log += kind;
    log += std::to_string(code);
    log += ':';
    log += std::to_string(payload.size());
    log += ':';
    log.append(payload);
    if (opt.stop_every_event) {
      parser->stop();
      stop_requested = true;
    }
  }

  void on_message(codec::Opcode op, std::string_view payload, bool compressed) {
    check(op == codec::Opcode::text || op == codec::Opcode::binary);
    check(payload.size() <= opt.limits.max_message_size);
    check(!compressed || opt.limits.allow_rsv1);
    if (op == codec::Opcode::text && !compressed) check(codec::is_valid_utf8(payload));
    event(op == codec::Opcode::text ? 'T' : 'B', payload, compressed);
  }
  void on_ping(std::string_view payload) {
    check(payload.size() <= codec::max_control_payload);
    event('I', payload, 0);
  }
  void on_pong(std::string_view payload) {
    check(payload.size() <= codec::max_control_payload);
    event('O', payload, 0);
  }
  void on_close(std::uint16_t code, std::string_view reason) {
    check(code == ebb::websocket::close_code::no_status ||
          ebb::websocket::is_valid_wire_close_code(code));
    check(code != ebb::websocket::close_code::no_status || reason.empty());
    check(reason.size() <= codec::max_control_payload - 2);
    check(codec::is_valid_utf8(reason));
    event('C', reason, code);
    ended = true;
  }
  void on_protocol_error(std::uint16_t code, std::string_view reason) {
    check(code == 1002 || code == 1007 || code == 1009);
    check(!reason.empty());
    event('E', {}, code);
    ended = true;
  }
};

// Present `buffer` (pending tail + new bytes) until the parser wants more.
void drain(codec::Parser<Handler>& parser, Handler& handler, std::vector<std::uint8_t>& buffer) {
  for (;;) {
    const std::size_t used = parser.feed(buffer.data(), buffer.size());
    check(used <= buffer.size());
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(used));
    check(parser.finished() == handler.ended);
    if (parser.finished()) return;
    if (handler.stop_requested) {
      check(used > 0);  // an event was delivered, so a frame was consumed
      handler.stop_requested = false;
      parser.resume();
      continue;
    }
    check(buffer.size() < codec::max_header_size);
    return;
  }
}

std::string run(const Options& opt, const std::uint8_t* data, std::size_t size, std::size_t split) {
  Handler handler;
  handler.opt = opt;
  codec::Parser<Handler> parser(opt.role, opt.limits, handler);
  handler.parser = &parser;
  std::vector<std::uint8_t> buffer(data, data + split);
  drain(parser, handler, buffer);
  if (!parser.finished()) {
    buffer.insert(buffer.end(), data + split, data + size);
    drain(parser, handler, buffer);
  }
  if (!parser.finished()) {
    check(parser.mid_message() || buffer.size() < codec::max_header_size);
    parser.release_memory();
    if (!parser.mid_message()) check(parser.buffered_capacity() == std::string().capacity());
  }
  return handler.log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  ++data;
  --size;
  const std::size_t split = size == 0 ? 0 : (selector * 131u) % (size + 1);
  for (codec::Role role : {codec::Role::server, codec::Role::client}) {
    Options opt{role, {}, (selector & 0x80) != 0};
    opt.limits.allow_rsv1 = (selector & 1) != 0;
    opt.limits.max_message_size = std::uint64_t{16} << ((selector >> 1) & 7);  // 16..2048
    const std::string whole = run(opt, data, size, size);
    const std::string pieces = run(opt, data, size, split);
    check(whole == pieces);
  }
  return 0;
}
