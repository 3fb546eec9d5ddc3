// ReliableRooms with its store: what the store costs the sockets, and what it reports.
