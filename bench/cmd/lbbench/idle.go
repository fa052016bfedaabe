package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// idleResult is a peer's memory with idle keep-alive client connections.
type idleResult struct {
	Peer     string   `json:"peer"`
	StartKiB int64    `json:"rss_kib_no_connections"`
	RSSKiB   []int64  `json:"rss_kib"` // one per idleReport.Conns
	PerConn  *float64 `json:"kib_per_connection,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// idleReport is the memory of every proxy at a few counts of idle
// keep-alive connections, each opened through it with one request.
type idleReport struct {
	Conns   []int        `json:"connections"`
	Results []idleResult `json:"results"`
}

// Pacing of the connections opened for the memory figure (idleOne).
const (
	idleStep  = 1000
	idlePause = 1500 * time.Millisecond
)

// How settledRSS waits for a steady figure: samples idleSample apart until
// the last idleSteady of them agree, within idleSettleMax.
const (
	idleSample    = 500 * time.Millisecond
	idleSteady    = 7 // samples over 3 s
	idleSettleMax = 20 * time.Second
)

// settledRSS reads the RSS of process pid until it has settled (see
// settled), or idleSettleMax has passed, and returns the last reading.
func (h *harness) settledRSS(ctx context.Context, pid int) (int64, error) {
	var samples []int64
	deadline := time.Now().Add(idleSettleMax)
	for {
		rss, err := h.fs.rss(pid)
		if err != nil {
			return 0, err
		}
		samples = append(samples, rss)
		if settled(samples) || time.Now().After(deadline) {
			return rss, nil
		}
		select {
		case <-time.After(idleSample):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// settled reports whether the last idleSteady readings of RSS (KiB) lie
// within 1% (and at least 256 KiB) of each other.
func settled(samples []int64) bool {
	if len(samples) < idleSteady {
		return false
	}
	last := samples[len(samples)-idleSteady:]
	lo, hi := slices.Min(last), slices.Max(last)
	return hi-lo <= max(hi/100, 256)
}

// idleLevels returns the connection counts to measure at: 64 and n.
func idleLevels(n int) []int {
	switch {
	case n <= 0:
		return nil
	case n <= 64:
		return []int{n}
	}
	return []int{64, n}
}

// measureIdle holds growing numbers of idle connections on each proxy and
// records its RSS at each. It runs on freshly started proxies, before any
// load, so earlier runs do not inflate the figures.
func (h *harness) measureIdle(ctx context.Context, peers []*peer, levels []int) *idleReport {
	rep := &idleReport{Conns: levels}
	for _, p := range peers {
		if !p.measured() || p.proc == nil {
			continue
		}
		r := idleResult{Peer: p.Name}
		if err := h.idleOne(ctx, p, levels, &r); err != nil {
			r.Error = err.Error()
			h.failf("idle connections on %s: %v", p.Name, err)
		}
		rep.Results = append(rep.Results, r)
		h.progress("idle connections %-9s %s", p.Name, formatIdle(r, levels))
	}
	return rep
}

func (h *harness) idleOne(ctx context.Context, p *peer, levels []int, r *idleResult) error {
	var err error
	if r.StartKiB, err = h.fs.rss(p.proc.PID()); err != nil {
		return err
	}
	holder := &connHolder{addr: p.addr, path: "/bytes/20"}
	defer holder.close()
	for _, n := range levels {
		// Clients arrive over seconds, not in one burst: idleStep at a
		// time, idlePause apart, and the figure is read once the RSS
		// has settled (settledRSS), so that a proxy that frees what an
		// idle connection holds (the balancer parks one idle for a
		// second, then gives back what that freed) is measured in its
		// steady state, not at the peak of a burst. Every peer is paced
		// and read alike.
		for held := len(holder.conns); held < n; {
			held = min(n, held+idleStep)
			if err := holder.grow(ctx, held); err != nil {
				return err
			}
			select {
			case <-time.After(idlePause):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		rss, err := h.settledRSS(ctx, p.proc.PID())
		if err != nil {
			return err
		}
		if alive := holder.alive(); alive != n {
			return fmt.Errorf("%d of %d idle connections still open", alive, n)
		}
		r.RSSKiB = append(r.RSSKiB, rss)
	}
	if k := len(levels); k >= 2 {
		per := float64(r.RSSKiB[k-1]-r.RSSKiB[k-2]) / float64(levels[k-1]-levels[k-2])
		r.PerConn = &per
	}
	return nil
}

func formatIdle(r idleResult, levels []int) string {
	if r.Error != "" {
		return "failed: " + r.Error
	}
	s := "start " + formatKiB(r.StartKiB)
	for i, n := range levels {
		s += fmt.Sprintf(", %d conns %s", n, formatKiB(r.RSSKiB[i]))
	}
	if r.PerConn != nil {
		s += fmt.Sprintf(", %.1f KiB/conn", *r.PerConn)
	}
	return s
}
