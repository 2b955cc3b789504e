#!/usr/bin/env python3
"""hookgate vs nginx on a many-core machine, each program on its own cores (run by
bench/device.sh, which says how to prepare the machine).

* The upstream is an nginx `return 200` with 4 workers on 4 cores of its own; it counts what it
  received (stub_status), so a round whose answers did not all reach it is marked invalid.
* wrk runs on its own cores with several threads; thread k sends slice k of the pre-signed
  CloudKeep 1 KiB deliveries (unique ids; bench/wrk.lua with "%d" in HG_SPEC).
* Each case gives the server under test some cores (hookgate sizes its runtime to the CPUs it
  may run on; nginx `proxy_pass` gets one worker per core), a number of connections per core
  and a body size; hookgate and nginx alternate round by round. DEVICE_CASES lists them as
  `cores:connections-per-core[:body-bytes]`, most important first (a case that would end past
  the budget is skipped): by default 1 and 4 cores at 64 connections per core, 1 core at 16
  connections (the p99 target's load), 1 core with 64 KiB bodies, then 2 cores.
* Reported per case: CPU time of the server process per request (utime + stime of its process
  tree from /proc over the round), req/s, p50/p99, the server's CPU %, the hookgate/nginx
  ratios, and req/s per core at 4 cores against 1 core.

Standard library only. Environment: DEVICE_DRY=1 (this machine's cores, 1 s rounds, small
workload: a check that the script runs), DEVICE_ROUNDS, DEVICE_SECONDS, DEVICE_BUDGET_S,
DEVICE_CASES, DEVICE_NGINX_LOG=1 (one more system in every case's rotation, `nginx-log`: nginx
with an access log buffered as hookgate's request log is, both to /dev/null), BENCH_NGINX_LOG=1
(the `nginx` system itself logs so; bench/run.py), DEVICE_PERF (a `perf` command line: each
system's warm-up round of each case is then sampled on the server's CPUs and its flat profile
written to $OUT/profile-*.txt; the measured rounds are not sampled), HOOKGATE,
DEVICE_BASELINE (an earlier hookgate build: a third system in every case's rotation, reported
against this one), DEVICE_RUNTIME (a `[server] runtime` for this build, `shared` or
`per-core`; the baseline runs with its default, so DEVICE_RUNTIME=shared
DEVICE_BASELINE=$HOOKGATE compares the two runtimes of one build),
KIT, OUT.
"""

import json
import shlex
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as base  # noqa: E402  (bench/run.py: config, /proc accounting, helpers)

ROOT = base.ROOT
DRY = os.environ.get("DEVICE_DRY") == "1"
# `[server] runtime` of this build's configuration: unset (the default, shared) or per-core.
RUNTIME = os.environ.get("DEVICE_RUNTIME") or None
KIT = os.path.abspath(os.environ.get("KIT", os.path.join(ROOT, ".bench-kit")))
HOOKGATE = os.path.abspath(os.environ.get("HOOKGATE", os.path.join(ROOT, ".bench-bin/hookgate")))
# An earlier build to compare against (before/after of a change): DEVICE_BASELINE, else
# .bench-bin/hookgate-base when it is there ("none" turns it off).
BASELINE = os.environ.get("DEVICE_BASELINE") or (
    os.path.join(ROOT, ".bench-bin/hookgate-base")
    if os.path.exists(os.path.join(ROOT, ".bench-bin/hookgate-base")) else "")
BASELINE = "" if BASELINE == "none" else os.path.abspath(BASELINE) if BASELINE else ""
# Three systems per case with a baseline: one round fewer keeps the run within 6 minutes.
# DEVICE_NGINX_LOG=1: nginx also runs with an access log buffered as hookgate's request log is
# (a system of its own, "nginx-log", in every case's rotation), for the comparison with the
# same logging work on both sides.
NGINX_LOG = os.environ.get("DEVICE_NGINX_LOG") == "1"
SYSTEMS = ("hookgate", "nginx") + (("baseline",) if BASELINE else ()) + (
    ("nginx-log",) if NGINX_LOG else ())
