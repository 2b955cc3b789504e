#!/usr/bin/env python3
"""User-space instructions per request: a figure the machine's load hardly moves.

On a shared 2-core VM the CPU time per request of `bench/run.py` moves by ±20 % from round
to round with the neighbours' load; instructions executed move far less, but not nothing
(one build measured 42,600 to 49,600 per request in different runs: more in longer runs), so
compare builds in one run, alternated: `instructions.py NEW OLD NEW OLD`. This script runs each
server under `valgrind --tool=callgrind` (about 50x slower, which does not change what it
executes per request), drives it with the CloudKeep hex 1 KiB workload of `bench/run.py`,
zeroes the counters after a warm-up, and divides the instructions executed by the requests
answered, less the SHA-256 block function (see `sha256_instructions`). Kernel work (the socket calls, about equal for hookgate and nginx in
`bench/profile.py`) is not counted, nor are cache misses: it measures the proxy's own code.

    python3 bench/instructions.py [HOOKGATE ...]

Each HOOKGATE (default target/release/hookgate) is measured, then nginx (`master_process
off`, so its one worker is the measured process). Needs valgrind, wrk, nginx and the release
binaries that bench/run.sh builds. Environment: INSN_SECONDS (8), INSN_CONNECTIONS (16),
INSN_BODY (body bytes, 1024), INSN_KEEP=1 keeps the callgrind files (for `callgrind_annotate`), INSN_RUNTIME (`per-core`) and
INSN_CPUS (`0,1`: hookgate on both CPUs, so it runs two serving threads; valgrind runs them
one at a time, so this counts the scheduler's extra work, not parallelism).

INSN_CACHE=1 also simulates the caches and branch predictor (callgrind's --cache-sim and
--branch-sim, a model of a 32 KiB L1 with no prefetcher: compare systems with it, do not read
its counts as a real CPU's) and prints, per request, the instruction and data L1 misses and the
mispredicted branches (SHA-256 included: valgrind runs its portable code, which fits in L1).
Instructions alone under-state a server whose code does not fit the instruction cache.

INSN_ATOMICS=1 also counts the atomic read-modify-writes per request (`lock`-prefixed
instructions and `xchg` with memory, found with objdump in each binary) and lists the
functions that execute them. Each one on memory that other cores also write moves a cache
line between cores, a cost callgrind does not see and a 2-core machine can hardly measure;
the count is the figure to lower for scaling with cores.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

SECONDS = int(os.environ.get("INSN_SECONDS", "8"))
CONNECTIONS = int(os.environ.get("INSN_CONNECTIONS", "16"))
BODY = int(os.environ.get("INSN_BODY", "1024"))
KEEP = os.environ.get("INSN_KEEP") == "1"
# hookgate with `[server] runtime = INSN_RUNTIME` on the CPUs INSN_CPUS (default: as bench/run.py).
RUNTIME = os.environ.get("INSN_RUNTIME") or None
CPUS = os.environ.get("INSN_CPUS") or None
ATOMICS = os.environ.get("INSN_ATOMICS") == "1"
CACHE = os.environ.get("INSN_CACHE") == "1"


def callgrind(args, outdir, cpus=None):
    return bench.pinned(cpus or bench.SERVER_CPU, [
        "valgrind", "--tool=callgrind", f"--dump-instr={'yes' if ATOMICS else 'no'}"]
        + (["--cache-sim=yes", "--branch-sim=yes"] if CACHE else []) + [
        "--compress-strings=no",
        f"--callgrind-out-file={outdir}/cg.out"] + args)


def dumped_instructions(outdir, pid):
    """Asks callgrind to dump now; returns (all instructions, those in SHA-256 compression,
    heap frees)."""
    before = set(glob.glob(f"{outdir}/cg.out*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        for path in set(glob.glob(f"{outdir}/cg.out*")) - before:
            with open(path) as f:
                m = re.search(r"^(?:summary|totals):\s+(\d+)", f.read(), re.M)
            if m:
                return (int(m.group(1)),) + sha256_instructions(path)
        time.sleep(0.2)
    raise RuntimeError("callgrind wrote no dump")


def simulated_events(path):
    """The dump's totals by event name (Ir, I1mr, D1mr, D1mw, Bcm, Bim ... with INSN_CACHE)."""
    with open(path) as f:
        text = f.read()
    names = re.search(r"^events:\s+(.*)$", text, re.M).group(1).split()
    totals = re.search(r"^(?:summary|totals):\s+(.*)$", text, re.M).group(1).split()
    return dict(zip(names, (int(t) for t in totals)))


