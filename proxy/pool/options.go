package pool

import (
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
			return o, fmt.Errorf("unknown option %q (want weight=N, max_conns=N, backup or down)", w)
		}
	}
	return o, nil
}

// Options returns the balancing options the backend has now: as configured,
// or as a reload or the admin API last set them.
func (b *Backend) Options() Options {
	return Options{Weight: b.Weight(), MaxConns: b.MaxConns(), Backup: b.Backup(), Down: b.Disabled()}
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
}

// Weight returns the backend's weight, at least 1.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// MaxConns returns the most attempts the backend takes at once, 0 for no limit.
func (b *Backend) MaxConns() int { return int(b.maxConns.Load()) }

// Backup reports whether the backend is used only while no primary is healthy.
func (b *Backend) Backup() bool { return b.backup.Load() }

// Disabled reports whether the backend was configured "down": it is never
// used, whatever its health.
func (b *Backend) Disabled() bool { return b.disabled.Load() }
