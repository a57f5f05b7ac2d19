#!/usr/bin/env bash
# Benchmarks of build-minimal-traces (issue 4). Usage: scripts/bench.sh [CONVERSATIONS] [SEED]
# Generates (once) a synthetic capture, then measures, in one run on this machine:
#   scan      the floor: select the used rows and read every byte of their body+response
#   build     build-minimal-traces --include-subagents, 2 threads and 1 thread
#   baseline  the straightforward algorithm (tree serialization + tiktoken-rs for every
#             section of every request, single thread), on the first 10 conversations
# and prints a table of medians (3 runs; baseline 1 run) with peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
seed=${2:-7}
dir=${BENCH_DIR:-/tmp/kvtrace-bench-$n-$seed}
salt=00112233445566778899aabbccddeeff
bin=target/release
cargo build --release --workspace --quiet
if [ ! -f "$dir/requests.db" ]; then
    echo "generating $dir ($n conversations, seed $seed)…" >&2
    "$bin/synth-capture" --seed "$seed" --conversations "$n" --output "$dir" --force --quiet
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# median of the wall seconds of 3 runs of a command; prints "seconds peak_kb"
measure() {
    local runs=$1; shift
    local times=() peak=0
    for _ in $(seq "$runs"); do
        /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null 2>"$out/err" || { cat "$out/err" >&2; exit 1; }
        read -r secs kb < "$out/time"
        times+=("$secs"); [ "$kb" -gt "$peak" ] && peak=$kb
    done
    printf '%s\n' "${times[@]}" | sort -n | awk -v p="$peak" '{a[NR]=$1} END {print a[int((NR+1)/2)], p}'
}

common=("$dir/requests.db" --jsonl-dir "$dir/jsonl" --include-subagents --salt "$salt" --quiet --force)
read -r scan scan_kb < <(measure 3 "$bin/build-minimal-traces" "${common[@]}" --scan-only)
read -r t2 t2_kb < <(measure 3 "$bin/build-minimal-traces" "${common[@]}" --threads 2 --output-dir "$out/t2")
read -r t1 t1_kb < <(measure 3 "$bin/build-minimal-traces" "${common[@]}" --threads 1 --output-dir "$out/t1")
cmp -s <(cat "$out"/t1/*) <(cat "$out"/t2/*) || { echo "threads 1 and 2 differ!" >&2; exit 1; }

# Baseline on a subset: the first 10 conversations (plus their agents) in a copy of the dir.
sub="$out/subset"; mkdir -p "$sub"
for f in $(ls "$dir/jsonl" | grep -v '^agent-' | grep '\.jsonl$' | head -10); do
    ln -s "$dir/jsonl/$f" "$sub/$f"; d="${f%.jsonl}"; [ -d "$dir/jsonl/$d" ] && ln -s "$dir/jsonl/$d" "$sub/$d"
done
for f in "$dir"/jsonl/agent-*.jsonl; do [ -e "$f" ] && ln -s "$f" "$sub/"; done
subset=("$dir/requests.db" --jsonl-dir "$sub" --include-subagents --salt "$salt" --quiet --force)
read -r b_fast _ < <(measure 3 "$bin/build-minimal-traces" "${subset[@]}" --threads 1 --output-dir "$out/bf")
read -r b_fast2 _ < <(measure 3 "$bin/build-minimal-traces" "${subset[@]}" --threads 2 --output-dir "$out/bf2")
read -r b_full b_kb < <(measure 1 "$bin/build-minimal-traces" "${subset[@]}" --threads 1 --full-tokenization --output-dir "$out/bz")
if [ -n "${BASELINE_FULL:-}" ]; then
    read -r w_full w_kb < <(measure 1 "$bin/build-minimal-traces" "${common[@]}" --threads 1 --full-tokenization --output-dir "$out/wz")
    cmp -s <(cat "$out"/t2/*) <(cat "$out"/wz/*) || { echo "baseline and fast path differ!" >&2; exit 1; }
fi
cmp -s <(cat "$out"/bf/*) <(cat "$out"/bz/*) || { echo "baseline and fast path differ!" >&2; exit 1; }

bytes=$("$bin/build-minimal-traces" "${common[@]}" --scan-only | awk -F': ' '/"bytes"/ {gsub(",","",$2); print $2}')
db_mb=$(du -m "$dir/requests.db" | cut -f1)
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "capture: synth-capture --seed $seed --conversations $n ($db_mb MB DB, $((bytes / 1000000)) MB of body+response in used rows)"
echo
printf '| %-44s | %9s | %9s | %s |\n' "measure" "seconds" "peak RSS" "ratio"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "----------:" "----------:" "------"
printf '| %-44s | %9s | %6s MB | %s |\n' "bare scan (select + read used rows)" "$scan" "$((scan_kb / 1024))" "1.00"
printf '| %-44s | %9s | %6s MB | %.2f x scan (target <= 3) |\n' "build, 2 threads" "$t2" "$((t2_kb / 1024))" "$(echo "$t2 / $scan" | bc -l)"
printf '| %-44s | %9s | %6s MB | %.2f x faster with 2 threads (target >= 1.7) |\n' "build, 1 thread" "$t1" "$((t1_kb / 1024))" "$(echo "$t1 / $t2" | bc -l)"
printf '| %-44s | %9s | %9s | |\n' "subset (10 conversations), 1 thread" "$b_fast" ""
printf '| %-44s | %9s | %9s | |\n' "subset (10 conversations), 2 threads" "$b_fast2" ""
printf '| %-44s | %9s | %6s MB | %.0f x / %.0f x the 1 / 2-thread build (target >= 50) |\n' "subset, straightforward baseline, 1 thread" "$b_full" "$((b_kb / 1024))" "$(echo "$b_full / $b_fast" | bc -l)" "$(echo "$b_full / $b_fast2" | bc -l)"
if [ -n "${BASELINE_FULL:-}" ]; then
    printf '| %-44s | %9s | %6s MB | %.0f x the 2-thread build (target >= 50) |\n' "whole capture, straightforward baseline" "$w_full" "$((w_kb / 1024))" "$(echo "$w_full / $t2" | bc -l)"
fi
