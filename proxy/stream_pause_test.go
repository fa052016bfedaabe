package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// pauseTimeout is the backend timeout of the pause tests; each client
// pauses for several of it.
const pauseTimeout = 200 * time.Millisecond

// TestStreamClientPauseNotBackendTimeout: a client that stops reading a
// streamed download for longer than the backend timeout (a browser's
// paused download, a phone gone to the background), while the backend has
// sent all it can and waits for room, gets the whole body once it reads
// again, as from nginx (proxy_read_timeout times reads from the backend
// only). The proxy cut the stream: the backend's deadline ran while the
// proxy's write to the client waited.
func TestStreamClientPauseNotBackendTimeout(t *testing.T) {
	be := startBackend(t, "a")
	const size = 32 << 20 // far beyond what the socket buffers hold
	for _, splice := range []bool{false, true} {
		p, url := startProxy(t, Config{Backends: []string{be.URL()}, BackendTimeout: pauseTimeout, Splice: splice,
			Health: HealthConfig{Interval: -1}})
		for _, path := range []string{"/download/" + strconv.Itoa(size), "/download/" + strconv.Itoa(size) + "?chunked=1"} {
			t.Run(path+"/splice="+strconv.FormatBool(splice), func(t *testing.T) {
				d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
					return c.Control(func(fd uintptr) {
						syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) //nolint:errcheck // a smaller buffer only speeds the test
					})
				}}
				c, err := d.Dial("tcp", strings.TrimPrefix(url, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				before := p.spliced.Load()
				readPaused(t, resp.Body, size)
				// With Splice, the body of known length was spliced: the
				// pause held up the splice into the client's socket.
				want := splice && !strings.Contains(path, "chunked")
				if spliced := p.spliced.Load() > before; spliced != want {
					t.Errorf("spliced: %v, want %v", spliced, want)
				}
			})
		}
	}
}

// TestUploadClientPauseNotBackendTimeout: a client that pauses in the
// middle of a streamed upload for longer than the backend timeout (but
// well within the client body timeout) gets its answer, as from nginx with
// proxy_request_buffering off (proxy_send_timeout times writes to the
// backend only; client_body_timeout the client's pauses). The proxy
// answered 504, blaming a backend that was waiting for the body.
func TestUploadClientPauseNotBackendTimeout(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, BackendTimeout: pauseTimeout,
		Health: HealthConfig{Interval: -1}})
	const part = 1536 << 10 // two parts: beyond what is read whole
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			c := dialProxy(t, url, 30*time.Second)
			defer c.Close()
			body := strings.Repeat("a", part)
			if chunked {
				fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", part, body)
			} else {
				fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 2*part, body)
			}
			// The client's pause: the stimulus, not a wait for anything.
			time.Sleep(5 * pauseTimeout)
			if chunked {
				fmt.Fprintf(c, "%x\r\n%s\r\n0\r\n\r\n", part, body)
			} else {
				io.WriteString(c, body)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(got), `"bytes":`+strconv.Itoa(2*part)) {
				t.Errorf("after a pause of 5 backend timeouts: %d %s, want 200 with all %d bytes", resp.StatusCode, got, 2*part)
			}
		})
	}
}

// TestHTTP2ClientPauseNotBackendTimeout: the same pause on the HTTP/2
// front (the net/http path), where the stream was reset with
// INTERNAL_ERROR once the pause passed the backend timeout.
func TestHTTP2ClientPauseNotBackendTimeout(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := h2Proxy(t, ca, Config{Backends: []string{be.URL()}, BackendTimeout: pauseTimeout,
		Health: HealthConfig{Interval: -1}})
	const size = 32 << 20 // beyond the HTTP/2 client's stream window and the socket buffers
	resp, err := newH2Client(t, nil).Get(tp.plainURL + "/download/" + strconv.Itoa(size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("client got %s, want HTTP/2", resp.Proto)
	}
	readPaused(t, resp.Body, size)
}

// readPaused reads a download of size bytes of the backend's pattern: the
// first MiB, then, after the client's pause of five backend timeouts, the
// rest, which must all come, and come right.
func readPaused(t *testing.T, body io.Reader, size int64) {
	t.Helper()
	h := sha256.New()
	if _, err := io.CopyN(h, body, 1<<20); err != nil {
		t.Fatal(err)
	}
	// The client's pause: the stimulus, not a wait for anything.
	time.Sleep(5 * pauseTimeout)
	n, err := io.Copy(h, body)
	if err != nil || n+1<<20 != size {
		t.Fatalf("after a pause of 5 backend timeouts: read %d bytes more (%v), want %d", n, err, size-1<<20)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), backend.PatternSHA256(size); got != want {
		t.Errorf("SHA-256 %s, want %s", got, want)
	}
}
