#pragma once
// Everything ebb offers. Include <ebb/websocket.hpp> for the WebSocket part only.
#include "ebb/config/config.hpp"
#include "ebb/executor/runtime_executor.hpp"
#include "ebb/json/json.hpp"
#include "ebb/lifecycle/shutdown.hpp"
#include "ebb/websocket.hpp"
