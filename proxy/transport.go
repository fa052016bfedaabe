package proxy

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// dialError marks an error from establishing a connection: the backend never
// saw the request, so any method may be retried elsewhere.
type dialError struct{ err error }

// Error gives the root cause only ("connect: connection refused"): the
// backend's address is logged beside it.
func (e *dialError) Error() string {
	err := e.err
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
		var sc *os.SyscallError
		if errors.As(err, &sc) {
			err = sc.Err
		}
	}
	return "connect: " + err.Error()
}
func (e *dialError) Unwrap() error { return e.err }

// dialer connects to backends, bounding each attempt by the configured dial
// timeout or the request's remaining time, whichever is shorter.
type dialer struct {
	dialFunc func(addr string, timeout time.Duration) (net.Conn, error)
	timeout  time.Duration
	wd       *watchdog
}

func newDialer(c Config, wd *watchdog) *dialer {
	d := &dialer{dialFunc: c.Dial, timeout: c.DialTimeout, wd: wd}
	if d.dialFunc == nil {
		tcp := &fasthttp.TCPDialer{Concurrency: 1000, DNSCacheDuration: time.Minute}
		d.dialFunc = tcp.DialDualStackTimeout
	}
	return d
}

func (d *dialer) dial(addr string, remaining time.Duration) (net.Conn, error) {
	timeout := d.timeout
	if remaining > 0 && remaining < timeout {
		timeout = remaining
	}
	conn, err := d.dialFunc(addr, timeout)
	if err != nil {
		return nil, &dialError{err: err}
	}
	return d.wd.trackBackend(conn), nil
}
