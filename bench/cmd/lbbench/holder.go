package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// connHolder opens keep-alive connections to a server, makes one request on
// each (so the server has read a request and written an answer on it, as on
// a real idle client connection), and keeps them open and idle.
type connHolder struct {
	addr  string
	path  string
	conns []net.Conn
}

// holdWorkers is how many connections are opened at once.
const holdWorkers = 32

// grow opens connections until n are held.
func (c *connHolder) grow(ctx context.Context, n int) error {
	need := n - len(c.conns)
	if need <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		jobs     = make(chan struct{})
	)
	for range min(holdWorkers, need) {
		wg.Go(func() {
			for range jobs {
				conn, err := c.open(ctx)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
						cancel()
					}
				} else {
					c.conns = append(c.conns, conn)
				}
				mu.Unlock()
			}
		})
	}
feed:
	for range need {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("holding %d connections to %s (%d open): %v", n, c.addr, len(c.conns), firstErr)
	}
	return ctx.Err()
}

// open makes one connection and one request on it.
func (c *connHolder) open(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + c.path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: lbbench-holder\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && (resp.StatusCode != http.StatusOK || resp.Close) {
		err = fmt.Errorf("status %d, close %v: want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// alive counts held connections the server has not closed: a peek that
// must not block finds nothing to read (EAGAIN) on an open idle connection,
// and end of file (or a reset) on one the server closed.
func (c *connHolder) alive() int {
	n := 0
	var b [1]byte
	for _, conn := range c.conns {
		raw, err := conn.(syscall.Conn).SyscallConn()
		if err != nil {
			continue
		}
		open := false
		_ = raw.Read(func(fd uintptr) bool {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			open = err == syscall.EAGAIN
			return true // done: never wait for readability
		})
		if open {
			n++
		}
	}
	return n
}

// close drops every connection with a reset (linger 0), so thousands of
// closes leave no TIME_WAIT sockets holding ports for the runs after.
func (c *connHolder) close() {
	for _, conn := range c.conns {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
	}
	c.conns = nil
}
