#!/usr/bin/env python3
"""hookgate vs nginx, side by side, on one machine.

Run through bench/run.sh (it installs nginx-light and wrk and builds release binaries).

* wrk (one thread) is pinned to CPU 0; the upstream, nginx, hookgate (one worker thread, as
  tokio sees one CPU) and Redis are pinned to CPU 1, so the server core saturates while the
  load generator has headroom.
* Each comparison runs its two systems alternately (A B A B ...) after a warm-up, and
  reports the median of the per-round ratios: the machine's drift cancels out.
* Requests are pre-signed with unique event ids (dedup really works); hookgate is restarted
  each round so ids never repeat within its dedup memory. Any non-2xx answer or id reuse
  invalidates the run.

Environment: BENCH_ROUNDS (5), BENCH_SECONDS (5), BENCH_CONNECTIONS (64), BENCH_ONLY
(comma-separated comparison names).
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
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOKGATE = os.path.join(ROOT, "target/release/hookgate")
UPSTREAM = os.path.join(ROOT, "target/release/examples/bench_upstream")
WRK_LUA = os.path.join(ROOT, "bench/wrk.lua")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
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
    """A set of signed requests for one scheme and body size."""

    def __init__(self, name, scheme, path, body_size, count, workdir):
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
                eid = f"evt_{i:010d}"
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


def hookgate_config(upstream_port, redis_url=None):
    whsec = "whsec_" + base64.b64encode(WH_KEY).decode()
    dedup = '[dedup]\ncapacity = 4000000\n'
    if redis_url:
        dedup = f'[dedup]\nbackend = "redis"\nredis = {{ url = "{redis_url}", timeout = "1s" }}\n'
    up = f"http://127.0.0.1:{upstream_port}"
    return f"""
[server]
max_body_bytes = 2097152
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
dedup = {{ id = "body:id", ttl = "18h" }}
"""


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
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
"""


class System:
    """A server under test: started fresh for each round."""

    def __init__(self, label, start):
        self.label, self._start = label, start

    def start(self):
        return self._start()


def run_wrk(port, workload, connections, seconds):
    env = dict(os.environ, HG_SPEC=workload.spec)
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
         "--latency", "-s", WRK_LUA, f"http://127.0.0.1:{port}{workload.path}"],
        env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p99 = map(float, re.search(r"HG p50 ([\d.]+) p99 ([\d.]+)", out).groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    wraps = int(re.search(r"HG wraps (\d+)", out).group(1))
    return {"rps": rps, "p50_us": p50, "p99_us": p99,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else "", "wraps": wraps}


def compare(name, a, b, workload, connections=None, workload_b=None):
    """Runs a and b alternately; b sends workload_b when given (else the same workload)."""
    connections = connections or CONNECTIONS
    loads = {a.label: workload, b.label: workload_b or workload}
    print(f"\n== {name}: {a.label} vs {b.label}, {workload.body_size} B bodies, "
          f"{connections} connections, {ROUNDS} rounds x {SECONDS} s", flush=True)
    results = {a.label: [], b.label: []}
    for system in (a, b):  # warm-up
        handle = system.start()
        run_wrk(handle["port"], loads[system.label], connections, 2)
        handle["stop"]()
    for r in range(ROUNDS):
        for system in (a, b) if r % 2 == 0 else (b, a):
            handle = system.start()
            res = run_wrk(handle["port"], loads[system.label], connections, SECONDS)
            handle["stop"]()
            if res["non2xx"] or res["errors"] or res["wraps"]:
                raise SystemExit(f"invalid run for {system.label}: {res}")
            results[system.label].append(res)
    ratios = [x["rps"] / y["rps"] for x, y in zip(results[a.label], results[b.label])]
    rows = []
    for label in (a.label, b.label):
        runs = results[label]
        rows.append((label, statistics.median(x["rps"] for x in runs),
                     statistics.median(x["p50_us"] for x in runs),
                     statistics.median(x["p99_us"] for x in runs)))
    for label, rps, p50, p99 in rows:
        print(f"   {label:<34} {rps:>10.0f} req/s   p50 {p50:>8.1f} us   p99 {p99:>8.1f} us"
              f"   ({1e6 / rps:.1f} us of one core per request)")
    median_ratio = statistics.median(ratios)
    print(f"   ratio {a.label}/{b.label}: median {median_ratio:.3f} "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)}); "
          f"p99 {rows[0][3]:.1f} vs {rows[1][3]:.1f} us", flush=True)
    return {"name": name, "a": rows[0], "b": rows[1], "ratio": median_ratio, "rounds": ratios}


def main():
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (bench/run.sh installs it)")
    cpus = os.cpu_count()
    print(f"machine: {cpus} CPUs; load generator on CPU {LOAD_CPU}, servers on CPU {SERVER_CPU}")
    workdir = tempfile.mkdtemp(prefix="hookgate-bench-")
    upstream_port = free_port()
    upstream = pinned(SERVER_CPU, [UPSTREAM, f"127.0.0.1:{upstream_port}"])
    wait_port(upstream_port)
    redis = None
    try:
        def hookgate_system(label, redis_url=None):
            config = os.path.join(workdir, f"{label.replace(' ', '_')}.toml")
            with open(config, "w") as f:
                f.write(hookgate_config(upstream_port, redis_url))

            def start():
                port = free_port()
                if redis_url:
                    subprocess.run(["redis-cli", "-u", redis_url, "FLUSHALL"], check=True,
                                   capture_output=True)
                proc = pinned(SERVER_CPU, [HOOKGATE, "serve", "--config", config,
                                           "--listen", f"127.0.0.1:{port}"])
                wait_port(port)
                return {"port": port, "stop": lambda: stop(proc)}
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
                return {"port": port, "stop": lambda: stop(proc)}
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
        plans = [
            ("hex-1k", lambda: compare("CloudKeep hex, 1 KiB", hg, nginx, work["hex-1k"])),
            ("base64url-1k", lambda: compare("VaaS base64url, 1 KiB", hg, nginx, work["base64url-1k"])),
            ("standard-1k", lambda: compare("Standard Webhooks, 1 KiB", hg, nginx, work["standard-1k"])),
            ("hex-64k", lambda: compare("CloudKeep hex, 64 KiB", hg, nginx, work["hex-64k"])),
            ("verify-cost", lambda: compare("verification on vs off, 1 KiB", hg, hg_nv,
                                            work["hex-1k"], workload_b=work["noverify-1k"])),
            ("low-concurrency", lambda: compare("CloudKeep hex, 1 KiB, 16 connections", hg, nginx,
                                                work["hex-1k"], connections=16)),
        ]
        if shutil.which("redis-server"):
            rport = free_port()
            redis = pinned(SERVER_CPU, ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no"])
            wait_port(rport)
            hg_redis = hookgate_system("hookgate (redis dedup)", f"redis://127.0.0.1:{rport}/0")
            plans.append(("redis", lambda: compare("dedup on Redis vs in memory, 1 KiB", hg_redis, hg,
                                                   work["hex-1k"])))
        results = []
        for key, plan in plans:
            if not ONLY or key in ONLY:
                results.append(plan())
        print("\n== summary (median of per-round ratios)")
        for r in results:
            print(f"   {r['name']:<45} {r['a'][0]} / {r['b'][0]} = {r['ratio']:.3f};"
                  f" p99 {r['a'][3]:.1f} vs {r['b'][3]:.1f} us")
        with open(os.path.join(ROOT, "target", "bench-results.json"), "w") as f:
            json.dump(results, f, indent=1)
    finally:
        stop(upstream)
        stop(redis)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
