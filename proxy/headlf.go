package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// Response heads whose lines end in LF alone. RFC 9112 §2.2 lets a
// recipient take a bare LF for the end of a line, and nginx, Go's net/http
// and curl read a backend's response so. fasthttp reads such lines too,
// but ends a head only at CRLF CRLF: a head of bare LFs kept it reading,
// waiting for bytes that never came, and the request got 504 at the try
// timeout (and a health check failed). The proxy reads them as nginx does.
// What the client gets is written anew, with CRLFs, as every response is,
// so it cannot read the framing otherwise than the proxy did. (Requests
// are another matter: a head of bare LFs is refused, headscan.go.)
//
// The exchange's path pays a flag for it. While a head is read
// (readHead), a read of its backend connection with a whole head of bare
// LFs already buffered, the read fasthttp makes when it waits for a CRLF
// CRLF, fails with errBareLFHead instead of waiting; readHead then parses
// a copy of the buffered head with CRLFs and discards the original. A head
// that arrives in one read, as nearly all do, meets no check but the flag;
// one split across reads, a scan of what is buffered on each further read.
//
// A health check reads through fasthttp's HostClient, which brings its
// own reader: its connections (one a check) put a CR before each bare LF
// of the first head as it is read (lfConn).

// errBareLFHead is what a read of a backend connection returns, instead of
// waiting, while a head is read and a whole one of bare LFs is buffered.
var errBareLFHead = errors.New("response head of lines ending in LF alone")

// Read implements net.Conn (see sockConn.Read); while a head is read it
// fails with errBareLFHead rather than wait for a CRLF CRLF that a whole
// head of bare LFs, already buffered, will not bring.
func (c *backendConn) Read(b []byte) (int, error) {
	if c.head && c.br != nil && c.br.Buffered() > 0 {
		// A head split across reads, or one that fasthttp cannot end.
		// Peek returns what is buffered without reading: bufio calls
		// this Read with its buffer's bytes moved to the front.
		if buf, _ := c.br.Peek(c.br.Buffered()); headEnd(buf) > 0 {
			return 0, errBareLFHead
		}
	}
	return c.sockConn.Read(b)
}

// readHead reads one response head into h from br, bc's reader, its lines
// ended by CRLF or by LF alone.
func readHead(bc *backendConn, br *bufio.Reader, h *fasthttp.ResponseHeader) error {
	bc.head = true
	err := h.Read(br)
	bc.head = false
	if err != nil && errors.Is(err, errBareLFHead) {
		return readHeadCRLF(br, h)
	}
	return err
}

// headEnd returns the length of the head at the start of b, its lines
// read as nginx reads them (they end in LF, a CR before it optional; the
// first empty line after the status line ends the head), or 0 when b does
// not hold all of it.
func headEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return 0
	}
	for pos := i + 1; pos < len(b); {
		j := bytes.IndexByte(b[pos:], '\n')
		if j < 0 {
			return 0
		}
		if j == 0 || (j == 1 && b[pos] == '\r') {
			return pos + j + 1
		}
		pos += j + 1
	}
	return 0
}

// appendCRLF appends head to dst with every line ended by CRLF.
func appendCRLF(dst, head []byte) []byte {
	for len(head) > 0 {
		i := bytes.IndexByte(head, '\n')
		if i < 0 {
			return append(dst, head...)
		}
		dst = append(dst, bytes.TrimSuffix(head[:i], []byte("\r"))...)
		dst = append(dst, '\r', '\n')
		head = head[i+1:]
	}
	return dst
}

// crlfCopy is the scratch space of readHeadCRLF.
type crlfCopy struct {
	buf []byte
	rd  bytes.Reader
	br  *bufio.Reader
}

var crlfCopies = sync.Pool{New: func() any { return new(crlfCopy) }}

// readHeadCRLF parses the whole head of bare LFs buffered in br into h,
// from a copy with CRLFs, and discards it from br, where its body follows.
func readHeadCRLF(br *bufio.Reader, h *fasthttp.ResponseHeader) error {
	buf, _ := br.Peek(br.Buffered())
	n := headEnd(buf)
	if n == 0 {
		return errBareLFHead // not reached: the read failed only with one there
	}
	c := crlfCopies.Get().(*crlfCopy)
	defer crlfCopies.Put(c)
	c.buf = appendCRLF(c.buf[:0], buf[:n])
	c.rd.Reset(c.buf)
	if c.br == nil || c.br.Size() < len(c.buf) {
		// fasthttp parses a head whole from the reader's buffer.
		c.br = bufio.NewReaderSize(&c.rd, max(len(c.buf), 4096))
	} else {
		c.br.Reset(&c.rd)
	}
	if err := h.Read(c.br); err != nil {
		return err
	}
	br.Discard(n) //nolint:errcheck // n bytes are buffered
	return nil
}

// lfConn is a health check's connection: a CR goes before each bare LF of
// the first response head read from it, for fasthttp's HostClient, whose
// reader is its own. A check makes one request on a connection of its own.
type lfConn struct {
	net.Conn
	tmp   []byte
	done  bool // the head has ended: bytes pass as they are
	lines int  // lines of the head ended so far, not counting empty ones
	text  bool // the current line has a byte other than CR
	cr    bool // the last byte was CR
	owed  bool // an LF is owed: a one-byte read had room for its CR only
}

// Read implements net.Conn.
func (c *lfConn) Read(b []byte) (int, error) {
	if c.owed && len(b) > 0 {
		c.owed = false
		b[0] = '\n'
		return 1, nil
	}
	if c.done || len(b) == 0 {
		return c.Conn.Read(b)
	}
	// Half of b, so that a CR fits before every byte read.
	want := max(len(b)/2, 1)
	if cap(c.tmp) < want {
		c.tmp = make([]byte, want)
	}
	n, err := c.Conn.Read(c.tmp[:want])
	out := 0
	for i, x := range c.tmp[:n] {
		if c.done {
			out += copy(b[out:], c.tmp[i:n])
			break
		}
		switch x {
		case '\n':
			if !c.cr {
				b[out] = '\r'
				out++
				if out == len(b) {
					c.owed = true
				}
			}
			if !c.owed {
				b[out] = '\n'
				out++
			}
			if c.text {
				c.lines++
			} else if c.lines > 0 {
				c.done = true // the empty line that ends the head
			}
			c.text, c.cr = false, false
		case '\r':
			b[out] = x
			out++
			c.cr = true
		default:
			b[out] = x
			out++
			c.text, c.cr = true, false
		}
	}
	return out, err
}
