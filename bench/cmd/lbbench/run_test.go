package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scriptedLoad is a load generator that replays canned results.
type scriptedLoad struct {
	results []loadResult
	calls   int
}

func (s *scriptedLoad) Name() string          { return "scripted" }
func (s *scriptedLoad) Version() string       { return "scripted" }
func (s *scriptedLoad) Non2xxMeaning() string { return "" }
func (s *scriptedLoad) Run(context.Context, loadSpec) (loadResult, error) {
	r := s.results[min(s.calls, len(s.results)-1)]
	s.calls++
	return r, nil
}

func TestMeasureRetrying(t *testing.T) {
	ok := loadResult{Requests: 1000, Seconds: 1, RPS: 1000, P50: time.Millisecond}
	stalled := loadResult{Seconds: 1}
	good := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 20)) }
	broken := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }
	for _, tc := range []struct {
		name      string
		handler   http.HandlerFunc
		results   []loadResult
		wantCalls int
		wantErr   string
		warnings  int
	}{
		{"fine", good, []loadResult{ok}, 1, "", 0},
		{"starved once", good, []loadResult{stalled, ok}, 2, "", 1},
		{"hangs", good, []loadResult{stalled, stalled}, 2, "no request completed in 1s", 1},
		{"stalls and then answers wrong", broken, []loadResult{stalled}, 1, "then answers wrong: GET /bytes/20: status 502", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			load := &scriptedLoad{results: tc.results}
			h := &harness{opts: options{duration: time.Second}, stderr: io.Discard, load: load, ticks: 100}
			p := &peer{Name: peerDirect, addr: strings.TrimPrefix(srv.URL, "http://")}
			sc, _ := selectScenarios("small")
			r := h.measureRetrying(context.Background(), 1, sc[0], p)
			if load.calls != tc.wantCalls {
				t.Errorf("load ran %d times, want %d", load.calls, tc.wantCalls)
			}
			if tc.wantErr == "" && (r.Error != "" || r.Requests != 1000) {
				t.Errorf("run %+v, want 1000 requests and no error", r)
			}
			if tc.wantErr != "" && !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("error %q, want one containing %q", r.Error, tc.wantErr)
			}
			if len(h.warnings) != tc.warnings {
				t.Errorf("warnings %q, want %d", h.warnings, tc.warnings)
			}
		})
	}
}

// barrierLoad is a load generator whose measured runs each wait until all
// of them have started: run one after another, they fail.
type barrierLoad struct {
	peers   int
	mu      sync.Mutex
	started int
	all     chan struct{}
	warmed  atomic.Int32
}

func (b *barrierLoad) Name() string          { return "barrier" }
func (b *barrierLoad) Version() string       { return "barrier" }
func (b *barrierLoad) Non2xxMeaning() string { return "" }
func (b *barrierLoad) Run(ctx context.Context, spec loadSpec) (loadResult, error) {
	if spec.Duration == time.Second/2 { // the warm-up
		b.warmed.Add(1)
		return loadResult{}, nil
	}
	b.mu.Lock()
	if b.started++; b.started == b.peers {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return loadResult{Requests: 500, Seconds: 1, RPS: 500, P50: time.Millisecond}, nil
	case <-time.After(5 * time.Second):
		return loadResult{}, errors.New("ran alone: the other peers' runs never started")
	}
}

func TestMeasureTogether(t *testing.T) {
	load := &barrierLoad{peers: 3, all: make(chan struct{})}
	h := &harness{opts: options{duration: time.Second, warmup: time.Second / 2, together: true}, stderr: io.Discard, load: load, ticks: 100}
	var peers []*peer
	for _, name := range []string{peerBalancer, peerNginx, peerHAProxy} {
		peers = append(peers, &peer{Name: name, addr: "127.0.0.1:1"})
	}
	sc, _ := selectScenarios("small")
	records := h.measureTogether(context.Background(), 2, sc[0], peers)
	if len(records) != len(peers) {
		t.Fatalf("%d records for %d peers", len(records), len(peers))
	}
	for i, r := range records {
		if r.Error != "" || r.Requests != 500 || r.Peer != peers[i].Name || r.Round != 2 {
			t.Errorf("record %d: %+v, want 500 requests from %s in round 2", i, r, peers[i].Name)
		}
	}
	if n := load.warmed.Load(); n != 3 {
		t.Errorf("%d warm-ups, want 3", n)
	}
}
