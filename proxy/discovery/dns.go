// Package discovery finds a pool's backends at run time: from DNS (A and AAAA
// records, or SRV records with their ports and weights) and from etcd v3
// (keys under a prefix, watched). Each source is a proxy.Discoverer.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"codeberg.org/miekg/dns"
	"codeberg.org/miekg/dns/dnsconf"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Defaults of DNS's zero fields.
const (
	DefaultRefresh = 30 * time.Second
	// MinRefresh bounds how often a name is resolved, whatever its TTL (a
	// TTL of 0 would otherwise be a busy loop).
	MinRefresh = time.Second
	// queryTimeout bounds one query to the resolver.
	queryTimeout = 2 * time.Second
)

// Record types DNS resolves.
const (
	// TypeA resolves A and AAAA records: one backend per address, every one
	// on DNS.Port.
	TypeA = "A"
	// TypeSRV resolves SRV records: one backend per target, on the record's
	// port and with its weight; records of a lower priority than the best
	// become backups.
	TypeSRV = "SRV"
)

// DNS finds backends by resolving a name, again every Refresh or when the
// records' TTL runs out, whichever comes first. Through a failure of the
// resolver it keeps the last answer.
type DNS struct {
	// Name is the name resolved: a host name for TypeA
	// ("api.service.consul"), a service name for TypeSRV
	// ("_api._tcp.example.com"). Never an IP address, nor of numbers
	// only (see Check).
	Name string
	// Type is TypeA or TypeSRV; empty means TypeSRV for a Name whose first
	// label starts with an underscore, TypeA otherwise.
	Type string
	// Port is the backends' port for TypeA (required there); SRV records
	// carry their own.
	Port int
	// Scheme is "http" (the default) or "https".
	Scheme string
	// Refresh is the longest time between two resolutions; zero means
	// DefaultRefresh. A shorter TTL in the answer wins, down to MinRefresh.
	Refresh time.Duration
	// Resolver is the DNS server's host:port; empty means the first
	// nameserver of /etc/resolv.conf.
	Resolver string
	// Options are backend options given to every backend found, as after a
	// URL in Config.Backends ("max_conns=100"). With SRV, weight and backup
	// come from the records.
	Options string
	// Logger receives failures and changes; nil means slog.Default().
	Logger *slog.Logger
}

