package proxy

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Route sends the requests for a host and path prefix to a pool. Among the
// routes that match a request, the most specific host wins (an exact name,
// then wildcards from the longest suffix, then routes without a host), and
// within it the longest path prefix; a host whose routes match no prefix
// of the path passes the request on to the less specific ones. A route with
// neither Host nor PathPrefix is the default route.
type Route struct {
	// Host is a host name ("api.example.com"), a wildcard for every name
	// under a domain ("*.example.com", not example.com itself), or empty for
	// any host. Names compare without case and without the port.
	Host string
	// PathPrefix is the start of the paths routed ("/api/"; "/api" takes
	// "/apis" too, as nginx's prefix locations do), or empty for every
	// path. It is compared with the request's path after percent-decoding,
	// merging of repeated slashes and removal of dot segments, so
	// "/x/../api/" is routed as "/api/"; the backend still gets the path
	// exactly as the client sent it.
	PathPrefix string
	// Pool names the pool in Config.Pools (or DefaultPool) that gets the
	// requests.
	Pool string
}

// String describes r as a config file would: "host api.example.com, path
// prefix /v1/ -> pool api".
func (r Route) String() string {
	var parts []string
	if r.Host != "" {
		parts = append(parts, "host "+r.Host)
	}
	if r.PathPrefix != "" {
		parts = append(parts, "path prefix "+r.PathPrefix)
	}
	if len(parts) == 0 {
		parts = append(parts, "default route")
	}
	return strings.Join(parts, ", ") + " -> pool " + r.Pool
}

// CheckRoute reports whether r's host and path prefix are valid and it names
// a pool (whether that pool exists is for New or Reload to say).
func CheckRoute(r Route) error {
	_, err := checkRoute(r)
	return err
}

// checkRoute validates r's host and prefix and returns the host as the
// table keys it: lowercase, without a trailing dot.
func checkRoute(r Route) (host string, err error) {
	host = strings.TrimSuffix(strings.ToLower(r.Host), ".")
	name := strings.TrimPrefix(host, "*.")
	switch {
	case r.Pool == "":
		return "", fmt.Errorf("route %q: no pool", r.String())
	case strings.Contains(name, "*"):
		return "", fmt.Errorf("invalid host %q: a wildcard is only allowed as the first label, as in *.example.com", r.Host)
	case host != "" && name == "":
		return "", fmt.Errorf("invalid host %q: empty name", r.Host)
	case strings.ContainsAny(name, ":/ \t[]@"):
		return "", fmt.Errorf("invalid host %q: want a name such as api.example.com, without port or scheme", r.Host)
	case r.PathPrefix != "" && r.PathPrefix[0] != '/':
		return "", fmt.Errorf("invalid path prefix %q: must start with /", r.PathPrefix)
	case strings.ContainsAny(r.PathPrefix, "?# \t"):
		return "", fmt.Errorf("invalid path prefix %q: a path only, without query or spaces", r.PathPrefix)
	}
	return host, nil
}

// route is where a request goes: a pool, and what the proxy adds to it.
type route struct {
	name   string
	pool   *pool.Pool
	sticky *sticky // nil without a sticky cookie
	// viaNet: the pool has HTTP/2 backends, which only the net/http path
	// reaches, so its HTTP/1.1 requests take that path too.
	viaNet bool
}

// table is the routing table: which pool serves which request. It is
// immutable; a reload, a discovery update or an admin change publishes a new
// one (Proxy.table), and requests in flight finish with the one they loaded.
// Everything a lookup needs is compiled when the table is built: an exact
// host is one map read, a wildcard one per label of the request's host, and
// prefixes are sorted longest first. A lookup allocates nothing.
type table struct {
	// single is the only pool when there are no routes: the request path
	// then does no lookup at all.
	single *route

	exact map[string]*prefixes // by lowercase host
	wild  map[string]*prefixes // by domain suffix: ".example.com" for *.example.com
	any   *prefixes            // routes without a host, the default one included

	routes []*route // every pool's route, in configuration order
	viaNet bool     // some route is viaNet
}

// prefixes are one host's routes, longest prefix first.
type prefixes []prefixRoute

type prefixRoute struct {
	prefix string // "" matches every path
	route  *route
}

// match returns the route for the path of prefixes, or nil.
func (ps *prefixes) match(path []byte) *route {
	for _, p := range *ps {
		if len(path) >= len(p.prefix) && string(path[:len(p.prefix)]) == p.prefix {
			return p.route
		}
	}
	return nil
}

