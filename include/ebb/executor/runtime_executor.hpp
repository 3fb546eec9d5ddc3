#pragma once
// ebb::executor::RuntimeExecutor: a fixed pool of worker threads for
// application work (database calls, fan-out, anything too slow for an I/O
// thread).
//
// Threads: post() and stop() are safe from any thread, including from tasks.
// Lifetime: create with std::make_shared<RuntimeExecutor>(n); the destructor
// calls stop(StopMode::drain) and joins.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ebb::executor {

enum class StopMode {
  drain,   ///< run every task already queued, then stop
  reject,  ///< discard queued tasks (each counted in rejected_count()), then stop
};

class RuntimeExecutor {
 public:
  using Task = std::function<void()>;

  /// Starts `threads` workers (at least 1).
  explicit RuntimeExecutor(std::size_t threads);
  ~RuntimeExecutor();
  RuntimeExecutor(const RuntimeExecutor&) = delete;
  RuntimeExecutor& operator=(const RuntimeExecutor&) = delete;

  /// Queue a task. Returns false, and does not run it, once stop() has begun:
  /// work is never dropped silently. A task that throws is logged and counted
  /// in failed_count(); the worker lives on.
  bool post(Task task);

  /// Stop accepting work, finish or reject what is queued (per `mode`), join
  /// the workers. Idempotent: later calls return at once (after the first has
  /// finished). Called from a worker thread it does not join that worker
  /// (that would deadlock); the others are joined and that one exits after
  /// its task.
  void stop(StopMode mode = StopMode::drain);

  bool stopped() const;
  std::size_t thread_count() const noexcept { return workers_.size(); }
  std::size_t pending() const;
  std::size_t rejected_count() const;
  std::size_t failed_count() const;
  /// True when the calling thread is one of this pool's workers.
  bool on_worker_thread() const noexcept;

 private:
  void worker_loop();

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  bool joined_ = false;
  std::size_t rejected_ = 0;
  std::size_t failed_ = 0;
  std::mutex join_mutex_;
};

}  // namespace ebb::executor
