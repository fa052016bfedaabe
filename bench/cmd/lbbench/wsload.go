package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket echo load. wrk and hey speak HTTP only, so the harness drives
// WebSockets itself: it runs its own executable with -wsload, pinned where
// wrk would run, and reads a JSON loadResult from it. Each connection sends
// a message and waits for its echo, over and over, for the duration: a
// message counts as a request.

// wsLoad is the loadGenerator for WebSocket scenarios.
type wsLoad struct {
	self string   // the harness's own executable
	pin  []string // command prefix that pins it
}

func (w *wsLoad) Name() string          { return "lbbench -wsload" }
func (w *wsLoad) Version() string       { return "gorilla/websocket echo client" }
func (w *wsLoad) Non2xxMeaning() string { return "echoes that came back different" }

func (w *wsLoad) Run(ctx context.Context, spec loadSpec) (loadResult, error) {
	args := []string{"-wsload", spec.URL, "-ws-conns", strconv.Itoa(spec.Conns),
		"-ws-size", strconv.Itoa(len(spec.Body)), "-ws-duration", spec.Duration.String()}
	out, err := runTool(ctx, w.pin, w.self, args, spec.Duration)
	if err != nil {
		return loadResult{}, err
	}
	return parseWSLoad(out)
}

// parseWSLoad reads the JSON line -wsload prints.
func parseWSLoad(out []byte) (loadResult, error) {
	var r loadResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		return r, fmt.Errorf("wsload output %q: %v", truncateOutput(out), err)
	}
	if r.Seconds <= 0 {
		return r, errors.New("wsload reported no duration")
	}
	return r, nil
}

// runWSLoad is the -wsload mode: it puts the load on url and prints the
// result as JSON on out.
func runWSLoad(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("lbbench -wsload", flag.ContinueOnError)
	conns := fs.Int("ws-conns", 64, "WebSockets")
	size := fs.Int("ws-size", 128, "message size")
	d := fs.Duration("ws-duration", 2*time.Second, "how long")
	if len(args) < 1 {
		return errors.New("-wsload wants a ws:// URL")
	}
	url := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	r, err := wsEchoLoad(url, *conns, *size, *d)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(r)
}

// wsEchoLoad opens conns WebSockets to url and echoes size-byte messages on
// each until d has passed.
func wsEchoLoad(url string, conns, size int, d time.Duration) (loadResult, error) {
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	cs := make([]*websocket.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range conns {
		c, _, err := dialer.Dial(url, nil)
		if err != nil {
			return loadResult{}, fmt.Errorf("dial %s: %v", url, err)
		}
		cs = append(cs, c)
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs, bad int64
		wg        sync.WaitGroup
	)
	msg := bytes.Repeat([]byte("w"), size)
	start := time.Now()
	deadline := start.Add(d)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var e, b int64
			for time.Now().Before(deadline) {
				t0 := time.Now()
				c.SetReadDeadline(t0.Add(5 * time.Second))
				if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
					e++
					break
				}
				_, got, err := c.ReadMessage()
				if err != nil {
					e++
					break
				}
				if !bytes.Equal(got, msg) {
					b++
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			errs += e
			bad += b
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	r := loadResult{Requests: int64(len(latencies)), Seconds: secs, Errors: errs, Non2xx: bad}
	if secs > 0 {
		r.RPS = float64(r.Requests) / secs
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		r.P50 = latencies[len(latencies)/2]
		r.P99 = latencies[len(latencies)*99/100]
		r.Max = latencies[len(latencies)-1]
	}
	return r, nil
}

// isWSLoad reports whether the harness was started in -wsload mode.
func isWSLoad(args []string) bool { return len(args) > 0 && args[0] == "-wsload" }

// wsSelf is the harness's executable, for -wsload runs.
func wsSelf() string {
	self, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return self
}
