#include "ebb/lifecycle/shutdown.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "log/log.hpp"

namespace ebb::lifecycle {
namespace {

// ---- process-wide signal registry ------------------------------------------
//
// The handler reads only g_slots, through lock-free atomics. Normal threads
// change the registry and the dispositions under g_registry_mutex.

constexpr int kMaxSignal = 64;  // bit (signo - 1) of a slot's mask

struct Slot {
  /// Write end of the owner's pipe; -1 while the slot is free.
  std::atomic<int> fd{-1};
  std::atomic<std::uint64_t> mask{0};
  std::atomic<pid_t> pid{0};
  /// Handlers currently reading this slot; free_slot() waits for zero before
  /// the owner may close the fd (which could otherwise be reused meanwhile).
  std::atomic<int> users{0};
};
static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<pid_t>::is_always_lock_free);

struct Installed {
  int refs = 0;
  struct sigaction previous {};
};

constinit std::array<Slot, Shutdown::kMaxCapturingInstances> g_slots{};
constinit std::mutex g_registry_mutex{};
constinit std::array<Installed, kMaxSignal + 1> g_installed{};

std::uint64_t bit(int signo) { return std::uint64_t{1} << (signo - 1); }

extern "C" void ebb_lifecycle_signal_handler(int signo) {
  const int saved_errno = errno;
  const pid_t self = ::getpid();
  const auto signal_bit = bit(signo);
  const auto byte = static_cast<unsigned char>(signo);
  for (auto& slot : g_slots) {
    slot.users.fetch_add(1);
    const int fd = slot.fd.load();
    if (fd >= 0 && (slot.mask.load() & signal_bit) != 0 && slot.pid.load() == self) {
      // A full pipe (EAGAIN) drops the byte: the watcher has 64 KiB of
      // signals to handle already.
      [[maybe_unused]] const auto n = ::write(fd, &byte, 1);
    }
    slot.users.fetch_sub(1);
  }
  errno = saved_errno;
}

/// Returns the slot index, or -1 when every slot is taken.
int claim_slot(int fd) {
  std::lock_guard lock(g_registry_mutex);
  for (std::size_t i = 0; i < g_slots.size(); ++i) {
    auto& slot = g_slots[i];
    if (slot.fd.load() >= 0) continue;
    slot.mask.store(0);
    slot.pid.store(::getpid());
    slot.fd.store(fd);  // publishes the slot to handlers
    return static_cast<int>(i);
  }
  return -1;
}

void free_slot(int index) {
  std::lock_guard lock(g_registry_mutex);
  auto& slot = g_slots[static_cast<std::size_t>(index)];
  slot.fd.store(-1);
  slot.mask.store(0);
  // A handler that loaded the old fd has incremented users first (seq_cst on
  // both sides), so this sees it; handlers never block, the wait is short.
  while (slot.users.load() != 0) std::this_thread::yield();
}

/// Installs the shared handler for `signo` if no object captures it yet.
/// Requires g_registry_mutex.
void install_locked(int signo) {
  auto& entry = g_installed[static_cast<std::size_t>(signo)];
  if (entry.refs == 0) {
    struct sigaction action {};
    action.sa_handler = ebb_lifecycle_signal_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    if (::sigaction(signo, &action, &entry.previous) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              std::string("sigaction(") + Shutdown::signal_name(signo) + ")");
    }
  }
  ++entry.refs;
}

/// Restores the saved disposition when the last capturing object lets go.
/// Requires g_registry_mutex.
void uninstall_locked(int signo) {
  auto& entry = g_installed[static_cast<std::size_t>(signo)];
  if (entry.refs == 0) return;
  if (--entry.refs == 0) ::sigaction(signo, &entry.previous, nullptr);
}

void validate_signal(int signo) {
  if (signo < 1 || signo > kMaxSignal || signo == SIGKILL || signo == SIGSTOP) {
    throw std::invalid_argument(
        "ebb::lifecycle::Shutdown::capture_signals: cannot capture signal " +
        std::to_string(signo));
  }
}

/// A deadline that does not overflow steady_clock for huge timeouts.
std::chrono::steady_clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  constexpr auto kForever = std::chrono::hours(24 * 365 * 100);
  return std::chrono::steady_clock::now() + std::min<std::chrono::milliseconds>(timeout, kForever);
}

const char* source_name(Source source) {
  switch (source) {
    case Source::none:
      return "none";
    case Source::call:
      return "call";
    case Source::signal:
      return "signal";
  }
  return "?";
}

enum class Kind { trigger, force };

}  // namespace

// ---- per-object state -------------------------------------------------------

