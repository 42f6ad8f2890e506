// A grpc-go health server for fdsoak's benchmark: the same server for both
// drivers. Built offline from Debian's packaged grpc-go (GOPATH mode) by
// bench/run. Prints "listening on ADDR", then serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	fmt.Printf("listening on %s\n", lis.Addr())
	os.Stdout.Sync()
	if err := s.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
