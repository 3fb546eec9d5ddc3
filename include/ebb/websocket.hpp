#pragma once
// The WebSocket part of ebb: server, sessions, client, message store.
#include "ebb/store/message_store.hpp"
#include "ebb/store/sqlite_message_store.hpp"
#include "ebb/websocket/attached_runtime.hpp"
#include "ebb/websocket/client.hpp"
#include "ebb/websocket/close_code.hpp"
#include "ebb/websocket/error.hpp"
#include "ebb/websocket/long_polling.hpp"
#include "ebb/websocket/options.hpp"
#include "ebb/websocket/reliable_rooms.hpp"
#include "ebb/websocket/send_status.hpp"
#include "ebb/websocket/server.hpp"
#include "ebb/websocket/session.hpp"