struct Shutdown::Impl {
  /// One capture session: a pipe the handler writes to and the thread reading
  /// it. Destroying it joins the thread (never on that thread) and closes the pipe.
  struct Watcher {
    int read_fd = -1;
    int write_fd = -1;
    int slot = -1;
    std::uint64_t mask = 0;
    /// Set before the stop byte is written: the bytes still queued are dropped.
    std::atomic<bool> stop{false};
    std::thread thread;

    ~Watcher() {
      if (thread.joinable()) thread.join();
      if (read_fd >= 0) ::close(read_fd);
      if (write_fd >= 0) ::close(write_fd);
    }
  };

  struct Entry {
    CallbackId id;
    Kind kind;
    std::shared_ptr<Callback> fn;
  };
  struct Running {
    CallbackId id;
    std::thread::id thread;
  };

  // Work gate. `pending` reaches zero only under gate_mutex (release_work()).
  std::atomic<std::size_t> pending{0};
  mutable std::mutex gate_mutex;
  mutable std::condition_variable gate_cv;

  std::atomic<bool> shutdown{false};
  std::atomic<std::uint64_t> force_count{0};
  std::atomic<std::uint64_t> signal_count{0};
  std::atomic<std::uint64_t> callback_errors{0};

  // Trigger record and callbacks, under `mutex`.
  mutable std::mutex mutex;
  mutable std::condition_variable shutdown_cv;  // wait_for_shutdown()
  std::condition_variable running_cv;           // remove_callback()
  Source source = Source::none;
  int signo = 0;
  std::string reason;
  std::string force_reason;
  std::chrono::steady_clock::time_point triggered_at{};
  std::vector<Entry> callbacks;
  std::vector<Running> running;
  CallbackId next_id = 1;

  // Signal capture, under capture_mutex. Watchers are joined outside it, so
  // a callback on a watcher may call capture_signals()/release_signals().
  mutable std::mutex capture_mutex;
  std::unique_ptr<Watcher> watcher;
  /// Watchers stopped from their own thread, joined later by another thread.
  std::vector<std::unique_ptr<Watcher>> zombies;

  bool trigger(Source from, int number, std::string_view why) noexcept;
  void force(std::string_view why) noexcept;
  void run_callbacks(const std::vector<CallbackId>& ids, Kind kind) noexcept;
  void invoke(const Callback& fn) noexcept;
  std::vector<CallbackId> ids_of_locked(Kind kind) const;
  CallbackId add_callback(Kind kind, Callback fn);

  void watch(Watcher& w) noexcept;
  void on_signal(int number) noexcept;
  std::unique_ptr<Watcher> start_watcher_locked();
  std::unique_ptr<Watcher> stop_capture_locked();
  std::vector<std::unique_ptr<Watcher>> take_zombies_or_throw();
};

std::vector<Shutdown::CallbackId> Shutdown::Impl::ids_of_locked(Kind kind) const {
  std::vector<CallbackId> ids;
  for (const auto& entry : callbacks) {
    if (entry.kind == kind) ids.push_back(entry.id);
  }
  return ids;
}

bool Shutdown::Impl::trigger(Source from, int number, std::string_view why) noexcept {
  std::vector<CallbackId> ids;
  {
    std::lock_guard lock(mutex);
    if (source != Source::none) return false;
    source = from;
    signo = number;
    triggered_at = std::chrono::steady_clock::now();
    shutdown.store(true);
    try {
      reason.assign(why);
      ids = ids_of_locked(Kind::trigger);
    } catch (const std::bad_alloc&) {
      callback_errors.fetch_add(1);  // the shutdown itself still happens
    }
  }
  shutdown_cv.notify_all();
  log::logger()->info("shutdown triggered ({}: {})", source_name(from), why);
  run_callbacks(ids, Kind::trigger);
  return true;
}

void Shutdown::Impl::force(std::string_view why) noexcept {
  trigger(Source::call, 0, why);
  std::vector<CallbackId> ids;
  std::uint64_t count = 0;
  {
    std::lock_guard lock(mutex);
    count = force_count.fetch_add(1) + 1;
    try {
      force_reason.assign(why);
      ids = ids_of_locked(Kind::force);
    } catch (const std::bad_alloc&) {
      callback_errors.fetch_add(1);
    }
  }
  log::logger()->warn("shutdown forced ({}, request {})", why, count);
  run_callbacks(ids, Kind::force);
}

void Shutdown::Impl::invoke(const Callback& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    callback_errors.fetch_add(1);
    log::logger()->error("shutdown callback threw: {}", e.what());
  } catch (...) {
    callback_errors.fetch_add(1);
    log::logger()->error("shutdown callback threw a non-std::exception");
  }
}

