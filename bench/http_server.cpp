// ebb's side of bench/run_http.sh: the two routes of peers/beast_http.cpp on
// ebb::App, with the same headers (Content-Type, Content-Length, Date).
//
//   http_server --port N [--threads T] [--address A]   (defaults: 1 thread, 127.0.0.1)
//
// SIGINT/SIGTERM drain it (App::run).
#include <cstdlib>
#include <cstring>
#include <ebb/http/app.hpp>
#include <exception>
#include <iostream>

namespace {

bool parse_options(int argc, char** argv, ebb::AppOptions& out) {
  out.host = "127.0.0.1";
  out.port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) {
      out.port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
    } else if (std::strcmp(argv[i], "--address") == 0) {
      out.host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--threads") == 0) {
      out.io_threads = static_cast<unsigned>(std::atoi(argv[i + 1]));
    } else {
      return false;
    }
  }
  return out.port != 0 && out.io_threads >= 1 && argc % 2 == 1;
}

}  // namespace

int main(int argc, char** argv) {
  ebb::AppOptions opt;
  if (!parse_options(argc, argv, opt)) {
    std::cerr << "usage: http_server --port N [--threads T] [--address A]\n";
    return EXIT_FAILURE;
  }
  try {
    const std::uint16_t port = opt.port;
    const unsigned threads = opt.io_threads;
    ebb::App app{std::move(opt)};
    app.get("/plaintext",
            [](ebb::Request&, ebb::Response& res) { res.body("Hello, World!", "text/plain"); });
    app.get("/json", [](ebb::Request&, ebb::Response& res) {
      res.json({{"message", "Hello, World!"}});  // serialized per request, as in the peer
    });
    std::cout << "http_server listening on port " << port << " with " << threads << " thread(s)"
              << std::endl;
    app.run(port);
  } catch (const std::exception& e) {
    std::cerr << "http_server: " << e.what() << '\n';
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
