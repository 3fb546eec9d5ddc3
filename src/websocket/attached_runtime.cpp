#include "ebb/websocket/attached_runtime.hpp"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "ebb/executor/runtime_executor.hpp"
#include "ebb/http/app.hpp"
#include "ebb/websocket/server.hpp"
#include "log/log.hpp"

namespace ebb::websocket {

// Shared by the runtime object and the callbacks it registers on the app.
struct AttachedRuntime::State {
  ebb::App* app = nullptr;
  Server* ws = nullptr;
  std::shared_ptr<ebb::executor::RuntimeExecutor> executor;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> finalized{false};
  std::atomic<bool> detached{false};  // the runtime is gone: callbacks do nothing
  std::mutex finalize_mutex;
  std::vector<std::pair<std::string, std::function<void()>>> finalizers;  // under finalize_mutex
};

AttachedRuntime::AttachedRuntime(ebb::App& app, Server& ws,
                                 std::shared_ptr<ebb::executor::RuntimeExecutor> executor)
    : state_(std::make_shared<State>()) {
  state_->app = &app;
  state_->ws = &ws;
  state_->executor = std::move(executor);
  std::weak_ptr<State> weak = state_;
  app.set_shutdown_callback([weak] {
    auto s = weak.lock();
    if (!s || s->detached.load()) return;
    s->stop_requested.store(true);
    s->ws->stop_async();
  });
  app.set_force_callback([weak] {
    auto s = weak.lock();
    if (!s || s->detached.load()) return;
    s->ws->force_async();
  });
  // app.run() waits here, with signals still captured, so that a second
  // signal during the WebSocket drain forces it instead of killing us.
  app.set_drained_callback([weak] {
    auto s = weak.lock();
    if (!s || s->detached.load()) return;
    s->ws->stop();
  });
  if (ws.state() == LifecycleState::starting) ws.start();
}

AttachedRuntime::~AttachedRuntime() {
  try {
    finalize_shutdown();
  } catch (const std::exception& e) {
    log::logger()->critical("AttachedRuntime destroyed without a clean finalize: {}", e.what());
  }
  state_->detached.store(true);
}

void AttachedRuntime::request_stop() noexcept {
  state_->stop_requested.store(true);
  state_->ws->stop_async();
  state_->app->stop();
}

void AttachedRuntime::finalize_shutdown() {
  std::lock_guard lock(state_->finalize_mutex);
  if (state_->finalized.load()) return;
  state_->stop_requested.store(true);
  state_->ws->stop();  // throws on a WebSocket I/O thread, before anything changed
  if (state_->executor) state_->executor->stop();
  for (auto& [name, f] : state_->finalizers) {
    try {
      f();
    } catch (const std::exception& e) {
      log::logger()->error("finalizer \"{}\" threw: {}", name, e.what());
    }
  }
  state_->finalizers.clear();
  state_->finalized.store(true);
}

void AttachedRuntime::add_finalizer(std::string name, std::function<void()> f) {
  std::lock_guard lock(state_->finalize_mutex);
  if (state_->finalized.load())
    throw std::logic_error("AttachedRuntime::add_finalizer after finalize_shutdown");
  state_->finalizers.emplace_back(std::move(name), std::move(f));
}

bool AttachedRuntime::stop_requested() const noexcept { return state_->stop_requested.load(); }
bool AttachedRuntime::finalized() const noexcept { return state_->finalized.load(); }

}  // namespace ebb::websocket
