package admin

import (
	"math"
	"strconv"
	"strings"
)

// expositionContentType is the Prometheus text format, version 0.0.4: what
// every Prometheus server and compatible scraper reads.
const expositionContentType = "text/plain; version=0.0.4; charset=utf-8"

// exposition builds a page of the Prometheus text format. It writes each
// family's HELP and TYPE lines once, then its samples; label values are
// escaped as the format requires.
type exposition struct {
	b []byte
}

// family starts a metric family. typ is counter, gauge or histogram.
func (e *exposition) family(name, typ, help string) {
	e.b = append(e.b, "# HELP "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = appendEscaped(e.b, help, false)
	e.b = append(e.b, "\n# TYPE "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = append(e.b, typ...)
	e.b = append(e.b, '\n')
}

// labels is a rendered label set, such as `backend="http://a:1"`, without
// braces; empty for none.
type labels string

// label renders one name="value" pair.
func label(name, value string) labels {
	return labels(name + `="` + string(appendEscaped(nil, value, true)) + `"`)
}

// with returns l with another pair appended.
func (l labels) with(name, value string) labels {
	if l == "" {
		return label(name, value)
	}
	return l + "," + label(name, value)
}

func (e *exposition) name(name string, l labels) {
	e.b = append(e.b, name...)
	if l != "" {
		e.b = append(e.b, '{')
		e.b = append(e.b, l...)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
}

// uint writes a sample with an integer value.
func (e *exposition) uint(name string, l labels, v uint64) {
	e.name(name, l)
	e.b = strconv.AppendUint(e.b, v, 10)
	e.b = append(e.b, '\n')
}

// int writes a sample with a signed integer value.
func (e *exposition) int(name string, l labels, v int64) {
	e.name(name, l)
	e.b = strconv.AppendInt(e.b, v, 10)
	e.b = append(e.b, '\n')
}

// float writes a sample with a floating-point value.
func (e *exposition) float(name string, l labels, v float64) {
	e.name(name, l)
	e.b = appendFloat(e.b, v)
	e.b = append(e.b, '\n')
}

// bool writes 1 or 0.
func (e *exposition) bool(name string, l labels, v bool) {
	n := uint64(0)
	if v {
		n = 1
	}
	e.uint(name, l, n)
}

// histogram writes the samples of one histogram: cumulative buckets with
// their le label, then _sum and _count. bounds are the finite upper bounds
// in the base unit; counts holds one count per bound and one more for +Inf.
func (e *exposition) histogram(name string, l labels, bounds []float64, counts []uint64, sum float64) {
	var cum uint64
	for i, c := range counts {
		cum += c
		le := "+Inf"
		if i < len(bounds) {
			le = string(appendFloat(nil, bounds[i]))
		}
		e.uint(name+"_bucket", l.with("le", le), cum)
	}
	e.float(name+"_sum", l, sum)
	e.uint(name+"_count", l, cum)
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendEscaped escapes s for a HELP text (backslash and newline) or, with
// quoted, a label value (the double quote too).
func appendEscaped(b []byte, s string, quoted bool) []byte {
	if !strings.ContainsAny(s, "\\\n\"") {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quoted:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
