// websocketpp (Debian libwebsocketpp-dev 0.8.2) echo server: the "websocketpp" peer of
// bench/run_echo.sh.
//
//   websocketpp_echo --port N [--address A]      (default address 127.0.0.1)
//
// Set up the way websocketpp's own performance example (examples/testee_server) is:
// server<config::asio>, all log channels cleared, TCP_NODELAY on every accepted
// socket, run() on one thread, echo with the received opcode.
//
// Shutdown (SIGINT/SIGTERM), as websocketpp's FAQ describes a clean exit:
// stop_listening(), close(going_away) on every open connection, and let run()
// return when the io_service runs out of work. A second signal gets the default
// disposition (the process dies).
#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace {

using Server = websocketpp::server<websocketpp::config::asio>;
using websocketpp::connection_hdl;

class EchoServer {
 public:
  EchoServer() {
    server_.clear_access_channels(websocketpp::log::alevel::all);
    server_.clear_error_channels(websocketpp::log::elevel::all);
    server_.init_asio();
    server_.set_reuse_addr(true);
    // testee_server sets TCP_NODELAY from the socket-init handler, but 0.8.2 calls that
    // one before the socket is open; the tcp-post-init handler runs once it is accepted.
    server_.set_tcp_post_init_handler([this](connection_hdl hdl) {
      boost::system::error_code ec;
      server_.get_con_from_hdl(hdl)->get_raw_socket().set_option(
          boost::asio::ip::tcp::no_delay(true), ec);
    });
    server_.set_open_handler([this](connection_hdl hdl) { on_open(hdl); });
    server_.set_close_handler([this](connection_hdl hdl) { open_.erase(hdl); });
    server_.set_message_handler(
        [this](connection_hdl hdl, Server::message_ptr msg) { on_message(hdl, msg); });
  }

  // Blocks until every connection is gone after a signal.
  void run(const std::string& address, unsigned short port) {
    server_.listen(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(address), port));
    server_.start_accept();
    boost::asio::signal_set signals(server_.get_io_service(), SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      go_away();
      signals.clear();  // restores the default dispositions: a second signal kills
    });
    std::cout << "websocketpp_echo listening on " << address << ':' << port << std::endl;
    server_.run();
  }

 private:
  void on_open(connection_hdl hdl) {
    if (stopping_) return close_going_away(hdl);  // finished its handshake during shutdown
    open_.insert(hdl);
  }

  void on_message(connection_hdl hdl, Server::message_ptr msg) {
    websocketpp::lib::error_code ec;
    server_.send(hdl, msg->get_payload(), msg->get_opcode(), ec);
  }

  void go_away() {
    stopping_ = true;
    websocketpp::lib::error_code ec;
    server_.stop_listening(ec);
    // Copy: close handlers erase from open_.
    std::vector<connection_hdl> all(open_.begin(), open_.end());
    for (const auto& hdl : all) close_going_away(hdl);
  }

  void close_going_away(connection_hdl hdl) {
    websocketpp::lib::error_code ec;
    server_.close(hdl, websocketpp::close::status::going_away, "", ec);
  }

  Server server_;
  std::set<connection_hdl, std::owner_less<connection_hdl>> open_;
  bool stopping_ = false;
};

bool parse_options(int argc, char** argv, std::string& address, unsigned short& port) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) {
      port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    } else if (std::strcmp(argv[i], "--address") == 0) {
      address = argv[i + 1];
    } else {
      return false;
    }
  }
  return port != 0 && argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  unsigned short port = 0;
  if (!parse_options(argc, argv, address, port)) {
    std::cerr << "usage: websocketpp_echo --port N [--address A]\n";
    return EXIT_FAILURE;
  }
  try {
    EchoServer server;
    server.run(address, port);
  } catch (const std::exception& e) {
    std::cerr << "websocketpp_echo: " << e.what() << '\n';
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
