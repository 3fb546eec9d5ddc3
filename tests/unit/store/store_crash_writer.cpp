// Helper for store_crash_test: appends to a message store as fast as it can
// and prints "<seq> <index>\n" to stdout for every append that was
// acknowledged (append() returned, or append_async's callback reported
// success), writing each line before the next acknowledgement. The test
// kill -9s it mid-stream and checks every printed seq is in the database.
//
//   store_crash_writer <db path> <sync|async> <room>
//
// Stops on its own after 60 s or when stdout is gone (SIGPIPE), so a test
// that died cannot leave it running.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ebb/store/sqlite_message_store.hpp"

namespace {

void ack(std::uint64_t seq, std::uint64_t index) {
  char line[64];
  const int n =
      std::snprintf(line, sizeof line, "%llu %llu\n", static_cast<unsigned long long>(seq),
                    static_cast<unsigned long long>(index));
  for (int off = 0; off < n;) {
    const auto w = ::write(STDOUT_FILENO, line + off, n - off);
    if (w <= 0) std::_Exit(3);
    off += static_cast<int>(w);
  }
}

std::string body_of(std::uint64_t index) { return "message #" + std::to_string(index); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s <db path> <sync|async> <room>\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[2];
  const std::string room = argv[3];
  ebb::websocket::SqliteMessageStore store(argv[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool full = false;  // set inline by a refused append_async (same thread)
  for (std::uint64_t i = 1; std::chrono::steady_clock::now() < deadline; ++i) {
    if (mode == "sync") {
      ack(store.append(room, body_of(i)), i);
      continue;
    }
    for (;;) {  // async: on queue_full, wait for the writer and retry
      full = false;
      store.append_async(room, body_of(i), [i, &full](std::uint64_t seq, std::error_code ec) {
        if (ec == ebb::websocket::store_error::queue_full) {
          full = true;
        } else if (ec) {
          std::fprintf(stderr, "append failed: %s\n", ec.message().c_str());
          std::_Exit(4);
        } else {
          ack(seq, i);
        }
      });
      if (!full) break;
      store.flush();
    }
  }
  return 0;
}
