package admin

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// TestDashboardInChromium loads the dashboard in a real headless Chromium,
// waits for a backend's row to show it up, kills the backend and waits for
// the row to say down.
func TestDashboardInChromium(t *testing.T) {
	br := startBrowser(t, 1400, 700)
	r := newRig(t, 2, proxy.Config{
		Health: proxy.HealthConfig{Interval: 100 * time.Millisecond, Timeout: 80 * time.Millisecond, Rise: 1, Fall: 1},
	}, Config{Version: "v9.9.9"})
	a, b := r.backends[0].URL(), r.backends[1].URL()
	stateOf := func(url string) string {
		s, _ := br.text(`tr[data-backend="` + url + `"] .state`)
		return strings.ToLower(s)
	}
	br.open(r.adminURL + "/")
	br.waitFor("a's row to show up", 15*time.Second, func() bool { return stateOf(a) == "up" })
	br.waitFor("b's row to show up", 5*time.Second, func() bool { return stateOf(b) == "up" })
	if s, _ := br.text("#overall"); s != "2 of 2 backends up" {
		t.Errorf("overall %q", s)
	}
	if s, _ := br.text("#version"); s != "v9.9.9" {
		t.Errorf("version %q", s)
	}

	r.traffic(t, 20, "/", http.StatusOK)
	br.waitFor("a's row to count requests", 10*time.Second, func() bool {
		s, _ := br.text(`tr[data-backend="` + a + `"] td.num`)
		return s != "" && s != "–" && s != "0.0"
	})

	r.backends[0].Kill()
	br.waitFor("a's row to show down", 15*time.Second, func() bool { return stateOf(a) == "down" })
	if s := stateOf(b); s != "up" {
		t.Errorf("b shows %q after a was killed", s)
	}
	br.waitFor("the overall state to follow", 5*time.Second, func() bool {
		s, _ := br.text("#overall")
		return s == "1 of 2 backends up"
	})
	if s, _ := br.text(`tr[data-backend="` + a + `"] td.check`); !strings.Contains(s, "connection refused") {
		t.Errorf("a's last check %q, want the refusal", s)
	}
	if s, _ := br.text("#conn"); !strings.HasPrefix(s, "live") {
		t.Errorf("connection line %q", s)
	}
}

// TestDashboardPoolsAndDrain shows several pools in Chromium, each under its
// heading, and drains and enables a backend with the row's button.
func TestDashboardPoolsAndDrain(t *testing.T) {
	br := startBrowser(t, 1400, 700)
	web, api := backendtest.Start(t, "web"), backendtest.Start(t, "api")
	p, url := poolsRig(t, proxy.HealthConfig{Interval: 100 * time.Millisecond, Timeout: 80 * time.Millisecond},
		proxy.PoolConfig{Name: "web", Backends: []string{web.URL()}},
		proxy.PoolConfig{Name: "api", Backends: []string{api.URL()}, Policy: pool.NewLeastConn()},
	)

	row := `tr[data-pool="api"][data-backend="` + api.URL() + `"]`
	state := func() string {
		s, _ := br.text(row + " .state")
		return strings.ToLower(s)
	}
	br.open(url + "/")
	br.waitFor("the api row to show up", 15*time.Second, func() bool { return state() == "up" })
	if h, _ := br.text(`tr.pool[data-pool="api"]`); !strings.Contains(h, "api") || !strings.Contains(h, "least-conn · 1 of 1 in rotation") {
		t.Errorf("api heading %q", h)
	}
	if !br.click(row + " button.act") {
		t.Fatal("no drain button")
	}
	br.waitFor("the api row to show drained", 10*time.Second, func() bool { return state() == "drained" })
	if b := p.Pools()[1].Lookup(api.URL()); b == nil || !b.Draining() {
		t.Fatal("the button did not drain the backend")
	}
	br.waitFor("the overall state to count it", 5*time.Second, func() bool {
		s, _ := br.text("#overall")
		return s == "2 of 2 backends up · 1 draining"
	})
	if !br.click(row + " button.act") {
		t.Fatal("no enable button")
	}
	br.waitFor("the api row to show up again", 10*time.Second, func() bool { return state() == "up" })
}

var screenshotPath = flag.String("dashboard-screenshot", "", "write a screenshot of the dashboard under load to this PNG file (for the README)")

// TestDashboardScreenshot makes the README's picture: three backends (one
// weighted) and a backup under mixed traffic, one of them killed. It runs only when asked:
//
//	go test ./proxy/admin -run TestDashboardScreenshot -dashboard-screenshot=$PWD/docs/dashboard.png
func TestDashboardScreenshot(t *testing.T) {
	if *screenshotPath == "" {
		t.Skip("run with -dashboard-screenshot=FILE to make the README's screenshot")
	}
	br := startBrowser(t, 1400, 680)
	r := newRig(t, 4, proxy.Config{
		Backends: []string{"weight=2", "", "", "backup"},
		Health:   proxy.HealthConfig{Interval: 500 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 2, Fall: 2},
	}, Config{Version: "v1.0.0"})
	var stop atomic.Bool
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			for !stop.Load() {
				path := fmt.Sprintf("/delay/%dms", 2+rnd.IntN(12)+rnd.IntN(2)*rnd.IntN(40))
				if rnd.IntN(40) == 0 {
					path = "/status/503"
				}
				if resp, err := client.Get(r.proxyURL + path); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	br.open(r.adminURL + "/")
	deadline := time.Now().Add(50 * time.Second)
	killed := false
	for time.Now().Before(deadline) {
		if !killed && time.Until(deadline) < 15*time.Second {
			r.backends[2].Kill()
			killed = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := br.screenshot(*screenshotPath); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", *screenshotPath)
}
