#include "ebb/store/sqlite_message_store.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <future>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "log/log.hpp"
#include "store/sqlite_db.hpp"

namespace ebb::websocket {
namespace {

using store::detail::Connection;
using store::detail::ResetGuard;
using store::detail::SqliteFailure;
using store::detail::Statement;
using SteadyClock = std::chrono::steady_clock;

// PRAGMA application_id marks the file as ours ("ebbs"); PRAGMA user_version
// is the schema version. A newer schema gets a migration step in
// ensure_schema(), never an edit of kSchemaV1.
constexpr std::int64_t kApplicationId = 0x65626273;
constexpr std::int64_t kSchemaVersion = 1;

// rooms.last_seq is the per-room counter. Retention deletes messages only,
// never rooms, so seqs stay monotonic after every message of a room expired.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE rooms (
  id       INTEGER PRIMARY KEY,
  name     TEXT NOT NULL UNIQUE,
  last_seq INTEGER NOT NULL
);
CREATE TABLE messages (
  room_id INTEGER NOT NULL REFERENCES rooms (id),
  seq     INTEGER NOT NULL,
  unix_ms INTEGER NOT NULL,
  body    BLOB NOT NULL
);
CREATE UNIQUE INDEX messages_by_room_seq ON messages (room_id, seq);
)sql";

std::string context(const std::string& path) { return "SqliteMessageStore(\"" + path + "\")"; }

[[noreturn]] void throw_store(store_error code, const std::string& path, const std::string& what) {
  throw std::system_error(make_error_code(code), context(path) + ": " + what);
}

[[noreturn]] void throw_deadlock(const char* member) {
  throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                          std::string("SqliteMessageStore::") + member +
                              " called from the store's writer thread (a callback)");
}

void check_options(const std::string& path, const SqliteStoreOptions& opts) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0)
    throw std::invalid_argument(
        "SqliteMessageStore needs a plain file path (not empty, \":memory:\" or a URI)");
  if (opts.max_batch == 0) throw std::invalid_argument("SqliteStoreOptions::max_batch must be > 0");
  if (opts.max_queue == 0) throw std::invalid_argument("SqliteStoreOptions::max_queue must be > 0");
  if (opts.read_connections == 0)
    throw std::invalid_argument("SqliteStoreOptions::read_connections must be > 0");
  if (opts.max_age.count() < 0 || opts.retention_interval.count() < 0 ||
      opts.busy_timeout.count() < 0)
    throw std::invalid_argument("SqliteStoreOptions durations must not be negative");
}

void create_parent_directory(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec)
    throw_store(store_error::open_failed, path,
                "cannot create directory \"" + parent.string() + "\": " + ec.message());
}

void set_busy_timeout(Connection& db, std::chrono::milliseconds timeout) {
  const auto ms = std::min<std::int64_t>(timeout.count(), std::numeric_limits<int>::max());
  sqlite3_busy_timeout(db.get(), static_cast<int>(ms));
}

