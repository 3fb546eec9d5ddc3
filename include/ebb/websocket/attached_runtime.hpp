#pragma once
// ebb::websocket::AttachedRuntime: one lifecycle for an HTTP App and a
// WebSocket Server sharing one RuntimeExecutor (DESIGN.md §1, §2).
//
//   ebb::App app;
//   auto executor = std::make_shared<ebb::executor::RuntimeExecutor>(4);
//   ebb::websocket::Server ws{app.config(), executor};
//   ebb::websocket::AttachedRuntime runtime{app, ws, executor};  // starts ws
//   app.run(8080);                  // SIGTERM: HTTP drain + ws.stop_async()
//   runtime.finalize_shutdown();    // ws.stop(), then executor->stop()
//
// The order it guarantees: the WebSocket drain starts with the HTTP drain;
// the executor stops only after every WebSocket session has ended, so work
// that callbacks post during the drain still runs; nothing is stopped twice.
//
// Threads: request_stop() is non-blocking and safe from any thread, any
// callback and a signal-watching thread. finalize_shutdown() blocks; safe
// to call from several threads at once (one does the work, the others wait
// for it), never from a WebSocket I/O thread (it throws std::logic_error,
// as Server::stop() does) or an executor worker.
// Lifetime: app, ws and executor must outlive the runtime. The callbacks it
// registers capture shared state, not `this`, and that state outlives the
// object: a callback running after the runtime is gone does nothing.
#include <functional>
#include <memory>
#include <string>

namespace ebb {
class App;
}
namespace ebb::executor {
class RuntimeExecutor;
}

namespace ebb::websocket {

class Server;

class AttachedRuntime {
 public:
  /// Starts `ws` (unless already started) and registers the app's shutdown
  /// callback (→ ws.stop_async()), force callback (→ ws.force_async()) and
  /// drained callback (→ ws.stop(), so app.run() returns when both drains
  /// are done).
  AttachedRuntime(ebb::App& app, Server& ws,
                  std::shared_ptr<ebb::executor::RuntimeExecutor> executor);
  /// finalize_shutdown(), defensively: errors are logged, not thrown.
  ~AttachedRuntime();
  AttachedRuntime(const AttachedRuntime&) = delete;
  AttachedRuntime& operator=(const AttachedRuntime&) = delete;

  /// Starts the drain of both: app.stop() and ws.stop_async(). Never blocks;
  /// idempotent.
  void request_stop() noexcept;
  /// ws.stop() (waits for the WebSocket drain and joins its threads), then
  /// executor->stop() (runs what is queued), then the finalizers. Exactly once, however often and
  /// from however many threads it is called; later calls return when the
  /// first has finished.
  void finalize_shutdown();

  /// Teardown that must come after every callback is done: closing stores,
  /// flushing bridges, writing final metrics. finalize_shutdown() runs these
  /// after ws.stop() and executor->stop(), in the order they were added,
  /// each once; an exception is logged and the next one still runs.
  void add_finalizer(std::string name, std::function<void()> f);

  bool stop_requested() const noexcept;
  bool finalized() const noexcept;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ebb::websocket
