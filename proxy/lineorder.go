package proxy

import (
	"bytes"
	"math/bits"

	"github.com/valyala/fasthttp"
)

// A proxy must not change the order of the lines of one header name (RFC
// 9110 §5.3: Forwarded, Via, Cache-Control, Link, WWW-Authenticate, Cookie
// each read as one list in that order). fasthttp deletes a header by moving
// the last line into its place, so stripping a hop-by-hop header can put a
// later line of some name before an earlier one. That takes two lines of
// the name after the first line deleted (one moved into a gap goes before
// only the lines after it), so the strip notes the names of the lines it
// keeps after that one. If one has two, the strip, after its deletions,
// takes out the lines of every kept name that has more than one and adds
// them back in the order received (deleting them moves other lines too,
// so all such names go, not only the one that moved). Lines of different
// names may come in any order. A message whose hop-by-hop headers come
// last (Node.js sends Connection and Keep-Alive so) notes nothing, and one
// with no name twice after them only notes.

// sameNames notes header names in any letter case, to tell which come in
// more than one line. It holds each name as first spelled, up to
// len(first) names, pointing into header storage that must not change
// while it is read.
type sameNames struct {
	first [32][]byte
	n     int
	fp    uint64 // a bit for each name in first, from its length and last letter: names mostly differ in it
	twice uint32 // bit i: first[i] has another line
	held  uint32 // bit i: first[i] is a name apart says is held apart
	mixed bool   // a name noted twice is spelled two ways
	over  bool   // more names than first holds: any may come twice
	// apart reports whether fasthttp holds a name apart from its list of
	// lines (requestHeldApart, responseHeldApart), which deletions do not
	// move and lines added replace: such a name, asked when it has a
	// second line, never counts as twice.
	apart func(key []byte) bool
}

// add notes a name.
func (s *sameNames) add(key []byte) {
	bit := nameBit(key)
	if s.fp&bit != 0 {
		for i, f := range s.first[:s.n] {
			if sameName(f, key) {
				s.again(i, key)
				return
			}
		}
	}
	if s.n == len(s.first) {
		s.over = true
		return
	}
	s.fp |= bit
	s.first[s.n] = key
	s.n++
}

// again notes another line of the name first[i], spelled key.
func (s *sameNames) again(i int, key []byte) {
	m := uint32(1) << i
	switch {
	case s.held&m != 0:
	case s.twice&m == 0 && s.apart(key):
		s.held |= m
	default:
		s.twice |= m
		s.mixed = s.mixed || !bytes.Equal(s.first[i], key)
	}
}

// nameBit is one of 64 bits, from key's length and last letter.
func nameBit(key []byte) uint64 {
	if len(key) == 0 {
		return 1
	}
	return 1 << ((uint(len(key)) + 3*uint(key[len(key)-1]|0x20)) & 63)
}

// merge notes the names o noted, after those s noted.
func (s *sameNames) merge(o *sameNames) {
	for i, f := range o.first[:o.n] {
		s.add(f)
		if o.twice&(1<<i) != 0 {
			s.add(f)
		}
	}
	s.mixed = s.mixed || o.mixed
	s.over = s.over || o.over
}

// any reports whether some name may come twice.
func (s *sameNames) any() bool { return s.twice != 0 || s.over }

// putsBack reports whether key is a name noted twice, or any name when
// over: the caller then checks it is one the strip keeps.
func (s *sameNames) putsBack(key []byte) bool {
	if s.over {
		return true
	}
	for t := s.twice; t != 0; t &= t - 1 {
		if sameName(s.first[bits.TrailingZeros32(t)], key) {
			return true
		}
	}
	return false
}

// sameName reports whether a and b name the same header: equal but for the
// case of ASCII letters.
func sameName(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i, x := range a {
		if y := b[i]; x != y {
			if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
				return false
			}
		}
	}
	return true
}

// requestHeldApart reports whether fasthttp holds a request header of this
// name outside its list of lines, as one value, so a deletion cannot move it
// (and adding a line would replace the value): Host, User-Agent,
// Content-Type, Content-Length. Cookie lines stay in the list until
// something asks fasthttp for a cookie, which the proxy never does
// (requestCookie reads the raw block).
func requestHeldApart(key []byte) bool {
	switch len(key) {
	case len("Host"):
		return asciiEqualFold(key, "Host")
	case len("User-Agent"):
		return asciiEqualFold(key, "User-Agent")
	case len("Content-Type"):
		return asciiEqualFold(key, "Content-Type")
	case len("Content-Length"):
		return asciiEqualFold(key, "Content-Length")
	}
	return false
}

// responseHeldApart is requestHeldApart for a response: Content-Type,
// Content-Length, Content-Encoding and Server are held as one value,
// Set-Cookie lines in a list of their own that deletions do not reorder,
// and a Date added is dropped (fasthttp sets it).
func responseHeldApart(key []byte) bool {
	switch len(key) {
	case len("Date"):
		return asciiEqualFold(key, "Date")
	case len("Server"):
		return asciiEqualFold(key, "Server")
	case len("Set-Cookie"):
		return asciiEqualFold(key, "Set-Cookie")
	case len("Content-Type"):
		return asciiEqualFold(key, "Content-Type")
	case len("Content-Length"):
		return asciiEqualFold(key, "Content-Length")
	case len("Content-Encoding"):
		return asciiEqualFold(key, "Content-Encoding")
	}
	return false
}

