"""Runs fdsoak's benchmark and prints a table of figures and ratios.

Started by bench/run (which installs the tools). Every comparison is made in
the same run on the same machine, so read the ratios, not the absolute
numbers: the machine is shared and noisy.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FDSOAK = os.path.join(ROOT, "target", "release", "fdsoak")
QUICK = "--quick" in sys.argv
SECS = 4 if QUICK else 10
TMP = tempfile.mkdtemp(prefix="fdsoak-bench-")


def run_child_cpu(cmd):
    """Runs cmd and returns (stdout, cpu seconds) measured with wait4."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(r)
        os.execvp(cmd[0], cmd)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    return b"".join(chunks).decode(), usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


class Server:
    def __init__(self, *args):
        self.p = subprocess.Popen([FDSOAK, "serve", "--port", "0", *args], stdout=subprocess.PIPE, text=True)
        self.addr = self.p.stdout.readline().split()[-1]

    def stop(self):
        self.p.terminate()
        self.p.wait()


def scenario(name, workload, secs, interval="1s", kind="health_check"):
    path = os.path.join(TMP, f"{name}.toml")
    with open(path, "w") as f:
        f.write(f'name = "{name}"\n[sampler]\ninterval = "{interval}"\n')
        f.write(f'[[phases]]\nname = "load"\nduration = "{secs}s"\n  [[phases.workloads]]\n  kind = "{kind}"\n{workload}\n')
    return path


def fdsoak_run(name, workload, secs, target_args, interval="1s", kind="health_check"):
    out_dir = os.path.join(TMP, name)
    cmd = [FDSOAK, "run", scenario(name, workload, secs, interval, kind), "-q", "--out", out_dir, *target_args]
    _, cpu, code = run_child_cpu(cmd)
    with open(os.path.join(out_dir, "summary.json")) as f:
        s = json.load(f)
    return s, cpu, out_dir


def row(cols, widths):
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cols, widths)))


def driver_efficiency():
    print(f"\n## Driver efficiency: unary Health/Check against `fdsoak serve`, one shared channel, {SECS} s each\n")
    srv = Server()
    results = []
    try:
        for label, workload in [("fdsoak, 8 in flight (saturation)", "  concurrency = 8"), ("fdsoak, 2000/s fixed rate", "  rate = 2000")]:
            s, cpu, _ = fdsoak_run("eff", workload, SECS, ["--target", srv.addr])
            calls = sum(w["ok"] for w in s["workloads"])
            results.append((label, calls, cpu))
        py = [sys.executable, os.path.join(ROOT, "bench", "clients.py")]
        for label, args in [("python grpcio sync, 8 threads", ["sync", srv.addr, "8", str(SECS)]),
                            ("python grpcio asyncio, 8 tasks", ["aio", srv.addr, "8", str(SECS)]),
                            ("python grpcio asyncio, 2000/s fixed rate", ["aio", srv.addr, "64", str(SECS), "2000"])]:
            out, cpu, _ = run_child_cpu(py + args)
            results.append((label, int(out.strip() or 0), cpu))
    finally:
        srv.stop()
    base = results[0][1] / results[0][2]
    w = (42, 9, 8, 14, 12)
    print(row(["client", "calls", "CPU s", "calls/CPU-s", "fdsoak ÷ it"], w))
    for label, calls, cpu in results:
        eff = calls / cpu if cpu else 0
        ref = results[1] if "fixed rate" in label else results[0]
        print(row([label, calls, f"{cpu:.2f}", f"{eff:,.0f}", f"{(ref[1] / ref[2]) / eff:.1f}×" if eff else "-"], w))
    return base


def build_go():
    """Builds the grpc-go client and server from Debian's packaged sources, offline (GOPATH mode)."""
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOPROXY="off", GOFLAGS="",
               GOCACHE=os.path.join(TMP, "gocache"))
    out = {}
    for name in ["client", "server"]:
        out[name] = os.path.join(TMP, f"grpc-go-{name}")
        subprocess.run(["go", "build", "-o", out[name], f"./bench/go/{name}"], cwd=ROOT, env=env, check=True)
    return out


