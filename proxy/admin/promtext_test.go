package admin

import (
	"math"
	"testing"
)

func TestExpositionEscaping(t *testing.T) {
	var e exposition
	e.family("x_total", "counter", "Help with a \\ backslash\nand a newline, \"quotes\" kept.")
	e.uint("x_total", label("backend", "http://a\"b\\c\nd:1").with("code", "2xx"), 7)
	e.float("y", "", math.Inf(1))
	e.float("z", "", 0.25)
	e.int("w", "", -3)
	want := "# HELP x_total Help with a \\\\ backslash\\nand a newline, \"quotes\" kept.\n" +
		"# TYPE x_total counter\n" +
		"x_total{backend=\"http://a\\\"b\\\\c\\nd:1\",code=\"2xx\"} 7\n" +
		"y +Inf\n" +
		"z 0.25\n" +
		"w -3\n"
	if string(e.b) != want {
		t.Errorf("got\n%s\nwant\n%s", e.b, want)
	}
}

func TestExpositionHistogram(t *testing.T) {
	var e exposition
	e.histogram("h_seconds", label("backend", "b"), []float64{0.001, 0.5}, []uint64{2, 0, 3}, 1.25)
	want := `h_seconds_bucket{backend="b",le="0.001"} 2
h_seconds_bucket{backend="b",le="0.5"} 2
h_seconds_bucket{backend="b",le="+Inf"} 5
h_seconds_sum{backend="b"} 1.25
h_seconds_count{backend="b"} 5
`
	if string(e.b) != want {
		t.Errorf("got\n%s\nwant\n%s", e.b, want)
	}
}
