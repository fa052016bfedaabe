package proxy

import (
	"bufio"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkClientAddr finds the client behind a trusted proxy in a header
// block of ten lines, X-Forwarded-For the third: in one line, and in two
// (HAProxy's option forwardfor after a client's own). The scan goes to the
// end of the block either way, to find every line.
func BenchmarkClientAddr(b *testing.B) {
	trusted, _ := ParseTrustedProxies("10.0.0.0/8, 192.0.2.10")
	p := &Proxy{trusted: trusted}
	for _, tc := range []struct{ name, xff string }{
		{"one line", "X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n"},
		{"two lines", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.9\r\n"},
	} {
		raw := "GET /some/path?q=1 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
			tc.xff + "Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
			"Cookie: theme=dark; sid=abc123\r\nReferer: https://shop.example/\r\nX-Request-Id: 5f1c2a\r\n\r\n"
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			b.Fatal(err)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 1}, nil)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.clientAddr(&ctx)
			}
		})
	}
}
