// Boost.Beast HTTP/1.1 server: the "Beast" peer of bench/run_http.sh.
//
//   beast_http --port N [--threads T] [--address A]   (defaults: 1 thread, 127.0.0.1)
//
//   GET /plaintext  →  200 "Hello, World!"                text/plain
//   GET /json       →  200 {"message":"Hello, World!"}    application/json
//   anything else   →  404
//
// Written the way Beast's own http_server_async example is, with the choices
// a competent user would make:
//  - one io_context run by T threads (the main thread among them); the acceptor
//    hands every connection a strand of its own (net::make_strand), so a
//    session's handlers never run concurrently;
//  - a Session per connection: beast::tcp_stream with a 30 s timeout per read,
//    a flat_buffer, http::request<string_body> read with http::async_read and a
//    response<string_body> written with http::async_write; keep-alive as the
//    request asks (HTTP/1.1 default), close on end_of_stream;
//  - the JSON body is serialized with Boost.JSON on every request, as ebb does;
//  - no TCP_NODELAY (Beast's examples do not set it).
// Headers are kept equal to ebb's: Content-Type, Content-Length and Date
// (ebb always sends Date, as RFC 9110 §6.6.1 asks of an origin server with a
// clock; here it is formatted once per second per thread), nothing else.
//
// SIGINT/SIGTERM stop the io_context, as the example does.
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// The IMF-fixdate of the current second, cached per thread.
std::string_view http_date_now() {
  thread_local std::time_t cached_second = -1;
  thread_local char buf[64];
  thread_local std::size_t len = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    len = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {buf, len};
}

http::response<http::string_body> make_response(const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(req.version());
  res.keep_alive(req.keep_alive());
  res.set(http::field::date, http_date_now());
  if (req.method() == http::verb::get && req.target() == "/plaintext") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain");
    res.body() = "Hello, World!";
  } else if (req.method() == http::verb::get && req.target() == "/json") {
    res.result(http::status::ok);
    res.set(http::field::content_type, "application/json");
    res.body() = boost::json::serialize(boost::json::object{{"message", "Hello, World!"}});
  } else {
    res.result(http::status::not_found);
    res.set(http::field::content_type, "text/plain");
    res.body() = "Not Found";
  }
  res.prepare_payload();
  return res;
}

// One connection: read a request, write its response, repeat while keep-alive.
// Lifetime: owned by the handler it has outstanding (shared_from_this).
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket&& socket) : stream_(std::move(socket)) {}

  // The socket's executor is this session's strand; start there.
  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    req_ = {};  // a fresh message per request (the parser needs an empty one)
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, req_,
                     beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec) return;
    res_ = make_response(req_);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return;
    if (!res_.keep_alive()) return do_close();
    do_read();
  }

  void do_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, const tcp::endpoint& endpoint)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  void run() { do_accept(); }

 private:
  void do_accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<Session>(std::move(socket))->run();
    do_accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
};

struct Options {
  std::string address = "127.0.0.1";
  unsigned short port = 0;
  int threads = 1;
};

bool parse_options(int argc, char** argv, Options& out) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) {
      out.port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    } else if (std::strcmp(argv[i], "--address") == 0) {
      out.address = argv[i + 1];
    } else if (std::strcmp(argv[i], "--threads") == 0) {
      out.threads = std::atoi(argv[i + 1]);
    } else {
      return false;
    }
  }
  return out.port != 0 && out.threads >= 1 && argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!parse_options(argc, argv, opt)) {
    std::cerr << "usage: beast_http --port N [--threads T] [--address A]\n";
    return EXIT_FAILURE;
  }
  try {
    net::io_context ioc{opt.threads};
    std::make_shared<Listener>(ioc, tcp::endpoint{net::ip::make_address(opt.address), opt.port})
        ->run();

    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) { ioc.stop(); });

    std::cout << "beast_http listening on " << opt.address << ':' << opt.port << " with "
              << opt.threads << " thread(s)" << std::endl;
    std::vector<std::thread> pool;
    pool.reserve(static_cast<std::size_t>(opt.threads - 1));
    for (int i = 1; i < opt.threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
  } catch (const std::exception& e) {
    std::cerr << "beast_http: " << e.what() << '\n';
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
