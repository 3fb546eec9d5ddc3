#pragma once
// SqliteMessageStore: the embedded default MessageStore (one SQLite file, WAL).
//
//   ebb::websocket::SqliteMessageStore store{"messages.db"};
//   store.append_async("lobby", text, [&](std::uint64_t seq, std::error_code ec) {
//     if (!ec) ws.broadcast_text_to_room("lobby", envelope(seq, text));  // yours
//   });
//   auto missed = store.read_after("lobby", last_seen_seq, 1000);
//
// How it writes: appends go into one bounded queue; one writer thread takes
// everything queued (up to max_batch messages) and commits it in a single
// transaction (group commit), so a burst of small appends costs one commit.
// Seqs are assigned inside that transaction, in queue order. A commit that
// fails (disk full, I/O error) fails every append of its batch with
// store_error::write_failed; none of them consumed a seq. Reads use their
// own connections (a small pool) and run beside the writer: WAL lets readers
// see the last commit without waiting for the writer.
//
// Durability: WAL mode, with `synchronous` chosen by the options.
// - SqliteSynchronous::normal (default): a committed append survives the
//   process crashing or being killed (kill -9): the commit is in the WAL file,
//   in the OS page cache. An OS crash or power loss may lose the last commits
//   (never corrupts the file).
// - SqliteSynchronous::full: each commit is fsync'ed before it is reported;
//   survives power loss, at the cost of one fsync per commit (group commit
//   amortizes it across the batch).
//
// One SqliteMessageStore per file per process. Other processes may read the
// file; a second writer process works (commits serialize on SQLite's lock,
// waiting up to busy_timeout) but is not what this is built for.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ebb/store/message_store.hpp"

namespace ebb::websocket {

/// SQLite's `PRAGMA synchronous` in WAL mode; see the header comment.
enum class SqliteSynchronous { normal, full };

struct SqliteStoreOptions {
  SqliteSynchronous synchronous = SqliteSynchronous::normal;

  /// Retention: keep at most this many messages per room (0 = unlimited).
  /// Enforced in every commit for the rooms it touched, and by every pass.
  std::size_t max_messages_per_room = 0;
  /// Retention: delete messages older than this (0 = unlimited). Enforced by
  /// the periodic pass and apply_retention(). Deletes the oldest messages of
  /// a room up to the first one younger than max_age (a room's history stays
  /// one contiguous seq range even if the clock stepped back).
  std::chrono::milliseconds max_age{0};
  /// How often the writer thread runs a retention pass over all rooms
  /// (0 = never; apply_retention() still works). Only when a limit is set.
  std::chrono::milliseconds retention_interval{std::chrono::seconds{60}};

  /// Most messages committed in one transaction.
  std::size_t max_batch = 1024;
  /// Most appends waiting for the writer. At the cap append_async fails fast
  /// with store_error::queue_full; append() waits for space.
  std::size_t max_queue = 65536;
  /// Most read connections open at once; more concurrent readers wait.
  std::size_t read_connections = 4;
  /// How long SQLite waits for a lock held by another connection or process.
  std::chrono::milliseconds busy_timeout{std::chrono::seconds{5}};

  /// The clock for StoredMessage::unix_ms and max_age (tests inject one).
  /// Empty = std::chrono::system_clock::now. Called on the writer thread.
  std::function<std::chrono::system_clock::time_point()> clock;
};

/// Counters since construction (a snapshot; each value is read atomically).
struct SqliteStoreStats {
  std::uint64_t commits = 0;  ///< successful write transactions with messages
  std::uint64_t messages_committed = 0;
  std::uint64_t failed_commits = 0;  ///< batches rolled back (their appends got write_failed)
  std::uint64_t messages_failed = 0;
  std::uint64_t rejected_queue_full = 0;  ///< append_async calls refused at the cap
  std::uint64_t retention_deleted = 0;    ///< messages deleted by retention
  std::uint64_t callback_exceptions = 0;  ///< exceptions thrown by `done` (logged, swallowed)
  std::size_t queued = 0;                 ///< appends waiting right now
};

class SqliteMessageStore final : public MessageStore {
 public:
  /// Observes each successful commit: how long the transaction took (BEGIN to
  /// COMMIT) and how many messages it held. Runs on the writer thread, before
  /// the batch's callbacks; must be cheap and must not throw.
  using CommitObserver =
      std::function<void(std::chrono::nanoseconds batch_duration, std::size_t messages)>;

  /// Opens (or creates, with its parent directories) the database at `path`,
  /// switches it to WAL, checks or creates the schema, and starts the writer
  /// thread. Throws std::system_error whose what() names the path and the
  /// cause: store_error::open_failed (cannot create/open the file),
  /// store_error::not_a_database (garbage or corrupt file),
  /// store_error::incompatible_schema (another application's database, or a
  /// newer ebb's). Throws std::invalid_argument for an empty or ":memory:"
  /// path or zero-valued max_batch / max_queue / read_connections.
  explicit SqliteMessageStore(std::string path, SqliteStoreOptions opts = {});

  /// close(). Precondition: not called from the store's own writer thread
  /// (from `done` or the commit observer), which cannot join itself.
  ~SqliteMessageStore() override;

  SqliteMessageStore(const SqliteMessageStore&) = delete;
  SqliteMessageStore& operator=(const SqliteMessageStore&) = delete;

  /// See MessageStore. append(), flush(), apply_retention() and close()
  /// throw std::system_error(std::errc::resource_deadlock_would_occur) when
  /// called from the writer thread (from a callback), where they would wait
  /// on themselves.
  std::uint64_t append(std::string_view room, std::string_view body) override;
  void append_async(std::string room, std::string body, AppendHandler done) override;
  std::vector<StoredMessage> read_after(std::string_view room, std::uint64_t after_seq,
                                        std::size_t limit) override;
  std::uint64_t last_seq(std::string_view room) override;
  std::vector<std::string> rooms() override;
  void flush() override;
  void close() override;

  /// Runs a retention pass now, on the writer thread, after the appends
  /// queued before it; returns how many messages it deleted. Blocks until
  /// done. Throws std::system_error (closed, write_failed).
  std::size_t apply_retention();

  /// Replaces the commit observer (empty to remove). Thread-safe; the new
  /// observer applies from the next commit on.
  void set_commit_observer(CommitObserver observer);

  SqliteStoreStats stats() const;
  const std::string& path() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ebb::websocket
