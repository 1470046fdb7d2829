#!/usr/bin/env bash
# Run every libFuzzer target of a fuzz build for a few seconds each.
#
# Usage: scripts/fuzz_smoke.sh BUILD_DIR SECONDS
#
# Each target starts from its seed corpus (tests/fuzz/corpus/<target>, read only) plus the
# entries earlier runs found, kept in BUILD_DIR/corpus-new/<target>; what this run finds is
# added there, so later targets and reruns start from it. A target that fails has its log
# printed without the progress lines (the sanitizer or crash report, the input that caused it)
# and its crashing input left in BUILD_DIR/artifacts/. Every target runs; the script fails
# if any of them did.
set -uo pipefail

build=${1:?usage: fuzz_smoke.sh BUILD_DIR SECONDS}
seconds=${2:?usage: fuzz_smoke.sh BUILD_DIR SECONDS}
src=$(cd "$(dirname "$0")/.." && pwd)

# UBSan findings abort (the targets are also built with -fno-sanitize-recover=all).
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1

mkdir -p "$build/artifacts" "$build/logs"
failed=()
for f in "$build"/tests/fuzz_*; do
    case "$f" in *_replay) continue ;; esac
    [ -x "$f" ] || continue
    name=$(basename "$f")
    found="$build/corpus-new/$name"
    log="$build/logs/$name.log"
    mkdir -p "$found"
    echo "fuzz-smoke: $name (${seconds}s)"
    if ! "$f" -max_total_time="$seconds" -timeout=60 -print_final_stats=0 \
        -artifact_prefix="$build/artifacts/$name-" \
        "$found" "$src/tests/fuzz/corpus/$name" >"$log" 2>&1; then
        echo "fuzz-smoke: $name FAILED; its log without progress lines ($log):"
        grep -Ev '^#[0-9]+[[:space:]]' "$log"
        failed+=("$name")
    fi
done
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz-smoke: failed: ${failed[*]} (inputs in $build/artifacts)"
    exit 1
fi
