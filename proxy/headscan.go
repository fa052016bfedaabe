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
// another request in the same bytes.
//
// The scan runs beneath fasthttp's reader, over the bytes of a plain-text
// connection (not beneath TLS, whose bytes are ciphertext there), and only
// where it knows a head starts: at the connection's first byte, and after
// a response when nothing past the last head has been read since (a
// bodyless request whose head ended a read). Once a read has taken bytes
// past a head (a body, a pipelined request), fasthttp's buffer may hold the
// start of the next head, which the scan cannot see, so it stays off for
// the rest of the connection: such heads keep the old behaviour.

// errBareLF is what a read returns when it has taken a head line ending in
// LF without CR and the head cannot end in what was read (no CRLF CRLF
// follows): fasthttp answers the read error with 400 and closes. A head
// that ends all the same is read whole; inspectRequest refuses it.
var errBareLF = errors.New("request header line ends in LF without CR")

// crlfcrlf ends a head for fasthttp.
var crlfcrlf = []byte("\r\n\r\n")

// headScan follows request heads through the reads that bring them.
type headScan struct {
	on      bool // a request head is being read, from its first byte
	started bool // the request line has begun (empty lines before it are ignored)
	cr      bool // the last byte scanned was CR
	sinceLF int  // bytes scanned since the last LF
	bare    bool // a line ended in a bare LF: the request is refused
	// clean: nothing has been read past the end of the last head, so the
	// next byte read starts the next head.
	clean bool
}

// start begins the scan of a connection's first head.
func (h *headScan) start() { *h = headScan{on: true} }

// next begins the scan of the next head after a response, if the scan
// knows where it starts.
func (h *headScan) next() {
	if h.clean {
		h.start()
	}
}

// stop ends the scan for the rest of the connection: a head was whole
// before the scan saw its end.
func (h *headScan) stop() { h.on, h.clean = false, false }

// read takes b, the next bytes read from the connection, and reports
// whether the read must fail with errBareLF.
func (h *headScan) read(b []byte) (fail bool) {
	if !h.on {
		if len(b) > 0 {
			h.clean = false
		}
		return false
	}
	return h.scan(b)
}

// scan scans b for the head being read, up to its end.
func (h *headScan) scan(b []byte) (fail bool) {
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
			h.on, h.bare, h.clean = false, true, false
			return !bytes.Contains(b, crlfcrlf)
		}
		if line == 1 { // an empty line
			if h.started {
				h.on, h.clean = false, len(b) == 0 // the end of the head
				return false
			}
			continue
		}
		h.started = true
	}
	return false
}
