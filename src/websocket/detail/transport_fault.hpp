#pragma once
// Failure injection in the transport, for tests (STYLE.md §9): arm a fault
// and the next `count` reads (or writes) of any server session in the
// process fail with the given errno, exactly as if the kernel had returned it
// (plain sockets: the syscall; TLS: the completed Asio operation). Unarmed, a read or write pays
// one relaxed atomic load. Tests arm it while only the session under test has I/O to do.
#include <atomic>
#include <cerrno>

namespace ebb::websocket::detail {

class TransportFault {
 public:
  /// The next `count` calls fail with `error` (e.g. EPIPE, ECONNRESET).
  void arm(int count, int error) noexcept {
    error_.store(error, std::memory_order_relaxed);
    count_.store(count, std::memory_order_release);
  }
  /// True, with errno set, when this call is to fail.
  bool take() noexcept {
    if (count_.load(std::memory_order_relaxed) <= 0) return false;
    if (count_.fetch_sub(1, std::memory_order_acq_rel) <= 0) return false;
    errno = error_.load(std::memory_order_relaxed);
    return true;
  }

 private:
  std::atomic<int> count_{0};
  std::atomic<int> error_{0};
};

inline TransportFault read_fault;   ///< on_readable's recv, read_tls's completion
inline TransportFault write_fault;  ///< flush_plain's sendmsg, flush_tls's completion

}  // namespace ebb::websocket::detail
