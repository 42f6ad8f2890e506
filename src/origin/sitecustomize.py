# fdsoak's origin agent for Python. fdsoak puts this file first on the
# PYTHONPATH of a program it starts with origins on (`fdsoak run --origin`),
# and Python imports it at start-up as `sitecustomize`. It records where the
# program opens descriptors and gRPC channels, and publishes the live set to
# $FDSOAK_ORIGIN_DIR/<pid>.json, which fdsoak reads when it fingerprints the
# process. It then imports any other `sitecustomize` on the path, so one the
# program already had still runs.
#
# It is a guest: nothing is wrapped whose result or errors it could change.
# Files are seen through the audit hook's `open` event (Python's `open` and
# `os.open`), joined to descriptors by path when the table is published;
# sockets through `socket.socket` and its `accept`; channels through
# grpc.insecure_channel, grpc.secure_channel and grpc.aio's, released by
# close(), by leaving the context manager, or by garbage collection. Every
# hook catches its own errors. A fork starts the publisher again in the child.

import os
import sys


def _install(out_dir):
    import json
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
    state = {"version": 0, "full": False}
    lock = threading.Lock()
    local = threading.local()

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
        with lock:
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

    def released(key):
        with lock:
            if channels.pop(key, None) is not None:
                state["version"] += 1

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
                key = id(channel)
                # `_close` is what close(), leaving the context manager and grpc.aio's close share.
                attr = "_close" if hasattr(channel, "_close") else "close"
                real_close = getattr(channel, attr)

                def close(*a, **k):
                    released(key)
                    return real_close(*a, **k)

                setattr(channel, attr, close)
                note("channel", key, frames_here(2), str(target))
                try:
                    weakref.finalize(channel, released, key)
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

    def snapshot():
        with lock:
            version = state["version"]
            open_counts = {p: dict(c) for p, c in opens.items()}
            socket_items = list(sockets.items())
            channel_items = list(channels.values())
            stack_copy = list(stack_list)
            full = state["full"]
        fds = []
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            names = []
        for name in names:
            try:
                fd = int(name)
                link = os.readlink("/proc/self/fd/" + name)
            except (ValueError, OSError):
                continue
            path = link[: -len(" (deleted)")] if link.endswith(" (deleted)") else link
            counts = open_counts.get(path)
            if counts:
                fds.append([fd, link, max(counts, key=counts.get)])
        live = {fd: v for fd, v in socket_items}
        for fd, (link, index) in live.items():
            try:
                if os.readlink("/proc/self/fd/%d" % fd) == link:
                    fds.append([fd, link, index])
            except OSError:
                pass
        table = {
            "version": 1,
            "language": "python",
            "pid": os.getpid(),
            "full": full,
            "stacks": [[list(f) for f in s] for s in stack_copy],
            "fds": fds,
            "channels": [[t, i] for t, i in channel_items],
        }
        return version, table

    def publish():
        path = os.path.join(out_dir, "%d.json" % os.getpid())
        tmp = path + ".tmp"
        local.busy = True
        with open(tmp, "w") as f:
            json.dump(snapshot()[1], f)
        os.replace(tmp, path)

    def publisher():
        import time

        while True:
            try:
                publish()
            except Exception:
                pass
            time.sleep(0.25)

    def start():
        threading.Thread(target=publisher, name="fdsoak-origin", daemon=True).start()

    start()
    os.register_at_fork(after_in_child=start)


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
