"""Holds N open TCP sockets (N/2 loopback connections, both ends) plus a
listener, prints "ready", and waits for its stdin to close. For bench/run's
sampler-cost figures."""
import resource
import socket
import sys

n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, n + 256), hard), hard))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
held = []
while len(held) < n:
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    held += [client, server]
print("ready", flush=True)
sys.stdin.read()