// Each callback is looked up again right before it runs, so one removed in
// the meantime is skipped, and it is marked running so that
// remove_callback() can wait for it.
void Shutdown::Impl::run_callbacks(const std::vector<CallbackId>& ids, Kind kind) noexcept {
  const auto self = std::this_thread::get_id();
  for (const auto id : ids) {
    std::shared_ptr<Callback> fn;
    try {
      std::lock_guard lock(mutex);
      const auto it = std::find_if(callbacks.begin(), callbacks.end(),
                                   [&](const Entry& entry) { return entry.id == id; });
      if (it == callbacks.end()) continue;
      fn = it->fn;
      if (kind == Kind::trigger) callbacks.erase(it);  // runs once
      running.push_back({id, self});
    } catch (const std::bad_alloc&) {
      callback_errors.fetch_add(1);
      log::logger()->error("shutdown callback {} skipped: out of memory", id);
      continue;
    }
    invoke(*fn);
    std::lock_guard lock(mutex);
    const auto it = std::find_if(running.begin(), running.end(),
                                 [&](const Running& r) { return r.id == id && r.thread == self; });
    if (it != running.end()) running.erase(it);
    running_cv.notify_all();
  }
}

Shutdown::CallbackId Shutdown::Impl::add_callback(Kind kind, Callback fn) {
  if (!fn) throw std::invalid_argument("ebb::lifecycle::Shutdown: empty callback");
  auto shared = std::make_shared<Callback>(std::move(fn));
  bool run_now = false;
  CallbackId id = 0;
  {
    std::lock_guard lock(mutex);
    id = next_id++;
    if (kind == Kind::trigger) {
      run_now = source != Source::none;
      if (!run_now) callbacks.push_back({id, kind, shared});
    } else {
      callbacks.push_back({id, kind, shared});
      run_now = force_count.load() > 0;
    }
  }
  if (run_now) invoke(*shared);
  return id;
}

// ---- signals -------------------------------------------------------------------

void Shutdown::Impl::on_signal(int number) noexcept {
  const auto count = signal_count.fetch_add(1) + 1;
  if (count == 1) {
    trigger(Source::signal, number, Shutdown::signal_name(number));
    return;
  }
  try {
    force(std::string(Shutdown::signal_name(number)) + " (signal #" + std::to_string(count) + ")");
  } catch (const std::bad_alloc&) {
    force(Shutdown::signal_name(number));
  }
}

void Shutdown::Impl::watch(Watcher& w) noexcept {
  std::array<unsigned char, 64> buffer{};
  for (;;) {
    const auto n = ::read(w.read_fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) log::logger()->error("shutdown watcher: read failed: errno {}", errno);
      return;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[static_cast<std::size_t>(i)] == 0 || w.stop.load()) return;
      on_signal(buffer[static_cast<std::size_t>(i)]);
    }
  }
}

std::unique_ptr<Shutdown::Impl::Watcher> Shutdown::Impl::start_watcher_locked() {
  auto w = std::make_unique<Watcher>();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "ebb::lifecycle::Shutdown: pipe2");
  }
  w->read_fd = fds[0];
  w->write_fd = fds[1];
  // The watcher blocks in read(); only the handler's end must not block.
  const int flags = ::fcntl(w->read_fd, F_GETFL);
  if (flags < 0 || ::fcntl(w->read_fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "ebb::lifecycle::Shutdown: fcntl");
  }
  w->slot = claim_slot(w->write_fd);
  if (w->slot < 0) {
    throw std::length_error("ebb::lifecycle::Shutdown: more than " +
                            std::to_string(kMaxCapturingInstances) +
                            " objects capture signals at once");
  }
  try {
    w->thread = std::thread([this, raw = w.get()] { watch(*raw); });
  } catch (...) {
    free_slot(w->slot);
    throw;
  }
  return w;
}

std::unique_ptr<Shutdown::Impl::Watcher> Shutdown::Impl::stop_capture_locked() {
  if (!watcher) return nullptr;
  auto w = std::move(watcher);
  {
    std::lock_guard lock(g_registry_mutex);
    for (int signo = 1; signo <= kMaxSignal; ++signo) {
      if ((w->mask & bit(signo)) != 0) uninstall_locked(signo);
    }
  }
  free_slot(w->slot);
  w->stop.store(true);
  const unsigned char stop_byte = 0;
  // The pipe is empty enough in any sane run; if it is full, the watcher is
  // busy reading and will see `stop` on its next byte anyway.
  [[maybe_unused]] const auto n = ::write(w->write_fd, &stop_byte, 1);
  if (w->thread.get_id() == std::this_thread::get_id()) {
    zombies.push_back(std::move(w));
    return nullptr;
  }
  return w;
}

