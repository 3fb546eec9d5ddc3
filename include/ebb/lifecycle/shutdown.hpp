#pragma once
// ebb::lifecycle::Shutdown: the drain primitive. It turns SIGINT/SIGTERM (or a
// plain call) into one recorded, idempotent shutdown event, and counts the
// in-flight work that a graceful drain must wait for.
//
//   ebb::lifecycle::Shutdown shutdown;
//   shutdown.capture_signals();                       // SIGINT, SIGTERM
//   shutdown.on_trigger([&] { server.stop_async(); }); // 1st signal: drain
//   shutdown.on_force([&] { /* shutdown_now() the rest */ }); // 2nd signal
//   ...
//   // Dispatching a unit of work: count it BEFORE handing it over.
//   auto guard = std::make_shared<ebb::lifecycle::WorkGuard>(shutdown.start_work());
//   executor->post([guard, job] { job(); });  // the guard is released with the task
//   ...
//   shutdown.wait_for_shutdown();
//   bool clean = shutdown.wait_pending_for(std::chrono::seconds{30});
//
// Threads: every member function is safe to call concurrently from any thread,
// including from the callbacks (on_trigger/on_force) and from executor tasks,
// except where a function says otherwise. Nothing here is called from inside a
// signal handler: the handler only writes one byte to a pipe, and a watcher
// thread owned by this object turns that byte into a normal-thread action.
//
// Lifetime: a Shutdown is neither copyable nor movable (guards, the watcher
// thread and the process-wide signal registry refer to it). It must outlive
// every WorkGuard taken from it and every call into it from other threads.
// Destroying it while a WorkGuard is still held is a use-after-free waiting to
// happen, so the destructor checks (in every build type, it costs one load):
// it prints a message naming the count to stderr and calls std::abort().
// Several Shutdown objects may exist at once (tests, several subsystems).
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ebb::lifecycle {

class Shutdown;

/// What set off the shutdown.
enum class Source {
  none,    ///< not shut down yet
  call,    ///< trigger() or force() from code; reason() is the caller's text
  signal,  ///< a captured signal; signal_number() says which
};

/// One unit of in-flight work counted by a Shutdown (a Seastar gate entry, an
/// Asio work guard). Move-only; the destructor releases. A default-constructed
/// or moved-from guard is empty and releases nothing.
///
/// Threads: a single guard is not synchronised (like any object); distinct
/// guards of one Shutdown may be released concurrently from any threads.
/// To hand a guard to a std::function-based API (which needs copyable
/// callables), wrap it in a std::shared_ptr, as in the example above.
class WorkGuard {
 public:
  WorkGuard() noexcept = default;
  WorkGuard(WorkGuard&& other) noexcept;
  WorkGuard& operator=(WorkGuard&& other) noexcept;
  WorkGuard(const WorkGuard&) = delete;
  WorkGuard& operator=(const WorkGuard&) = delete;
  ~WorkGuard();

  /// Ends the unit of work now (idempotent); the guard becomes empty. When it
  /// was the last one, wait_pending_for() callers wake up.
  void release() noexcept;
  /// True while the guard still counts a unit of work.
  bool active() const noexcept { return owner_ != nullptr; }
  explicit operator bool() const noexcept { return active(); }

 private:
  friend class Shutdown;
  explicit WorkGuard(Shutdown* owner) noexcept : owner_(owner) {}

  Shutdown* owner_ = nullptr;
};

class Shutdown {
 public:
  using Callback = std::function<void()>;
  /// Identifies a registered callback for remove_callback(); never 0.
  using CallbackId = std::uint64_t;

  /// How many Shutdown objects can capture signals at the same time in one
  /// process (a fixed, lock-free registry read by the signal handler).
  static constexpr std::size_t kMaxCapturingInstances = 32;

  Shutdown();
  /// Stops capturing (release_signals()), joins the watcher thread, then
  /// aborts if WorkGuards are still outstanding (see the file comment). Must
  /// not run on the watcher thread (i.e. a callback destroying its own
  /// Shutdown): that is detected and aborts too.
  ~Shutdown();
  Shutdown(const Shutdown&) = delete;
  Shutdown& operator=(const Shutdown&) = delete;

  // ---- signals ------------------------------------------------------------

  /// Installs a sigaction handler for each signal (SA_RESTART, replacing the
  /// current disposition, which is saved) and starts this object's watcher
  /// thread. The first signal received triggers the shutdown (Source::signal);
  /// the second and every later one is a force request (see force()). Only
  /// signals count: when code already triggered the shutdown, the first
  /// signal (say systemd's SIGTERM during a drain started by an admin route)
  /// is still the first, changes nothing and does not cut that drain short;
  /// the next signal forces.
  ///
  /// The handler is async-signal-safe: it reads the registry and write()s the
  /// signal number as one byte to each interested object's non-blocking pipe
  /// (errno preserved). Any thread may run it, including threads created
  /// before this call, which is fine. Signals are not queued beyond the pipe's
  /// capacity (64 KiB), far beyond any drain's needs. Signals with the same
  /// number coalesce as the kernel decides (standard signals are not queued).
  /// A forked child inherits the handler but its signals reach no object of
  /// the parent (the handler checks the process id).
  ///
  /// Several objects may capture the same signal: each receives every
  /// delivery. The process-wide disposition is restored to what it was
  /// before the first capturing object installed it when the last one stops
  /// capturing that signal, so objects should stop in reverse order of
  /// capture if other code changes handlers in between. While an object
  /// captures a signal, code that replaces the handler behind its back breaks
  /// the capture; ebb does not detect that.
  ///
  /// Calling it again adds signals. Throws std::invalid_argument for a
  /// number outside 1..64 or SIGKILL/SIGSTOP (nothing installed then),
  /// std::length_error when kMaxCapturingInstances objects already capture,
  /// std::system_error when pipe(), thread or sigaction() creation fails, and
  /// std::logic_error when called from a callback on the watcher thread after
  /// release_signals() ran there.
  void capture_signals(std::initializer_list<int> signals = {SIGINT, SIGTERM});

  /// Stops capturing: restores dispositions (see capture_signals()), leaves
  /// the registry and stops the watcher. Signals received but not yet handled
  /// by the watcher are dropped. Idempotent; the destructor calls it. From a
  /// callback on the watcher thread (e.g. an on_force callback that wants the
  /// next Ctrl-C to kill the process the default way) it does not wait for
  /// the watcher, which exits once the callback returns; it is joined by the
  /// destructor or by a later capture_signals() from another thread.
  /// Otherwise it returns after the watcher thread has been joined.
  void release_signals();

  /// True between capture_signals() and release_signals().
  bool capturing_signals() const;
  /// Captured signals handled by the watcher so far.
  std::uint64_t signal_count() const noexcept;

  // ---- trigger and force ----------------------------------------------------

  /// Starts the shutdown. Idempotent: only the first trigger (from any thread
  /// or the watcher) records its source, reason and time, sets is_shutdown(),
  /// wakes wait_for_shutdown() callers, then runs every on_trigger callback
  /// once, on the triggering thread, outside any lock, in registration order;
  /// it returns when they have run. Later calls return at once, doing
  /// nothing (callers racing the first one may return before its callbacks
  /// have finished). Never throws (callback exceptions: see on_trigger()).
  void trigger(std::string_view reason = "trigger()") noexcept;

  /// Requests a forced shutdown (the drain's "now" path): triggers first if
  /// not yet shut down (Source::call with `reason`), then counts the request
  /// and runs every on_force callback once on the calling thread. Each call
  /// is a new request (a third Ctrl-C runs them again). Never throws.
  void force(std::string_view reason = "force()") noexcept;

  /// Lock-free; true from the moment the first trigger recorded itself
  /// (before its callbacks run).
  bool is_shutdown() const noexcept;
  bool force_requested() const noexcept;
  std::uint64_t force_count() const noexcept;

  Source source() const;
  /// The signal that triggered the shutdown, 0 when none did.
  int signal_number() const;
  /// The trigger()/force() reason, or the signal's name ("SIGTERM"); "" before.
  std::string reason() const;
  /// The reason of the latest force request ("" when none), e.g.
  /// "SIGINT (signal #2)".
  std::string force_reason() const;
  /// When the shutdown was triggered; the epoch (default) before.
  std::chrono::steady_clock::time_point triggered_at() const;

  /// Blocks until shut down. Returns is_shutdown().
  bool wait_for_shutdown(std::chrono::milliseconds timeout) const;
  void wait_for_shutdown() const;

  // ---- callbacks ------------------------------------------------------------
  //
  // Callbacks must return quickly and must not block on the drain they start
  // (typically they call server.stop_async()): they run on the triggering
  // thread, which for signals is the single watcher thread. An exception
  // thrown by a callback is caught, logged, counted in callback_errors(), and
  // the remaining callbacks still run.

  /// Runs `fn` once when the shutdown is triggered. Registered after the
  /// trigger, it runs at once on the caller's thread, before on_trigger()
  /// returns. Either way it runs exactly once (unless removed first).
  CallbackId on_trigger(Callback fn);
  /// Runs `fn` on every force request. When a force was already requested,
  /// it also runs once at once on the caller's thread, so a late registration
  /// never misses the force.
  CallbackId on_force(Callback fn);
  /// Unregisters a callback. When it returns, the callback is not running on
  /// another thread and will not run again, so objects it captures may be
  /// destroyed. Called from inside that very callback it does not wait for
  /// itself. Two callbacks running concurrently must not remove each other
  /// (deadlock). Returns false when the id was not registered (unknown, or an
  /// on_trigger callback that has already run).
  bool remove_callback(CallbackId id);
  /// Exceptions thrown by callbacks so far.
  std::uint64_t callback_errors() const noexcept;

  // ---- work gate --------------------------------------------------------------
  //
  // Contract: take the guard BEFORE dispatching the work (before post(),
  // before handing a parsed request to its handler), never inside the handler.
  // Otherwise a drain that sees pending_count() == 0 can finish while work is
  // queued but not yet counted.

  /// Counts one unit of in-flight work. Always succeeds, also after shutdown:
  /// work already accepted when the drain starts (a request already read)
  /// must be countable. Lock-free.
  WorkGuard start_work() noexcept;
  /// Admission: refuses (nullopt) once is_shutdown(); lock-free. An
  /// admission racing trigger() is either refused or counted in time: a
  /// wait_pending_for() started after trigger() returned cannot return true
  /// while a guard admitted here is held, and once it has returned true no
  /// later admission succeeds.
  std::optional<WorkGuard> try_start_work() noexcept;
  /// Guards currently held. A snapshot for progress reports; use
  /// wait_pending_for() to wait for zero.
  std::size_t pending_count() const noexcept;
  /// Blocks until no guard is held (true) or the timeout passed (false).
  /// Works before shutdown too. When it returns true, the release that
  /// brought the count to zero has finished touching this object, so the
  /// caller may destroy it (if no guard was taken since).
  bool wait_pending_for(std::chrono::milliseconds timeout) const;

  /// "SIGINT", "SIGTERM", "SIGHUP", ... for the standard signals, "unknown"
  /// otherwise. Never null.
  static const char* signal_name(int signo) noexcept;

 private:
  friend class WorkGuard;
  struct Impl;

  /// Called by WorkGuard::release(). Decrements to zero only under the gate
  /// mutex, so wait_pending_for() cannot return (and the object cannot be
  /// destroyed) while a releasing thread still touches it.
  void release_work() noexcept;

  std::unique_ptr<Impl> impl_;
};

}  // namespace ebb::lifecycle
