#!/usr/bin/env bash
# hookgate vs nginx on a 16-core machine with no package access, no cargo and no network:
# upstream nginx `return 200` on CPUs 0-3, the server under test on 1 to 4 of CPUs 4-7,
# wrk (8 threads) on CPUs 8-15; alternating rounds; at most DEVICE_BUDGET_S (330 s) of cases
# (bench/device.py, which lists its cases and settings).
#
# Preparation, in the repository root of a machine that builds (the two folders are ignored):
#   cargo build --release --locked --bin hookgate
#   mkdir -p .bench-bin && cp target/release/hookgate .bench-bin/ && strip .bench-bin/hookgate
#   rm -rf .bench-kit && cp -r ../shared/bench-kit .bench-kit     # wrk, nginx and their libs
#   printf '/.bench-bin/\n/.bench-kit/\n' >> "$(git rev-parse --git-common-dir)/info/exclude"
# (stripped, the binary is about 11 MB and the kit 8 MB). Copy the checkout to the 16-core
# machine with both folders (they are ignored, so name them when the copy skips ignored files).
# Optionally also .bench-bin/hookgate-base (stripped), an earlier build: it is then a third
# system in each case's rotation, reported against this build (3 rounds instead of 4, so the
# run stays within 6 minutes; DEVICE_BASELINE=none leaves it out). To measure the build laid
# out by a profile against the plain one: scripts/pgo-build.sh, then copy target/pgo/hookgate
# to .bench-bin/hookgate and target/release/hookgate to .bench-bin/hookgate-base, both
# stripped, the first with llvm-strip (rustup's llvm-tools): binutils' strip breaks a binary
# that BOLT laid out (it then dies at start with a segmentation fault).
# Then, on the 16-core machine (as root, python3 with its standard library only):
#   bash bench/device.sh        # writes $OUT/summary.md, $OUT/results.json, $OUT/log.txt
# A check of the script on any machine (its own cores, 1 s rounds, about a minute):
#   DEVICE_DRY=1 OUT=/tmp/device-dry bash bench/device.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-$PWD/target/device-out}"
mkdir -p "$OUT"
export KIT="${KIT:-$PWD/.bench-kit}" HOOKGATE="${HOOKGATE:-$PWD/.bench-bin/hookgate}"
chmod +x "$KIT"/bin/* "$HOOKGATE" 2>/dev/null || true
{
  echo "== $(date -u) $(uname -srm), $(nproc) CPUs"
  "$HOOKGATE" --version 2>&1 || echo "hookgate --version failed"
  LD_LIBRARY_PATH="$KIT/lib" "$KIT/bin/nginx" -v 2>&1 || echo "bench-kit nginx does not run"
  LD_LIBRARY_PATH="$KIT/lib" "$KIT/bin/wrk" -v 2>&1 | head -1 || true
} 2>&1 | tee -a "$OUT/log.txt"
# The run skips a case that would end past DEVICE_BUDGET_S (330 s); this is the backstop.
timeout -k 5 $(( ${DEVICE_BUDGET_S:-330} + 20 )) python3 bench/device.py
rc=$?
echo "device.py exit status $rc" | tee -a "$OUT/log.txt"
cat "$OUT/summary.md" 2>/dev/null
exit $rc