std::vector<std::unique_ptr<Shutdown::Impl::Watcher>> Shutdown::Impl::take_zombies_or_throw() {
  std::lock_guard lock(capture_mutex);
  for (const auto& zombie : zombies) {
    if (zombie->thread.get_id() == std::this_thread::get_id()) {
      throw std::logic_error(
          "ebb::lifecycle::Shutdown::capture_signals: called on a watcher thread that "
          "release_signals() already stopped");
    }
  }
  return std::exchange(zombies, {});
}

// ---- Shutdown ------------------------------------------------------------------

Shutdown::Shutdown() : impl_(std::make_unique<Impl>()) {}

Shutdown::~Shutdown() {
  {
    std::lock_guard lock(impl_->capture_mutex);
    const auto self = std::this_thread::get_id();
    bool on_watcher = impl_->watcher && impl_->watcher->thread.get_id() == self;
    for (const auto& zombie : impl_->zombies) on_watcher |= zombie->thread.get_id() == self;
    if (on_watcher) {
      std::fputs("ebb::lifecycle::Shutdown destroyed from its own watcher thread (a callback)\n",
                 stderr);
      std::abort();
    }
  }
  release_signals();
  impl_->zombies.clear();  // joins
  std::size_t left = 0;
  {
    // Waits for a release_work() still inside its critical section.
    std::lock_guard lock(impl_->gate_mutex);
    left = impl_->pending.load();
  }
  if (left != 0) {
    std::fprintf(stderr,
                 "ebb::lifecycle::Shutdown destroyed with %zu WorkGuard(s) outstanding: "
                 "the Shutdown must outlive its guards\n",
                 left);
    std::abort();
  }
}

void Shutdown::capture_signals(std::initializer_list<int> signals) {
  std::uint64_t wanted = 0;
  for (const int signo : signals) {
    validate_signal(signo);
    wanted |= bit(signo);
  }
  impl_->take_zombies_or_throw().clear();  // joins outside capture_mutex

  std::unique_lock lock(impl_->capture_mutex);
  const bool started_now = !impl_->watcher;
  if (started_now) impl_->watcher = impl_->start_watcher_locked();
  auto& w = *impl_->watcher;
  const auto added = wanted & ~w.mask;
  int failed_errno = 0;
  {
    std::lock_guard registry(g_registry_mutex);
    // Publish interest before installing: a signal right after sigaction()
    // must already reach this object.
    g_slots[static_cast<std::size_t>(w.slot)].mask.store(w.mask | added);
    for (int signo = 1; signo <= kMaxSignal && failed_errno == 0; ++signo) {
      if ((added & bit(signo)) == 0) continue;
      try {
        install_locked(signo);
        w.mask |= bit(signo);
      } catch (const std::system_error& e) {
        failed_errno = e.code().value();
      }
    }
    if (failed_errno != 0) g_slots[static_cast<std::size_t>(w.slot)].mask.store(w.mask);
  }
  if (failed_errno == 0) return;
  if (started_now) {
    auto stopped = impl_->stop_capture_locked();
    lock.unlock();
    stopped.reset();
  }
  throw std::system_error(failed_errno, std::generic_category(),
                          "ebb::lifecycle::Shutdown::capture_signals: sigaction");
}

void Shutdown::release_signals() {
  std::unique_ptr<Impl::Watcher> stopped;
  {
    std::lock_guard lock(impl_->capture_mutex);
    stopped = impl_->stop_capture_locked();
  }
  stopped.reset();  // joins, outside capture_mutex
}

bool Shutdown::capturing_signals() const {
  std::lock_guard lock(impl_->capture_mutex);
  return impl_->watcher != nullptr;
}

std::uint64_t Shutdown::signal_count() const noexcept { return impl_->signal_count.load(); }

void Shutdown::trigger(std::string_view reason) noexcept {
  impl_->trigger(Source::call, 0, reason);
}

void Shutdown::force(std::string_view reason) noexcept { impl_->force(reason); }

bool Shutdown::is_shutdown() const noexcept { return impl_->shutdown.load(); }
bool Shutdown::force_requested() const noexcept { return impl_->force_count.load() > 0; }
std::uint64_t Shutdown::force_count() const noexcept { return impl_->force_count.load(); }

Source Shutdown::source() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->source;
}

int Shutdown::signal_number() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->signo;
}

