// Command load-balancer is an HTTP/1.1 and HTTP/2 load balancer:
//
//	load-balancer -backends=http://localhost:8081,http://localhost:8082 -port=3030
//
// It spreads requests over the backends, retries failed attempts on other
// backends, checks backend health in the background and stops gracefully on
// SIGINT or SIGTERM. With -tls-cert and -tls-key it serves HTTPS too, and
// reloads the certificates on SIGHUP. Run it with -h for every flag.
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

	p, err := proxy.New(o.proxy)
	if err != nil {
		fmt.Fprintf(stderr, "load-balancer: %v\n", err)
		return 2
	}
	for _, b := range p.Pool().Backends() {
		if opts := b.Options().String(); opts != "" {
			log.Info("Configured server: "+b.URL(), "options", opts)
		} else {
			log.Info("Configured server: " + b.URL())
		}
	}

	ln, err := proxy.Listen(o.addr)
	if err != nil {
		log.Error("cannot listen", "addr", o.addr, "error", err)
		p.Close()
		return 1
	}
	var tlsLn net.Listener
	if o.tlsAddr != "" {
		if tlsLn, err = proxy.Listen(o.tlsAddr); err != nil {
			log.Error("cannot listen", "addr", o.tlsAddr, "error", err)
			ln.Close()
			p.Close()
			return 1
		}
	}
	var adminLn net.Listener
	if o.adminAddr != "" {
		if adminLn, err = net.Listen("tcp", o.adminAddr); err != nil {
			log.Error("cannot listen for the admin interface", "addr", o.adminAddr, "error", err)
			ln.Close()
			if tlsLn != nil {
				tlsLn.Close()
			}
			p.Close()
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	served := make(chan error, 3)
	go func() { served <- p.Serve(ln) }()
	if o.proxy.StickyCookie != "" {
		log.Info("Load balancer started at "+o.addr, "policy", o.policy, "sticky_cookie", o.proxy.StickyCookie)
	} else {
		log.Info("Load balancer started at "+o.addr, "policy", o.policy)
	}
	if o.proxy.HTTP2.H2C {
		log.Info("HTTP/2 with prior knowledge (h2c) served at " + o.addr)
	}
	if tlsLn != nil {
		go func() { served <- p.ServeTLS(tlsLn) }()
		if o.proxy.HTTP2.Disable {
			log.Info("Load balancer serving HTTPS at " + o.tlsAddr)
		} else {
			log.Info("Load balancer serving HTTPS at "+o.tlsAddr, "alpn", "h2,http/1.1")
		}
	}
	var adm *admin.Server
	if adminLn != nil {
		adm = admin.New(p.Pool(), admin.Config{Token: o.adminToken, Version: buildVersion(), Logger: log})
		go func() { served <- adm.Serve(adminLn) }()
		log.Info("Admin interface at http://"+adminLn.Addr().String()+"/", "metrics", "/metrics", "api", "/api/status")
		if o.adminToken == "" && !isLoopback(adminLn.Addr()) {
			log.Warn("the admin interface listens beyond loopback without -admin-token: anyone who can reach " +
				adminLn.Addr().String() + " sees the metrics and backends")
		}
	}

	code := 0
	for running := true; running; {
		select {
		case err := <-served:
			log.Error("server stopped", "error", err)
			code, running = 1, false
		case <-hup:
			// As nginx and HAProxy do: SIGHUP reloads what can change
			// without a restart, here the certificates.
			if o.tlsAddr == "" {
				log.Info("SIGHUP: no TLS certificates to reload")
				continue
			}
			log.Info("SIGHUP: reloading TLS certificates")
			p.ReloadCertificates() //nolint:errcheck // logged by the proxy
		case <-ctx.Done():
			running = false
		}
	}
	stop() // a second signal now kills the process the default way
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
