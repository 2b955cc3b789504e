#!/usr/bin/env python3
"""How evenly the per-core runtime's serving threads share a load: hookgate (default
`runtime = "per-core"`, on every CPU of the machine) under wrk's CloudKeep hex 1 KiB workload
of bench/run.py; after each round, the CPU time of each serving thread (`hookgate-serve-N`,
from /proc/<pid>/task) and, for a build that logs it (`RUST_LOG=hookgate::server=debug`), the
connections each accepted. wrk and the minimal upstream share the CPUs: this measures the
split between the threads, not the cost.

    python3 bench/balance.py [HOOKGATE ...]      # default target/release/hookgate

Environment: BALANCE_ROUNDS (6), BALANCE_CONNECTIONS (64), BALANCE_SECONDS (4).
"""

import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

ROUNDS = int(os.environ.get("BALANCE_ROUNDS", "6"))
CONNECTIONS = int(os.environ.get("BALANCE_CONNECTIONS", "64"))
SECONDS = int(os.environ.get("BALANCE_SECONDS", "4"))


def thread_ticks(pid):
    """CPU ticks (user + system) of each serving thread of `pid`."""
    ticks = []
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/comm") as f:
                if not f.read().startswith("hookgate-serve"):
                    continue
            with open(f"{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks.append(int(fields[11]) + int(fields[12]))
    return sorted(ticks, reverse=True)


def main():
    binaries = sys.argv[1:] or [bench.HOOKGATE]
    workdir = tempfile.mkdtemp(prefix="hookgate-balance-")
    upstream_port = bench.free_port()
    upstream = subprocess.Popen([bench.UPSTREAM, f"127.0.0.1:{upstream_port}"])
    try:
        bench.wait_port(upstream_port)
        workload = bench.Workload("hex-1k", "hex", "/hooks/ck", 1024, 300_000, workdir)
        config = os.path.join(workdir, "hookgate.toml")
        with open(config, "w") as f:
            f.write(bench.hookgate_config(upstream_port))
        print(f"== serving threads' share of the load, {CONNECTIONS} connections,"
              f" {SECONDS} s rounds")
        for binary in binaries:
            busiest = []
            for n in range(ROUNDS):
                port = bench.free_port()
                log_path = os.path.join(workdir, f"round-{n}.log")
                with open(log_path, "w") as log:
                    proc = subprocess.Popen(
                        [binary, "serve", "--config", config, "--listen", f"127.0.0.1:{port}"],
                        stdout=subprocess.DEVNULL, stderr=log,
                        env=dict(os.environ, RUST_LOG="info,hookgate::server=debug"))
                    try:
                        bench.wait_port(port)
                        result = bench.run_wrk(port, workload, CONNECTIONS, SECONDS)
                        ticks = thread_ticks(proc.pid)
                    finally:
                        proc.kill()
                        proc.wait()
                with open(log_path) as f:
                    accepted = collections.Counter(re.findall(r"serving_thread=(\d+)", f.read()))
                share = ticks[0] / max(sum(ticks), 1)
                busiest.append(share)
                print(f"   {binary} round {n + 1}: CPU ticks per thread {ticks}"
                      f" (busiest {100 * share:.0f} %), accepted per thread"
                      f" {sorted(accepted.values(), reverse=True) or 'not logged'},"
                      f" {result['rps']:.0f} req/s, p99 {result['p99_us'] / 1000:.1f} ms")
            print(f"   {binary}: busiest thread's share of the serving CPU, by round:"
                  f" {', '.join(f'{100 * s:.0f} %' for s in busiest)}")
    finally:
        upstream.kill()
        upstream.wait()
        subprocess.run(["rm", "-rf", workdir], check=False)


if __name__ == "__main__":
    sys.exit(main())