std::string Shutdown::reason() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->reason;
}

std::string Shutdown::force_reason() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->force_reason;
}

std::chrono::steady_clock::time_point Shutdown::triggered_at() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->triggered_at;
}

bool Shutdown::wait_for_shutdown(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->shutdown_cv.wait_until(lock, deadline_after(timeout),
                                       [&] { return impl_->shutdown.load(); });
}

void Shutdown::wait_for_shutdown() const {
  std::unique_lock lock(impl_->mutex);
  impl_->shutdown_cv.wait(lock, [&] { return impl_->shutdown.load(); });
}

Shutdown::CallbackId Shutdown::on_trigger(Callback fn) {
  return impl_->add_callback(Kind::trigger, std::move(fn));
}

Shutdown::CallbackId Shutdown::on_force(Callback fn) {
  return impl_->add_callback(Kind::force, std::move(fn));
}

bool Shutdown::remove_callback(CallbackId id) {
  std::unique_lock lock(impl_->mutex);
  auto& callbacks = impl_->callbacks;
  const auto it = std::find_if(callbacks.begin(), callbacks.end(),
                               [&](const Impl::Entry& entry) { return entry.id == id; });
  const bool found = it != callbacks.end();
  if (found) callbacks.erase(it);
  const auto self = std::this_thread::get_id();
  impl_->running_cv.wait(lock, [&] {
    return std::none_of(impl_->running.begin(), impl_->running.end(),
                        [&](const Impl::Running& r) { return r.id == id && r.thread != self; });
  });
  return found;
}

std::uint64_t Shutdown::callback_errors() const noexcept { return impl_->callback_errors.load(); }

// ---- work gate --------------------------------------------------------------------

WorkGuard Shutdown::start_work() noexcept {
  impl_->pending.fetch_add(1);
  return WorkGuard(this);
}

// Dekker-style with trigger(): increment, then look at the flag (both
// seq_cst). Either the drain's read of `pending` sees this increment, or this
// load sees the flag and backs out.
std::optional<WorkGuard> Shutdown::try_start_work() noexcept {
  impl_->pending.fetch_add(1);
  if (impl_->shutdown.load()) {
    release_work();
    return std::nullopt;
  }
  return WorkGuard(this);
}

std::size_t Shutdown::pending_count() const noexcept { return impl_->pending.load(); }

bool Shutdown::wait_pending_for(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->gate_mutex);
  return impl_->gate_cv.wait_until(lock, deadline_after(timeout),
                                   [&] { return impl_->pending.load() == 0; });
}

void Shutdown::release_work() noexcept {
  auto& pending = impl_->pending;
  auto count = pending.load(std::memory_order_relaxed);
  while (count > 1) {
    // Not the last guard: nobody can observe zero from this release.
    if (pending.compare_exchange_weak(count, count - 1)) return;
  }
  std::lock_guard lock(impl_->gate_mutex);
  if (pending.fetch_sub(1) == 1) impl_->gate_cv.notify_all();
}

const char* Shutdown::signal_name(int signo) noexcept {
  switch (signo) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGILL:
      return "SIGILL";
    case SIGTRAP:
      return "SIGTRAP";
    case SIGABRT:
      return "SIGABRT";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGKILL:
      return "SIGKILL";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGALRM:
      return "SIGALRM";
    case SIGTERM:
      return "SIGTERM";
    case SIGCHLD:
      return "SIGCHLD";
    case SIGCONT:
      return "SIGCONT";
    case SIGSTOP:
      return "SIGSTOP";
    case SIGTSTP:
      return "SIGTSTP";
    case SIGTTIN:
      return "SIGTTIN";
    case SIGTTOU:
      return "SIGTTOU";
    case SIGURG:
      return "SIGURG";
    case SIGXCPU:
      return "SIGXCPU";
    case SIGXFSZ:
      return "SIGXFSZ";
    case SIGVTALRM:
      return "SIGVTALRM";
    case SIGPROF:
      return "SIGPROF";
    case SIGWINCH:
      return "SIGWINCH";
    case SIGSYS:
      return "SIGSYS";
    default:
      return "unknown";
  }
}

// ---- WorkGuard ---------------------------------------------------------------------

WorkGuard::WorkGuard(WorkGuard&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}

WorkGuard& WorkGuard::operator=(WorkGuard&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
  }
  return *this;
}

WorkGuard::~WorkGuard() { release(); }

void WorkGuard::release() noexcept {
  if (auto* owner = std::exchange(owner_, nullptr)) owner->release_work();
}

}  // namespace ebb::lifecycle
