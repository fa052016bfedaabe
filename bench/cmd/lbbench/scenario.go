package main

import (
	"fmt"
	"strconv"
	"strings"
)

// scenario is one kind of load: what is requested, over which connections.
type scenario struct {
	Name        string
	Description string
	Method      string
	RespSize    int // the backend answers /bytes/RespSize
	BodySize    int // request body, for POST
	Conns       int
	KeepAlive   bool
	Default     bool // part of a run that names no scenarios
	// WebSocket scenarios echo RespSize-byte messages on Conns
	// WebSockets instead of making HTTP requests; a message counts as a
	// request.
	WebSocket bool
	// HTTP2 scenarios send their requests over HTTP/2 with TLS (h2load),
	// Streams at a time on each connection, to the peers that serve it.
	HTTP2   bool
	Streams int
	// TLS scenarios send HTTP/1.1 over TLS to the peers' HTTPS listener
	// (with KeepAlive false, a full handshake per request).
	TLS bool
	// Mixed scenarios make every MixEvery-th request on a connection ask
	// for MixSize bytes instead of RespSize (wrk only).
	MixSize, MixEvery int
}

// MixPath is what a mixed scenario's every MixEvery-th request asks for.
func (s scenario) MixPath() string { return "/bytes/" + strconv.Itoa(s.MixSize) }

// secure reports whether the scenario goes to the peers' HTTPS listener.
func (s scenario) secure() bool { return s.TLS || s.HTTP2 }

// Path is what the scenario requests.
func (s scenario) Path() string {
	if s.WebSocket {
		return "/ws"
	}
	return "/bytes/" + strconv.Itoa(s.RespSize)
}

// scenarios are every scenario the harness knows, in report order.
var scenarios = []scenario{
	{Name: "small", Description: "GET 20 B, 64 keep-alive connections", Method: "GET", RespSize: 20, Conns: 64, KeepAlive: true, Default: true},
	{Name: "small-512", Description: "GET 20 B, 512 keep-alive connections", Method: "GET", RespSize: 20, Conns: 512, KeepAlive: true, Default: true},
	{Name: "64k", Description: "GET 64 KiB, 64 keep-alive connections", Method: "GET", RespSize: 65536, Conns: 64, KeepAlive: true, Default: true},
	{Name: "64k-512", Description: "GET 64 KiB, 512 keep-alive connections", Method: "GET", RespSize: 65536, Conns: 512, KeepAlive: true},
	{Name: "close", Description: "GET 20 B, a new connection per request, 64 at a time", Method: "GET", RespSize: 20, Conns: 64, KeepAlive: false, Default: true},
	{Name: "post-4k", Description: "POST 4 KiB body, 20 B answer, 64 keep-alive connections", Method: "POST", RespSize: 20, BodySize: 4096, Conns: 64, KeepAlive: true, Default: true},
	{Name: "tls", Description: "GET 20 B over HTTPS (HTTP/1.1, TLS 1.3), 64 keep-alive connections", Method: "GET", RespSize: 20, Conns: 64, KeepAlive: true, TLS: true},
	{Name: "tls-close", Description: "GET 20 B over HTTPS, a new connection and full TLS handshake per request, 64 at a time", Method: "GET", RespSize: 20, Conns: 64, KeepAlive: false, TLS: true},
	{Name: "mix", Description: "GET 20 B, one request in fifty 64 KiB, 64 keep-alive connections", Method: "GET", RespSize: 20, MixSize: 65536, MixEvery: 50, Conns: 64, KeepAlive: true},
	{Name: "1m", Description: "GET 1 MiB, 16 keep-alive connections", Method: "GET", RespSize: 1 << 20, Conns: 16, KeepAlive: true},
	{Name: "h2", Description: "GET 20 B over HTTP/2 with TLS, 64 connections x 10 streams", Method: "GET", RespSize: 20, Conns: 64, Streams: 10, KeepAlive: true, HTTP2: true},
	{Name: "ws", Description: "WebSocket echo of 128 B messages, 64 WebSockets", Method: "GET", RespSize: 128, Conns: 64, KeepAlive: true, WebSocket: true},
}

// selectScenarios turns a comma-separated list of scenario names into
// scenarios, in report order. "default" (or empty) is the default set,
// "all" every scenario.
func selectScenarios(list string) ([]scenario, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			want[name] = true
		}
	}
	if len(want) == 0 {
		want["default"] = true
	}
	known := map[string]bool{"default": true, "all": true}
	for _, s := range scenarios {
		known[s.Name] = true
	}
	for name := range want {
		if !known[name] {
			return nil, fmt.Errorf("unknown scenario %q: want a comma-separated list of %s", name, scenarioNames())
		}
	}
	var out []scenario
	for _, s := range scenarios {
		if want["all"] || want[s.Name] || (want["default"] && s.Default) {
			out = append(out, s)
		}
	}
	return out, nil
}

func scenarioNames() string {
	names := []string{"default", "all"}
	for _, s := range scenarios {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}
