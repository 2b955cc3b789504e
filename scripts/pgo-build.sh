#!/usr/bin/env bash
# A release build of hookgate laid out by a profile of its own request path: profile-guided
# optimisation (PGO), then a post-link layout pass (BOLT), then the tests that start the real
# binary, run against the result.
#
#   scripts/pgo-build.sh   # writes target/pgo/hookgate (7-14 minutes with warm caches)
#
# hookgate's request path is more code than a 32 KiB instruction cache holds (callgrind's
# cache model: 3.5x nginx's L1 instruction misses per request, docs/performance.md). With the
# profile, the compiler lays the hot code out together and the cold code apart; BOLT then
# reorders the linked binary's blocks and functions by the same load. On the 2-core VM the
# plain release build spent 1.13-1.20x the CPU per request of the PGO build, and the PGO build
# 1.10-1.15x that of the PGO+BOLT one (same runs, alternating rounds). The steps:
#   1. an instrumented build (-Cprofile-generate) in target/pgo-generate;
#   2. bench/pgo_train.py: that build forwards the benchmark's deliveries (1 KiB and 64 KiB,
#      CloudKeep hex, through bench_upstream) and writes its profile as it exits;
#   3. llvm-profdata merges the profile; 4. the optimised build (-Cprofile-use, linked with
#      its relocations for BOLT) in target/pgo/release;
#   5. llvm-bolt instruments that build, the same training runs it, and llvm-bolt lays it out
#      by the result: target/pgo/hookgate;
#   6. every integration test that starts the real binary runs against target/pgo/hookgate
#      (HOOKGATE_TEST_BINARY), so a layout pass that broke something stops here.
# Environment: PGO_BOLT=0 skips step 5 (target/pgo/hookgate is then the PGO build),
# PGO_CHECK=0 skips step 6, PGO_PROFDATA=path names another llvm-profdata.
# Installs what it needs when missing (Debian): wrk, redis-server (for the tests of step 6),
# bolt-19, and an llvm-profdata that reads rustc's profiles: rustup's llvm-tools component,
# which matches rustc's LLVM, else Debian's llvm-19 (it reads rustc 1.95's LLVM 22 profiles;
# Debian 12's default LLVM 14 does not).
set -euo pipefail
cd "$(dirname "$0")/.."

bolt="${PGO_BOLT:-1}"
check="${PGO_CHECK:-1}"

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

profdata="${PGO_PROFDATA:-}"
if [ -z "$profdata" ] && command -v rustup >/dev/null 2>&1; then
  rustup component add llvm-tools >/dev/null 2>&1 || true
  candidate="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"
  if [ -x "$candidate" ]; then profdata="$candidate"; fi
fi
if [ -z "$profdata" ]; then
  [ -x /usr/lib/llvm-19/bin/llvm-profdata ] || apt_install llvm-19
  profdata=/usr/lib/llvm-19/bin/llvm-profdata
fi
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [ "$check" = 1 ]; then command -v redis-server >/dev/null 2>&1 || missing+=(redis-server); fi
# Debian's llvm-bolt finds its runtime library relative to its own folder, so it is run
# from /usr/lib/llvm-19/bin (the /usr/bin/llvm-bolt-19 link looks in the wrong place).
if [ "$bolt" = 1 ] && { [ ! -x /usr/lib/llvm-19/bin/llvm-bolt ] \
    || [ ! -f /usr/lib/llvm-19/lib/libbolt_rt_instr.a ]; }; then
  missing+=(bolt-19 libbolt-19-dev)
fi
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
llvm_bin=/usr/lib/llvm-19/bin
echo "== llvm-profdata: $profdata"

profiles="$PWD/target/pgo-profiles"
rm -rf "$profiles"
mkdir -p "$profiles"

echo "== 1/6 instrumented build (target/pgo-generate)"
RUSTFLAGS="-Cprofile-generate=$profiles" \
  cargo build --release --locked --bin hookgate --target-dir target/pgo-generate
# The training upstream, built normally (its own profile is not wanted).
cargo build --release --locked --example bench_upstream

echo "== 2/6 training load"
# Build scripts of the instrumented build wrote profiles too: keep only the training's.
rm -f "$profiles"/*.profraw
python3 bench/pgo_train.py target/pgo-generate/release/hookgate

echo "== 3/6 merging the profile"
"$profdata" merge -o "$profiles/merged.profdata" "$profiles"/*.profraw
# Named by its content: cargo rebuilds when its flags change, not when a file they name does.
profile="$profiles/hookgate-$(sha256sum "$profiles/merged.profdata" | cut -c1-16).profdata"
mv "$profiles/merged.profdata" "$profile"

echo "== 4/6 optimised build (target/pgo/release)"
rustflags="-Cprofile-use=$profile -Cllvm-args=-pgo-warn-missing-function=false"
# BOLT rewrites a binary that keeps its relocations.
if [ "$bolt" = 1 ]; then rustflags="$rustflags -Clink-arg=-Wl,--emit-relocs"; fi
RUSTFLAGS="$rustflags" cargo build --release --locked --bin hookgate --target-dir target/pgo
pgo=target/pgo/release/hookgate
out=target/pgo/hookgate

if [ "$bolt" = 1 ]; then
  echo "== 5/6 BOLT: instrumented copy, training load, layout"
  work=target/pgo/bolt
  rm -rf "$work"
  mkdir -p "$work"
  "$llvm_bin/llvm-bolt" "$pgo" -o "$work/hookgate.instrumented" -instrument \
    -instrumentation-file="$PWD/$work/profile" -instrumentation-file-append-pid >"$work/instrument.log" 2>&1
  python3 bench/pgo_train.py "$work/hookgate.instrumented"
  "$llvm_bin/merge-fdata" "$work"/profile.*.fdata >"$work/hookgate.fdata"
  # The layout options are cargo-pgo's, which lays out Rust binaries the same way; the line
  # tables are rewritten for the new layout, so backtraces and profilers still name lines.
  "$llvm_bin/llvm-bolt" "$pgo" -o "$out.tmp" -data="$work/hookgate.fdata" \
    -reorder-blocks=ext-tsp -reorder-functions=hfsort -split-functions -split-all-cold \
    -split-eh -update-debug-sections >"$work/optimise.log" 2>&1
  mv "$out.tmp" "$out"
else
  echo "== 5/6 BOLT skipped (PGO_BOLT=0)"
  cp "$pgo" "$out"
fi

if [ "$check" = 1 ]; then
  echo "== 6/6 the integration tests that start the binary, against $out"
  tests=()
  for file in $(grep -l 'Server::start\|hookgate()' tests/*.rs); do
    tests+=(--test "$(basename "$file" .rs)")
  done
  HOOKGATE_TEST_BINARY="$PWD/$out" cargo test --locked "${tests[@]}"
else
  echo "== 6/6 tests skipped (PGO_CHECK=0)"
fi
echo "== $out (to strip it, use llvm-strip: binutils' strip breaks a BOLT layout)"