def fdsoak_vs_grpc_go():
    rounds = 3 if QUICK else 5
    print(f"\n## fdsoak against the grpc-go client: Health/Check, 8 in flight on one channel, against one grpc-go server, {SECS} s each, alternated {rounds} times\n")
    go = build_go()
    srv = subprocess.Popen([go["server"]], stdout=subprocess.PIPE, text=True)
    addr = srv.stdout.readline().split()[-1]
    w = (6, 12, 16, 8, 20, 8)
    print(row(["round", "fdsoak", "grpc-go, 5 s dl", "ratio", "grpc-go, no deadline", "ratio"], w))
    ours, like, bare = [], [], []
    try:
        for i in range(rounds):
            s, cpu, _ = fdsoak_run("vs-go", "  concurrency = 8\n  deadline = \"5s\"", SECS, ["--target", addr])
            a = sum(x["ok"] for x in s["workloads"]) / cpu
            figures = []
            for deadline in ["5s", "0"]:
                out, cpu, code = run_child_cpu([go["client"], "-addr", addr, "-inflight", "8", "-secs", str(SECS), "-deadline", deadline])
                assert code == 0, "grpc-go client failed"
                figures.append(int(out.strip()) / cpu)
            ours.append(a)
            like.append(figures[0])
            bare.append(figures[1])
            print(row([i + 1, f"{a:,.0f}", f"{figures[0]:,.0f}", f"{a / figures[0]:.2f}×", f"{figures[1]:,.0f}", f"{a / figures[1]:.2f}×"], w))
    finally:
        srv.terminate()
        srv.wait()
    r_like = [a / b for a, b in zip(ours, like)]
    r_bare = [a / b for a, b in zip(ours, bare)]
    med = statistics.median
    print(row(["median", f"{med(ours):,.0f}", f"{med(like):,.0f}", f"{med(r_like):.2f}×", f"{med(bare):,.0f}", f"{med(r_bare):.2f}×"], w))
    print(f"\ncalls per CPU-second; ratio spread {min(r_like):.2f}×–{max(r_like):.2f}× like for like (both set a 5 s deadline per call),")
    print(f"{min(r_bare):.2f}×–{max(r_bare):.2f}× against grpc-go with no deadline at all (goal: both medians ≥ 1.5×). CPU is each whole")
    print("process's user + system time (wait4), fdsoak's start-up, sampler and report included; both count only calls answered OK.")


def timetable_lag():
    n = sampler_sizes()[0][-1]
    rounds = 2 if QUICK else 3
    print(f"\n## Timetable lag: 2000 calls/s for {SECS} s, sampled every second, with and without a sampled process holding {n:,} sockets, alternated {rounds} times\n")
    holder = Holder(n)
    srv = Server()
    w = (12, 26, 9, 9, 9, 9)
    print(row(["driver", "sampled", "p50 µs", "p99 µs", "max µs", "skipped"], w))
    p99 = {}
    try:
        for workers in ["1", "2"]:
            for _ in range(rounds):
                for label, extra in [(f"{n:,} sockets too", ["--pid", holder.pid]), ("the target only", [])]:
                    s, _, _ = fdsoak_run("lag", "  rate = 2000", SECS, ["--target", srv.addr, "--workers", workers, *extra], interval="1s")
                    wl = s["workloads"][0]
                    lag = wl["timetable_lag"]
                    p99.setdefault((workers, label), []).append(lag["p99_us"])
                    print(row([f"--workers {workers}", label, lag["p50_us"], lag["p99_us"], lag["max_us"], wl["skipped"]], w))
    finally:
        srv.stop()
        holder.stop()
    print("\nmedian p99 (µs): " + ", ".join(f"--workers {k[0]}, {k[1]}: {statistics.median(v):.0f}" for k, v in p99.items()))
    print("Lag is from each call's due time on the timetable to its first poll (the precise timer: see the timer_precision section). The")
    print("sampler reads the big process, and fingerprints it at timed moments, on threads of its own at lower")
    print("priorities, the extra link readers in the idle class (goal: p99 < 2 ms with the big process sampled).")


def timer_precision():
    rates = [200, 2000, 20000]
    rounds = 2 if QUICK else 3
    print(f"\n## Timetable lag by timer: health checks at {', '.join(f'{r:,}' for r in rates)} calls/s for {SECS} s against `fdsoak serve`, the precise timer (timerfd) and tokio's (FDSOAK_TIMER=tokio) alternated {rounds} times\n")
    srv = Server()
    w = (10, 16, 9, 9, 9, 9, 12)
    print(row(["rate", "timer", "p50 µs", "p99 µs", "max µs", "skipped", "CPU µs/call"], w))
    got, stages = {}, {}
    try:
        for _ in range(rounds):
            for rate in rates:
                for timer in ["precise", "tokio"]:
                    if timer == "tokio":
                        os.environ["FDSOAK_TIMER"] = "tokio"
                    try:
                        s, cpu, _ = fdsoak_run("timer", f"  rate = {rate}", SECS, ["--target", srv.addr])
                    finally:
                        os.environ.pop("FDSOAK_TIMER", None)
                    wl = s["workloads"][0]
                    lag = wl["timetable_lag"]
                    per_call = cpu * 1e6 / max(1, wl["started"])
                    got.setdefault((rate, timer), []).append((lag["p50_us"], lag["p99_us"], per_call))
                    print(row([f"{rate:,}/s", timer, lag["p50_us"], lag["p99_us"], lag["max_us"], wl["skipped"], f"{per_call:.1f}"], w))
            for rate in rates:
                stages.setdefault(rate, []).append(breakdown(srv.addr, rate))
    finally:
        srv.stop()
    med = statistics.median
    print("\nmedians: " + "; ".join(
        f"{r:,}/s {t}: p50 {med(v[0] for v in got[(r, t)]):.0f} µs, p99 {med(v[1] for v in got[(r, t)]):.0f} µs"
        for r in rates for t in ["precise", "tokio"]))
    print("Lag is from each call's due time to its first poll. CPU is the whole fdsoak process's user + system time")
    print("(wait4), start-up, sampler and report included, over the calls started.")
    print(f"\nWhere the lag comes from (precise timer, FDSOAK_LAG_BREAKDOWN): each stage's lateness from the due time, median of {rounds} rounds\n")
    w = (10, 20, 9, 9, 9)
    print(row(["rate", "stage", "p50 µs", "p99 µs", "max µs"], w))
    for rate in rates:
        for i, name in enumerate(["timer", "first_poll", "handed_to_h2", "first_byte_written"]):
            rows_ = [r[i] for r in stages[rate]]
            print(row([f"{rate:,}/s", name] + [f"{med(x[k] for x in rows_):.1f}" for k in ["p50_us", "p99_us", "max_us"]], w))
    print("timer: the timetable's timer returned; first_poll: the call's task ran (the report's timetable lag);")
    print("handed_to_h2: its stream opened; first_byte_written: the connection's next write to the socket.")


