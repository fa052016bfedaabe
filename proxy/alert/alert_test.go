package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// receiver is a webhook on loopback that records what it is sent and
// answers with the statuses the test queues (200 once they run out).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	statuses []int
	hold     chan struct{} // when set, requests wait for it to close
	arrived  int           // requests come in, held or not
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with Content-Type %q, want a JSON POST", req.Method, req.Header.Get("Content-Type"))
		}
		r.mu.Lock()
		hold := r.hold
		r.arrived++
		r.mu.Unlock()
		if hold != nil {
			<-hold
		}
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

func (r *receiver) events(t *testing.T) []Event {
	t.Helper()
	var evs []Event
	for _, b := range r.received() {
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newNotifier(t *testing.T, cfg Config) (*Notifier, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx) //nolint:errcheck // best effort at test end
	})
	return n, logs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newPool(t *testing.T, n int) (*pool.Pool, []*pool.Backend) {
	t.Helper()
	var bs []*pool.Backend
	for i := range n {
		b, err := pool.NewBackend("http://10.0.0." + string(rune('1'+i)) + ":8080")
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	p, err := pool.New(bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, bs
}

func TestStateChangesPosted(t *testing.T) {
	r := newReceiver(t)
	n, _ := newNotifier(t, Config{URLs: []string{r.URL + "/hook"}})
	p, bs := newPool(t, 2)
	n.Watch(p)

	p.MarkDown(bs[0], "connect: connection refused")
	p.MarkDown(bs[0], "connect: connection refused") // no change: no alert
	p.MarkDown(bs[1], "check returned status 503")
	p.MarkUp(bs[1])
	p.MarkUp(bs[0])

	want := []Event{
		{Event: "backend", Backend: bs[0].URL(), State: "down", Previous: "up", Reason: "connect: connection refused", BackendsUp: 1, BackendsTotal: 2},
		{Event: "backend", Backend: bs[1].URL(), State: "down", Previous: "up", Reason: "check returned status 503", BackendsUp: 0, BackendsTotal: 2},
		{Event: "pool", Backend: bs[1].URL(), State: "unavailable", Previous: "available", Reason: "no backend available: " + bs[1].URL() + " was the last one up", BackendsUp: 0, BackendsTotal: 2},
		{Event: "backend", Backend: bs[1].URL(), State: "up", Previous: "down", Reason: "health check passed", BackendsUp: 1, BackendsTotal: 2},
		{Event: "pool", Backend: bs[1].URL(), State: "available", Previous: "unavailable", Reason: "recovered: " + bs[1].URL() + " is up", BackendsUp: 1, BackendsTotal: 2},
		{Event: "backend", Backend: bs[0].URL(), State: "up", Previous: "down", Reason: "health check passed", BackendsUp: 2, BackendsTotal: 2},
	}
	waitFor(t, "6 alerts", func() bool { return len(r.received()) >= len(want) })
	got := r.events(t)
	if len(got) != len(want) {
		t.Fatalf("%d alerts, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		at, err := time.Parse(time.RFC3339, got[i].At)
		if err != nil || time.Since(at) > time.Minute || !strings.HasSuffix(got[i].At, "Z") {
			t.Errorf("alert %d: at %q is not a recent RFC 3339 UTC time (%v)", i, got[i].At, err)
		}
		got[i].At = ""
		if got[i] != want[i] {
			t.Errorf("alert %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// The exact field names a receiver keys on.
	var raw map[string]any
	json.Unmarshal(r.received()[0], &raw)
	for _, k := range []string{"backend", "state", "previous", "reason", "at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("payload lacks %q: %s", k, r.received()[0])
		}
	}
}

func TestSlackFormat(t *testing.T) {
	r := newReceiver(t)
	n, _ := newNotifier(t, Config{URLs: []string{r.URL}, Format: FormatSlack})
	p, bs := newPool(t, 1)
	n.Watch(p)
	p.MarkDown(bs[0], "connect: connection refused")
	waitFor(t, "2 alerts", func() bool { return len(r.received()) == 2 })
	for i, want := range []string{
		":red_circle: Backend `http://10.0.0.1:8080` is *down* (was up): connect: connection refused. 0 of 1 backends up at ",
		":rotating_light: *No backend available*: all 1 backends are down",
	} {
		var body map[string]string
		if err := json.Unmarshal(r.received()[i], &body); err != nil {
			t.Fatal(err)
		}
		if len(body) != 1 || !strings.HasPrefix(body["text"], want) {
			t.Errorf("alert %d: %s, want {\"text\": %q...}", i, r.received()[i], want)
		}
	}
}

func TestRetriedWithBackoff(t *testing.T) {
	r := newReceiver(t, 503, 502, 429) // then 200
	n, logs := newNotifier(t, Config{URLs: []string{r.URL}, Backoff: 10 * time.Millisecond})
	n.Send(Event{Event: "backend", Backend: "http://a:1", State: "down"})
	waitFor(t, "4 tries", func() bool { return len(r.received()) == 4 })
	if strings.Contains(logs.String(), "not delivered") {
		t.Errorf("delivered on the 4th try, yet logged as lost:\n%s", logs)
	}
	if c := strings.Count(logs.String(), "retrying"); c != 3 {
		t.Errorf("%d retries logged, want 3:\n%s", c, logs)
	}
}

func TestGivesUpAfterRetryTime(t *testing.T) {
	r := newReceiver(t, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500)
	n, logs := newNotifier(t, Config{URLs: []string{r.URL + "/services/T000/B000/secret"}, Backoff: 10 * time.Millisecond, RetryFor: 100 * time.Millisecond})
	n.Send(Event{Event: "backend", Backend: "http://a:1", State: "down"})
	waitFor(t, "the give-up line", func() bool { return strings.Contains(logs.String(), "alert not delivered") })
	if got := len(r.received()); got < 2 || got > 6 {
		t.Errorf("%d tries in 100ms from 10ms doubling, want 2 to 6", got)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("the webhook's secret path was logged:\n%s", logs)
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	r := newReceiver(t, 404)
	n, logs := newNotifier(t, Config{URLs: []string{r.URL}, Backoff: 10 * time.Millisecond})
	n.Send(Event{Event: "backend", Backend: "http://a:1", State: "down"})
	waitFor(t, "the give-up line", func() bool { return strings.Contains(logs.String(), "alert not delivered") })
	if !strings.Contains(logs.String(), "webhook answered 404") || len(r.received()) != 1 {
		t.Errorf("%d tries, logs:\n%s", len(r.received()), logs)
	}
}

// A webhook that hangs must hold up neither the caller (a request or the
// health loop) nor the other webhooks; alerts beyond its queue are dropped
// with a warning.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	slow, fast := newReceiver(t), newReceiver(t)
	hold := make(chan struct{})
	slow.mu.Lock()
	slow.hold = hold
	slow.mu.Unlock()
	defer close(hold)
	n, logs := newNotifier(t, Config{URLs: []string{slow.URL, fast.URL}, QueueSize: 2, Timeout: 10 * time.Second})

	for i := range 10 {
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			n.Send(Event{Event: "backend", Backend: "http://a:1", State: "down", Reason: string(rune('0' + i))})
		}()
		select {
		case <-sent:
		case <-time.After(5 * time.Second):
			t.Fatal("Send blocked on a webhook that does not answer")
		}
		waitFor(t, "the fast webhook to get the alert", func() bool { return len(fast.received()) == i+1 })
		if i == 0 {
			waitFor(t, "the slow webhook to hold the first alert", func() bool {
				slow.mu.Lock()
				defer slow.mu.Unlock()
				return slow.arrived == 1
			})
		}
	}
	// The slow one holds one alert in flight and two queued: the other
	// seven are dropped, each with a warning.
	if c := strings.Count(logs.String(), "alert queue full"); c != 7 {
		t.Errorf("%d drops logged, want 7:\n%s", c, logs)
	}
}

func TestCloseDeliversQueued(t *testing.T) {
	r := newReceiver(t)
	n, _ := newNotifier(t, Config{URLs: []string{r.URL}})
	for range 5 {
		n.Send(Event{Event: "backend", Backend: "http://a:1", State: "down"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(r.received()); got != 5 {
		t.Errorf("%d delivered before Close returned, want 5", got)
	}
	n.Send(Event{Event: "backend"}) // after Close: ignored, no panic
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no alert webhooks"},
		{Config{URLs: []string{"ftp://x/hook"}}, `alert webhook "ftp://x/hook": unsupported scheme "ftp"`},
		{Config{URLs: []string{"http:///hook"}}, `alert webhook "http:///hook": missing host`},
		{Config{URLs: []string{"http://a/x", "http://127.1:8080/hook"}}, `alert webhook "http://127.1:8080/hook": host "127.1": an IPv4 address takes the dotted-decimal form`},
		{Config{URLs: []string{"http://a:0/hook"}}, `alert webhook "http://a:0/hook": invalid port "0": want 1-65535`},
		{Config{URLs: []string{"http://a/x", "http://a/x"}}, "listed twice"},
		{Config{URLs: []string{"http://a"}, RetryFor: -1}, "alert retry time -1ns: must not be negative"},
		{Config{URLs: []string{"http://a"}, Format: 9}, "alert format 9"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("ParseFormat(xml): %v", err)
	}
}

// TestParseURL: a webhook's host follows the rules of every host, and its
// port, if given, is 1-65535; a good address is shown by scheme and host.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		raw, shown string
		err        string // in the error; "" for an address that is accepted
	}{
		{raw: "https://hooks.slack.com/services/T0/B0/secret", shown: "https://hooks.slack.com/…"},
		{raw: "http://127.0.0.1:9/", shown: "http://127.0.0.1:9"},
		{raw: "http://[::1]:8080/hook", shown: "http://[::1]:8080/…"},
		{raw: "http://[::ffff:127.0.0.1]:65535/hook", shown: "http://[::ffff:127.0.0.1]:65535/…"},
		{raw: "http://hooks.internal.:080/hook", shown: "http://hooks.internal.:080/…"},
		{raw: "HTTP://Hooks.Example/a?b=c", shown: "http://Hooks.Example/…"},
		{raw: "http://hooks.example:/hook", shown: "http://hooks.example:/…"}, // net/http dials port 80
		{raw: "http://127.1/hook", err: `alert webhook "http://127.1/hook": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{raw: "http://0x7f.1:8080/hook", err: `alert webhook "http://0x7f.1:8080/hook": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{raw: "http://2130706433/hook", err: `alert webhook "http://2130706433/hook": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{raw: "http://0177.0.0.1/hook", err: `alert webhook "http://0177.0.0.1/hook": host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{raw: "https://127.0.0.1.:8443/hook", err: `alert webhook "https://127.0.0.1.:8443/hook": host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{raw: "http://hooks..example/hook", err: `alert webhook "http://hooks..example/hook": host "hooks..example": an empty label`},
		{raw: "http://999.1.1.1/hook", err: `alert webhook "http://999.1.1.1/hook": host "999.1.1.1": not an IPv4 address, and no host name is all numbers`},
		{raw: "http://:8080/hook", err: `alert webhook "http://:8080/hook": missing host`},
		{raw: "http://[::1::2]:8080/hook", err: `alert webhook "http://[::1::2]:8080/hook": invalid host`},
		{raw: "http://hooks.example:0/hook", err: `alert webhook "http://hooks.example:0/hook": invalid port "0": want 1-65535`},
		{raw: "http://[::1]:65536/hook", err: `alert webhook "http://[::1]:65536/hook": invalid port "65536": want 1-65535`},
		{raw: "http://hooks.example:99999999999999999999/hook", err: `invalid port "99999999999999999999": want 1-65535`},
		{raw: "http://hooks.example:http/hook", err: `alert webhook "http://hooks.example:http/hook": invalid port ":http" after host`},
	} {
		shown, err := ParseURL(tc.raw)
		switch {
		case tc.err == "" && (err != nil || shown != tc.shown):
			t.Errorf("%q: %q, %v; want %q", tc.raw, shown, err, tc.shown)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %q, %v; want an error with %q", tc.raw, shown, err, tc.err)
		case tc.err != "":
			var ue *URLError
			if !errors.As(err, &ue) || ue.URL != tc.raw {
				t.Errorf("%q: error %T %v, want a *URLError naming it", tc.raw, err, err)
			}
		}
	}
}

// A backup taking over keeps the pool available: the primary's going down
// is a backend alert only, and so is its return.
func TestBackupTakingOverIsNoOutage(t *testing.T) {
	r := newReceiver(t)
	n, _ := newNotifier(t, Config{URLs: []string{r.URL}})
	primary, err := pool.NewBackend("http://10.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	backup, err := pool.NewBackend("http://10.0.0.2:8080 backup")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New([]*pool.Backend{primary, backup}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Watch(p)
	p.MarkDown(primary, "connect: connection refused") // the backup serves
	p.MarkUp(primary)                                  // the primary again
	p.MarkDown(backup, "check returned status 503")    // on standby: no change in rotation
	p.MarkDown(primary, "connect: connection refused") // now nothing is left
	n.Send(Event{Event: "marker"})                     // delivered in order: last
	waitFor(t, "the marker", func() bool {
		evs := r.events(t)
		return len(evs) > 0 && evs[len(evs)-1].Event == "marker"
	})
	var got []string
	evs := r.events(t)
	for _, ev := range evs[:len(evs)-1] {
		got = append(got, ev.Event+" "+ev.Backend+" "+ev.State)
	}
	want := []string{
		"backend http://10.0.0.1:8080 down",
		"backend http://10.0.0.1:8080 up",
		"backend http://10.0.0.2:8080 down",
		"backend http://10.0.0.1:8080 down",
		"pool http://10.0.0.1:8080 unavailable",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
