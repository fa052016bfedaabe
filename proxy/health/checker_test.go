package health

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// script is a Prober whose answers the test sets per backend.
type script struct {
	mu    sync.Mutex
	fail  map[*pool.Backend]bool
	calls int
}

func (s *script) Probe(_ context.Context, b *pool.Backend) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail[b] {
		return errors.New("check returned status 503")
	}
	return nil
}

func (s *script) set(b *pool.Backend, failing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[b] = failing
}

// newPool returns a pool over backend entries.
func newPool(t *testing.T, entries ...string) (*pool.Pool, []*pool.Backend) {
	t.Helper()
	var bs []*pool.Backend
	for _, e := range entries {
		b, err := pool.NewBackend(e)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	p, err := pool.New(bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, bs
}

func newChecker(t *testing.T, rise, fall int) (*Checker, *script, []*pool.Backend) {
	t.Helper()
	p, bs := newPool(t, "http://a:1", "http://b:1")
	s := &script{fail: map[*pool.Backend]bool{}}
	c := &Checker{Pool: p, Prober: s, Rise: rise, Fall: fall, Logger: slog.New(slog.DiscardHandler)}
	return c, s, bs
}

func TestRiseAndFall(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		rise, fall int
		// results of successive rounds for backend a (true = healthy), and
		// whether a is up after each
		results []bool
		up      []bool
	}{
		{"one failure is not enough", 2, 2, []bool{false, true, false}, []bool{true, true, true}},
		{"fall then rise", 2, 2,
			[]bool{false, false, true, false, true, true},
			[]bool{true, false, false, false, false, true}},
		{"fall 1 rise 1", 1, 1, []bool{false, true, false}, []bool{false, true, false}},
		{"rise 3", 3, 1, []bool{false, true, true, true}, []bool{false, false, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s, bs := newChecker(t, tc.rise, tc.fall)
			for i, ok := range tc.results {
				s.set(bs[0], !ok)
				c.Round(ctx)
				if got := bs[0].Up(); got != tc.up[i] {
					t.Fatalf("after round %d (healthy=%v): up=%v, want %v", i+1, ok, got, tc.up[i])
				}
				if !bs[1].Up() {
					t.Fatal("the healthy backend went down")
				}
			}
		})
	}
}

// A backend taken down by live traffic between rounds needs the full rise
// count of fresh successes, even if the checks before it had passed.
func TestPassiveDownNeedsFullRise(t *testing.T) {
	ctx := context.Background()
	c, _, bs := newChecker(t, 2, 2)
	c.Round(ctx) // a success while up
	c.Pool.MarkDown(bs[0], "connect: connection refused")
	c.Round(ctx)
	if bs[0].Up() {
		t.Fatal("up after one success; rise is 2")
	}
	c.Round(ctx)
	if !bs[0].Up() {
		t.Fatal("still down after two successes")
	}
}

func TestChecksRunConcurrently(t *testing.T) {
	var bs []*pool.Backend
	for _, u := range []string{"http://a:1", "http://b:1", "http://c:1"} {
		b, _ := pool.NewBackend(u)
		bs = append(bs, b)
	}
	p, _ := pool.New(bs, nil)
	// Each probe waits until all three have started: run one at a time,
	// they would time out instead.
	var started sync.WaitGroup
	started.Add(len(bs))
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	c := &Checker{
		Pool:    p,
		Timeout: 5 * time.Second,
		Prober: ProbeFunc(func(ctx context.Context, b *pool.Backend) error {
			started.Done()
			select {
			case <-all:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}),
		Fall:   1,
		Logger: slog.New(slog.DiscardHandler),
	}
	c.Round(context.Background())
	for _, b := range bs {
		if !b.Up() {
			t.Errorf("%s down: %s", b, b.LastError())
		}
	}
}

func TestRunStopsWithContext(t *testing.T) {
	c, s, _ := newChecker(t, 1, 1)
	c.Interval = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		calls := s.calls
		s.mu.Unlock()
		if calls >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not keep checking")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// Every check is recorded on its backend: when, how long, and why it failed,
// for the status page and the metrics.
func TestRoundRecordsResults(t *testing.T) {
	c, s, bs := newChecker(t, 2, 2)
	s.set(bs[0], true)
	before := time.Now()
	c.Round(context.Background())
	c.Round(context.Background())

	a, b := bs[0].Stats(), bs[1].Stats()
	if a.Checks != 2 || a.CheckFailures != 2 || b.Checks != 2 || b.CheckFailures != 0 {
		t.Errorf("checks a %d/%d failed, b %d/%d failed; want 2/2 and 0/2", a.CheckFailures, a.Checks, b.CheckFailures, b.Checks)
	}
	if a.LastCheck == nil || a.LastCheck.OK() || a.LastCheck.Err != "check returned status 503" {
		t.Fatalf("a's last check %+v", a.LastCheck)
	}
	if b.LastCheck == nil || !b.LastCheck.OK() {
		t.Fatalf("b's last check %+v", b.LastCheck)
	}
	if a.LastCheck.At.Before(before) || a.LastCheck.Latency < 0 {
		t.Errorf("a's last check at %v took %v", a.LastCheck.At, a.LastCheck.Latency)
	}
	if bs[0].LastError() != "check returned status 503" || bs[0].Up() {
		t.Errorf("a: up=%v last error %q", bs[0].Up(), bs[0].LastError())
	}
	if a.StateChanges != 1 || b.StateChanges != 0 {
		t.Errorf("state changes a %d b %d, want 1 0", a.StateChanges, b.StateChanges)
	}
}

// TestDisabledBackendsAreNotChecked: a backend configured down is never
// used, so it is never probed nor logged going down.
func TestDisabledBackendsAreNotChecked(t *testing.T) {
	p, bs := newPool(t, "http://a:1", "http://b:1 down")
	var mu sync.Mutex
	probed := map[*pool.Backend]int{}
	c := &Checker{Pool: p, Rise: 1, Fall: 1, Logger: slog.New(slog.DiscardHandler),
		Prober: ProbeFunc(func(_ context.Context, b *pool.Backend) error {
			mu.Lock()
			defer mu.Unlock()
			probed[b]++
			return errors.New("refused")
		})}
	c.Round(context.Background())
	c.Round(context.Background())
	if probed[bs[0]] != 2 || probed[bs[1]] != 0 {
		t.Errorf("probes %d and %d, want 2 and 0", probed[bs[0]], probed[bs[1]])
	}
	if bs[1].State() != pool.StateUp || bs[1].LastError() != "" {
		t.Errorf("the disabled backend was acted on: %v %q", bs[1].State(), bs[1].LastError())
	}
}

// TestMembersChange: rounds follow the pool's members, draining ones
// included, and forget those that left; Trigger starts a round at once.
func TestMembersChange(t *testing.T) {
	c, s, bs := newChecker(t, 1, 1)
	a, b := bs[0], bs[1]
	c.Pool.Drain(a)
	s.set(a, true)
	c.Round(context.Background())
	if a.Up() {
		t.Error("a draining backend is not checked: it stayed up through a failed check")
	}
	if _, _, err := c.Pool.Update([]*pool.Backend{b}, nil); err != nil {
		t.Fatal(err)
	}
	c.Round(context.Background())
	if _, kept := c.streaks[a]; kept || len(c.streaks) != 1 {
		t.Errorf("streaks %v: the backend that left is still remembered", c.streaks)
	}

	c.Interval = time.Hour // only Trigger can start a second round
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	probes := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.calls
	}
	// Two probes in the first round above, one in the second, one in the
	// first round of Run; then one more only if Trigger works.
	deadline := time.Now().Add(5 * time.Second)
	for probes() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.Trigger()
	for probes() < 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := probes(); n != 5 {
		t.Fatalf("%d probes, want 5: Trigger did not start exactly one round", n)
	}
	cancel()
	<-done
}
