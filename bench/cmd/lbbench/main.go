// Command lbbench measures the load balancer side by side with nginx,
// HAProxy, Go's net/http ReverseProxy and no proxy at all, on the same
// backends and the same load, and writes the results as a table, JSON,
// Markdown and an SVG chart. `make bench` builds and runs it:
//
//	lbbench -duration=2s -rounds=3 -scenarios=default -out=bench/results
//
// Each proxy runs alone on one CPU (taskset); the load generator (wrk) and
// the backends share another. The figure that matters is the proxy's CPU
// time per request (user + system, over its whole process tree, from
// /proc), since it does not depend on how fast the load generator is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	duration  time.Duration
	warmup    time.Duration
	rounds    int
	scenarios string
	peers     string
	backend   string
	loadgen   string
	idleConns int
	out       string
	binDir    string
	proxyCPU  string
	loadCPU   string
	keepTemp  bool
	together  bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("lbbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "length of each measured run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "load before each measured run, not measured (0 for none)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of every scenario on every peer; the report gives medians")
	fs.StringVar(&o.scenarios, "scenarios", "default", "comma-separated scenarios: "+scenarioNames())
	fs.StringVar(&o.peers, "peers", "all", "comma-separated peers: all, balancer, net/http, nginx, haproxy, direct")
	fs.StringVar(&o.backend, "backend", "go", "backends: go (two backend-server processes) or nginx (one nginx, two servers)")
	fs.StringVar(&o.loadgen, "loadgen", "auto", "load generator: auto (wrk, else hey), wrk or hey")
	fs.IntVar(&o.idleConns, "idle-conns", 5000, "idle keep-alive connections to measure memory at, besides 64 (0 skips)")
	fs.StringVar(&o.out, "out", "bench/results", "directory for latest.json, latest.md and the chart")
	fs.StringVar(&o.binDir, "bin", "bin", "directory with load-balancer, backend-server and httpproxy")
	fs.StringVar(&o.proxyCPU, "proxy-cpu", "1", "CPU list for the proxy under test (taskset -c); empty: no pinning")
	fs.StringVar(&o.loadCPU, "load-cpu", "0", "CPU list for the load generator and backends; empty: no pinning")
	fs.BoolVar(&o.keepTemp, "keep-temp", false, "keep the temporary directory (configs, logs) after the run")
	fs.BoolVar(&o.together, "together", false, "run every peer's load at the same moment, each with its own load generator, the proxies sharing the proxy CPU: ratios to within about 2% (direct sits out)")
	probe := fs.Bool("probe-gomaxprocs", false, "print GOMAXPROCS and exit (used by the harness itself)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *probe {
		fmt.Println(runtime.GOMAXPROCS(0))
		return o, errProbed
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.duration < time.Second:
		return o, fmt.Errorf("invalid -duration %v: want 1s or more (wrk counts whole seconds)", o.duration)
	case o.warmup < 0:
		return o, fmt.Errorf("invalid -warmup %v: want 0 or more", o.warmup)
	case o.rounds < 1:
		return o, fmt.Errorf("invalid -rounds %d: want 1 or more", o.rounds)
	case o.idleConns < 0:
		return o, fmt.Errorf("invalid -idle-conns %d: want 0 or more", o.idleConns)
	case o.backend != "go" && o.backend != "nginx":
		return o, fmt.Errorf("invalid -backend %q: want go or nginx", o.backend)
	}
	if _, err := selectScenarios(o.scenarios); err != nil {
		return o, fmt.Errorf("invalid -scenarios: %v", err)
	}
	if _, err := selectPeers(o.peers); err != nil {
		return o, fmt.Errorf("invalid -peers: %v", err)
	}
	return o, nil
}

// errProbed ends a -probe-gomaxprocs run.
var errProbed = errors.New("probed")

func run(args []string, stdout, stderr io.Writer) int {
	if isWSLoad(args) {
		if err := runWSLoad(args[1:], stdout); err != nil {
			fmt.Fprintf(stderr, "lbbench -wsload: %v\n", err)
			return 1
		}
		return 0
	}
	o, err := parseOptions(args, stderr)
	switch {
	case errors.Is(err, errProbed), errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "lbbench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := &harness{opts: o, stdout: stdout, stderr: stderr, fs: procFS{root: "/proc"}}
	rep, err := h.run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lbbench: %v\n", err)
		return 1
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "lbbench: interrupted; nothing written")
		return 1
	}
	if err := writeResults(o.out, rep); err != nil {
		fmt.Fprintf(stderr, "lbbench: %v\n", err)
		return 1
	}
	printTable(stdout, rep)
	fmt.Fprintf(stdout, "\nResults: %s/latest.json, %s/latest.md, %s/%s\n", o.out, o.out, o.out, chartFile)
	if len(rep.Failures) > 0 {
		fmt.Fprintf(stderr, "lbbench: %d failure(s):\n", len(rep.Failures))
		for _, f := range rep.Failures {
			fmt.Fprintln(stderr, "  "+f)
		}
		return 1
	}
	return 0
}
