package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Attempts on the net/http path (HTTP/2 clients, HTTP/2 backends) share
// their backend connection with other streams, so the watchdog cannot time
// them by closing the connection as it does for HTTP/1.1 exchanges. Each
// attempt gets a streamDeadline instead: the same coarse clock and atomic
// deadline, and on expiry the attempt's context is cancelled, which resets
// just that stream. No runtime timer is armed per request or per chunk.

// streamDeadline times one attempt. Its methods are safe for concurrent use:
// the request body and the response body may both report progress.
type streamDeadline struct {
	w        *watchdog
	deadline atomic.Int64 // coarse unix nanoseconds; zero when unarmed
	expired  atomic.Bool
	cancel   context.CancelFunc
	stop     func() bool // unregisters the cancel on the client going away
}

// streamDeadlines is the watchdog's set of running attempts.
type streamDeadlines struct {
	mu  sync.Mutex
	set map[*streamDeadline]struct{}
}

// trackStream starts timing an attempt whose context cancel cancels.
func (w *watchdog) trackStream(cancel context.CancelFunc) *streamDeadline {
	sd := &streamDeadline{w: w, cancel: cancel}
	w.streams.mu.Lock()
	if w.streams.set == nil {
		w.streams.set = make(map[*streamDeadline]struct{})
	}
	w.streams.set[sd] = struct{}{}
	w.streams.mu.Unlock()
	return sd
}

// arm sets the deadline d from now.
func (sd *streamDeadline) arm(d time.Duration) { sd.deadline.Store(sd.w.now() + int64(d)) }

// disarm clears the deadline until the next arm.
func (sd *streamDeadline) disarm() { sd.deadline.Store(0) }

// release stops timing the attempt and cancels its context, which makes
// the transport drop the stream (and an HTTP/1.1 connection). It may be
// called more than once.
func (sd *streamDeadline) release() {
	sd.done()
	sd.cancel()
}

// done stops timing an attempt that ended cleanly, leaving its context
// alone (see netFront.start).
func (sd *streamDeadline) done() {
	sd.w.streams.mu.Lock()
	delete(sd.w.streams.set, sd)
	sd.w.streams.mu.Unlock()
	if sd.stop != nil {
		sd.stop()
	}
}

func (ss *streamDeadlines) sweep(now int64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for sd := range ss.set {
		if d := sd.deadline.Load(); d != 0 && now > d {
			sd.expired.Store(true)
			sd.cancel()
			delete(ss.set, sd)
		}
	}
}
