package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseHey(t *testing.T) {
	for _, tc := range []struct {
		file string
		want loadResult
	}{
		{"hey-ok.txt", loadResult{
			Requests: 35211, Seconds: 1.0003, RPS: 35211 / 1.0003,
			P50: 200 * time.Microsecond, P99: 500 * time.Microsecond, Max: 5600 * time.Microsecond,
		}},
		{"hey-503.txt", loadResult{
			Requests: 9380, Seconds: 1.0006, RPS: 9380 / 1.0006,
			P50: 800 * time.Microsecond, P99: 1800 * time.Microsecond, Max: 3900 * time.Microsecond,
			Non2xx: 9380,
		}},
		{"hey-refused.txt", loadResult{Seconds: 1.0003, Errors: 42638}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseHey(out)
			if err != nil {
				t.Fatal(err)
			}
			if !closeTo(got.RPS, tc.want.RPS) {
				t.Errorf("RPS %v, want %v", got.RPS, tc.want.RPS)
			}
			got.RPS, tc.want.RPS = 0, 0
			if got != tc.want {
				t.Errorf("parseHey =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestParseHeyRejects(t *testing.T) {
	for _, out := range []string{"", "Error: invalid URL\n", "Summary:\n  Slowest:\t0.0012 secs\n"} {
		if _, err := parseHey([]byte(out)); err == nil || !strings.Contains(err.Error(), "hey output has no") {
			t.Errorf("parseHey(%q) error %v, want a missing-figures error", out, err)
		}
	}
}

func closeTo(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }
