#pragma once
// The WebSocket part of ebb: server, sessions, client.
#include "ebb/websocket/client.hpp"
#include "ebb/websocket/close_code.hpp"
#include "ebb/websocket/error.hpp"
#include "ebb/websocket/options.hpp"
#include "ebb/websocket/send_status.hpp"
#include "ebb/websocket/server.hpp"
#include "ebb/websocket/session.hpp"