// match returns the route of req, or nil when no route takes it. req's URI
// must be parsed (prepareRequest does it): its host is lowercased and its
// path normalised there.
func (t *table) match(req *fasthttp.Request) *route {
	if t.single != nil {
		return t.single
	}
	return t.matchURI(req.URI())
}

// viaNetFor reports whether req's route sends HTTP/1.1 requests through the
// net/http path (route.viaNet). fasthttp has lowercased the URI's host and
// normalised its path, so the request need not be prepared first.
func (t *table) viaNetFor(req *fasthttp.Request) bool {
	if !t.viaNet {
		return false
	}
	rt := t.match(req)
	return rt != nil && rt.viaNet
}

func (t *table) matchURI(u *fasthttp.URI) *route { return t.lookup(u.Host(), u.Path()) }

func (t *table) lookup(host, path []byte) *route {
	host = hostName(host)
	if ps := t.exact[string(host)]; ps != nil {
		if r := ps.match(path); r != nil {
			return r
		}
	}
	if len(t.wild) > 0 {
		// The longest suffix first: a.b.example.com tries .b.example.com,
		// then .example.com, then .com.
		for i := 0; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if ps := t.wild[string(host[i:])]; ps != nil {
				if r := ps.match(path); r != nil {
					return r
				}
			}
		}
	}
	if t.any != nil {
		return t.any.match(path)
	}
	return nil
}

// hostName strips the port and a trailing dot from a lowercase host.
func hostName(h []byte) []byte {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.LastIndexByte(h, ']') < i {
		h = h[:i]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	return h
}

// newTable compiles routes over pools (by name). With no routes, or only a
// default route, and one pool, every request goes to that pool without a
// lookup. defaultPool names the pool that takes what no route does, when no
// route is the default one; empty means such requests get 404.
func newTable(pools []*route, routes []Route, defaultPool string) (*table, error) {
	t := &table{routes: pools}
	for _, r := range pools {
		t.viaNet = t.viaNet || r.viaNet
	}
	byName := make(map[string]*route, len(pools))
	for _, r := range pools {
		byName[r.name] = r
	}
	hasDefault := false
	for _, r := range routes {
		hasDefault = hasDefault || (r.Host == "" && r.PathPrefix == "")
	}
	if !hasDefault && defaultPool != "" {
		routes = append(slices.Clip(routes), Route{Pool: defaultPool})
	}
	if len(pools) == 1 && len(routes) == 1 && routes[0].Host == "" && routes[0].PathPrefix == "" && routes[0].Pool == pools[0].name {
		t.single = pools[0]
		return t, nil
	}
	type key struct{ host, prefix string }
	seen := make(map[key]Route, len(routes))
	add := func(m map[string]*prefixes, k string, p prefixRoute) map[string]*prefixes {
		if m == nil {
			m = map[string]*prefixes{}
		}
		ps := m[k]
		if ps == nil {
			ps = &prefixes{}
			m[k] = ps
		}
		*ps = append(*ps, p)
		return m
	}
	for _, r := range routes {
		host, err := checkRoute(r)
		if err != nil {
			return nil, err
		}
		dst := byName[r.Pool]
		if dst == nil {
			return nil, fmt.Errorf("route %q: unknown pool %q", r.String(), r.Pool)
		}
		k := key{host, r.PathPrefix}
		if first, dup := seen[k]; dup {
			return nil, fmt.Errorf("route %q: the same host and path prefix as %q", r.String(), first.String())
		}
		seen[k] = r
		p := prefixRoute{prefix: r.PathPrefix, route: dst}
		switch {
		case host == "":
			if t.any == nil {
				t.any = &prefixes{}
			}
			*t.any = append(*t.any, p)
		case strings.HasPrefix(host, "*."):
			t.wild = add(t.wild, host[1:], p)
		default:
			t.exact = add(t.exact, host, p)
		}
	}
	longestFirst := func(ps *prefixes) {
		slices.SortStableFunc(*ps, func(a, b prefixRoute) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	}
	for _, m := range []map[string]*prefixes{t.exact, t.wild} {
		for _, ps := range m {
			longestFirst(ps)
		}
	}
	if t.any != nil {
		longestFirst(t.any)
	}
	return t, nil
}