void rollback_quietly(Connection& db) noexcept {
  if (db.in_transaction()) sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

// Checks that the file is an ebb store of a version we know, creating the
// schema in an empty database. One IMMEDIATE transaction, so two processes
// opening a new file at once do not both create it.
void ensure_schema(Connection& db, const std::string& path) {
  db.exec("BEGIN IMMEDIATE");
  try {
    const auto app_id = db.query_int64("PRAGMA application_id");
    const auto version = db.query_int64("PRAGMA user_version");
    if ((app_id != 0 || version != 0) && app_id != kApplicationId)
      throw_store(store_error::incompatible_schema, path,
                  "an SQLite database of another application (application_id " +
                      std::to_string(app_id) + ")");
    if (version > kSchemaVersion)
      throw_store(store_error::incompatible_schema, path,
                  "schema version " + std::to_string(version) +
                      " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                      ")");
    if (version == 0) {
      if (db.query_int64("SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'") != 0)
        throw_store(store_error::incompatible_schema, path,
                    "an SQLite database that is not an ebb message store");
      db.exec(kSchemaV1);
      db.exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
      db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    }
    db.exec("COMMIT");
  } catch (...) {
    rollback_quietly(db);
    throw;
  }
}

Connection open_writer(const std::string& path, const SqliteStoreOptions& opts) {
  create_parent_directory(path);
  try {
    Connection db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    set_busy_timeout(db, opts.busy_timeout);
    // The first statement that reads the file: garbage fails here (NOTADB).
    const auto mode = db.query_text("PRAGMA journal_mode = WAL");
    if (mode != "wal")
      throw_store(store_error::open_failed, path,
                  "cannot enable WAL (journal_mode is " + mode + ")");
    db.exec(opts.synchronous == SqliteSynchronous::full ? "PRAGMA synchronous = FULL"
                                                        : "PRAGMA synchronous = NORMAL");
    ensure_schema(db, path);
    return db;
  } catch (const SqliteFailure& failure) {
    throw_store(failure.is_bad_file() ? store_error::not_a_database : store_error::open_failed,
                path, failure.what());
  }
}

std::int64_t to_unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

struct AppendResult {
  std::uint64_t seq = 0;
  std::error_code ec;
  std::string detail;
};

// One queued append. A blocking append() waits on `waiter`; an async one
// gets `done`.
struct Item {
  std::string room;
  std::string body;
  AppendHandler done;
  std::promise<AppendResult>* waiter = nullptr;
};

// One read connection with its prepared statements (statements declared
// after the connection: destroyed first).
struct Reader {
  Connection db;
  Statement read_after;
  Statement last_seq;
  Statement rooms;
};

// Where a room's seqs start in the batch being written.
struct RoomRun {
  std::size_t count = 0;
  std::int64_t id = 0;
  std::uint64_t next = 0;
};

}  // namespace

struct SqliteMessageStore::Impl {
  Impl(std::string path, SqliteStoreOptions opts);

  std::uint64_t append(std::string_view room, std::string_view body);
  void append_async(std::string room, std::string body, AppendHandler done);
  std::vector<StoredMessage> read_after(std::string_view room, std::uint64_t after_seq,
                                        std::size_t limit);
  std::uint64_t last_seq(std::string_view room);
  std::vector<std::string> rooms();
  void flush();
  void close();
  std::size_t apply_retention();
  void set_commit_observer(CommitObserver observer);
  SqliteStoreStats stats();

  bool on_writer_thread() const { return std::this_thread::get_id() == writer_id_; }
  bool retention_enabled() const {
    return opts_.max_messages_per_room > 0 || opts_.max_age.count() > 0;
  }
  std::int64_t now_ms() const {
    return to_unix_ms(opts_.clock ? opts_.clock() : std::chrono::system_clock::now());
  }

  // Writer thread.
  void writer_loop();
  void commit_batch(std::vector<Item>& batch);
  void write_batch(std::vector<Item>& batch);
  void run_retention(std::uint64_t ticket);
  std::size_t retention_pass();
  std::size_t delete_through(std::int64_t room_id, std::uint64_t seq);
  void deliver(Item& item, std::uint64_t seq, const std::error_code& ec, const std::string& detail);

  // Reader pool.
  class Lease;
  Lease lease_reader();
  std::unique_ptr<Reader> open_reader();
  void return_reader(std::unique_ptr<Reader> reader);
  [[noreturn]] void throw_read(const SqliteFailure& failure, std::string_view what);

  const std::string path_;
  const SqliteStoreOptions opts_;

  // Writer connection and statements: used by the constructor, then only by
  // the writer thread, then by close() after the join.
  Connection db_;
  Statement begin_, commit_, upsert_room_, insert_message_, delete_through_, first_young_,
      list_rooms_;
  std::unordered_map<std::string_view, RoomRun> runs_;  // keys point into the batch
  std::vector<std::uint64_t> seqs_;

  // The queue and everything the writer hands back; guarded by mutex_.
  std::mutex mutex_;
  std::condition_variable writer_cv_;  // writer waits for work
  std::condition_variable space_cv_;   // append() waits for room in the queue
  std::condition_variable done_cv_;    // flush() / apply_retention() wait for the writer
  std::deque<Item> queue_;
  bool stopping_ = false;
  std::uint64_t enqueued_ = 0;   // appends accepted so far
  std::uint64_t completed_ = 0;  // appends committed (or failed) with callbacks run
  std::uint64_t retention_requested_ = 0;
  std::uint64_t retention_done_ = 0;
  std::size_t retention_deleted_last_ = 0;
  std::error_code retention_error_;
  std::shared_ptr<const CommitObserver> observer_;

