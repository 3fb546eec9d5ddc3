#pragma once
// Small RAII wrappers over the SQLite C API (internal to the store).
//
// Threads: a Connection and its Statements are used by one thread at a time
// (connections are opened with SQLITE_OPEN_NOMUTEX); handing them to another
// thread needs a happens-before edge (a mutex, a thread start).
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace ebb::store::detail {

/// A failed SQLite call: the result code and SQLite's own message. Callers
/// translate it into a store_error for the public API.
class SqliteFailure : public std::runtime_error {
 public:
  SqliteFailure(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }
  /// True for "this file is not (or no longer) a valid database".
  bool is_bad_file() const noexcept {
    const int primary = code_ & 0xff;
    return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
  }

 private:
  int code_;
};

[[noreturn]] inline void throw_failure(sqlite3* db, int code) {
  throw SqliteFailure(code, db ? sqlite3_errmsg(db) : sqlite3_errstr(code));
}

/// A prepared statement, reset (bindings cleared) for reuse by reset().
class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) throw_failure(db, rc);
  }
  Statement(Statement&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&& other) noexcept {
    std::swap(db_, other.db_);
    std::swap(stmt_, other.stmt_);
    return *this;
  }
  ~Statement() { sqlite3_finalize(stmt_); }

  Statement& bind(int index, std::int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  /// Seqs and limits are unsigned in the API, signed in SQLite; values above
  /// INT64_MAX saturate (no real seq gets there).
  Statement& bind_unsigned(int index, std::uint64_t value) {
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return bind(index, static_cast<std::int64_t>(value > kMax ? kMax : value));
  }
  /// Binds without copying: the bytes must outlive the next step()/reset().
  Statement& bind_text(int index, std::string_view text) {
    check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_STATIC, SQLITE_UTF8));
    return *this;
  }
  Statement& bind_blob(int index, std::string_view bytes) {
    // A zero-length blob with a null pointer would bind NULL; keep it a blob.
    check(sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : bytes.data(), bytes.size(),
                              SQLITE_STATIC));
    return *this;
  }

  /// True when a row is ready, false when the statement is done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_failure(db_, rc);
  }
  /// Steps to completion (for statements whose rows are not wanted).
  void run() {
    while (step()) {
    }
  }

  std::int64_t column_int64(int column) { return sqlite3_column_int64(stmt_, column); }
  std::string_view column_bytes(int column) {
    // Ask for the blob first, then its size (SQLite's documented order).
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data ? std::string_view(static_cast<const char*>(data), size) : std::string_view{};
  }

  void reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw_failure(db_, rc);
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

/// Resets a statement when the scope ends, however it ends.
class ResetGuard {
 public:
  explicit ResetGuard(Statement& stmt) : stmt_(stmt) {}
  ~ResetGuard() { stmt_.reset(); }
  ResetGuard(const ResetGuard&) = delete;
  ResetGuard& operator=(const ResetGuard&) = delete;

 private:
  Statement& stmt_;
};

/// An open database connection. Statements prepared from it must be
/// destroyed first.
class Connection {
 public:
  Connection() = default;
  /// Throws SqliteFailure with SQLite's message when the file cannot be opened.
  Connection(const std::string& path, int flags) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      SqliteFailure failure(rc, db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
      sqlite3_close_v2(db_);
      db_ = nullptr;
      throw failure;
    }
    sqlite3_extended_result_codes(db_, 1);
  }
  Connection(Connection&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Connection& operator=(Connection&& other) noexcept {
    std::swap(db_, other.db_);
    return *this;
  }
  ~Connection() { sqlite3_close_v2(db_); }

  sqlite3* get() const noexcept { return db_; }

  /// Runs one or more statements whose results are not wanted.
  void exec(const char* sql) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) throw_failure(db_, rc);
  }
  /// Runs a one-row query and returns its first column as text.
  std::string query_text(const char* sql) {
    Statement stmt(db_, sql);
    return stmt.step() ? std::string(stmt.column_bytes(0)) : std::string{};
  }
  std::int64_t query_int64(const char* sql) {
    Statement stmt(db_, sql);
    return stmt.step() ? stmt.column_int64(0) : 0;
  }
  bool in_transaction() const noexcept { return db_ && sqlite3_get_autocommit(db_) == 0; }
  std::int64_t changes() const noexcept { return sqlite3_changes64(db_); }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace ebb::store::detail
