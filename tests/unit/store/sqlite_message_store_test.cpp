#include "ebb/store/sqlite_message_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "unit/store/store_test_support.hpp"
#include "unit/support/wait.hpp"

namespace {

using ebb::test::Counter;
using ebb::test::kDeadline;
using ebb::test::TempDir;
using ebb::websocket::SqliteMessageStore;
using ebb::websocket::SqliteStoreOptions;
using ebb::websocket::store_error;
using ebb::websocket::StoredMessage;
using namespace std::chrono_literals;

std::vector<std::uint64_t> seqs_of(const std::vector<StoredMessage>& messages) {
  std::vector<std::uint64_t> out;
  for (const auto& m : messages) out.push_back(m.seq);
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (auto s = first; s <= last; ++s) out.push_back(s);
  return out;
}

/// Runs `fn` and returns the std::error_code of the std::system_error it
/// threw (a default error_code if it threw nothing), keeping what().
template <typename Fn>
std::error_code error_of(Fn fn, std::string* what = nullptr) {
  try {
    fn();
  } catch (const std::system_error& e) {
    if (what) *what = e.what();
    return e.code();
  }
  return {};
}

/// Runs SQL on a database file directly, behind the store's back.
void raw_exec(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

/// A clock the test moves by hand.
struct ManualClock {
  std::atomic<std::int64_t> unix_ms{1'700'000'000'000};
  std::function<std::chrono::system_clock::time_point()> fn() {
    return [this] {
      return std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms.load()));
    };
  }
};

/// Holds the writer thread inside an append callback until released, so a
/// test can fill the queue deterministically.
class WriterGate {
 public:
  explicit WriterGate(SqliteMessageStore& store) {
    // The callback keeps its own handle on the future: once it has signalled
    // `entered_`, the gate (on the test's stack) may be gone before it waits.
    store.append_async(
        "gate", "gate",
        [this, released = release_.get_future().share()](std::uint64_t, std::error_code) {
          entered_.add();
          released.wait();
        });
    EXPECT_TRUE(entered_.wait_for(1));
  }
  ~WriterGate() { open(); }
  void open() {
    if (!opened_.exchange(true)) release_.set_value();
  }

 private:
  Counter entered_;
  std::promise<void> release_;
  std::atomic<bool> opened_{false};
};

// ---- sequence ids ------------------------------------------------------------

TEST(SqliteMessageStore, SeqStartsAtOneAndIsPerRoom) {
  TempDir dir;
  SqliteMessageStore store(dir.file("m.db"));
  EXPECT_EQ(store.last_seq("a"), 0u);
  EXPECT_EQ(store.append("a", "a1"), 1u);
  EXPECT_EQ(store.append("a", "a2"), 2u);
  EXPECT_EQ(store.append("b", "b1"), 1u);
  EXPECT_EQ(store.append("a", "a3"), 3u);
  EXPECT_EQ(store.append("b", "b2"), 2u);
  EXPECT_EQ(store.last_seq("a"), 3u);
  EXPECT_EQ(store.last_seq("b"), 2u);
  EXPECT_EQ(store.last_seq("c"), 0u);
  EXPECT_EQ(store.rooms(), (std::vector<std::string>{"a", "b"}));
}

TEST(SqliteMessageStore, ReadAfterHonoursRangeAndLimit) {
  TempDir dir;
  ManualClock clock;
  SqliteStoreOptions opts;
  opts.clock = clock.fn();
  SqliteMessageStore store(dir.file("m.db"), opts);
  for (int i = 1; i <= 10; ++i) store.append("a", "m" + std::to_string(i));
  store.append("b", "other room");

  auto all = store.read_after("a", 0, 100);
  ASSERT_EQ(seqs_of(all), range(1, 10));
  EXPECT_EQ(all[0], (StoredMessage{"a", 1, clock.unix_ms.load(), "m1"}));
  EXPECT_EQ(all[9].body, "m10");

  EXPECT_EQ(seqs_of(store.read_after("a", 3, 4)), range(4, 7));
  EXPECT_EQ(seqs_of(store.read_after("a", 8, 100)), range(9, 10));
  EXPECT_TRUE(store.read_after("a", 10, 100).empty());
  EXPECT_TRUE(store.read_after("a", 1000, 100).empty());
  EXPECT_TRUE(store.read_after("a", 0, 0).empty());
  EXPECT_TRUE(store.read_after("nope", 0, 100).empty());
  EXPECT_EQ(seqs_of(store.read_after("a", 0, SIZE_MAX)), range(1, 10));
  EXPECT_EQ(store.read_after("b", 0, 10).at(0).body, "other room");
}

