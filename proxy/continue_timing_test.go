package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHeaderReceived is the server's HeaderReceived hook on a
// browser's GET (a length check: the common path), on a POST without an
// expectation and on one that expects 100-continue under its canonical
// name (a walk of the header block that changes nothing), and on one that
// spells it "expect" (renamed). The rename changes the header, so that
// case copies the parsed header afresh each round; "copy only" is that copy
// alone, to subtract. cpu-ns/op is the process's CPU time, steadier than
// ns/op on a shared machine.
func BenchmarkHeaderReceived(b *testing.B) {
	const common = "Host: shop.example\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Cookie: theme=dark; sid=abc123\r\nReferer: https://shop.example/\r\nConnection: keep-alive\r\n"
	for _, tc := range []struct {
		name, head string
		copy, hook bool
	}{
		{"GET", "GET /some/path?q=1 HTTP/1.1\r\n" + common, false, true},
		{"POST", "POST /form HTTP/1.1\r\n" + common + "Content-Length: 5\r\n", false, true},
		{"POST, Expect", "POST /form HTTP/1.1\r\n" + common + "Content-Length: 5\r\nExpect: 100-continue\r\n", false, true},
		{"copy only", "POST /form HTTP/1.1\r\n" + common + "Content-Length: 5\r\nexpect: 100-continue\r\n", true, false},
		{"POST, expect", "POST /form HTTP/1.1\r\n" + common + "Content-Length: 5\r\nexpect: 100-continue\r\n", true, true},
	} {
		var src, h fasthttp.RequestHeader
		src.DisableNormalizing()
		if err := src.Read(bufio.NewReader(strings.NewReader(tc.head + "\r\n"))); err != nil {
			b.Fatal(err)
		}
		src.CopyTo(&h)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				if tc.copy {
					src.CopyTo(&h)
				}
				if tc.hook {
					headerReceived(&h)
				}
			}
			reportCPU(b, cpu)
			if tc.hook && string(h.Peek("Expect")) != string(src.Peek("Expect"))+string(src.Peek("expect")) {
				b.Fatalf("Expect is %q after the hook", h.Peek("Expect"))
			}
		})
	}
}
