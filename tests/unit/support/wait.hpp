#pragma once
// Waiting helpers shared by the unit tests: every wait has a deadline that
// is only reached when the code under test is broken.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace ebb::test {

/// Generous bound for anything that should happen "at once".
inline constexpr std::chrono::milliseconds kDeadline{10000};

/// A counter that threads can wait on with a deadline.
class Counter {
 public:
  // Notifies under the lock: a waiter that sees the new value may return and
  // destroy the Counter at once, so nothing may touch it after the unlock.
  void add(int n = 1) {
    std::lock_guard lock(mutex_);
    value_ += n;
    cv_.notify_all();
  }
  /// True when the value reached `target` before the timeout.
  bool wait_for(int target, std::chrono::milliseconds timeout = kDeadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return value_ >= target; });
  }
  int value() {
    std::lock_guard lock(mutex_);
    return value_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int value_ = 0;
};

/// Polls `condition` until it holds or `timeout` passes (for state that has
/// no event to wait on).
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = kDeadline) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace ebb::test