  // Read connections; guarded by pool_mutex_.
  std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Reader>> idle_readers_;
  std::size_t readers_open_ = 0;
  std::size_t readers_leased_ = 0;
  bool readers_closed_ = false;

  std::mutex close_mutex_;  // serializes close(); guards closed_
  bool closed_ = false;

  std::atomic<std::uint64_t> commits_{0}, messages_committed_{0}, failed_commits_{0},
      messages_failed_{0}, rejected_queue_full_{0}, retention_deleted_{0}, callback_exceptions_{0};

  std::thread writer_;
  std::thread::id writer_id_;
};

// ---- construction ----------------------------------------------------------

SqliteMessageStore::Impl::Impl(std::string path, SqliteStoreOptions opts)
    : path_(std::move(path)), opts_(std::move(opts)) {
  check_options(path_, opts_);
  db_ = open_writer(path_, opts_);
  try {
    begin_ = Statement(db_.get(), "BEGIN IMMEDIATE");
    commit_ = Statement(db_.get(), "COMMIT");
    upsert_room_ = Statement(db_.get(),
                             "INSERT INTO rooms (name, last_seq) VALUES (?1, ?2) "
                             "ON CONFLICT (name) DO UPDATE SET last_seq = last_seq + ?2 "
                             "RETURNING id, last_seq");
    insert_message_ = Statement(
        db_.get(), "INSERT INTO messages (room_id, seq, unix_ms, body) VALUES (?1, ?2, ?3, ?4)");
    delete_through_ = Statement(db_.get(), "DELETE FROM messages WHERE room_id = ?1 AND seq <= ?2");
    first_young_ = Statement(db_.get(),
                             "SELECT seq FROM messages WHERE room_id = ?1 AND unix_ms >= ?2 "
                             "ORDER BY seq LIMIT 1");
    list_rooms_ = Statement(db_.get(), "SELECT id, last_seq FROM rooms");
  } catch (const SqliteFailure& failure) {
    throw_store(failure.is_bad_file() ? store_error::not_a_database : store_error::open_failed,
                path_, failure.what());
  }
  writer_ = std::thread([this] { writer_loop(); });
  writer_id_ = writer_.get_id();
}

// ---- appends ---------------------------------------------------------------

std::uint64_t SqliteMessageStore::Impl::append(std::string_view room, std::string_view body) {
  if (on_writer_thread()) throw_deadlock("append");
  std::promise<AppendResult> promise;
  auto future = promise.get_future();
  {
    std::unique_lock lock(mutex_);
    space_cv_.wait(lock, [&] { return stopping_ || queue_.size() < opts_.max_queue; });
    if (stopping_) throw_store(store_error::closed, path_, "append after close()");
    queue_.push_back(Item{std::string(room), std::string(body), {}, &promise});
    ++enqueued_;
    writer_cv_.notify_one();
  }
  auto result = future.get();
  if (result.ec) throw std::system_error(result.ec, result.detail);
  return result.seq;
}

void SqliteMessageStore::Impl::append_async(std::string room, std::string body,
                                            AppendHandler done) {
  std::error_code rejected;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      rejected = store_error::closed;
    } else if (queue_.size() >= opts_.max_queue) {
      rejected = store_error::queue_full;
      rejected_queue_full_.fetch_add(1, std::memory_order_relaxed);
    } else {
      queue_.push_back(Item{std::move(room), std::move(body), std::move(done), nullptr});
      ++enqueued_;
      writer_cv_.notify_one();
      return;
    }
  }
  if (done) done(0, rejected);
}

void SqliteMessageStore::Impl::flush() {
  if (on_writer_thread()) throw_deadlock("flush");
  std::unique_lock lock(mutex_);
  const auto target = enqueued_;
  done_cv_.wait(lock, [&] { return completed_ >= target; });
}

// ---- the writer thread -----------------------------------------------------

