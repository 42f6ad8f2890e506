"""A Python grpcio health server, clean or with a leak a team might ship.

    python3 server.py PORT clean
    python3 server.py PORT leak-file N        every N-th Check opens a file and keeps it
    python3 server.py PORT backend-channel    every Check asks a backend over a new channel, never closed
    python3 server.py PORT backend-retry-leak BACKEND_PORT
        every Check asks the backend on one channel; a failed call is retried on
        a fresh channel that replaces it, and the old one is never closed
    python3 server.py PORT backend-shared BACKEND_PORT
        the same, but the retry goes out on the shared channel
    python3 server.py PORT die-after N        at the N-th Check, says its pool ran out of
        descriptors on stderr and exits with status 17
"""
import os
import sys
import tempfile
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

port, mode = sys.argv[1], sys.argv[2]
every = int(sys.argv[3]) if len(sys.argv) > 3 else 10
kept = []
# Each channel its own connection, as with channels whose options differ.
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


class Backend:
    """A dependency asked on every Check, with one retry on failure."""

    def __init__(self, port):
        self.target = "127.0.0.1:%s" % port
        self.stub = self.fresh()

    def fresh(self):
        channel = grpc.insecure_channel(self.target, options=OPTIONS)
        kept.append(channel)
        return health_pb2_grpc.HealthStub(channel)

    def ask(self):
        try:
            self.stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.3)
            return True
        except grpc.RpcError:
            if mode == "backend-retry-leak":
                self.stub = self.fresh()
        try:
            self.stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.3)
            return True
        except grpc.RpcError:
            return False


dependency = Backend(sys.argv[3]) if mode in ("backend-retry-leak", "backend-shared") else None
audit_log = tempfile.NamedTemporaryFile(prefix="fdsoak-test-audit-", delete=False).name


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self):
        self.checks = 0

    def Check(self, request, context):
        self.checks += 1
        if mode == "die-after" and self.checks == every:
            print("pool db-main: 64 of 64 connections in use", file=sys.stderr, flush=True)
            print("FATAL: connection pool exhausted: too many open files (pool=db-main)", file=sys.stderr, flush=True)
            os._exit(17)
        if mode == "leak-file" and self.checks % every == 0:
            kept.append(open(audit_log, "a"))
        if mode == "backend-channel":
            backend = grpc.insecure_channel("127.0.0.1:%s" % port, options=[("grpc.use_local_subchannel_pool", 1)])
            kept.append(backend)
            grpc.channel_ready_future(backend).result(timeout=1)
        if dependency is not None and not dependency.ask():
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
server.add_insecure_port("127.0.0.1:%s" % port)
server.start()
print("serving health on 127.0.0.1:%s (%s)" % (port, mode), flush=True)
server.wait_for_termination()
