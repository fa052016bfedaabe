package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// gRPC. Calls pass through the net/http path like any HTTP/2 request, with
// their trailers, TE: trailers and full-duplex streams. Where gRPC differs:
// the proxy's own errors are gRPC statuses (a client library reads
// grpc-status, not an HTTP status or a text body), a backend that fails in
// the middle of a stream ends it with UNAVAILABLE in the trailers, and the
// wait for the response header is not the try timeout (a streaming call
// may answer its header with its first message, much later). Health checks
// can speak the gRPC health protocol.

// gRPC status codes the proxy sends (google.golang.org/grpc/codes).
const (
	grpcResourceExhausted = "8"
	grpcUnimplemented     = "12"
	grpcInternal          = "13"
	grpcUnavailable       = "14"
)

// isGRPC reports whether a request is a gRPC call: its content type is
// application/grpc, alone or with a suffix (+proto, +json).
func isGRPC(h http.Header) bool {
	ct := h.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") &&
		(len(ct) == len("application/grpc") || ct[len("application/grpc")] == '+' || ct[len("application/grpc")] == ';')
}

// grpcCode maps an HTTP status of the proxy's to the gRPC status a client
// would derive from it (gRPC's "HTTP to gRPC status code mapping").
func grpcCode(status int) string {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	case http.StatusRequestEntityTooLarge:
		return grpcResourceExhausted
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return grpcUnimplemented
	}
	return grpcInternal
}

// writeGRPCError answers a gRPC call with a trailers-only response: HTTP 200
// whose header block carries grpc-status and grpc-message, as gRPC servers
// (and Envoy) answer a call they cannot take.
func writeGRPCError(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", grpcCode(status))
	h.Set("Grpc-Message", grpcMessage(body))
	h.Del("Connection")
	w.WriteHeader(http.StatusOK)
}

// grpcMessage percent-encodes a message for grpc-message, as the gRPC
// protocol asks.
func grpcMessage(body []byte) string {
	msg := string(bytes.TrimSpace(body))
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < ' ' || c > '~' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// grpcHealthPath is the gRPC health checking protocol's method
// (grpc.health.v1.Health/Check).
const grpcHealthPath = "/grpc.health.v1.Health/Check"

// Values of grpc.health.v1.HealthCheckResponse.ServingStatus.
var grpcServingStatus = map[uint64]string{0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

// probeGRPC checks a backend with the gRPC health protocol: one unary call
// to grpc.health.v1.Health/Check for service ("" is the server as a whole),
// healthy when it answers SERVING. The call is written by hand (the request
// is at most a few bytes of protobuf, the answer one varint) over the
// backend's own HTTP/2 client, so the check takes the route traffic takes,
// and the binary carries no second HTTP/2 stack for it.
func probeGRPC(ctx context.Context, t http.RoundTripper, b *pool.Backend, service string) error {
	msg := grpcHealthRequest(service)
	req := &http.Request{
		Method: http.MethodPost,
		URL:    &url.URL{Scheme: "http", Host: b.Addr(), Path: grpcHealthPath},
		Host:   b.Addr(),
		Header: http.Header{
			"Content-Type": {"application/grpc"},
			"Te":           {"trailers"},
			"User-Agent":   {"load-balancer-health-check"},
		},
		Body:          io.NopCloser(bytes.NewReader(msg)),
		ContentLength: int64(len(msg)),
	}
	resp, err := t.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return probeError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gRPC health check returned HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return probeError(ctx, err)
	}
	// A trailers-only answer carries the status in the header block.
	code := resp.Header.Get("Grpc-Status")
	if code == "" {
		code = resp.Trailer.Get("Grpc-Status")
	}
	if code != "0" {
		m := resp.Header.Get("Grpc-Message") + resp.Trailer.Get("Grpc-Message")
		if u, err := url.PathUnescape(m); err == nil {
			m = u
		}
		if code == "" {
			return errors.New("gRPC health check: no grpc-status in the answer")
		}
		return fmt.Errorf("gRPC health check: status %s: %s", code, m)
	}
	status, err := grpcHealthStatus(body)
	if err != nil {
		return fmt.Errorf("gRPC health check: %v", err)
	}
	if status != 1 {
		name, ok := grpcServingStatus[status]
		if !ok {
			name = strconv.FormatUint(status, 10)
		}
		return fmt.Errorf("gRPC health check: %s", name)
	}
	return nil
}

// grpcHealthRequest frames a HealthCheckRequest{service} message.
func grpcHealthRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = append(msg, 0x0a) // field 1, length-delimited
		msg = binary.AppendUvarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	return append(frame, msg...)
}

// grpcHealthStatus reads the status (field 1) of a framed
// HealthCheckResponse; an absent field is 0, UNKNOWN.
func grpcHealthStatus(body []byte) (uint64, error) {
	if len(body) < 5 {
		return 0, errors.New("answer without a message")
	}
	if body[0] != 0 {
		return 0, errors.New("compressed answer (the check asked for none)")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	msg := body[5:]
	if uint32(len(msg)) < n {
		return 0, errors.New("truncated message")
	}
	msg = msg[:n]
	var status uint64
	for len(msg) > 0 {
		tag, k := binary.Uvarint(msg)
		if k <= 0 {
			return 0, errors.New("malformed message")
		}
		msg = msg[k:]
		switch tag & 7 {
		case 0: // varint
			v, k := binary.Uvarint(msg)
			if k <= 0 {
				return 0, errors.New("malformed message")
			}
			msg = msg[k:]
			if tag>>3 == 1 {
				status = v
			}
		case 2: // length-delimited: skip
			l, k := binary.Uvarint(msg)
			if k <= 0 || uint64(len(msg)-k) < l {
				return 0, errors.New("malformed message")
			}
			msg = msg[k+int(l):]
		default:
			return 0, errors.New("malformed message")
		}
	}
	return status, nil
}

// probeError words a failed check's transport error.
func probeError(ctx context.Context, err error) error {
	var de *dialError
	if errors.As(err, &de) {
		return de
	}
	if ctx.Err() != nil {
		return errors.New("check timed out")
	}
	return fmt.Errorf("check failed: %w", err)
}
