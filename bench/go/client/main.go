// A grpc-go Health/Check client for fdsoak's benchmark: N calls in flight
// on one connection for a number of seconds, each status checked. Prints the
// number of OK calls. bench/run measures its CPU time with wait4.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", "", "server address")
	inflight := flag.Int("inflight", 8, "calls in flight")
	secs := flag.Float64("secs", 10, "how long to run")
	deadline := flag.Duration("deadline", 5*time.Second, "per-call deadline, as fdsoak sets one (0: none)")
	flag.Parse()
	conn, err := grpc.Dial(*addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	until := time.Now().Add(time.Duration(*secs * float64(time.Second)))
	var ok, failed int64
	var wg sync.WaitGroup
	for i := 0; i < *inflight; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &healthpb.HealthCheckRequest{}
			for time.Now().Before(until) {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if *deadline > 0 {
					ctx, cancel = context.WithTimeout(ctx, *deadline)
				}
				resp, err := client.Check(ctx, req)
				cancel()
				if err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING {
					atomic.AddInt64(&ok, 1)
				} else {
					atomic.AddInt64(&failed, 1)
				}
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		log.Printf("%d calls failed", failed)
	}
	fmt.Println(ok)
}
