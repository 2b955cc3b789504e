#!/usr/bin/env python3
"""Where a proxied request's CPU time goes: hookgate against nginx, under the same load.

Run after bench/run.sh has built the release binaries (needs `perf`: Debian `linux-perf`):

    python3 bench/profile.py [SECONDS]

For each system it starts the minimal upstream and the proxy on the server CPU, drives them
with the CloudKeep hex workload of bench/run.py (64 connections; PROFILE_BODY bytes per body,
default 1024), samples that CPU with
`perf record -e cpu-clock` for SECONDS (default 5), and prints the CPU time per request split
into the proxy's kernel time, the proxy's own code (libraries included) and the upstream.
Then it lists the proxy's hottest user-space functions (PROFILE_TOP of them, default 15) and
kernel functions, each with its CPU time per request; PROFILE_KEEP=1 keeps the perf data for
`perf annotate`. Same pinning as bench/run.py.
"""

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

SECONDS = 5
# How many of the proxy's hottest user-space functions to list.
TOP = int(os.environ.get("PROFILE_TOP", "15"))
# PROFILE_KEEP=1 keeps the perf data (for `perf annotate`).
KEEP = os.environ.get("PROFILE_KEEP") == "1"
BODY = int(os.environ.get("PROFILE_BODY", "1024"))


def shares(data):
    """{(comm, dso): percent of the samples} from `perf report`."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "comm,dso", "--stdio",
         "-g", "none"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+(\S+)", line)
        if m:
            found[(m.group(2), m.group(3))] = float(m.group(1))
    return found


def hottest(data, comms, count=15, kernel=False):
    """The hottest functions of the threads named in `comms` (a comma-separated list)."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--comm", comms, "--sort", "dso,sym",
         "--stdio", "-g", "none"], capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines()
            if re.match(r"\s*[\d.]+%", line) and ("[k]" in line) == kernel]
    return rows[:count]


def profile(label, comm, start_proxy, upstream_port, loads, workdir):
    warmup, workload = loads
    port = bench.free_port()
    proxy = start_proxy(port)
    try:
        bench.wait_port(port)
        # Warm-up with ids of its own: repeats of them would be answered as duplicates.
        bench.run_wrk(port, warmup, bench.CONNECTIONS, 1)
        data = os.path.join(workdir, f"{comm}.perf")
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-C", bench.SERVER_CPU, "-o", data,
             "--", "sleep", str(SECONDS)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = bench.run_wrk(port, workload, bench.CONNECTIONS, SECONDS)
        perf.wait()
    finally:
        bench.stop(proxy)
    requests = result["rps"] * SECONDS
    found = shares(data)

    def micros(pred):
        percent = sum(v for (c, d), v in found.items() if pred(c, d))
        return percent / 100 * SECONDS * 1e6 / requests

    # The proxy's threads: hookgate names its serving threads (`hookgate-serve-N`) and its
    # log writer (`hookgate-log`), which counts as the proxy's too.
    kernel = micros(lambda c, d: c.startswith(comm[:15]) and d == "[kernel.kallsyms]")
    user = micros(lambda c, d: c.startswith(comm[:15]) and d != "[kernel.kallsyms]")
    helpers = micros(lambda c, d: c.startswith("hookgate-log") and d != "[kernel.kallsyms]")
    comms = ",".join(sorted({c for c, _ in found if c.startswith(comm[:15])})) or comm
    upstream = micros(lambda c, d: c.startswith("bench_upstream"))
    idle = micros(lambda c, d: c == "swapper")
    print(f"\n== {label}: {result['rps']:.0f} req/s, p99 {result['p99_us']:.0f} us")
    print(f"   CPU per request: proxy kernel {kernel:5.1f} us, proxy user {user:5.1f} us"
          f" (of which helper threads {helpers:.1f}), upstream {upstream:5.1f} us,"
          f" idle {idle:4.1f} us")
    print(f"   hottest user-space functions of {comm}:")
    per_request = SECONDS * 1e6 / requests / 100
    for row in hottest(data, comms, TOP):
        print(f"     {float(row.split('%')[0]) * per_request:6.3f} us  " + row.strip())
    print(f"   hottest kernel functions under {comm}:")
    for row in hottest(data, comms, 10, kernel=True):
        print(f"     {float(row.split('%')[0]) * per_request:6.3f} us  " + row.strip())


def main():
    global SECONDS
    if len(sys.argv) > 1:
        SECONDS = int(sys.argv[1])
    workdir = tempfile.mkdtemp(prefix="hookgate-profile-")
    upstream_port = bench.free_port()
    upstream = bench.pinned(bench.SERVER_CPU, [bench.UPSTREAM, f"127.0.0.1:{upstream_port}"])
    try:
        bench.wait_port(upstream_port)
        count = 400_000 if BODY <= 4096 else 40_000
        loads = (bench.Workload(f"warm-{BODY}", "hex", "/hooks/ck", BODY, count // 4, workdir,
                                first_id=1_000_000_000),
                 bench.Workload(f"hex-{BODY}", "hex", "/hooks/ck", BODY, count, workdir))
        config = os.path.join(workdir, "hookgate.toml")
        with open(config, "w") as f:
            f.write(bench.hookgate_config(upstream_port))

        def hookgate(port):
            return bench.pinned(bench.SERVER_CPU, [bench.HOOKGATE, "serve", "--config", config,
                                                   "--listen", f"127.0.0.1:{port}"])

        def nginx(port):
            ndir = tempfile.mkdtemp(dir=workdir)
            conf = os.path.join(ndir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(bench.NGINX_CONF.format(dir=ndir, upstream=upstream_port, port=port))
            return bench.pinned(bench.SERVER_CPU, ["nginx", "-c", conf, "-p", ndir])

        profile("hookgate (verify+fresh+dedup)", "hookgate", hookgate, upstream_port, loads,
                workdir)
        profile("nginx (plain proxy_pass)", "nginx", nginx, upstream_port, loads, workdir)
    finally:
        bench.stop(upstream)
        if KEEP:
            print(f"\nperf data kept in {workdir} (hookgate.perf, nginx.perf: `perf annotate -i`)")
        else:
            subprocess.run(["rm", "-rf", workdir], check=False)


if __name__ == "__main__":
    sys.exit(main())
