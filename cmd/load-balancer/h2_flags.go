package main

import (
	"flag"

	"github.com/rishichirchi/Load-Balancee/proxy"
)

// h2Flags are the flags for HTTP/2 towards clients. HTTP/2 to backends is a
// per-backend option (proto=h2, proto=h2c in -backends).
type h2Flags struct {
	on         bool
	h2c        bool
	maxStreams int
}

// maxHTTP2Streams bounds -http2-max-streams: beyond it one connection could
// hold more requests than any sensible client needs.
const maxHTTP2Streams = 10000

func (f *h2Flags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "http2", true, "serve HTTP/2 on the TLS port (ALPN h2); -http2=false offers HTTP/1.1 only")
	fs.BoolVar(&f.h2c, "h2c", false, "also serve HTTP/2 with prior knowledge (h2c) on the plain port, beside HTTP/1.1")
	fs.IntVar(&f.maxStreams, "http2-max-streams", proxy.DefaultHTTP2MaxConcurrentStreams, "most concurrent requests (streams) on one HTTP/2 client connection")
}

// apply checks the flags and puts them into o.
func (f *h2Flags) apply(o *options) error {
	if f.h2c && !f.on {
		return invalid("invalid -h2c: HTTP/2 is off (-http2=false)")
	}
	if f.maxStreams < 1 || f.maxStreams > maxHTTP2Streams {
		return invalid("invalid -http2-max-streams %d: want 1-%d", f.maxStreams, maxHTTP2Streams)
	}
	o.proxy.HTTP2 = proxy.HTTP2Config{Disable: !f.on, H2C: f.h2c, MaxConcurrentStreams: uint32(f.maxStreams)}
	return nil
}