TEST(SqliteMessageStore, BodiesAndRoomNamesAreBinarySafe) {
  TempDir dir;
  SqliteMessageStore store(dir.file("m.db"));
  const std::string room("r\0om \xC3\xA9", 8);
  const std::string body("a\0b\xff\x00z", 6);
  store.append(room, body);
  store.append(room, "");
  auto got = store.read_after(room, 0, 10);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].room, room);
  EXPECT_EQ(got[0].body, body);
  EXPECT_EQ(got[1].body, "");
  EXPECT_EQ(store.rooms(), std::vector<std::string>{room});
}

TEST(SqliteMessageStore, PersistsAcrossReopenAndSeqContinues) {
  TempDir dir;
  const auto path = dir.file("nested/dirs/m.db");  // parent directories are created
  {
    SqliteMessageStore store(path);
    for (int i = 0; i < 5; ++i) store.append("a", "x" + std::to_string(i));
    store.append("b", "y");
  }
  SqliteMessageStore store(path);
  EXPECT_EQ(store.last_seq("a"), 5u);
  EXPECT_EQ(store.last_seq("b"), 1u);
  EXPECT_EQ(store.read_after("a", 4, 10).at(0).body, "x4");
  EXPECT_EQ(store.append("a", "after reopen"), 6u);
  EXPECT_EQ(store.append("b", "after reopen"), 2u);
  EXPECT_EQ(store.rooms(), (std::vector<std::string>{"a", "b"}));
}

// ---- retention ---------------------------------------------------------------

TEST(SqliteMessageStore, RetentionByCountKeepsNewestAndSeqMonotonic) {
  TempDir dir;
  const auto path = dir.file("m.db");
  {
    SqliteStoreOptions opts;
    opts.max_messages_per_room = 5;
    SqliteMessageStore store(path, opts);
    for (int i = 1; i <= 12; ++i) store.append("a", std::to_string(i));
    store.append("b", "b1");
    // Enforced in every commit for the rooms it touched.
    EXPECT_EQ(seqs_of(store.read_after("a", 0, 100)), range(8, 12));
    EXPECT_EQ(seqs_of(store.read_after("b", 0, 100)), range(1, 1));
    EXPECT_EQ(store.stats().retention_deleted, 7u);
  }
  // A smaller limit applies on the next pass; the counter survives.
  SqliteStoreOptions opts;
  opts.max_messages_per_room = 2;
  opts.retention_interval = 0ms;
  SqliteMessageStore store(path, opts);
  EXPECT_EQ(store.apply_retention(), 3u);
  EXPECT_EQ(seqs_of(store.read_after("a", 0, 100)), range(11, 12));
  EXPECT_EQ(store.last_seq("a"), 12u);
  EXPECT_EQ(store.append("a", "13"), 13u);
  EXPECT_EQ(seqs_of(store.read_after("a", 0, 100)), range(12, 13));
  EXPECT_EQ(store.apply_retention(), 0u);
}

TEST(SqliteMessageStore, RetentionByAgeDeletesOldPrefixAndKeepsCounter) {
  TempDir dir;
  ManualClock clock;
  SqliteStoreOptions opts;
  opts.max_age = 1000ms;
  opts.retention_interval = 0ms;  // only apply_retention(): deterministic
  opts.clock = clock.fn();
  SqliteMessageStore store(dir.file("m.db"), opts);
  for (int i = 0; i < 3; ++i) store.append("a", "old");
  clock.unix_ms += 500;
  store.append("a", "newer");
  store.append("a", "newer");
  store.append("b", "newer");

  EXPECT_EQ(store.apply_retention(), 0u);  // nothing older than 1 s yet
  clock.unix_ms += 600;                    // the first three are 1.1 s old
  EXPECT_EQ(store.apply_retention(), 3u);
  EXPECT_EQ(seqs_of(store.read_after("a", 0, 100)), range(4, 5));

  clock.unix_ms += 10'000;  // everything expired
  EXPECT_EQ(store.apply_retention(), 3u);
  EXPECT_TRUE(store.read_after("a", 0, 100).empty());
  EXPECT_EQ(store.last_seq("a"), 5u);
  EXPECT_EQ(store.rooms(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(store.append("a", "fresh"), 6u);
  EXPECT_EQ(seqs_of(store.read_after("a", 0, 100)), range(6, 6));
  EXPECT_EQ(store.stats().retention_deleted, 6u);
}

TEST(SqliteMessageStore, PeriodicRetentionRunsOnTheWriterThread) {
  TempDir dir;
  ManualClock clock;
  SqliteStoreOptions opts;
  opts.max_age = 1000ms;
  opts.retention_interval = 10ms;
  opts.clock = clock.fn();
  SqliteMessageStore store(dir.file("m.db"), opts);
  store.append("a", "old");
  clock.unix_ms += 5000;
  EXPECT_TRUE(ebb::test::eventually([&] { return store.read_after("a", 0, 10).empty(); }));
  EXPECT_EQ(store.last_seq("a"), 1u);
}

// ---- append_async ------------------------------------------------------------

TEST(SqliteMessageStore, AsyncCallbacksRunInQueueOrderOnTheWriterThread) {
  TempDir dir;
  SqliteMessageStore store(dir.file("m.db"));
  struct Done {
    std::string room;
    std::uint64_t seq;
    std::error_code ec;
    std::thread::id thread;
  };
  std::mutex mutex;
  std::vector<std::pair<int, Done>> done;  // (queue position, result)
  const std::vector<std::string> rooms{"a", "b", "c"};
  constexpr int kCount = 3000;
  for (int i = 0; i < kCount; ++i) {
    const auto& room = rooms[(i * 7) % 3];
    store.append_async(room, "m" + std::to_string(i),
                       [&, i, room](std::uint64_t seq, std::error_code ec) {
                         std::lock_guard lock(mutex);
                         done.push_back({i, Done{room, seq, ec, std::this_thread::get_id()}});
                       });
  }
  store.flush();
  std::lock_guard lock(mutex);
  ASSERT_EQ(done.size(), static_cast<std::size_t>(kCount));
  std::map<std::string, std::uint64_t> last;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(done[i].first, i) << "callbacks out of queue order";
    const auto& d = done[i].second;
    ASSERT_FALSE(d.ec) << d.ec.message();
    EXPECT_NE(d.thread, std::this_thread::get_id());
    EXPECT_EQ(d.seq, last[d.room] + 1) << "room " << d.room;
    last[d.room] = d.seq;
  }
  // And what was stored under each seq is what was queued there.
  for (int i = 0; i < 20; ++i) {
    const auto& d = done[i].second;
    EXPECT_EQ(store.read_after(d.room, d.seq - 1, 1).at(0).body, "m" + std::to_string(i));
  }
}

TEST(SqliteMessageStore, AsyncFailsFastWhenQueueIsFull) {
  TempDir dir;
  SqliteStoreOptions opts;
  opts.max_queue = 4;
  SqliteMessageStore store(dir.file("m.db"), opts);
  Counter ok;
  {
    WriterGate gate(store);  // the writer is stuck in a callback
    for (int i = 0; i < 4; ++i)
      store.append_async("a", "x", [&](std::uint64_t, std::error_code ec) {
        if (!ec) ok.add();
      });
    std::error_code rejected;
    const auto caller = std::this_thread::get_id();
    std::thread::id ran_on;
    store.append_async("a", "x", [&](std::uint64_t seq, std::error_code ec) {
      rejected = ec;
      ran_on = std::this_thread::get_id();
      EXPECT_EQ(seq, 0u);
    });
    EXPECT_EQ(rejected, store_error::queue_full);
    EXPECT_EQ(rejected, std::errc::resource_unavailable_try_again);
    EXPECT_EQ(ran_on, caller);  // inline, before append_async returned
    EXPECT_EQ(store.stats().rejected_queue_full, 1u);
    EXPECT_EQ(store.stats().queued, 4u);
  }
  store.flush();
  EXPECT_EQ(ok.value(), 4);
  EXPECT_EQ(store.last_seq("a"), 4u);
}

TEST(SqliteMessageStore, GroupCommitPutsEverythingQueuedInOneTransaction) {
  TempDir dir;
  SqliteStoreOptions opts;
  opts.max_batch = 30;
  SqliteMessageStore store(dir.file("m.db"), opts);
  std::mutex mutex;
  std::vector<std::size_t> batches;
  store.set_commit_observer([&](std::chrono::nanoseconds duration, std::size_t messages) {
    EXPECT_GT(duration.count(), 0);
    std::lock_guard lock(mutex);
    batches.push_back(messages);
  });
  {
    WriterGate gate(store);
    for (int i = 0; i < 100; ++i) store.append_async("a", "x", nullptr);
  }
  store.flush();
  std::lock_guard lock(mutex);
  // The gate's own message was observed before the gate's callback ran.
  EXPECT_EQ(batches, (std::vector<std::size_t>{1, 30, 30, 30, 10}));
  EXPECT_EQ(store.stats().commits, 5u);
  EXPECT_EQ(store.stats().messages_committed, 101u);
}

TEST(SqliteMessageStore, BlockingMembersFromACallbackFailInsteadOfDeadlocking) {
  TempDir dir;
  SqliteMessageStore store(dir.file("m.db"));
  std::vector<std::error_code> codes;
  std::uint64_t nested_seq = 0;
  store.append_async("a", "x", [&](std::uint64_t, std::error_code) {
    codes.push_back(error_of([&] { store.flush(); }));
    codes.push_back(error_of([&] { store.append("a", "y"); }));
    codes.push_back(error_of([&] { store.close(); }));
    codes.push_back(error_of([&] { store.apply_retention(); }));
    // Queuing from a callback is allowed.
    store.append_async("a", "z", [&](std::uint64_t seq, std::error_code) { nested_seq = seq; });
  });
  store.flush();
  store.flush();  // the nested append was queued during the first flush
  ASSERT_EQ(codes.size(), 4u);
  for (const auto& ec : codes) EXPECT_EQ(ec, std::errc::resource_deadlock_would_occur);
  EXPECT_EQ(nested_seq, 2u);
}

TEST(SqliteMessageStore, ThrowingCallbackIsCountedAndTheWriterGoesOn) {
  TempDir dir;
  SqliteMessageStore store(dir.file("m.db"));
  store.append_async(
      "a", "x", [](std::uint64_t, std::error_code) { throw std::runtime_error("callback bug"); });
  EXPECT_EQ(store.append("a", "y"), 2u);
  EXPECT_EQ(store.stats().callback_exceptions, 1u);
}

TEST(SqliteMessageStore, FailedCommitFailsItsWholeBatchAndConsumesNoSeq) {
  TempDir dir;
  const auto path = dir.file("m.db");
  SqliteMessageStore store(path);
  EXPECT_EQ(store.append("a", "before"), 1u);
  // Failure injection behind the store's back: inserting "boom" aborts.
  raw_exec(path,
           "CREATE TRIGGER inject BEFORE INSERT ON messages WHEN CAST(NEW.body AS TEXT) = 'boom' "
           "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");

  std::string what;
  EXPECT_EQ(error_of([&] { store.append("a", "boom"); }, &what), store_error::write_failed);
  EXPECT_NE(what.find("injected failure"), std::string::npos) << what;

  std::vector<std::error_code> codes;
  {
    WriterGate gate(store);  // so the three below share one transaction
    for (const char* body : {"x", "boom", "y"})
      store.append_async("a", body, [&](std::uint64_t seq, std::error_code ec) {
        EXPECT_EQ(seq, 0u);
        codes.push_back(ec);
      });
  }
  store.flush();
  EXPECT_EQ(codes, std::vector<std::error_code>(3, store_error::write_failed));
  EXPECT_EQ(store.stats().failed_commits, 2u);
  EXPECT_EQ(store.stats().messages_failed, 4u);

  // Rolled back entirely: the counter did not move, the store goes on.
  EXPECT_EQ(store.last_seq("a"), 1u);
  EXPECT_EQ(store.append("a", "after"), 2u);
  EXPECT_EQ(seqs_of(store.read_after("a", 0, 10)), range(1, 2));
}

// ---- concurrency -------------------------------------------------------------

TEST(SqliteMessageStore, ConcurrentAppendsGiveUniqueGapFreeSeqsPerRoom) {
  TempDir dir;
  SqliteMessageStore store(dir.file("m.db"));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 400;
  std::mutex mutex;
  std::map<std::string, std::vector<std::uint64_t>> seen;
  std::atomic<bool> stop_reading{false};
  std::atomic<int> bad_reads{0};

  // A reader beside the writers: every read is one contiguous ascending run.
  std::thread reader([&] {
    while (!stop_reading.load()) {
      auto got = store.read_after("r0", 0, 100000);
      for (std::size_t i = 0; i < got.size(); ++i)
        if (got[i].seq != i + 1) bad_reads.fetch_add(1);
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string room = "r" + std::to_string(i % 2);
        if ((i + t) % 2 == 0) {
          const auto seq = store.append(room, "sync");
          std::lock_guard lock(mutex);
          seen[room].push_back(seq);
        } else {
          store.append_async(room, "async", [&, room](std::uint64_t seq, std::error_code ec) {
            EXPECT_FALSE(ec);
            std::lock_guard lock(mutex);
            seen[room].push_back(seq);
          });
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  store.flush();
  stop_reading = true;
  reader.join();

  EXPECT_EQ(bad_reads.load(), 0);
  std::lock_guard lock(mutex);
  for (const auto& room : {"r0", "r1"}) {
    auto seqs = seen[room];
    std::sort(seqs.begin(), seqs.end());
    EXPECT_EQ(seqs, range(1, kThreads * kPerThread / 2)) << room;
    EXPECT_EQ(seqs_of(store.read_after(room, 0, 100000)), seqs) << room;
  }
}

// ---- close -------------------------------------------------------------------

TEST(SqliteMessageStore, CloseCommitsEverythingQueuedAndIsIdempotent) {
  TempDir dir;
  const auto path = dir.file("m.db");
  std::atomic<int> ok{0};
  {
    SqliteMessageStore store(path);
    for (int i = 0; i < 1000; ++i)
      store.append_async("a", "x", [&](std::uint64_t, std::error_code ec) {
        if (!ec) ok.fetch_add(1);
      });
    std::thread other([&] { store.close(); });  // concurrent close
    store.close();
    other.join();
    EXPECT_EQ(ok.load(), 1000);  // close() returned: every callback ran
    store.close();               // and again
    store.flush();               // nothing left: returns at once
  }
  SqliteMessageStore store(path);
  EXPECT_EQ(store.last_seq("a"), 1000u);
}

TEST(SqliteMessageStore, EverythingAfterCloseFailsWithClosed) {
  TempDir dir;
  SqliteMessageStore store(dir.file("m.db"));
  store.append("a", "x");
  store.close();

  std::string what;
  EXPECT_EQ(error_of([&] { store.append("a", "y"); }, &what), store_error::closed);
  EXPECT_NE(what.find("m.db"), std::string::npos) << what;
  EXPECT_EQ(error_of([&] { store.read_after("a", 0, 10); }), store_error::closed);
  EXPECT_EQ(error_of([&] { store.last_seq("a"); }), store_error::closed);
  EXPECT_EQ(error_of([&] { store.rooms(); }), store_error::closed);
  EXPECT_EQ(error_of([&] { store.apply_retention(); }), store_error::closed);

  std::error_code async_ec;
  std::uint64_t async_seq = 99;
  store.append_async("a", "z", [&](std::uint64_t seq, std::error_code ec) {
    async_seq = seq;
    async_ec = ec;
  });
  EXPECT_EQ(async_ec, store_error::closed);
  EXPECT_EQ(async_ec, std::errc::operation_canceled);
  EXPECT_EQ(async_seq, 0u);
  store.append_async("a", "no callback", nullptr);  // nothing to report to: dropped
}

TEST(SqliteMessageStore, CloseReleasesBlockedSyncAppenders) {
  TempDir dir;
  SqliteStoreOptions opts;
  opts.max_queue = 1;
  SqliteMessageStore store(dir.file("m.db"), opts);
  WriterGate gate(store);
  store.append_async("a", "fills the queue", nullptr);
  auto blocked = std::async(
      std::launch::async, [&] { return error_of([&] { store.append("a", "waits for space"); }); });
  // append() is waiting for space; closing must release it with `closed`,
  // then drain what was queued once the writer is free.
  auto closing = std::async(std::launch::async, [&] { store.close(); });
  ASSERT_EQ(blocked.wait_for(kDeadline), std::future_status::ready);
  // The writer is stuck, so no space ever freed up: refused, not hung.
  EXPECT_EQ(blocked.get(), store_error::closed);
  gate.open();
  ASSERT_EQ(closing.wait_for(kDeadline), std::future_status::ready);
}

// ---- opening -------------------------------------------------------------------

TEST(SqliteMessageStore, UnopenablePathThrowsNamingPathAndCause) {
  TempDir dir;
  std::ofstream(dir.file("plain_file")) << "x";
  const auto under_file = dir.file("plain_file/sub/m.db");
  std::string what;
  EXPECT_EQ(error_of([&] { SqliteMessageStore s(under_file); }, &what), store_error::open_failed);
  EXPECT_NE(what.find(under_file), std::string::npos) << what;
  EXPECT_NE(what.find("cannot create directory"), std::string::npos) << what;

  // A directory where the file should be: SQLite's own message.
  EXPECT_EQ(error_of([&] { SqliteMessageStore s(dir.path().string()); }, &what),
            store_error::open_failed);
  EXPECT_NE(what.find(dir.path().string()), std::string::npos) << what;
  EXPECT_NE(what.find("unable to open database file"), std::string::npos) << what;
}

TEST(SqliteMessageStore, GarbageFileThrowsNotADatabase) {
  TempDir dir;
  const auto path = dir.file("garbage.db");
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 512; ++i) out << "this is not an SQLite database. ";
  }
  std::string what;
  EXPECT_EQ(error_of([&] { SqliteMessageStore s(path); }, &what), store_error::not_a_database);
  EXPECT_NE(what.find(path), std::string::npos) << what;
  EXPECT_NE(what.find("file is not a database"), std::string::npos) << what;
}

TEST(SqliteMessageStore, ForeignOrNewerDatabaseThrowsIncompatibleSchema) {
  TempDir dir;
  const auto foreign = dir.file("foreign.db");
  raw_exec(foreign, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
  std::string what;
  EXPECT_EQ(error_of([&] { SqliteMessageStore s(foreign); }, &what),
            store_error::incompatible_schema);
  EXPECT_NE(what.find("not an ebb message store"), std::string::npos) << what;

  const auto newer = dir.file("newer.db");
  { SqliteMessageStore s(newer); }
  raw_exec(newer, "PRAGMA user_version = 99");
  EXPECT_EQ(error_of([&] { SqliteMessageStore s(newer); }, &what),
            store_error::incompatible_schema);
  EXPECT_NE(what.find("schema version 99"), std::string::npos) << what;
}

TEST(SqliteMessageStore, InvalidArgumentsAreRejectedAtConstruction) {
  TempDir dir;
  EXPECT_THROW(SqliteMessageStore(""), std::invalid_argument);
  EXPECT_THROW(SqliteMessageStore(":memory:"), std::invalid_argument);
  SqliteStoreOptions opts;
  opts.max_batch = 0;
  EXPECT_THROW(SqliteMessageStore(dir.file("m.db"), opts), std::invalid_argument);
  opts = {};
  opts.max_queue = 0;
  EXPECT_THROW(SqliteMessageStore(dir.file("m.db"), opts), std::invalid_argument);
  opts = {};
  opts.read_connections = 0;
  EXPECT_THROW(SqliteMessageStore(dir.file("m.db"), opts), std::invalid_argument);
}

TEST(SqliteMessageStore, FileIsInWalModeAndFullSyncWorks) {
  TempDir dir;
  const auto path = dir.file("m.db");
  SqliteStoreOptions opts;
  opts.synchronous = ebb::websocket::SqliteSynchronous::full;
  SqliteMessageStore store(path, opts);
  EXPECT_EQ(store.append("a", "x"), 1u);
  EXPECT_TRUE(std::filesystem::exists(path + "-wal"));
  EXPECT_EQ(store.path(), path);
}

TEST(SqliteMessageStore, ErrorCategoryNamesEveryCode) {
  for (int v = 1; v <= static_cast<int>(store_error::incompatible_schema); ++v) {
    const auto ec = make_error_code(static_cast<store_error>(v));
    EXPECT_STREQ(ec.category().name(), "ebb.store");
    EXPECT_EQ(ec.message().find("unknown"), std::string::npos) << v;
  }
}

}  // namespace
