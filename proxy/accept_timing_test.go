package proxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// BenchmarkNewConnection is a proxied request on a connection of its own
// over loopback TCP, as `make bench`'s close scenario sends them: accept,
// read, proxy over a kept-alive backend connection, answer with
// Connection: close, close. The client is a bare socket, so that what the
// profiles show beside the kernel is the proxy's (and the backend's).
func BenchmarkNewConnection(b *testing.B) {
	be := startBackend(b, "a")
	_, url := startProxy(b, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	addr := strings.TrimPrefix(url, "http://")
	req := []byte("GET /bytes/20 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	want := []byte("HTTP/1.1 200 ")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		for pb.Next() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				c.Close()
				return
			}
			n := 0
			for err == nil && n < len(buf) {
				var m int
				m, err = c.Read(buf[n:])
				n += m
			}
			c.Close()
			if err != io.EOF || !bytes.HasPrefix(buf[:n], want) {
				b.Errorf("answer %q, %v; want a 200 then the end of the connection", buf[:n], err)
				return
			}
		}
	})
}
