#include "ebb/executor/runtime_executor.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <stdexcept>
#include <utility>

#include "log/log.hpp"

namespace ebb::executor {

struct RuntimeExecutor::State {
  std::mutex mutex;
  std::condition_variable work_cv;    ///< a task was queued, or stopping began
  std::condition_variable exited_cv;  ///< a worker left its loop
  std::deque<Task> queue;
  bool stopping = false;
  std::size_t live = 0;  ///< workers that have not left their loop
  std::size_t rejected = 0;
  std::size_t failed = 0;
};

namespace {

/// The pool the current thread works for; null on non-worker threads.
thread_local const void* t_worker_of = nullptr;

/// Runs one task; an exception is logged and counted, never propagated.
void run_task(RuntimeExecutor::Task& task, std::mutex& mutex, std::size_t& failed) {
  try {
    task();
    return;
  } catch (const std::exception& e) {
    ebb::log::logger()->error("executor: task threw: {}", e.what());
  } catch (...) {
    ebb::log::logger()->error("executor: task threw a non-std::exception");
  }
  std::lock_guard lock(mutex);
  ++failed;
}

}  // namespace

RuntimeExecutor::RuntimeExecutor(std::size_t threads) : state_(std::make_shared<State>()) {
  threads = std::max<std::size_t>(threads, 1);
  workers_.reserve(threads);
  try {
    for (std::size_t i = 0; i < threads; ++i) {
      {
        std::lock_guard lock(state_->mutex);
        ++state_->live;
      }
      try {
        workers_.emplace_back(&RuntimeExecutor::worker_loop, state_);
      } catch (...) {
        std::lock_guard lock(state_->mutex);
        --state_->live;
        throw;
      }
    }
  } catch (...) {
    stop(StopMode::reject);
    throw;
  }
}

RuntimeExecutor::~RuntimeExecutor() {
  stop(StopMode::drain);
  // stop() on a worker joins nobody; here every other worker must be joined
  // and the calling one (if any) detached before the std::threads die.
  join_workers();
}

bool RuntimeExecutor::post(Task task) {
  if (!task) throw std::invalid_argument("RuntimeExecutor::post: empty task");
  {
    std::lock_guard lock(state_->mutex);
    if (state_->stopping) return false;
    state_->queue.push_back(std::move(task));
  }
  state_->work_cv.notify_one();
  return true;
}

void RuntimeExecutor::stop(StopMode mode) {
  const bool first = begin_stop(mode);
  if (on_worker_thread()) {
    // Joining is left to a non-worker: two workers joining each other, or one
    // joining itself, would deadlock.
    if (first) wait_for_other_workers();
    return;
  }
  join_workers();
}

bool RuntimeExecutor::begin_stop(StopMode mode) {
  bool first = false;
  {
    std::lock_guard lock(state_->mutex);
    first = !state_->stopping;
    state_->stopping = true;
    if (mode == StopMode::reject) {
      state_->rejected += state_->queue.size();
      state_->queue.clear();
    }
  }
  state_->work_cv.notify_all();
  return first;
}

void RuntimeExecutor::wait_for_other_workers() {
  std::unique_lock lock(state_->mutex);
  state_->exited_cv.wait(lock, [&] { return state_->live <= 1; });
}

void RuntimeExecutor::join_workers() {
  std::lock_guard lock(join_mutex_);
  for (auto& worker : workers_) {
    if (!worker.joinable()) continue;
    if (worker.get_id() == std::this_thread::get_id()) {
      worker.detach();  // destroyed from our own task: exit after it returns
    } else {
      worker.join();
    }
  }
}

bool RuntimeExecutor::stopped() const {
  std::lock_guard lock(state_->mutex);
  return state_->stopping;
}

std::size_t RuntimeExecutor::pending() const {
  std::lock_guard lock(state_->mutex);
  return state_->queue.size();
}

std::size_t RuntimeExecutor::rejected_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->rejected;
}

std::size_t RuntimeExecutor::failed_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->failed;
}

bool RuntimeExecutor::on_worker_thread() const noexcept { return t_worker_of == state_.get(); }

void RuntimeExecutor::worker_loop(std::shared_ptr<State> s) {
  t_worker_of = s.get();
  std::unique_lock lock(s->mutex);
  while (true) {
    s->work_cv.wait(lock, [&] { return s->stopping || !s->queue.empty(); });
    if (s->queue.empty()) break;  // stopping, and nothing left to drain
    Task task = std::move(s->queue.front());
    s->queue.pop_front();
    lock.unlock();
    run_task(task, s->mutex, s->failed);
    // Captures die outside the lock: they may drop the last executor reference.
    task = nullptr;
    lock.lock();
  }
  --s->live;
  s->exited_cv.notify_all();
}

}  // namespace ebb::executor
