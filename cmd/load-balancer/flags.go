package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/admin"
	"github.com/rishichirchi/Load-Balancee/proxy/alert"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// options is everything the command line (and the -config file) says.
type options struct {
	proxy           proxy.Config
	policy          string   // -policy, for the start-up log
	policyName      string   // -policy as given, for pools that do not say theirs
	hashKey         pool.Key // -hash-key, likewise
	addr            string   // host:port to listen on
	tlsAddr         string   // host:port to serve HTTPS on; "" without TLS
	listeners       []listenerSpec
	configPath      string // -config; "" without a file
	checkConfig     bool
	settings        map[string]string // every flag's value, to tell what a reload changes
	listenNames     map[string]bool   // the names listened on (-host, -admin-addr, listeners), each resolved: a reload looks up only others
	warnings        []string
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
	accessLog       string // -access-log: a file, "-" for stdout, "" for none
	version         bool

	adminAddr   string // host:port of the admin interface; empty disables it
	adminToken  string
	alertURLs   []string
	alertFormat alert.Format
}

// usageError is a bad command line: the message names the flag and value,
// and the program exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseFlags reads args into options and validates every value. With
// -config, the file's keys set the flags the command line does not give.
// The help text (-h) goes to out; every error is returned, flag syntax
// errors included.
func parseFlags(args []string, out io.Writer) (*options, error) {
	return parseFlagsResolved(args, out, nil)
}

