package backend

import (
	"bufio"
	"bytes"
	"crypto/sha1" //nolint:gosec // RFC 6455 mandates SHA-1 for the handshake
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/valyala/fasthttp"
)

// The /ws endpoint is a WebSocket echo (RFC 6455): text and binary messages
// come back as sent, pings get pongs, and a close is answered and ends the
// connection. The text message "bye" makes the backend close first. It is
// small on purpose: a test peer, not a library.

const (
	wsGUID       = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	wsMaxPayload = 16 << 20
	opText       = 0x1
	opBinary     = 0x2
	opClose      = 0x8
	opPing       = 0x9
	opPong       = 0xA
)

func (h *Handler) websocket(ctx *fasthttp.RequestCtx) {
	// Header names are kept as received (see NewServer), and proxies spell
	// these differently (Sec-Websocket-Key, sec-websocket-key): any case.
	key := headerValue(ctx, "Sec-WebSocket-Key")
	if !bytes.EqualFold(headerValue(ctx, "Upgrade"), []byte("websocket")) || len(key) == 0 {
		badArg(ctx, "/ws wants a WebSocket handshake")
		return
	}
	sum := sha1.Sum(append(append([]byte(nil), key...), wsGUID...)) //nolint:gosec // see import
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.Response.Header.Set("Upgrade", "websocket")
	ctx.Response.Header.Set("Connection", "Upgrade")
	ctx.Response.Header.Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(sum[:]))
	ctx.Hijack(func(c net.Conn) {
		wsEcho(bufio.NewReader(c), c) //nolint:errcheck // the peer went away
	})
}

// headerValue returns the request header named name, in any letter case.
func headerValue(ctx *fasthttp.RequestCtx, name string) []byte {
	for k, v := range ctx.Request.Header.All() {
		if strings.EqualFold(string(k), name) {
			return v
		}
	}
	return nil
}

// wsEcho answers frames read from r on w until a close frame or an error.
func wsEcho(r *bufio.Reader, w io.Writer) error {
	for {
		fin, op, payload, err := wsReadFrame(r)
		if err != nil {
			return err
		}
		switch op {
		case opPing:
			op = opPong
		case opPong:
			continue
		case opText:
			if string(payload) == "bye" {
				// 1000: normal closure.
				return wsWriteFrame(w, true, opClose, []byte{0x03, 0xE8})
			}
		}
		if err := wsWriteFrame(w, fin, op, payload); err != nil {
			return err
		}
		if op == opClose {
			return nil
		}
	}
}

var errWSFrame = errors.New("websocket: bad frame")

func wsReadFrame(r *bufio.Reader) (fin bool, op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return
	}
	fin, op = hdr[0]&0x80 != 0, hdr[0]&0x0F
	masked := hdr[1]&0x80 != 0
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err = io.ReadFull(r, ext[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err = io.ReadFull(r, ext[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if !masked || n > wsMaxPayload || op > opPong || (op > opBinary && op < opClose) {
		return false, 0, nil, errWSFrame // clients must mask; bound the size
	}
	var mask [4]byte
	if _, err = io.ReadFull(r, mask[:]); err != nil {
		return
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(r, payload); err != nil {
		return
	}
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	return fin, op, payload, nil
}

func wsWriteFrame(w io.Writer, fin bool, op byte, payload []byte) error {
	hdr := make([]byte, 2, 10+len(payload))
	hdr[0] = op
	if fin {
		hdr[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xFFFF:
		hdr[1] = 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	_, err := w.Write(append(hdr, payload...))
	return err
}
