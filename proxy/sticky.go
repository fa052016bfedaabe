package proxy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// sticky is session affinity by cookie. The first response to a client sets
// the cookie to an opaque id of the backend that served it; later requests
// carrying it go to that backend while it is usable (healthy, in the active
// set, below its max_conns), and are balanced by the policy otherwise, the
// cookie then set anew. The id is a truncated SHA-256 of the backend's URL,
// as nginx's sticky cookie uses a hash of the address: it does not show the
// address, and every balancer with the same backends gives the same ids, so
// a client keeps its backend whichever balancer it reaches.
//
// Everything a request needs is built here, once: a lookup is a hex decode
// and a binary search, and setting the cookie copies a prepared header.
type sticky struct {
	name      string
	ids       []stickyID // sorted by id
	setCookie [][]byte   // by Backend.Index: the Set-Cookie header value
}

type stickyID struct {
	id uint64
	b  *pool.Backend
}

// stickyIDLen is the length of a cookie value: 64 bits in hex.
const stickyIDLen = 16

func newSticky(name string, backends []*pool.Backend) (*sticky, error) {
	s := &sticky{name: name, setCookie: make([][]byte, len(backends))}
	for _, b := range backends {
		sum := sha256.Sum256([]byte(b.URL()))
		value := hex.EncodeToString(sum[:stickyIDLen/2])
		id, _ := parseStickyID([]byte(value))
		s.ids = append(s.ids, stickyID{id: id, b: b})
		s.setCookie[b.Index()] = []byte(name + "=" + value + "; Path=/; HttpOnly")
	}
	slices.SortFunc(s.ids, func(a, b stickyID) int { return cmp.Compare(a.id, b.id) })
	for i := 1; i < len(s.ids); i++ {
		if s.ids[i].id == s.ids[i-1].id { // 2^-64: never, but never wrong either
			return nil, fmt.Errorf("sticky cookie: backends %s and %s hash alike", s.ids[i-1].b, s.ids[i].b)
		}
	}
	return s, nil
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
	i, found := slices.BinarySearchFunc(s.ids, id, func(e stickyID, id uint64) int { return cmp.Compare(e.id, id) })
	if !found {
		return nil
	}
	return s.ids[i].b
}

// set makes the response pin the client to b.
func (s *sticky) set(h *fasthttp.ResponseHeader, b *pool.Backend) {
	h.AddBytesKV(headerSetCookie, s.cookie(b))
}

// cookie returns the Set-Cookie value that pins a client to b.
func (s *sticky) cookie(b *pool.Backend) []byte { return s.setCookie[b.Index()] }

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
