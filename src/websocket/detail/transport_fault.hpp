#pragma once
// Failure injection in the transport, for tests (STYLE.md §9): arm a fault
// and the next `count` reads (or writes) of any server session in the
// process fail with the given errno, exactly as if the kernel had returned it
// (plain sockets: the syscall; TLS: the completed Asio operation), or only
// those of one session. Unarmed, a read or write pays one relaxed atomic
// load. Target the session under test: a TLS session's earlier write (its
// 101, say) may still be completing when the peer has already read it.
#include <atomic>
#include <cerrno>
#include <cstdint>

namespace ebb::websocket::detail {

class TransportFault {
 public:
  /// The next `count` calls (of session `only_session`, or of any session
  /// when 0) fail with `error` (e.g. EPIPE, ECONNRESET).
  void arm(int count, int error, std::uint64_t only_session = 0) noexcept {
    error_.store(error, std::memory_order_relaxed);
    session_.store(only_session, std::memory_order_relaxed);
    count_.store(count, std::memory_order_release);
  }
  /// True, with errno set, when this call (by `session`) is to fail.
  bool take(std::uint64_t session) noexcept {
    if (count_.load(std::memory_order_relaxed) <= 0) return false;
    const auto target = session_.load(std::memory_order_acquire);
    if (target != 0 && target != session) return false;
    if (count_.fetch_sub(1, std::memory_order_acq_rel) <= 0) return false;
    errno = error_.load(std::memory_order_relaxed);
    return true;
  }

 private:
  std::atomic<int> count_{0};
  std::atomic<int> error_{0};
  std::atomic<std::uint64_t> session_{0};
};

inline TransportFault read_fault;   ///< on_readable's recv, read_tls's completion
inline TransportFault write_fault;  ///< flush_plain's sendmsg, flush_tls's completion

}  // namespace ebb::websocket::detail
