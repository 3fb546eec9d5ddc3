// store_bench: SqliteMessageStore throughput and resume-read latency.
//
//   store_bench [dir] [--quick]
//
// Writes its databases under `dir` (default: a fresh directory in the system
// temp dir, removed at exit) and prints one line per measurement:
//   - appends/s for append() one at a time (each caller waits for its
//     commit) and append_async() (queued, group-committed), from 1 and 4
//     threads, with synchronous=NORMAL (and FULL for the blocking case);
//   - the latency of read_after(room, seq, 10000), the resume case.
// Bodies are 100 bytes, spread over 16 rooms.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "ebb/store/sqlite_message_store.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using ebb::websocket::SqliteMessageStore;
using ebb::websocket::SqliteStoreOptions;
using ebb::websocket::SqliteSynchronous;
namespace fs = std::filesystem;

constexpr int kRooms = 16;
const std::string kBody(100, 'x');

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string room_of(std::size_t i) { return "room-" + std::to_string(i % kRooms); }

/// append_async() that, on queue_full, waits for the writer with flush() and
/// retries: the producer side of backpressure.
void append_queued(SqliteMessageStore& store, const std::string& room,
                   std::atomic<std::uint64_t>& failed) {
  for (;;) {
    bool full = false;
    store.append_async(room, kBody, [&full, &failed](std::uint64_t, std::error_code ec) {
      if (ec == ebb::websocket::store_error::queue_full)
        full = true;  // inline on this thread: `full` is still alive
      else if (ec)
        failed.fetch_add(1);
    });
    if (!full) return;
    store.flush();
  }
}

/// Each of `threads` threads calls append() `per_thread` times.
double bench_sync(const std::string& path, SqliteStoreOptions opts, int threads, int per_thread) {
  SqliteMessageStore store(path, opts);
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) store.append(room_of(t * per_thread + i), kBody);
    });
  for (auto& w : workers) w.join();
  return threads * per_thread / seconds_since(start);
}

/// Each of `threads` threads queues `per_thread` append_async() calls (on
/// queue_full it waits with flush() and retries); the clock stops when all
/// are committed. Also reports the mean batch size the writer saw.
double bench_async(const std::string& path, int threads, int per_thread, double* mean_batch) {
  std::atomic<std::uint64_t> failed{0};  // outlives the store's callbacks
  SqliteMessageStore store(path);
  const auto start = Clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i)
        append_queued(store, room_of(t * per_thread + i), failed);
    });
  for (auto& w : workers) w.join();
  store.flush();
  const double rate = threads * per_thread / seconds_since(start);
  const auto stats = store.stats();
  *mean_batch = stats.commits ? double(stats.messages_committed) / double(stats.commits) : 0;
  if (failed.load() != 0)
    std::printf("  (%llu appends failed)\n", (unsigned long long)failed.load());
  return rate;
}

/// read_after(room, after, 10000) latency over `rounds` reads at varied
/// offsets in a room of `total` messages.
void bench_read(const std::string& path, int total, int rounds) {
  std::atomic<std::uint64_t> failed{0};  // outlives the store's callbacks
  SqliteMessageStore store(path);
  for (int i = 0; i < total; ++i) append_queued(store, "resume", failed);
  store.flush();
  std::vector<double> ms;
  std::size_t got = 0;
  for (int r = 0; r < rounds; ++r) {
    const std::uint64_t after = (r * 7919ULL) % std::uint64_t(total - 10000);
    const auto start = Clock::now();
    got = store.read_after("resume", after, 10000).size();
    ms.push_back(seconds_since(start) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("read_after 10000 of %d msgs    p50 %.2f ms  p90 %.2f ms  max %.2f ms  (%zu rows)\n",
              total, ms[ms.size() / 2], ms[ms.size() * 9 / 10], ms.back(), got);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  fs::path dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick")
      quick = true;
    else
      dir = arg;
  }
  const bool own_dir = dir.empty();
  if (own_dir) dir = fs::temp_directory_path() / ("ebb_store_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const int scale = quick ? 10 : 1;
  int db = 0;
  const auto next_db = [&] { return (dir / ("bench" + std::to_string(db++) + ".db")).string(); };

  std::printf("SqliteMessageStore bench (SQLite %s, %zu-byte bodies, %d rooms)\n",
              sqlite3_libversion(), kBody.size(), kRooms);
  SqliteStoreOptions normal;
  SqliteStoreOptions full;
  full.synchronous = SqliteSynchronous::full;
  std::printf("append()       1 thread  NORMAL  %10.0f appends/s\n",
              bench_sync(next_db(), normal, 1, 20000 / scale));
  std::printf("append()       4 threads NORMAL  %10.0f appends/s\n",
              bench_sync(next_db(), normal, 4, 10000 / scale));
  std::printf("append()       1 thread  FULL    %10.0f appends/s\n",
              bench_sync(next_db(), full, 1, 2000 / scale));
  std::printf("append()       4 threads FULL    %10.0f appends/s\n",
              bench_sync(next_db(), full, 4, 1000 / scale));
  double batch = 0;
  const double a1 = bench_async(next_db(), 1, 500000 / scale, &batch);
  std::printf("append_async() 1 thread  NORMAL  %10.0f appends/s  (mean batch %.0f)\n", a1, batch);
  const double a4 = bench_async(next_db(), 4, 125000 / scale, &batch);
  std::printf("append_async() 4 threads NORMAL  %10.0f appends/s  (mean batch %.0f)\n", a4, batch);
  bench_read(next_db(), 200000 / scale, quick ? 20 : 100);

  if (own_dir) fs::remove_all(dir);
  return 0;
}
