// WebSocketMetrics fed by a running server: each family moves when its event happens.
