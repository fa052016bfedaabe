// Command backend-server is a small fasthttp backend for trying, testing and
// benchmarking the load balancer. It answers with a message naming its port:
//
//	PORT=8081 backend-server
//	backend-server -port=8082
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/hostname"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("backend-server", flag.ContinueOnError)
	defaultPort := "8081"
	if p := os.Getenv("PORT"); p != "" {
		defaultPort = p
	}
	port := fs.String("port", defaultPort, "port to listen on (default from $PORT, else 8081)")
	host := fs.String("host", "", "address to listen on (default all interfaces)")
	name := fs.String("name", "", "name to answer with (default the port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, ok := hostname.Port(*port); !ok {
		fmt.Fprintf(os.Stderr, "backend-server: invalid port %q: want 1-65535\n", *port)
		return 2
	}
	if *name == "" {
		*name = *port
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	addr := net.JoinHostPort(*host, *port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("cannot listen", "addr", addr, "error", err)
		return 1
	}
	srv := backend.NewServer(backend.New(*name))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("Backend server is running on port " + *port)

	select {
	case err := <-errc:
		log.Error("server stopped", "error", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		log.Warn("shutdown cut short", "error", err)
	}
	return 0
}
