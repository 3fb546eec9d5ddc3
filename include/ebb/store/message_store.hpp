#pragma once
// The message store: durable, per-room sequenced history of room messages.
//
// Every room message gets a sequence id ("seq") from the store before it is
// broadcast; a client that reconnects with the last seq it saw asks
// read_after() for what it missed. SqliteMessageStore
// (<ebb/store/sqlite_message_store.hpp>) is the embedded default; other
// backends implement MessageStore.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ebb::websocket {

/// One stored room message.
struct StoredMessage {
  std::string room;
  std::uint64_t seq = 0;     ///< per-room sequence id, starting at 1
  std::int64_t unix_ms = 0;  ///< when the store assigned the seq (ms since the Unix epoch)
  std::string body;          ///< the message bytes, unchanged (binary-safe)

  friend bool operator==(const StoredMessage&, const StoredMessage&) = default;
};

/// Errors of the store module, as std::error_code (category "ebb.store").
enum class store_error {
  closed = 1,           ///< the store was closed (or is closing): nothing more is accepted
  queue_full,           ///< append_async: the write queue is at its cap (fail fast)
  write_failed,         ///< the commit failed (disk full, I/O error, lock timeout...)
  read_failed,          ///< a read query failed
  open_failed,          ///< the database file could not be opened or created
  not_a_database,       ///< the file exists but is not an SQLite database (or is corrupt)
  incompatible_schema,  ///< an SQLite database, but not an ebb store this build understands
};

/// The category, named "ebb.store". Portable conditions: closed compares equal
/// to std::errc::operation_canceled, queue_full to
/// std::errc::resource_unavailable_try_again.
const std::error_category& store_category() noexcept;

inline std::error_code make_error_code(store_error e) noexcept {
  return {static_cast<int>(e), store_category()};
}

/// Completion of append_async: the seq on success (0 with an error otherwise).
using AppendHandler = std::function<void(std::uint64_t seq, std::error_code ec)>;

/// A durable, per-room sequenced message log.
///
/// Contract for every implementation:
/// - All members are thread-safe: any thread may call any member at any time,
///   concurrently with the others, until the destructor starts.
/// - Sequence ids are per room, start at 1, increase by exactly 1 per
///   accepted message, and are never reused: not after retention deleted old
///   messages, not after a restart.
/// - Retention only ever deletes the oldest messages of a room, so what a
///   room holds is always the contiguous range [first stored seq, last_seq].
///   A reader that asked for `after_seq` and receives a first seq greater than
///   `after_seq + 1` knows the messages in between expired.
/// - Errors on the write path are std::error_code values of store_error
///   (handed to the callback, or thrown as std::system_error by the blocking
///   members); construction errors are exceptions.
class MessageStore {
 public:
  virtual ~MessageStore() = default;

  /// Appends `body` to `room` and returns its seq once the message is
  /// committed (durable to the degree the implementation promises).
  /// Blocks the caller until the commit. Throws std::system_error with a
  /// store_error code (closed, write_failed).
  virtual std::uint64_t append(std::string_view room, std::string_view body) = 0;

  /// Queues an append; never blocks on disk. `done(seq, {})` runs after the
  /// commit, on the store's writer thread, and the callbacks of accepted
  /// appends run in the order the appends were queued, so per room they run
  /// in seq order (broadcast from `done` and clients see seq order).
  /// `done(0, ec)` reports a failed commit (write_failed) the same way.
  ///
  /// When the append is rejected up front (store_error::closed, or
  /// store_error::queue_full when the queue is at its cap: the store fails
  /// fast rather than block an I/O thread), `done(0, ec)` runs inline on the
  /// calling thread before append_async returns; do not hold a lock that
  /// `done` takes. `done` must not throw; it must be cheap (it delays later
  /// commits). It may call append_async again, but not the blocking members.
  virtual void append_async(std::string room, std::string body, AppendHandler done) = 0;

  /// Up to `limit` messages of `room` with seq > after_seq, ascending by seq
  /// (empty if `limit` is 0 or there are none). Sees every append that
  /// completed before the call. Throws std::system_error (closed, read_failed).
  virtual std::vector<StoredMessage> read_after(std::string_view room, std::uint64_t after_seq,
                                                std::size_t limit) = 0;

  /// The highest seq ever assigned in `room` (0 if none), even if retention
  /// deleted that message. Throws std::system_error (closed, read_failed).
  virtual std::uint64_t last_seq(std::string_view room) = 0;

  /// Every room that ever received a message, sorted by name.
  virtual std::vector<std::string> rooms() = 0;

  /// Blocks until every append queued before the call is committed and its
  /// callback has run. After close() it returns at once (close committed
  /// everything that was accepted).
  virtual void flush() = 0;

  /// Commits everything queued (callbacks run), stops accepting appends and
  /// releases the backend. Idempotent and safe to call concurrently; later
  /// calls return once the first finished. After close(), appends fail with
  /// store_error::closed and reads throw it.
  virtual void close() = 0;
};

}  // namespace ebb::websocket

template <>
struct std::is_error_code_enum<ebb::websocket::store_error> : std::true_type {};
