"""A Python grpcio health checker, as teams write them: one channel, a
Check every 100 ms. In `retry-leak` mode, a failed check retries on a fresh
channel and never closes the old one: the bug that started fdsoak.
`aio-retry-leak` is the same bug with grpc.aio.

    python3 checker.py TARGET good|retry-leak|aio-retry-leak
"""
import asyncio
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

target, mode = sys.argv[1], sys.argv[2]
# Each channel its own connection, as with channels whose options differ;
# grpc would otherwise share one connection between channels to a target.
OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
channels = []


def new_channel():
    channel = grpc.insecure_channel(target, options=OPTIONS)
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


async def new_aio_channel():
    channel = grpc.aio.insecure_channel(target, options=OPTIONS)
    channels.append(channel)
    return channel


async def aio_checks():
    stub = health_pb2_grpc.HealthStub(await new_aio_channel())
    while True:
        try:
            await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
        except grpc.RpcError:
            stub = health_pb2_grpc.HealthStub(await new_aio_channel())
        await asyncio.sleep(0.1)


if mode == "aio-retry-leak":
    asyncio.run(aio_checks())
stub = health_pb2_grpc.HealthStub(new_channel())
while True:
    stub = check_with_retry(stub)
    time.sleep(0.1)
