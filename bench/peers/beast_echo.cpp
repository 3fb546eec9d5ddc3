// Boost.Beast WebSocket echo server: the "Beast" peer of bench/run_echo.sh and the
// drain comparison.
//
//   beast_echo --port N [--address A]      (default address 127.0.0.1)
//
// Written the way Beast's own async example (example/websocket/server/async) is,
// with the choices a competent single-threaded user would make:
//  - one io_context run by the main thread, concurrency hint 1, no strands (Beast
//    documents constructing the stream straight from the io_context for a
//    single-threaded program);
//  - websocket::stream<tcp_stream>, suggested server timeouts, auto_fragment(false),
//    a flat_buffer per session, echo with the received text/binary flag;
//  - no TCP_NODELAY: neither Beast's examples nor its docs set it.
//
// Shutdown (SIGINT/SIGTERM), graceful as Beast's docs describe it: close the
// acceptor, start async_close(going_away) on every session, keep reading until the
// peer's Close arrives (websocket::error::closed) or Beast's close timeout fires,
// and let io_context::run() return once no work is left. A second signal gets the
// default disposition (the process dies: the forced path).
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <unordered_set>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class Session;

// Sessions alive on the (single) I/O thread; only touched from that thread.
using SessionSet = std::unordered_set<Session*>;

// One client connection: accept, then read → write the same message → read ...
// Lifetime: owned by the handlers it has outstanding (shared_from_this).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, SessionSet& sessions)
      : ws_(std::move(socket)), sessions_(sessions) {
    sessions_.insert(this);
  }
  ~Session() { sessions_.erase(this); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void run() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.auto_fragment(false);
    ws_.async_accept(beast::bind_front_handler(&Session::on_accept, shared_from_this()));
  }

  // Starts the closing handshake with 1001. Beast queues the Close frame behind a
  // write in progress, so this is valid whether the session is reading or writing.
  // A session still in its opening handshake is simply disconnected.
  void go_away() {
    if (closing_) return;
    closing_ = true;
    if (!open_) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    ws_.async_close(websocket::close_code::going_away,
                    beast::bind_front_handler(&Session::on_close, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec || closing_) return;
    open_ = true;
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    // websocket::error::closed is the normal end; eof/reset/timeout end it too.
    if (ec) return;
    if (closing_) {
      // After async_close only reads are allowed: drop data until the peer's Close.
      buffer_.consume(buffer_.size());
      return do_read();
    }
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(),
                    beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return;
    buffer_.consume(buffer_.size());
    do_read();
  }

  void on_close(beast::error_code) {}  // the pending read reports the end

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  SessionSet& sessions_;
  bool open_ = false;
  bool closing_ = false;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, const tcp::endpoint& endpoint, SessionSet& sessions)
      : ioc_(ioc), acceptor_(ioc), sessions_(sessions) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  void run() { do_accept(); }

  void stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void do_accept() {
    acceptor_.async_accept(ioc_,
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;  // stopped
    if (!ec) std::make_shared<Session>(std::move(socket), sessions_)->run();
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  SessionSet& sessions_;
};

struct Options {
  std::string address = "127.0.0.1";
  unsigned short port = 0;
};

bool parse_options(int argc, char** argv, Options& out) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) {
      out.port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    } else if (std::strcmp(argv[i], "--address") == 0) {
      out.address = argv[i + 1];
    } else {
      return false;
    }
  }
  return out.port != 0 && argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse_options(argc, argv, opt)) {
    std::cerr << "usage: beast_echo --port N [--address A]\n";
    return EXIT_FAILURE;
  }
  try {
    net::io_context ioc{1};
    SessionSet sessions;
    auto listener = std::make_shared<Listener>(
        ioc, tcp::endpoint{net::ip::make_address(opt.address), opt.port}, sessions);
    listener->run();

    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code ec, int) {
      if (ec) return;
      listener->stop();
      for (Session* s : sessions) s->go_away();  // posts only; the set is not modified here
      // Restores the default dispositions: a second signal kills the process.
      signals.clear();
    });
    std::cout << "beast_echo listening on " << opt.address << ':' << opt.port << std::endl;
    ioc.run();
  } catch (const std::exception& e) {
    std::cerr << "beast_echo: " << e.what() << '\n';
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
