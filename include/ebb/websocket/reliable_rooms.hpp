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
// takes the same lock, replays (after, last broadcast] from the store, and
// joins the server room before releasing it: every later message reaches
// the session live, every earlier one came in the replay, none twice.
//
// Threads: every member is safe from any thread, callbacks included.
// Replays read the store on the server's executor when it has one (never on
// an I/O thread), else on the calling thread.
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

  /// Handles room.join, room.leave, room.resume and room.publish; returns
  /// false (and does nothing) for any other type. Malformed room.* payloads
  /// get an "error" message back and return true.
  bool handle(Session& session, const std::string& type, const ebb::json::kvs& payload);

  /// Stores `body` in `room`, then broadcasts it as room.message with its
  /// seq. `done(seq, ec)` runs after the commit (store writer thread).
  void publish(const std::string& room, ebb::json::value body, std::string id = {},
               AppendHandler done = {});
  /// Joins `session` to `room`: replays after `after_seq` (or the newest
  /// history_on_join messages when absent), then live messages.
  void subscribe(const SessionPtr& session, const std::string& room,
                 std::optional<std::uint64_t> after_seq);
  void unsubscribe(const SessionPtr& session, const std::string& room);

  /// The highest seq broadcast in `room` so far (0 if none).
  std::uint64_t last_seq(const std::string& room);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace ebb::websocket
