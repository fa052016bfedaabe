package pool

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
	// Pick returns a backend for r that is not in tried, or nil when every
	// usable backend has been tried.
	Pick(r Request, tried Tried) *Backend
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
