#!/usr/bin/env python3
"""hookgate vs nginx, side by side, on one machine.

Run through bench/run.sh (it installs nginx-light and wrk and builds release binaries).

* wrk (one thread) is pinned to CPU 0; the upstream, nginx, hookgate (one worker thread, as
  tokio sees one CPU) and Redis are pinned to CPU 1.
* The headline figure is the CPU time the server under test spends per request: its process
  tree's utime + stime (/proc/<pid>/stat) over the round, divided by the requests completed.
  Unlike req/s, the load generator's speed does not cap it. Each round also shows the server's
  CPU % and how busy CPU 1 was: a server that is not kept busy spends more CPU per request
  (fewer requests per wake-up), so compare rounds whose core was near 100 % busy.
* Each comparison runs its two systems alternately (A B A B ...) after a warm-up, and
  reports the median of the per-round ratios: the machine's drift cancels out.
* Requests are pre-signed with unique event ids (dedup really works); hookgate is restarted
  each round so ids never repeat within its dedup memory. A round is invalid (the run stops)
  on any non-2xx answer, any id reuse (wrk.lua wrapped around its ids), or when the upstream's
  count of requests received is below the requests answered (duplicates answered without
  reaching it) or above it by more than the connections (requests in flight when wrk stopped).

Environment: BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_ONLY (comma-separated case names;
default the four headline cases 1k-16, 1k-64, 64k-16, 64k-64; "all" adds base64url-1k,
standard-1k, verify-cost and redis), BENCH_CONNECTIONS (64, for the extra cases),
BENCH_BASELINE (path of an earlier hookgate build: adds the cases baseline-1k-16 and
baseline-1k-64, this build against that one in alternating rounds), BENCH_HOOKGATE (the
build measured as hookgate, default target/release/hookgate: a PGO build, say). The cases per-core-1k-16
and per-core-1k-64 run hookgate on both CPUs, `[server] runtime = "per-core"` (the default)
against `runtime = "shared"` (wrk and the upstream share those CPUs; compare the two only).
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_HOOKGATE names another build to measure as hookgate (a PGO build, say).
HOOKGATE = os.environ.get("BENCH_HOOKGATE") or os.path.join(ROOT, "target/release/hookgate")
UPSTREAM = os.path.join(ROOT, "target/release/examples/bench_upstream")
WRK_LUA = os.path.join(ROOT, "bench/wrk.lua")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
BASELINE = os.environ.get("BENCH_BASELINE")
SECRET = "bench-secret"
WH_KEY = b"bench-standard-webhooks-key-0123"
SERVER_CPU = "1"
LOAD_CPU = "0"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def pinned(cpu, args, **kw):
    return subprocess.Popen(["taskset", "-c", cpu] + args, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kw)


def stop(proc):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Workload:
    """A set of signed requests for one scheme and body size. Event ids run from `first_id`:
    a warm-up against the server that is then measured needs ids of its own, or the measured
    run starts with repeats of them (answered as duplicates, without reaching the upstream)."""

    def __init__(self, name, scheme, path, body_size, count, workdir, first_id=0):
        self.name, self.path = name, path
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        ts = str(int(time.time()))
        prefix = '{"id":"'
        middle = f'","timestamp":"{now}","event":"secret.created","pad":"'
        suffix = '"}'
        overhead = len(prefix) + len("evt_0000000000") + len(middle) + len(suffix)
        pad = max(0, body_size - overhead)
        self.spec = os.path.join(workdir, f"{name}.spec")
        sig_header, x1, x2 = {
            "hex": ("X-CloudKeep-Signature-256", "-", "-"),
            "base64url": ("VaaS-Signature", "VaaS-Timestamp", "-"),
            "standard": ("webhook-signature", "webhook-id", "webhook-timestamp"),
            "none": ("-", "-", "-"),
        }[scheme]
        with open(self.spec, "w") as f:
            for line in (path, sig_header, x1, x2, prefix, middle, str(pad), suffix):
                f.write(line + "\n")
            padding = "x" * pad
            for i in range(count):
                eid = f"evt_{first_id + i:010d}"
                body = (prefix + eid + middle + padding + suffix).encode()
                if scheme == "hex":
                    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                    extra = ("-", "-")
                elif scheme == "base64url":
                    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
                    sig, extra = base64.urlsafe_b64encode(mac).decode(), (ts, "-")
                elif scheme == "standard":
                    signed = f"{eid}.{ts}.".encode() + body
                    mac = hmac.new(WH_KEY, signed, hashlib.sha256).digest()
                    sig, extra = "v1," + base64.b64encode(mac).decode(), (eid, ts)
                else:
                    sig, extra = "-", ("-", "-")
                f.write(f"{eid}\t{sig}\t{extra[0]}\t{extra[1]}\n")
        self.body_size = body_size


def hookgate_config(upstream_port, redis_url=None, runtime=None):
    whsec = "whsec_" + base64.b64encode(WH_KEY).decode()
    dedup = '[dedup]\ncapacity = 4000000\n'
    if redis_url:
        dedup = f'[dedup]\nbackend = "redis"\nredis = {{ url = "{redis_url}", timeout = "1s" }}\n'
    up = f"http://127.0.0.1:{upstream_port}"
    return f"""