def breakdown(addr, rate):
    """One run at rate with FDSOAK_LAG_BREAKDOWN set; returns its four stages."""
    path = os.path.join(TMP, "breakdown.json")
    os.environ["FDSOAK_LAG_BREAKDOWN"] = path
    try:
        fdsoak_run("breakdown", f"  rate = {rate}", SECS, ["--target", addr])
    finally:
        os.environ.pop("FDSOAK_LAG_BREAKDOWN", None)
    with open(path) as f:
        return json.load(f)["stages"]


def h2load(addr, secs, rps=None, inflight=8):
    """h2load (nghttp2) sending Health/Check on one connection: (calls done, mean latency µs, CPU s)."""
    body = os.path.join(TMP, "check.grpc")
    with open(body, "wb") as f:
        f.write(b"\0\0\0\0\0")  # a gRPC frame: not compressed, 0 bytes of HealthCheckRequest
    cmd = ["h2load", "-c", "1", "-m", str(inflight), "-D", str(secs), "-d", body,
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           *(["--rps", str(rps)] if rps else []), f"http://{addr}/grpc.health.v1.Health/Check"]
    out, cpu, code = run_child_cpu(cmd)
    assert code == 0, f"h2load failed: {out}"
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out).group(2))
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out).group(1)
    scale = {"us": 1, "ms": 1e3, "s": 1e6}
    unit = re.match(r"[\d.]+(\D+)", mean).group(1)
    return done, float(mean[: -len(unit)]) * scale[unit], cpu


def against_h2load():
    rounds = 3 if QUICK else 5
    print(f"\n## Against h2load (nghttp2): Health/Check on one connection to one grpc-go server, {SECS} s each, alternated {rounds} times\n")
    go = build_go()
    srv = subprocess.Popen([go["server"]], stdout=subprocess.PIPE, text=True)
    addr = srv.stdout.readline().split()[-1]
    lat, eff = {}, {}
    try:
        for _ in range(rounds):
            for rate in [200, 2000]:
                s, _, _ = fdsoak_run("vs-h2load", f"  rate = {rate}", SECS, ["--target", addr])
                wl = s["workloads"][0]
                _, mean, _ = h2load(addr, SECS, rps=rate)
                lat.setdefault(rate, []).append((wl["latency"]["p50_us"], wl["latency"]["mean_us"], mean, wl["timetable_lag"]["p50_us"]))
            s, cpu, _ = fdsoak_run("vs-h2load", "  concurrency = 8", SECS, ["--target", addr])
            ours = sum(x["ok"] for x in s["workloads"]) / cpu
            done, _, cpu = h2load(addr, SECS)
            theirs = done / cpu
            out, cpu, code = run_child_cpu([go["client"], "-addr", addr, "-inflight", "8", "-secs", str(SECS), "-deadline", "5s"])
            assert code == 0, "grpc-go client failed"
            eff.setdefault("rounds", []).append((ours, theirs, int(out.strip()) / cpu))
    finally:
        srv.terminate()
        srv.wait()
    med = statistics.median
    w = (10, 14, 14, 16, 14, 12)
    print(row(["rate", "fdsoak p50 µs", "fdsoak mean µs", "h2load mean µs", "p50 − mean µs", "lag p50 µs"], w))
    for rate, rs in lat.items():
        for r in rs:
            print(row([f"{rate:,}/s", r[0], f"{r[1]:.0f}", f"{r[2]:.0f}", f"{r[0] - r[2]:+.0f}", r[3]], w))
        print(row([f"median", f"{med(r[0] for r in rs):.0f}", f"{med(r[1] for r in rs):.0f}", f"{med(r[2] for r in rs):.0f}",
                   f"{med(r[0] - r[2] for r in rs):+.0f}", f"{med(r[3] for r in rs):.0f}"], w))
    print("\nGoal: fdsoak's p50 within 10% (or 30 µs, whichever is larger) of h2load's mean at the same rate. fdsoak measures")
    print("from each call's due time, h2load from when it sent the request.\n")
    w = (8, 14, 14, 16, 12, 12)
    print(row(["round", "fdsoak", "h2load", "grpc-go client", "÷ h2load", "÷ grpc-go"], w))
    for i, (a, b, c) in enumerate(eff["rounds"]):
        print(row([i + 1, f"{a:,.0f}", f"{b:,.0f}", f"{c:,.0f}", f"{a / b:.2f}×", f"{a / c:.2f}×"], w))
    rs = eff["rounds"]
    print(row(["median", f"{med(r[0] for r in rs):,.0f}", f"{med(r[1] for r in rs):,.0f}", f"{med(r[2] for r in rs):,.0f}",
               f"{med(r[0] / r[1] for r in rs):.2f}×", f"{med(r[0] / r[2] for r in rs):.2f}×"], w))
    print("\nCalls answered per CPU-second, 8 in flight on one connection (saturation); each whole process's user + system")
    print("time (wait4), fdsoak's start-up, sampler and report included. Goal: ≥ 0.75× h2load, and ahead of grpc-go.")


