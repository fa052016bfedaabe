package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// routedRequest is a request as the handler sees it after prepareRequest:
// its URI parsed.
func routedRequest(host, uri string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.Header.SetRequestURI(uri)
	req.Header.SetHost(host)
	req.URI() // parsed, as prepareRequest does
	return req
}

func testTable(t *testing.T, routes []Route, defaultPool string, pools ...string) *table {
	t.Helper()
	var rs []*route
	for _, p := range pools {
		rs = append(rs, &route{name: p})
	}
	tb, err := newTable(rs, routes, defaultPool)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestRouteMatching(t *testing.T) {
	routes := []Route{
		{Host: "api.example.com", Pool: "api"},
		{Host: "api.example.com", PathPrefix: "/v2/", Pool: "api2"},
		{Host: "*.example.com", PathPrefix: "/static/", Pool: "static"},
		{Host: "*.eu.example.com", Pool: "eu"},
		{PathPrefix: "/api/", Pool: "api"},
		{PathPrefix: "/api/admin/", Pool: "admin"},
		{Pool: "web"},
	}
	tb := testTable(t, routes, "", "web", "api", "api2", "static", "eu", "admin")
	for _, tc := range []struct{ host, uri, want string }{
		{"api.example.com", "/", "api"},
		{"API.Example.COM:8443", "/x", "api"},          // case and port do not count
		{"api.example.com.", "/x", "api"},              // nor a trailing dot
		{"api.example.com", "/v2/users?x=1", "api2"},   // longest prefix within the host
		{"api.example.com", "/static/a.css", "api"},    // the exact host wins over a wildcard
		{"www.example.com", "/static/a.css", "static"}, // wildcard
		{"www.example.com", "/other", "web"},           // wildcard has no such prefix: on to the hostless routes
		{"a.b.example.com", "/static/x", "static"},     // wildcards take any depth
		{"x.eu.example.com", "/static/x", "eu"},        // the longest wildcard suffix first
		{"example.com", "/static/x", "web"},            // *.example.com is not example.com
		{"other.org", "/api/users", "api"},
		{"other.org", "/api/admin/x", "admin"},
		{"other.org", "/api", "web"},                        // "/api/" does not take "/api"
		{"other.org", "/x/../api/admin/y", "admin"},         // normalised: dot segments
		{"other.org", "//api//admin/y", "admin"},            // merged slashes
		{"other.org", "/%61pi/admin/", "admin"},             // percent-decoded
		{"other.org", "http://api.example.com/v2/", "api2"}, // absolute form: its host counts
		{"[::1]:80", "/api/", "api"},
	} {
		r := tb.match(routedRequest(tc.host, tc.uri))
		if r == nil || r.name != tc.want {
			got := "<nil>"
			if r != nil {
				got = r.name
			}
			t.Errorf("%s %s: pool %s, want %s", tc.host, tc.uri, got, tc.want)
		}
	}

	// Without a default, what no route takes has no route.
	tb = testTable(t, routes[:5], "", "web", "api", "api2", "static", "eu", "admin")
	if r := tb.match(routedRequest("other.org", "/x")); r != nil {
		t.Errorf("no route should match, got %s", r.name)
	}
	// The default pool takes it when no route is the default one.
	tb = testTable(t, routes[:5], "web", "web", "api", "api2", "static", "eu", "admin")
	if r := tb.match(routedRequest("other.org", "/x")); r == nil || r.name != "web" {
		t.Errorf("default pool not used: %v", r)
	}
}

// TestSinglePoolNeedsNoLookup: one pool without routes (or with only a
// default route to it) is the fast path.
func TestSinglePoolNeedsNoLookup(t *testing.T) {
	for _, routes := range [][]Route{nil, {{Pool: "web"}}} {
		tb := testTable(t, routes, "web", "web")
		if tb.single == nil || tb.single.name != "web" {
			t.Errorf("routes %v: no single fast path", routes)
		}
	}
	tb := testTable(t, []Route{{PathPrefix: "/api/", Pool: "web"}}, "web", "web")
	if tb.single != nil {
		t.Error("a prefix route took the fast path")
	}
}

func TestRouteTableRejects(t *testing.T) {
	for _, tc := range []struct {
		routes []Route
		want   string
	}{
		{[]Route{{Pool: "nope"}}, `unknown pool "nope"`},
		{[]Route{{Host: "a.example.com", Pool: "web"}, {Host: "A.example.com.", Pool: "api"}}, "the same host and path prefix"},
		{[]Route{{PathPrefix: "api", Pool: "web"}}, `invalid path prefix "api": must start with /`},
		{[]Route{{Host: "a.*.com", Pool: "web"}}, "a wildcard is only allowed as the first label"},
		{[]Route{{Host: "a.com:80", Pool: "web"}}, "without port or scheme"},
		{[]Route{{Host: "http://a.com", Pool: "web"}}, "without port or scheme"},
		{[]Route{{Host: "*..", Pool: "web"}}, "empty name"},
		{[]Route{{PathPrefix: "/a?b", Pool: "web"}}, "without query"},
		{[]Route{{Host: "a.com"}}, "no pool"},
	} {
		_, err := newTable([]*route{{name: "web"}, {name: "api"}}, tc.routes, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.routes, err, tc.want)
		}
	}
}

// TestRouteLookupAllocations keeps matching off the allocator.
func TestRouteLookupAllocations(t *testing.T) {
	tb := testTable(t, []Route{
		{Host: "api.example.com", PathPrefix: "/v2/", Pool: "api"},
		{Host: "*.example.com", Pool: "api"},
		{PathPrefix: "/static/", Pool: "web"},
		{Pool: "web"},
	}, "", "web", "api")
	reqs := []*fasthttp.Request{
		routedRequest("api.example.com:443", "/v2/x"),
		routedRequest("a.b.example.com", "/x"),
		routedRequest("other.org", "/static/y"),
		routedRequest("other.org", "/"),
	}
	if n := testing.AllocsPerRun(1000, func() {
		for _, r := range reqs {
			if tb.match(r) == nil {
				t.Fatal("no route")
			}
		}
	}); n != 0 {
		t.Errorf("%.1f allocations per lookup, want 0", n)
	}
}

// BenchmarkRouteMatch is the lookup alone: the fast path of a single pool,
// and a table with hosts, wildcards and prefixes.
func BenchmarkRouteMatch(b *testing.B) {
	single, _ := newTable([]*route{{name: "web"}}, nil, "web")
	var rs []*route
	var routes []Route
	for _, p := range []string{"web", "api", "static", "admin"} {
		rs = append(rs, &route{name: p})
	}
	routes = append(routes,
		Route{Host: "api.example.com", Pool: "api"},
		Route{Host: "api.example.com", PathPrefix: "/v2/", Pool: "api"},
		Route{Host: "*.example.com", PathPrefix: "/static/", Pool: "static"},
		Route{PathPrefix: "/admin/", Pool: "admin"},
		Route{PathPrefix: "/api/", Pool: "api"},
		Route{Pool: "web"},
	)
	routed, err := newTable(rs, routes, "")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		tb   *table
		req  *fasthttp.Request
	}{
		{"single", single, routedRequest("www.example.com", "/static/app.js")},
		{"exact-host", routed, routedRequest("api.example.com", "/v2/users")},
		{"wildcard", routed, routedRequest("cdn.www.example.com", "/static/app.js")},
		{"prefix", routed, routedRequest("other.org", "/admin/x")},
		{"default", routed, routedRequest("other.org", "/index.html")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.tb.match(bc.req) == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}
