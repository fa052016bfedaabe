package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/rishichirchi/Load-Balancee/backend"
)

// inmemoryRig is a client, a proxy and backends joined by in-memory
// listeners: the whole request path without the kernel, for allocation
// tests and benchmarks of the proxy's own cost.
type inmemoryRig struct {
	proxy  *Proxy
	client *fasthttp.HostClient
}

// clientAddr is the address the proxy sees its in-memory client at.
var clientAddr = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 40000}

func newInmemoryRig(tb testing.TB, nBackends int) *inmemoryRig {
	tb.Helper()
	return newInmemoryRigConfig(tb, nBackends, nil)
}

// newInmemoryRigConfig is newInmemoryRig with a hook to adjust the proxy's
// Config (policy, sticky cookie, backend options) before it starts.
func newInmemoryRigConfig(tb testing.TB, nBackends int, configure func(*Config)) *inmemoryRig {
	tb.Helper()
	listeners := map[string]*fasthttputil.InmemoryListener{}
	var urls []string
	for i := range nBackends {
		ln := fasthttputil.NewInmemoryListener()
		name := string(rune('a' + i))
		srv := backend.NewServer(backend.New(name))
		srv.StreamRequestBody = false // count the proxy's allocations, not the backend's
		go srv.Serve(ln)              //nolint:errcheck // ends when ln closes
		tb.Cleanup(func() { ln.Close() })
		addr := "backend-" + name + ":80"
		listeners[addr] = ln
		urls = append(urls, "http://"+addr)
	}
	cfg := Config{
		Backends: urls,
		Dial: func(addr string, _ time.Duration) (net.Conn, error) {
			return listeners[addr].Dial()
		},
		Health: HealthConfig{Interval: -1},
		Logger: discardLogger(),
	}
	if configure != nil {
		configure(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	pln := fasthttputil.NewInmemoryListener()
	go p.Serve(pln) //nolint:errcheck // ends when pln closes
	client := &fasthttp.HostClient{
		Addr:                      "proxy",
		Dial:                      func(string) (net.Conn, error) { return pln.DialWithLocalAddr(clientAddr) },
		MaxIdemponentCallAttempts: 1,
	}
	tb.Cleanup(func() {
		// Leave no connection behind: later tests count the goroutines
		// on the request path.
		client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck // best effort at test end
	})
	return &inmemoryRig{proxy: p, client: client}
}