def rpc_cost():
    print(f"\n## Any RPC: the rpc workload against health_check on the same method (Health/Check), {SECS} s each\n")
    proto = os.path.join(ROOT, "proto", "grpc", "health", "v1", "health.proto")
    rpc = f'  method = "grpc.health.v1.Health/Check"\n  protos = ["{proto}"]\n  data = \'{{"service": ""}}\'\n'
    srv = Server()
    w = (18, 16, 9, 8, 12, 10)
    print(row(["pace", "workload", "calls", "CPU s", "CPU µs/call", "rpc ÷ hc"], w))
    try:
        for pace in ["  concurrency = 8", "  rate = 2000"]:
            cost = {}
            # The templated body is encoded per call (its answer is NOT_FOUND: counted all the same).
            templated = rpc.replace('{"service": ""}', '{"service": "s{{request_number}}"}')
            for label, kind, extra in [("health_check", "health_check", ""), ("rpc", "rpc", rpc), ("rpc, templated", "rpc", templated)]:
                s, cpu, _ = fdsoak_run("rpc-cost", pace + "\n" + extra, SECS, ["--target", srv.addr], kind=kind)
                calls = sum(x["ok"] + x["errors"] for x in s["workloads"])
                cost[label] = cpu / max(calls, 1) * 1e6
                ratio = f"{cost[label] / cost['health_check']:.2f}×" if kind == "rpc" else ""
                print(row([pace.strip(), label, calls, f"{cpu:.2f}", f"{cost[label]:.1f}", ratio], w))
    finally:
        srv.stop()
    print("\nThe rpc workload encodes a fixed JSON body once (a templated one per call) and counts replies without")
    print("decoding them; the goal is rpc ÷ hc ≤ 1.3.")


def rate_accuracy():
    print(f"\n## Rate accuracy: scheduled vs achieved, {SECS} s per rate\n")
    srv = Server()
    w = (10, 10, 9, 9, 10, 10)
    print(row(["scheduled", "achieved", "ratio", "skipped", "p50 ms", "p99 ms"], w))
    try:
        for rate in [500, 1000, 2000, 4000, 8000]:
            s, _, _ = fdsoak_run(f"rate{rate}", f"  rate = {rate}\n  max_in_flight = 256", SECS, ["--target", srv.addr])
            wl = s["workloads"][0]
            achieved = (wl["ok"] + wl["errors"]) / SECS
            lat = wl["latency"]
            print(row([rate, f"{achieved:.0f}", f"{achieved / rate:.3f}", wl["skipped"], f"{lat['p50_us'] / 1000:.2f}", f"{lat['p99_us'] / 1000:.2f}"], w))
    finally:
        srv.stop()
    print("\nA 200 ms server stall, 1000 calls/s for 8 s (latency counted from each call's scheduled time):\n")
    w = (28, 9, 9, 9, 9)
    print(row(["target", "p50 ms", "p99 ms", "max ms", "skipped"], w))
    exe = FDSOAK
    for label, extra in [("no stall", ""), ("stall 200 ms at 3 s", " --stall-at 3s --stall-for 200ms")]:
        s, _, _ = fdsoak_run("stall", "  rate = 1000", 8, ["--spawn", f"{exe} serve --port {{port}}{extra}"])
        wl = s["workloads"][0]
        lat = wl["latency"]
        print(row([label, f"{lat['p50_us'] / 1000:.2f}", f"{lat['p99_us'] / 1000:.2f}", f"{lat['max_us'] / 1000:.2f}", wl["skipped"]], w))


