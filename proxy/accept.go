package proxy

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Accepting through a shortage of file descriptors or memory.
//
// When the process runs out of file descriptors (EMFILE, or ENFILE for the
// whole system), accept(2) fails but the connection it would have taken
// stays queued. fasthttp's Server treats any accept error but a timeout as
// the end of its listener, so one burst of connections past the limit would
// stop the proxy serving for good. nginx instead stops accepting for a
// moment (accept_mutex_delay, 500 ms) and HAProxy pauses the listener; the
// proxy does the same: it waits, longer each time up to acceptMaxDelay, and
// tries again, logging at most once a second while it lasts. Connections
// already open go on being served meanwhile, and their closing frees the
// descriptors the next accept needs.

// Backoff between accepts that failed for want of resources.
const (
	acceptFirstDelay = 5 * time.Millisecond
	acceptMaxDelay   = 500 * time.Millisecond
	acceptLogEvery   = time.Second
)

// acceptWaiting accepts a connection on ln, waiting out errors that a
// freed resource ends (see above); any other error is returned. A wait
// ends early, with net.ErrClosed, when stop is closed (the listener is, as
// at Shutdown); a nil stop never is.
func acceptWaiting(ln net.Listener, stop <-chan struct{}, log *slog.Logger) (net.Conn, error) {
	var delay time.Duration
	var logged time.Time
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		c, err := ln.Accept()
		if err == nil || !resourceShortage(err) {
			return c, err
		}
		if delay == 0 {
			delay = acceptFirstDelay
		} else if delay *= 2; delay > acceptMaxDelay {
			delay = acceptMaxDelay
		}
		if now := time.Now(); log != nil && now.Sub(logged) >= acceptLogEvery {
			logged = now
			log.Warn("cannot accept connections; retrying", "listener", ln.Addr().String(), "error", err.Error(), "retry_in", delay)
		}
		if wait == nil {
			wait = time.NewTimer(delay)
		} else {
			wait.Reset(delay)
		}
		select {
		case <-wait.C:
		case <-stop:
			return nil, &net.OpError{Op: "accept", Net: ln.Addr().Network(), Addr: ln.Addr(), Err: net.ErrClosed}
		}
	}
}

// resourceShortage reports whether an accept failed for want of file
// descriptors or kernel memory, which passes.
func resourceShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
