#!/usr/bin/env bash
# A release build of hookgate optimised with a profile of its own request path (PGO).
#
#   scripts/pgo-build.sh          # writes target/pgo/release/hookgate (about 15 minutes)
#
# hookgate's request path is more code than a 32 KiB instruction cache holds (callgrind's
# cache model: 3.5x nginx's L1 instruction misses per request, docs/performance.md). With the
# profile, the compiler lays the hot code out together and the cold code apart: on the 2-core
# VM the plain release build spent 1.13-1.20x the CPU per request of this one (same run,
# alternating rounds). The steps:
#   1. an instrumented build (-Cprofile-generate) in target/pgo-generate;
#   2. bench/pgo_train.py: that build forwards the benchmark's deliveries (1 KiB and 64 KiB,
#      CloudKeep hex, through bench_upstream) and writes its profile as it exits;
#   3. llvm-profdata merges the profile; 4. the optimised build (-Cprofile-use) in target/pgo.
# Installs what it needs when missing (Debian): wrk, and llvm-profdata from llvm-19, which
# reads the profiles of rustc 1.95's LLVM 22 (Debian 12's default llvm-profdata, LLVM 14, does
# not). PGO_PROFDATA=path names another llvm-profdata.
set -euo pipefail
cd "$(dirname "$0")/.."

profdata="${PGO_PROFDATA:-}"
if [ -z "$profdata" ]; then
  if [ ! -x /usr/lib/llvm-19/bin/llvm-profdata ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends llvm-19 >/dev/null
  fi
  profdata=/usr/lib/llvm-19/bin/llvm-profdata
fi
if ! command -v wrk >/dev/null 2>&1 || ! command -v taskset >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends wrk util-linux >/dev/null
fi

profiles="$PWD/target/pgo-profiles"
rm -rf "$profiles"
mkdir -p "$profiles"

echo "== 1/4 instrumented build (target/pgo-generate)"
RUSTFLAGS="-Cprofile-generate=$profiles" \
  cargo build --release --locked --bin hookgate --target-dir target/pgo-generate
# The training upstream, built normally (its own profile is not wanted).
cargo build --release --locked --example bench_upstream

echo "== 2/4 training load"
# Build scripts of the instrumented build wrote profiles too: keep only the training's.
rm -f "$profiles"/*.profraw
python3 bench/pgo_train.py target/pgo-generate/release/hookgate

echo "== 3/4 merging the profile"
"$profdata" merge -o "$profiles/hookgate.profdata" "$profiles"/*.profraw

echo "== 4/4 optimised build (target/pgo)"
RUSTFLAGS="-Cprofile-use=$profiles/hookgate.profdata -Cllvm-args=-pgo-warn-missing-function=false" \
  cargo build --release --locked --bin hookgate --target-dir target/pgo
echo "== target/pgo/release/hookgate"
