package discovery

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// etcdServer is a real etcd (Debian's etcd-server) run by a test, with a
// data directory of its own on loopback ports.
type etcdServer struct {
	endpoint string
	client   *clientv3.Client
}

// freePorts returns two loopback TCP ports that are free now, and not the
// same: both are held open until both are found, where two calls one after
// the other could be handed the same port.
func freePorts(t *testing.T) (string, string) {
	t.Helper()
	var ports [2]string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, ports[i], _ = net.SplitHostPort(ln.Addr().String())
	}
	return ports[0], ports[1]
}

// startEtcd runs etcd until the test ends. Without the etcd binary the test
// is skipped: CI installs it (.ci/run).
func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		msg := "etcd not found (Debian package etcd-server)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + ": .ci/run should have installed it")
		}
		t.Skip(msg + ": skipping the etcd test")
	}
	// A port found free can be taken by another test before etcd binds
	// it: then etcd exits at once, and another pair of ports is tried.
	for range 3 {
		client, peer := freePorts(t)
		if e := startEtcdOn(t, bin, "http://127.0.0.1:"+client, "http://127.0.0.1:"+peer); e != nil {
			return e
		}
	}
	t.Fatal("etcd found its ports taken three times")
	return nil
}

// startEtcdOn runs etcd on the given client and peer URLs until the test
// ends, or returns nil when it could not bind them.
func startEtcdOn(t *testing.T, bin, client, peer string) *etcdServer {
	t.Helper()
	cmd := exec.Command(bin,
		"--name", "test",
		"--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer,
		"--log-level", "warn",
	)
	logFile := filepath.Join(t.TempDir(), "etcd.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the process has its own copy
	output := func() string {
		b, _ := os.ReadFile(logFile)
		return string(b)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // killed at the end
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("etcd output:\n%s", output())
		}
	})
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Get(ctx, "/ready")
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			if strings.Contains(output(), "address already in use") {
				return nil
			}
			t.Fatalf("etcd exited:\n%s", output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not ready: %v\n%s", err, output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &etcdServer{endpoint: client, client: c}
}

func (e *etcdServer) put(t *testing.T, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.client.Put(ctx, key, value); err != nil {
		t.Fatal(err)
	}
}

func (e *etcdServer) del(t *testing.T, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.client.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
}

