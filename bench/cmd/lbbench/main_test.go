package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 2*time.Second || o.rounds != 3 || o.warmup != time.Second || o.idleConns != 5000 || o.backend != "go" {
		t.Errorf("defaults %+v", o)
	}
	if o.together {
		t.Error("-together is on by default")
	}
	// The default full run must end within five minutes.
	scs, _ := selectScenarios(o.scenarios)
	if d := estimate(o, len(scs), len(peerOrder)); d > 4*time.Minute {
		t.Errorf("default load phase takes %v, leaving too little of 5 minutes for start-up and idle connections", d)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-duration=500ms"}, "invalid -duration 500ms"},
		{[]string{"-rounds=0"}, "invalid -rounds 0"},
		{[]string{"-warmup=-1s"}, "invalid -warmup -1s"},
		{[]string{"-idle-conns=-1"}, "invalid -idle-conns -1"},
		{[]string{"-backend=caddy"}, `invalid -backend "caddy"`},
		{[]string{"-scenarios=huge"}, `unknown scenario "huge"`},
		{[]string{"-peers=envoy"}, `unknown peer "envoy"`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseOptions(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseOptions(%q) error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-rounds=x"}, &bytes.Buffer{}, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "-rounds") {
		t.Errorf("stderr %q does not name the flag", stderr.String())
	}
}
