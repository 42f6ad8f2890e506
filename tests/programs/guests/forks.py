"""A program that forks often while fdsoak's agent publishes: each child
opens a file and exits. A child that inherited a held lock would hang on its
first open. Prints how many children finished, how many hung (killed after
a deadline) and its own descriptor count at the end.

    python3 forks.py COUNT
"""
import os
import signal
import sys
import threading
import time

count = int(sys.argv[1])
done = hung = 0
# Other threads open files meanwhile, as a server's would.
stop = threading.Event()


def busy():
    while not stop.is_set():
        with open("/dev/null") as f:
            f.read(0)


workers = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
for w in workers:
    w.start()
for _ in range(count):
    pid = os.fork()
    if pid == 0:
        with open("/etc/hostname") as f:
            f.read()
        os._exit(0)
    deadline = time.monotonic() + 5
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            done += os.waitstatus_to_exitcode(status) == 0
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.0005)
stop.set()
for w in workers:
    w.join()
print("done", done, "hung", hung, "fds", len(os.listdir("/proc/self/fd")) - 1, flush=True)
