package proxy

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// sticky is session affinity by cookie. The first response to a client sets
// the cookie to an opaque id of the backend that served it; later requests
// carrying it go to that backend while it is usable (healthy, in the active
// set, not draining, below its max_conns), and are balanced by the policy
// otherwise, the cookie then set anew. The id is pool.Backend.ID, a
// truncated SHA-256 of the backend's URL, as nginx's sticky cookie uses a
// hash of the address: it does not show the address, and every balancer with
// the same backends gives the same ids, so a client keeps its backend
// whichever balancer it reaches.
//
// Everything a request needs is built here, once per membership of the pool:
// a lookup is a hex decode and a binary search, and setting the cookie copies
// a prepared header.
type sticky struct {
	name string
	ids  []stickyID // sorted by id
}

type stickyID struct {
	id        uint64
	b         *pool.Backend
	setCookie [2][]byte // the Set-Cookie header value: [0] over plain HTTP, [1] over TLS
}

// stickyIDLen is the length of a cookie value: 64 bits in hex.
const stickyIDLen = 16

// newSticky prepares the cookie called name for backends.
func newSticky(name string, backends []*pool.Backend) *sticky {
	s := &sticky{name: name, ids: make([]stickyID, 0, len(backends))}
	for _, b := range backends {
		value := strconv.FormatUint(b.ID(), 16)
		for len(value) < stickyIDLen {
			value = "0" + value
		}
		c := name + "=" + value + "; Path=/; HttpOnly; SameSite=Lax"
		s.ids = append(s.ids, stickyID{id: b.ID(), b: b, setCookie: [2][]byte{[]byte(c), []byte(c + "; Secure")}})
	}
	// Two URLs with the same 64-bit digest (odds 2^-64) would share
	// clients: the first keeps them.
	slices.SortStableFunc(s.ids, func(a, b stickyID) int { return cmp.Compare(a.id, b.id) })
	s.ids = slices.CompactFunc(s.ids, func(a, b stickyID) bool { return a.id == b.id })
	return s
}

// find returns the entry with id.
func (s *sticky) find(id uint64) (*stickyID, bool) {
	i, found := slices.BinarySearchFunc(s.ids, id, func(e stickyID, id uint64) int { return cmp.Compare(e.id, id) })
	if !found {
		return nil, false
	}
	return &s.ids[i], true
}

// backend returns the backend the request's cookie names, or nil when there
// is no cookie or it names none of ours.
func (s *sticky) backend(h *fasthttp.RequestHeader) *pool.Backend {
	return s.lookup(requestCookie(h, s.name))
}

// lookup returns the backend a cookie value names, or nil. Both front ends
// find the value their own way and share this.
func (s *sticky) lookup(v []byte) *pool.Backend {
	if len(v) != stickyIDLen {
		return nil
	}
	id, ok := parseStickyID(v)
	if !ok {
		return nil
	}
	e, ok := s.find(id)
	if !ok {
		return nil
	}
	return e.b
}

// set makes the response pin the client to b; secure marks a request that
// came over TLS, whose cookie is then sent back over TLS only. A backend that
// joined the pool after this sticky was built (a reload is publishing a new
// one) gets no cookie: the next response sets it.
func (s *sticky) set(h *fasthttp.ResponseHeader, b *pool.Backend, secure bool) {
	if c := s.cookie(b, secure); c != nil {
		h.AddBytesKV(headerSetCookie, c)
	}
}

// cookie returns the Set-Cookie value that pins a client to b, with the
// Secure attribute when secure, or nil for a backend that joined the pool
// after this sticky was built.
func (s *sticky) cookie(b *pool.Backend, secure bool) []byte {
	if e, ok := s.find(b.ID()); ok && e.b == b {
		if secure {
			return e.setCookie[1]
		}
		return e.setCookie[0]
	}
	return nil
}

var headerSetCookie = []byte("Set-Cookie")

// parseStickyID decodes 16 lowercase or uppercase hex digits.
func parseStickyID(v []byte) (uint64, bool) {
	var id uint64
	for _, c := range v {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		id = id<<4 | uint64(d)
	}
	return id, true
}
