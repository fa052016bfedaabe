package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
)

// TestExpectContinueRefused: the backend refuses the upload from its header
// alone, so the client gets the refusal instead of 100 Continue and the body
// never travels.
func TestExpectContinueRefused(t *testing.T) {
	var bodyBytes atomic.Int64
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		rb.requests.Add(1)
		if req.Header.Get("Expect") != "100-continue" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n")
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _ := io.Copy(io.Discard, r)
		bodyBytes.Add(n)
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})

	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || string(body) != "nope\n" {
		t.Errorf("got %d %q, want the backend's 401", resp.StatusCode, body)
	}
	if n := bodyBytes.Load(); n != 0 {
		t.Errorf("the backend received %d body bytes of a refused upload", n)
	}
}

func TestExpectContinueAccepted(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	const size = 3 << 20
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			up := upload(t, &http.Client{Transport: tr}, url+"/upload", size, !chunked, map[string]string{"Expect": "100-continue"})
			if up.Bytes != size || up.SHA256 != backend.ZerosSHA256(size) {
				t.Errorf("backend got %d bytes, sha256 %s", up.Bytes, up.SHA256)
			}
		})
	}
}

// A backend that ignores the expectation and just waits for the body gets
// it after a short wait.
func TestExpectContinueSilentBackend(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		rb.requests.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n")
		c.Write(b)
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, TryTimeout: 200 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	payload := bytes.Repeat([]byte("p"), 100000)
	req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(payload))
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Errorf("status %d, %d bytes back", resp.StatusCode, len(got))
	}
}

func TestExpectContinueOverLimit(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, MaxBodySize: 1 << 20, Health: HealthConfig{Interval: -1}})
	status, _ := rawRequest(t, url, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n")
	if !strings.Contains(status, " 413 ") {
		t.Errorf("status %s, want 413 before any body", status)
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
}
