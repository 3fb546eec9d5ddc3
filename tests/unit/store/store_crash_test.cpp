// kill -9 during a stream of appends loses nothing that was acknowledged
// (SqliteSynchronous::normal, WAL): the promise in sqlite_message_store.hpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ebb/store/sqlite_message_store.hpp"
#include "unit/store/store_test_support.hpp"

extern char** environ;

namespace {

using ebb::test::TempDir;
using ebb::websocket::SqliteMessageStore;

constexpr std::size_t kAcksBeforeKill = 3000;
constexpr auto kRunDeadline = std::chrono::seconds(60);

/// store_crash_writer as a child process whose stdout is a pipe to us.
class Writer {
 public:
  Writer(const std::string& db, const std::string& mode, const std::string& room) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<std::string> args{EBB_STORE_CRASH_WRITER, db, mode, room};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    if (rc != 0) {
      ::close(out_);
      throw std::runtime_error("cannot spawn " + args[0]);
    }
  }
  ~Writer() {
    kill9();
    ::close(out_);
  }

  /// Reads whole lines until `want` acks arrived, the pipe closed, or the
  /// deadline passed. Returns false on EOF or deadline.
  bool read_acks(std::map<std::uint64_t, std::uint64_t>& acks, std::size_t want,
                 std::chrono::steady_clock::time_point deadline) {
    while (acks.size() < want) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      const auto n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return false;
      pending_.append(buf, static_cast<std::size_t>(n));
      parse(acks);
    }
    return true;
  }

  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    killed_by_9_ = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    pid_ = -1;
  }
  bool killed_by_9() const { return killed_by_9_; }

 private:
  // Only complete lines count: a line cut by the kill was never fully acked.
  void parse(std::map<std::uint64_t, std::uint64_t>& acks) {
    std::size_t start = 0;
    for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n', start)) {
      const auto line = pending_.substr(start, nl - start);
      const auto space = line.find(' ');
      acks[std::stoull(line.substr(0, space))] = std::stoull(line.substr(space + 1));
      start = nl + 1;
    }
    pending_.erase(0, start);
  }

  pid_t pid_ = -1;
  int out_ = -1;
  std::string pending_;
  bool killed_by_9_ = false;
};

void crash_and_check(const std::string& mode) {
  TempDir dir;
  const auto db = dir.file("crash.db");
  std::map<std::uint64_t, std::uint64_t> acks;  // seq -> index of the body
  {
    Writer writer(db, mode, "room");
    const auto deadline = std::chrono::steady_clock::now() + kRunDeadline;
    ASSERT_TRUE(writer.read_acks(acks, kAcksBeforeKill, deadline))
        << "writer acked only " << acks.size() << " appends";
    writer.kill9();
    ASSERT_TRUE(writer.killed_by_9()) << "the writer exited before it was killed";
    // Lines already in the pipe were acknowledged before the kill too.
    writer.read_acks(acks, SIZE_MAX, std::chrono::steady_clock::now() + std::chrono::seconds(5));
  }
  ASSERT_GE(acks.size(), kAcksBeforeKill);

  SqliteMessageStore store(db);
  const auto stored = store.read_after("room", 0, SIZE_MAX);
  ASSERT_GE(stored.size(), acks.size());
  for (std::size_t i = 0; i < stored.size(); ++i)
    ASSERT_EQ(stored[i].seq, i + 1) << "gap in the stored seqs";
  EXPECT_EQ(store.last_seq("room"), stored.size());
  for (const auto& [seq, index] : acks) {
    ASSERT_LE(seq, stored.size()) << "acknowledged seq " << seq << " lost";
    EXPECT_EQ(stored[seq - 1].body, "message #" + std::to_string(index)) << "seq " << seq;
  }
  // A single producer: seqs follow the producer's order exactly.
  EXPECT_EQ(acks.rbegin()->first, acks.rbegin()->second);
  // The store carries on where the dead process stopped.
  EXPECT_EQ(store.append("room", "after the crash"), stored.size() + 1);
}

TEST(SqliteMessageStoreCrash, KillNineLosesNoAcknowledgedSyncAppend) { crash_and_check("sync"); }

TEST(SqliteMessageStoreCrash, KillNineLosesNoAcknowledgedAsyncAppend) { crash_and_check("async"); }

}  // namespace
