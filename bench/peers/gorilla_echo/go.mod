module ebb/bench/gorilla_echo

go 1.19

require github.com/gorilla/websocket v1.5.0

// Debian's golang-github-gorilla-websocket-dev (1.5.0); builds offline with
// GOFLAGS=-mod=mod GOPROXY=off. Override with `go mod edit -replace` for another copy.
replace github.com/gorilla/websocket => /usr/share/gocode/src/github.com/gorilla/websocket