def timed(cmd, repeat):
    """The median wall time (ms) and the median CPU time (ms, wait4) of whole runs of cmd."""
    walls, cpus = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        _, cpu, _ = run_child_cpu(cmd)
        walls.append(time.perf_counter() - start)
        cpus.append(cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


class Holder:
    """bench/holder.py: a process holding n loopback sockets whose peers use `peers` source addresses."""

    def __init__(self, n, peers=100):
        self.p = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "holder.py"), str(n), str(peers)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready"
        self.pid = str(self.p.pid)

    def stop(self):
        self.p.stdin.close()
        self.p.wait()


def sampler_sizes():
    """100, 1k and 10k descriptors, and as many as the hard nofile limit lets a process hold
    (its stdio and listener aside); 100k too where the limit allows it."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    top = min(hard, 1 << 20) - 200
    top -= top % 2
    sizes = [100, 1000, 10000] + ([100000] if top > 100000 else [])
    return sizes + ([top] if top > sizes[-1] else []), hard


def fit(points):
    """The exponent b of t = a * n^b, by least squares on the logs, and a."""
    import math
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return b, math.exp(my - b * mx)


def sampler_cost():
    sizes, hard = sampler_sizes()
    print(f"\n## Sampler cost: one sample and one fingerprint of a process holding N loopback TCP sockets, their peers over 100 source addresses (127.0.0.2–101); hard nofile {hard:,} (median, ms)\n")
    w = (7, 8, 8, 7, 11, 10, 10, 9, 9, 9, 9)
    print(row(["sockets", "sample", "fp", "fp÷smp", "probe wall", "probe CPU", "ls -l wall", "ls -l CPU", "lsof -p", "smp÷ls-l", "lsof÷smp"], w))
    samples, fps = [], []
    for n in sizes:
        h = Holder(n)
        repeat = 5 if n >= 10000 else 11
        out = subprocess.run([FDSOAK, "probe", h.pid, "--repeat", str(repeat * 2), "--json", "--fingerprint"], capture_output=True, text=True, check=True).stdout
        j = json.loads(out)
        smp, fp = j["median_us"] / 1000, j["fingerprint_median_us"] / 1000
        probe_wall, probe_cpu = timed([FDSOAK, "probe", h.pid], repeat)
        lsl_wall, lsl_cpu = timed(["ls", "-l", f"/proc/{h.pid}/fd"], repeat)
        lsof, _ = timed(["lsof", "-n", "-P", "-p", h.pid], 3)
        h.stop()
        samples.append((n, smp))
        fps.append((n, fp))
        print(row([n, f"{smp:.2f}", f"{fp:.2f}", f"{fp / smp:.2f}×", f"{probe_wall:.1f}", f"{probe_cpu:.1f}", f"{lsl_wall:.1f}", f"{lsl_cpu:.1f}", f"{lsof:.1f}", f"{probe_wall / lsl_wall:.2f}×", f"{lsof / probe_wall:.1f}×"], w))
    top = sizes[-1]
    h1 = Holder(top, peers=1)
    one = json.loads(subprocess.run([FDSOAK, "probe", h1.pid, "--repeat", "10", "--json", "--fingerprint"], capture_output=True, text=True, check=True).stdout)
    h1.stop()
    print(f"{top}, one peer address: sample {one['median_us'] / 1000:.2f}, fingerprint {one['fingerprint_median_us'] / 1000:.2f}")
    big = [(n, t) for n, t in samples if n >= 1000]
    b_s, a_s = fit(big)
    b_f, _ = fit([(n, t) for n, t in fps if n >= 1000])
    print(f"\nfitted exponent from 1,000 up: sample {b_s:.2f}, fingerprint {b_f:.2f} (goal ≤ 1.1); from the sample's curve,")
    print(f"one sample at 100,000 descriptors ≈ {a_s * 100000 ** b_s:.0f} ms, at 1,000,000 ≈ {a_s * 1000000 ** b_s / 1000:.1f} s.")
    print("sample and fp are the in-process time of one (`fdsoak probe --repeat`); probe, ls -l and lsof are whole")
    print("commands, process start included (wall, and user + system CPU). Goals at the largest size: a sample")
    print("≤ 0.5× ls -l as whole processes, a fingerprint ≤ 1.5× a sample.")


def memory():
    secs = 20 if QUICK else 120
    print(f"\n## Driver memory over a long run: 8 in flight for {secs} s\n")
    srv = Server()
    try:
        s, _, out_dir = fdsoak_run("memory", "  concurrency = 8", secs, ["--target", srv.addr], interval="1s")
    finally:
        srv.stop()
    calls = sum(w["ok"] for w in s["workloads"])
    rows = []
    with open(os.path.join(out_dir, "samples.csv")) as f:
        header = f.readline().strip().split(",")
        for line in f:
            v = dict(zip(header, line.strip().split(",")))
            if v["role"] == "driver":
                rows.append((float(v["t_secs"]), int(v["rss_kb"])))
    at = lambda t: min(rows, key=lambda r: abs(r[0] - t))[1]
    print(f"calls: {calls:,}; driver RSS at 5 s: {at(5) / 1024:.1f} MiB, at {secs // 2} s: {at(secs / 2) / 1024:.1f} MiB, at the end: {rows[-1][1] / 1024:.1f} MiB")


def report_time():
    print("\n## Analysis and report time for a 24 h soak (86,400 samples per process)\n")
    out = subprocess.run(["cargo", "bench", "--quiet", "--bench", "report"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    print("\n".join(l for l in out.splitlines() if l.strip()))


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_secs(pid):
    """A live process's user + system CPU seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def native_agent():
    """The native origin agent the last cargo build made."""
    import glob
    return max(glob.glob(os.path.join(ROOT, "target", "*", "build", "fdsoak-*", "out", "libfdsoak_origin.so")), key=os.path.getmtime)


