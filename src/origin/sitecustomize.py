# fdsoak's origin agent for Python. fdsoak puts this file first on the
# PYTHONPATH of a program it starts with origins on (`fdsoak run --origin`),
# and Python imports it at start-up as `sitecustomize`. It records where the
# program opens descriptors and gRPC channels, and publishes the live set to
# a private memfd mapping of its own process ("fdsoak-pytab"), which fdsoak
# reads from outside when it fingerprints the process. It then imports any other `sitecustomize` on the path, so one the
# program already had still runs.
#
# It is a guest, and must not change what the program does:
# - nothing is wrapped whose result or errors it could change, and every
#   hook catches its own errors;
# - it stores nothing on the program's objects: a channel is known by its
#   id, its release seen through a wrapper on its class and a weak
#   finalizer, so no reference cycle keeps a dropped channel alive (with the
#   garbage collector off as well as on);
# - no lock of its own is held across a fork: a fork waits for the
#   publisher's write to end, and the child starts with fresh locks and a
#   publisher of its own, which publishes under the child's PID;
# - publishing opens no descriptor and no file: the table is in memory.
# Files are seen through the audit hook's `open` event (Python's `open` and
# `os.open`), joined to descriptors by path when the table is published;
# sockets through `socket.socket` and its `accept`; channels through
# grpc.insecure_channel, grpc.secure_channel and grpc.aio's, released by
# close(), by leaving the context manager, or by garbage collection.

import os
import sys


