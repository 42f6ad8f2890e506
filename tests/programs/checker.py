"""A Python grpcio health checker, as teams write them: one channel, a
Check every 100 ms. In `retry-leak` mode, a failed check retries on a fresh
channel and never closes the old one: the bug that started fdsoak.

    python3 checker.py TARGET good|retry-leak
"""
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

target, mode = sys.argv[1], sys.argv[2]
channels = []


def new_channel():
    # Each channel its own connection, as with channels whose options differ;
    # grpc would otherwise share one connection between channels to a target.
    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    channels.append(channel)
    return channel


def check_with_retry(stub):
    try:
        stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
        return stub
    except grpc.RpcError:
        if mode == "retry-leak":
            return health_pb2_grpc.HealthStub(new_channel())
        return stub


stub = health_pb2_grpc.HealthStub(new_channel())
while True:
    stub = check_with_retry(stub)
    time.sleep(0.1)