[server]
max_body_bytes = 2097152
{f'runtime = "{runtime}"' if runtime else ''}
{dedup}
[[source]]
name = "ck"
path = "/hooks/ck"
preset = "cloudkeep"
upstream = "{up}/ck"
secrets = [{{ value = "{SECRET}" }}]

[[source]]
name = "vaas"
path = "/hooks/vaas"
preset = "vaas"
upstream = "{up}/vaas"
secrets = [{{ value = "{SECRET}" }}]

[[source]]
name = "sw"
path = "/hooks/sw"
preset = "standard-webhooks"
upstream = "{up}/sw"
secrets = [{{ value = "{whsec}" }}]

# The same pipeline without a signature check (freshness and dedup still on).
[[source]]
name = "noverify"
path = "/hooks/noverify"
upstream = "{up}/noverify"
allow_ips = ["127.0.0.1"]
freshness = {{ from = "body:timestamp", format = "iso8601", window = "18h" }}
dedup = {{ id = "body:id", ttl = "19h" }}
"""


# BENCH_NGINX_LOG=1: the nginx proxy writes an access-log line per request, buffered as
# hookgate's request log is (32 KiB, or 50 ms), to /dev/null as hookgate's goes here: the same
# logging work on both sides. Off by default: a plain `proxy_pass` without a log, the stricter
# comparison, since hookgate logs every request. Also read by bench/device.py.
NGINX_ACCESS_LOG = ("access_log /dev/null combined buffer=32k flush=50ms;"
                    if os.environ.get("BENCH_NGINX_LOG") == "1" else "access_log off;")

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  __ACCESS_LOG__
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  client_max_body_size 2m;
  client_body_buffer_size 128k;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""".replace("__ACCESS_LOG__", NGINX_ACCESS_LOG)


class System:
    """A server under test: started fresh for each round."""

    def __init__(self, label, start):
        self.label, self._start = label, start

    def start(self):
        return self._start()


CLK_TCK = os.sysconf("SC_CLK_TCK")
UPSTREAM_PID = [0]