def sha256_instructions(path):
    """(Self cost of the SHA-256 block function, calls to `mi_free`) from a callgrind file.

    Valgrind's CPU has no SHA extensions, so the sha2 crate runs its portable code there,
    about 10x what the SHA-NI path costs on the machines hookgate runs on
    (`bench/profile.py`: 2 % of the samples); it is reported apart. Cost lines belong to the
    last `fn=` (inlined code switches `fi=`/`fe=` only), and the line after a `calls=` is a
    callee's cost, not its own. The frees count hookgate's heap allocations (mimalloc)."""
    total, frees, current, callee, skip_next, positions = 0, 0, "", "", False, 1
    with open(path) as f:
        for line in f:
            if line.startswith("positions:"):
                positions = len(line.split()) - 1
            if skip_next:
                skip_next = False
                continue
            if line.startswith("fn="):
                current = line
            elif line.startswith("cfn="):
                callee = line[4:].strip()
            elif line.startswith("calls="):
                skip_next = True
                if callee == "mi_free":
                    frees += int(line[6:].split()[0])
            elif "sha2::sha256::compress256" in current and line[:1] in "0123456789+-*":
                parts = line.split()
                if len(parts) > positions:
                    total += int(parts[positions])
    return total, frees


def atomic_addresses(binary):
    """Addresses of the atomic read-modify-write instructions in `binary` (as objdump and
    callgrind both give them: relative to the file's start, for a position-independent
    executable): `lock`-prefixed ones, and `xchg` with a memory operand (locked implicitly)."""
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary], check=True,
                          capture_output=True, text=True).stdout
    found = set()
    for m in re.finditer(r"^\s*([0-9a-f]+):\s+(lock |xchg\S*\s+\S*\()", dump, re.M):
        found.add(int(m.group(1), 16))
    return found


def atomic_rmws(path, binary, requests):
    """(Atomic read-modify-writes per request, [(per request, function)] largest first) of
    `binary`'s own code, from a callgrind file dumped with --dump-instr=yes. Positions are
    `instr line`, absolute (0x...), relative (+n, -n) or repeated (*); the line after a
    `calls=` is a call's inclusive cost, not the call site's own, but still moves the
    position."""
    atomic = atomic_addresses(binary)
    name = os.path.basename(binary)
    by_fn, ob, fn, addr, skip_next = {}, "", "", 0, False
    with open(path) as f:
        for line in f:
            head = line[:1]
            if head in "0123456789+-*":
                parts = line.split()
                pos = parts[0]
                if pos.startswith("0x"):
                    addr = int(pos, 16)
                elif pos[0] in "+-":
                    addr += int(pos)
                if skip_next:
                    skip_next = False
                elif addr in atomic and len(parts) >= 3 and os.path.basename(ob) == name:
                    by_fn[fn] = by_fn.get(fn, 0) + int(parts[2])
            elif line.startswith("ob="):
                ob = line[3:].strip()
            elif line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("calls="):
                skip_next = True
    ranked = sorted(((n / requests, f) for f, n in by_fn.items()), reverse=True)
    return sum(n for n, _ in ranked), ranked


def crate_of(function):
    """The crate a (demangled) function belongs to: the first path in its name, so that
    `<hyper::body::Incoming as http_body::Body>::poll_frame` is hyper's."""
    found = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", function)
    return found.group(1) if found else "?"


def by_crate(ranked):
    """[(crate, per request)] from atomic_rmws's ranking, largest first."""
    totals = {}
    for n, fn in ranked:
        totals[crate_of(fn)] = totals.get(crate_of(fn), 0) + n
    return sorted(totals.items(), key=lambda item: -item[1])


