#pragma once
// ebb::executor::RuntimeExecutor: a fixed pool of worker threads for
// application work (database calls, fan-out, anything too slow for an I/O
// thread).
//
// Threads: post() and stop() are safe from any thread, including from tasks.
// Lifetime: create with std::make_shared<RuntimeExecutor>(n); the destructor
// calls stop(StopMode::drain) and joins. Destroying the executor from one of
// its own tasks (the last shared_ptr dropped there) is safe: that worker is
// detached and exits after its task.
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
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

  /// Queue a task (FIFO). Returns false, and does not run it, once stop() has
  /// begun: work is never dropped silently. A task that throws is logged and
  /// counted in failed_count(); the worker lives on.
  bool post(Task task);

  /// Stop accepting work, finish or reject what is queued (per `mode`), join
  /// the workers. Idempotent: a later call from a non-worker thread returns
  /// once every worker has been joined; a later call with StopMode::reject
  /// still discards (and counts) whatever the first drain has not started yet.
  ///
  /// From a worker thread (a task calling stop()) it never waits on itself:
  /// the first such call returns once the *other* workers have exited, and the
  /// calling worker finishes whatever is still queued (drain) after its task
  /// returns, then exits; a later call from a worker returns at once (waiting
  /// could deadlock against the first caller). The exited workers are joined
  /// by the next stop() from a non-worker thread or by the destructor.
  void stop(StopMode mode = StopMode::drain);

  /// True once stop() has begun (post() then returns false).
  bool stopped() const;
  std::size_t thread_count() const noexcept { return workers_.size(); }
  /// Tasks queued and not yet started.
  std::size_t pending() const;
  std::size_t rejected_count() const;
  std::size_t failed_count() const;
  /// True when the calling thread is one of this pool's workers.
  bool on_worker_thread() const noexcept;

 private:
  /// Queue, flags and counters, shared with the worker threads.
  struct State;

  /// A worker's life. Holds its own reference to the state, so a worker
  /// detached by a destructor running on it never touches freed memory.
  static void worker_loop(std::shared_ptr<State> state);
  /// Marks the pool stopping; applies `mode` to the queue. True for the first call.
  bool begin_stop(StopMode mode);
  /// Blocks until no worker other than the caller is running.
  void wait_for_other_workers();
  /// Joins every joinable worker except the calling thread, which is detached.
  void join_workers();

  std::shared_ptr<State> state_;
  std::vector<std::thread> workers_;
  /// Serialises join()/detach() on workers_ (std::thread is not thread-safe).
  std::mutex join_mutex_;
};

}  // namespace ebb::executor