func TestEtcdCheck(t *testing.T) {
	for _, tc := range []struct {
		e    Etcd
		want string
	}{
		{Etcd{Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "/lb/"}, ""},
		{Etcd{Prefix: "/lb/"}, "no endpoints"},
		{Etcd{Endpoints: []string{"127.0.0.1:2379"}, Prefix: "/lb/"}, `invalid endpoint "127.0.0.1:2379"`},
		{Etcd{Endpoints: []string{"http://127.0.0.1:2379"}}, "empty prefix"},
		{Etcd{Endpoints: []string{"http://e:2379"}, Prefix: "/x", DialTimeout: -time.Second}, "dial timeout"},
		// The rules of every host, and a port etcd's client can dial.
		{Etcd{Endpoints: []string{"https://etcd-0.internal.:2379", "http://[::1]:2379", "http://[::ffff:127.0.0.1]:2379", "HTTP://LocalHost:02379/"}, Prefix: "/lb/"}, ""},
		{Etcd{Endpoints: []string{"http://127.0.0.1:2379", "http://127.1:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://127.1:2379": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{Etcd{Endpoints: []string{"http://0x7f.1:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://0x7f.1:2379": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{Etcd{Endpoints: []string{"http://2130706433:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://2130706433:2379": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{Etcd{Endpoints: []string{"http://0177.0.0.1:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://0177.0.0.1:2379": host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{Etcd{Endpoints: []string{"http://127.0.0.1.:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://127.0.0.1.:2379": host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{Etcd{Endpoints: []string{"http://etcd..internal:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://etcd..internal:2379": host "etcd..internal": an empty label`},
		{Etcd{Endpoints: []string{"http://999.1.1.1:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://999.1.1.1:2379": host "999.1.1.1": not an IPv4 address, and no host name is all numbers`},
		{Etcd{Endpoints: []string{"http://[::1::2]:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://[::1::2]:2379": want http://host:port or https://host:port`},
		{Etcd{Endpoints: []string{"http://:2379"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://:2379": missing host`},
		{Etcd{Endpoints: []string{"http://127.0.0.1"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://127.0.0.1": missing port`},
		{Etcd{Endpoints: []string{"http://[::1]:"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://[::1]:": missing port`},
		{Etcd{Endpoints: []string{"http://127.0.0.1:0"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://127.0.0.1:0": invalid port "0": want 1-65535`},
		{Etcd{Endpoints: []string{"http://[::1]:65536"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://[::1]:65536": invalid port "65536": want 1-65535`},
		{Etcd{Endpoints: []string{"http://e:99999999999999999999"}, Prefix: "/lb/"}, `invalid port "99999999999999999999"`},
		{Etcd{Endpoints: []string{"http://e:port"}, Prefix: "/lb/"}, `etcd: invalid endpoint "http://e:port": want http://host:port or https://host:port`},
	} {
		err := tc.e.Check()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.e, err, tc.want)
		}
	}
}

// TestEtcdDiscovery watches a prefix: keys put and deleted reach the list at
// once, values that are not backends are skipped, keys elsewhere ignored.
func TestEtcdDiscovery(t *testing.T) {
	e := startEtcd(t)
	e.put(t, "/lb/api/1", "http://10.0.0.1:8080")
	e.put(t, "/lb/api/2", "http://10.0.0.2:8080 weight=3")
	e.put(t, "/lb/api/bad", "htp://x")
	e.put(t, "/lb/other/1", "http://10.9.9.9:80")
	d := &Etcd{Endpoints: []string{e.endpoint}, Prefix: "/lb/api/", Logger: quiet()}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	u := run(t, d)
	if got := u.next(t, 10*time.Second); strings.Join(got, ",") != "http://10.0.0.1:8080,http://10.0.0.2:8080 weight=3" {
		t.Fatalf("found %q", got)
	}
	put := time.Now()
	e.put(t, "/lb/api/3", "http://10.0.0.3:8080")
	got := u.next(t, 5*time.Second)
	t.Logf("an etcd put reached the list after %v", time.Since(put).Round(time.Microsecond))
	if len(got) != 3 || got[2] != "http://10.0.0.3:8080" {
		t.Errorf("after a put: %q", got)
	}
	e.del(t, "/lb/api/1")
	if got := u.next(t, 5*time.Second); len(got) != 2 || got[0] != "http://10.0.0.2:8080 weight=3" {
		t.Errorf("after a delete: %q", got)
	}
	e.put(t, "/lb/other/2", "http://10.9.9.8:80")
	u.none(t, 300*time.Millisecond)
}

// TestEtcdBalancersHashAlike runs two balancers on one etcd prefix with the
// hash policy: they find the same backends, and send every key to the same
// one, before and after a backend leaves.
func TestEtcdBalancersHashAlike(t *testing.T) {
	e := startEtcd(t)
	for i := range 4 {
		b := backendtest.Start(t, "b"+strconv.Itoa(i))
		e.put(t, fmt.Sprintf("/lb/web/%d", i), b.URL())
	}
	var urls []string
	var pools []*pool.Pool
	for range 2 {
		d := &Etcd{Endpoints: []string{e.endpoint}, Prefix: "/lb/web/", Logger: quiet()}
		if err := d.Check(); err != nil {
			t.Fatal(err)
		}
		p, url := startProxy(t, proxy.Config{Pools: []proxy.PoolConfig{{
			Name:      "web",
			Discovery: []proxy.Discoverer{d},
			Policy:    pool.NewMaglev(pool.Key{Kind: pool.KeyHeader, Name: "X-User"}),
		}}})
		urls = append(urls, url)
		pools = append(pools, p.Pool())
	}
	want := 4
	ready := func() bool {
		for _, pl := range pools {
			if len(pl.Up()) != want {
				return false
			}
		}
		return true
	}
	compare := func() {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		used := map[string]bool{}
		for k := range 60 {
			var got [2]string
			for i, u := range urls {
				req, _ := http.NewRequest(http.MethodGet, u+"/", nil)
				req.Header.Set("X-User", "user-"+strconv.Itoa(k))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				buf.ReadFrom(resp.Body) //nolint:errcheck // compared below
				resp.Body.Close()
				got[i] = strings.TrimPrefix(buf.String(), "Backend server is running on port ")
			}
			if got[0] != got[1] || got[0] == "" {
				t.Fatalf("user-%d: balancer 1 sent it to %q, balancer 2 to %q", k, got[0], got[1])
			}
			used[got[0]] = true
		}
		if len(used) != want {
			t.Errorf("60 keys went to %d backends, want all %d", len(used), want)
		}
	}
	waitFor(t, "both balancers to find the backends", 10*time.Second, ready)
	compare()
	e.del(t, "/lb/web/2")
	want = 3
	waitFor(t, "both balancers to drop a backend", 10*time.Second, ready)
	compare()
}
