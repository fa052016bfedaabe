package proxy

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Returning memory to the system once a crowd of connections has gone idle.
//
// A connection fasthttp serves holds a goroutine's stack, a request context
// and a read buffer: about 21 KiB. Parked (park.go), it holds about 1 KiB,
// and what it let go of is free in the Go runtime, which keeps free memory
// to reuse rather than hand it back: the process's RSS stays where the crowd
// took it. 5,000 connections opened a thousand at a time and parked held
// 7.9 KiB of RSS each for as long as they stayed, 2 KiB of it in use.
//
// So when the parked count has grown by releaseAfter connections since the
// last release (counted from the lowest it fell to since, so that
// connections going idle and coming back at a steady rate never count up),
// the parker has the runtime give its free memory back releaseDelay later
// (debug.FreeOSMemory: a garbage collection, then the free pages returned):
// 2.4 KiB a connection then. At most once per releaseGap, on a timer's
// goroutine, off the request path; it costs a collection of the live heap,
// a few milliseconds, when a crowd has gone idle.

const (
	releaseAfter = 512             // parked connections, net: about 10 MiB let go of
	releaseGap   = 2 * time.Second // from one release to the next
	// releaseDelay lets what parked connections held become free first:
	// the fasthttp workers that served them end after
	// MaxIdleWorkerDuration (parkAfter), checked as often (server.go).
	releaseDelay = 2*parkAfter + time.Second/2
)

// memRelease decides when parking has freed enough to give back. Its
// fields are under the parker's mutex, but running and count.
type memRelease struct {
	off   bool          // Config.KeepIdleMemory
	after int           // growth of the parked count that calls for a release
	gap   time.Duration // the least time between two releases
	delay time.Duration // from the decision to the release

	base    int   // the parked count growth counts from: the lowest since the last release
	last    int64 // coarse time of the last release; 0: none yet
	running atomic.Bool
	count   atomic.Int64 // releases made
}

// newMemRelease returns the release of the parker of a proxy configured
// with c: off under Config.KeepIdleMemory.
func newMemRelease(c *Config) memRelease {
	return memRelease{off: c.KeepIdleMemory, after: releaseAfter, gap: releaseGap, delay: releaseDelay}
}

// parked is told the parked count n after a change at coarse time now, and
// releases memory when due.
func (m *memRelease) parked(n int, now int64) {
	if !m.off && m.due(n, now) && m.running.CompareAndSwap(false, true) {
		m.base, m.last = n, now
		time.AfterFunc(m.delay, m.release)
	}
}

// due reports whether the parked count n at coarse time now calls for a
// release, and follows n down.
func (m *memRelease) due(n int, now int64) bool {
	if n < m.base {
		m.base = n
	}
	return n-m.base >= m.after && (m.last == 0 || now-m.last >= int64(m.gap))
}

// release returns the runtime's free memory to the system. Two collections:
// what sync.Pools held (request contexts, read buffers) survives the first.
func (m *memRelease) release() {
	runtime.GC()
	debug.FreeOSMemory()
	m.count.Add(1)
	m.running.Store(false)
}
