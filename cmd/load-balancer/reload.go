package main

import (
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/admin"
)

// reloader applies the configuration again: the command line as it was
// given, with the -config file as it is now. SIGHUP and POST /api/reload
// call it. What can change without a restart changes (pools, backends,
// policies, routes, health checks); anything else that changed is named in
// a warning and waits for a restart.
type reloader struct {
	args      []string
	p         *proxy.Proxy
	log       *slog.Logger
	accessLog *logFile // nil without one

	mu      sync.Mutex
	current *options
	stats   admin.ReloadStats
}

// reloadable are the flags whose change a reload applies.
var reloadable = map[string]bool{
	"backends": true, "policy": true, "hash-key": true, "sticky-cookie": true,
	"health-path": true, "health-interval": true, "health-timeout": true, "health-rise": true, "health-fall": true,
	"check-config": true,
	"access-log":   true, // a new path is opened; turning it on or off waits for a restart
}

// Reload implements admin.Reloader.
func (r *reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	// The names listened on now are not looked up again: see listenHosts.
	o, err := parseFlagsResolved(r.args, io.Discard, r.current.listenNames)
	var newLog *os.File
	if err == nil {
		// Opened before anything is applied: a file that cannot be
		// opened refuses the reload, as it stops a start.
		newLog, err = r.openAccessLog(o)
	}
	if err == nil {
		o.proxy.Logger = r.log
		if err = r.p.Reload(o.proxy); err != nil && newLog != nil {
			newLog.Close()
		}
	}
	if err == nil && newLog != nil {
		r.accessLog.use(o.accessLog, newLog) //nolint:errcheck // the old file's close: nothing is lost
		r.log.Info("configuration reload: access log now written to " + o.accessLog)
	}
	if err != nil {
		r.stats.Failures++
		r.stats.LastFailure = time.Now()
		r.stats.LastError = err.Error()
		r.log.Error("configuration reload refused: the running configuration stays", "error", err.Error())
		return err
	}
	r.warnStatic(o)
	r.current = o
	r.stats.Successes++
	r.stats.LastSuccess = time.Now()
	r.stats.LastError = ""
	r.log.Info("configuration reload applied", "file", o.configPath, "took", time.Since(start).Round(time.Microsecond).String())
	return nil
}

// openAccessLog opens the file the reload names for the access log when it
// is another than the one written now, and returns nil when there is none
// to move to. Turning the log on or off, or to or from stdout, waits for a
// restart: o then keeps the running one. A file that cannot be opened is an
// error that names it.
func (r *reloader) openAccessLog(o *options) (*os.File, error) {
	old := o.accessLog
	if r.current != nil {
		old = r.current.accessLog
	}
	switch {
	case o.accessLog == old:
		return nil, nil
	case r.accessLog == nil || o.accessLog == "" || old == "-" || o.accessLog == "-":
		r.log.Warn("configuration reload: access-log changed; it takes effect after a restart",
			"running", old, "configured", o.accessLog)
		o.accessLog = old
		return nil, nil
	}
	f, err := openAppend(o.accessLog)
	if err != nil {
		return nil, invalid("%s: invalid access-log: %v", o.configPath, err)
	}
	return f, nil
}

// ReloadStats implements admin.Reloader.
func (r *reloader) ReloadStats() admin.ReloadStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// warnStatic names what changed that only a restart applies.
func (r *reloader) warnStatic(o *options) {
	old := r.current
	for _, name := range slices.Sorted(maps.Keys(o.settings)) {
		if reloadable[name] || o.settings[name] == old.settings[name] {
			continue
		}
		running, configured := old.settings[name], o.settings[name]
		switch name {
		case "admin-token", "alert-webhook": // secrets, or URLs whose path often is one
			running, configured = "(hidden)", "(hidden)"
		case "upstream-proxy":
			running, configured = redacted(running), redacted(configured)
		}
		r.log.Warn("configuration reload: "+name+" changed; it takes effect after a restart",
			"running", running, "configured", configured)
	}
	if !slices.Equal(o.listeners, old.listeners) {
		r.log.Warn("configuration reload: listeners changed; they take effect after a restart")
	}
}
