#include "ebb/lifecycle/shutdown.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ebb/executor/runtime_executor.hpp"
#include "unit/support/wait.hpp"

namespace {

using ebb::test::Counter;
using ebb::test::eventually;
using ebb::test::kDeadline;

using ebb::lifecycle::Shutdown;
using ebb::lifecycle::Source;
using ebb::lifecycle::WorkGuard;
using namespace std::chrono_literals;

/// How long a negative check ("still blocked") waits.
constexpr auto kStillBlocked = 100ms;

// Signals that reach no Shutdown land here instead of killing the test.
std::atomic<int> g_fallback_signals{0};
extern "C" void fallback_handler(int) { g_fallback_signals.fetch_add(1); }

void (*current_handler(int signo))(int) {
  struct sigaction current {};
  ::sigaction(signo, nullptr, &current);
  return current.sa_handler;
}

/// Every test starts with a known "previous" handler for the signals used here
/// and must leave it installed: no test may leak a captured signal.
class ShutdownTest : public ::testing::Test {
 protected:
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};

  void SetUp() override {
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      struct sigaction action {};
      action.sa_handler = fallback_handler;
      sigemptyset(&action.sa_mask);
      ASSERT_EQ(::sigaction(kSignals[i], &action, &saved_[i]), 0);
    }
    g_fallback_signals.store(0);
  }

  void TearDown() override {
    for (std::size_t i = 0; i < std::size(kSignals); ++i) {
      EXPECT_EQ(current_handler(kSignals[i]), &fallback_handler)
          << Shutdown::signal_name(kSignals[i]) << " handler leaked by the test";
      ::sigaction(kSignals[i], &saved_[i], nullptr);
    }
  }

  struct sigaction saved_[std::size(kSignals)]{};
};

// ---- trigger ------------------------------------------------------------------

TEST_F(ShutdownTest, StartsNotShutDown) {
  Shutdown shutdown;
  EXPECT_FALSE(shutdown.is_shutdown());
  EXPECT_EQ(shutdown.source(), Source::none);
  EXPECT_EQ(shutdown.signal_number(), 0);
  EXPECT_EQ(shutdown.reason(), "");
  EXPECT_EQ(shutdown.triggered_at(), std::chrono::steady_clock::time_point{});
  EXPECT_FALSE(shutdown.force_requested());
  EXPECT_FALSE(shutdown.capturing_signals());
  EXPECT_FALSE(shutdown.wait_for_shutdown(0ms));
}

TEST_F(ShutdownTest, TriggerRecordsSourceReasonAndTime) {
  Shutdown shutdown;
  const auto before = std::chrono::steady_clock::now();
  shutdown.trigger("admin route");
  const auto after = std::chrono::steady_clock::now();
  EXPECT_TRUE(shutdown.is_shutdown());
  EXPECT_EQ(shutdown.source(), Source::call);
  EXPECT_EQ(shutdown.signal_number(), 0);
  EXPECT_EQ(shutdown.reason(), "admin route");
  EXPECT_GE(shutdown.triggered_at(), before);
  EXPECT_LE(shutdown.triggered_at(), after);
  EXPECT_TRUE(shutdown.wait_for_shutdown(0ms));
  EXPECT_FALSE(shutdown.force_requested());
}

TEST_F(ShutdownTest, TriggerIsIdempotent) {
  Shutdown shutdown;
  int runs = 0;
  shutdown.on_trigger([&] { ++runs; });
  shutdown.trigger("first");
  const auto at = shutdown.triggered_at();
  shutdown.trigger("second");
  shutdown.trigger();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(shutdown.reason(), "first");
  EXPECT_EQ(shutdown.triggered_at(), at);
  EXPECT_FALSE(shutdown.force_requested());
}

