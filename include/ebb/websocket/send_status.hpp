#pragma once

namespace ebb::websocket {

/// What Session::send_text/send_binary (and Client::send_text/send_binary)
/// did with a message.
enum class SendStatus {
  sent,      ///< handed to the kernel in full (same-thread send, socket writable)
  buffered,  ///< queued; goes out in order when the socket drains
  /// Over the send-queue cap: not queued. A server Session is being closed
  /// (slow consumer); a Client keeps its connection and the caller decides
  /// (retry once queued_bytes() went down, or give up).
  dropped,
  closing,  ///< session (or client) already closing, closed or stopped: not queued
};

}  // namespace ebb::websocket