ROUNDS = int(os.environ.get("DEVICE_ROUNDS", "2" if DRY else "3" if len(SYSTEMS) > 2 else "4"))
OUT = os.path.abspath(os.environ.get("OUT") or os.path.join(ROOT, "target/device-out"))

SECONDS = int(os.environ.get("DEVICE_SECONDS", "1" if DRY else "5"))
WARMUP_SECONDS = 1 if DRY else 2
BUDGET_S = float(os.environ.get("DEVICE_BUDGET_S", "330"))


def parse_case(text):
    """`cores:connections-per-core[:body-bytes]` -> (cores, connections, body bytes)."""
    parts = [int(p) for p in text.split(":")]
    cores, per_core = parts[0], parts[1]
    return (cores, cores * per_core, parts[2] if len(parts) > 2 else 1024)


CASES = [parse_case(c) for c in os.environ.get(
    "DEVICE_CASES", "1:64,1:16" if DRY else "1:64,4:64,1:16,1:64:65536,2:64").split(",")]
CORES = sorted({c[0] for c in CASES})
PERF = shlex.split(os.environ.get("DEVICE_PERF", ""))
STARTED = time.time()
LOG = None


def log(line=""):
    print(line, flush=True)
    if LOG:
        LOG.write(line + "\n")
        LOG.flush()


def kit_env():
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.path.join(KIT, "lib")
    return env


def tool(name):
    path = os.path.join(KIT, "bin", name)
    if os.path.exists(path):
        return path
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name}: neither {path} nor on PATH")
    return found


def layout():
    """CPU sets: upstream, wrk, and the server's for each core count."""
    cpus = sorted(os.sched_getaffinity(0))
    if DRY or len(cpus) < 16:
        # A check on a small machine: everything shares what there is.
        server = {n: ",".join(str(c) for c in cpus[-min(n, len(cpus)):]) for n in CORES}
        return {"upstream": str(cpus[0]), "wrk": str(cpus[0]), "wrk_threads": 2,
                "server": server}
    pick = lambda a, b: ",".join(str(c) for c in cpus[a:b])  # noqa: E731
    return {"upstream": pick(0, 4), "server": {n: pick(4, 4 + n) for n in CORES},
            "wrk": pick(8, 16), "wrk_threads": 8}


def write_slice(args):
    """Spec file for one wrk thread: the header of bench/run.py's format, then every id i with
    i % threads == k."""
    path, k, threads, count, body_size, now = args
    import hashlib
    import hmac
    prefix = '{"id":"'
    middle = f'","timestamp":"{now}","event":"secret.created","pad":"'
    suffix = '"}'
    overhead = len(prefix) + len("evt_0000000000") + len(middle) + len(suffix)
    pad = max(0, body_size - overhead)
    padding = "x" * pad
    key = base.SECRET.encode()
    with open(path, "w") as f:
        for line in ("/hooks/ck", "X-CloudKeep-Signature-256", "-", "-", prefix, middle,
                     str(pad), suffix):
            f.write(line + "\n")
        out = []
        for i in range(k, count, threads):
            eid = f"evt_{i:010d}"
            body = (prefix + eid + middle + padding + suffix).encode()
            sig = hmac.new(key, body, hashlib.sha256).hexdigest()
            out.append(f"{eid}\tsha256={sig}\t-\t-\n")
            if len(out) >= 65536:
                f.write("".join(out))
                out.clear()
        f.write("".join(out))
    return path


def make_workload(workdir, threads, count, body_size):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    pattern = os.path.join(workdir, f"ck-{body_size}-%d.spec")
    jobs = [(pattern.replace("%d", str(k)), k, threads, count, body_size, now)
            for k in range(threads)]
    with multiprocessing.Pool(min(threads, os.cpu_count() or 1)) as pool:
        pool.map(write_slice, jobs)
    return pattern