// parseFlagsResolved is parseFlags for a configuration that is to replace
// the one running (a reload): resolved are the names to listen on that the
// running one resolved (its listenNames), which are not looked up again.
func parseFlagsResolved(args []string, out io.Writer, resolved map[string]bool) (_ *options, err error) {
	fs := flag.NewFlagSet("load-balancer", flag.ContinueOnError)
	// Parse would print its errors and the help text after each; they are
	// returned instead, printed as any bad value is, and the help is for -h.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	usage := func() {
		fs.SetOutput(out)
		fmt.Fprintf(out, "Usage: load-balancer -backends='URL [OPTIONS][,URL [OPTIONS]...]' [flags]\n"+
			"       load-balancer -config=FILE [flags]\n\n"+
			"An HTTP/1.1 and HTTP/2 load balancer: spreads requests over the backends by\n"+
			"-policy, retries failed attempts on other backends and checks backend health.\n"+
			"Backend options, after the URL: weight=N (1-1000), max_conns=N, backup, down,\n"+
			"proto=h2 (https, HTTP/2 over TLS) or proto=h2c (http, HTTP/2 without TLS),\n"+
			"health=grpc or health=grpc:SERVICE (gRPC health checks, HTTP/2 backends).\n"+
			"A -config file (YAML) sets any flag by its name, and listeners, pools and routes;\n"+
			"SIGHUP or POST /api/reload on the admin interface reloads it.\n\nFlags:\n")
		fs.PrintDefaults()
	}

	var (
		o            options
		backends     = fs.String("backends", "", "comma-separated backend URLs, each optionally followed by options: 'http://localhost:8081 weight=3,http://localhost:8082 max_conns=100,http://localhost:8083 backup' (required)")
		policy       = fs.String("policy", pool.PolicyRoundRobin, "balancing policy: round-robin, least-conn, p2c, random or hash (all weighted)")
		hashKey      = fs.String("hash-key", "ip", "what -policy=hash hashes: ip, uri, header:NAME or cookie:NAME")
		stickyCookie = fs.String("sticky-cookie", "", "pin each client to a backend with a cookie of this name (any policy; empty: off)")
		port         = fs.Int("port", 3030, "port to listen on")
		host         = fs.String("host", "", "address to listen on: an IP address, or a name that resolves (default all interfaces)")
		retries      = fs.Int("retries", proxy.DefaultRetries, fmt.Sprintf("extra attempts on other backends after a failure (0-%d)", pool.MaxTries-1))
		maxHeader    = sizeFlag(proxy.DefaultMaxHeaderSize)
		maxBody      = sizeFlag(proxy.DefaultMaxBodySize)
		maxConns     = fs.Int("max-conns-per-backend", proxy.DefaultMaxConnsPerBackend, "most connections to each backend")
		healthRise   = fs.Int("health-rise", 2, "consecutive successful checks that bring a backend back")
		healthFall   = fs.Int("health-fall", 2, "consecutive failed checks that take a backend down")
		healthPath   = fs.String("health-path", proxy.DefaultHealthPath, "path requested by health checks; 2xx or 3xx is healthy")
		tryTimeout   = fs.Duration("try-timeout", proxy.DefaultTryTimeout, "time an attempt waits for the response header before an idempotent request moves to another backend (0 disables)")
		tunnelIdle   = fs.Duration("tunnel-idle-timeout", proxy.DefaultTunnelIdleTimeout, "how long a WebSocket or other upgraded connection may carry nothing either way, or a write into it stall, before it is closed (0 disables)")
		ejectAfter   = fs.Int("eject-after", proxy.DefaultEjectAfter, "consecutive connect failures or try timeouts that take a backend out of rotation (0 disables)")
		maxEjected   = fs.Int("max-ejected-percent", proxy.DefaultMaxEjectedPercent, "most backends, in percent, that live traffic may take out of rotation")
		hedgeAfter   = fs.Duration("hedge-after", 0, "send a GET or HEAD also to another backend when no response header came after this long (0 disables)")
		hedgeBudget  = fs.Int("hedge-budget", proxy.DefaultHedgeBudget, "most hedged requests, in percent of GET and HEAD requests (needs -hedge-after)")
		maxConnsAll  = fs.Int("max-conns", 0, "most client connections at once; more are refused with 503 (0: no limit)")
		maxConnsIP   = fs.Int("max-conns-per-ip", 0, "most connections from one client address; more are refused with 429 (0: no limit)")
		rateLimit    = fs.String("rate-limit", "", "requests per client address, such as 100/s or 6000/m; more get 429 (empty: no limit)")
		rateBurst    = fs.Int("rate-burst", 0, "requests a client may make at once under -rate-limit, which it needs (0: one second's worth)")
		trusted      = fs.String("trusted-proxies", "", "comma-separated CIDR ranges of proxies in front whose X-Forwarded-For is believed")
		durationArgs = []struct {
			name  string
			dst   *time.Duration
			def   time.Duration
			usage string
		}{
			{"health-interval", &o.proxy.Health.Interval, 5 * time.Second, "time between health check rounds"},
			{"health-timeout", &o.proxy.Health.Timeout, 2 * time.Second, "time allowed for one health check, at most -health-interval; not given, -health-interval when that is shorter"},
			{"dial-timeout", &o.proxy.DialTimeout, proxy.DefaultDialTimeout, "time allowed to connect to a backend"},
			{"backend-timeout", &o.proxy.BackendTimeout, proxy.DefaultBackendTimeout, "time allowed for a backend's whole response; slower gets 504"},
			{"backend-idle-timeout", &o.proxy.BackendIdleTimeout, proxy.DefaultBackendIdleTimeout, "how long idle backend connections are kept (keep below the backends' keep-alive timeout)"},
			{"client-idle-timeout", &o.proxy.ClientIdleTimeout, proxy.DefaultClientIdleTimeout, "how long an idle client connection is kept, and how long writing a response to it may stall"},
			{"client-header-timeout", &o.proxy.ClientHeaderTimeout, proxy.DefaultClientHeaderTimeout, "time a client gets to send a request header, until the first byte of its body (slowloris defence)"},
			{"client-body-timeout", &o.proxy.ClientBodyTimeout, proxy.DefaultClientBodyTimeout, "longest pause allowed while a client sends a request body"},
			{"shutdown-timeout", &o.shutdownTimeout, 10 * time.Second, "time in-flight requests get to finish on SIGINT or SIGTERM"},
		}
	)
	for _, d := range durationArgs {
		fs.DurationVar(d.dst, d.name, d.def, d.usage)
	}
	var flushEvery flushFlag
	fs.Var(&flushEvery, "flush-interval", "how a streamed response of known length reaches the client: -1 each piece as it arrives (-1 without a unit; other negative values are refused), 0 as buffers fill, a `duration` such as 100ms no later than that after it arrived (chunked and event streams are always flushed at once)")
	splice := fs.Bool("splice", false, "move response bodies of known length with 16 KiB or more to come from the backend's socket to the client's with splice(2), without copying them through the balancer (plain TCP on both sides); such a body streams, and is not retried")
	fs.Var(&maxHeader, "max-header-size", "largest request header block; larger gets 431 (units: B, KiB, MiB)")
	fs.Var(&maxBody, "max-body-size", "largest request body; larger gets 413; 0 means no limit (units: B, KiB, MiB, GiB)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error (debug logs every request)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.adminAddr, "admin-addr", admin.DefaultAddr, "address of the admin interface (metrics, status API, dashboard); empty disables it")
	fs.StringVar(&o.adminToken, "admin-token", "", "token every admin request must carry as Authorization: Bearer <token> (default none)")
	tokenFile := fs.String("admin-token-file", "", "file whose first line is the admin token, which then stays out of ps and shell history (instead of -admin-token)")
	var webhooks listFlag
	fs.Var(&webhooks, "alert-webhook", "URL to POST an alert to on every backend state change (repeatable, or a comma-separated list)")
	alertFormat := fs.String("alert-format", "json", "alert body: json, or slack for {\"text\": ...}")
	var tf tlsFlags
	tf.register(fs)
	fs.StringVar(&o.configPath, "config", "", "YAML configuration file: any flag by its name, plus listeners, pools and routes; flags given here override it")
	fs.BoolVar(&o.checkConfig, "check-config", false, "check the configuration (flags and -config) and exit: 0 when valid, 2 with the error")
	var hf h2Flags
	hf.register(fs)
	var af accessLogFlags
	af.register(fs)

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, err
		}
		return nil, parseError(fs, err)
	}
	if fs.NArg() > 0 {
		return nil, invalid("unexpected argument %q: flags take the form -name=value", fs.Arg(0))
	}
	if o.version {
		return &o, nil
	}

	hosts := &listenHosts{known: resolved, names: map[string]bool{}}
	var cf *configFile
	var fileKeys map[string]bool
	if o.configPath != "" {
		ff, ferr := applyFile(fs, o.configPath, hosts)
		if ferr != nil {
			return nil, ferr
		}
		cf, fileKeys = ff.file, ff.keys
		defer func() {
			if err != nil {
				err = cf.locate(err, fileKeys)
			}
		}()
	}

	// The flags given, by the command line or the file.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch {
	case cf != nil && len(cf.pools) > 0 && strings.TrimSpace(*backends) == "":
		// The file's pools are the backends.
	case cf != nil && strings.TrimSpace(*backends) == "":
		return nil, cf.errorf(0, "backends", "no backends: give backends, or pools")
	default:
		list, err := parseBackends(*backends)
		if err != nil {
			return nil, err
		}
		o.proxy.Backends = list
	}

	if err := parsePolicy(fs, &o, *policy, *hashKey, cf != nil && len(cf.pools) > 0); err != nil {
		return nil, err
	}
	if *stickyCookie != "" {
		if err := pool.CheckToken(*stickyCookie); err != nil {
			return nil, invalid("invalid -sticky-cookie %q: %v", *stickyCookie, err)
		}
		o.proxy.StickyCookie = *stickyCookie
	}

	if *port < 1 || *port > 65535 {
		return nil, invalid("invalid -port %d: want 1-65535", *port)
	}
	listenHost, err := hosts.check(*host)
	if err != nil {
		return nil, invalid("invalid -host %q: %v", *host, err)
	}
	o.addr = listenAddr(listenHost, *port)

	for _, d := range durationArgs {
		if *d.dst <= 0 {
			return nil, invalid("invalid -%s %v: must be positive", d.name, *d.dst)
		}
	}
	// A timeout not given follows a shorter interval, as HAProxy takes the
	// interval for a check timeout not set: only one given can disagree.
	if !set["health-timeout"] {
		o.proxy.Health.Timeout = min(o.proxy.Health.Timeout, o.proxy.Health.Interval)
	}
	if o.proxy.Health.Timeout > o.proxy.Health.Interval {
		return nil, invalid("invalid -health-timeout %v: longer than -health-interval %v", o.proxy.Health.Timeout, o.proxy.Health.Interval)
	}

	// Durations that 0 disables: the Config's zero is its default, its
	// negative is off.
	for _, d := range []struct {
		name string
		v    time.Duration
		dst  *time.Duration
	}{{"try-timeout", *tryTimeout, &o.proxy.TryTimeout}, {"tunnel-idle-timeout", *tunnelIdle, &o.proxy.TunnelIdleTimeout}} {
		if d.v < 0 {
			return nil, invalid("invalid -%s %v: must not be negative (0 disables)", d.name, d.v)
		}
		*d.dst = d.v
		if d.v == 0 {
			*d.dst = -1
		}
	}
	switch {
	case *ejectAfter < 0:
		return nil, invalid("invalid -eject-after %d: must not be negative (0 disables)", *ejectAfter)
	case *ejectAfter == 0:
		o.proxy.EjectAfter = -1
	default:
		o.proxy.EjectAfter = *ejectAfter
	}
	if *maxEjected < 0 || *maxEjected > 100 {
		return nil, invalid("invalid -max-ejected-percent %d: want 0-100", *maxEjected)
	}
	o.proxy.MaxEjectedPercent = *maxEjected
	if *maxEjected == 0 {
		o.proxy.EjectAfter = -1 // nothing may be ejected
	}
	if *hedgeAfter < 0 {
		return nil, invalid("invalid -hedge-after %v: must not be negative (0 disables)", *hedgeAfter)
	}
	if *hedgeBudget < 1 || *hedgeBudget > 100 {
		return nil, invalid("invalid -hedge-budget %d: want 1-100", *hedgeBudget)
	}
	if set["hedge-budget"] && *hedgeAfter == 0 {
		return nil, invalid("invalid -hedge-budget %d: needs -hedge-after (hedging is off without it)", *hedgeBudget)
	}
	o.proxy.HedgeAfter = *hedgeAfter
	if flushEvery < 0 && flushEvery != -1 {
		return nil, invalid("invalid -flush-interval %v: want -1 (each piece at once), 0 or a positive duration", time.Duration(flushEvery))
	}
	o.proxy.FlushInterval = time.Duration(flushEvery)
	o.proxy.Splice = *splice
	o.proxy.HedgeBudget = *hedgeBudget

	for _, n := range []struct {
		name string
		v    int
	}{{"max-conns", *maxConnsAll}, {"max-conns-per-ip", *maxConnsIP}} {
		if n.v < 0 {
			return nil, invalid("invalid -%s %d: must not be negative (0: no limit)", n.name, n.v)
		}
	}
	switch {
	case *rateBurst < 0:
		return nil, invalid("invalid -rate-burst %d: must not be negative (0: one second's worth)", *rateBurst)
	case set["rate-burst"] && *rateLimit == "":
		return nil, invalid("invalid -rate-burst %d: needs -rate-limit (no limit without it)", *rateBurst)
	}
	o.proxy.MaxConns, o.proxy.MaxConnsPerIP, o.proxy.RateBurst = *maxConnsAll, *maxConnsIP, *rateBurst
	if *rateLimit != "" {
		r, err := parseRate(*rateLimit)
		if err != nil {
			return nil, invalid("invalid -rate-limit %q: %v", *rateLimit, err)
		}
		o.proxy.RateLimit = r
	}
	if *trusted != "" {
		nets, err := proxy.ParseTrustedProxies(*trusted)
		if err != nil {
			return nil, invalid("invalid -trusted-proxies: %v", err)
		}
		o.proxy.TrustedProxies = nets
	}

	switch {
	case *retries < 0 || *retries >= pool.MaxTries:
		return nil, invalid("invalid -retries %d: want 0-%d", *retries, pool.MaxTries-1)
	case *retries == 0:
		o.proxy.Retries = -1 // proxy.Config reads zero as "default"
	default:
		o.proxy.Retries = *retries
	}
	for _, n := range []struct {
		name string
		v    int
		min  int
	}{
		{"max-conns-per-backend", *maxConns, 1},
		{"health-rise", *healthRise, 1},
		{"health-fall", *healthFall, 1},
	} {
		if n.v < n.min {
			return nil, invalid("invalid -%s %d: must be at least %d", n.name, n.v, n.min)
		}
	}
	o.proxy.MaxConnsPerBackend = *maxConns
	o.proxy.Health.Rise = *healthRise
	o.proxy.Health.Fall = *healthFall

	if maxHeader < 1024 {
		return nil, invalid("invalid -max-header-size %s: at least 1KiB", maxHeader)
	}
	o.proxy.MaxHeaderSize = int(maxHeader)
	o.proxy.MaxBodySize = int(maxBody)
	if maxBody == 0 {
		o.proxy.MaxBodySize = -1 // no limit; proxy.Config reads zero as "default"
	}

	if *healthPath == "" || (*healthPath)[0] != '/' {
		return nil, invalid("invalid -health-path %q: must start with /", *healthPath)
	}
	o.proxy.Health.Path = *healthPath

	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, invalid("invalid -log-level %q: want debug, info, warn or error", o.logLevel)
	}
	switch o.logFormat {
	case "text", "json":
	default:
		return nil, invalid("invalid -log-format %q: want text or json", o.logFormat)
	}

	if err := tf.apply(&o, set, listenHost, *port); err != nil {
		return nil, err
	}
	if err := hf.apply(&o); err != nil {
		return nil, err
	}
	if err := af.apply(&o); err != nil {
		return nil, err
	}

	if o.adminAddr, err = hosts.checkAdminAddr(o.adminAddr, o.addr, o.tlsAddr); err != nil {
		return nil, err
	}
	if o.adminToken != "" && strings.TrimSpace(o.adminToken) == "" {
		// As a token file's blank first line: a request's credentials lose
		// their white space, so this token would lock everyone out.
		return nil, invalid("invalid -admin-token %q: only white space, which no request can carry", o.adminToken)
	}
	if o.adminToken != strings.TrimSpace(o.adminToken) {
		// So would white space around it: a client sending the token as
		// meant would be refused. Unlike white space alone, the token is
		// a secret, and stays out of the message (and the terminal).
		return nil, invalid("invalid -admin-token: white space at its start or end, which a request's credentials lose: remove it (the token is not shown)")
	}
	if bad := admin.BadTokenByte(o.adminToken); bad != "" {
		return nil, invalid("invalid -admin-token: %s", bad)
	}
	if *tokenFile != "" {
		// The two flags are one setting: given in different places, the
		// command line's wins over the file's key, as for any flag.
		tokenKey, fileKey := fileKeys["admin-token"], fileKeys["admin-token-file"] // set by -config
		switch {
		case o.adminToken == "" || tokenKey && !fileKey:
			tok, err := readTokenFile(*tokenFile)
			if err != nil {
				return nil, err
			}
			o.adminToken = tok // the -admin-token flag's variable: a reload compares the token itself
		case fileKey && !tokenKey:
			// -admin-token on the command line: the file's admin-token-file is not read.
		default:
			return nil, invalid("invalid -admin-token-file %q: -admin-token is set too; give one of them", *tokenFile)
		}
	}
	for _, u := range webhooks {
		if _, err := alert.ParseURL(u); err != nil {
			var ue *alert.URLError
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, invalid("invalid -alert-webhook %q: %v", u, err)
		}
	}
	o.alertURLs = webhooks
	f, err := alert.ParseFormat(*alertFormat)
	if err != nil {
		return nil, invalid("invalid -alert-format %q: want json or slack", *alertFormat)
	}
	o.alertFormat = f

	o.listeners = []listenerSpec{{addr: o.addr}}
	if o.tlsAddr != "" {
		o.listeners = append(o.listeners, listenerSpec{addr: o.tlsAddr, tls: true})
	}
	if cf != nil {
		if err := applyConfig(&o, cf, set, fileKeys); err != nil {
			return nil, err
		}
	}
	o.settings = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { o.settings[f.Name] = f.Value.String() })
	o.listenNames = hosts.names
	return &o, nil
}

