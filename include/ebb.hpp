#pragma once
// Everything ebb offers. Include <ebb/websocket.hpp> for the WebSocket part only.
#include "ebb/config/config.hpp"
#include "ebb/executor/runtime_executor.hpp"
#include "ebb/http.hpp"
#include "ebb/json/json.hpp"
#include "ebb/lifecycle/shutdown.hpp"
#include "ebb/metrics/exporter.hpp"
#include "ebb/metrics/prometheus.hpp"
#include "ebb/metrics/websocket_metrics.hpp"
#include "ebb/store/message_store.hpp"
#include "ebb/store/sqlite_message_store.hpp"
#include "ebb/websocket.hpp"
