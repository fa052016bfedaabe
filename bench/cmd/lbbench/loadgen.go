package main

import (
	"context"
	"time"
)

// loadSpec is one load to put on a target: what to request, over how many
// connections, for how long.
type loadSpec struct {
	URL       string
	Method    string // GET or POST
	Body      []byte // request body (POST)
	Conns     int
	Streams   int // HTTP/2: requests in flight on each connection
	KeepAlive bool
	Duration  time.Duration
	// MixPath, when set, is asked for by every MixEvery-th request on a
	// connection instead of URL's path.
	MixPath  string
	MixEvery int
}

// loadResult is what a load generator reports about one run.
type loadResult struct {
	Requests int64         // responses received, whatever their status
	Seconds  float64       // length of the run
	RPS      float64       // requests per second
	P50      time.Duration // median latency
	P99      time.Duration
	Max      time.Duration
	Errors   int64 // connect, read, write errors and timeouts
	Non2xx   int64 // responses with an error status (see loadGenerator)
}

// loadGenerator drives HTTP load at a target and reports what it saw.
type loadGenerator interface {
	// Name is the tool's name, such as "wrk".
	Name() string
	// Version is the tool's version line, for the report.
	Version() string
	// Run puts the load on the target and returns the tool's figures.
	Run(ctx context.Context, spec loadSpec) (loadResult, error)
	// Non2xxMeaning says what the tool counts in Non2xx.
	Non2xxMeaning() string
}
