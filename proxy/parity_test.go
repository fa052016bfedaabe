package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The parity table: every proxy-semantics case runs once over HTTP/1.1
// (the fasthttp path) and once over HTTP/2 (h2c with prior knowledge on
// the same port: the net/http path), against HTTP/1.1 backends, and must
// give the same outcome both times, the one the case expects.

// parityEnv is what a case gets: a client of one protocol, and a way to
// start a proxy with h2c on.
type parityEnv struct {
	t      *testing.T
	proto  string // "HTTP/1.1" or "HTTP/2"
	client *http.Client
	last   *Proxy // the proxy started last
}

func (e *parityEnv) proxy(cfg Config) string {
	cfg.HTTP2.H2C = true
	if cfg.Health.Interval == 0 {
		cfg.Health.Interval = -1
	}
	p, u := startProxy(e.t, cfg)
	e.last = p
	return u
}

// headerKey is a pool.Request carrying one header value.
type headerKey string

func (h headerKey) Key(pool.Key) []byte { return []byte(h) }

// do sends a request and returns the response with its body read, after
// checking it came over the protocol under test.
func (e *parityEnv) do(req *http.Request) (*http.Response, string) {
	e.t.Helper()
	resp, body := do(e.t, e.client, req)
	if want := map[string]int{"HTTP/1.1": 1, "HTTP/2": 2}[e.proto]; resp.ProtoMajor != want {
		e.t.Fatalf("answered over %s, want %s", resp.Proto, e.proto)
	}
	return resp, body
}

