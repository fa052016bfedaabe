package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
