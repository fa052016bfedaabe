package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// serveMethods are the ways of starting the proxy's server, each given a
// listener or, for the ListenAndServe kind, its address.
var serveMethods = []struct {
	name   string
	listen bool // takes an address, not a listener
	serve  func(p *Proxy, ln net.Listener, addr string) error
}{
	{"Serve", false, func(p *Proxy, ln net.Listener, _ string) error { return p.Serve(ln) }},
	{"ServeTLS", false, func(p *Proxy, ln net.Listener, _ string) error { return p.ServeTLS(ln) }},
	{"ListenAndServe", true, func(p *Proxy, _ net.Listener, addr string) error { return p.ListenAndServe(addr) }},
	{"ListenAndServeTLS", true, func(p *Proxy, _ net.Listener, addr string) error { return p.ListenAndServeTLS(addr) }},
}

// newServableProxy returns a proxy that can serve plain HTTP and HTTPS, and
// h2c when h2c is set, with no health checks.
func newServableProxy(t *testing.T, backendURL string, h2c bool) *Proxy {
	t.Helper()
	ca := testpki.NewCA(t, "test CA")
	p, err := New(Config{
		Backends: []string{backendURL},
		TLS:      &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
		HTTP2:    HTTP2Config{H2C: h2c},
		Health:   HealthConfig{Interval: -1},
		Logger:   discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestServeAfterStop: every way of serving, called after Shutdown or
// Close, returns http.ErrServerClosed at once, as net/http's Server does:
// Serve and ServeTLS close the listener they are given, the ListenAndServe
// kind does not listen (the address given is held by another listener, so
// one that tried would fail with "address already in use" instead).
func TestServeAfterStop(t *testing.T) {
	be := startBackend(t, "a")
	stops := []struct {
		name string
		stop func(*Proxy) error
	}{
		{"Shutdown", func(p *Proxy) error { return p.Shutdown(context.Background()) }},
		{"Close", (*Proxy).Close},
	}
	for _, st := range stops {
		for _, m := range serveMethods {
			t.Run(st.name+"/"+m.name, func(t *testing.T) {
				p := newServableProxy(t, be.URL(), false)
				if err := st.stop(p); err != nil {
					t.Fatalf("%s: %v", st.name, err)
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				served := make(chan error, 1)
				go func() { served <- m.serve(p, ln, ln.Addr().String()) }()
				select {
				case err := <-served:
					if !errors.Is(err, http.ErrServerClosed) || !errors.Is(err, ErrServerClosed) {
						t.Errorf("%s after %s returned %v, want http.ErrServerClosed", m.name, st.name, err)
					}
				case <-time.After(5 * time.Second):
					// Serving: end it, and say so.
					p.Shutdown(context.Background()) //nolint:errcheck // the failure is reported below
					ln.Close()
					<-served
					t.Fatalf("%s after %s was still serving 5 s later", m.name, st.name)
				}
				if m.listen {
					return // ln is the test's, held open
				}
				if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
					c.Close()
					t.Errorf("%s after %s left the listener open", m.name, st.name)
				}
			})
		}
	}
}

// TestServeEndedByShutdown: a Serve or ServeTLS running when Shutdown is
// called returns http.ErrServerClosed, as net/http's does, so that a
// caller tells the stop it asked for from a listener that failed.
func TestServeEndedByShutdown(t *testing.T) {
	be := startBackend(t, "a")
	for _, tc := range []struct {
		name string
		h2c  bool
		tls  bool
	}{
		{"Serve", false, false},
		{"Serve with h2c", true, false},
		{"ServeTLS", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newServableProxy(t, be.URL(), tc.h2c)
			ln, err := Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() {
				if tc.tls {
					served <- p.ServeTLS(ln)
				} else {
					served <- p.Serve(ln)
				}
			}()
			waitFor(t, "the server to have its listener", 5*time.Second, func() bool {
				p.lnMu.Lock()
				defer p.lnMu.Unlock()
				return len(p.listeners) == 1
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			select {
			case err := <-served:
				if !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("%s ended by Shutdown returned %v, want http.ErrServerClosed", tc.name, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s still running 5 s after Shutdown returned", tc.name)
			}
		})
	}
}

// TestListenAndServeError: the ListenAndServe kind, given an address it
// cannot listen on, says so once, naming the address.
func TestListenAndServeError(t *testing.T) {
	be := startBackend(t, "a")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, m := range serveMethods {
		if !m.listen {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			p := newServableProxy(t, be.URL(), false)
			err := m.serve(p, nil, addr)
			prefix := "listen on " + addr + ": "
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || strings.Count(err.Error(), "listen on ") != 1 {
				t.Errorf("%s(%s) on a taken address: %v, want one %q prefix", m.name, addr, err, prefix)
			}
		})
	}
}

// TestShuttingDown: ShuttingDown reports true from Shutdown on, and after
// Close alone too, which ends the proxy's serving for good (Serve and its
// kin refuse, health checks and backend connections are gone), though a
// Serve already running goes on; false before either.
func TestShuttingDown(t *testing.T) {
	be := startBackend(t, "a")
	for _, tc := range []struct {
		name    string
		serving bool // a Serve runs on loopback when stop is called
		stop    func(*Proxy) error
		want    bool
	}{
		{"new", false, nil, false},
		{"serving", true, nil, false},
		{"Close", false, (*Proxy).Close, true},
		{"Close while serving", true, (*Proxy).Close, true},
		{"Shutdown", false, func(p *Proxy) error { return p.Shutdown(context.Background()) }, true},
		{"Shutdown while serving", true, func(p *Proxy) error { return p.Shutdown(context.Background()) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newServableProxy(t, be.URL(), false)
			if tc.serving {
				ln, err := Listen("127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				served := make(chan error, 1)
				go func() { served <- p.Serve(ln) }()
				t.Cleanup(func() {
					p.Shutdown(context.Background()) //nolint:errcheck // test end
					<-served
				})
				waitFor(t, "the server to have its listener", 5*time.Second, func() bool {
					p.lnMu.Lock()
					defer p.lnMu.Unlock()
					return len(p.listeners) == 1
				})
			}
			if tc.stop != nil {
				if err := tc.stop(p); err != nil {
					t.Fatalf("stop: %v", err)
				}
			}
			if got := p.ShuttingDown(); got != tc.want {
				t.Errorf("ShuttingDown() = %t, want %t", got, tc.want)
			}
		})
	}
}
