// A grpc-go health server that leaks, for the kernel ledger's tests: it is
// Go (raw system calls, no libc), so only the kernel sees its descriptors.
// Built offline from Debian's packaged grpc-go (GOPATH mode).
//
//	-leak none   a clean server
//	-leak file   every Check opens a file and keeps it (leakFile)
//	-leak some   every Check opens a file, and keeps one in ten (leakSome)
//	-leak dup    every accepted connection is dup'd and the copy kept (keepDup),
//	             so it stays in CLOSE_WAIT once the client leaves
//
//	-tls-cert F -tls-key K   serve over TLS with this certificate and key
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var (
	mu     sync.Mutex
	kept   []*os.File
	opened int
)

type health struct {
	healthpb.UnimplementedHealthServer
	leak string
}

func (h *health) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch h.leak {
	case "file":
		leakFile()
	case "some":
		leakSome()
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
	leak := flag.String("leak", "none", "none | file | some | dup")
	cert := flag.String("tls-cert", "", "PEM certificate: serve over TLS")
	key := flag.String("tls-key", "", "PEM key of -tls-cert")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *leak == "dup" {
		lis = dupListener{lis}
	}
	var opts []grpc.ServerOption
	if *cert != "" {
		creds, err := credentials.NewServerTLSFromFile(*cert, *key)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, &health{leak: *leak})
	fmt.Printf("listening on %s\n", lis.Addr())
	os.Stdout.Sync()
	if err := s.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
