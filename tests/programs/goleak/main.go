// A grpc-go health server that leaks, for the kernel ledger's tests: it is
// Go (raw system calls, no libc), so only the kernel sees its descriptors.
// Built offline from Debian's packaged grpc-go (GOPATH mode).
//
//	-leak none   a clean server
//	-leak file   every Check opens a file and keeps it (leakFile)
//	-leak some   every Check opens a file, and keeps one in ten (leakSome)
//	-leak dup    every accepted connection is dup'd and the copy kept (keepDup),
//	             so it stays in CLOSE_WAIT once the client leaves
//	-leak channel  every 10th Check asks a backend (the server itself, or
//	             -backend ADDR) on a fresh ClientConn and never closes it
//	             (askBackend); one shared ClientConn, made at start
//	             (sharedBackend), asks it on every other 10th Check
//	-leak channel-closed  the same, closing each fresh ClientConn
//	-every N     with a channel mode: every Nth Check instead of every 20th
//	             (1: every Check dials a fresh ClientConn; no shared one then)
//
//	-tls-cert F -tls-key K   serve over TLS with this certificate and key
//	-max-age D   age each connection out after D: grpc-go sends GOAWAY (NO_ERROR,
//	             debug data "max_age") and closes it D later (MaxConnectionAge and
//	             its grace), whatever calls are still open on it
//	-slow D      every Check takes D before it answers
//	-min-ping D  a client that pings more often than every D is told
//	             GOAWAY (ENHANCE_YOUR_CALM, debug data "too_many_pings") and
//	             cut off (the keepalive enforcement policy's MinTime)
//
// Prints "listening on ADDR", then serves until killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

var (
	mu      sync.Mutex
	kept    []*os.File
	opened  int
	checks  int
	conns   []*grpc.ClientConn
	shared  *grpc.ClientConn
	backend string
	every   = 20
	slow    time.Duration
)

type health struct {
	healthpb.UnimplementedHealthServer
	leak string
}

func (h *health) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	time.Sleep(slow)
	if req.Service == "backend" {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	}
	switch h.leak {
	case "file":
		leakFile()
	case "some":
		leakSome()
	case "channel", "channel-closed":
		mu.Lock()
		checks++
		n := checks
		mu.Unlock()
		if n%every == 0 {
			askBackend(ctx, h.leak == "channel-closed")
		} else if n%every == every/2 {
			ask(ctx, shared)
		}
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

//go:noinline
func leakFile() {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	mu.Lock()
	kept = append(kept, f)
	mu.Unlock()
}

//go:noinline
func leakSome() {
	f, err := os.Open("/proc/self/limits")
	if err != nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	opened++
	if opened%10 == 0 {
		kept = append(kept, f)
	} else {
		f.Close()
	}
}

// askBackend asks the backend on a ClientConn of its own, closed only when told to.
//
//go:noinline
func askBackend(ctx context.Context, closeIt bool) {
	cc, err := grpc.Dial(backend, grpc.WithInsecure())
	if err != nil {
		return
	}
	ask(ctx, cc)
	if closeIt {
		cc.Close()
		return
	}
	mu.Lock()
	conns = append(conns, cc)
	mu.Unlock()
}

// sharedBackend makes the one ClientConn shared by every Check.
//
//go:noinline
func sharedBackend() *grpc.ClientConn {
	cc, err := grpc.DialContext(context.Background(), backend, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	return cc
}

func ask(ctx context.Context, cc *grpc.ClientConn) {
	healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "backend"})
}

// dupListener keeps a copy of every connection it accepts.
type dupListener struct{ net.Listener }

func (l dupListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		keepDup(c)
	}
	return c, err
}

//go:noinline
func keepDup(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		if f, err := tc.File(); err == nil {
			mu.Lock()
			kept = append(kept, f)
			mu.Unlock()
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	leak := flag.String("leak", "none", "none | file | some | dup | channel | channel-closed")
	flag.StringVar(&backend, "backend", "", "the backend's address (default: this server)")
	flag.IntVar(&every, "every", 20, "with a channel mode: every Nth Check dials")
	cert := flag.String("tls-cert", "", "PEM certificate: serve over TLS")
	key := flag.String("tls-key", "", "PEM key of -tls-cert")
	maxAge := flag.Duration("max-age", 0, "age connections out after this long (0: never)")
	flag.DurationVar(&slow, "slow", 0, "every Check takes this long")
	minPing := flag.Duration("min-ping", 0, "the least time between a client's pings (0: grpc-go's default)")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *leak == "dup" {
		lis = dupListener{lis}
	}
	if backend == "" {
		backend = lis.Addr().String()
	}
	if every < 1 {
		log.Fatal("-every must be at least 1")
	}
	if (*leak == "channel" || *leak == "channel-closed") && every > 1 {
		shared = sharedBackend()
	}
	var opts []grpc.ServerOption
	if *cert != "" {
		creds, err := credentials.NewServerTLSFromFile(*cert, *key)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	if *maxAge > 0 {
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge:      *maxAge,
			MaxConnectionAgeGrace: *maxAge,
		}))
	}
	if *minPing > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: *minPing}))
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, &health{leak: *leak})
	fmt.Printf("listening on %s\n", lis.Addr())
	os.Stdout.Sync()
	if err := s.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
