#pragma once
// ebb::websocket::ReliableRooms: rooms whose messages are durable and
// sequenced, so that clients resume after a reconnect or a server restart
// without a gap and without a duplicate. The wire format (typed JSON
// messages room.join, room.resume, room.publish, room.message, ...) is in
// docs/PROTOCOL.md; ebb::websocket::Client speaks it (Client::join_room).
//
//   ebb::websocket::SqliteMessageStore store{"messages.db"};
//   ebb::websocket::Server ws{cfg, executor};
//   ebb::websocket::ReliableRooms rooms{ws, store};
//   ws.on_typed_message([&](auto& s, const std::string& type, const ebb::json::kvs& p) {
//     if (rooms.handle(s, type, p)) return;   // the room.* protocol
//     ...                                      // the application's own types
//   });
//
// How the seam stays exact: a message is broadcast only after the store
// committed it, from the store's writer thread, in seq order, under its
// room's lock, which also records the room's last broadcast seq. A join
// replays (after, last broadcast] from the store, then takes the same lock,
// replays what was broadcast meanwhile, and joins the server room before
// releasing it: every later message reaches the session live, every
// earlier one came in the replay, none twice.
//
// Threads: every member is safe from any thread, callbacks included.
// Nothing handle() does on an I/O thread waits on the disk: appends are
// queued (MessageStore::append_async), and the store reads (replays, and the
// one read of a room's last seq before its first publish) run on the
// server's executor when it has one, else on the calling thread. A room's
// lock is held across a store read only for the tail of a replay (what was
// broadcast while the replay read the rest), so a publish to a room being
// replayed waits at most for that read.
// Lifetime: `ws` and `store` must outlive this object (declare them
// before it). Its destructor flushes the store, so completions still queued
// broadcast while the server exists; anything later is ignored. Stop the
// server first (its callbacks use this object), close the store last.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ebb/json/json.hpp"
#include "ebb/store/message_store.hpp"
#include "ebb/websocket/session.hpp"

namespace ebb::websocket {

class Server;
class WebSocketMetrics;

struct ReliableRoomsOptions {
  /// Messages replayed to a session that joins without a position.
  std::size_t history_on_join = 50;
  /// A resume further behind than this gets the newest max_replay messages
  /// and room.joined says "gap": true.
  std::size_t max_replay = 100000;
  /// Longest room name accepted (bytes).
  std::size_t max_room_name = 128;
  /// Largest serialized body accepted by room.publish (bytes).
  std::size_t max_body_size = 64 * 1024;
};

class ReliableRooms {
 public:
  /// May change or reject what a session publishes (stamp the sender's
  /// name, enforce permissions). Return false to reject; `error` is sent
  /// back in room.nack. Runs on the publishing session's thread.
  using PublishFilter = std::function<bool(Session&, const std::string& room,
                                           ebb::json::value& body, std::string& error)>;
  /// Called after a session joined (replay sent) or left a room.
  using MembershipHandler = std::function<void(Session&, const std::string& room, bool joined)>;

  ReliableRooms(Server& ws, MessageStore& store, ReliableRoomsOptions options = {});
  ~ReliableRooms();
  ReliableRooms(const ReliableRooms&) = delete;
  ReliableRooms& operator=(const ReliableRooms&) = delete;

  void on_publish(PublishFilter f);
  void on_membership(MembershipHandler f);
  /// Reports the store in `metrics`: one store_write_duration observation
  /// per append (from queueing it to its completion: queue wait plus commit,
  /// what the publisher waits for), successful or not, and one
  /// errors{kind="store"} per failed store operation (an append that failed
  /// or was rejected, a failed replay read, a failed read of a room's last
  /// seq). Before the server starts; `metrics` must outlive this object.
  void set_metrics(WebSocketMetrics& metrics) noexcept;

  /// Handles room.join, room.leave, room.resume and room.publish; returns
  /// false (and does nothing) for any other type. Malformed room.* payloads
  /// get an "error" message back and return true.
  bool handle(Session& session, const std::string& type, const ebb::json::kvs& payload);

  /// Stores `body` in `room`, then broadcasts it as room.message with its
  /// seq. `done(seq, ec)` runs after the commit (store writer thread), or
  /// inline with the error when the store rejects the append or the room's
  /// last seq cannot be read. The first publish to a room since construction
  /// reads that last seq from the store on the calling thread (room.publish
  /// through handle() reads it on the executor instead).
  void publish(const std::string& room, ebb::json::value body, std::string id = {},
               AppendHandler done = {});
  /// Joins `session` to `room`: replays after `after_seq` (or the newest
  /// history_on_join messages when absent), then live messages.
  void subscribe(const SessionPtr& session, const std::string& room,
                 std::optional<std::uint64_t> after_seq);
  void unsubscribe(const SessionPtr& session, const std::string& room);

  /// The highest seq broadcast in `room` so far (0 if none). May read the
  /// store (once per room) on the calling thread; throws what it throws.
  std::uint64_t last_seq(const std::string& room);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ebb::websocket
