package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestRequestCookie(t *testing.T) {
	for _, tc := range []struct {
		headers, name string
		want          string
		found         bool
	}{
		{"Cookie: lb=abc\r\n", "lb", "abc", true},
		{"Cookie: a=1; lb=abc; b=2\r\n", "lb", "abc", true},
		{"cookie:   a=1 ;  lb = abc  \r\n", "lb", "abc", true},
		{`Cookie: lb="quoted"` + "\r\n", "lb", "quoted", true},
		{"Cookie: xlb=1; lbx=2\r\n", "lb", "", false},
		{"Cookie: LB=1\r\n", "lb", "", false}, // names are case-sensitive
		{"Cookie: a=1\r\nCookie: lb=second\r\n", "lb", "second", true},
		{"Cookie: lb=\r\n", "lb", "", false}, // empty is as good as absent
		{"Cookie: flag; lb=v\r\n", "lb", "v", true},
		{"Cookie: lb=; lb=later\r\n", "lb", "later", true},
		{"X-Cookie: lb=no\r\n", "lb", "", false},
		{"", "lb", "", false},
	} {
		var req fasthttp.Request
		raw := "GET / HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n"
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatalf("%q: %v", tc.headers, err)
		}
		got := requestCookie(&req.Header, tc.name)
		if string(got) != tc.want || (got != nil) != tc.found {
			t.Errorf("%q: %q (found %v), want %q (found %v)", tc.headers, got, got != nil, tc.want, tc.found)
		}
		// The forwarded request keeps its Cookie headers as the client wrote them.
		if c := string(req.Header.Peek("Cookie")); !strings.Contains(tc.headers, c) {
			t.Errorf("%q: Cookie header now %q", tc.headers, c)
		}
	}
}
