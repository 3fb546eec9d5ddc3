// Built against an installed ebb by tests/install/check.sh: proves that
// find_package(ebb CONFIG) gives ebb::ebb and that both entry headers work.
#include <ebb.hpp>
#include <ebb/websocket.hpp>

int main() {
  ebb::websocket::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  ebb::websocket::Server ws{options};
  ws.start();
  bool ok = ws.port() != 0;
  ws.stop();
  return ok && ws.state() == ebb::websocket::LifecycleState::stopped ? 0 : 1;
}
