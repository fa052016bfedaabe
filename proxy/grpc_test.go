package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// grpcBackend is a google.golang.org/grpc server with the interop
// TestService and the standard health service, on plain TCP (h2c).
type grpcBackend struct {
	testpb.UnimplementedTestServiceServer
	name   string
	addr   string
	srv    *grpc.Server
	health *health.Server

	mu      sync.Mutex
	streams int // FullDuplexCall streams started
	inCall  chan struct{}
}

func startGRPCBackend(t *testing.T, name string) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcBackend{name: name, addr: ln.Addr().String(), srv: grpc.NewServer(), health: health.NewServer(),
		inCall: make(chan struct{}, 16)}
	testpb.RegisterTestServiceServer(g.srv, g)
	healthpb.RegisterHealthServer(g.srv, g.health)
	go g.srv.Serve(ln) //nolint:errcheck // ends at Stop
	t.Cleanup(g.srv.Stop)
	return g
}

func (g *grpcBackend) URL() string { return "http://" + g.addr + " proto=h2c health=grpc" }

// UnaryCall answers with the backend's name, the status the request asks
// for, and a trailer.
func (g *grpcBackend) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	grpc.SetTrailer(ctx, metadata.Pairs("x-served-by", g.name)) //nolint:errcheck // checked by the test
	if s := in.GetResponseStatus(); s != nil && s.GetCode() != 0 {
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	if in.GetFillServerId() {
		return &testpb.SimpleResponse{ServerId: g.name}, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return &testpb.SimpleResponse{ServerId: g.name, Hostname: first(md.Get("x-forwarded-for"))}, nil
}

// FullDuplexCall echoes each message's payload as it comes, and signals
// inCall after the first.
func (g *grpcBackend) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	g.mu.Lock()
	g.streams++
	g.mu.Unlock()
	for n := 0; ; n++ {
		in, err := stream.Recv()
		if err == io.EOF {
			stream.SetTrailer(metadata.Pairs("x-messages", string(rune('0'+n))))
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
		if n == 0 {
			g.inCall <- struct{}{}
		}
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func dialGRPC(t *testing.T, target string, creds credentials.TransportCredentials) testpb.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

func payload(s string) *testpb.Payload { return &testpb.Payload{Body: []byte(s)} }

// TestGRPCThroughBalancer makes unary and bidirectional-streaming gRPC
// calls through the balancer, over h2c and over TLS, to gRPC backends that
// the gRPC health protocol checks: answers, status codes and trailers come
// through intact, the client's address is forwarded, and calls spread.
func TestGRPCThroughBalancer(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	g1, g2 := startGRPCBackend(t, "g1"), startGRPCBackend(t, "g2")
	tp := h2Proxy(t, ca, Config{
		Backends: []string{g1.URL(), g2.URL()},
		Health:   HealthConfig{Interval: 50 * time.Millisecond, Timeout: time.Second},
	})
	plain := dialGRPC(t, tp.plainURL[len("http://"):], insecure.NewCredentials())
	secure := dialGRPC(t, tp.tlsAddr, credentials.NewTLS(&tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for name, c := range map[string]testpb.TestServiceClient{"h2c": plain, "tls": secure} {
		t.Run(name, func(t *testing.T) {
			seen := map[string]int{}
			for range 4 {
				var trailer metadata.MD
				resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
				if err != nil {
					t.Fatalf("UnaryCall: %v", err)
				}
				seen[resp.GetServerId()]++
				if got := first(trailer.Get("x-served-by")); got != resp.GetServerId() {
					t.Errorf("trailer x-served-by %q from %s", got, resp.GetServerId())
				}
				if resp.GetHostname() != "127.0.0.1" {
					t.Errorf("backend saw X-Forwarded-For %q, want 127.0.0.1", resp.GetHostname())
				}
			}
			if seen["g1"] != 2 || seen["g2"] != 2 {
				t.Errorf("4 calls spread %v, want 2 and 2", seen)
			}

			// A status the backend returns reaches the client as is.
			_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
			if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "no such thing" {
				t.Errorf("status through the proxy: %v, want NotFound \"no such thing\"", err)
			}

			// Full duplex: each answer arrives before the next message is
			// sent, so nothing is buffered on the way.
			stream, err := c.FullDuplexCall(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range []string{"one", "two", "three"} {
				if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: payload(msg)}); err != nil {
					t.Fatalf("Send %s: %v", msg, err)
				}
				resp, err := stream.Recv()
				if err != nil || string(resp.GetPayload().GetBody()) != msg {
					t.Fatalf("Recv after %s: %v %v", msg, resp, err)
				}
			}
			stream.CloseSend() //nolint:errcheck // the Recv tells
			if _, err := stream.Recv(); err != io.EOF {
				t.Fatalf("end of stream: %v, want EOF", err)
			}
			if got := first(stream.Trailer().Get("x-messages")); got != "3" {
				t.Errorf("stream trailer x-messages %q, want 3", got)
			}
		})
	}

	// The gRPC health protocol takes a backend out when it stops serving.
	g2.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	b2 := tp.Pool().Backends()[1]
	waitFor(t, "g2 down by its gRPC health check", 5*time.Second, func() bool { return b2.State() == pool.StateDown })
	if e := b2.LastError(); e != "gRPC health check: NOT_SERVING" {
		t.Errorf("last error %q", e)
	}
	for range 3 {
		resp, err := plain.UnaryCall(ctx, &testpb.SimpleRequest{})
		if err != nil || resp.GetServerId() != "g1" {
			t.Fatalf("with g2 not serving: %v %v", resp, err)
		}
	}
	g2.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	waitFor(t, "g2 back up", 5*time.Second, func() bool { return b2.State() == pool.StateUp })
}

// TestGRPCErrorStatusEveryTime: a gRPC error is sent as trailers only (its
// status in the one HEADERS frame, which ends the stream). ReverseProxy
// flushes the header from a timer that races the handler's return; a
// flush that won sent the status as a header block and an empty end of
// stream, and the client saw "server closed the stream without sending
// trailers" for about one call in fifteen. Every call must get the
// backend's status.
func TestGRPCErrorStatusEveryTime(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	g := startGRPCBackend(t, "g1")
	tp := h2Proxy(t, ca, Config{Backends: []string{g.URL()}, Health: HealthConfig{Interval: -1}})
	c := dialGRPC(t, tp.plainURL[len("http://"):], insecure.NewCredentials())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}}
	for i := range 300 {
		_, err := c.UnaryCall(ctx, req)
		if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "no such thing" {
			t.Fatalf("call %d: %v, want NotFound \"no such thing\"", i, err)
		}
	}
}

// TestGRPCBackendKilledMidStream kills the backend of a streaming call
// after its first message: the client gets a clean UNAVAILABLE, not a
// reset stream; calls made when no backend is left get UNAVAILABLE too.
func TestGRPCBackendKilledMidStream(t *testing.T) {
	g := startGRPCBackend(t, "g")
	_, url := startProxy(t, Config{Backends: []string{g.URL()}, HTTP2: HTTP2Config{H2C: true}})
	c := dialGRPC(t, url[len("http://"):], insecure.NewCredentials())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	stream, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: payload("hello")}); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || string(resp.GetPayload().GetBody()) != "hello" {
		t.Fatalf("first message: %v %v", resp, err)
	}
	<-g.inCall
	g.srv.Stop() // closes every connection at once, as a crash would
	_, err = stream.Recv()
	if s := status.Convert(err); s.Code() != codes.Unavailable {
		t.Fatalf("after the backend died mid-stream: %v (code %s), want Unavailable", err, s.Code())
	}

	// Nothing left to take the call: UNAVAILABLE with the proxy's reason.
	_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{})
	if s := status.Convert(err); s.Code() != codes.Unavailable || s.Message() == "" {
		t.Errorf("no backend: %v, want Unavailable with a reason", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("the call hung")
	}
}

