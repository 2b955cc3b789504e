#!/usr/bin/env bash
# The benchmark in one command: installs nginx-light, wrk and redis-server if missing, builds
# release binaries, and runs bench/run.py (hookgate vs nginx, alternating rounds, pinned CPUs).
#   bench/run.sh                      # everything, ~8 minutes
#   BENCH_ONLY=hex-1k bench/run.sh    # one comparison
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for tool in nginx:nginx-light wrk:wrk redis-server:redis-server redis-cli:redis-tools taskset:util-linux; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts packaged servers; the benchmark runs its own, pinned.
systemctl stop nginx redis-server >/dev/null 2>&1 || true
cargo build --release --locked --bin hookgate --example bench_upstream --example dedup_memory --example micro
python3 bench/run.py
echo
./target/release/examples/micro
echo
./target/release/examples/dedup_memory 1000000