// flagError is the flag package's message for a value a flag refused.
var flagError = regexp.MustCompile(`^(invalid (?:boolean )?value ".*" for (?:flag )?-([a-z0-9-]+)): (.*)$`)

// parseError turns an error of fs.Parse into a usage error, saying what the
// flag wants where the flag package says only "parse error".
func parseError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if m := flagError.FindStringSubmatch(msg); m != nil {
		if f := fs.Lookup(m[2]); f != nil {
			return invalid("%s: %s", m[1], setError(f, errors.New(m[3])))
		}
	}
	if strings.HasPrefix(msg, "flag provided but not defined: ") {
		msg += " (-h lists the flags)"
	}
	return invalid("%s", msg)
}

// maxTokenFile bounds what readTokenFile reads: a token is a line, and a
// path given by mistake (a log, a device) must not be read whole.
const maxTokenFile = 4 << 10

// readTokenFile returns the admin token kept in the file at path: its first
// line, without the white space around it.
func readTokenFile(path string) (string, error) {
	b, err := readHead(path, maxTokenFile+1)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the message names the path already
		}
		return "", invalid("invalid -admin-token-file %q: %v", path, err)
	}
	// An editor's byte order mark is no part of the token.
	line, _, found := strings.Cut(strings.TrimPrefix(string(b), "\ufeff"), "\n")
	tok := strings.TrimSpace(line)
	switch {
	case !found && len(b) > maxTokenFile:
		return "", invalid("invalid -admin-token-file %q: its first line is longer than %d bytes", path, maxTokenFile)
	case tok == "":
		return "", invalid("invalid -admin-token-file %q: its first line is empty", path)
	}
	if bad := admin.BadTokenByte(tok); bad != "" {
		return "", invalid("invalid -admin-token-file %q: the token on its first line has %s", path, bad)
	}
	return tok, nil
}

