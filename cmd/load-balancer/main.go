// Command load-balancer is an HTTP/1.1 and HTTP/2 load balancer:
//
//	load-balancer -backends=http://localhost:8081,http://localhost:8082 -port=3030
//
//	load-balancer -config=lb.yaml
//
// It spreads requests over the backends, retries failed attempts on other
// backends, checks backend health in the background and stops gracefully on
// SIGINT or SIGTERM (a second one ends it at once). With -tls-cert and
// -tls-key it serves HTTPS too. A -config file (YAML) says what the flags
// say, and several listeners, pools and routes. SIGHUP reloads the file and
// the certificates. Run it with -h for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/admin"
	"github.com/rishichirchi/Load-Balancee/proxy/alert"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "load-balancer: %v\n", err)
		}
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "load-balancer", buildVersion())
		return 0
	}
	if o.checkConfig {
		// A file was checked whole as it was read; flags alone are
		// checked here, certificate files read as at start.
		if err := proxy.Check(o.proxy); err != nil {
			fmt.Fprintf(stderr, "load-balancer: %v\n", err)
			return 2
		}
		if o.accessLog != "" && o.accessLog != "-" {
			// As a start would: it creates the file, as nginx -t does.
			f, err := openAppend(o.accessLog)
			if err != nil {
				fmt.Fprintf(stderr, "load-balancer: %v\n", err)
				return 2
			}
			f.Close()
		}
		fmt.Fprintln(stdout, "load-balancer: configuration OK:", summary(o))
		return 0
	}

	log := newLogger(stderr, o.logLevel, o.logFormat)
	slog.SetDefault(log)
	o.proxy.Logger = log
	for _, w := range o.warnings {
		log.Warn(w)
	}

	var alerts *alert.Notifier
	if len(o.alertURLs) > 0 {
		alerts, err = alert.New(alert.Config{
			URLs:      o.alertURLs,
			Format:    o.alertFormat,
			UserAgent: "load-balancer/" + buildVersion(),
			Logger:    log,
		})
		if err != nil {
			fmt.Fprintf(stderr, "load-balancer: %v\n", err)
			return 2
		}
		o.proxy.OnStateChange = alerts.StateChanged
	}

	var accessLog *logFile
	if o.accessLog != "" {
		if accessLog, err = openLogFile(o.accessLog, stdout); err != nil {
			fmt.Fprintf(stderr, "load-balancer: invalid -access-log: %v\n", err)
			return 2
		}
		defer accessLog.close()
		o.proxy.AccessLog = accessLog
	}

	p, err := proxy.New(o.proxy)
	if err != nil {
		fmt.Fprintf(stderr, "load-balancer: %v\n", err)
		return 2
	}
	for _, pl := range p.Pools() {
		for _, b := range pl.Backends() {
			var attrs []any
			if pl.Name() != proxy.DefaultPool {
				attrs = append(attrs, "pool", pl.Name())
			}
			if opts := b.Options().String(); opts != "" {
				attrs = append(attrs, "options", opts)
			}
			log.Info("Configured server: "+b.URL(), attrs...)
		}
	}

	lns := make([]net.Listener, 0, len(o.listeners))
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, l := range o.listeners {
		ln, err := proxy.Listen(l.addr)
		if err != nil {
			log.Error("cannot listen", "addr", l.addr, "error", err)
			closeAll()
			p.Close()
			return 1
		}
		lns = append(lns, ln)
	}
	var adminLn net.Listener
	if o.adminAddr != "" {
		if adminLn, err = net.Listen("tcp", o.adminAddr); err != nil {
			log.Error("cannot listen for the admin interface", "addr", o.adminAddr, "error", err)
			closeAll()
			p.Close()
			return 1
		}
	}
	// Room for two: the first shuts down gracefully, a second during that
	// ends the process at once (forceExit).
	term := make(chan os.Signal, 2)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(term)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	served := make(chan error, len(lns)+1)
	for i, l := range o.listeners {
		ln := lns[i]
		if l.tls {
			go func() { served <- p.ServeTLS(ln) }()
			if o.proxy.HTTP2.Disable {
				log.Info("Load balancer serving HTTPS at " + l.addr)
			} else {
				log.Info("Load balancer serving HTTPS at "+l.addr, "alpn", "h2,http/1.1")
			}
			continue
		}
		go func() { served <- p.Serve(ln) }()
		var attrs []any
		if len(o.proxy.Backends) > 0 {
			attrs = append(attrs, "policy", o.policy)
		}
		if o.proxy.StickyCookie != "" && len(o.proxy.Backends) > 0 {
			attrs = append(attrs, "sticky_cookie", o.proxy.StickyCookie)
		}
		if n := len(p.Pools()); n > 1 {
			attrs = append(attrs, "pools", n, "routes", len(o.proxy.Routes))
		}
		log.Info("Load balancer started at "+l.addr, attrs...)
		if o.proxy.HTTP2.H2C {
			log.Info("HTTP/2 with prior knowledge (h2c) served at " + l.addr)
		}
	}
	var rl *reloader
	var adminReloader admin.Reloader
	if o.configPath != "" {
		rl = &reloader{args: args, p: p, log: log, current: o, accessLog: accessLog}
		adminReloader = rl
	}
	var adm *admin.Server
	if adminLn != nil {
		// parseFlags has refused a token no request can carry already,
		// naming the flag or the file's line; the library's refusal is
		// the same.
		adm, err = admin.New(p, admin.Config{
			Token:    o.adminToken,
			Version:  buildVersion(),
			Logger:   log,
			Control:  p,
			Reloader: adminReloader,
		})
		if err != nil {
			fmt.Fprintf(stderr, "load-balancer: %v\n", err)
			adminLn.Close()
			p.Shutdown(context.Background()) //nolint:errcheck // nothing in flight yet
			return 2
		}
		go func() { served <- adm.Serve(adminLn) }()
		log.Info("Admin interface at http://"+adminLn.Addr().String()+"/", "metrics", "/metrics", "api", "/api/status")
		if o.adminToken == "" && !isLoopback(adminLn.Addr()) {
			log.Warn("the admin interface listens beyond loopback without -admin-token or -admin-token-file: anyone who can reach " +
				adminLn.Addr().String() + " sees the metrics and backends, and can change them")
		}
	}

	code := 0
	for running := true; running; {
		select {
		case err := <-served:
			// Only a failure comes here: Serve returns ErrServerClosed
			// once Shutdown, below, has begun, and by then nothing reads
			// served, so a normal stop logs no error and exits 0.
			log.Error("server stopped", "error", err)
			code, running = 1, false
		case <-hup:
			// As nginx and HAProxy do: SIGHUP reloads what can change
			// without a restart: the configuration file, the
			// certificates.
			if rl != nil {
				log.Info("SIGHUP: reloading " + o.configPath)
				rl.Reload() //nolint:errcheck // logged by the reloader
			}
			if o.tlsAddr == "" {
				if rl == nil {
					log.Info("SIGHUP: no configuration file and no TLS certificates to reload")
				}
				continue
			}
			log.Info("SIGHUP: reloading TLS certificates")
			p.ReloadCertificates() //nolint:errcheck // logged by the proxy
		case <-usr1:
			// As nginx does: logrotate has moved the access log away.
			if accessLog == nil {
				log.Info("SIGUSR1: no access log file to reopen")
				continue
			}
			if err := accessLog.reopen(""); err != nil {
				log.Error("SIGUSR1: cannot reopen the access log: lines still go to the file open before", "error", err.Error())
				continue
			}
			log.Info("SIGUSR1: access log reopened", "file", accessLog.name())
		case <-term:
			running = false
		}
	}
	shutdownDone := make(chan struct{})
	defer close(shutdownDone)
	go forceExit(term, shutdownDone, log)
	log.Info("shutting down: waiting for in-flight requests", "timeout", o.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out; closing remaining connections", "error", err)
	}
	if adm != nil {
		adm.Shutdown(sctx) //nolint:errcheck // the deadline is shared; nothing is left to do
	}
	if alerts != nil {
		// Alerts queued by the last state changes still go out, within the
		// shutdown timeout.
		if err := alerts.Close(sctx); err != nil {
			log.Warn("alerts still pending at shutdown were dropped", "error", err)
		}
	}
	log.Info("stopped")
	return code
}

