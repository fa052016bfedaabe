package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// DefaultEtcdDialTimeout bounds connecting to etcd when Etcd.DialTimeout is
// zero.
const DefaultEtcdDialTimeout = 5 * time.Second

// Etcd finds backends in etcd v3: every key under Prefix holds one backend,
// its value an entry as Config.Backends writes them ("http://10.0.0.7:8080
// weight=2"); the key is any name the instance registers under, such as
// /lb/api/instance-7. It reads them all, then watches the prefix, so a put or
// a delete reaches the pool at once. Every balancer watching the same prefix
// sees the same backends: with the hash policy (Maglev, whose table depends
// only on the backends) they all send a key to the same backend. A value
// that is not a valid entry is skipped and logged. Through a failure of etcd
// it keeps the last list and retries.
type Etcd struct {
	// Endpoints are etcd's client URLs ("http://127.0.0.1:2379"). Required.
	Endpoints []string
	// Prefix is the key prefix watched ("/lb/api/"). Required.
	Prefix string
	// DialTimeout bounds connecting; zero means DefaultEtcdDialTimeout.
	DialTimeout time.Duration
	// Username and Password authenticate, when etcd asks.
	Username, Password string
	// Logger receives failures and changes; nil means slog.Default().
	Logger *slog.Logger
}

// Check validates e and fills in its defaults. An endpoint's host follows
// the rules of a backend's (see pool.NewBackend): an IP address (IPv6 in
// brackets) or a name, a host of numbers only being an IPv4 address in
// dotted decimal (127.1 or 0x7f.1 are refused, naming what C's inet_aton
// reads), an IP address without a trailing dot, a name without an empty
// label; its port is a number, 1-65535. Endpoints are kept as written.
// Checked again, e is only read: proxy.Reload checks the sources it keeps
// running.
func (e *Etcd) Check() error {
	if len(e.Endpoints) == 0 {
		return errors.New("etcd: no endpoints: give etcd's client URLs, such as http://127.0.0.1:2379")
	}
	for _, ep := range e.Endpoints {
		if err := checkEndpoint(ep); err != nil {
			return fmt.Errorf("etcd: invalid endpoint %q: %v", ep, err)
		}
	}
	if e.Prefix == "" {
		return errors.New("etcd: empty prefix: give the key prefix the backends are under, such as /lb/api/")
	}
	switch {
	case e.DialTimeout == 0:
		e.DialTimeout = DefaultEtcdDialTimeout
	case e.DialTimeout < 0:
		return fmt.Errorf("etcd: dial timeout %v: must be positive", e.DialTimeout)
	}
	return nil
}

// checkEndpoint checks one of etcd's client URLs. The client dials its
// host:port as written, with no default port.
func checkEndpoint(ep string) error {
	const want = "want http://host:port or https://host:port"
	u, err := url.Parse(ep)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New(want)
	case u.Hostname() == "":
		return errors.New("missing host (" + want + ")")
	case u.Port() == "":
		return errors.New("missing port (" + want + ")")
	}
	if _, ok := hostname.Port(u.Port()); !ok {
		return fmt.Errorf("invalid port %q: want 1-65535", u.Port())
	}
	if _, err := hostname.Canonical(u.Hostname()); err != nil {
		return fmt.Errorf("host %q: %w", u.Hostname(), err)
	}
	return nil
}

// String names the source: its endpoints and prefix.
func (e *Etcd) String() string {
	s := "etcd " + strings.Join(e.Endpoints, ",") + " " + e.Prefix
	if e.Username != "" {
		s += " as " + e.Username
	}
	return s
}

func (e *Etcd) log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// Discover watches the prefix until ctx ends and sends the backends to
// update each time they change.
func (e *Etcd) Discover(ctx context.Context, update func([]string)) {
	log := e.log().With("source", e.String())
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   e.Endpoints,
		DialTimeout: e.DialTimeout,
		Username:    e.Username,
		Password:    e.Password,
		Logger:      zap.NewNop(), // failures are reported below, once
		Context:     ctx,
	})
	if err != nil {
		log.Error("etcd discovery cannot start", "error", err.Error())
		return
	}
	defer cli.Close()

	var last []string
	sent := false
	send := func(kvs map[string]string) {
		entries := e.entries(log, kvs)
		if sent && slices.Equal(entries, last) {
			return
		}
		log.Info("etcd discovery found backends", "backends", len(entries))
		last, sent = entries, true
		update(slices.Clone(entries))
	}
	retry := time.Second
	for ctx.Err() == nil {
		err := e.sync(ctx, cli, send)
		if ctx.Err() != nil {
			return
		}
		log.Warn("etcd discovery interrupted: keeping the backends found before", "error", err.Error(),
			"backends", len(last), "retry_in", retry.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(retry*2, 30*time.Second)
	}
}

// sync reads every key under the prefix, then follows the changes until
// the watch fails or ctx ends.
func (e *Etcd) sync(ctx context.Context, cli *clientv3.Client, send func(map[string]string)) error {
	gctx, cancel := context.WithTimeout(ctx, e.DialTimeout)
	resp, err := cli.Get(gctx, e.Prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Prefix, err)
	}
	kvs := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = string(kv.Value)
	}
	send(kvs)
	wctx, stop := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer stop()
	for wr := range cli.Watch(wctx, e.Prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watching %s: %w", e.Prefix, err)
		}
		for _, ev := range wr.Events {
			switch ev.Type {
			case clientv3.EventTypePut:
				kvs[string(ev.Kv.Key)] = string(ev.Kv.Value)
			case clientv3.EventTypeDelete:
				delete(kvs, string(ev.Kv.Key))
			}
		}
		send(kvs)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("watching %s: the watch ended", e.Prefix)
}

// entries returns the valid entries of kvs, in key order, one per URL.
func (e *Etcd) entries(log *slog.Logger, kvs map[string]string) []string {
	type kv struct{ k, v string }
	list := make([]kv, 0, len(kvs))
	for k, v := range kvs {
		list = append(list, kv{k, strings.TrimSpace(v)})
	}
	slices.SortFunc(list, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
	seen := make(map[string]bool, len(list))
	entries := make([]string, 0, len(list))
	for _, kv := range list {
		b, err := pool.NewBackend(kv.v)
		if err != nil {
			log.Warn("etcd discovery: key skipped", "key", kv.k, "error", err.Error())
			continue
		}
		if seen[b.URL()] {
			log.Warn("etcd discovery: key skipped: the same backend as another key", "key", kv.k, "backend", b.URL())
			continue
		}
		seen[b.URL()] = true
		entries = append(entries, kv.v)
	}
	return entries
}
