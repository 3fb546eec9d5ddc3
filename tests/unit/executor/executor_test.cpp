#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ebb/executor/runtime_executor.hpp"
#include "unit/support/wait.hpp"

namespace {

using ebb::test::Counter;
using ebb::test::eventually;
using ebb::test::kDeadline;

using ebb::executor::RuntimeExecutor;
using ebb::executor::StopMode;
using namespace std::chrono_literals;

/// A gate tasks block on until the test opens it.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kDeadline, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(RuntimeExecutor, RunsPostedTasks) {
  Counter done;
  RuntimeExecutor ex(2);
  EXPECT_EQ(ex.thread_count(), 2u);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ex.post([&] { done.add(); }));
  EXPECT_TRUE(done.wait_for(100));
  ex.stop();
  EXPECT_EQ(done.value(), 100);
  EXPECT_EQ(ex.failed_count(), 0u);
  EXPECT_EQ(ex.rejected_count(), 0u);
}

TEST(RuntimeExecutor, ZeroThreadsMeansOne) {
  Counter done;
  RuntimeExecutor ex(0);
  EXPECT_EQ(ex.thread_count(), 1u);
  ASSERT_TRUE(ex.post([&] { done.add(); }));
  EXPECT_TRUE(done.wait_for(1));
}

TEST(RuntimeExecutor, RunsTasksOnWorkerThreads) {
  std::promise<bool> on_worker;
  std::promise<bool> on_other;
  RuntimeExecutor other(1);
  RuntimeExecutor ex(2);
  EXPECT_FALSE(ex.on_worker_thread());
  ASSERT_TRUE(ex.post([&] { on_worker.set_value(ex.on_worker_thread()); }));
  auto future = on_worker.get_future();
  ASSERT_EQ(future.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(future.get());
  ASSERT_TRUE(ex.post([&] { on_other.set_value(other.on_worker_thread()); }));
  auto other_future = on_other.get_future();
  ASSERT_EQ(other_future.wait_for(kDeadline), std::future_status::ready);
  EXPECT_FALSE(other_future.get()) << "a worker of one pool is not a worker of another";
}

// Every task waits until all N have started: only N truly concurrent workers
// let them all finish before the deadline.
TEST(RuntimeExecutor, WorkersRunConcurrently) {
  constexpr int kThreads = 4;
  Counter started;
  std::atomic<int> saw_all{0};
  Counter finished;
  RuntimeExecutor ex(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(ex.post([&] {
      started.add();
      if (started.wait_for(kThreads)) saw_all.fetch_add(1);
      finished.add();
    }));
  }
  ASSERT_TRUE(finished.wait_for(kThreads, kDeadline * 2));
  EXPECT_EQ(saw_all.load(), kThreads);
}

TEST(RuntimeExecutor, DrainStopRunsEverythingQueued) {
  Gate gate;
  Counter blocker_started;
  std::atomic<int> ran{0};
  RuntimeExecutor ex(1);
  ASSERT_TRUE(ex.post([&] {
    blocker_started.add();
    gate.wait();
  }));
  ASSERT_TRUE(blocker_started.wait_for(1));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(ex.post([&] { ran.fetch_add(1); }));
  EXPECT_EQ(ex.pending(), 50u);

  auto stopping = std::async(std::launch::async, [&] { ex.stop(StopMode::drain); });
  ASSERT_TRUE(eventually([&] { return ex.stopped(); }));
  EXPECT_FALSE(ex.post([&] { ran.fetch_add(1000); }));
  gate.open();
  ASSERT_EQ(stopping.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(ran.load(), 50);
  EXPECT_EQ(ex.pending(), 0u);
  EXPECT_EQ(ex.rejected_count(), 0u);
}

TEST(RuntimeExecutor, RejectStopCountsQueuedAndRunsNone) {
  Gate gate;
  Counter blockers_started;
  std::atomic<int> ran{0};
  RuntimeExecutor ex(2);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(ex.post([&] {
      blockers_started.add();
      gate.wait();
    }));
  }
  ASSERT_TRUE(blockers_started.wait_for(2));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(ex.post([&] { ran.fetch_add(1); }));

  auto stopping = std::async(std::launch::async, [&] { ex.stop(StopMode::reject); });
  ASSERT_TRUE(eventually([&] { return ex.stopped(); }));
  EXPECT_EQ(ex.rejected_count(), 30u);
  EXPECT_EQ(ex.pending(), 0u);
  EXPECT_NE(stopping.wait_for(0ms), std::future_status::ready) << "stop() must join workers";
  gate.open();
  ASSERT_EQ(stopping.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(ex.rejected_count(), 30u);
}

TEST(RuntimeExecutor, LaterRejectDiscardsWhatADrainHasNotStarted) {
  Gate gate;
  Counter blocker_started;
  std::atomic<int> ran{0};
  RuntimeExecutor ex(1);
  ASSERT_TRUE(ex.post([&] {
    blocker_started.add();
    gate.wait();
  }));
  ASSERT_TRUE(blocker_started.wait_for(1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ex.post([&] { ran.fetch_add(1); }));
  auto draining = std::async(std::launch::async, [&] { ex.stop(StopMode::drain); });
  ASSERT_TRUE(eventually([&] { return ex.stopped(); }));
  auto rejecting = std::async(std::launch::async, [&] { ex.stop(StopMode::reject); });
  ASSERT_TRUE(eventually([&] { return ex.rejected_count() == 10; }));
  gate.open();
  ASSERT_EQ(draining.wait_for(kDeadline), std::future_status::ready);
  ASSERT_EQ(rejecting.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(ran.load(), 0);
}

TEST(RuntimeExecutor, PostAfterStopReturnsFalseAndDoesNotRun) {
  RuntimeExecutor ex(2);
  ex.stop();
  EXPECT_TRUE(ex.stopped());
  std::atomic<bool> ran{false};
  EXPECT_FALSE(ex.post([&] { ran = true; }));
  EXPECT_EQ(ex.pending(), 0u);
  EXPECT_FALSE(ran.load());
}

TEST(RuntimeExecutor, StopIsIdempotent) {
  Counter done;
  RuntimeExecutor ex(2);
  ASSERT_TRUE(ex.post([&] { done.add(); }));
  ex.stop();
  ex.stop();
  ex.stop(StopMode::reject);
  EXPECT_EQ(done.value(), 1);
  EXPECT_EQ(ex.rejected_count(), 0u);
}

TEST(RuntimeExecutor, ConcurrentStopsAllReturnAfterWorkersJoined) {
  Gate gate;
  Counter started;
  std::atomic<int> ran{0};
  RuntimeExecutor ex(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ex.post([&] {
      started.add();
      gate.wait();
      ran.fetch_add(1);
    }));
  }
  ASSERT_TRUE(started.wait_for(3));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ex.post([&] { ran.fetch_add(1); }));

  std::vector<std::future<int>> stoppers;
  for (int i = 0; i < 6; ++i) {
    stoppers.push_back(std::async(std::launch::async, [&] {
      ex.stop();
      return ran.load();  // every stop() returns only after the drain
    }));
  }
  ASSERT_TRUE(eventually([&] { return ex.stopped(); }));
  gate.open();
  for (auto& s : stoppers) {
    ASSERT_EQ(s.wait_for(kDeadline), std::future_status::ready);
    EXPECT_EQ(s.get(), 23);
  }
}

TEST(RuntimeExecutor, StopFromInsideATaskDoesNotDeadlock) {
  std::atomic<int> ran{0};
  std::atomic<int> accepted{0};
  std::promise<bool> stop_returned;
  auto ex = std::make_shared<RuntimeExecutor>(3);
  auto result = std::async(std::launch::async, [&] {
    EXPECT_TRUE(ex->post([&] {
      ex->stop(StopMode::drain);
      stop_returned.set_value(!ex->post([] {}));
    }));
    // Races with the stop above: each post either runs or says it will not.
    for (int i = 0; i < 20; ++i) {
      if (ex->post([&] { ran.fetch_add(1); })) accepted.fetch_add(1);
    }
    auto f = stop_returned.get_future();
    if (f.wait_for(kDeadline) != std::future_status::ready) return false;
    return f.get();
  });
  ASSERT_EQ(result.wait_for(kDeadline * 2), std::future_status::ready) << "deadlock in stop()";
  EXPECT_TRUE(result.get()) << "post after stop from a task must return false";
  auto joined = std::async(std::launch::async, [&] { ex->stop(); });
  ASSERT_EQ(joined.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(ran.load(), accepted.load()) << "an accepted task was dropped";
  EXPECT_EQ(ex->rejected_count(), 0u);
}

TEST(RuntimeExecutor, StopFromTaskOnSingleWorkerStillDrains) {
  Gate queued;
  Counter ran;
  std::promise<void> stop_returned;
  RuntimeExecutor ex(1);
  ASSERT_TRUE(ex.post([&] {
    queued.wait();
    ex.stop(StopMode::drain);
    stop_returned.set_value();
  }));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ex.post([&] { ran.add(); }));
  queued.open();
  ASSERT_EQ(stop_returned.get_future().wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(ran.wait_for(5)) << "the calling worker drains after its task";
  auto joined = std::async(std::launch::async, [&] { ex.stop(); });
  ASSERT_EQ(joined.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(ran.value(), 5);
}

TEST(RuntimeExecutor, ConcurrentStopsFromTasksDoNotDeadlock) {
  Counter started;
  Counter stopped;
  auto ex = std::make_shared<RuntimeExecutor>(4);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(ex->post([&, i] {
      started.add();
      started.wait_for(4);
      ex->stop(i % 2 == 0 ? StopMode::drain : StopMode::reject);
      stopped.add();
    }));
  }
  EXPECT_TRUE(stopped.wait_for(4)) << "deadlock between stop() calls from workers";
  auto joined = std::async(std::launch::async, [&] { ex->stop(); });
  ASSERT_EQ(joined.wait_for(kDeadline), std::future_status::ready);
}

TEST(RuntimeExecutor, DestroyedFromItsOwnTaskDoesNotDeadlockOrCrash) {
  // Shared, because the worker running the destructor is detached and may
  // still be unwinding when the test returns.
  auto destroyed = std::make_shared<std::promise<bool>>();
  auto future = destroyed->get_future();
  auto posted = std::make_shared<Gate>();
  auto ex = std::make_shared<RuntimeExecutor>(2);
  std::weak_ptr<RuntimeExecutor> weak = ex;
  // The task owns the last reference; dropping it runs the destructor on a worker.
  ASSERT_TRUE(ex->post([keep = ex, posted, destroyed, weak]() mutable {
    posted->wait();
    keep.reset();
    destroyed->set_value(weak.expired());
  }));
  ex.reset();
  posted->open();
  ASSERT_EQ(future.wait_for(kDeadline), std::future_status::ready) << "destructor deadlocked";
  EXPECT_TRUE(future.get());
}

TEST(RuntimeExecutor, ThrowingTaskIsCountedAndWorkerSurvives) {
  Counter done;
  RuntimeExecutor ex(1);
  ASSERT_TRUE(ex.post([] { throw std::runtime_error("boom (expected by the test)"); }));
  ASSERT_TRUE(ex.post([] { throw 42; }));
  ASSERT_TRUE(ex.post([&] { done.add(); }));
  ASSERT_TRUE(done.wait_for(1)) << "the only worker died with the exception";
  EXPECT_TRUE(eventually([&] { return ex.failed_count() == 2; }));
  ex.stop();
  EXPECT_EQ(ex.failed_count(), 2u);
}

TEST(RuntimeExecutor, DestructorDrains) {
  std::atomic<int> ran{0};
  Gate gate;
  Counter started;
  {
    RuntimeExecutor ex(2);
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(ex.post([&] {
        started.add();
        gate.wait();
      }));
    }
    ASSERT_TRUE(started.wait_for(2));
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(ex.post([&] { ran.fetch_add(1); }));
    gate.open();
  }
  EXPECT_EQ(ran.load(), 40);
}

TEST(RuntimeExecutor, EmptyTaskIsAProgrammingError) {
  RuntimeExecutor ex(1);
  EXPECT_THROW(ex.post(RuntimeExecutor::Task{}), std::invalid_argument);
}

}  // namespace
