package main

import (
	"strings"
	"testing"
	"time"
)

func TestSelectScenarios(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  string
	}{
		{"", "small small-512 64k close post-4k", ""},
		{"default", "small small-512 64k close post-4k", ""},
		{"all", "small small-512 64k 64k-512 close post-4k tls tls-close mix 1m h2 ws", ""},
		{"small", "small", ""},
		{"post-4k, small", "small post-4k", ""}, // report order, spaces allowed
		{"64k-512,default", "small small-512 64k 64k-512 close post-4k", ""},
		{"smal", "", `unknown scenario "smal"`},
	} {
		got, err := selectScenarios(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("selectScenarios(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if err != nil || strings.Join(names, " ") != tc.want {
			t.Errorf("selectScenarios(%q) = %v, %v; want %s", tc.in, names, err, tc.want)
		}
	}
}

func TestScenariosAreSound(t *testing.T) {
	for _, s := range scenarios {
		if s.Conns < 1 || s.RespSize < 0 || (s.Method == "POST") != (s.BodySize > 0) {
			t.Errorf("scenario %+v: want connections, a size, and a body exactly for POST", s)
		}
		if s.Method == "POST" && s.RespSize > 1024 {
			t.Errorf("scenario %s POSTs to %s: the nginx backend answers POST only from its config, up to 1 KiB", s.Name, s.Path())
		}
	}
	if got := (scenario{RespSize: 65536}).Path(); got != "/bytes/65536" {
		t.Errorf("Path = %q", got)
	}
}

func TestSelectPeers(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "balancer net/http nginx haproxy direct", ""},
		{"all", "balancer net/http nginx haproxy direct", ""},
		{"nginx,balancer", "balancer nginx", ""},
		{"envoy", "", `unknown peer "envoy"`},
	} {
		got, err := selectPeers(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("selectPeers(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
		}
		if err != nil || strings.Join(names, " ") != tc.want {
			t.Errorf("selectPeers(%q) = %v, %v; want %s", tc.in, names, err, tc.want)
		}
	}
}

func TestRotate(t *testing.T) {
	peers, _ := selectPeers("balancer,nginx,haproxy")
	for round, want := range []string{"balancer nginx haproxy", "nginx haproxy balancer", "haproxy balancer nginx", "balancer nginx haproxy"} {
		var names []string
		for _, p := range rotate(peers, round) {
			names = append(names, p.Name)
		}
		if strings.Join(names, " ") != want {
			t.Errorf("round %d order %v, want %s", round, names, want)
		}
	}
	if rotate(nil, 3) != nil {
		t.Error("rotate of nothing")
	}
}

func TestIdleLevels(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{5000, []int{64, 5000}}, {64, []int{64}}, {10, []int{10}}, {0, nil},
	} {
		got := idleLevels(tc.n)
		if len(got) != len(tc.want) || (len(got) > 0 && (got[0] != tc.want[0] || got[len(got)-1] != tc.want[len(tc.want)-1])) {
			t.Errorf("idleLevels(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestSettled(t *testing.T) {
	flat := []int64{50000, 50000, 50100, 50000, 49900, 50000, 50000}
	for _, tc := range []struct {
		name    string
		samples []int64
		want    bool
	}{
		{"too few readings", flat[:6], false},
		{"steady", flat, true},
		{"still falling", []int64{60000, 58000, 56000, 54000, 52000, 50000, 48000}, false},
		{"steady after falling", append([]int64{90000, 70000}, flat...), true},
		{"a late drop", append(append([]int64{}, flat[:6]...), 30000), false},
		{"small process, within 256 KiB", []int64{5000, 5100, 5200, 5000, 5100, 5200, 5000}, true},
	} {
		if got := settled(tc.samples); got != tc.want {
			t.Errorf("%s: settled(%v) = %v, want %v", tc.name, tc.samples, got, tc.want)
		}
	}
}

func TestParseWSLoad(t *testing.T) {
	r, err := parseWSLoad([]byte(`{"Requests":1200,"Seconds":2,"RPS":600,"P50":1000000,"P99":3000000,"Max":9000000,"Errors":0,"Non2xx":1}` + "\n"))
	if err != nil || r.Requests != 1200 || r.RPS != 600 || r.P99 != 3*time.Millisecond || r.Non2xx != 1 {
		t.Errorf("got %+v, %v", r, err)
	}
	for _, bad := range []string{"", "not json", `{"Requests":5}`} {
		if _, err := parseWSLoad([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
