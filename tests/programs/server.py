"""A Python grpcio health server, clean or with a leak a team might ship.

    python3 server.py PORT clean
    python3 server.py PORT leak-file N        every N-th Check opens a file and keeps it
    python3 server.py PORT backend-channel    every Check asks a backend over a new channel, never closed
"""
import sys
import tempfile
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

port, mode = sys.argv[1], sys.argv[2]
every = int(sys.argv[3]) if len(sys.argv) > 3 else 10
kept = []
audit_log = tempfile.NamedTemporaryFile(prefix="fdsoak-test-audit-", delete=False).name


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self):
        self.checks = 0

    def Check(self, request, context):
        self.checks += 1
        if mode == "leak-file" and self.checks % every == 0:
            kept.append(open(audit_log, "a"))
        if mode == "backend-channel":
            backend = grpc.insecure_channel("127.0.0.1:%s" % port, options=[("grpc.use_local_subchannel_pool", 1)])
            kept.append(backend)
            grpc.channel_ready_future(backend).result(timeout=1)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
server.add_insecure_port("127.0.0.1:%s" % port)
server.start()
server.wait_for_termination()