func TestGRPCHelpers(t *testing.T) {
	for _, tc := range []struct {
		ct   string
		want bool
	}{
		{"application/grpc", true}, {"application/grpc+proto", true}, {"application/grpc;charset=utf-8", true},
		{"application/grpc-web", false}, {"application/json", false}, {"", false},
	} {
		h := http.Header{}
		h.Set("Content-Type", tc.ct)
		if got := isGRPC(h); got != tc.want {
			t.Errorf("isGRPC(%q) = %v", tc.ct, got)
		}
	}
	if got := grpcMessage([]byte("502 Bad Gateway: 100% down\n")); got != "502 Bad Gateway: 100%25 down" {
		t.Errorf("grpcMessage: %q", got)
	}
	if got := grpcHealthRequest("a.B"); string(got) != "\x00\x00\x00\x00\x05\x0a\x03a.B" {
		t.Errorf("request frame %q", got)
	}
	for _, tc := range []struct {
		body string
		want uint64
		err  bool
	}{
		{"\x00\x00\x00\x00\x02\x08\x01", 1, false},
		{"\x00\x00\x00\x00\x00", 0, false},                   // UNKNOWN: field absent
		{"\x00\x00\x00\x00\x06\x12\x02hi\x08\x02", 2, false}, // an unknown field skipped
		{"\x01\x00\x00\x00\x02\x08\x01", 0, true},            // compressed
		{"\x00\x00\x00\x00\x05\x08\x01", 0, true},            // truncated
		{"\x00\x00\x00", 0, true},                            // no frame
		{"\x00\x00\x00\x00\x02\x08\xff", 0, true},            // broken varint
	} {
		got, err := grpcHealthStatus([]byte(tc.body))
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("grpcHealthStatus(%q) = %d, %v", tc.body, got, err)
		}
	}
}

// TestH2BackendWithoutALPN: a proto=h2 backend that does not agree to h2
// fails its connections with a reason naming ALPN, and the client gets 502.
func TestH2BackendWithoutALPN(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	tb := startTLSBackend(t, "h1only", ca.Issue(t, "127.0.0.1"))
	p, url := startProxy(t, Config{
		Backends:   []string{tb.URL() + " proto=h2"},
		BackendTLS: &tls.Config{RootCAs: ca.Pool()},
		Health:     HealthConfig{Interval: -1},
	})
	status, body := get(t, newClient(t), url+"/")
	if status != http.StatusBadGateway || body != "502 Bad Gateway: backend unavailable\n" {
		t.Errorf("got %d %q", status, body)
	}
	if e := p.Pool().Backends()[0].LastError(); !strings.Contains(e, `backend does not speak HTTP/2 (ALPN "", want h2)`) {
		t.Errorf("last error %q", e)
	}
}
