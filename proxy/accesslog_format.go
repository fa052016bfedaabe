package proxy

import (
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Formatting access log lines, without allocating: the fields are read in
// place (bytes on the fasthttp path, strings on the net/http path) and
// appended to a pooled buffer.

// accessEntry is what one line says about a request.
type accessEntry[T string | []byte] struct {
	start    time.Time // when the request began
	client   netip.Addr
	method   T
	uri      T
	proto    T
	host     T
	referer  T
	agent    T
	status   int
	bytes    int64 // body bytes sent
	backend  string
	attempts int
}

// logLine is a buffer to format a line in, with the timestamp of the last
// second it formatted: most lines of a second reuse it.
type logLine struct {
	b        []byte
	localSec int64
	local    []byte // "02/Jan/2006:15:04:05 -0700" (combined)
	isoSec   int64
	iso      []byte // "2006-01-02T15:04:05" (json)
	zone     []byte // "Z07:00" (json)
}

// stamp makes sure ll holds the second of now, as the format needs it.
func (ll *logLine) stamp(now time.Time, json bool) {
	sec := now.Unix()
	if json {
		if sec != ll.isoSec || len(ll.iso) == 0 {
			ll.isoSec = sec
			ll.iso = now.AppendFormat(ll.iso[:0], "2006-01-02T15:04:05")
			ll.zone = now.AppendFormat(ll.zone[:0], "Z07:00")
		}
		return
	}
	if sec != ll.localSec || len(ll.local) == 0 {
		ll.localSec = sec
		ll.local = now.AppendFormat(ll.local[:0], "02/Jan/2006:15:04:05 -0700")
	}
}

// logEntry formats e, answered at end, and queues the line.
func logEntry[T string | []byte](l *accessLog, e *accessEntry[T], end time.Time) {
	ll := l.lines.Get().(*logLine)
	if l.json {
		ll.stamp(end, true)
		ll.b = e.appendJSON(ll.b[:0], ll, end)
	} else {
		ll.stamp(end, false)
		ll.b = e.appendCombined(ll.b[:0], ll, end)
	}
	l.add(ll.b)
	l.lines.Put(ll)
}

// appendCombined appends e in nginx's combined format, then the request
// time and the backend.
func (e *accessEntry[T]) appendCombined(b []byte, ll *logLine, end time.Time) []byte {
	b = appendClient(b, e.client)
	b = append(b, " - - ["...)
	b = append(b, ll.local...)
	b = append(b, "] \""...)
	if len(e.method) == 0 {
		b = append(b, '-')
	} else {
		b = appendLogEscaped(b, e.method)
		b = append(b, ' ')
		b = appendLogEscaped(b, e.uri)
		b = append(b, ' ')
		b = appendLogEscaped(b, e.proto)
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, " \""...)
	b = appendLogField(b, e.referer)
	b = append(b, "\" \""...)
	b = appendLogField(b, e.agent)
	b = append(b, "\" "...)
	b = appendSeconds(b, end.Sub(e.start))
	b = append(b, " \""...)
	if e.backend == "" {
		b = append(b, '-')
	} else {
		b = appendLogEscaped(b, e.backend)
	}
	return append(b, "\"\n"...)
}

// appendJSON appends e as one JSON object and a newline.
func (e *accessEntry[T]) appendJSON(b []byte, ll *logLine, end time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = append(b, ll.iso...)
	ms := end.Nanosecond() / int(time.Millisecond)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	b = append(b, ll.zone...)
	b = append(b, `","client":"`...)
	b = appendClient(b, e.client)
	b = append(b, `","method":"`...)
	b = appendJSONEscaped(b, e.method)
	b = append(b, `","uri":"`...)
	b = appendJSONEscaped(b, e.uri)
	b = append(b, `","proto":"`...)
	b = appendJSONEscaped(b, e.proto)
	b = append(b, `","host":"`...)
	b = appendJSONEscaped(b, e.host)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(end.Sub(e.start).Microseconds())/1e3, 'f', 3, 64)
	b = append(b, `,"backend":"`...)
	b = appendJSONEscaped(b, e.backend)
	b = append(b, `","attempts":`...)
	b = strconv.AppendInt(b, int64(e.attempts), 10)
	b = append(b, `,"referer":"`...)
	b = appendJSONEscaped(b, e.referer)
	b = append(b, `","user_agent":"`...)
	b = appendJSONEscaped(b, e.agent)
	return append(b, "\"}\n"...)
}

// appendClient appends the client's address, or "-" when there is none
// (a connection that is not IP).
func appendClient(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, '-')
	}
	return a.AppendTo(b)
}

// appendSeconds appends d in seconds with milliseconds, as nginx's
// $request_time: "0.003".
func appendSeconds(b []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	ms := int64(d / time.Millisecond)
	b = strconv.AppendInt(b, ms/1000, 10)
	ms %= 1000
	return append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

// appendLogField appends a quoted field's value escaped as nginx does, or
// "-" when it is empty.
func appendLogField[T string | []byte](b []byte, s T) []byte {
	if len(s) == 0 {
		return append(b, '-')
	}
	return appendLogEscaped(b, s)
}

const hexDigits = "0123456789ABCDEF"

// appendLogEscaped appends s with '"', '\\', control bytes and bytes above
// 0x7e written as \xHH, as nginx escapes its log variables: a line stays
// one line, and its quoted fields cannot be closed early.
func appendLogEscaped[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendJSONEscaped appends s as the inside of a JSON string: quotes,
// backslashes and control characters escaped, and bytes that are not UTF-8
// replaced with U+FFFD, so every line parses.
func appendJSONEscaped[T string | []byte](b []byte, s T) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// decodeRune is utf8.DecodeRune for either kind of text.
func decodeRune[T string | []byte](s T) (rune, int) {
	switch v := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(v)
	case []byte:
		return utf8.DecodeRune(v)
	}
	return utf8.RuneError, 1
}