def process_times(pid):
    """(utime, stime) of pid and every descendant (nginx's workers), in clock ticks."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append((int(entry), fields))
    user, system, todo = 0, 0, [pid]
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    while todo:
        for child, fields in children.get(todo.pop(), []):
            user += int(fields[11])
            system += int(fields[12])
            todo.append(child)
    return user, system


def process_ticks(pid):
    """utime + stime of pid and every descendant (nginx's workers), in clock ticks."""
    return sum(process_times(pid))


def core_ticks(cpu):
    """(busy, total) clock ticks of one CPU, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + values[4]
                return sum(values) - idle, sum(values)
    raise RuntimeError(f"cpu{cpu} missing in /proc/stat")


def upstream_count(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__count", timeout=5) as r:
        return int(r.read())


def run_wrk(port, workload, connections, seconds):
    env = dict(os.environ, HG_SPEC=workload.spec)
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
         "--latency", "-s", WRK_LUA, f"http://127.0.0.1:{port}{workload.path}"],
        env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50, p99 = map(float, re.search(r"HG p50 ([\d.]+) p99 ([\d.]+)", out).groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    wraps = int(re.search(r"HG wraps (\d+)", out).group(1))
    return {"rps": rps, "requests": requests, "p50_us": p50, "p99_us": p99,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else "", "wraps": wraps}


def measured_round(system, workload, connections, seconds, upstream_port):
    """One round against a freshly started system: wrk's figures plus the server's CPU time
    (its process tree's utime + stime), the server core's busy share and the upstream count."""
    handle = system.start()
    try:
        up0 = upstream_count(upstream_port)
        ticks0, core0, wall0 = process_ticks(handle["pid"]), core_ticks(SERVER_CPU), time.time()
        up_ticks0 = process_ticks(UPSTREAM_PID[0])
        res = run_wrk(handle["port"], workload, connections, seconds)
        ticks1, core1, wall1 = process_ticks(handle["pid"]), core_ticks(SERVER_CPU), time.time()
        up_ticks1 = process_ticks(UPSTREAM_PID[0])
    finally:
        handle["stop"]()
    res["upstream"] = upstream_count(upstream_port) - up0
    cpu_s = (ticks1 - ticks0) / CLK_TCK
    res["cpu_us"] = cpu_s * 1e6 / max(res["requests"], 1)
    res["cpu_pct"] = 100 * cpu_s / (wall1 - wall0)
    res["core_pct"] = 100 * (core1[0] - core0[0]) / max(core1[1] - core0[1], 1)
    # CPU 1's busy time that neither the server nor the upstream spent: other processes on the
    # machine competing for the server's core (then CPU per request is inflated too).
    up_pct = 100 * (up_ticks1 - up_ticks0) / CLK_TCK / (wall1 - wall0)
    res["others_pct"] = max(0.0, res["core_pct"] - res["cpu_pct"] - up_pct)
    # Every answered request carried a fresh id, so every one must have reached the upstream;
    # requests still in flight when wrk stopped (at most one per connection) may have too.
    problems = []
    if res["non2xx"] or res["errors"]:
        problems.append("non-2xx answers or socket errors")
    if res["wraps"]:
        problems.append(f"ids reused ({res['wraps']} wraps): answers may be duplicates")
    if not res["requests"] <= res["upstream"] <= res["requests"] + connections:
        problems.append(f"upstream counted {res['upstream']} for {res['requests']} answers")
    if problems:
        raise SystemExit(f"INVALID round for {system.label}: {'; '.join(problems)}: {res}")
    return res


def compare(name, a, b, workload, upstream_port, connections=None, workload_b=None):
    """Runs a and b alternately; b sends workload_b when given (else the same workload)."""
    connections = connections or CONNECTIONS
    loads = {a.label: workload, b.label: workload_b or workload}
    print(f"\n== {name}: {a.label} vs {b.label}, {workload.body_size} B bodies, "
          f"{connections} connections, {ROUNDS} rounds x {SECONDS} s", flush=True)
    results = {a.label: [], b.label: []}
    for system in (a, b):  # warm-up
        measured_round(system, loads[system.label], connections, 2, upstream_port)
    for r in range(ROUNDS):
        for system in (a, b) if r % 2 == 0 else (b, a):
            res = measured_round(system, loads[system.label], connections, SECONDS,
                                 upstream_port)
            results[system.label].append(res)
            print(f"   round {r + 1} {system.label:<32} {res['cpu_us']:>7.1f} us CPU/req"
                  f" {res['rps']:>9.0f} req/s  server CPU {res['cpu_pct']:>4.0f} %"
                  f"  core {SERVER_CPU} busy {res['core_pct']:>4.0f} %"
                  f" (others {res['others_pct']:>3.0f} %)"
                  f"  upstream {res['upstream']}/{res['requests']}", flush=True)
    ratios = [x["cpu_us"] / y["cpu_us"] for x, y in zip(results[a.label], results[b.label])]
    rows = []
    for label in (a.label, b.label):
        runs = results[label]
        rows.append({"label": label, **{k: statistics.median(x[k] for x in runs)
                                        for k in ("cpu_us", "rps", "p50_us", "p99_us",
                                                  "cpu_pct", "core_pct", "others_pct")}})
    print(f"   {'system':<34} {'CPU us/req':>10} {'req/s':>9} {'p50 us':>8} {'p99 us':>8}"
          f" {'server CPU':>10} {'core busy':>9}")
    for row in rows:
        print(f"   {row['label']:<34} {row['cpu_us']:>10.1f} {row['rps']:>9.0f}"
              f" {row['p50_us']:>8.0f} {row['p99_us']:>8.0f} {row['cpu_pct']:>9.0f}%"
              f" {row['core_pct']:>8.0f}%")
    median_ratio = statistics.median(ratios)
    print(f"   CPU per request {a.label}/{b.label}: median {median_ratio:.2f} "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    return {"name": name, "a": rows[0], "b": rows[1], "ratio": median_ratio, "rounds": ratios,
            "runs": results}


def main():
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (bench/run.sh installs it)")
    cpus = os.cpu_count()
    print(f"machine: {cpus} CPUs; load generator on CPU {LOAD_CPU}, servers on CPU {SERVER_CPU}")
    workdir = tempfile.mkdtemp(prefix="hookgate-bench-")
    upstream_port = free_port()
    upstream = pinned(SERVER_CPU, [UPSTREAM, f"127.0.0.1:{upstream_port}"])
    UPSTREAM_PID[0] = upstream.pid
    wait_port(upstream_port)
    redis = None
    try:
        def hookgate_system(label, redis_url=None, binary=HOOKGATE, runtime=None, cpus=None):
            config = os.path.join(workdir, f"{label.replace(' ', '_')}.toml")
            with open(config, "w") as f:
                f.write(hookgate_config(upstream_port, redis_url, runtime))

            def start():
                port = free_port()
                if redis_url:
                    subprocess.run(["redis-cli", "-u", redis_url, "FLUSHALL"], check=True,
                                   capture_output=True)
                proc = pinned(cpus or SERVER_CPU, [binary, "serve", "--config", config,
                                                   "--listen", f"127.0.0.1:{port}"])
                wait_port(port)
                return {"port": port, "pid": proc.pid, "stop": lambda: stop(proc)}
            return System(label, start)

        def nginx_system():
            def start():
                port = free_port()
                ndir = tempfile.mkdtemp(dir=workdir)
                conf = os.path.join(ndir, "nginx.conf")
                with open(conf, "w") as f:
                    f.write(NGINX_CONF.format(dir=ndir, upstream=upstream_port, port=port))
                proc = pinned(SERVER_CPU, ["nginx", "-c", conf, "-p", ndir])
                wait_port(port)
                return {"port": port, "pid": proc.pid, "stop": lambda: stop(proc)}
            return System("nginx (plain proxy_pass)", start)

        n1k = 400_000
        work = {
            "hex-1k": Workload("hex-1k", "hex", "/hooks/ck", 1024, n1k, workdir),
            "base64url-1k": Workload("b64-1k", "base64url", "/hooks/vaas", 1024, n1k, workdir),
            "standard-1k": Workload("sw-1k", "standard", "/hooks/sw", 1024, n1k, workdir),
            "hex-64k": Workload("hex-64k", "hex", "/hooks/ck", 65536, 60_000, workdir),
            "noverify-1k": Workload("nv-1k", "none", "/hooks/noverify", 1024, n1k, workdir),
        }
        nginx = nginx_system()
        hg = hookgate_system("hookgate (verify+fresh+dedup)")
        hg_nv = hookgate_system("hookgate (verification off)")
        up = upstream_port
        # The headline: CPU time per request against nginx, 16 and 64 connections, 1 and 64 KiB.
        plans = [
            (key, lambda w=w, c=c, title=title: compare(
                f"CloudKeep hex, {title}, {c} connections", hg, nginx, work[w], up, connections=c))
            for key, w, title, c in [
                ("1k-16", "hex-1k", "1 KiB", 16), ("1k-64", "hex-1k", "1 KiB", 64),
                ("64k-16", "hex-64k", "64 KiB", 16), ("64k-64", "hex-64k", "64 KiB", 64)]
        ]
        # More comparisons, run when named in BENCH_ONLY (or with BENCH_ONLY=all).
        extras = [
            ("base64url-1k", lambda: compare("VaaS base64url, 1 KiB", hg, nginx,
                                             work["base64url-1k"], up)),
            ("standard-1k", lambda: compare("Standard Webhooks, 1 KiB", hg, nginx,
                                            work["standard-1k"], up)),
            ("verify-cost", lambda: compare("verification on vs off, 1 KiB", hg, hg_nv,
                                            work["hex-1k"], up, workload_b=work["noverify-1k"])),
        ]
        if shutil.which("redis-server"):
            rport = free_port()
            redis = pinned(SERVER_CPU, ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no"])
            wait_port(rport)
            hg_redis = hookgate_system("hookgate (redis dedup)", f"redis://127.0.0.1:{rport}/0")
            extras.append(("redis", lambda: compare("dedup on Redis vs in memory, 1 KiB",
                                                    hg_redis, hg, work["hex-1k"], up)))
        if BASELINE:
            # Before/after of a change: this build against an earlier one, same rounds.
            hg_base = hookgate_system("hookgate (baseline build)", binary=BASELINE)
            for c in (16, 64):
                extras.append((f"baseline-1k-{c}", lambda c=c: compare(
                    f"this build vs {BASELINE}, 1 KiB, {c} connections", hg, hg_base,
                    work["hex-1k"], up, connections=c)))
        if (os.cpu_count() or 1) > 1:
            # Two serving threads on the two CPUs (sharing them with wrk and the upstream):
            # the work-stealing runtime against one single-threaded runtime per core.
            both = f"{LOAD_CPU},{SERVER_CPU}"
            hg_shared2 = hookgate_system("hookgate (shared runtime, 2 CPUs)", runtime="shared",
                                         cpus=both)
            hg_core2 = hookgate_system("hookgate (per-core runtime, 2 CPUs)", runtime="per-core",
                                       cpus=both)
            for c in (16, 64):
                extras.append((f"per-core-1k-{c}", lambda c=c: compare(
                    f"per-core vs shared runtime, 2 CPUs, 1 KiB, {c} connections", hg_core2,
                    hg_shared2, work["hex-1k"], up, connections=c)))
        headline = {key for key, _ in plans}
        results = []
        for key, plan in plans + extras:
            if key in ONLY or "all" in ONLY or (not ONLY and key in headline):
                results.append(plan())
        print("\n== summary: CPU time of the server under test per request "
              "(median of rounds; ratio = median of per-round ratios)")
        print(f"   {'case':<42} {'A us/req':>8} {'B us/req':>8} {'A/B':>5}   "
              f"{'A req/s':>8} {'B req/s':>8}   {'A p50/p99 us':>13} {'B p50/p99 us':>13}"
              f"   {'server CPU A/B':>14}")
        for r in results:
            a, b = r["a"], r["b"]
            print(f"   {r['name']:<42} {a['cpu_us']:>8.1f} {b['cpu_us']:>8.1f} {r['ratio']:>5.2f}"
                  f"   {a['rps']:>8.0f} {b['rps']:>8.0f}"
                  f"   {a['p50_us']:>6.0f}/{a['p99_us']:<6.0f} {b['p50_us']:>6.0f}/{b['p99_us']:<6.0f}"
                  f"   {a['cpu_pct']:>6.0f}/{b['cpu_pct']:.0f} %")
        print("   A = the first system named in each case (hookgate), B = the second.")
        with open(os.path.join(ROOT, "target", "bench-results.json"), "w") as f:
            json.dump(results, f, indent=1)
    finally:
        stop(upstream)
        stop(redis)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