// requestInOrder puts back, in the order of the raw header block, the lines
// of each kept name that has more than one, after the strip's deletions.
// moved holds the names kept after the first line deleted, which starts at
// cut in raw: the lines before it are all kept. The raw block does not
// move, so the lines are read from it.
func requestInOrder(h *fasthttp.RequestHeader, raw []byte, cut int, moved *sameNames, conn *connLines) {
	kept := func(key []byte) bool {
		return classify(key) == keep && !(conn.n > 0 && mayBeListed(key) && conn.lists(key))
	}
	same := sameNames{apart: requestHeldApart}
	sc := headerScanner{b: raw[:cut]}
	for {
		key, _, ok := sc.next()
		if !ok {
			break
		}
		same.add(key)
	}
	same.merge(moved)
	put := func(key []byte) bool {
		return same.putsBack(key) && (!same.over || kept(key) && !requestHeldApart(key))
	}
	// Lines before the first of these names need not be read again: a
	// name's first spelling is a subslice of raw, at cap(raw)-cap(name).
	from := 0
	if !same.over {
		from = len(raw)
		for t := same.twice; t != 0; t &= t - 1 {
			name := same.first[bits.TrailingZeros32(t)]
			from = min(from, cap(raw)-cap(name))
			h.DelBytes(name) // every line spelled so
		}
	}
	raw = raw[from:]
	if same.over || same.mixed {
		sc := headerScanner{b: raw}
		for {
			key, _, ok := sc.next()
			if !ok {
				break
			}
			if put(key) {
				h.DelBytes(key)
			}
		}
	}
	// Added as plain lines: several Cookie lines stay several, as sent,
	// not joined into one by fasthttp's cookie parser.
	special := h.DisableSpecialHeader()
	sc = headerScanner{b: raw}
	for {
		key, value, ok := sc.next()
		if !ok {
			break
		}
		if put(key) {
			h.AddBytesKV(key, value)
		}
	}
	if !special {
		h.EnableSpecialHeader()
	}
}

// responseInOrder finishes a strip deleteResponseHeaders began, whose first
// round found the names to delete in names and at (and more, if not all
// of them), the first to go at position cut of h.All(), and noted in
// moved the names kept after it. It first copies out the lines of each
// kept name that has more than one, then deletes, then adds those lines
// back in the order received, for deletions move fasthttp's storage. The
// copies are "name:value\n" lines, on the stack when they fit.
func responseInOrder(h *fasthttp.ResponseHeader, conn []byte, names []byte, at []int, more bool, cut int, moved *sameNames) {
	kept := func(key []byte) bool {
		return classify(key) != hopByHop && !(mayBeListed(key) && listsToken(conn, key))
	}
	same := sameNames{apart: responseHeldApart}
	i := 0
	for key := range h.All() {
		if i == cut {
			break
		}
		same.add(key) // kept, as every line before the first to go
		i++
	}
	same.merge(moved)
	put := func(key []byte) bool {
		return same.putsBack(key) && (!same.over || kept(key) && !responseHeldApart(key))
	}
	var stack [1024]byte
	lines := stack[:0]
	var lent *bodyBuf
	for key, value := range h.All() {
		if !put(key) {
			continue
		}
		if n := len(lines) + len(key) + len(value) + len(":\n"); n > cap(lines) {
			b := getBodyBuf(max(n, 2*cap(lines)))
			b.B = append(b.B[:0], lines...)
			if lent != nil {
				putBodyBuf(lent)
			}
			lent, lines = b, b.B
		}
		lines = append(lines, key...)
		lines = append(lines, ':')
		lines = append(lines, value...)
		lines = append(lines, '\n')
	}
	if lent != nil {
		defer putBodyBuf(lent)
	}

	deleteNames(h, names, at)
	if more && len(at) > 0 {
		deleteResponseHeaders(h, conn, nil) // the other rounds, and the framing
	} else {
		h.Del("Transfer-Encoding")
		h.Del("Trailer")
	}

	for rest := lines; len(rest) > 0; {
		key, _, next := cutLine(rest)
		// Each spelling once: DelBytes takes every line spelled so.
		seen := false
		for earlier := lines[:len(lines)-len(rest)]; len(earlier) > 0 && !seen; {
			var k []byte
			k, _, earlier = cutLine(earlier)
			seen = bytes.Equal(k, key)
		}
		if !seen {
			h.DelBytes(key)
		}
		rest = next
	}
	for rest := lines; len(rest) > 0; {
		var key, value []byte
		key, value, rest = cutLine(rest)
		h.AddBytesKV(key, value)
	}
}

// cutLine splits the first "name:value\n" line off lines, as responseInOrder
// writes them (a name holds no colon, a value no newline).
func cutLine(lines []byte) (key, value, rest []byte) {
	end := bytes.IndexByte(lines, '\n')
	colon := bytes.IndexByte(lines[:end], ':')
	return lines[:colon], lines[colon+1 : end], lines[end+1:]
}
