// A grpc-go health checker, as teams write them: one ClientConn, a Check
// every 100 ms, for the channel ledger's tests. In retry-leak mode a failed
// check retries on a fresh ClientConn (newConn) and never closes the old
// one: the bug that started fdsoak. In good mode a failed check closes the
// old ClientConn before it dials again. Built offline from Debian's
// packaged grpc-go (GOPATH mode).
//
//	gochecker TARGET good|retry-leak
package main

import (
	"context"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// newConn dials the target on a ClientConn of its own, each with its own connection.
//
//go:noinline
func newConn(target string) *grpc.ClientConn {
	cc, err := grpc.Dial(target, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	return cc
}

func check(cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: gochecker TARGET good|retry-leak")
	}
	target, mode := os.Args[1], os.Args[2]
	cc := newConn(target)
	for {
		if err := check(cc); err != nil {
			if mode == "good" {
				cc.Close()
			}
			cc = newConn(target)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
