"""A grpcio client that makes a channel per call and drops it without
close(), as many programs do: CPython frees each channel at once by
reference counting, and grpc's finalizer closes its socket. With `nogc`
the cycle collector is off (gc.disable(), as latency-sensitive services
do), so only reference counting frees anything. Prints its descriptor
count before and after, once the count has settled.

    python3 dropped.py TARGET COUNT gc|nogc            # COUNT calls, then exit
    python3 dropped.py TARGET forever gc|nogc          # a call every 20 ms until killed
"""
import gc
import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

target, count, collector = sys.argv[1], sys.argv[2], sys.argv[3]
if collector == "nogc":
    gc.disable()
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]


def fds():
    return len(os.listdir("/proc/self/fd")) - 1


def one_call():
    channel = grpc.insecure_channel(target, options=OPTIONS)
    stub = health_pb2_grpc.HealthStub(channel)
    stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)


def settled():
    """The count once it has not changed for 300 ms (at most 5 s)."""
    last, since, deadline = fds(), time.monotonic(), time.monotonic() + 5
    while time.monotonic() < deadline and time.monotonic() - since < 0.3:
        time.sleep(0.02)
        now = fds()
        if now != last:
            last, since = now, time.monotonic()
    return last


one_call()
before = settled()
if count == "forever":
    print("before", before, flush=True)
    while True:
        one_call()
        time.sleep(0.02)
for _ in range(int(count)):
    one_call()
print("before", before, "after", settled(), flush=True)
