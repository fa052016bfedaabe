// Package health runs active health checks over a pool: every backend is
// probed concurrently each interval, and rise/fall counts decide when a
// backend goes down or comes back, so a flapping one does not bounce.
package health

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Prober checks one backend. It returns nil when the backend is healthy and
// an error saying what was wrong otherwise. The context carries the check's
// timeout. Implementations must be safe for concurrent use.
type Prober interface {
	Probe(ctx context.Context, b *pool.Backend) error
}

// ProbeFunc adapts a function to Prober.
type ProbeFunc func(ctx context.Context, b *pool.Backend) error

// Probe calls f.
func (f ProbeFunc) Probe(ctx context.Context, b *pool.Backend) error { return f(ctx, b) }

// Defaults for the zero values of Checker's fields.
const (
	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 2 * time.Second
	DefaultRise     = 2
	DefaultFall     = 2
)

// Checker runs active checks on a pool's backends from one goroutine.
type Checker struct {
	// Pool is the set of backends checked and updated. Required.
	Pool *pool.Pool
	// Prober performs one check. Required.
	Prober Prober
	// Interval is the time between the starts of two rounds; zero means
	// DefaultInterval.
	Interval time.Duration
	// Timeout bounds each probe; zero means DefaultTimeout.
	Timeout time.Duration
	// Rise is how many consecutive successes bring a down backend back;
	// zero means DefaultRise.
	Rise int
	// Fall is how many consecutive failures take an up backend down; zero
	// means DefaultFall.
	Fall int
	// Logger receives state changes (info and warn) and per-round detail
	// (debug); nil means slog.Default().
	Logger *slog.Logger

	// streaks is owned by the goroutine running rounds.
	streaks map[*pool.Backend]*streak

	wakeOnce sync.Once
	wake     chan struct{} // Trigger: run a round now
}

// streak counts consecutive results in the state the checker last saw, so a
// backend taken down by live traffic between rounds starts its rise afresh.
type streak struct {
	seen      pool.State
	successes int
	failures  int
}

// Run checks every backend at once, then again each Interval, until ctx ends.
// The pool's members are read afresh every round, so backends that join are
// checked from the next round on (at once after Trigger), and those that
// leave are no longer checked.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.interval())
	defer t.Stop()
	wake := c.wakeChan()
	for {
		c.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
			t.Reset(c.interval())
		}
	}
}

// Trigger has Run start a round now rather than at the next interval, as
// when backends have joined the pool: they are checked at once. It never
// blocks; triggers while a round runs make one more round.
func (c *Checker) Trigger() {
	select {
	case c.wakeChan() <- struct{}{}:
	default:
	}
}

func (c *Checker) wakeChan() chan struct{} {
	c.wakeOnce.Do(func() { c.wake = make(chan struct{}, 1) })
	return c.wake
}

// Round runs one round of checks: all backends concurrently, each bounded by
// Timeout, then applies the results. Backends configured down are skipped.
// Rounds must not run concurrently.
func (c *Checker) Round(ctx context.Context) {
	log := c.logger()
	log.Debug("Starting health check...")
	backends := c.Pool.Backends()
	results := make([]result, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		if b.Disabled() {
			continue // configured down: never used, so never checked
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, c.timeout())
			defer cancel()
			start := time.Now()
			err := c.Prober.Probe(pctx, b)
			results[i] = result{err: err, at: start, took: time.Since(start)}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // shutting down: the results say nothing about the backends
	}
	if c.streaks == nil {
		c.streaks = make(map[*pool.Backend]*streak, len(backends))
	}
	for i, b := range backends {
		if b.Disabled() {
			continue
		}
		r := results[i]
		check := pool.CheckResult{At: r.at, Latency: r.took}
		if r.err != nil {
			check.Err = r.err.Error()
		}
		b.RecordCheck(check)
		c.apply(log, b, r.err)
	}
	// Forget the backends that have left the pool.
	current := make(map[*pool.Backend]bool, len(backends))
	for _, b := range backends {
		current[b] = true
	}
	for b := range c.streaks {
		if !current[b] {
			delete(c.streaks, b)
		}
	}
	log.Debug("Health check completed")
}

// result is one probe's outcome and timing.
type result struct {
	err  error
	at   time.Time
	took time.Duration
}

func (c *Checker) apply(log *slog.Logger, b *pool.Backend, err error) {
	s := c.streaks[b]
	if s == nil {
		s = &streak{seen: b.State()}
		c.streaks[b] = s
	}
	if st := b.State(); st != s.seen {
		*s = streak{seen: st}
	}
	if err == nil {
		log.Debug(b.URL() + " [up]")
		s.failures = 0
		s.successes++
		if s.seen == pool.StateDown && s.successes >= c.rise() {
			if c.Pool.MarkUp(b) {
				log.Info("backend up: " + b.URL())
			}
			*s = streak{seen: pool.StateUp}
		}
		return
	}
	log.Debug(b.URL()+" [down]", "reason", err.Error())
	s.successes = 0
	s.failures++
	if s.seen == pool.StateUp && s.failures >= c.fall() {
		if c.Pool.MarkDown(b, err.Error()) {
			log.Warn("backend down: " + b.URL() + ": " + err.Error())
		}
		*s = streak{seen: pool.StateDown}
	}
}

func (c *Checker) interval() time.Duration { return orDefault(c.Interval, DefaultInterval) }
func (c *Checker) timeout() time.Duration  { return orDefault(c.Timeout, DefaultTimeout) }
func (c *Checker) rise() int               { return orDefault(c.Rise, DefaultRise) }
func (c *Checker) fall() int               { return orDefault(c.Fall, DefaultFall) }

func (c *Checker) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