def _install(out_dir):
    import collections
    import json
    import mmap
    import struct
    import sysconfig
    import threading
    import weakref

    max_frames = 16
    max_entries = 20000
    lib_roots = tuple(
        os.path.realpath(p) + os.sep
        for p in {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
        if p
    )
    stacks = {}  # frames -> index
    stack_list = []
    opens = {}  # absolute path -> {stack index: count}
    sockets = {}  # fd -> (link, stack index)
    channels = {}  # id(channel) -> (target, stack index)
    channel_sites = {}  # (target, stack index) -> [created, closed]
    state = {"version": 0, "full": False}
    # locks[0] guards the tables (held for dict updates and copies only); locks[1] the
    # publisher's file work, which a fork waits out. A child gets fresh ones.
    locks = [threading.Lock(), threading.Lock()]
    local = threading.local()
    interval = 0.25
    try:
        interval = max(0.001, float(os.environ.get("FDSOAK_ORIGIN_INTERVAL", "0.25")))
    except ValueError:
        pass

    library_files = {}

    def is_library(filename):
        known = library_files.get(filename)
        if known is None:
            real = os.path.realpath(filename) if not filename.startswith("<") else filename
            known = filename.startswith("<") or real.startswith(lib_roots) or os.sep + "grpc" + os.sep in real
            library_files[filename] = known
        return known

    def frames_here(skip):
        """The caller's stack, innermost first, as (function, file, line, library) tuples."""
        frame = sys._getframe(skip)
        frames = []
        while frame is not None and len(frames) < max_frames:
            code = frame.f_code
            frames.append((code.co_name, code.co_filename, frame.f_lineno, is_library(code.co_filename)))
            frame = frame.f_back
        return tuple(frames)

    def intern(frames):
        """The index of a stack in the table (under the lock)."""
        index = stacks.get(frames)
        if index is None:
            index = len(stack_list)
            stacks[frames] = index
            stack_list.append(frames)
        return index

    def busy():
        return getattr(local, "busy", False)

    def note(kind, key, frames, extra=None):
        with locks[0]:
            drain()
            table = opens if kind == "open" else sockets if kind == "socket" else channels
            if key not in table and len(table) >= max_entries:
                state["full"] = True
                return
            index = intern(frames)
            if kind == "open":
                counts = table.setdefault(key, {})
                counts[index] = counts.get(index, 0) + 1
            else:
                table[key] = (extra, index)
            if kind == "channel":
                channel_sites.setdefault((extra, index), [0, 0])[0] += 1
            state["version"] += 1

    def audit(event, args):
        if event != "open" or busy():
            return
        try:
            path = args[0]
            if isinstance(path, int):
                return
            path = os.path.abspath(os.fsdecode(path))
            if path.startswith(out_dir):
                return
            local.busy = True
            try:
                note("open", path, frames_here(2))
            finally:
                local.busy = False
        except Exception:
            pass

    sys.addaudithook(audit)

    import socket as socket_module

    def note_socket(sock, skip):
        if busy():
            return
        local.busy = True
        try:
            fd = sock.fileno()
            if fd >= 0:
                note("socket", fd, frames_here(skip), os.readlink("/proc/self/fd/%d" % fd))
        except Exception:
            pass
        finally:
            local.busy = False

    real_init = socket_module.socket.__init__
    real_accept = socket_module.socket.accept

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        note_socket(self, 3)

    def accept(self):
        conn, addr = real_accept(self)
        note_socket(conn, 3)
        return conn, addr

    init.__wrapped__ = real_init
    accept.__wrapped__ = real_accept
    socket_module.socket.__init__ = init
    socket_module.socket.accept = accept

    # Channels released, by id: appended by close() and by finalizers, which the
    # collector may run inside any of this agent's own code, so they take no lock;
    # applied under the lock before a channel is added and before a snapshot.
    dead = collections.deque()

    def released(key):
        dead.append(key)

    def drain():
        while dead:
            gone = channels.pop(dead.popleft(), None)
            if gone is not None:
                site = channel_sites.get(gone)
                if site is not None:
                    site[1] += 1
                state["version"] += 1

    wrapped_classes = set()

    def wrap_close(cls):
        """Wraps the close route of a channel class, once: `_close` is what close(),
        leaving the context manager and grpc.aio's close share. Nothing is stored on
        a channel, so a dropped one is freed as soon as the program lets go of it."""
        if cls in wrapped_classes:
            return
        wrapped_classes.add(cls)
        attr = "_close" if hasattr(cls, "_close") else "close"
        real_close = getattr(cls, attr, None)
        if real_close is None or getattr(real_close, "__fdsoak__", False):
            return
        import inspect

        if inspect.iscoroutinefunction(real_close):

            async def close(self, *a, **k):
                released(id(self))
                return await real_close(self, *a, **k)

        else:

            def close(self, *a, **k):
                released(id(self))
                return real_close(self, *a, **k)

        close.__fdsoak__ = True
        close.__wrapped__ = real_close
        close.__name__ = getattr(real_close, "__name__", attr)
        close.__doc__ = getattr(real_close, "__doc__", None)
        setattr(cls, attr, close)

    def wrap_channel_maker(module, name):
        real = getattr(module, name, None)
        if real is None or getattr(real, "__fdsoak__", False):
            return

        def make(target, *args, **kwargs):
            channel = real(target, *args, **kwargs)
            if busy():
                return channel
            local.busy = True
            try:
                wrap_close(type(channel))
                key = id(channel)
                note("channel", key, frames_here(2), str(target))
                try:
                    weakref.finalize(channel, released, key).atexit = False
                except TypeError:
                    pass
            except Exception:
                pass
            finally:
                local.busy = False
            return channel

        make.__fdsoak__ = True
        make.__wrapped__ = real
        make.__name__ = getattr(real, "__name__", name)
        make.__doc__ = getattr(real, "__doc__", None)
        setattr(module, name, make)

    class GrpcHook:
        """Patches grpc's channel constructors once grpc (or grpc.aio) is imported."""

        def find_spec(self, fullname, path=None, target=None):
            if fullname not in ("grpc", "grpc.aio"):
                return None
            import importlib.machinery

            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is None or spec.loader is None:
                return spec
            real_exec = spec.loader.exec_module

            def exec_module(module):
                real_exec(module)
                try:
                    for name in ("insecure_channel", "secure_channel"):
                        wrap_channel_maker(module, name)
                except Exception:
                    pass

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, GrpcHook())

    def copy_tables():
        with locks[0]:
            drain()
            return state["version"], (
                {p: dict(c) for p, c in opens.items()},
                list(sockets.items()),
                list(channels.values()),
                list(stack_list),
                state["full"],
                [[t, i, c[0], c[1]] for (t, i), c in channel_sites.items()],
            )

    def snapshot(copies):
        """The table to publish: files by path (fdsoak joins them to the descriptors
        whose link names the path), and the sockets still open as they were seen."""
        open_counts, socket_items, channel_items, stack_copy, full, site_counts = copies
        fds = []
        for fd, (link, index) in socket_items:
            try:
                if os.readlink("/proc/self/fd/%d" % fd) == link:
                    fds.append([fd, link, index])
            except OSError:
                pass
        return {
            "version": 1,
            "language": "python",
            "pid": os.getpid(),
            "full": full,
            "stacks": [[list(f) for f in s] for s in stack_copy],
            "fds": fds,
            "opens": [[p, max(c, key=c.get)] for p, c in open_counts.items() if c],
            "channels": [[t, i] for t, i in channel_items],
            "channel_sites": site_counts,
        }

    published = {"pid": None, "version": None}

    # The table lives in this process's own memory: a private mapping of a memfd
    # named fdsoak-pytab, whose descriptor is closed once mapped. Publishing opens
    # nothing; fdsoak reads the mapping from outside. A child after fork gets a
    # copy-on-write copy, which its own publisher rewrites under its PID.
    capacity = 16 << 20
    header = struct.Struct("<8sQQ")  # magic, sequence (odd while written), length

    def map_table():
        """The mapping, through libc (Python's mmap would keep a descriptor open)."""
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        fd = os.memfd_create("fdsoak-pytab", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, capacity)
            addr = libc.mmap(None, capacity, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE, fd, 0)
        finally:
            os.close(fd)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError("mmap failed")
        m = memoryview((ctypes.c_char * capacity).from_address(addr)).cast("B")
        header.pack_into(m, 0, b"FDSOAKP1", 0, 0)
        return m

    region = map_table()
    published = {"pid": None, "version": None}

    def publish():
        """Rewrites the table if it changed since this process last wrote it."""
        local.busy = True
        version, copies = copy_tables()
        if published["pid"] == os.getpid() and published["version"] == version:
            return
        data = json.dumps(snapshot(copies)).encode()
        if len(data) > capacity - header.size:
            data = json.dumps({"version": 1, "full": True, "stacks": [], "fds": [], "channels": []}).encode()
        # A fork waits for the write to end, so a child never starts with a torn table.
        with locks[1]:
            _, seq, _ = header.unpack_from(region, 0)
            header.pack_into(region, 0, b"FDSOAKP1", seq + 1, 0)
            region[header.size : header.size + len(data)] = data
            header.pack_into(region, 0, b"FDSOAKP1", seq + 1, len(data))
            header.pack_into(region, 0, b"FDSOAKP1", seq + 2, len(data))
        published["pid"], published["version"] = os.getpid(), version

    def publisher():
        import time

        while True:
            try:
                publish()
            except Exception:
                pass
            time.sleep(interval)

    def start():
        threading.Thread(target=publisher, name="fdsoak-origin", daemon=True).start()

    def before_fork():
        locks[1].acquire()

    def after_fork_in_parent():
        locks[1].release()

    def after_fork_in_child():
        locks[:] = [threading.Lock(), threading.Lock()]
        start()

    start()
    os.register_at_fork(before=before_fork, after_in_parent=after_fork_in_parent, after_in_child=after_fork_in_child)


def _chain():
    """Runs the `sitecustomize` this one shadows, if the path holds another."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["_fdsoak_chained_sitecustomize"] = module
    spec.loader.exec_module(module)


_out = os.environ.get("FDSOAK_ORIGIN_DIR")
if _out and os.path.isdir(_out):
    try:
        _install(os.path.abspath(_out) + os.sep)
    except Exception:
        pass
_chain()
