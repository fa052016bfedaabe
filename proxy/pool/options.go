package pool

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxWeight is the largest weight a backend may have, as in nginx.
const MaxWeight = 1000

// Options are a backend's balancing settings, written after its URL in a
// backend entry, nginx style: "http://10.0.0.1:8081 weight=3 max_conns=200".
type Options struct {
	// Weight is the backend's share of requests relative to the others
	// (weight=N, 1 to MaxWeight; 1 when not given). Every policy honours it.
	Weight int
	// MaxConns caps the attempts in flight on the backend (max_conns=N). A
	// backend at its limit is passed by; when every usable backend is at its
	// limit the request is refused at once rather than queued. Zero means
	// no limit.
	MaxConns int
	// Backup makes the backend take traffic only while no primary (non-backup)
	// backend is healthy (backup).
	Backup bool
	// Down keeps the backend configured but never used, nor checked (down).
	Down bool
	// Protocol is what the backend speaks (proto=h2 over TLS with ALPN h2,
	// proto=h2c for HTTP/2 without TLS; HTTP/1.1 when not given).
	Protocol Protocol
	// Health is how active checks probe the backend (health=http, the
	// default: GET on the health path; health=grpc: the gRPC health
	// protocol, for proto=h2 and h2c backends only).
	Health HealthKind
	// HealthService is the service a gRPC health check asks about
	// (health=grpc:NAME); empty asks about the server as a whole.
	HealthService string
}

// Protocol is the HTTP version a backend speaks. The balancing core only
// carries it: front ends choose their transport by it.
type Protocol uint8

const (
	// HTTP1 is HTTP/1.1, over TLS for an https backend.
	HTTP1 Protocol = iota
	// H2 is HTTP/2 over TLS, negotiated with ALPN (proto=h2).
	H2
	// H2C is HTTP/2 over plain TCP with prior knowledge (proto=h2c).
	H2C
)

// String returns the value the proto option takes: "http/1.1", "h2" or
// "h2c".
func (p Protocol) String() string {
	switch p {
	case H2:
		return "h2"
	case H2C:
		return "h2c"
	}
	return "http/1.1"
}

// HTTP2 reports whether the protocol is HTTP/2, over TLS or not.
func (p Protocol) HTTP2() bool { return p == H2 || p == H2C }

// HealthKind says how active checks probe a backend.
type HealthKind uint8

const (
	// HealthHTTP checks with GET on the health path: 2xx or 3xx is healthy.
	HealthHTTP HealthKind = iota
	// HealthGRPC checks with the gRPC health protocol
	// (grpc.health.v1.Health/Check): SERVING is healthy.
	HealthGRPC
)

// String returns "http" or "grpc".
func (k HealthKind) String() string {
	if k == HealthGRPC {
		return "grpc"
	}
	return "http"
}

// String returns the options as they are written in an entry, defaults left
// out: "weight=3 max_conns=200 backup". It is "" for the defaults.
func (o Options) String() string {
	var parts []string
	if o.Weight > 1 {
		parts = append(parts, "weight="+strconv.Itoa(o.Weight))
	}
	if o.MaxConns > 0 {
		parts = append(parts, "max_conns="+strconv.Itoa(o.MaxConns))
	}
	if o.Backup {
		parts = append(parts, "backup")
	}
	if o.Down {
		parts = append(parts, "down")
	}
	if o.Protocol != HTTP1 {
		parts = append(parts, "proto="+o.Protocol.String())
	}
	if o.Health == HealthGRPC {
		h := "health=grpc"
		if o.HealthService != "" {
			h += ":" + o.HealthService
		}
		parts = append(parts, h)
	}
	return strings.Join(parts, " ")
}

