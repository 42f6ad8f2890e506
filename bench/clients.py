"""Reference gRPC health-check clients in Python grpcio, for bench/run.

    python3 clients.py sync  ADDR CONCURRENCY SECONDS
    python3 clients.py aio   ADDR CONCURRENCY SECONDS [RATE]

Each makes unary grpc.health.v1.Health/Check calls over one shared channel
and prints the number of calls that succeeded. `sync` uses CONCURRENCY
threads; `aio` uses CONCURRENCY asyncio tasks, or, with RATE, starts RATE
calls per second on a timetable with at most CONCURRENCY in flight. The
parent process measures this process's CPU time.
"""
import asyncio
import sys
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def run_sync(addr, conc, secs):
    channel = grpc.insecure_channel(addr)
    stub = health_pb2_grpc.HealthStub(channel)
    req = health_pb2.HealthCheckRequest()
    stub.Check(req, timeout=5)
    done = [0] * conc
    end = time.monotonic() + secs

    def worker(i):
        while time.monotonic() < end:
            stub.Check(req, timeout=5)
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    return sum(done)


async def run_aio(addr, conc, secs, rate):
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        req = health_pb2.HealthCheckRequest()
        await stub.Check(req, timeout=5)
        end = time.monotonic() + secs
        done = 0

        async def one():
            nonlocal done
            await stub.Check(req, timeout=5)
            done += 1

        if rate is None:
            async def worker():
                while time.monotonic() < end:
                    await one()

            await asyncio.gather(*(worker() for _ in range(conc)))
        else:
            start = time.monotonic()
            pending = set()
            i = 0
            while True:
                due = start + i / rate
                if due >= end:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending = {t for t in pending if not t.done()}
                if len(pending) < conc:
                    pending.add(asyncio.create_task(one()))
                i += 1
            await asyncio.gather(*pending)
        return done


def main():
    mode, addr, conc, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else None
    if mode == "sync":
        print(run_sync(addr, conc, secs))
    else:
        print(asyncio.run(run_aio(addr, conc, secs, rate)))


if __name__ == "__main__":
    main()