UPSTREAM_CONF = """
worker_processes 4;
worker_cpu_affinity auto;
{user}
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    keepalive_requests 1000000;
    location = /__status {{ stub_status; }}
    location / {{ return 200 "ok"; }}
  }}
}}
"""

PROXY_CONF = """
worker_processes {workers};
worker_cpu_affinity auto;
{user}
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  __ACCESS_LOG__
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  client_max_body_size 2m;
  client_body_buffer_size 128k;
  keepalive_requests 1000000;
  upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
LOGGED = "access_log /dev/null combined buffer=32k flush=50ms;"


def user_line():
    return "user root;" if os.geteuid() == 0 else ""


def start_nginx(template, cpus, workdir, **fields):
    ndir = tempfile.mkdtemp(dir=workdir)
    conf = os.path.join(ndir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(template.format(dir=ndir, user=user_line(), **fields))
    proc = subprocess.Popen(["taskset", "-c", cpus, tool("nginx"), "-e", f"{ndir}/stderr.log",
                             "-c", conf, "-p", ndir], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=kit_env())
    return proc, ndir


def stop_nginx(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # fast shutdown: master and workers
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upstream_count(port):
    """Requests the upstream received, not counting this status query."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/__status", timeout=5) as r:
        text = r.read().decode()
    return int(text.splitlines()[2].split()[2]) - 1


def run_wrk(cpus, threads, port, spec, connections, seconds):
    env = dict(kit_env(), HG_SPEC=spec)
    out = subprocess.run(
        ["taskset", "-c", cpus, tool("wrk"), f"-t{threads}", f"-c{connections}",
         f"-d{seconds}s", "--latency", "-s", base.WRK_LUA, f"http://127.0.0.1:{port}/hooks/ck"],
        env=env, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[-2000:]}")
    text = out.stdout
    p50, p99 = map(float, re.search(r"HG p50 ([\d.]+) p99 ([\d.]+)", text).groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "requests": int(re.search(r"(\d+) requests in", text).group(1)),
            "p50_us": p50, "p99_us": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else "",
            "wraps": int(re.search(r"HG wraps (\d+)", text).group(1))}