// readHead returns the first n bytes of the regular file at path, or all
// of it when it is shorter. Anything else is refused before it is opened:
// opening a named pipe would wait for a writer (at a reload, for good).
func readHead(path string, n int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return nil, errors.New("is a directory")
	case !m.IsRegular():
		return nil, fmt.Errorf("is not a regular file (%s)", fileKind(m))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// fileKind names the kind of file that mode m is not regular for.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "an irregular file"
}

// listenAddr joins the -host and a port into an address to listen on.
func listenAddr(host string, port int) string {
	host = strings.TrimSpace(host)
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]" // IPv6 literal
	}
	return host + ":" + strconv.Itoa(port)
}

// resolveTimeout bounds the lookup of a name to listen on: a start, a
// -check-config or a reload waits no longer for a resolver that does not
// answer.
const resolveTimeout = 2 * time.Second

// lookupHost resolves a name to listen on: the system's resolver, which
// tests replace to answer without one.
var lookupHost = net.DefaultResolver.LookupHost

// listenHosts checks the hosts to listen on (-host, -admin-addr,
// listeners) and keeps the names among them, which resolved.
type listenHosts struct {
	// known are the names the running configuration resolved, which a
	// reload does not look up again: listeners change only at a restart,
	// and a resolver slow or failing now would hold the reload up to
	// resolveTimeout, or refuse it, for a listener that did not change.
	known map[string]bool
	names map[string]bool // the names checked, resolved or known
}

