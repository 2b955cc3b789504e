#!/usr/bin/env bash
# Fuzzes every cargo-fuzz target in fuzz/ for SECONDS_PER_TARGET seconds each (default 60), one
# target at a time, and prints how many inputs each one executed.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#   FUZZ_TARGETS="decision config" scripts/fuzz.sh 600   # a subset
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 600                # also stop a target after N inputs
#
# - Installs cargo-fuzz (`cargo install cargo-fuzz --locked`) when it is missing.
# - Works on the stable toolchain: cargo-fuzz passes nightly-only flags (-Zsanitizer=address,
#   -Cpasses=sancov-module, ...), which RUSTC_BOOTSTRAP=1 lets stable rustc accept. AddressSanitizer
#   builds that way on Linux x86_64 (hookgate is #![forbid(unsafe_code)], so it adds little;
#   set FUZZ_SANITIZER=none for a faster build without it).
# - Each target starts from a scratch copy of its checked-in seeds (fuzz/corpus/<target>/), so
#   the inputs the fuzzer discovers never flood the repository; set FUZZ_KEEP_CORPUS=1 to keep
#   the scratch corpora (the path is printed).
# - A crash stops that target: libFuzzer writes the input to fuzz/artifacts/<target>/ (ignored
#   by git). Minimise it with `RUSTC_BOOTSTRAP=1 cargo fuzz tmin <target> <file>`, then keep it as
#   fuzz/regressions/<target>/crash-<name>: `cargo test --test fuzz_corpus` replays it on stable.
# - Exits non-zero when any target crashed (or did not build).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi
targets="${FUZZ_TARGETS:-signature_header timestamp json_fields config decision}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/hookgate-fuzz.XXXXXX")"
if [ -z "${FUZZ_KEEP_CORPUS:-}" ]; then
    trap 'rm -rf "$scratch"' EXIT
fi

echo "== building the fuzz targets (sanitizer: $sanitizer)"
(cd fuzz && cargo fuzz build --release --sanitizer "$sanitizer")

failed=()
summary=()
for target in $targets; do
    corpus="$scratch/corpus/$target"
    log="$scratch/$target.log"
    mkdir -p "$corpus"
    cp fuzz/corpus/"$target"/seed-* "$corpus"/
    seeds=$(find "$corpus" -type f | wc -l)
    extra=()
    if [ "$target" = decision ]; then
        # The dedup store keeps what the accepted deliveries claim, so nearly every input looks
        # like a leak to LeakSanitizer, whose full heap scan then makes runs ~20x slower.
        extra+=("-detect_leaks=0")
    fi
    if [ -n "${FUZZ_RUNS:-}" ]; then
        extra+=("-runs=$FUZZ_RUNS")
    fi
    echo "== $target: ${seconds}s from $seeds seeds"
    start=$(date +%s)
    status=0
    (cd fuzz && cargo fuzz run --release --sanitizer "$sanitizer" "$target" "$corpus" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}") >"$log" 2>&1 || status=$?
    elapsed=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    size=$(find "$corpus" -type f | wc -l)
    line="$target: ${execs:-?} executions in ${elapsed}s, corpus $seeds -> $size files"
    if [ "$status" -ne 0 ]; then
        line="$line, FAILED (exit $status)"
        failed+=("$target")
        grep -E 'panicked at|^==[0-9]+==ERROR|SUMMARY|Test unit written to' "$log" | head -n 20 || true
        echo "   full log: $log"
        trap - EXIT # keep the scratch folder for the log
    fi
    echo "   $line"
    summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
if [ -n "${FUZZ_KEEP_CORPUS:-}" ]; then
    echo "scratch corpora kept in $scratch/corpus"
fi
