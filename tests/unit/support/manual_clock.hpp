#pragma once
// A clock the test moves by hand (ServerOptions::clock): timeouts and the
// drain deadline act only when it says so, whatever the machine's speed.
#include <atomic>
#include <chrono>
#include <functional>

namespace ebb::test {

class ManualClock {
 public:
  using Clock = std::chrono::steady_clock;
  Clock::time_point now() const { return base_ + Clock::duration(offset_.load()); }
  void advance(Clock::duration d) { offset_.fetch_add(d.count()); }
  std::function<Clock::time_point()> source() {
    return [this] { return now(); };
  }

 private:
  const Clock::time_point base_ = Clock::now();
  std::atomic<Clock::rep> offset_{0};
};

}  // namespace ebb::test