// Check validates d and fills in its defaults. Name and the host of
// Resolver follow the rules of a backend's host (see pool.NewBackend): a
// host of numbers only is an IPv4 address in dotted decimal (127.1 or
// 0x7f.1 are refused, naming what C's inet_aton reads), an IP address takes
// no trailing dot, a name no empty label; Name is a name, never an IP
// address, and loses its trailing dot (the same name). Resolver's port is
// a number, 1-65535. Checked again, d is only read: proxy.Reload checks the
// sources it keeps running.
func (d *DNS) Check() error {
	name := strings.TrimSpace(d.Name)
	if strings.TrimSuffix(name, ".") == "" {
		return errors.New("dns: empty name")
	}
	if strings.ContainsAny(name, " /:@") {
		return fmt.Errorf("dns: invalid name %q: want a DNS name such as api.internal or _api._tcp.example.com", d.Name)
	}
	canon, err := hostname.Canonical(name)
	if err != nil {
		return fmt.Errorf("dns: invalid name %q: %v", d.Name, err)
	}
	if _, err := netip.ParseAddr(canon); err == nil {
		// Asked for its records, a resolver answers "no such name", and
		// the pool would stay empty without a word of why.
		return fmt.Errorf("dns: invalid name %q: an IP address, which has no records to look up (list it in backends instead)", d.Name)
	}
	// Written only when they change: a DNS checked again while it runs (a
	// reload that keeps it) is only read.
	if n := strings.TrimSuffix(canon, "."); d.Name != n {
		d.Name = n
	}
	typ := ""
	switch strings.ToUpper(d.Type) {
	case "":
		typ = TypeA
		if strings.HasPrefix(d.Name, "_") {
			typ = TypeSRV
		}
	case "A", "AAAA":
		typ = TypeA
	case TypeSRV:
		typ = TypeSRV
	default:
		return fmt.Errorf("dns: invalid type %q: want A (A and AAAA records) or SRV", d.Type)
	}
	if d.Type != typ {
		d.Type = typ
	}
	switch {
	case d.Type == TypeA && (d.Port < 1 || d.Port > 65535):
		return fmt.Errorf("dns: %s: A records need a port, 1-65535 (got %d)", d.Name, d.Port)
	case d.Type == TypeSRV && d.Port != 0:
		return fmt.Errorf("dns: %s: SRV records carry their ports: no port to give", d.Name)
	}
	switch d.Scheme {
	case "":
		d.Scheme = "http"
	case "http", "https":
	default:
		return fmt.Errorf("dns: invalid scheme %q: want http or https", d.Scheme)
	}
	switch {
	case d.Refresh == 0:
		d.Refresh = DefaultRefresh
	case d.Refresh < MinRefresh:
		return fmt.Errorf("dns: refresh %v: at least %v", d.Refresh, MinRefresh)
	}
	if d.Resolver != "" {
		host, port, err := net.SplitHostPort(d.Resolver)
		if err != nil {
			return fmt.Errorf("dns: invalid resolver %q: want host:port, such as 127.0.0.1:53", d.Resolver)
		}
		if _, ok := hostname.Port(port); !ok {
			return fmt.Errorf("dns: invalid resolver %q: port %q: want 1-65535", d.Resolver, port)
		}
		if host != "" {
			if _, err := hostname.Canonical(host); err != nil {
				return fmt.Errorf("dns: invalid resolver %q: host %q: %v", d.Resolver, host, err)
			}
		}
	}
	// The options must make valid entries, and leave SRV's own alone.
	o, err := checkOptions(d.Scheme, d.Options)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	if d.Type == TypeSRV && (o.Weight != 1 || o.Backup) {
		return fmt.Errorf("dns: options %q: SRV records give weights and backups", d.Options)
	}
	return nil
}

// checkOptions parses backend options as they follow a URL with the scheme
// (proto=h2 needs https, proto=h2c http).
func checkOptions(scheme, opts string) (pool.Options, error) {
	b, err := pool.NewBackend(scheme + "://example:1 " + opts)
	if err != nil {
		var pe *pool.ParseError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return pool.Options{}, fmt.Errorf("invalid options %q: %v", opts, err)
	}
	return b.Options(), nil
}

// String names the source with everything that makes it what it is.
func (d *DNS) String() string {
	s := "dns " + d.Type + " " + d.Name
	if d.Type == TypeA {
		s += ":" + strconv.Itoa(d.Port)
	}
	s += " " + d.Scheme + " every " + d.Refresh.String()
	if d.Resolver != "" {
		s += " via " + d.Resolver
	}
	if d.Options != "" {
		s += " with " + d.Options
	}
	return s
}

func (d *DNS) log() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.Default()
}

// Discover resolves the name until ctx ends: at once, then when the shorter
// of Refresh and the answer's TTL has passed. An answer that differs from
// the last goes to update; a failure keeps the last and is tried again
// sooner.
func (d *DNS) Discover(ctx context.Context, update func([]string)) {
	log := d.log().With("source", d.String())
	var last []string
	sent := false
	failing := false
	retry := MinRefresh
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		entries, ttl, err := d.resolve(ctx)
		wait := d.Refresh
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				log.Warn("dns discovery failed: keeping the backends found before", "error", err.Error(), "backends", len(last))
			}
			failing = true
			wait = min(retry, d.Refresh)
			retry = min(retry*2, d.Refresh)
		default:
			if failing {
				log.Info("dns discovery recovered")
			}
			failing, retry = false, MinRefresh
			if ttl > 0 && ttl < wait {
				wait = ttl
			}
			if !sent || !slices.Equal(entries, last) {
				if len(entries) == 0 {
					log.Warn("dns discovery found no backends: the name has no records")
				} else {
					log.Info("dns discovery found backends", "backends", len(entries))
				}
				last, sent = entries, true
				update(slices.Clone(entries))
			}
		}
		t.Reset(max(wait, MinRefresh))
	}
}

