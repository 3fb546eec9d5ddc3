#pragma once

namespace ebb::websocket {

/// What Session::send_text/send_binary did with a message.
enum class SendStatus {
  sent,      ///< handed to the kernel in full (same-thread send, socket writable)
  buffered,  ///< queued; goes out in order when the socket drains
  dropped,   ///< over the send-queue cap: not queued; the session is being closed
  closing,   ///< session already closing or closed: not queued
};

}  // namespace ebb::websocket