void SqliteMessageStore::Impl::writer_loop() {
  std::vector<Item> batch;
  batch.reserve(std::min<std::size_t>(opts_.max_batch, 4096));
  const bool periodic = retention_enabled() && opts_.retention_interval.count() > 0;
  auto next_pass = SteadyClock::now() + opts_.retention_interval;
  for (;;) {
    std::uint64_t retention_ticket = 0;
    bool pass_due = false;
    bool last_round = false;
    {
      std::unique_lock lock(mutex_);
      const auto has_work = [&] {
        return !queue_.empty() || stopping_ || retention_requested_ > retention_done_;
      };
      if (periodic) {
        writer_cv_.wait_until(lock, next_pass, has_work);
      } else {
        writer_cv_.wait(lock, has_work);
      }
      const bool was_full = queue_.size() >= opts_.max_queue;
      const std::size_t n = std::min(queue_.size(), opts_.max_batch);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (was_full && n > 0) space_cv_.notify_all();
      retention_ticket = retention_requested_;
      pass_due =
          retention_ticket > retention_done_ || (periodic && SteadyClock::now() >= next_pass);
      // Once stopping_, nothing new is accepted: an empty queue stays empty.
      last_round = stopping_ && queue_.empty();
    }
    if (!batch.empty()) {
      commit_batch(batch);
      batch.clear();
    }
    if (pass_due) {
      run_retention(retention_ticket);
      next_pass = SteadyClock::now() + opts_.retention_interval;
    }
    if (last_round) return;
  }
}

void SqliteMessageStore::Impl::commit_batch(std::vector<Item>& batch) {
  const auto start = SteadyClock::now();
  std::error_code ec;
  std::string detail;
  try {
    write_batch(batch);
  } catch (const SqliteFailure& failure) {
    rollback_quietly(db_);
    ec = store_error::write_failed;
    detail = context(path_) + ": commit of " + std::to_string(batch.size()) +
             " messages failed: " + failure.what();
    log::logger()->error("{}", detail);
  }
  const auto duration = SteadyClock::now() - start;
  if (ec) {
    failed_commits_.fetch_add(1, std::memory_order_relaxed);
    messages_failed_.fetch_add(batch.size(), std::memory_order_relaxed);
  } else {
    commits_.fetch_add(1, std::memory_order_relaxed);
    messages_committed_.fetch_add(batch.size(), std::memory_order_relaxed);
    std::shared_ptr<const CommitObserver> observer;
    {
      std::lock_guard lock(mutex_);
      observer = observer_;
    }
    if (observer && *observer) (*observer)(duration, batch.size());
  }
  for (std::size_t i = 0; i < batch.size(); ++i) deliver(batch[i], ec ? 0 : seqs_[i], ec, detail);
  std::lock_guard lock(mutex_);
  completed_ += batch.size();
  done_cv_.notify_all();
}

// One transaction: bump each room's counter once for all its messages in the
// batch, then insert the messages in queue order with consecutive seqs.
void SqliteMessageStore::Impl::write_batch(std::vector<Item>& batch) {
  {
    ResetGuard reset(begin_);
    begin_.run();
  }
  runs_.clear();
  for (const auto& item : batch) ++runs_[item.room].count;
  for (auto& [room, run] : runs_) {
    ResetGuard reset(upsert_room_);
    upsert_room_.bind_text(1, room).bind(2, static_cast<std::int64_t>(run.count));
    if (!upsert_room_.step()) throw SqliteFailure(SQLITE_ERROR, "room counter update gave no row");
    run.id = upsert_room_.column_int64(0);
    run.next = static_cast<std::uint64_t>(upsert_room_.column_int64(1)) - run.count + 1;
    upsert_room_.run();
  }
  const auto unix_ms = now_ms();
  seqs_.resize(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& run = runs_.find(batch[i].room)->second;
    seqs_[i] = run.next++;
    ResetGuard reset(insert_message_);
    insert_message_.bind(1, run.id)
        .bind_unsigned(2, seqs_[i])
        .bind(3, unix_ms)
        .bind_blob(4, batch[i].body)
        .run();
  }
  if (opts_.max_messages_per_room > 0) {
    std::uint64_t deleted = 0;
    for (const auto& [room, run] : runs_) {
      const auto last = run.next - 1;
      if (last > opts_.max_messages_per_room)
        deleted += delete_through(run.id, last - opts_.max_messages_per_room);
    }
    retention_deleted_.fetch_add(deleted, std::memory_order_relaxed);
  }
  ResetGuard reset(commit_);
  commit_.run();
}

