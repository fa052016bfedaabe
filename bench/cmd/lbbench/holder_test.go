package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestConnHolder(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.WriteString(w, "xxxxxxxxxxxxxxxxxxxx")
	}))
	t.Cleanup(srv.Close)
	h := &connHolder{addr: strings.TrimPrefix(srv.URL, "http://"), path: "/bytes/20"}
	t.Cleanup(h.close)

	for _, n := range []int{5, 40} {
		if err := h.grow(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		if len(h.conns) != n || requests.Load() != int64(n) {
			t.Errorf("holding %d connections after %d requests, want %d of each", len(h.conns), requests.Load(), n)
		}
		if got := h.alive(); got != n {
			t.Errorf("alive() = %d, want %d", got, n)
		}
	}

	// The server drops them all: alive must notice.
	srv.CloseClientConnections()
	deadline := time.Now().Add(5 * time.Second)
	for h.alive() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("alive() = %d after the server closed every connection, want 0", h.alive())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func TestConnHolderReportsBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"error status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }, "status 502"},
		{"closes", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Connection", "close") }, "close true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			h := &connHolder{addr: strings.TrimPrefix(srv.URL, "http://"), path: "/"}
			t.Cleanup(h.close)
			err := h.grow(context.Background(), 3)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("grow error %v, want one containing %q", err, tc.want)
			}
		})
	}
	h := &connHolder{addr: "127.0.0.1:1", path: "/"}
	if err := h.grow(context.Background(), 2); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("grow to a closed port: %v, want an error naming it", err)
	}
}