TEST_F(ShutdownTest, ConcurrentTriggersRunCallbacksExactlyOnce) {
  Shutdown shutdown;
  std::atomic<int> runs{0};
  std::atomic<bool> shut_down_inside{false};
  shutdown.on_trigger([&] {
    runs.fetch_add(1);
    shut_down_inside.store(shutdown.is_shutdown());
  });
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      shutdown.trigger("thread " + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_TRUE(shut_down_inside.load()) << "is_shutdown() must be true before callbacks run";
  EXPECT_EQ(shutdown.source(), Source::call);
  EXPECT_EQ(shutdown.reason().rfind("thread ", 0), 0u) << shutdown.reason();
}

TEST_F(ShutdownTest, WaitForShutdownTimesOutThenWakesOnTrigger) {
  Shutdown shutdown;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(shutdown.wait_for_shutdown(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);

  auto waiter =
      std::async(std::launch::async, [&] { return shutdown.wait_for_shutdown(kDeadline); });
  std::thread trigger([&] { shutdown.trigger("from a thread"); });
  EXPECT_TRUE(waiter.get());
  trigger.join();
  // The untimed form returns at once now; a huge timeout must not overflow.
  shutdown.wait_for_shutdown();
  EXPECT_TRUE(shutdown.wait_for_shutdown(std::chrono::milliseconds::max()));
}

// ---- callbacks ----------------------------------------------------------------

TEST_F(ShutdownTest, CallbacksRunInRegistrationOrderOnTriggeringThread) {
  Shutdown shutdown;
  std::vector<int> order;
  std::thread::id ran_on;
  shutdown.on_trigger([&] { order.push_back(1); });
  shutdown.on_trigger([&] {
    order.push_back(2);
    ran_on = std::this_thread::get_id();
  });
  std::thread::id triggered_on;
  std::thread t([&] {
    triggered_on = std::this_thread::get_id();
    shutdown.trigger();
  });
  t.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(ran_on, triggered_on);
}

TEST_F(ShutdownTest, OnTriggerAfterTriggerRunsAtOnceOnCaller) {
  Shutdown shutdown;
  shutdown.trigger();
  std::thread::id ran_on;
  int runs = 0;
  shutdown.on_trigger([&] {
    ++runs;
    ran_on = std::this_thread::get_id();
  });
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  shutdown.trigger();
  EXPECT_EQ(runs, 1);
}

TEST_F(ShutdownTest, EmptyCallbackIsRejected) {
  Shutdown shutdown;
  EXPECT_THROW(shutdown.on_trigger(nullptr), std::invalid_argument);
  EXPECT_THROW(shutdown.on_force({}), std::invalid_argument);
}

TEST_F(ShutdownTest, ThrowingCallbackIsCountedAndTheRestStillRun) {
  Shutdown shutdown;
  int after = 0;
  shutdown.on_trigger([] { throw std::runtime_error("boom"); });
  shutdown.on_trigger([] { throw 42; });
  shutdown.on_trigger([&] { ++after; });
  shutdown.trigger();
  EXPECT_EQ(after, 1);
  EXPECT_EQ(shutdown.callback_errors(), 2u);
}

TEST_F(ShutdownTest, RemovedCallbackDoesNotRun) {
  Shutdown shutdown;
  int removed_runs = 0;
  int kept_runs = 0;
  const auto removed = shutdown.on_trigger([&] { ++removed_runs; });
  const auto kept = shutdown.on_trigger([&] { ++kept_runs; });
  EXPECT_NE(removed, kept);
  EXPECT_TRUE(shutdown.remove_callback(removed));
  EXPECT_FALSE(shutdown.remove_callback(removed));
  shutdown.trigger();
  EXPECT_EQ(removed_runs, 0);
  EXPECT_EQ(kept_runs, 1);
  EXPECT_FALSE(shutdown.remove_callback(kept)) << "an on_trigger callback that ran is gone";
  EXPECT_FALSE(shutdown.remove_callback(12345));
}

TEST_F(ShutdownTest, RemoveCallbackWaitsForTheRunningCallback) {
  Shutdown shutdown;
  std::promise<void> entered;
  std::promise<void> go;
  auto go_future = go.get_future();
  std::atomic<bool> finished{false};
  const auto id = shutdown.on_trigger([&] {
    entered.set_value();
    go_future.wait();
    finished.store(true);
  });
  std::thread trigger([&] { shutdown.trigger(); });
  entered.get_future().wait();

  auto removal = std::async(std::launch::async, [&] {
    shutdown.remove_callback(id);
    return finished.load();
  });
  EXPECT_EQ(removal.wait_for(kStillBlocked), std::future_status::timeout)
      << "remove_callback returned while its callback was still running";
  go.set_value();
  EXPECT_TRUE(removal.get()) << "remove_callback returned before the callback finished";
  trigger.join();
}

TEST_F(ShutdownTest, CallbackMayRemoveItself) {
  Shutdown shutdown;
  Shutdown::CallbackId id = 0;
  int runs = 0;
  id = shutdown.on_force([&] {
    ++runs;
    shutdown.remove_callback(id);  // must not wait for itself
  });
  shutdown.force("one");
  shutdown.force("two");
  EXPECT_EQ(runs, 1);
}

// ---- force --------------------------------------------------------------------

TEST_F(ShutdownTest, ForceTriggersFirstThenRunsForceCallbacksPerRequest) {
  Shutdown shutdown;
  std::vector<std::string> events;
  shutdown.on_trigger([&] { events.push_back("trigger"); });
  shutdown.on_force([&] { events.push_back("force"); });
  shutdown.force("deadline passed");
  EXPECT_TRUE(shutdown.is_shutdown());
  EXPECT_EQ(shutdown.source(), Source::call);
  EXPECT_EQ(shutdown.reason(), "deadline passed");
  EXPECT_TRUE(shutdown.force_requested());
  EXPECT_EQ(shutdown.force_count(), 1u);
  EXPECT_EQ(shutdown.force_reason(), "deadline passed");
  EXPECT_EQ(events, (std::vector<std::string>{"trigger", "force"}));

  shutdown.force("again");
  EXPECT_EQ(shutdown.force_count(), 2u);
  EXPECT_EQ(shutdown.force_reason(), "again");
  EXPECT_EQ(shutdown.reason(), "deadline passed");
  EXPECT_EQ(events, (std::vector<std::string>{"trigger", "force", "force"}));
}

TEST_F(ShutdownTest, LateOnForceRunsOnceAtOnceThenPerRequest) {
  Shutdown shutdown;
  int runs = 0;
  shutdown.on_force([] {});
  shutdown.force();
  shutdown.on_force([&] { ++runs; });
  EXPECT_EQ(runs, 1);
  shutdown.force();
  EXPECT_EQ(runs, 2);
}

TEST_F(ShutdownTest, OnForceBeforeAnyForceDoesNotRun) {
  Shutdown shutdown;
  int runs = 0;
  shutdown.on_force([&] { ++runs; });
  shutdown.trigger();
  EXPECT_EQ(runs, 0);
}

// ---- signals ------------------------------------------------------------------

TEST_F(ShutdownTest, SignalTriggersOnTheWatcherThread) {
  Shutdown shutdown;
  Counter ran;
  std::thread::id ran_on;
  shutdown.on_trigger([&] {
    ran_on = std::this_thread::get_id();
    // Not async-signal-safe on purpose (allocation, lock): legal here only
    // because callbacks never run inside the handler.
    auto text = std::make_unique<std::string>(shutdown.reason());
    ran.add();
  });
  shutdown.capture_signals({SIGTERM});
  EXPECT_TRUE(shutdown.capturing_signals());
  EXPECT_NE(current_handler(SIGTERM), &fallback_handler);
  EXPECT_EQ(current_handler(SIGINT), &fallback_handler) << "only the requested signal";

  ASSERT_EQ(::raise(SIGTERM), 0);  // the handler runs on this thread
  ASSERT_TRUE(shutdown.wait_for_shutdown(kDeadline));
  ASSERT_TRUE(ran.wait_for(1));
  EXPECT_EQ(shutdown.source(), Source::signal);
  EXPECT_EQ(shutdown.signal_number(), SIGTERM);
  EXPECT_EQ(shutdown.reason(), "SIGTERM");
  EXPECT_EQ(shutdown.signal_count(), 1u);
  EXPECT_NE(ran_on, std::this_thread::get_id()) << "callback ran in the signal handler";
  EXPECT_FALSE(shutdown.force_requested());
  EXPECT_EQ(g_fallback_signals.load(), 0);
}

TEST_F(ShutdownTest, DefaultCaptureCoversSigintAndSigterm) {
  Shutdown shutdown;
  shutdown.capture_signals();
  EXPECT_NE(current_handler(SIGINT), &fallback_handler);
  EXPECT_NE(current_handler(SIGTERM), &fallback_handler);
  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);  // any thread may run the handler
  ASSERT_TRUE(shutdown.wait_for_shutdown(kDeadline));
  EXPECT_EQ(shutdown.signal_number(), SIGINT);
}

TEST_F(ShutdownTest, SecondSignalForces) {
  Shutdown shutdown;
  Counter forced;
  shutdown.on_force([&] { forced.add(); });
  shutdown.capture_signals({SIGINT, SIGTERM});
  ASSERT_EQ(::raise(SIGTERM), 0);
  ASSERT_TRUE(shutdown.wait_for_shutdown(kDeadline));
  EXPECT_FALSE(shutdown.force_requested());

  ASSERT_EQ(::raise(SIGINT), 0);
  ASSERT_TRUE(forced.wait_for(1));
  EXPECT_EQ(shutdown.force_reason(), "SIGINT (signal #2)");
  EXPECT_EQ(shutdown.signal_number(), SIGTERM) << "the trigger record does not change";

  ASSERT_EQ(::raise(SIGINT), 0);
  ASSERT_TRUE(forced.wait_for(2));
  EXPECT_EQ(shutdown.force_count(), 2u);
  EXPECT_EQ(shutdown.signal_count(), 3u);
}

TEST_F(ShutdownTest, FirstSignalDuringACodeTriggeredDrainDoesNotForce) {
  Shutdown shutdown;
  Counter forced;
  shutdown.on_force([&] { forced.add(); });
  shutdown.capture_signals({SIGTERM});
  shutdown.trigger("admin route");
  ASSERT_EQ(::raise(SIGTERM), 0);
  ASSERT_TRUE(eventually([&] { return shutdown.signal_count() == 1; }));
  EXPECT_EQ(forced.value(), 0);
  EXPECT_EQ(shutdown.source(), Source::call);
  EXPECT_EQ(shutdown.reason(), "admin route");

  ASSERT_EQ(::raise(SIGTERM), 0);
  EXPECT_TRUE(forced.wait_for(1));
}

TEST_F(ShutdownTest, TwoInstancesBothSeeOneSignal) {
  Shutdown a;
  Shutdown b;
  a.capture_signals({SIGUSR1});
  b.capture_signals({SIGUSR1, SIGUSR2});
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_TRUE(a.wait_for_shutdown(kDeadline));
  EXPECT_TRUE(b.wait_for_shutdown(kDeadline));
  EXPECT_EQ(a.signal_number(), SIGUSR1);
  EXPECT_EQ(b.signal_number(), SIGUSR1);

  // SIGUSR2 reaches only b.
  ASSERT_EQ(::raise(SIGUSR2), 0);
  ASSERT_TRUE(eventually([&] { return b.signal_count() == 2; }));
  EXPECT_EQ(a.signal_count(), 1u);
}

TEST_F(ShutdownTest, PreviousHandlerRestoredWhenLastInstanceStops) {
  auto a = std::make_unique<Shutdown>();
  auto b = std::make_unique<Shutdown>();
  a->capture_signals({SIGUSR1});
  b->capture_signals({SIGUSR1});
  a.reset();
  EXPECT_NE(current_handler(SIGUSR1), &fallback_handler) << "b still captures SIGUSR1";
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_TRUE(b->wait_for_shutdown(kDeadline));

  b->release_signals();
  EXPECT_FALSE(b->capturing_signals());
  EXPECT_EQ(current_handler(SIGUSR1), &fallback_handler);
  b->release_signals();  // idempotent
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_EQ(g_fallback_signals.load(), 1);
  EXPECT_EQ(b->signal_count(), 1u);
}

TEST_F(ShutdownTest, CaptureAgainAddsSignalsAndReleaseRemovesAll) {
  Shutdown shutdown;
  shutdown.capture_signals({SIGUSR1});
  shutdown.capture_signals({SIGUSR2, SIGUSR1});
  ASSERT_EQ(::raise(SIGUSR2), 0);
  ASSERT_TRUE(shutdown.wait_for_shutdown(kDeadline));
  EXPECT_EQ(shutdown.signal_number(), SIGUSR2);
  shutdown.release_signals();
  EXPECT_EQ(current_handler(SIGUSR1), &fallback_handler);
  EXPECT_EQ(current_handler(SIGUSR2), &fallback_handler);
  // And it can capture again afterwards.
  shutdown.capture_signals({SIGUSR1});
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_TRUE(eventually([&] { return shutdown.signal_count() == 2; }));
}

TEST_F(ShutdownTest, ReleaseFromForceCallbackLetsTheNextSignalThrough) {
  auto shutdown = std::make_unique<Shutdown>();
  Counter forced;
  shutdown->on_force([&] {
    shutdown->release_signals();  // on the watcher thread: must not self-join
    forced.add();
  });
  shutdown->capture_signals({SIGINT});
  ASSERT_EQ(::raise(SIGINT), 0);
  ASSERT_TRUE(shutdown->wait_for_shutdown(kDeadline));
  ASSERT_EQ(::raise(SIGINT), 0);
  ASSERT_TRUE(forced.wait_for(1));
  EXPECT_FALSE(shutdown->capturing_signals());
  ASSERT_EQ(::raise(SIGINT), 0);  // the third one goes to the previous handler
  EXPECT_EQ(g_fallback_signals.load(), 1);
  shutdown.reset();  // joins the stopped watcher
}

TEST_F(ShutdownTest, CaptureRejectsUncatchableAndOutOfRangeSignals) {
  Shutdown shutdown;
  EXPECT_THROW(shutdown.capture_signals({SIGKILL}), std::invalid_argument);
  EXPECT_THROW(shutdown.capture_signals({SIGSTOP}), std::invalid_argument);
  EXPECT_THROW(shutdown.capture_signals({0}), std::invalid_argument);
  EXPECT_THROW(shutdown.capture_signals({65}), std::invalid_argument);
  EXPECT_THROW(shutdown.capture_signals({SIGUSR1, -1}), std::invalid_argument);
  EXPECT_FALSE(shutdown.capturing_signals());
  EXPECT_EQ(current_handler(SIGUSR1), &fallback_handler) << "nothing installed on error";
}

TEST_F(ShutdownTest, RegistryLimitIsEnforcedAndSlotsAreReused) {
  std::vector<std::unique_ptr<Shutdown>> all;
  for (std::size_t i = 0; i < Shutdown::kMaxCapturingInstances; ++i) {
    all.push_back(std::make_unique<Shutdown>());
    all.back()->capture_signals({SIGUSR1});
  }
  Shutdown one_too_many;
  EXPECT_THROW(one_too_many.capture_signals({SIGUSR1}), std::length_error);
  EXPECT_FALSE(one_too_many.capturing_signals());
  all.back()->release_signals();
  one_too_many.capture_signals({SIGUSR1});
  ASSERT_EQ(::raise(SIGUSR1), 0);
  EXPECT_TRUE(one_too_many.wait_for_shutdown(kDeadline));
  for (std::size_t i = 0; i + 1 < all.size(); ++i) {
    EXPECT_TRUE(all[i]->wait_for_shutdown(kDeadline)) << i;
  }
  EXPECT_FALSE(all.back()->is_shutdown()) << "released before the signal";
}

TEST_F(ShutdownTest, SignalNames) {
  EXPECT_STREQ(Shutdown::signal_name(SIGTERM), "SIGTERM");
  EXPECT_STREQ(Shutdown::signal_name(SIGINT), "SIGINT");
  EXPECT_STREQ(Shutdown::signal_name(SIGHUP), "SIGHUP");
  EXPECT_STREQ(Shutdown::signal_name(SIGUSR2), "SIGUSR2");
  EXPECT_STREQ(Shutdown::signal_name(0), "unknown");
  EXPECT_STREQ(Shutdown::signal_name(1000), "unknown");
}

// ---- work gate ------------------------------------------------------------------

TEST_F(ShutdownTest, GuardsCountAndMove) {
  Shutdown shutdown;
  WorkGuard empty;
  EXPECT_FALSE(empty);
  empty.release();  // no-op
  EXPECT_EQ(shutdown.pending_count(), 0u);

  auto a = shutdown.start_work();
  auto b = shutdown.start_work();
  EXPECT_TRUE(a.active());
  EXPECT_EQ(shutdown.pending_count(), 2u);

  WorkGuard moved(std::move(a));
  EXPECT_FALSE(a.active());
  EXPECT_TRUE(moved.active());
  EXPECT_EQ(shutdown.pending_count(), 2u);

  moved = std::move(b);  // releases what `moved` held
  EXPECT_EQ(shutdown.pending_count(), 1u);
  EXPECT_FALSE(b.active());

  auto& alias = moved;
  moved = std::move(alias);  // self-move keeps the guard
  EXPECT_TRUE(moved.active());
  EXPECT_EQ(shutdown.pending_count(), 1u);

  moved.release();
  moved.release();
  EXPECT_FALSE(moved.active());
  EXPECT_EQ(shutdown.pending_count(), 0u);
  {
    auto scoped = shutdown.start_work();
    EXPECT_EQ(shutdown.pending_count(), 1u);
  }
  EXPECT_EQ(shutdown.pending_count(), 0u);
}

TEST_F(ShutdownTest, WaitPendingForTimesOutWhileWorkIsHeld) {
  Shutdown shutdown;
  EXPECT_TRUE(shutdown.wait_pending_for(0ms));
  auto guard = shutdown.start_work();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(shutdown.wait_pending_for(30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  guard.release();
  EXPECT_TRUE(shutdown.wait_pending_for(0ms));
  EXPECT_TRUE(shutdown.wait_pending_for(std::chrono::milliseconds::max()));
}

TEST_F(ShutdownTest, WaitPendingForReturnsWhenAnotherThreadReleases) {
  Shutdown shutdown;
  std::promise<void> go;
  std::atomic<bool> work_done{false};
  std::thread worker([&, guard = shutdown.start_work(), go = go.get_future()]() mutable {
    go.wait();
    work_done.store(true);
    guard.release();
  });
  auto drain = std::async(std::launch::async, [&] { return shutdown.wait_pending_for(kDeadline); });
  EXPECT_EQ(drain.wait_for(kStillBlocked), std::future_status::timeout);
  go.set_value();
  EXPECT_TRUE(drain.get());
  EXPECT_TRUE(work_done.load());
  worker.join();
}

TEST_F(ShutdownTest, AdmissionIsRefusedAfterShutdownButCountingIsNot) {
  Shutdown shutdown;
  auto admitted = shutdown.try_start_work();
  ASSERT_TRUE(admitted.has_value());
  EXPECT_EQ(shutdown.pending_count(), 1u);
  shutdown.trigger();
  EXPECT_FALSE(shutdown.try_start_work().has_value());
  EXPECT_EQ(shutdown.pending_count(), 1u) << "a refused admission leaves no count behind";
  auto in_flight = shutdown.start_work();  // a request already read still counts
  EXPECT_EQ(shutdown.pending_count(), 2u);
  admitted.reset();
  in_flight.release();
  EXPECT_TRUE(shutdown.wait_pending_for(0ms));
}

// Once a drain that started after trigger() has seen zero, no admission may
// succeed any more (the Dekker handshake between try_start_work and trigger).
TEST_F(ShutdownTest, NoAdmissionAfterTheDrainSawZero) {
  Shutdown shutdown;
  std::atomic<bool> drained{false};
  std::atomic<int> violations{0};
  constexpr int kThreads = 4;
  std::latch running(kThreads + 1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      running.arrive_and_wait();
      while (auto guard = shutdown.try_start_work()) {
        if (drained.load()) {
          violations.fetch_add(1);
          break;  // bounded even when admission is (wrongly) never refused
        }
      }
    });
  }
  running.arrive_and_wait();
  shutdown.trigger();
  ASSERT_TRUE(shutdown.wait_pending_for(kDeadline));
  drained.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(shutdown.pending_count(), 0u);
}

TEST_F(ShutdownTest, ConcurrentGuardsBalance) {
  Shutdown shutdown;
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        auto outer = shutdown.start_work();
        auto inner = shutdown.start_work();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(shutdown.pending_count(), 0u);
  EXPECT_TRUE(shutdown.wait_pending_for(0ms));
}

// The contract in practice: the guard is taken before post(), so a drain sees
// work that is queued but not started, and waits for it to finish.
TEST_F(ShutdownTest, DrainWaitsForWorkDispatchedToAnExecutor) {
  Shutdown shutdown;
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  std::promise<void> go;
  auto go_future = go.get_future().share();
  std::atomic<int> finished{0};

  auto dispatch = [&](bool block) {
    auto guard = std::make_shared<WorkGuard>(shutdown.start_work());  // before post()
    return executor->post([guard, block, go_future, &finished] {
      if (block) go_future.wait();
      finished.fetch_add(1);
    });
  };
  ASSERT_TRUE(dispatch(true));   // occupies the only worker
  ASSERT_TRUE(dispatch(false));  // queued, not started, already counted
  EXPECT_EQ(shutdown.pending_count(), 2u);

  shutdown.trigger("test drain");
  EXPECT_FALSE(shutdown.wait_pending_for(kStillBlocked));
  EXPECT_EQ(finished.load(), 0);
  go.set_value();
  ASSERT_TRUE(shutdown.wait_pending_for(kDeadline));
  EXPECT_EQ(finished.load(), 2) << "the drain ended before the dispatched work";
  executor->stop();
}

TEST_F(ShutdownTest, RejectedPostReleasesItsGuard) {
  Shutdown shutdown;
  auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(1);
  executor->stop();
  auto guard = std::make_shared<WorkGuard>(shutdown.start_work());
  EXPECT_FALSE(executor->post([guard] {}));
  guard.reset();
  EXPECT_EQ(shutdown.pending_count(), 0u);
}

using ShutdownDeathTest = ShutdownTest;

TEST_F(ShutdownDeathTest, DestroyingWithOutstandingGuardsAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto shutdown = std::make_unique<Shutdown>();
        auto guard = shutdown->start_work();
        shutdown.reset();
      },
      "1 WorkGuard\\(s\\) outstanding");
}

}  // namespace
