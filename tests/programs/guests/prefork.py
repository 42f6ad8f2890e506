"""A pre-fork server, as gunicorn and uWSGI are: it binds, forks WORKERS
children that accept on the shared socket, and before that warms a
multiprocessing pool (fork start method) whose children open files. Each
answer is the worker's PID and its descriptor count. Prints "listening
PORT" once serving, and runs until stdin closes.

    python3 prefork.py WORKERS
"""
import multiprocessing
import os
import signal
import socket
import sys


def read_hostname(_):
    with open("/etc/hostname") as f:
        return len(f.read()) > 0


def fds():
    return len(os.listdir("/proc/self/fd")) - 1


def serve(listener):
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"%d %d\n" % (os.getpid(), fds()))


if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    with multiprocessing.Pool(2) as pool:
        assert all(pool.map(read_hostname, range(40)))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    children = []
    for _ in range(int(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            serve(listener)
        children.append(pid)
    print("listening", listener.getsockname()[1], flush=True)
    sys.stdin.read()
    for pid in children:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
