// gorilla_echo: the "gorilla" peer of bench/run_drain.sh, a WebSocket echo server
// on gorilla/websocket (Debian 1.5.0) and net/http.
//
//	gorilla_echo --port N [--address A]      (default address 127.0.0.1)
//
// Echo as gorilla's examples/echo does it: Upgrader with default options, then
// ReadMessage / WriteMessage with the received message type until an error.
// Defaults kept: GOMAXPROCS = number of CPUs, TCP_NODELAY (net sets it), 4 KiB
// read/write buffers, no compression.
//
// Shutdown (SIGINT/SIGTERM), the way the net/http docs advise:
//   - http.Server.Shutdown closes the listener and idle HTTP connections. It
//     "does not attempt to close nor wait for hijacked connections such as
//     WebSockets. The caller of Shutdown should separately notify such
//     long-lived connections of shutdown and wait for them to close, if
//     desired. See RegisterOnShutdown".
//   - So a RegisterOnShutdown hook starts the WebSocket closing handshake on
//     every open connection: WriteControl(Close 1001) (WriteControl may be
//     called concurrently with the handler's reads and writes). It does not
//     wait, as RegisterOnShutdown's docs ask.
//   - The handler's read loop then ends when the peer's Close arrives
//     (gorilla's default close handler answers it; ReadMessage returns a
//     CloseError) or when its next echo fails with ErrCloseSent; the handler
//     closes the TCP connection and main waits for every handler.
//
// gorilla has no close-handshake timeout and this server sets no read deadline
// (its examples use one only with ping/pong keep-alive), so a peer that never
// answers the Close keeps its handler, and the process, alive. A second signal
// kills the process (default disposition restored).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// writeWait bounds one control-frame write, as in gorilla's examples.
const writeWait = 10 * time.Second

var upgrader = websocket.Upgrader{}

// conns tracks the hijacked (upgraded) connections Shutdown does not know about.
type conns struct {
	mu      sync.Mutex
	open    map[*websocket.Conn]struct{}
	closing bool
	closed  chan struct{} // closed once closing is set: no wg.Add after it
	wg      sync.WaitGroup
}

// add registers c; false once the shutdown has started (c must go away at once).
func (cs *conns) add(c *websocket.Conn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closing {
		return false
	}
	cs.open[c] = struct{}{}
	cs.wg.Add(1)
	return true
}

func (cs *conns) remove(c *websocket.Conn) {
	cs.mu.Lock()
	delete(cs.open, c)
	cs.mu.Unlock()
	cs.wg.Done()
}

// goAway starts the closing handshake on every open connection; the handlers
// finish it.
func (cs *conns) goAway() {
	cs.mu.Lock()
	cs.closing = true
	all := make([]*websocket.Conn, 0, len(cs.open))
	for c := range cs.open {
		all = append(all, c)
	}
	cs.mu.Unlock()
	close(cs.closed)
	for _, c := range all {
		sendGoingAway(c)
	}
	log.Printf("shutdown: Close 1001 sent to %d connections", len(all))
}

func sendGoingAway(c *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "")
	_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
}

func (cs *conns) echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered with an HTTP error
	}
	defer c.Close()
	if !cs.add(c) {
		sendGoingAway(c)
		return
	}
	defer cs.remove(c)
	for {
		mt, message, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, message); err != nil {
			return
		}
	}
}

func main() {
	address := flag.String("address", "127.0.0.1", "listen address")
	port := flag.Int("port", 0, "listen port")
	flag.Parse()
	if *port <= 0 || *port > 65535 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gorilla_echo --port N [--address A]")
		os.Exit(1)
	}

	cs := &conns{open: make(map[*websocket.Conn]struct{}), closed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/", cs.echo)
	srv := &http.Server{
		Addr:    net.JoinHostPort(*address, strconv.Itoa(*port)),
		Handler: mux,
	}
	srv.RegisterOnShutdown(cs.goAway)

	// As net/http's Server.Shutdown example: Shutdown from a signal goroutine,
	// main waits for it after ListenAndServe returns ErrServerClosed.
	shutdownDone := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		signal.Reset(syscall.SIGTERM, os.Interrupt) // a second signal kills
		if err := srv.Shutdown(context.Background()); err != nil {
			log.Printf("shutdown: %v", err)
		}
		close(shutdownDone)
	}()

	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Printf("gorilla_echo listening on %s\n", srv.Addr)
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatalf("serve: %v", err)
	}
	<-shutdownDone
	// Shutdown runs the hooks in goroutines without waiting for them; wait until
	// goAway has stopped registrations, then for the hijacked connections ("wait
	// for them to close, if desired").
	<-cs.closed
	cs.wg.Wait()
	log.Printf("shutdown: all connections closed")
}
