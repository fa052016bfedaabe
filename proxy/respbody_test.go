package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// markedBody is size bytes of "id," repeated: a body that tells whose it is.
func markedBody(id string, size int) string {
	return strings.Repeat(id+",", size/(len(id)+1)+1)[:size]
}

// TestResponseBodiesKeptApart: bodies read into pooled buffers go back to
// the pool only once written, so connections relaying bodies of mixed sizes
// at once each get exactly their own, request after request.
func TestResponseBodiesKeptApart(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			req, ok := rb.readRequest(r)
			if !ok {
				return
			}
			// /<id>/<size>
			id, sz, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
			size, _ := strconv.Atoi(sz)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", size, markedBody(id, size))
		}
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
	sizes := []int{1, 70 << 10, 100, 300 << 10, 3000, 64 << 10, 0, 1 << 20}
	const clients, requests = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			for i := range requests {
				id, size := fmt.Sprintf("c%dr%d", c, i), sizes[(c+i)%len(sizes)]
				resp, err := client.Get(fmt.Sprintf("%s/%s/%d", url, id, size))
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != markedBody(id, size) {
					errs <- fmt.Errorf("%s: %d bytes, %v: not its %d-byte body (starts %.20q)", id, len(body), err, size, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
