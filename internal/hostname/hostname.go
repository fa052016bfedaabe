// Package hostname holds the rules every host in the configuration follows
// (a backend's, a listener's, a forward proxy's, a DNS source's): one form
// for each address, and none that Go's resolver would fail on every time.
package hostname

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Port reads a port number in decimal, 1-65535 (09030 is 9030); ok is
// false for anything else. Every port in the configuration is read so.
func Port(s string) (n int, ok bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 1 && n <= 65535
}

// Canonical returns host, an IP address or a name without port or
// brackets, lower case and as it is to be dialled: an IP address unmapped
// and in its shortest form, a name as written. A name's trailing dot stays
// there, for the resolver (an absolute name is looked up without the
// search list of resolv.conf); a caller that keys or shows the name drops
// it: with or without it, the name is the same one.
//
// A host whose every label is a number (as no DNS name is: no top-level
// domain is all digits) must be an IPv4 address in dotted decimal, the
// only form Go's resolver reads as one: 127.1, 0x7f.1, 2130706433 or
// 0177.0.0.1, which C's inet_aton reads as 127.0.0.1, are names to Go,
// which it does not look up, or looks up in vain: they would fail on every
// dial, so they are refused, as are an IP address with a trailing dot and a
// name with an empty label. The error says what is wrong without naming
// host, which the caller names with the setting it came from.
func Canonical(host string) (string, error) {
	host = strings.ToLower(host)
	name := strings.TrimSuffix(host, ".")
	if name == "" {
		return "", errors.New("missing host")
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		if name != host {
			return "", fmt.Errorf("an IP address takes no trailing dot, which Go's resolver does not read as one (write %s)", ip.Unmap())
		}
		return ip.Unmap().String(), nil
	}
	if strings.Contains(name, ":") {
		// A name has no colon: an IPv6 address that does not parse.
		_, err := netip.ParseAddr(name)
		msg := err.Error()
		if _, after, ok := strings.Cut(msg, "): "); ok {
			msg = after // netip names the text, which the caller does
		}
		return "", fmt.Errorf("not an IP address (%s)", msg)
	}
	labels := strings.Split(name, ".")
	if slices.Contains(labels, "") {
		// Go's resolver refuses such a name without asking anyone.
		return "", errors.New("an empty label (a dot at the start, or two in a row), which no name has")
	}
	for _, l := range labels {
		if _, ok := numericLabel(l); !ok {
			return host, nil // a name
		}
	}
	if ip, ok := inetAton(labels); ok {
		return "", fmt.Errorf("an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as %s; Go's resolver does not read it)", ip)
	}
	return "", errors.New("not an IPv4 address, and no host name is all numbers")
}

// ListenHost returns host, as Canonical takes it, in the form a listener
// binds: "" (every interface) stays "", and a name loses its trailing dot.
// It is the same name, and Go's resolver finds one of a single label
// (localhost) in /etc/hosts only without the dot; the search list, which
// the dot keeps out, is of little weight for an address of this machine.
func ListenHost(host string) (string, error) {
	if host == "" {
		return "", nil
	}
	h, err := Canonical(host)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(h, "."), nil
}

// ListenAddr returns addr, a host:port to listen on, with its host as
// ListenHost makes it, or an error that names the host and what is wrong
// with it. An addr that is no host:port is returned as it is, for the
// listener to refuse.
func ListenAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, nil
	}
	h, err := ListenHost(host)
	if err != nil {
		return "", fmt.Errorf("host %q: %w", host, err)
	}
	return net.JoinHostPort(h, port), nil
}

// numericLabel reads l as one part of an IPv4 address in the forms C's
// inet_aton takes: decimal, octal after a leading 0, hexadecimal after 0x.
// ok is false for a label that is no number (a name's). A number no part
// can hold (out of range, or an octal with an 8 or 9 in it) is still one,
// read as badPart.
func numericLabel(l string) (v uint64, ok bool) {
	base, digits := uint64(10), l
	switch {
	case l == "":
		return 0, false
	case len(l) > 1 && l[0] == '0' && l[1]|0x20 == 'x':
		base, digits = 16, l[2:]
	case l[0] == '0':
		base = 8
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case base == 16 && 'a' <= c|0x20 && c|0x20 <= 'f':
			d = uint64(c|0x20-'a') + 10
		default:
			return 0, false
		}
		switch {
		case v == badPart:
		case d >= base || v > 1<<32:
			v = badPart
		default:
			v = v*base + d
		}
	}
	return v, true
}

// badPart is numericLabel's reading of a number too large for any part of
// an address, or not a number in its base.
const badPart = math.MaxUint64

// inetAton reads the labels of a host as C's inet_aton reads an IPv4
// address: one to four numbers, the last filling the bytes the others
// leave. ok is false when they make no address.
func inetAton(labels []string) (netip.Addr, bool) {
	if len(labels) > 4 {
		return netip.Addr{}, false
	}
	var a uint64
	for i, l := range labels {
		v, _ := numericLabel(l)
		if i < len(labels)-1 {
			if v > 255 {
				return netip.Addr{}, false
			}
			a |= v << (8 * (3 - i))
			continue
		}
		if v >= 1<<(8*(4-i)) {
			return netip.Addr{}, false
		}
		a |= v
	}
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), true
}
