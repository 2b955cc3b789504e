#!/usr/bin/env python3
"""The training load of `scripts/pgo-build.sh`: runs an instrumented hookgate (built with
`-Cprofile-generate`) under the benchmark's workloads, so that its profile counts what a
forwarded delivery executes: CloudKeep hex deliveries with unique ids, 1 KiB at 64 and 16
connections and 64 KiB at 16, then base64url-signed and Standard Webhooks 1 KiB deliveries,
through `bench_upstream`. Each process is stopped with SIGTERM
(a graceful shutdown), as the profile is written when the process exits.

    python3 bench/pgo_train.py path/to/instrumented/hookgate

Needs wrk and the `bench_upstream` example (`scripts/pgo-build.sh` sees to both).
"""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

# (signature scheme, source path, body bytes, distinct ids, connections, seconds): mostly the
# benchmark's CloudKeep hex deliveries, and the two other schemes of `bench/run.py` (base64url
# signatures, Standard Webhooks), so that their code is not laid out as cold.
LOADS = [("hex", "/hooks/ck", 1024, 400_000, 64, 10), ("hex", "/hooks/ck", 1024, 400_000, 16, 5),
         ("hex", "/hooks/ck", 65536, 20_000, 16, 5),
         ("base64url", "/hooks/vaas", 1024, 200_000, 16, 3),
         ("standard", "/hooks/sw", 1024, 200_000, 16, 3)]


def main():
    binary = sys.argv[1]
    workdir = tempfile.mkdtemp(prefix="hookgate-pgo-")
    up_port = bench.free_port()
    upstream = bench.pinned(bench.SERVER_CPU, [bench.UPSTREAM, f"127.0.0.1:{up_port}"])
    try:
        bench.wait_port(up_port)
        config = os.path.join(workdir, "hookgate.toml")
        with open(config, "w") as f:
            f.write(bench.hookgate_config(up_port))
        for spec, path, body, count, connections, seconds in LOADS:
            workload = bench.Workload(f"{spec}-{body}", spec, path, body, count, workdir)
            port = bench.free_port()
            proc = subprocess.Popen([binary, "serve", "--config", config,
                                     "--listen", f"127.0.0.1:{port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                bench.wait_port(port)
                result = bench.run_wrk(port, workload, connections, seconds)
            finally:
                bench.stop(proc)
            if result["non2xx"] or result["errors"] or proc.returncode != 0:
                raise RuntimeError(f"training load {spec} {body} B x {connections}: non-2xx"
                                   f" {result['non2xx']}, errors {result['errors']},"
                                   f" exit status {proc.returncode}")
            print(f"   trained: {spec}, {body} B bodies, {connections} connections,"
                  f" {result['requests']} deliveries", flush=True)
    finally:
        bench.stop(upstream)
        subprocess.run(["rm", "-rf", workdir], check=False)


if __name__ == "__main__":
    sys.exit(main())