func (e *parityEnv) get(url string, header ...string) (*http.Response, string) {
	req := newRequest(e.t, "GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return e.do(req)
}

func (e *parityEnv) echo(req *http.Request) backend.Echo {
	e.t.Helper()
	_, body := e.do(req)
	var ec backend.Echo
	if err := json.Unmarshal([]byte(body), &ec); err != nil {
		e.t.Fatalf("echo: %v: %q", err, body)
	}
	return ec
}

// logged waits for the one access log line in buf (JSON) and returns its
// fields; backend, when set, is the URL the line should name.
func (e *parityEnv) logged(buf *logBuffer, backend string) outcome {
	e.t.Helper()
	lines := accessLines(e.t, buf, 1)
	o := outcome{"lines": fmt.Sprint(len(lines))}
	for k, v := range jsonLine(e.t, lines[0]) {
		o[k] = fmt.Sprint(v)
	}
	delete(o, "time")
	delete(o, "duration_ms")
	if backend != "" && o["backend"] == backend {
		o["backend"] = "the backend"
	}
	if want := map[string]string{"HTTP/1.1": "HTTP/1.1", "HTTP/2": "HTTP/2.0"}[e.proto]; o["proto"] == want {
		o["proto"] = "the client's"
	}
	return o
}

// outcome is what a case observed, compared across protocols.
type outcome map[string]string

func TestParity(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(e *parityEnv) outcome
		want outcome
	}{
		{"forwarding headers replace the client's", func(e *parityEnv) outcome {
			be := startBackend(e.t, "a")
			u := e.proxy(Config{Backends: []string{be.URL()}})
			req := newRequest(e.t, "GET", u+"/echo", nil)
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			req.Header.Set("X-Real-IP", "6.6.6.6")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "evil")
			req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
			req.Header.Set("X-Kept", "yes")
			req.Host = "shop.example:8443"
			ec := e.echo(req)
			return outcome{
				"xff": strings.Join(header(ec, "X-Forwarded-For"), ","), "real": strings.Join(header(ec, "X-Real-IP"), ","),
				"proto": strings.Join(header(ec, "X-Forwarded-Proto"), ","), "host": strings.Join(header(ec, "X-Forwarded-Host"), ","),
				"proxy-auth": strings.Join(header(ec, "Proxy-Authorization"), ","), "kept": strings.Join(header(ec, "X-Kept"), ","),
				"Host": ec.Host,
			}
		}, outcome{"xff": "127.0.0.1", "real": "127.0.0.1", "proto": "http", "host": "shop.example:8443",
			"proxy-auth": "", "kept": "yes", "Host": "shop.example:8443"}},

		{"trusted proxy chains are extended", func(e *parityEnv) outcome {
			be := startBackend(e.t, "a")
			trusted, _ := ParseTrustedProxies("127.0.0.0/8")
			u := e.proxy(Config{Backends: []string{be.URL()}, TrustedProxies: trusted})
			req := newRequest(e.t, "GET", u+"/echo", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9, 127.0.0.5")
			ec := e.echo(req)
			return outcome{"xff": strings.Join(header(ec, "X-Forwarded-For"), ","), "real": strings.Join(header(ec, "X-Real-IP"), ",")}
		}, outcome{"xff": "203.0.113.9, 127.0.0.5, 127.0.0.1", "real": "203.0.113.9"}},

		{"path and query exactly as sent", func(e *parityEnv) outcome {
			seen := make(chan string, 1)
			rb := startRawBackend(e.t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				for {
					req, ok := rb.readRequest(r)
					if !ok {
						return
					}
					seen <- req.RequestURI + " Host " + req.Host
					io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
				}
			})
			u, _ := url.Parse(e.proxy(Config{Backends: []string{rb.URL()}}))
			req := newRequest(e.t, "GET", u.String(), nil)
			req.URL = &url.URL{Scheme: "http", Host: u.Host, Opaque: "/a%2Fb/./c//d/%7e", RawQuery: "x=%20&y=a;b&z"}
			req.Host = "Shop.Example:8443"
			resp, _ := e.do(req)
			return outcome{"status": fmt.Sprint(resp.StatusCode), "seen": <-seen}
		}, outcome{"status": "204", "seen": "/a%2Fb/./c//d/%7e?x=%20&y=a;b&z Host Shop.Example:8443"}},

		{"hop-by-hop response headers removed", func(e *parityEnv) outcome {
			rb := startRawBackend(e.t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				for {
					if _, ok := rb.readRequest(r); !ok {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Resp-Hop\r\nKeep-Alive: timeout=5\r\n"+
						"X-Resp-Hop: 1\r\nProxy-Authenticate: Basic\r\nX-End: 2\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			u := e.proxy(Config{Backends: []string{rb.URL()}})
			resp, body := e.get(u + "/")
			return outcome{"body": body, "hop": resp.Header.Get("X-Resp-Hop") + resp.Header.Get("Keep-Alive") +
				resp.Header.Get("Proxy-Authenticate"), "end": resp.Header.Get("X-End"), "ct": strings.Join(resp.Header.Values("Content-Type"), ",")}
		}, outcome{"body": "ok", "hop": "", "end": "2", "ct": ""}},

		{"idempotent requests retried, others not", func(e *parityEnv) outcome {
			// The first pick (the heavier weight) takes requests and closes
			// the connection without a word.
			drop := startRawBackend(e.t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) { rb.readRequest(r) })
			good := startBackend(e.t, "good")
			cfg := Config{Backends: []string{drop.URL() + " weight=1000", good.URL()}, EjectAfter: -1}
			_, getBody := e.get(e.proxy(cfg) + "/")
			resp, postBody := e.do(newRequest(e.t, "POST", e.proxy(cfg)+"/echo", strings.NewReader("data")))
			return outcome{"get": backendOf(getBody), "post": fmt.Sprint(resp.StatusCode, " ", postBody),
				"dropped": fmt.Sprint(drop.requests.Load()), "good": fmt.Sprint(good.hits.Load())}
		}, outcome{"get": "good", "post": "502 502 Bad Gateway: backend unavailable\n", "dropped": "2", "good": "1"}},

		{"502 when no backend can be reached", func(e *parityEnv) outcome {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			dead := "http://" + ln.Addr().String()
			ln.Close()
			resp, body := e.get(e.proxy(Config{Backends: []string{dead}}) + "/")
			resp2, body2 := e.get(e.proxy(Config{Backends: []string{dead + " down"}}) + "/")
			return outcome{"refused": fmt.Sprint(resp.StatusCode, " ", body), "none": fmt.Sprint(resp2.StatusCode, " ", body2),
				"ct": resp.Header.Get("Content-Type")}
		}, outcome{"refused": "502 502 Bad Gateway: backend unavailable\n", "none": "502 502 Bad Gateway: no healthy backend\n",
			"ct": "text/plain; charset=utf-8"}},

		{"503 when every backend is at max_conns", func(e *parityEnv) outcome {
			be := startBackend(e.t, "a")
			u := e.proxy(Config{Backends: []string{be.URL() + " max_conns=1"}})
			slow := make(chan int, 1)
			go func() {
				resp, err := e.client.Get(u + "/delay/300ms")
				if err != nil {
					slow <- 0
					return
				}
				resp.Body.Close()
				slow <- resp.StatusCode
			}()
			waitFor(e.t, "the slow request at the backend", 5*time.Second, func() bool { return be.busy.Load() == 1 })
			resp, body := e.get(u + "/")
			return outcome{"busy": fmt.Sprint(resp.StatusCode, " ", body), "slow": fmt.Sprint(<-slow)}
		}, outcome{"busy": "503 503 Service Unavailable: backends at connection limit\n", "slow": "200"}},

		{"504 after the try timeout, POST not resent", func(e *parityEnv) outcome {
			frozen := startRawBackend(e.t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				rb.readRequest(r)
				io.Copy(io.Discard, r) // never answers
			})
			good := startBackend(e.t, "good")
			u := e.proxy(Config{Backends: []string{frozen.URL() + " weight=1000", good.URL()}, TryTimeout: 150 * time.Millisecond, EjectAfter: -1})
			resp, body := e.do(newRequest(e.t, "POST", u+"/", strings.NewReader("x")))
			_, getBody := e.get(e.proxy(Config{Backends: []string{frozen.URL() + " weight=1000", good.URL()},
				TryTimeout: 150 * time.Millisecond, EjectAfter: -1}) + "/")
			return outcome{"post": fmt.Sprint(resp.StatusCode, " ", body), "get": backendOf(getBody), "good": fmt.Sprint(good.hits.Load())}
		}, outcome{"post": "504 504 Gateway Timeout: backend did not answer in time\n", "get": "good", "good": "1"}},

		{"GET hedged to another backend when the first is slow", func(e *parityEnv) outcome {
			slow, fast := startBackend(e.t, "slow"), startBackend(e.t, "fast")
			slow.freeze()
			u := e.proxy(Config{Backends: []string{slow.URL() + " weight=1000", fast.URL()}, HedgeAfter: 50 * time.Millisecond,
				HedgeBudget: 100, EjectAfter: -1})
			_, body := e.get(u + "/")
			bs := e.last.Pool().Backends()
			caused, _ := bs[0].Hedges()
			_, won := bs[1].Hedges()
			return outcome{"answer": backendOf(body), "caused": fmt.Sprint(caused), "won": fmt.Sprint(won)}
		}, outcome{"answer": "fast", "caused": "1", "won": "1"}},

		{"413 for a body over the limit", func(e *parityEnv) outcome {
			be := startBackend(e.t, "a")
			u := e.proxy(Config{Backends: []string{be.URL()}, MaxBodySize: 1024})
			resp, body := e.do(newRequest(e.t, "PUT", u+"/echo", strings.NewReader(strings.Repeat("x", 2048))))
			return outcome{"status": fmt.Sprint(resp.StatusCode, " ", body), "hits": fmt.Sprint(be.hits.Load())}
		}, outcome{"status": "413 413 Content Too Large\n", "hits": "0"}},

		{"TRACE refused", func(e *parityEnv) outcome {
			be := startBackend(e.t, "a")
			resp, body := e.do(newRequest(e.t, "TRACE", e.proxy(Config{Backends: []string{be.URL()}})+"/", nil))
			return outcome{"status": fmt.Sprint(resp.StatusCode, " ", body), "hits": fmt.Sprint(be.hits.Load())}
		}, outcome{"status": "405 405 Method Not Allowed\n", "hits": "0"}},

		{"sticky cookie pins and is the same on both paths", func(e *parityEnv) outcome {
			a, b := startBackend(e.t, "a"), startBackend(e.t, "b")
			u := e.proxy(Config{Backends: []string{a.URL(), b.URL()}, StickyCookie: "lb"})
			resp, first := e.get(u + "/")
			set := resp.Header.Values("Set-Cookie")
			value := stickyValue(set, "lb")
			pinned := map[string]int{}
			for range 5 {
				resp, body := e.get(u+"/", "Cookie", "x=1; lb="+value)
				pinned[backendOf(body)]++
				if len(resp.Header.Values("Set-Cookie")) != 0 {
					pinned["set again"]++
				}
			}
			return outcome{"first": backendOf(first), "cookie": strings.TrimPrefix(strings.Join(set, ";"), "lb="+value),
				"pinned": fmt.Sprint(pinned)}
		}, outcome{"first": "a", "cookie": "; Path=/; HttpOnly; SameSite=Lax", "pinned": "map[a:5]"}},

		{"round-robin and hashing policies", func(e *parityEnv) outcome {
			a, b := startBackend(e.t, "a"), startBackend(e.t, "b")
			u := e.proxy(Config{Backends: []string{a.URL(), b.URL()}})
			var order []string
			for range 4 {
				_, body := e.get(u + "/")
				order = append(order, backendOf(body))
			}
			h := e.proxy(Config{Backends: []string{a.URL(), b.URL()}, Policy: pool.NewMaglev(pool.Key{Kind: pool.KeyHeader, Name: "X-User"})})
			// Where each user lands depends on the backends' ports: the
			// pool itself says where, and both paths must agree with it.
			names := map[string]string{a.URL(): "a", b.URL(): "b"}
			wrong := 0
			for _, user := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
				want := names[e.last.Pool().Next(headerKey(user), pool.Tried{}).URL()]
				for range 3 {
					if _, body := e.get(h+"/", "X-User", user); backendOf(body) != want {
						wrong++
					}
				}
			}
			return outcome{"rr": strings.Join(order, ","), "hash misplaced": fmt.Sprint(wrong)}
		}, outcome{"rr": "a,b,a,b", "hash misplaced": "0"}},

		{"access log: a proxied request", func(e *parityEnv) outcome {
			be := startBackend(e.t, "a")
			var buf logBuffer
			u := e.proxy(Config{Backends: []string{be.URL()}, AccessLog: &buf, AccessLogFormat: AccessLogJSON})
			e.get(u+"/bytes/100?x=1", "Referer", "https://ref.example/", "User-Agent", `agent "7"`)
			o := e.logged(&buf, be.URL())
			if o["host"] == strings.TrimPrefix(u, "http://") {
				o["host"] = "the proxy's"
			}
			return o
		}, outcome{"status": "200", "method": "GET", "uri": "/bytes/100?x=1", "client": "127.0.0.1", "host": "the proxy's",
			"bytes": "100", "attempts": "1", "backend": "the backend", "referer": "https://ref.example/",
			"user_agent": `agent "7"`, "proto": "the client's", "lines": "1"}},

		{"access log: attempts on failing backends", func(e *parityEnv) outcome {
			a, b := startBackend(e.t, "a"), startBackend(e.t, "b")
			a.kill()
			b.kill()
			var buf logBuffer
			u := e.proxy(Config{Backends: []string{a.URL(), b.URL()}, AccessLog: &buf, AccessLogFormat: AccessLogJSON})
			e.get(u + "/")
			o := e.logged(&buf, "")
			return outcome{"status": o["status"], "attempts": o["attempts"], "backend": o["backend"]}
		}, outcome{"status": "502", "attempts": "2", "backend": ""}},

		{"access log: the proxy's own answers", func(e *parityEnv) outcome {
			be := startBackend(e.t, "a")
			var buf logBuffer
			u := e.proxy(Config{Backends: []string{be.URL() + " down"}, AccessLog: &buf, AccessLogFormat: AccessLogJSON, MaxBodySize: 1024})
			e.get(u + "/")
			req := newRequest(e.t, "POST", u+"/upload", strings.NewReader(strings.Repeat("x", 4096)))
			req.ContentLength = 4096
			e.do(req)
			lines := accessLines(e.t, &buf, 2)
			o := outcome{}
			for i, line := range lines {
				m := jsonLine(e.t, line)
				o[fmt.Sprintf("%d", i)] = fmt.Sprintf("%v %v %v attempts=%v backend=%q", m["method"], m["uri"], m["status"], m["attempts"], m["backend"])
			}
			return o
		}, outcome{"0": `GET / 502 attempts=0 backend=""`, "1": `POST /upload 413 attempts=0 backend=""`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]outcome{}
			for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
				e := &parityEnv{t: t, proto: proto, client: newClient(t)}
				if proto == "HTTP/2" {
					e.client = newH2Client(t, nil)
				}
				got[proto] = tc.run(e)
				// Idle connections closed by the client now rather than
				// by the proxies' shutdown a second after GOAWAY.
				e.client.CloseIdleConnections()
			}
			if !reflect.DeepEqual(got["HTTP/1.1"], got["HTTP/2"]) {
				t.Errorf("outcomes differ:\nHTTP/1.1: %v\nHTTP/2:   %v", got["HTTP/1.1"], got["HTTP/2"])
			}
			for k, v := range got["HTTP/1.1"] {
				if want, ok := tc.want[k]; !ok || (want != "*" && want != v) {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
			if len(got["HTTP/1.1"]) != len(tc.want) {
				t.Errorf("outcome %v, want %v", got["HTTP/1.1"], tc.want)
			}
		})
	}
}
