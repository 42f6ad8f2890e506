"""Holds N open TCP sockets (N/2 loopback connections, both ends) plus a
listener, prints "ready", and waits for its stdin to close. For bench/run's
sampler-cost figures and the sampler's tests.

    holder.py N [PEERS]

With PEERS > 1, the client ends are bound to PEERS source addresses in turn,
127.0.0.2 onwards, so the accepted ends have that many distinct peers."""
import resource
import socket
import sys

n = int(sys.argv[1])
peers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, n + 256), hard), hard))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
held = []
while len(held) < n:
    client = socket.socket()
    if peers > 1:
        client.bind((f"127.0.0.{2 + (len(held) // 2) % peers}", 0))
    client.connect(listener.getsockname())
    server, _ = listener.accept()
    held += [client, server]
print("ready", flush=True)
sys.stdin.read()
