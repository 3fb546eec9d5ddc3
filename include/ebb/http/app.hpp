#pragma once
// ebb::App: the HTTP/1.1 application server, with routes, middleware, static
// files, health endpoints, a WebSocket hand-over, and a graceful drain.
//
//   ebb::App app;
//   app.get("/users/:id", [](ebb::Request& req, ebb::Response& res) {
//     res.json({{"id", req.param("id")}});
//   });
//   app.run(8080);   // blocks; SIGINT/SIGTERM drain it
//
// Threads: the app runs its own I/O threads (AppOptions::io_threads); a
// connection lives on one of them and its handlers run there, one request at
// a time, in order. Register routes, middleware and callbacks before
// listen()/run(); they must not change afterwards. stop(), force(), state(),
// port() and drain_report() are safe from any thread, including handlers.
// Lifetime: the App must outlive its run()/wait(); its destructor stops and
// joins (it must not run on one of its own I/O threads).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ebb/http/options.hpp"
#include "ebb/http/request.hpp"
#include "ebb/http/response.hpp"

namespace ebb::config {
class Config;
}
namespace ebb::websocket {
class Server;
class WebSocketMetrics;
}  // namespace ebb::websocket

namespace ebb {

namespace http::detail {
class AppCore;
}

/// Where the app is in its life (DESIGN.md §2). Moves only forward.
enum class AppState { starting, ready, draining, stopped };
const char* to_string(AppState s) noexcept;

/// How the HTTP drain went.
struct HttpDrainReport {
  bool happened = false;
  std::size_t in_flight_at_start = 0;  ///< requests being handled when it began
  std::size_t completed = 0;           ///< of those, answered before the deadline
  std::size_t forced = 0;              ///< connections cut at the deadline or by force()
  std::chrono::milliseconds duration{0};
  bool clean() const noexcept { return forced == 0; }
};

class App {
 public:
  using Handler = std::function<void(Request&, Response&)>;
  /// Runs before routing. Return false to answer with `res` as it is and
  /// skip the handler (authentication, rate limits).
  using Before = std::function<bool(Request&, Response&)>;
  /// Runs after the handler (or a before that returned false), before the
  /// response is written. Not for deferred responses.
  using After = std::function<void(Request&, Response&)>;

  /// Options from the environment and `.env` in the working directory.
  App();
  explicit App(const ebb::config::Config& cfg);
  explicit App(AppOptions options);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // ---- routes: "/users/:id" binds a segment, a final "/*" the rest ("*") ----
  App& get(std::string pattern, Handler h);
  App& post(std::string pattern, Handler h);
  App& put(std::string pattern, Handler h);
  App& patch(std::string pattern, Handler h);
  App& del(std::string pattern, Handler h);
  /// Any method token. HEAD is answered by GET routes without a body.
  App& route(std::string method, std::string pattern, Handler h);
  App& before(Before f);
  App& after(After f);
  /// Files under `root` at `url_prefix` (GET and HEAD): content types,
  /// ETag / Last-Modified with 304s, index.html for directories; never a
  /// file outside `root` (no "..", no symlink leading out).
  App& static_files(std::string url_prefix, std::filesystem::path root);
  /// Upgrade requests for `path` are handed to `server`, which owns and
  /// drains them like its own. Call before server.start(): the server then
  /// opens no listener of its own (single-port model). The app's drain (any
  /// trigger) calls server.stop_async(), whatever the shutdown callback is,
  /// so no handed-over session escapes it, and a forced drain calls
  /// server.force_async(); wait for it with server.stop().
  /// `server` must stay alive while the app serves and until its drain has
  /// started; ~App itself does not touch it.
  App& ws(std::string path, ebb::websocket::Server& server);

  /// Count requests (by method and status), their duration and those in
  /// flight in `metrics`, and serve its Prometheus text at `path` (GET).
  /// Before listen(); `metrics` must outlive the app.
  App& metrics(std::string path, ebb::websocket::WebSocketMetrics& metrics);

  /// Runs once, at the start of the drain (any trigger), on a thread that
  /// must not block: start other drains there. One slot: a later call
  /// replaces the callback (AttachedRuntime's too). Servers given to ws()
  /// need none: the drain calls their stop_async() after this callback.
  void set_shutdown_callback(std::function<void()> f);
  /// Runs once when the drain is forced (second signal, or force()), before
  /// the servers given to ws() are forced.
  void set_force_callback(std::function<void()> f);
  /// Runs inside run(), after the HTTP drain, while signals are still
  /// captured (a second signal still forces): the place to wait for other
  /// drains (AttachedRuntime waits for the WebSocket server here). May block.
  void set_drained_callback(std::function<void()> f);

  // ---- lifecycle ----
  /// Bind and serve (non-blocking). Returns the bound port. Throws
  /// std::system_error when the address cannot be bound. Once only.
  std::uint16_t listen(std::uint16_t port);
  std::uint16_t listen();  ///< on AppOptions::port
  /// listen(port), then block until the drain is done (and the drained
  /// callback returned). SIGINT/SIGTERM start the drain; a second one forces
  /// it. Signals are captured only inside run(); a signal that arrives after
  /// run() returned is ignored (if it had no handler before), so a program
  /// finishing its shutdown is not killed half-way.
  void run(std::uint16_t port);
  void run();  ///< on AppOptions::port
  /// Block until the app has stopped (drained and joined).
  void wait();
  /// Start the drain; never blocks; idempotent; any thread. Readiness turns
  /// 503 at once; the listener closes (after readiness_grace); idle
  /// keep-alive connections close at once; in-flight requests finish and
  /// their responses carry Connection: close; at shutdown_timeout the rest
  /// are cut. run()/wait() return when it is done.
  void stop() noexcept;
  /// Cut every connection now (the second signal). Starts the drain if needed.
  void force() noexcept;

  std::uint16_t port() const noexcept;
  AppState state() const noexcept;
  /// Final once wait()/run() returned; a live snapshot while draining.
  HttpDrainReport drain_report() const;
  /// Requests being handled now (deferred ones included).
  std::size_t in_flight() const noexcept;
  std::size_t connection_count() const noexcept;

  const AppOptions& options() const noexcept;
  /// The configuration the app was built from (empty map for App(AppOptions)).
  const ebb::config::Config& config() const noexcept;

 private:
  std::shared_ptr<http::detail::AppCore> core_;
};

}  // namespace ebb