void SqliteMessageStore::Impl::deliver(Item& item, std::uint64_t seq, const std::error_code& ec,
                                       const std::string& detail) {
  if (item.waiter) {
    item.waiter->set_value(AppendResult{seq, ec, detail});
    return;
  }
  if (!item.done) return;
  try {
    item.done(seq, ec);
  } catch (const std::exception& e) {
    callback_exceptions_.fetch_add(1, std::memory_order_relaxed);
    log::logger()->error("{}: append callback threw: {}", context(path_), e.what());
  } catch (...) {
    callback_exceptions_.fetch_add(1, std::memory_order_relaxed);
    log::logger()->error("{}: append callback threw a non-std::exception", context(path_));
  }
}

// ---- retention -------------------------------------------------------------

void SqliteMessageStore::Impl::run_retention(std::uint64_t ticket) {
  std::size_t deleted = 0;
  std::error_code ec;
  try {
    deleted = retention_pass();
  } catch (const SqliteFailure& failure) {
    rollback_quietly(db_);
    ec = store_error::write_failed;
    log::logger()->error("{}: retention pass failed: {}", context(path_), failure.what());
  }
  std::lock_guard lock(mutex_);
  retention_done_ = std::max(retention_done_, ticket);
  retention_deleted_last_ = deleted;
  retention_error_ = ec;
  done_cv_.notify_all();
}

// Deletes, per room, the oldest messages beyond max_messages_per_room and
// those before the first message younger than max_age: always a prefix of
// the room's seqs, so what remains is one contiguous range.
std::size_t SqliteMessageStore::Impl::retention_pass() {
  if (!retention_enabled()) return 0;
  {
    ResetGuard reset(begin_);
    begin_.run();
  }
  std::vector<std::pair<std::int64_t, std::uint64_t>> rooms;
  {
    ResetGuard reset(list_rooms_);
    while (list_rooms_.step())
      rooms.emplace_back(list_rooms_.column_int64(0),
                         static_cast<std::uint64_t>(list_rooms_.column_int64(1)));
  }
  const auto cutoff_ms = now_ms() - opts_.max_age.count();
  std::size_t deleted = 0;
  for (const auto& [id, last] : rooms) {
    std::uint64_t through = 0;
    if (opts_.max_messages_per_room > 0 && last > opts_.max_messages_per_room)
      through = last - opts_.max_messages_per_room;
    if (opts_.max_age.count() > 0) {
      ResetGuard reset(first_young_);
      first_young_.bind(1, id).bind(2, cutoff_ms);
      const auto first_kept =
          first_young_.step() ? static_cast<std::uint64_t>(first_young_.column_int64(0)) : last + 1;
      through = std::max(through, first_kept - 1);
    }
    if (through > 0) deleted += delete_through(id, through);
  }
  ResetGuard reset(commit_);
  commit_.run();
  retention_deleted_.fetch_add(deleted, std::memory_order_relaxed);
  return deleted;
}

std::size_t SqliteMessageStore::Impl::delete_through(std::int64_t room_id, std::uint64_t seq) {
  ResetGuard reset(delete_through_);
  delete_through_.bind(1, room_id).bind_unsigned(2, seq).run();
  return static_cast<std::size_t>(db_.changes());
}

std::size_t SqliteMessageStore::Impl::apply_retention() {
  if (on_writer_thread()) throw_deadlock("apply_retention");
  std::unique_lock lock(mutex_);
  if (stopping_) throw_store(store_error::closed, path_, "apply_retention after close()");
  const auto ticket = ++retention_requested_;
  writer_cv_.notify_one();
  done_cv_.wait(lock, [&] { return retention_done_ >= ticket; });
  if (retention_error_)
    throw_store(store_error::write_failed, path_, "retention pass failed (see the log)");
  return retention_deleted_last_;
}

// ---- reads -----------------------------------------------------------------