// forceExit ends the process at once, with status 1, on a second SIGINT or
// SIGTERM during the graceful shutdown, as Caddy does: an operator pressing
// Ctrl-C again, or a supervisor that has waited long enough, is not kept
// waiting for requests in flight (a process run as PID 1, as in a
// container, would otherwise ignore the signal). Lines the access log has
// not written out yet are lost. It returns once done is closed.
func forceExit(term <-chan os.Signal, done <-chan struct{}, log *slog.Logger) {
	select {
	case sig := <-term:
		log.Error("second signal during shutdown: exiting at once, without waiting for requests in flight", "signal", sig.String())
		os.Exit(1)
	case <-done:
	}
}

// summary describes a valid configuration in a line, for -check-config.
func summary(o *options) string {
	pools, backends, discovered := 0, len(o.proxy.Backends), 0
	if backends > 0 {
		pools++
	}
	for _, pc := range o.proxy.Pools {
		pools++
		backends += len(pc.Backends)
		discovered += len(pc.Discovery)
	}
	s := fmt.Sprintf("%d pools, %d static backends, %d discovery sources, %d routes, %d listeners",
		pools, backends, discovered, len(o.proxy.Routes), len(o.listeners))
	if o.configPath != "" {
		s = o.configPath + ": " + s
	}
	return s
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	a, ok := addr.(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by parseFlags
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
