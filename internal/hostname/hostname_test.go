package hostname

import (
	"strings"
	"testing"
)

func TestPort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // 0: refused
	}{
		{"1", 1}, {"8081", 8081}, {"09030", 9030}, {"65535", 65535},
		{"", 0}, {"0", 0}, {"65536", 0}, {"-1", 0}, {"80x", 0}, {"http", 0}, {"99999999999999999999", 0},
	} {
		n, ok := Port(tc.in)
		if ok != (tc.want != 0) || (ok && n != tc.want) {
			t.Errorf("Port(%q) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.want != 0)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      string // in the error; "" for a host that is accepted
	}{
		{in: "127.0.0.1", want: "127.0.0.1"},
		{in: "::FFFF:127.0.0.1", want: "127.0.0.1"},
		{in: "0:0::1", want: "::1"},
		{in: "localhost", want: "localhost"},
		{in: "LocalHost.", want: "localhost."}, // dialled absolute
		{in: "1.2.3.example", want: "1.2.3.example"},
		{in: "_api._tcp.example.com", want: "_api._tcp.example.com"},
		{in: "127.1", err: "an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)"},
		{in: "0x7F.1", err: "(C's inet_aton reads this one as 127.0.0.1;"},
		{in: "2130706433", err: "(C's inet_aton reads this one as 127.0.0.1;"},
		{in: "0177.0.0.1", err: "(C's inet_aton reads this one as 127.0.0.1;"},
		{in: "127.0.0.1.", err: "an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)"},
		{in: "999.1.1.1", err: "not an IPv4 address, and no host name is all numbers"},
		{in: "a..b", err: "an empty label (a dot at the start, or two in a row), which no name has"},
		{in: ".localhost", err: "an empty label"},
		{in: "", err: "missing host"},
	} {
		got, err := Canonical(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

func TestListenAddr(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      string // in the error; "" for an address that is accepted
	}{
		{in: ":3030", want: ":3030"},
		{in: "127.0.0.1:3030", want: "127.0.0.1:3030"},
		{in: "[::FFFF:127.0.0.1]:3030", want: "127.0.0.1:3030"},
		{in: "[::1]:3030", want: "[::1]:3030"},
		{in: "LocalHost.:3030", want: "localhost:3030"}, // the same name, as /etc/hosts has it
		{in: "3030", want: "3030"},                      // no host:port: the listener's to refuse
		{in: "127.1:3030", err: `host "127.1": an IPv4 address takes the dotted-decimal form`},
		{in: "127.0.0.1.:3030", err: `host "127.0.0.1.": an IP address takes no trailing dot`},
		{in: "[::1::2]:3030", err: `host "::1::2": not an IP address (multiple :: in address`},
		{in: ".:3030", err: `host ".": missing host`},
	} {
		got, err := ListenAddr(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}