// A read connection borrowed from the pool for one query.
class SqliteMessageStore::Impl::Lease {
 public:
  Lease(Impl& impl, std::unique_ptr<Reader> reader) : impl_(impl), reader_(std::move(reader)) {}
  ~Lease() { impl_.return_reader(std::move(reader_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Reader* operator->() const { return reader_.get(); }

 private:
  Impl& impl_;
  std::unique_ptr<Reader> reader_;
};

SqliteMessageStore::Impl::Lease SqliteMessageStore::Impl::lease_reader() {
  std::unique_lock lock(pool_mutex_);
  pool_cv_.wait(lock, [&] {
    return readers_closed_ || !idle_readers_.empty() || readers_open_ < opts_.read_connections;
  });
  if (readers_closed_) throw_store(store_error::closed, path_, "read after close()");
  ++readers_leased_;
  if (!idle_readers_.empty()) {
    auto reader = std::move(idle_readers_.back());
    idle_readers_.pop_back();
    return Lease(*this, std::move(reader));
  }
  ++readers_open_;
  lock.unlock();
  try {
    return Lease(*this, open_reader());
  } catch (...) {
    lock.lock();
    --readers_open_;
    --readers_leased_;
    pool_cv_.notify_all();
    throw;
  }
}

std::unique_ptr<Reader> SqliteMessageStore::Impl::open_reader() {
  try {
    auto reader = std::make_unique<Reader>();
    reader->db = Connection(path_, SQLITE_OPEN_READWRITE);
    set_busy_timeout(reader->db, opts_.busy_timeout);
    reader->db.exec("PRAGMA query_only = ON");
    reader->read_after = Statement(reader->db.get(),
                                   "SELECT seq, unix_ms, body FROM messages "
                                   "WHERE room_id = (SELECT id FROM rooms WHERE name = ?1) "
                                   "AND seq > ?2 ORDER BY seq LIMIT ?3");
    reader->last_seq = Statement(reader->db.get(), "SELECT last_seq FROM rooms WHERE name = ?1");
    reader->rooms = Statement(reader->db.get(), "SELECT name FROM rooms ORDER BY name");
    return reader;
  } catch (const SqliteFailure& failure) {
    throw_read(failure, "opening a read connection");
  }
}

void SqliteMessageStore::Impl::return_reader(std::unique_ptr<Reader> reader) {
  // Notify under the lock: close() may return (and the store be destroyed)
  // as soon as it sees the lease back.
  std::lock_guard lock(pool_mutex_);
  idle_readers_.push_back(std::move(reader));
  --readers_leased_;
  pool_cv_.notify_all();
}

void SqliteMessageStore::Impl::throw_read(const SqliteFailure& failure, std::string_view what) {
  throw_store(failure.is_bad_file() ? store_error::not_a_database : store_error::read_failed, path_,
              std::string(what) + ": " + failure.what());
}

std::vector<StoredMessage> SqliteMessageStore::Impl::read_after(std::string_view room,
                                                                std::uint64_t after_seq,
                                                                std::size_t limit) {
  auto reader = lease_reader();
  std::vector<StoredMessage> out;
  if (limit == 0) return out;
  out.reserve(std::min<std::size_t>(limit, 1024));
  try {
    auto& stmt = reader->read_after;
    ResetGuard reset(stmt);
    stmt.bind_text(1, room).bind_unsigned(2, after_seq).bind_unsigned(3, limit);
    while (stmt.step()) {
      out.push_back(StoredMessage{std::string(room),
                                  static_cast<std::uint64_t>(stmt.column_int64(0)),
                                  stmt.column_int64(1), std::string(stmt.column_bytes(2))});
    }
  } catch (const SqliteFailure& failure) {
    throw_read(failure, "read_after");
  }
  return out;
}

std::uint64_t SqliteMessageStore::Impl::last_seq(std::string_view room) {
  auto reader = lease_reader();
  try {
    auto& stmt = reader->last_seq;
    ResetGuard reset(stmt);
    stmt.bind_text(1, room);
    return stmt.step() ? static_cast<std::uint64_t>(stmt.column_int64(0)) : 0;
  } catch (const SqliteFailure& failure) {
    throw_read(failure, "last_seq");
  }
}

std::vector<std::string> SqliteMessageStore::Impl::rooms() {
  auto reader = lease_reader();
  std::vector<std::string> out;
  try {
    auto& stmt = reader->rooms;
    ResetGuard reset(stmt);
    while (stmt.step()) out.emplace_back(stmt.column_bytes(0));
  } catch (const SqliteFailure& failure) {
    throw_read(failure, "rooms");
  }
  return out;
}

// ---- lifecycle -------------------------------------------------------------

void SqliteMessageStore::Impl::close() {
  if (on_writer_thread()) throw_deadlock("close");
  std::lock_guard close_lock(close_mutex_);
  if (closed_) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    writer_cv_.notify_one();
    space_cv_.notify_all();
  }
  if (writer_.joinable()) writer_.join();
  {
    std::unique_lock lock(pool_mutex_);
    readers_closed_ = true;
    pool_cv_.notify_all();
    pool_cv_.wait(lock, [&] { return readers_leased_ == 0; });
    idle_readers_.clear();
  }
  // Readers first: the last connection to close checkpoints the WAL into the
  // database file and removes it, and that should be the writer.
  for (auto* stmt : {&begin_, &commit_, &upsert_room_, &insert_message_, &delete_through_,
                     &first_young_, &list_rooms_})
    *stmt = Statement{};
  db_ = Connection{};
  closed_ = true;
}

void SqliteMessageStore::Impl::set_commit_observer(CommitObserver observer) {
  auto shared = observer ? std::make_shared<const CommitObserver>(std::move(observer)) : nullptr;
  std::lock_guard lock(mutex_);
  observer_ = std::move(shared);
}

SqliteStoreStats SqliteMessageStore::Impl::stats() {
  SqliteStoreStats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.messages_committed = messages_committed_.load(std::memory_order_relaxed);
  s.failed_commits = failed_commits_.load(std::memory_order_relaxed);
  s.messages_failed = messages_failed_.load(std::memory_order_relaxed);
  s.rejected_queue_full = rejected_queue_full_.load(std::memory_order_relaxed);
  s.retention_deleted = retention_deleted_.load(std::memory_order_relaxed);
  s.callback_exceptions = callback_exceptions_.load(std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  s.queued = queue_.size();
  return s;
}

// ---- the public class: forwards to Impl --------------------------------------

SqliteMessageStore::SqliteMessageStore(std::string path, SqliteStoreOptions opts)
    : impl_(std::make_unique<Impl>(std::move(path), std::move(opts))) {}

SqliteMessageStore::~SqliteMessageStore() {
  try {
    impl_->close();
  } catch (const std::exception& e) {
    // Only reachable when destroyed from its own writer thread: a broken
    // precondition that would otherwise be a use-after-free.
    log::logger()->critical("{}: destructor: {}", context(impl_->path_), e.what());
    std::terminate();
  }
}

std::uint64_t SqliteMessageStore::append(std::string_view room, std::string_view body) {
  return impl_->append(room, body);
}
void SqliteMessageStore::append_async(std::string room, std::string body, AppendHandler done) {
  impl_->append_async(std::move(room), std::move(body), std::move(done));
}
std::vector<StoredMessage> SqliteMessageStore::read_after(std::string_view room,
                                                          std::uint64_t after_seq,
                                                          std::size_t limit) {
  return impl_->read_after(room, after_seq, limit);
}
std::uint64_t SqliteMessageStore::last_seq(std::string_view room) { return impl_->last_seq(room); }
std::vector<std::string> SqliteMessageStore::rooms() { return impl_->rooms(); }
void SqliteMessageStore::flush() { impl_->flush(); }
void SqliteMessageStore::close() { impl_->close(); }
std::size_t SqliteMessageStore::apply_retention() { return impl_->apply_retention(); }
void SqliteMessageStore::set_commit_observer(CommitObserver observer) {
  impl_->set_commit_observer(std::move(observer));
}
SqliteStoreStats SqliteMessageStore::stats() const { return impl_->stats(); }
const std::string& SqliteMessageStore::path() const noexcept { return impl_->path_; }

}  // namespace ebb::websocket