def agent_rounds(title, start, on_env, goal, rounds=3):
    """A server's CPU per Check at 2000/s with the agents off and on, alternated.

    `start(env)` starts the server and returns (process, address)."""
    print(f"\n## Origins: CPU per Check of {title} with the agents off and on, 2000/s, {SECS} s each, alternated {rounds} times\n")
    per_check = {"off": [], "on": []}
    for _ in range(rounds):
        for label in ["off", "on"]:
            env = dict(os.environ, **(on_env if label == "on" else {}))
            srv, addr = start(env)
            try:
                s, _, _ = fdsoak_run("origin", "  rate = 2000", SECS, ["--target", addr])
                cpu = cpu_secs(srv.pid)
            finally:
                srv.terminate()
                srv.wait()
            checks = sum(w["ok"] for w in s["workloads"])
            per_check[label].append(cpu / checks * 1e6 if checks else float("nan"))
    w = (28, 12, 12, 12)
    print(row([title, "µs CPU/check", "lowest", "highest"], w))
    for label in ["off", "on"]:
        v = per_check[label]
        print(row([f"agents {label}", f"{statistics.median(v):.1f}", f"{min(v):.1f}", f"{max(v):.1f}"], w))
    ratios = [on / off for on, off in zip(per_check["on"], per_check["off"])]
    print(f"\non ÷ off, median of rounds: {statistics.median(ratios):.2f}× (rounds {', '.join(f'{r:.2f}' for r in ratios)}); goal ≤ {goal}×")