// resolve asks once and returns the backends' entries, sorted, and the
// smallest TTL among the records.
func (d *DNS) resolve(ctx context.Context) ([]string, time.Duration, error) {
	server := d.Resolver
	if server == "" {
		conf, err := dnsconf.FromFile("/etc/resolv.conf")
		if err != nil || len(conf.Servers) == 0 {
			return nil, 0, fmt.Errorf("no resolver: none given and none in /etc/resolv.conf")
		}
		server = net.JoinHostPort(conf.Servers[0], conf.Port)
	}
	var entries []string
	var ttl uint32
	minTTL := func(t uint32) {
		if ttl == 0 || t < ttl {
			ttl = t
		}
	}
	switch d.Type {
	case TypeSRV:
		r, err := query(ctx, server, d.Name, dns.TypeSRV)
		if err != nil {
			return nil, 0, err
		}
		var srvs []*dns.SRV
		for _, rr := range r.Answer {
			if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
				srvs = append(srvs, s)
				minTTL(s.Hdr.TTL)
			}
		}
		entries = d.srvEntries(srvs)
	default:
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r, err := query(ctx, server, d.Name, qt)
			if err != nil {
				return nil, 0, err
			}
			for _, rr := range r.Answer {
				var a netip.Addr
				switch rr := rr.(type) {
				case *dns.A:
					a = rr.Addr
				case *dns.AAAA:
					a = rr.Addr
				default:
					continue // the CNAMEs on the way
				}
				minTTL(rr.Header().TTL)
				entries = append(entries, d.entry(netip.AddrPortFrom(a.Unmap(), uint16(d.Port)).String(), ""))
			}
		}
	}
	slices.Sort(entries)
	return slices.Compact(entries), time.Duration(ttl) * time.Second, nil
}

// srvEntries turns SRV records into entries: the best (lowest) priority's
// targets are primaries, the others backups; weights are scaled into
// 1..pool.MaxWeight.
func (d *DNS) srvEntries(srvs []*dns.SRV) []string {
	if len(srvs) == 0 {
		return nil
	}
	best, heaviest := srvs[0].Priority, uint16(0)
	same := true
	for _, s := range srvs {
		best = min(best, s.Priority)
		heaviest = max(heaviest, s.Weight)
		same = same && s.Weight == srvs[0].Weight
	}
	var entries []string
	for _, s := range srvs {
		w := 1
		if !same {
			w = int(s.Weight)
			if heaviest > pool.MaxWeight {
				w = w * pool.MaxWeight / int(heaviest)
			}
			w = max(w, 1)
		}
		opts := "weight=" + strconv.Itoa(w)
		if s.Priority != best {
			opts += " backup"
		}
		host := strings.TrimSuffix(s.Target, ".")
		entries = append(entries, d.entry(net.JoinHostPort(host, strconv.Itoa(int(s.Port))), opts))
	}
	return entries
}

// entry writes one backend: URL, then the record's options and d's.
func (d *DNS) entry(hostport, opts string) string {
	e := d.Scheme + "://" + hostport
	if opts != "" {
		e += " " + opts
	}
	if d.Options != "" {
		e += " " + d.Options
	}
	return e
}

// query asks server for name's records of type qt, over UDP, then over TCP
// when the answer did not fit.
func query(ctx context.Context, server, name string, qt uint16) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	c := dns.NewClient()
	var r *dns.Msg
	for _, network := range []string{"udp", "tcp"} {
		m := dns.NewMsg(name, qt)
		m.UDPSize = 1232 // EDNS0: the size that avoids fragmentation
		var err error
		if r, _, err = c.Exchange(ctx, m, network, server); err != nil {
			return nil, fmt.Errorf("%s %s: %w", dns.TypeToString[qt], name, err)
		}
		if !r.Truncated {
			break
		}
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return r, nil
	case dns.RcodeNameError:
		// The name does not exist: for a pool, no backends.
		return r, nil
	}
	return nil, fmt.Errorf("%s %s: %s", dns.TypeToString[qt], name, dns.RcodeToString[r.Rcode])
}
