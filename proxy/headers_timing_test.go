package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkStripRequestHeaders strips a browser's request of ten or twelve
// lines with Connection: keep-alive among them: with no name twice; with
// two Forwarded and two Via lines after it, which the strip puts back in
// order; and with those lines before it, where no line moves. Each round
// copies the parsed header afresh; "copy only" is that copy alone, to
// subtract. cpu-ns/op is the process's CPU time, steadier than ns/op on a
// shared machine.
func BenchmarkStripRequestHeaders(b *testing.B) {
	const (
		common = "Host: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
			"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
			"Cookie: theme=dark; sid=abc123\r\nReferer: https://shop.example/\r\n"
		twice = "Forwarded: for=192.0.2.1\r\nVia: 1.1 cdn\r\nForwarded: for=198.51.100.7\r\nVia: 1.1 edge\r\n"
	)
	for _, tc := range []struct {
		name, headers string
		strip         bool
	}{
		{"copy only", common + "Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\nX-Request-Id: 5f1c2a\r\n", false},
		{"keep-alive", common + "Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\nX-Request-Id: 5f1c2a\r\n", true},
		{"keep-alive, names twice after it", common + "Connection: keep-alive\r\n" + twice, true},
		{"keep-alive, names twice before it", common + twice + "Connection: keep-alive\r\n", true},
	} {
		var src, h fasthttp.RequestHeader
		src.DisableNormalizing()
		raw := "GET /some/path?q=1 HTTP/1.1\r\n" + tc.headers + "\r\n"
		if err := src.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				src.CopyTo(&h)
				if tc.strip {
					stripRequestHeaders(&h, h.RawHeaders())
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkCleanResponse cleans a response of ten to twelve lines: with no
// hop-by-hop header (nothing to strip); with Connection: keep-alive and
// Keep-Alive last, as Node.js sends them, with or without two Link lines
// before (no line moves); and with two Link lines after them, as nginx
// sends its add_header lines, which the strip puts back in order. Each
// round copies the parsed header afresh; "copy only" is that copy alone,
// to subtract. cpu-ns/op is the process's CPU time, steadier than ns/op on
// a shared machine.
func BenchmarkCleanResponse(b *testing.B) {
	const (
		common = "Content-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\nX-Powered-By: Express\r\n" +
			"ETag: W/\"2-nOO9QiTIwXgNtWtBJezz8kv3SLc\"\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nVary: Accept-Encoding\r\n" +
			"Cache-Control: no-cache\r\nX-Request-Id: 5f1c2a\r\n"
		keepAlive = "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
		twice     = "Link: </a.css>; rel=preload; as=style\r\nLink: </b.js>; rel=preload; as=script\r\n"
	)
	for _, tc := range []struct {
		name, headers string
		clean         bool
	}{
		{"copy only", common + keepAlive, false},
		{"no hop-by-hop", common + "Strict-Transport-Security: max-age=63072000\r\nX-Frame-Options: DENY\r\n", true},
		{"keep-alive", common + keepAlive, true},
		{"keep-alive, names twice before it", common + twice + keepAlive, true},
		{"keep-alive, names twice after it", common + keepAlive + twice, true},
	} {
		var src fasthttp.ResponseHeader
		src.DisableNormalizing()
		raw := "HTTP/1.1 200 OK\r\n" + tc.headers + "\r\n"
		if err := src.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			b.Fatal(err)
		}
		var resp fasthttp.Response
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				src.CopyTo(&resp.Header)
				if tc.clean {
					cleanResponse(&resp)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
