//go:build soak

package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The soak test (make soak; not in CI) runs the real binaries for
// -soak-duration under mixed traffic while backends are killed and
// restarted at random, and reports requests, failures, and the balancer's
// memory and goroutines over time. GETs must never fail; memory and
// goroutines must stay flat.

var soakDuration = flag.Duration("soak-duration", 10*time.Minute, "how long the soak test runs")

func TestSoak(t *testing.T) {
	bin := buildBinaries(t)
	const nBackends = 3
	ports := make([]int, nBackends)
	procs := make([]*process, nBackends)
	var urls []string
	for i := range ports {
		ports[i] = freePort(t)
		procs[i] = start(t, []string{"PORT=" + strconv.Itoa(ports[i])}, filepath.Join(bin, "backend-server"))
		urls = append(urls, "http://127.0.0.1:"+strconv.Itoa(ports[i]))
	}
	lbPort, adminPort := freePort(t), freePort(t)
	lb := start(t, nil, filepath.Join(bin, "load-balancer"), "-backends="+strings.Join(urls, ","),
		"-port="+strconv.Itoa(lbPort), "-health-interval=500ms", "-health-timeout=300ms", "-health-path=/health",
		"-admin-addr=127.0.0.1:"+strconv.Itoa(adminPort))
	base := "http://127.0.0.1:" + strconv.Itoa(lbPort)
	waitUntil(t, "the balancer", func() bool { code, _ := fetch(t, base+"/health"); return code == 200 })

	var (
		stop                          atomic.Bool
		gets, getFails, posts, pFails atomic.Int64
		streams, cut                  atomic.Int64
		firstFailure                  atomic.Value
		wg                            sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	// Whole responses must never fail: a failed attempt is retried
	// elsewhere. A stream is relayed as it comes, so one whose backend dies
	// midway can only be cut; those are counted apart.
	paths := []string{"/", "/bytes/20", "/bytes/65536", "/echo", "/delay/20ms"}
	streamPaths := []string{"/download/3000000?chunked=1", "/sse?n=3&every=10ms"}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for !stop.Load() {
				if rng.IntN(10) == 0 {
					resp, err := client.Post(base+"/upload", "application/octet-stream", strings.NewReader(strings.Repeat("p", 1+rng.IntN(200000))))
					posts.Add(1)
					if err != nil || resp.StatusCode != 200 {
						pFails.Add(1)
					}
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					continue
				}
				if rng.IntN(10) == 1 {
					resp, err := client.Get(base + streamPaths[rng.IntN(len(streamPaths))])
					streams.Add(1)
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					if err != nil {
						cut.Add(1)
					}
					continue
				}
				resp, err := client.Get(base + paths[rng.IntN(len(paths))])
				gets.Add(1)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					getFails.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}

	// Chaos: every few seconds one backend dies and later comes back.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(7, 7))
		for !stop.Load() {
			time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
			i := rng.IntN(nBackends)
			procs[i].cmd.Process.Kill()
			procs[i].cmd.Wait()
			time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
			procs[i] = start(t, []string{"PORT=" + strconv.Itoa(ports[i])}, filepath.Join(bin, "backend-server"))
		}
	}()

	type sample struct {
		at         time.Duration
		rss        int64
		goroutines int
	}
	var samples []sample
	begin := time.Now()
	for time.Since(begin) < *soakDuration {
		time.Sleep(10 * time.Second)
		samples = append(samples, sample{time.Since(begin), rssOf(t, lb.cmd.Process.Pid), goroutinesOf(t, adminPort)})
	}
	stop.Store(true)
	wg.Wait()

	fmt.Fprintf(os.Stderr, "\nsoak: %v, %d GETs (%d failed), %d streams (%d cut by a backend's death), %d POSTs (%d failed)\n",
		*soakDuration, gets.Load(), getFails.Load(), streams.Load(), cut.Load(), posts.Load(), pFails.Load())
	fmt.Fprintf(os.Stderr, "%8s %10s %11s\n", "time", "RSS MiB", "goroutines")
	for _, s := range samples {
		fmt.Fprintf(os.Stderr, "%8v %10d %11d\n", s.at.Round(time.Second), s.rss>>20, s.goroutines)
	}
	if n := getFails.Load(); n != 0 {
		t.Errorf("%d of %d GETs failed; first: %v", n, gets.Load(), firstFailure.Load())
	}
	// Flat: the last quarter's peak within 50% (plus slack) of the first quarter's.
	if len(samples) >= 8 {
		q := len(samples) / 4
		peak := func(s []sample, f func(sample) int64) int64 {
			vs := make([]int64, len(s))
			for i := range s {
				vs[i] = f(s[i])
			}
			sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
			return vs[len(vs)-1]
		}
		rss := func(s sample) int64 { return s.rss }
		gor := func(s sample) int64 { return int64(s.goroutines) }
		if early, late := peak(samples[:q], rss), peak(samples[len(samples)-q:], rss); late > early*3/2+(16<<20) {
			t.Errorf("RSS grew from %d MiB to %d MiB", early>>20, late>>20)
		}
		if early, late := peak(samples[:q], gor), peak(samples[len(samples)-q:], gor); late > early*3/2+50 {
			t.Errorf("goroutines grew from %d to %d", early, late)
		}
	}
}

// goroutinesOf reads go_goroutines from the balancer's admin /metrics.
func goroutinesOf(t *testing.T, adminPort int) int {
	_, body := fetch(t, "http://127.0.0.1:"+strconv.Itoa(adminPort)+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "go_goroutines" {
			n, _ := strconv.ParseFloat(f[1], 64)
			return int(n)
		}
	}
	return -1
}