// parseOptions reads the words after a backend's URL.
func parseOptions(words []string) (Options, error) {
	o := Options{Weight: 1}
	seen := make(map[string]bool, len(words))
	for _, w := range words {
		name, value, hasValue := strings.Cut(w, "=")
		if seen[name] {
			return o, fmt.Errorf("option %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "weight", "max_conns":
			if !hasValue || value == "" {
				return o, fmt.Errorf("option %q wants a value, such as %s=2", w, name)
			}
			n, err := strconv.Atoi(value)
			switch {
			case name == "weight" && (err != nil || n < 1 || n > MaxWeight):
				return o, fmt.Errorf("invalid weight %q: want 1-%d", value, MaxWeight)
			case name == "max_conns" && (err != nil || n < 0):
				return o, fmt.Errorf("invalid max_conns %q: want a count, 0 for no limit", value)
			case name == "weight":
				o.Weight = n
			default:
				o.MaxConns = n
			}
		case "proto":
			switch value {
			case "h2":
				o.Protocol = H2
			case "h2c":
				o.Protocol = H2C
			case "http/1.1", "h1":
				o.Protocol = HTTP1
			default:
				return o, fmt.Errorf("unknown proto %q (want h2, h2c or http/1.1)", value)
			}
		case "health":
			kind, service, named := strings.Cut(value, ":")
			switch {
			case kind == "http" && !named:
				o.Health = HealthHTTP
			case kind == "grpc":
				if named && (service == "" || strings.ContainsAny(service, " \t\"")) {
					return o, fmt.Errorf("invalid gRPC health service %q in %q", service, w)
				}
				o.Health, o.HealthService = HealthGRPC, service
			default:
				return o, fmt.Errorf("unknown health check %q (want http, grpc or grpc:SERVICE)", value)
			}
		case "backup", "down":
			if hasValue {
				return o, fmt.Errorf("option %q takes no value", w)
			}
			if name == "backup" {
				o.Backup = true
			} else {
				o.Down = true
			}
		default:
			return o, fmt.Errorf("unknown option %q (want weight=N, max_conns=N, backup, down, proto=h2|h2c or health=grpc)", w)
		}
	}
	if o.Health == HealthGRPC && !o.Protocol.HTTP2() {
		return o, errors.New("health=grpc needs an HTTP/2 backend: add proto=h2 (https) or proto=h2c (http)")
	}
	return o, nil
}

// Options returns the balancing options the backend has now: as configured,
// or as a reload or the admin API last set them.
func (b *Backend) Options() Options {
	return Options{
		Weight: b.Weight(), MaxConns: b.MaxConns(), Backup: b.Backup(), Down: b.Disabled(),
		Protocol: b.proto, Health: b.health, HealthService: b.healthService,
	}
}

// SetOptions gives a backend that is in no pool the options o, as a reload
// or service discovery that found it with new ones would: Pool.Update then
// passes them on to the member with its URL. A member's options change only
// through its pool (Update, SetWeight), which rebuilds the pool's tables.
func (b *Backend) SetOptions(o Options) error {
	if o.Weight < 1 || o.Weight > MaxWeight {
		return fmt.Errorf("invalid weight %d: want 1-%d", o.Weight, MaxWeight)
	}
	if o.MaxConns < 0 {
		return fmt.Errorf("invalid max_conns %d: want a count, 0 for no limit", o.MaxConns)
	}
	switch {
	case o.Protocol == H2 && b.scheme != "https":
		return fmt.Errorf("backend %q: proto=h2 is HTTP/2 over TLS and needs an https:// URL", b.url)
	case o.Protocol == H2C && b.scheme != "http":
		return fmt.Errorf("backend %q: proto=h2c is HTTP/2 without TLS and needs an http:// URL", b.url)
	case o.Health == HealthGRPC && !o.Protocol.HTTP2():
		return fmt.Errorf("backend %q: health=grpc needs an HTTP/2 backend (proto=h2 or proto=h2c)", b.url)
	}
	if b.owner.Load() != nil {
		return fmt.Errorf("backend %q is in a pool: change it through the pool", b.url)
	}
	b.setOptions(o)
	return nil
}

// setOptions applies o. Callers that own the backend in a pool rebuild the
// pool's snapshot afterwards, so that weights and backup roles take effect.
func (b *Backend) setOptions(o Options) {
	b.weight.Store(int32(max(o.Weight, 1)))
	b.maxConns.Store(int64(o.MaxConns))
	b.backup.Store(o.Backup)
	b.disabled.Store(o.Down)
	if b.owner.Load() == nil {
		b.proto, b.health, b.healthService = o.Protocol, o.Health, o.HealthService
	}
}

// Protocol returns the HTTP version the backend speaks.
func (b *Backend) Protocol() Protocol { return b.proto }

// HealthCheck returns how active checks probe the backend, and for gRPC
// checks the service they ask about.
func (b *Backend) HealthCheck() (HealthKind, string) { return b.health, b.healthService }

// Weight returns the backend's weight, at least 1.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// MaxConns returns the most attempts the backend takes at once, 0 for no limit.
func (b *Backend) MaxConns() int { return int(b.maxConns.Load()) }

// Backup reports whether the backend is used only while no primary is healthy.
func (b *Backend) Backup() bool { return b.backup.Load() }

// Disabled reports whether the backend was configured "down": it is never
// used, whatever its health.
func (b *Backend) Disabled() bool { return b.disabled.Load() }