class Bench:
    def __init__(self, workdir, lay, specs):
        # specs: body size -> the wrk spec pattern of its pre-signed deliveries.
        self.workdir, self.lay, self.specs = workdir, lay, specs
        self.up_port = base.free_port()
        self.upstream, _ = start_nginx(
            UPSTREAM_CONF, lay["upstream"], workdir, port=self.up_port)
        base.wait_port(self.up_port)
        # This build runs with `[server] runtime = DEVICE_RUNTIME` when set; the baseline
        # build always with the default (an older build may not know the key).
        self.hg_config = os.path.join(workdir, "hookgate.toml")
        with open(self.hg_config, "w") as f:
            f.write(base.hookgate_config(self.up_port, runtime=RUNTIME))
        self.base_config = os.path.join(workdir, "hookgate-baseline.toml")
        with open(self.base_config, "w") as f:
            f.write(base.hookgate_config(self.up_port))

    def start_hookgate(self, cpus, baseline=False):
        binary = BASELINE if baseline else HOOKGATE
        port = base.free_port()
        config = self.base_config if baseline else self.hg_config
        proc = subprocess.Popen(["taskset", "-c", cpus, binary, "serve", "--config",
                                 config, "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base.wait_port(port)

        def stop():
            proc.kill()  # its CPU time was read already; no need to drain
            proc.wait()
        return port, proc.pid, stop

    def start_nginx_proxy(self, cpus, workers, logged=False):
        port = base.free_port()
        conf = PROXY_CONF.replace("__ACCESS_LOG__", LOGGED if logged else base.NGINX_ACCESS_LOG)
        proc, _ = start_nginx(conf, cpus, self.workdir, workers=workers,
                              upstream=self.up_port, port=port)
        base.wait_port(port)
        return port, proc.pid, lambda: stop_nginx(proc)

    def round(self, system, spec, seconds, profile=None):
        """One round of `system` on `spec`; with `profile` (a file name), the server's CPUs
        are sampled by perf meanwhile and the flat profile written there."""
        n, connections, body = spec
        cpus = self.lay["server"][n]
        if system == "hookgate":
            port, pid, stop = self.start_hookgate(cpus)
        elif system == "baseline":
            port, pid, stop = self.start_hookgate(cpus, baseline=True)
        elif system == "nginx-log":
            port, pid, stop = self.start_nginx_proxy(cpus, n, logged=True)
        else:
            port, pid, stop = self.start_nginx_proxy(cpus, n)
        try:
            up0 = upstream_count(self.up_port)
            times0, wall0 = base.process_times(pid), time.time()
            perf = None
            if profile:
                data = os.path.join(self.workdir, profile + ".data")
                perf = subprocess.Popen(PERF + ["record", "-q", "-e", "cpu-clock", "-C", cpus,
                                                "-o", data, "--", "sleep", str(seconds)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            res = run_wrk(self.lay["wrk"], self.lay["wrk_threads"], port, self.specs[body],
                          connections, seconds)
            times1, wall1 = base.process_times(pid), time.time()
            if perf:
                perf.wait()
                flat_profile(data, os.path.join(OUT, profile + ".txt"), res["requests"])
        finally:
            stop()
        res["upstream"] = upstream_count(self.up_port) - up0
        user_s, sys_s = ((b - a) / base.CLK_TCK for a, b in zip(times0, times1))
        cpu_s = user_s + sys_s
        res["cpu_us"] = cpu_s * 1e6 / max(res["requests"], 1)
        res["user_us"] = user_s * 1e6 / max(res["requests"], 1)
        res["sys_us"] = sys_s * 1e6 / max(res["requests"], 1)
        # Over the wrk run (its set-up included, when the server idles): a lower bound.
        res["cpu_pct"] = 100 * cpu_s / (wall1 - wall0)
        problems = []
        if res["non2xx"] or res["errors"]:
            problems.append("non-2xx answers or socket errors")
        if res["wraps"] and not system.startswith("nginx"):
            problems.append(f"ids reused ({res['wraps']} wraps): duplicates answered")
        # Every answer carried a fresh id, so each must have reached the upstream (a duplicate
        # answered from dedup would not). nginx's request counter also counts a few requests
        # that were cut off when wrk stopped, so only the lower bound is checked.
        if res["upstream"] < res["requests"]:
            problems.append(f"upstream counted {res['upstream']} for {res['requests']} answers")
        res["problems"] = problems
        return res

    def close(self):
        stop_nginx(self.upstream)


def flat_profile(data, out, requests):
    """The samples of a perf record split by program and library, then the hottest symbols."""
    with open(out, "w") as f:
        f.write(f"requests answered while sampling: {requests}\n")
        for sort, limit in (("comm,dso", 30), ("comm,dso,sym", 80)):
            report = subprocess.run(PERF + ["report", "-i", data, "--no-children", "--sort",
                                            sort, "--stdio", "-g", "none"],
                                    capture_output=True, text=True)
            rows = [line for line in report.stdout.splitlines()
                    if re.match(r"\s*[\d.]+%", line)]
            f.write(f"\n== perf report --sort {sort} (top {limit})\n" + "\n".join(rows[:limit])
                    + "\n" + report.stderr[-500:])
    os.remove(data)


def median_row(runs):
    keys = ("cpu_us", "user_us", "sys_us", "rps", "p50_us", "p99_us", "cpu_pct")
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def label(body):
    return f"{body // 1024} KiB" if body % 1024 == 0 else f"{body} B"


def case(bench, spec):
    n, connections, body = spec
    log(f"\n== {n} server core(s) ({bench.lay['server'][n]}), {connections} connections,"
        f" {label(body)} bodies, {ROUNDS} rounds x {SECONDS} s")
    systems = SYSTEMS
    runs = {s: [] for s in systems}
    for system in systems:
        profile = (f"profile-{system}-{n}c-{connections}-{body}" if PERF else None)
        warm = bench.round(system, spec, WARMUP_SECONDS, profile)
        log(f"   warm-up {system:<9} {warm['cpu_us']:>7.2f} us CPU/req {warm['rps']:>9.0f} req/s"
            f" {' '.join(warm['problems'])}")
    for r in range(ROUNDS):
        for system in systems if r % 2 == 0 else systems[::-1]:
            res = bench.round(system, spec, SECONDS)
            runs[system].append(res)
            log(f"   round {r + 1} {system:<9} {res['cpu_us']:>7.2f} us CPU/req"
                f" ({res['user_us']:.2f} user + {res['sys_us']:.2f} sys)"
                f" {res['rps']:>9.0f} req/s  p50 {res['p50_us']:>6.0f} p99 {res['p99_us']:>6.0f} us"
                f"  server CPU {res['cpu_pct']:>4.0f} %  upstream {res['upstream']}/"
                f"{res['requests']}  wraps {res['wraps']}"
                + (f"  INVALID: {'; '.join(res['problems'])}" if res["problems"] else ""))
    valid = {s: [r for r in rs if not r["problems"]] or rs for s, rs in runs.items()}
    ratios = [h["cpu_us"] / x["cpu_us"] for h, x in zip(runs["hookgate"], runs["nginx"])]
    result = {"cores": n, "cpus": bench.lay["server"][n], "connections": connections,
              "body": body,
              "hookgate": median_row(valid["hookgate"]), "nginx": median_row(valid["nginx"]),
              "cpu_ratio": statistics.median(ratios), "cpu_ratio_rounds": ratios,
              "invalid_rounds": sum(1 for rs in runs.values() for r in rs if r["problems"]),
              "runs": runs}
    result["rps_ratio"] = result["hookgate"]["rps"] / result["nginx"]["rps"]
    if BASELINE:
        result["baseline"] = median_row(valid["baseline"])
        result["baseline_cpu_ratio"] = statistics.median(
            h["cpu_us"] / b["cpu_us"] for h, b in zip(runs["hookgate"], runs["baseline"]))
        log(f"   CPU/req this build/baseline: median {result['baseline_cpu_ratio']:.2f}; "
            f"baseline {result['baseline']['cpu_us']:.2f} us, {result['baseline']['rps']:.0f} req/s")
    if NGINX_LOG:
        result["nginx-log"] = median_row(valid["nginx-log"])
        result["nginx_log_ratios"] = [h["cpu_us"] / x["cpu_us"]
                                      for h, x in zip(runs["hookgate"], runs["nginx-log"])]
        result["nginx_log_cpu_ratio"] = statistics.median(result["nginx_log_ratios"])
        log(f"   CPU/req hookgate/nginx with access log: median {result['nginx_log_cpu_ratio']:.2f}"
            f" (rounds {', '.join(f'{x:.2f}' for x in result['nginx_log_ratios'])})")
    log(f"   CPU/req hookgate/nginx: median {result['cpu_ratio']:.2f} "
        f"(rounds {', '.join(f'{x:.2f}' for x in ratios)}); req/s ratio {result['rps_ratio']:.2f}")
    return result


def table(title, columns, rows):
    """A markdown table with its title, after a blank line."""
    return (["", title, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            + ["| " + " | ".join(row) + " |" for row in rows])


def summary(results, meta):
    lines = ["# hookgate vs nginx, many cores", "",
             f"{meta['date']}, {meta['cpus']} CPUs ({meta['model']}); upstream nginx `return 200`"
             f" 4 workers on CPUs {meta['layout']['upstream']}; wrk {meta['wrk_threads']} threads"
             f" on CPUs {meta['layout']['wrk']}; CloudKeep hex deliveries, unique ids; "
             f"{ROUNDS} alternating rounds x {SECONDS} s per case, medians."
             + (" The nginx proxy writes an access-log line per request, buffered as hookgate's"
                " request log is (`BENCH_NGINX_LOG=1`)." if meta.get("nginx_access_log") else "")
             + (" **DRY RUN** (a check of the script, not a measurement)." if DRY else ""), "",
             "| server cores | conns | body | hookgate CPU µs/req | nginx CPU µs/req | ratio |"
             " hookgate req/s | nginx req/s | req/s ratio | p50 hg / nginx (ms) |"
             " p99 hg / nginx (ms) | server CPU % hg / nginx | user µs/req hg / nginx |"
             " sys µs/req hg / nginx | invalid rounds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        h, x = r["hookgate"], r["nginx"]
        lines.append(
            f"| {r['cores']} | {r['connections']} | {label(r['body'])} | {h['cpu_us']:.2f} |"
            f" {x['cpu_us']:.2f} |"
            f" **{r['cpu_ratio']:.2f}** | {h['rps']:,.0f} | {x['rps']:,.0f} |"
            f" {r['rps_ratio']:.2f} | {h['p50_us'] / 1000:.2f} / {x['p50_us'] / 1000:.2f} |"
            f" {h['p99_us'] / 1000:.2f} / {x['p99_us'] / 1000:.2f} |"
            f" {h['cpu_pct']:.0f} / {x['cpu_pct']:.0f} |"
            f" {h['user_us']:.2f} / {x['user_us']:.2f} | {h['sys_us']:.2f} / {x['sys_us']:.2f} |"
            f" {r['invalid_rounds']} |")
    if BASELINE:
        lines += table(
            f"Against the baseline build ({BASELINE}), same rounds:",
            ["server cores", "conns", "body", "this build CPU µs/req", "baseline CPU µs/req",
             "ratio", "this build req/s", "baseline req/s", "p99 this / baseline (ms)"],
            [[f"{r['cores']}", f"{r['connections']}", label(r["body"]),
              f"{r['hookgate']['cpu_us']:.2f}", f"{r['baseline']['cpu_us']:.2f}",
              f"**{r['baseline_cpu_ratio']:.2f}**", f"{r['hookgate']['rps']:,.0f}",
              f"{r['baseline']['rps']:,.0f}",
              f"{r['hookgate']['p99_us'] / 1000:.2f} / {r['baseline']['p99_us'] / 1000:.2f}"]
             for r in results])
    if NGINX_LOG:
        lines += table(
            "Against nginx with an access log buffered as hookgate's request log is"
            " (`DEVICE_NGINX_LOG=1`), same rounds:",
            ["server cores", "conns", "body", "hookgate CPU µs/req", "nginx-log CPU µs/req",
             "ratio", "per-round ratios", "user µs/req hg / nginx-log",
             "sys µs/req hg / nginx-log"],
            [[f"{r['cores']}", f"{r['connections']}", label(r["body"]),
              f"{r['hookgate']['cpu_us']:.2f}", f"{r['nginx-log']['cpu_us']:.2f}",
              f"**{r['nginx_log_cpu_ratio']:.2f}**",
              ", ".join(f"{v:.2f}" for v in r["nginx_log_ratios"]),
              f"{r['hookgate']['user_us']:.2f} / {r['nginx-log']['user_us']:.2f}",
              f"{r['hookgate']['sys_us']:.2f} / {r['nginx-log']['sys_us']:.2f}"]
             for r in results])
    # Scaling compares the 1 KiB cases at 64 connections per core.
    by = {r["cores"]: r for r in results
          if r["body"] == 1024 and r["connections"] == 64 * r["cores"]}
    if 1 in by and max(by) > 1:
        lines += ["", "Scaling: req/s per core at N cores against 1 core (target for hookgate:"
                  " within 10 %), and CPU µs/req at N cores against 1 core (what each request"
                  " costs more with more cores; not capped by the load generator or the upstream,"
                  " which can limit the req/s of every system at the highest core counts)", ""]
        systems = SYSTEMS
        for top in sorted(c for c in by if c > 1):
            for system in systems:
                one, many = by[1][system]["rps"], by[top][system]["rps"] / top
                cost = by[top][system]["cpu_us"] / by[1][system]["cpu_us"]
                lines.append(f"- {top} cores, {system}: {one:,.0f} req/s at 1 core, {many:,.0f}"
                             f" per core = **{many / one:.2f}**; CPU/req x{cost:.2f}"
                             f" (server CPU {by[top][system]['cpu_pct']:.0f} %)")
    lines += ["", "CPU µs/req: utime + stime of the server's process tree over the round divided"
              " by the requests answered; server CPU % is over the whole wrk run (its start-up"
              " included), so it reads slightly low.", ""]
    return "\n".join(lines)


def main():
    global LOG
    os.makedirs(OUT, exist_ok=True)
    LOG = open(os.path.join(OUT, "log.txt"), "a")
    for path in (HOOKGATE, BASELINE) if BASELINE else (HOOKGATE,):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"missing executable {path}")
    for d in ("/var/lib/nginx", "/var/log/nginx"):  # nginx's compiled-in paths
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            pass
    lay = layout()
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
            "model": model, "layout": {k: v for k, v in lay.items() if k != "server"},
            "server_cpus": {str(k): v for k, v in lay["server"].items()},
            "wrk_threads": lay["wrk_threads"], "rounds": ROUNDS, "seconds": SECONDS, "dry": DRY,
            "nginx_access_log": base.NGINX_ACCESS_LOG != "access_log off;"}
    log(f"device bench: {json.dumps(meta)}")
    siblings = set()
    for cpu in range(os.cpu_count() or 0):
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                siblings.add(f.read().strip())
        except OSError:
            pass
    log(f"SMT sibling groups: {' '.join(sorted(siblings))}")
    # Enough unique ids that no hookgate round wraps: 1 M req/s for a round (dry: a few).
    count = 200_000 if DRY else max(5_000_000, 1_000_000 * SECONDS)
    workdir = tempfile.mkdtemp(prefix="hookgate-device-")
    t0 = time.time()
    specs = {}
    for body in sorted({c[2] for c in CASES}):
        # Large bodies go at a fraction of the rate: fewer ids (and less signing) suffice.
        n = count if body <= 4096 else max(200_000, count // 12)
        specs[body] = make_workload(workdir, lay["wrk_threads"], n, body)
        log(f"signed {n} deliveries of {label(body)} in {time.time() - t0:.1f} s")
    bench = Bench(workdir, lay, specs)
    results = []
    n_systems = len(SYSTEMS)
    per_case = n_systems * (WARMUP_SECONDS + 3) + ROUNDS * n_systems * (SECONDS + 3)
    try:
        for spec in CASES:
            left = BUDGET_S - (time.time() - STARTED)
            if left < per_case:
                log(f"skipping case {spec}: {left:.0f} s left, a case takes ~{per_case} s")
                continue
            try:
                results.append(case(bench, spec))
            except Exception as error:  # keep what was measured
                log(f"case {spec} failed: {error!r}")
            with open(os.path.join(OUT, "results.json"), "w") as f:
                json.dump({"meta": meta, "cases": results}, f, indent=1)
            with open(os.path.join(OUT, "summary.md"), "w") as f:
                f.write(summary(results, meta))
    finally:
        bench.close()
        shutil.rmtree(workdir, ignore_errors=True)
    log("\n" + summary(results, meta))
    log(f"total {time.time() - STARTED:.0f} s")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
