package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// requestCookie returns the value of the cookie called name in the request's
// Cookie headers, or nil when it is absent or empty. It reads the raw header block: unlike
// RequestHeader.Cookie it allocates nothing and leaves the Cookie header of
// the forwarded request exactly as the client wrote it.
func requestCookie(h *fasthttp.RequestHeader, name string) []byte {
	sc := headerScanner{b: h.RawHeaders()}
	for {
		key, value, ok := sc.next()
		if !ok {
			return nil
		}
		if equalFold(key, "Cookie") {
			if v := cookieIn(value, name); v != nil {
				return v
			}
		}
	}
}

// cookieIn finds name in a Cookie header value ("a=1; b=2", RFC 6265 §4.2)
// and returns its value without surrounding double quotes. Names are
// case-sensitive.
func cookieIn(list []byte, name string) []byte {
	for len(list) > 0 {
		var pair []byte
		if i := bytes.IndexByte(list, ';'); i >= 0 {
			pair, list = list[:i], list[i+1:]
		} else {
			pair, list = list, nil
		}
		k, v, ok := bytes.Cut(pair, []byte{'='})
		if !ok || string(bytes.TrimSpace(k)) != name {
			continue
		}
		v = bytes.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if len(v) == 0 {
			continue
		}
		return v
	}
	return nil
}
