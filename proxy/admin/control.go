package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The control API: POST with a JSON body, answered with JSON.
//
//	POST /api/backends/add     {"pool": "api", "backend": "http://10.0.0.9:8080 weight=2"}
//	POST /api/backends/remove  {"pool": "api", "url": "http://10.0.0.9:8080"}
//	POST /api/backends/weight  {"pool": "api", "url": "http://10.0.0.9:8080", "weight": 5}
//	POST /api/backends/drain   {"pool": "api", "url": "http://10.0.0.9:8080"}
//	POST /api/backends/enable  {"pool": "api", "url": "http://10.0.0.9:8080"}
//	POST /api/reload
//
// "pool" may be left out when there is only one. A change answers 200 (201
// for add) with the backend as /api/backends shows it (remove: as it was,
// with the state "removed"); an error answers {"error": "..."} with 400 (bad
// input or a refused configuration), 404 (no such pool or backend), 409 (a
// conflict, such as adding a backend the pool has, removing a pool's last,
// enabling one configured down, or a reload without a configuration file)
// or 503 (the proxy is closed and takes no change).

// controlRequest is the body of a control call.
type controlRequest struct {
	Pool    string `json:"pool"`
	URL     string `json:"url"`
	Backend string `json:"backend"`
	Weight  int    `json:"weight"`
}

// errorJSON is the answer to a refused call.
type errorJSON struct {
	Error string `json:"error"`
}

// controlRoute returns the handler of a control path, when the admin
// interface has a Control.
func (s *Server) controlRoute(path string) (fasthttp.RequestHandler, bool) {
	c := s.cfg.Control
	if c == nil {
		return nil, false
	}
	var do func(r *controlRequest) (*pool.Backend, int, error)
	switch path {
	case "/api/backends/add":
		do = func(r *controlRequest) (*pool.Backend, int, error) {
			if r.Backend == "" {
				return nil, 0, errors.New(`missing "backend": the entry to add, such as "http://10.0.0.9:8080 weight=2"`)
			}
			b, err := c.AddBackend(r.Pool, r.Backend)
			return b, fasthttp.StatusCreated, err
		}
	case "/api/backends/remove":
		do = func(r *controlRequest) (*pool.Backend, int, error) {
			// Found first: once removed, it is in no pool.
			b := s.member(r.Pool, r.URL)
			if err := c.RemoveBackend(r.Pool, r.URL); err != nil {
				return nil, 0, err
			}
			return b, fasthttp.StatusOK, nil
		}
	case "/api/backends/weight":
		do = func(r *controlRequest) (*pool.Backend, int, error) {
			if err := c.SetWeight(r.Pool, r.URL, r.Weight); err != nil {
				return nil, 0, err
			}
			return s.member(r.Pool, r.URL), fasthttp.StatusOK, nil
		}
	case "/api/backends/drain":
		do = func(r *controlRequest) (*pool.Backend, int, error) {
			b, err := c.DrainBackend(r.Pool, r.URL)
			return b, fasthttp.StatusOK, err
		}
	case "/api/backends/enable":
		do = func(r *controlRequest) (*pool.Backend, int, error) {
			b, err := c.EnableBackend(r.Pool, r.URL)
			return b, fasthttp.StatusOK, err
		}
	default:
		return nil, false
	}
	return func(ctx *fasthttp.RequestCtx) { s.serveControl(ctx, path, do) }, true
}

