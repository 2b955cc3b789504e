#!/usr/bin/env bash
# The benchmark in one command: installs nginx-light, wrk, redis-server and valgrind if missing,
# builds release binaries, and runs bench/run.py (hookgate vs nginx, alternating rounds, pinned
# CPUs), then bench/instructions.py (user-space instructions per request, noise-free).
#   bench/run.sh                                        # the four headline cases, ~5 minutes
#   BENCH_ROUNDS=3 BENCH_SECONDS=4 bench/run.sh         # a shorter run
#   BENCH_ONLY=1k-64 bench/run.sh                       # one case (BENCH_ONLY=all: every case)
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for tool in nginx:nginx-light wrk:wrk redis-server:redis-server redis-cli:redis-tools taskset:util-linux valgrind:valgrind; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts packaged servers; the benchmark runs its own, pinned.
systemctl stop nginx redis-server >/dev/null 2>&1 || true
cargo build --release --locked --bin hookgate --example bench_upstream --example dedup_memory \
  --example micro --example dedup_stores
python3 bench/run.py
echo
python3 bench/instructions.py
echo
./target/release/examples/micro
echo
./target/release/examples/dedup_memory 1000000
echo
./target/release/examples/dedup_stores
