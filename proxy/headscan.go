package proxy

import (
	"bytes"
	"errors"
)

// A request head whose lines end in LF alone never completes in fasthttp's
// reader, which waits for CRLF CRLF: without this scan such a request
// would hold its connection until -client-header-timeout and then be
// closed without an answer. RFC 9112 (section 2.2) lets a recipient accept
// a bare LF; the proxy refuses it, as it refuses one among CRLF lines
// (strict.go), since a backend that reads lines differently could see
// another request in the same bytes. The scan runs beneath fasthttp's
// reader, over the bytes of each plain-text request head as they arrive
// (not beneath TLS, whose bytes are ciphertext there), and stops at the
// head's end.

// errBareLF is what a read returns once it has taken a head line ending in
// LF without CR: fasthttp answers the read error with 400 and closes. A
// head that is whole all the same (the bare LF ends its request line, or
// the bytes were already read) reaches the handler, and inspectRequest
// refuses it.
var errBareLF = errors.New("request header line ends in LF without CR")

// headScan follows one request head through the reads that bring it.
type headScan struct {
	on      bool // a request head is being read
	started bool // the request line has begun (empty lines before it are ignored)
	cr      bool // the last byte scanned was CR
	sinceLF int  // bytes scanned since the last LF
	bare    bool // a line ended in a bare LF: the request is refused
}

// start begins the scan of a new request head.
func (h *headScan) start() { *h = headScan{on: true} }

// scan takes b, the next bytes read, and reports whether they end a head
// line with a bare LF. It stops at the end of the head: what follows (a
// body, the next request) is not scanned.
func (h *headScan) scan(b []byte) (bare bool) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			h.sinceLF += len(b)
			h.cr = b[len(b)-1] == '\r'
			return false
		}
		cr := h.cr
		if i > 0 {
			cr = b[i-1] == '\r'
		}
		line := h.sinceLF + i // the line's bytes, with its CR if it has one
		h.sinceLF, h.cr = 0, false
		b = b[i+1:]
		if !cr {
			if line == 0 && !h.started {
				// An empty line before the request line, such as a
				// client's stray LF after the last body: ignored, as
				// fasthttp ignores it.
				continue
			}
			h.on, h.bare = false, true
			return true
		}
		if line == 1 { // an empty line
			if h.started {
				h.on = false // the end of the head
				return false
			}
			continue
		}
		h.started = true
	}
	return false
}