func (s *Server) serveControl(ctx *fasthttp.RequestCtx, path string, do func(*controlRequest) (*pool.Backend, int, error)) {
	var r controlRequest
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorJSON{Error: "invalid JSON body: " + err.Error()})
		return
	}
	if r.URL == "" && path != "/api/backends/add" {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorJSON{Error: `missing "url": the backend's URL, such as "http://10.0.0.9:8080"`})
		return
	}
	b, status, err := do(&r)
	if err != nil {
		writeJSON(ctx, errorStatus(err), errorJSON{Error: err.Error()})
		return
	}
	attrs := []any{"client", ctx.RemoteAddr().String()}
	for _, kv := range [][2]string{{"pool", r.Pool}, {"url", r.URL}, {"backend", r.Backend}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	if r.Weight != 0 {
		attrs = append(attrs, "weight", r.Weight)
	}
	s.log.Info("admin API: "+path[len("/api/backends/"):], attrs...)
	if b == nil {
		// Changed meanwhile (a reload took it out): its URL is all.
		writeJSON(ctx, status, map[string]string{"url": r.URL})
		return
	}
	pl, removed := b.Pool(), path == "/api/backends/remove"
	if removed {
		pl = s.poolOf(r.Pool)
	}
	if pl == nil {
		writeJSON(ctx, status, map[string]string{"url": b.URL()})
		return
	}
	j := describe(pl, b, !removed && inRotation(pl, b), s.window.view(), false)
	if removed {
		j.State = "removed" // its requests in flight (in_flight) finish
	}
	writeJSON(ctx, status, j)
}

// member finds the backend a call named, to show it after a change.
func (s *Server) member(poolName, u string) *pool.Backend {
	b, err := pool.NewBackend(u)
	if err != nil {
		return nil
	}
	for _, pl := range s.src.Pools() {
		if poolName == "" || pl.Name() == poolName {
			if m := pl.Lookup(b.URL()); m != nil {
				return m
			}
		}
	}
	return nil
}

// poolOf names the pool a backend was removed from: the one the call named,
// or the only one.
func (s *Server) poolOf(poolName string) *pool.Pool {
	pls := s.src.Pools()
	for _, pl := range pls {
		if pl.Name() == poolName {
			return pl
		}
	}
	if poolName == "" && len(pls) == 1 {
		return pls[0]
	}
	return nil
}

func inRotation(pl *pool.Pool, b *pool.Backend) bool {
	for _, u := range pl.Up() {
		if u == b {
			return true
		}
	}
	return false
}

// errorStatus maps a Control's error to a status.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, pool.ErrNotFound):
		return fasthttp.StatusNotFound
	case errors.Is(err, pool.ErrConflict):
		return fasthttp.StatusConflict
	case errors.Is(err, pool.ErrClosed):
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusBadRequest
}

// serveReload reloads the configuration: 200 when applied, 400 with the
// reason when refused (the old configuration keeps serving), 503 when the
// proxy is closed, 409 without a Reloader: there is nothing to reload.
func (s *Server) serveReload(ctx *fasthttp.RequestCtx) {
	if s.cfg.Reloader == nil {
		writeJSON(ctx, fasthttp.StatusConflict, errorJSON{Error: "no configuration file to reload: the balancer runs without one (-config)"})
		return
	}
	if err := s.cfg.Reloader.Reload(); err != nil {
		status := fasthttp.StatusBadRequest
		if errors.Is(err, pool.ErrClosed) {
			status = fasthttp.StatusServiceUnavailable
		}
		writeJSON(ctx, status, errorJSON{Error: err.Error()})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "reloaded"})
}

// crossSite reports whether a POST comes from another site's page, which a
// browser holding the admin's credentials would send with them (CSRF):
// browsers say where a request comes from in Sec-Fetch-Site and Origin.
func crossSite(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	if site := string(h.Peek("Sec-Fetch-Site")); site != "" && site != "same-origin" && site != "none" {
		return true
	}
	if origin := h.Peek(fasthttp.HeaderOrigin); len(origin) > 0 {
		u, err := url.Parse(string(origin))
		if err != nil || u.Host != string(h.Host()) {
			return true
		}
	}
	return false
}

// jsonBody reports whether a POST's body, if it has one, says it is JSON.
// Another site's page can send only form and plain-text bodies without the
// browser asking the admin interface first (CORS), which it never allows:
// requiring JSON keeps such pages out even from browsers that send neither
// Sec-Fetch-Site nor Origin.
func jsonBody(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	if len(ctx.PostBody()) == 0 && h.ContentLength() <= 0 {
		return true
	}
	ct, _, _ := bytes.Cut(h.ContentType(), []byte(";"))
	return string(bytes.ToLower(bytes.TrimSpace(ct))) == "application/json"
}