def measure(label, start, loads, upstream_port, binary=None):
    """`loads`: (warm-up workload, measured workload), with ids of their own, so that every
    measured delivery is new and forwarded (a repeat is answered without the upstream, more
    cheaply, and a varying share of them would move the figure)."""
    warmup, workload = loads
    outdir = tempfile.mkdtemp(prefix="insn-")
    port = bench.free_port()
    proc = start(port, outdir)
    try:
        bench.wait_port(port, timeout=120)
        bench.run_wrk(port, warmup, CONNECTIONS, 3)  # warm-up: connections, pools, caches
        time.sleep(1)  # the warm-up's last requests reach the upstream before it is counted
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        upstream_before = bench.upstream_count(upstream_port)
        result = bench.run_wrk(port, workload, CONNECTIONS, SECONDS)
        time.sleep(1)  # requests in flight when wrk stopped finish or are dropped
        instructions, sha256, frees = dumped_instructions(outdir, proc.pid)
        forwarded = bench.upstream_count(upstream_port) - upstream_before
        dumps = sorted(glob.glob(f"{outdir}/cg.out.*"))
        atomics = (atomic_rmws(dumps[-1], binary, max(result["requests"], 1))
                   if ATOMICS and binary and dumps else None)
        events = simulated_events(dumps[-1]) if CACHE and dumps else None
    finally:
        bench.stop(proc)
        if KEEP:
            print(f"   (callgrind output kept in {outdir})")
        else:
            subprocess.run(["rm", "-rf", outdir], check=False)
    if result["non2xx"] or result["errors"]:
        raise RuntimeError(f"{label}: non-2xx {result['non2xx']}, errors {result['errors']}")
    # Every answer was a new delivery's, so every one reached the upstream (and at most one
    # per connection more, in flight when wrk stopped).
    if result["wraps"] or not result["requests"] <= forwarded <= result["requests"] + CONNECTIONS:
        raise RuntimeError(f"{label}: the upstream counted {forwarded} deliveries for"
                           f" {result['requests']} answers ({result['wraps']} id wraps)")
    requests = max(result["requests"], 1)
    per_request = (instructions - sha256) / requests
    print(f"   {label:<44} {per_request:>10,.0f} instructions/req without SHA-256"
          f" (+{sha256 / requests:,.0f} in SHA-256), {frees / requests:.1f} heap frees/req"
          f" ({result['requests']} requests)", flush=True)
    if sha256 == 0 and "nginx" not in label:
        # A build laid out by a profile (scripts/pgo-build.sh) inlines the block function
        # into its caller, so it cannot be taken apart: only the totals compare.
        print(f"      SHA-256 inlined, not counted apart: {instructions / requests:,.0f}"
              f" instructions/req in all", flush=True)
    if events:
        n = requests
        print(f"      simulated per request: L1 instruction misses {events['I1mr'] / n:,.0f},"
              f" L1 data misses {(events['D1mr'] + events['D1mw']) / n:,.0f},"
              f" mispredicted branches {(events['Bcm'] + events['Bim']) / n:,.0f}"
              f" (of {(events['Bc'] + events['Bi']) / n:,.0f})")
    if atomics:
        total, ranked = atomics
        print(f"      {total:.1f} atomic read-modify-writes/req in its own code; by crate: "
              + ", ".join(f"{c} {n:.0f}" for c, n in by_crate(ranked)) + "; the most:")
        for n, fn in ranked[:25]:
            print(f"      {n:6.2f}  {fn[:150]}")
    return per_request


def main():
    binaries = sys.argv[1:] or [bench.HOOKGATE]
    workdir = tempfile.mkdtemp(prefix="hookgate-insn-")
    upstream_port = bench.free_port()
    upstream = bench.pinned(bench.SERVER_CPU, [bench.UPSTREAM, f"127.0.0.1:{upstream_port}"])
    try:
        bench.wait_port(upstream_port)
        count = 200_000 if BODY <= 4096 else 20_000
        loads = (bench.Workload(f"warm-{BODY}", "hex", "/hooks/ck", BODY, count, workdir,
                                first_id=1_000_000_000),
                 bench.Workload(f"hex-{BODY}", "hex", "/hooks/ck", BODY, count, workdir))
        config = os.path.join(workdir, "hookgate.toml")
        with open(config, "w") as f:
            f.write(bench.hookgate_config(upstream_port, runtime=RUNTIME))
        print(f"== user-space instructions per request (callgrind), CloudKeep hex {BODY} B,"
              f" {CONNECTIONS} connections, {SECONDS} s")
        results = {}
        for binary in binaries:
            def hookgate(port, outdir, binary=binary):
                return callgrind([binary, "serve", "--config", config,
                                  "--listen", f"127.0.0.1:{port}"], outdir, CPUS)
            results[binary] = measure(f"hookgate {binary}", hookgate, loads, upstream_port,
                                      binary)

        def nginx(port, outdir):
            ndir = tempfile.mkdtemp(dir=workdir)
            conf = os.path.join(ndir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(bench.NGINX_CONF.format(dir=ndir, upstream=upstream_port, port=port))
            return callgrind(["nginx", "-c", conf, "-p", ndir, "-g", "master_process off;"],
                             outdir)
        reference = measure("nginx (plain proxy_pass, master_process off)", nginx, loads,
                            upstream_port)
        for binary, value in results.items():
            print(f"   hookgate/nginx {binary}: {value / reference:.2f} (without SHA-256)")
    finally:
        bench.stop(upstream)
        subprocess.run(["rm", "-rf", workdir], check=False)


if __name__ == "__main__":
    sys.exit(main())