def origin_cost():
    agent = os.path.join(TMP, "origin-agent")
    tables = os.path.join(agent, "tables")
    os.makedirs(tables, exist_ok=True)
    with open(os.path.join(ROOT, "src", "origin", "sitecustomize.py")) as src, open(os.path.join(agent, "sitecustomize.py"), "w") as dst:
        dst.write(src.read())
    native = dict(LD_PRELOAD=native_agent(), FDSOAK_ORIGIN_DIR=tables)

    def grpcio(env):
        port = free_port()
        server = os.path.join(ROOT, "tests", "programs", "server.py")
        return subprocess.Popen([sys.executable, server, str(port), "clean"], env=env), f"127.0.0.1:{port}"

    def builtin(env):
        srv = subprocess.Popen([FDSOAK, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
        return srv, srv.stdout.readline().split()[-1]

    # Both agents for Python, as `fdsoak run --origin` gives a Python program.
    agent_rounds("a grpcio server", grpcio, dict(native, PYTHONPATH=agent), 1.3)
    agent_rounds("fdsoak serve", builtin, native, 1.15)


GRPC_JAVA_JARS = ["grpc-api", "grpc-core", "grpc-netty", "grpc-context", "grpc-stub", "perfmark-api", "guava",
                  "netty-transport", "netty-common", "netty-buffer", "netty-codec", "netty-codec-http",
                  "netty-codec-http2", "netty-handler", "netty-resolver", "netty-transport-native-unix-common"]


def origin_rounds(title, start, rounds, rate=2000, check_on=None, digits=2):
    """A server's CPU per Check at `rate`/s, driven by fdsoak attached to it (--target) with
    --origin off and on, alternated `rounds` times. `start(label)` starts the server for a round
    ("off" or "on") and returns it and its address; `check_on(summary)` asserts what --origin did."""
    per_check = {"off": [], "on": []}
    for _ in range(rounds):
        for label in ["off", "on"]:
            srv, addr = start(label)
            try:
                extra = ["--origin"] if label == "on" else []
                s, _, _ = fdsoak_run("origin", f"  rate = {rate}", SECS, ["--target", addr, *extra])
                cpu = cpu_secs(srv.pid)
                if label == "on" and check_on:
                    check_on(s)
            finally:
                srv.terminate()
                srv.wait()
                # What the flags and the attach left for a process that is gone.
                for left in [f"/tmp/perf-{srv.pid}.map", f"/tmp/.java_pid{srv.pid}"]:
                    if os.path.exists(left):
                        os.remove(left)
            checks = sum(w["ok"] for w in s["workloads"])
            per_check[label].append(cpu / checks * 1e6 if checks else float("nan"))
    ratios = [on / off for on, off in zip(per_check["on"], per_check["off"])]
    med = statistics.median
    return [title, f"{med(per_check['off']):.1f}", f"{med(per_check['on']):.1f}", f"{med(ratios):.{digits}f}×",
            ", ".join(f"{r:.2f}" for r in ratios)]


def runtime_server(command, on_env):
    """Starts `command` as a round's server: on, with what `fdsoak run --origin --spawn` gives it
    (`on_env`), so the round measures the whole cost of origins to it."""
    def start(label):
        env = dict(os.environ, **(on_env if label == "on" else {}))
        # Started in the scratch directory, where V8 puts its isolate log.
        srv = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=TMP)
        return srv, srv.stdout.readline().split()[-1]
    return start


def java_and_javascript():
    """Origins in a grpc-java and a grpc-js server: their CPU per Check at 2000/s with --origin off and on."""
    rounds = 3 if QUICK else 5
    print(f"\n## Origins in the JVM and Node: CPU per Check at 2000/s, --origin off and on, {SECS} s each, alternated {rounds} times\n")
    tables = os.path.join(TMP, "runtime-tables")
    os.makedirs(tables, exist_ok=True)
    agent = native_agent()
    native = dict(LD_PRELOAD=agent, FDSOAK_ORIGIN_DIR=tables)
    classes = os.path.join(TMP, "java-classes")
    classpath = ":".join([classes] + [f"/usr/share/java/{j}.jar" for j in GRPC_JAVA_JARS])
    subprocess.run(["javac", "-cp", classpath, "-d", classes,
                    os.path.join(ROOT, "tests", "programs", "java", "HealthServer.java")], check=True)
    java = ["java", "-cp", classpath, "HealthServer", "0", "clean"]
    node = ["node", os.path.join(ROOT, "tests", "programs", "grpcjs", "server.js"), "0", "clean"]
    w = (22, 14, 14, 10, 30)
    print(row(["server", "µs/Check, off", "µs/Check, on", "on ÷ off", "rounds"], w))
    print(row(origin_rounds("grpc-java 1.41, JDK 17", runtime_server(java, dict(native, JAVA_TOOL_OPTIONS=f"-agentpath:{agent}")), rounds), w))
    node_flags = "--perf-basic-prof --interpreted-frames-native-stack" if os.geteuid() == 0 else ""
    print(row(origin_rounds("grpc-js 1.14, Node", runtime_server(node, dict(native, NODE_OPTIONS=node_flags)), rounds), w))
    print("\nThe server's own user + system CPU (/proc/PID/stat) over the run, per Check answered; it starts each round")
    print("afresh, so its start-up (the JVM's class loading, with the agent's method log) is in the figure. Goal: at most 1.3×.")


def ledger_rounds(title, start, rounds, rate=2000):
    """A server's CPU per Check at `rate`/s, attached by fdsoak with the kernel ledger off and on, alternated."""
    def kernel_on(s):
        assert s.get("origin", {}).get("kernel") == ["target"], s.get("origin")
    return origin_rounds(title, lambda _label: start(), rounds, rate, kernel_on, digits=3)


def kernel_ledger():
    """The kernel ledger (--origin as root): what it costs the watched server per Check, how many
    frames each stack walk recovers, and what it adds to a fingerprint at 10,000 descriptors."""
    rounds = 3 if QUICK else 5
    print(f"\n## Kernel ledger: CPU per Check of an attached server with the ledger off and on, 2000/s, {SECS} s each, alternated {rounds} times\n")
    if os.geteuid() != 0:
        print("skipped: loading eBPF needs root")
        return
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "ledger_bench"], cwd=ROOT, check=True)
    bench = os.path.join(ROOT, "target", "release", "examples", "ledger_bench")
    go = build_go()
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOPROXY="off", GOFLAGS="",
               GOCACHE=os.path.join(TMP, "gocache"))
    goleak = os.path.join(TMP, "goleak")
    subprocess.run(["go", "build", "-o", goleak, "./tests/programs/goleak"], cwd=ROOT, env=env, check=True)

    def grpc_go():
        srv = subprocess.Popen([go["server"]], stdout=subprocess.PIPE, text=True)
        return srv, srv.stdout.readline().split()[-1]

    def builtin():
        srv = subprocess.Popen([FDSOAK, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
        return srv, srv.stdout.readline().split()[-1]

    def dialer():
        # The channel ledger's worst case: a fresh ClientConn (dialled, asked, closed) on every Check.
        srv = subprocess.Popen([goleak, "-leak", "channel-closed", "-every", "1"], stdout=subprocess.PIPE, text=True)
        return srv, srv.stdout.readline().split()[-1]

    w = (34, 14, 14, 10, 24)
    print(row(["server", "µs/Check, off", "µs/Check, on", "on ÷ off", "rounds"], w))
    print(row(ledger_rounds("grpc-go", grpc_go, rounds), w))
    print(row(ledger_rounds("fdsoak serve", builtin, rounds), w))
    print(row(ledger_rounds("grpc-go, a channel per Check, 400/s", dialer, rounds, 400), w))
    print("\nThe server's own user + system CPU (/proc/PID/stat) over the run, per Check answered. Goal: at most 1.05×.")
    print("With --origin, the channel ledger's probes are on every grpc-go server: they fire only where a channel is made or")
    print("closed, so the plain server pays nothing for them; the last row makes and closes one on every Check (at 400/s, so")
    print("that the connections it closes, which wait in TIME_WAIT for a minute, do not use up the ephemeral ports).")

    print("\n### Frames recovered per stack walk (median per live descriptor)\n")
    nofp = os.path.join(TMP, "leaky-nofp")
    subprocess.run(["cc", "-g", "-O2", "-fomit-frame-pointer", "-o", nofp, os.path.join(ROOT, "tests", "programs", "leaky.c")], check=True)
    programs = [
        ("C, -O2 -fomit-frame-pointer (leaks a pipe and a file every 50 ms)", None, [nofp]),
        ("fdsoak serve --leak-fd-every 1, release", True, [FDSOAK, "serve", "--port", "{port}", "--leak-fd-every", "1"]),
        ("grpc-go, a file per Check", True, [goleak, "-addr", "127.0.0.1:{port}", "-leak", "file"]),
    ]
    w = (66, 16, 10)
    print(row(["program", "frame pointers", "unwound"], w))
    for title, checks, cmd in programs:
        port = str(free_port())
        args = [bench, "frames", *([port] if checks else []), "--", *[a.replace("{port}", port) for a in cmd]]
        walked, unwound = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
        print(row([title, walked, unwound], w))
    print("\nThe ledger keeps, per descriptor, the walk with more frames.")

    print("\n### A fingerprint at 10,000 descriptors, without and with the ledger's origins (median of 7, ms)\n")
    out = subprocess.run([bench, "fingerprint", "--", sys.executable, os.path.join(ROOT, "bench", "holder.py"), "10000", "100"],
                         capture_output=True, text=True, check=True).stdout.split()
    off, on = float(out[0]), float(out[1])
    w = (24, 16, 10)
    print(row(["without origins", "with the ledger", "ratio"], w))
    print(row([f"{off:.1f}", f"{on:.1f}", f"{on / off:.2f}×"], w))


def live_metrics_cost():
    """The driver's CPU per call at 2000/s with the live endpoint scraped every second, against none, alternated."""
    import threading
    import urllib.request
    rounds = 3 if QUICK else 5
    print(f"\n## Live metrics: the driver's CPU per call at 2000/s, `--metrics-addr` scraped every second against no endpoint, {SECS} s each, alternated {rounds} times\n")
    srv = Server()
    w = (6, 16, 16, 8)
    print(row(["round", "µs/call, none", "µs/call, scraped", "ratio"], w))
    ratios = []
    try:
        for i in range(rounds):
            s, cpu, _ = fdsoak_run("live-off", "  rate = 2000", SECS, ["--target", srv.addr])
            off = cpu / max(1, sum(x["ok"] for x in s["workloads"])) * 1e6
            port = free_port()
            stop = threading.Event()
            scrapes = [0]

            def scrape():
                while not stop.wait(1.0):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
                        scrapes[0] += 1
                    except OSError:
                        pass
            t = threading.Thread(target=scrape, daemon=True)
            t.start()
            s, cpu, _ = fdsoak_run("live-on", "  rate = 2000", SECS, ["--target", srv.addr, "--metrics-addr", f"127.0.0.1:{port}"])
            stop.set()
            t.join()
            on = cpu / max(1, sum(x["ok"] for x in s["workloads"])) * 1e6
            ratios.append(on / off)
            print(row([i + 1, f"{off:.1f}", f"{on:.1f} ({scrapes[0]} scrapes)", f"{on / off:.3f}×"], w))
    finally:
        srv.stop()
    ratios.sort()
    print(f"\nmedian ratio {ratios[len(ratios) // 2]:.3f}× (goal: at most 1.05×)")


def main():
    print(f"# fdsoak benchmark ({'quick' if QUICK else 'full'}) on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    sections = [driver_efficiency, fdsoak_vs_grpc_go, against_h2load, timetable_lag, timer_precision, rpc_cost, origin_cost, java_and_javascript, kernel_ledger, live_metrics_cost, rate_accuracy, sampler_cost, memory, report_time]
    only = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")]
    for section in sections:
        if not only or section.__name__ in only:
            section()


if __name__ == "__main__":
    main()