// check returns host as a listener binds it, or why no listener could bind
// it, so that -check-config refuses it too (and a start exits 2, not 1).
// It follows the rules of every host (hostname.Canonical: an IPv4 address
// in dotted decimal, no trailing dot on an IP address, no empty label),
// drops a name's trailing dot (hostname.ListenHost), and resolves a name
// within resolveTimeout unless it is known. Empty is every interface;
// brackets around IPv6 are allowed. The error does not name host, which
// the caller names with its setting.
func (lh *listenHosts) check(host string) (string, error) {
	h := strings.TrimSpace(host)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h, err := hostname.ListenHost(h)
	if err != nil || h == "" {
		return h, err
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return h, nil
	}
	if !lh.known[h] {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		defer cancel()
		if _, err := lookupHost(ctx, h); err != nil {
			var de *net.DNSError
			if errors.As(err, &de) {
				err = errors.New(de.Err)
			}
			return "", fmt.Errorf("not an IP address, and the name does not resolve (%v)", err)
		}
	}
	lh.names[h] = true
	return h, nil
}

// checkAdminAddr validates -admin-addr: empty, or host:port with a port of
// its own, never one that serves traffic (public, or tls when set). It
// returns the address to listen on, its host as check makes it.
func (lh *listenHosts) checkAdminAddr(addr, public, tls string) (string, error) {
	if addr == "" {
		return "", nil
	}
	given, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", invalid("invalid -admin-addr %q: want host:port, such as 127.0.0.1:9030", addr)
	}
	n, ok := hostname.Port(port)
	if !ok {
		return "", invalid("invalid -admin-addr %q: port %q: want 1-65535", addr, port)
	}
	port = strconv.Itoa(n) // 09030 is 9030, which -port may have too
	host, err := lh.check(given)
	if err != nil {
		return "", invalid("invalid -admin-addr %q: host %q: %v", addr, given, err)
	}
	for _, l := range []struct{ addr, flag string }{{public, "-port"}, {tls, "-tls-port"}} {
		if l.addr == "" {
			continue
		}
		h, p, _ := net.SplitHostPort(l.addr)
		if port == p && (host == h || host == "" || h == "") {
			return "", invalid("invalid -admin-addr %q: the admin interface needs a port of its own, not the one serving traffic (%s %s)", addr, l.flag, p)
		}
	}
	return net.JoinHostPort(host, port), nil
}

