package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoundRobinKeepsHostAndSetsForwarded(t *testing.T) {
	type seen struct{ backend, host, xff string }
	got := make(chan seen, 16)
	var urls []string
	for _, name := range []string{"a", "b"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- seen{name, r.Host, r.Header.Get("X-Forwarded-For")}
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	rp, err := newProxy(urls)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(rp)
	t.Cleanup(front.Close)

	var order []string
	for range 4 {
		req, _ := http.NewRequest("GET", front.URL+"/bytes/20", nil)
		req.Host = "example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := <-got
		if s.host != "example.com" {
			t.Errorf("backend saw Host %q, want the client's example.com", s.host)
		}
		if s.xff != "127.0.0.1" {
			t.Errorf("backend saw X-Forwarded-For %q, want 127.0.0.1", s.xff)
		}
		if string(body) != s.backend {
			t.Errorf("client got %q from backend %s", body, s.backend)
		}
		order = append(order, s.backend)
	}
	if strings.Join(order, "") != "abab" {
		t.Errorf("backends in order %v, want round-robin a b a b", order)
	}
}

func TestNewProxyRejects(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{""}, "-backends is required"},
		{[]string{"htp://x:1"}, `invalid -backends entry "htp://x:1"`},
		{[]string{"http://"}, `invalid -backends entry "http://"`},
	} {
		if _, err := newProxy(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("newProxy(%q): %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}
