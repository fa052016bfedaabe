package pool

import (
	"fmt"
	"strings"
)

// Policy decides how requests are spread over the backends that are up. A
// Policy is consulted only when the set of usable backends changes; it returns
// a Picker prepared for that set, and the Picker is what runs per request.
type Policy interface {
	// Picker returns a picker over up. It runs outside the request path, so
	// this is the place for work such as weight tables. up must not be
	// modified or retained beyond the returned Picker.
	Picker(up []*Backend) Picker
}

// Picker chooses one backend per request. Implementations must be safe for
// concurrent use, take no locks and allocate nothing.
type Picker interface {
	// Pick returns a backend for r that is neither in tried nor Full, or nil
	// when no such backend is left. r may be nil.
	Pick(r Request, tried Tried) *Backend
}

// Names of the policies, as NewPolicy and the -policy flag take them.
const (
	PolicyRoundRobin = "round-robin"
	PolicyLeastConn  = "least-conn"
	PolicyP2C        = "p2c"
	PolicyRandom     = "random"
	PolicyHash       = "hash"
)

// PolicyNames lists every policy NewPolicy knows, the default first.
var PolicyNames = []string{PolicyRoundRobin, PolicyLeastConn, PolicyP2C, PolicyRandom, PolicyHash}

// NewPolicy returns the policy called name, drawing random numbers from
// math/rand/v2 where it needs them. key is what "hash" balances on (the
// client IP when zero); the other policies ignore it.
func NewPolicy(name string, key Key) (Policy, error) {
	switch name {
	case PolicyRoundRobin:
		return NewRoundRobin(), nil
	case PolicyLeastConn:
		return NewLeastConn(), nil
	case PolicyP2C:
		return NewP2C(nil), nil
	case PolicyRandom:
		return NewRandom(nil), nil
	case PolicyHash:
		if key.Kind == 0 {
			key = Key{Kind: KeyClientIP}
		}
		return NewMaglev(key), nil
	}
	return nil, fmt.Errorf("unknown policy %q: want %s", name, orList(PolicyNames))
}

// orList joins names as "a, b, c or d".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// eligible reports whether b may take the attempt: not yet tried by this
// request, and below its connection limit.
func eligible(b *Backend, tried *Tried) bool {
	return (tried.n == 0 || !tried.Has(b)) && !b.Full()
}

// firstEligible returns the first eligible backend of up from index start on,
// wrapping around, or nil. It is every picker's last resort, so that a
// picker fails only when no backend at all can take the attempt.
func firstEligible(up []*Backend, start int, tried *Tried) *Backend {
	n := len(up)
	for i := 0; i < n; i++ {
		j := start + i
		if j >= n {
			j -= n
		}
		if b := up[j]; eligible(b, tried) {
			return b
		}
	}
	return nil
}

// Request is what a policy may learn about the request it balances. Front
// ends implement it over their own request types without copying, so the
// core stays free of any HTTP library.
type Request interface {
	// Key returns the bytes of the request attribute k names, or nil when the
	// request lacks it. The bytes are valid until the request completes.
	Key(k Key) []byte
}

// KeyKind names a request attribute a hashing policy can balance on.
type KeyKind uint8

const (
	// KeyClientIP is the client's IP address.
	KeyClientIP KeyKind = iota + 1
	// KeyURI is the request path with its query.
	KeyURI
	// KeyHeader is the value of the header named by Key.Name.
	KeyHeader
	// KeyCookie is the value of the cookie named by Key.Name.
	KeyCookie
)

// Key selects a request attribute: a kind, and a name for headers and cookies.
type Key struct {
	Kind KeyKind
	Name string
}

// ParseKey reads a key as the -hash-key flag writes it: "ip", "uri",
// "header:NAME" or "cookie:NAME". Header and cookie names must be HTTP
// tokens.
func ParseKey(s string) (Key, error) {
	switch s {
	case "ip":
		return Key{Kind: KeyClientIP}, nil
	case "uri":
		return Key{Kind: KeyURI}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	var k Key
	switch {
	case ok && kind == "header":
		k.Kind = KeyHeader
	case ok && kind == "cookie":
		k.Kind = KeyCookie
	default:
		return k, fmt.Errorf("unknown key %q: want ip, uri, header:NAME or cookie:NAME", s)
	}
	if err := CheckToken(name); err != nil {
		return k, fmt.Errorf("%s name %q: %v", kind, name, err)
	}
	k.Name = name
	return k, nil
}

// String returns the key as ParseKey reads it.
func (k Key) String() string {
	switch k.Kind {
	case KeyClientIP:
		return "ip"
	case KeyURI:
		return "uri"
	case KeyHeader:
		return "header:" + k.Name
	case KeyCookie:
		return "cookie:" + k.Name
	}
	return ""
}

// CheckToken reports whether name can be a header or cookie name: an HTTP
// token (RFC 9110 §5.6.2), which is also what a cookie name must be (RFC
// 6265 §4.1.1).
func CheckToken(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return fmt.Errorf("character %q is not allowed in a name", c)
		}
	}
	return nil
}

// MaxTries is the most attempts one request can make; Tried holds that many.
const MaxTries = 16

// Tried is the small set of backends a request has already attempted. It is a
// value, not a slice, so passing it to a Picker through an interface call
// does not move it to the heap.
type Tried struct {
	list [MaxTries]*Backend
	n    int
}

// Add records b. Beyond MaxTries it does nothing.
func (t *Tried) Add(b *Backend) {
	if t.n < len(t.list) {
		t.list[t.n] = b
		t.n++
	}
}

// Has reports whether b was recorded.
func (t *Tried) Has(b *Backend) bool {
	for i := 0; i < t.n; i++ {
		if t.list[i] == b {
			return true
		}
	}
	return false
}

// Len returns how many backends were recorded.
func (t *Tried) Len() int { return t.n }

// Each policy says its name as NewPolicy takes it, for logs and the admin
// interface.

// String returns "round-robin".
func (*RoundRobin) String() string { return PolicyRoundRobin }

// String returns "least-conn".
func (*LeastConn) String() string { return PolicyLeastConn }

// String returns "p2c".
func (*P2C) String() string { return PolicyP2C }

// String returns "random".
func (*Random) String() string { return PolicyRandom }

// String returns "hash" and the key: "hash header:X-User".
func (m *Maglev) String() string { return PolicyHash + " " + m.key.String() }