// listFlag collects a flag given several times, each a value or a
// comma-separated list of values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// parseBackends splits the -backends list and checks every entry.
func parseBackends(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, invalid("missing -backends: give at least one backend URL, such as -backends=http://localhost:8081")
	}
	var list []string
	seen := map[string]string{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		b, err := pool.NewBackend(entry)
		if err != nil {
			var pe *pool.ParseError
			if errors.As(err, &pe) {
				return nil, invalid("invalid -backends entry %q: %v", entry, pe.Err)
			}
			return nil, invalid("invalid -backends entry %q: %v", entry, err)
		}
		if first, dup := seen[b.URL()]; dup {
			return nil, invalid("invalid -backends entry %q: duplicate of %q", entry, first)
		}
		seen[b.URL()] = entry
		list = append(list, entry)
	}
	return list, nil
}

// parseRate reads a rate such as 100/s, 6000/m or a bare 100 (per second)
// and returns it per second.
func parseRate(v string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(v), "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive rate such as 100/s")
	}
	switch strings.TrimSpace(unit) {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("unknown unit %q: want /s, /m or /h", unit)
}

// parsePolicy checks -policy and -hash-key and sets the proxy's policy. A
// -hash-key given with another policy than hash is refused: it would be
// silently ignored (unless forPools: it is then the default of the pools,
// checked by applyConfig).
func parsePolicy(fs *flag.FlagSet, o *options, name, hashKey string, forPools bool) error {
	if !slices.Contains(pool.PolicyNames, name) {
		return invalid("invalid -policy %q: want round-robin, least-conn, p2c, random or hash", name)
	}
	keySet := false
	fs.Visit(func(f *flag.Flag) { keySet = keySet || f.Name == "hash-key" })
	key, err := pool.ParseKey(hashKey)
	if err != nil {
		return invalid("invalid -hash-key %q: %v", hashKey, err)
	}
	if keySet && name != pool.PolicyHash && !forPools {
		return invalid("invalid -hash-key %q: only used with -policy=hash (-policy is %q)", hashKey, name)
	}
	o.policyName, o.hashKey = name, key
	pol, err := pool.NewPolicy(name, key)
	if err != nil {
		return invalid("invalid -policy %q: %v", name, err)
	}
	o.proxy.Policy = pol
	o.policy = name
	if name == pool.PolicyHash {
		o.policy += " " + key.String()
	}
	return nil
}

// flushFlag is -flush-interval: a duration, or -1 without a unit for
// httputil.ReverseProxy.FlushInterval's "each piece at once" (-1s, a
// duration, is refused by parseFlags, as any negative one but -1).
type flushFlag time.Duration

func (f flushFlag) String() string {
	if f == -1 {
		return "-1"
	}
	return time.Duration(f).String()
}

func (f *flushFlag) Set(v string) error {
	if strings.TrimSpace(v) == "-1" {
		*f = -1
		return nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return errors.New("want -1, 0 or a duration such as 100ms")
	}
	*f = flushFlag(d)
	return nil
}

// sizeFlag is a byte count written with an optional binary unit: 4096,
// 16KiB, 16K, 16MiB, 1GiB. Units are powers of 1024, as nginx reads them.
type sizeFlag int64

func (s sizeFlag) String() string {
	n := int64(s)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("want a byte count such as 4096, 16KiB or 16MiB")
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number out of range")
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("unknown unit %q: want B, KiB, MiB or GiB", t[i:])
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size out of range")
	}
	return n * mult, nil
}
