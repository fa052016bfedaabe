// Command httpproxy is the benchmark's baseline: Go's standard
// net/http/httputil.ReverseProxy, round-robin over the backends, tuned as a
// careful user would (keep-alive pools sized for the load, pooled copy
// buffers, no compression), so the comparison is with net/http at its best.
//
//	httpproxy -backends=http://127.0.0.1:8081,http://127.0.0.1:8082 -listen=127.0.0.1:3031
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("httpproxy", flag.ContinueOnError)
	backends := fs.String("backends", "", "comma-separated backend URLs, http://host:port (required)")
	listen := fs.String("listen", "127.0.0.1:3031", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	handler, err := newProxy(strings.Split(*backends, ","))
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpproxy: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "httpproxy: %v\n", err)
		return 1
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	fmt.Fprintf(os.Stderr, "httpproxy: listening on %s, GOMAXPROCS=%d\n", ln.Addr(), runtime.GOMAXPROCS(0))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "httpproxy: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(os.Stderr, "httpproxy: shutdown: %v\n", err)
	}
	return 0
}

// newProxy returns a ReverseProxy that sends each request to the next
// backend in turn, keeping the client's Host and setting X-Forwarded-*.
func newProxy(raw []string) (*httputil.ReverseProxy, error) {
	var targets []*url.URL
	for _, r := range raw {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("invalid -backends entry %q: want http://host:port", r)
		}
		targets = append(targets, u)
	}
	if len(targets) == 0 {
		return nil, errors.New("-backends is required")
	}
	var next atomic.Uint64
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no limit overall
		MaxIdleConnsPerHost:   1024,
		MaxConnsPerHost:       1024,
		IdleConnTimeout:       4 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targets[(next.Add(1)-1)%uint64(len(targets))])
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:  transport,
		BufferPool: newBufferPool(32 << 10),
		ErrorLog:   log.New(io.Discard, "", 0),
	}, nil
}

// bufferPool lends the ReverseProxy its copy buffers, so a response body
// does not cost a fresh 32 KiB buffer.
type bufferPool struct{ p sync.Pool }

func newBufferPool(size int) *bufferPool {
	bp := &bufferPool{}
	bp.p.New = func() any { b := make([]byte, size); return &b }
	return bp
}

func (bp *bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }
