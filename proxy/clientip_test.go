package proxy

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestClientAddrLinesAsOneList: X-Forwarded-For in several lines names the
// client that one line of them all, joined with commas, would name, and
// its chain is forwarded joined, on both front ends. Every chain of up to
// five entries (a trusted proxy, two untrusted addresses, something that
// is not an address) is cut into lines in every way, and compared with a
// walk over the joined line as the proxy made it when it read one line.
func TestClientAddrLinesAsOneList(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{trusted: trusted}
	peer := netip.MustParseAddr("192.0.2.10")
	entries := []string{"10.0.0.1", "198.51.100.1", "203.0.113.2", "nope"}
	var req fasthttp.Request
	var ctx fasthttp.RequestCtx
	cases := 0
	for n := 1; n <= 5; n++ {
		chain := make([]string, n)
		for pick := 0; pick < pow(len(entries), n); pick++ {
			for i, k := 0, pick; i < n; i, k = i+1, k/len(entries) {
				chain[i] = entries[k%len(entries)]
			}
			joined := strings.Join(chain, ", ")
			want := walkJoined(trusted, peer, joined)
			for cuts := 0; cuts < 1<<(n-1); cuts++ {
				// Bit i of cuts ends a line after entry i.
				var lines []string
				start := 0
				for i := range n {
					if i == n-1 || cuts&(1<<i) != 0 {
						lines = append(lines, strings.Join(chain[start:i+1], ", "))
						start = i + 1
					}
				}
				raw := "GET / HTTP/1.1\r\nHost: a\r\n"
				for i, line := range lines {
					name := "X-Forwarded-For"
					if i%2 == 1 {
						name = "x-forwarded-for"
					}
					raw += name + ": " + line + "\r\nX-Other: " + line + "\r\n"
				}
				req.Reset()
				if err := req.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
					t.Fatal(err)
				}
				ctx.Init(&req, &net.TCPAddr{IP: peer.AsSlice(), Port: 1}, nil)
				client, fwd := p.clientAddr(&ctx)
				if client != want || string(fwd.appendTo(nil)) != joined {
					t.Fatalf("lines %q: HTTP/1.1 client %v, chain %q; want %v, %q", lines, client, fwd.appendTo(nil), want, joined)
				}
				client, h2chain := p.clientBehind(peer, lines)
				if client != want || h2chain != joined {
					t.Fatalf("lines %q: HTTP/2 client %v, chain %q; want %v, %q", lines, client, h2chain, want, joined)
				}
				cases++
			}
		}
	}
	if cases != 18724 {
		t.Errorf("%d cases, want 18724", cases)
	}
}

func pow(b, n int) int {
	r := 1
	for range n {
		r *= b
	}
	return r
}

// walkJoined is the walk over X-Forwarded-For in one line: from the right,
// to the first entry that is not a trusted proxy, stopping at one that is
// not an address.
func walkJoined(trusted trustedNets, peer netip.Addr, xff string) netip.Addr {
	client := peer
	for rest := xff; rest != ""; {
		i := strings.LastIndexByte(rest, ',')
		item := strings.TrimSpace(rest[i+1:])
		rest = rest[:max(i, 0)]
		a, err := netip.ParseAddr(item)
		if err != nil {
			break
		}
		client = a.Unmap()
		if !trusted.contains(client) {
			break
		}
	}
	return client
}
