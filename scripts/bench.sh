#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md). Usage: scripts/bench.sh [CONVERSATIONS] [SEED]
# Generates (once) a synthetic capture, then measures on this machine, each tool paired
# with the floor (read-floor: every byte of `body` and `response` of every row read once
# through SQLite), RUNS times alternately, and prints medians of seconds, of the paired
# ratio tool/floor, and the peak RSS:
#   build-minimal-traces --include-subagents   2 threads on 2 cores, 1 thread on 1 core
#   validate-trace-cache, visualize-cache all, recover-conversations, list-conversations,
#   session-stats, build-minimal-traces --logs-only (the last two read only the logs)
# then the straightforward baseline (tree serialization + tiktoken-rs for every section
# of every request, single thread) on the first 10 conversations.
# SCALING="20 80 270" measures the 2-thread build on captures of those sizes instead.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
seed=${2:-7}
runs=${RUNS:-5}
salt=00112233445566778899aabbccddeeff
bin=${BIN:-target/release}
[ -n "${BIN:-}" ] || cargo build --release --workspace --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

capture() { # conversations → capture dir (generated once)
    local dir=${BENCH_DIR:-/tmp/kvtrace-bench}-$1-$seed
    if [ ! -f "$dir/requests.db" ]; then
        echo "generating $dir ($1 conversations, seed $seed)…" >&2
        "$bin/synth-capture" --seed "$seed" --conversations "$1" --output "$dir" --force --quiet
    fi
    echo "$dir"
}

# One timed run: appends "seconds peak_kb" to $out/$1.
timed() {
    local label=$1; shift
    /usr/bin/time -f "%e %M" -o "$out/time" "$@" >/dev/null 2>"$out/err" || { cat "$out/err" >&2; exit 1; }
    cat "$out/time" >> "$out/$label"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# paired LABEL CMD…: RUNS alternations of the floor and the command; prints a table row.
paired() {
    local label=$1; shift
    rm -f "$out/floor" "$out/tool"
    for _ in $(seq "$runs"); do
        timed floor $pin "$bin/read-floor" "$db"
        timed tool "$@"
    done
    local secs kb floor ratio
    secs=$(awk '{print $1}' "$out/tool" | median)
    kb=$(awk '{print $2}' "$out/tool" | sort -n | tail -1)
    floor=$(awk '{print $1}' "$out/floor" | median)
    ratio=$(paste "$out/floor" "$out/tool" | awk '{printf "%.4f\n", ($1 > 0 ? $3 / $1 : 0)}' | median)
    printf '| %-40s | %7s | %6s | %5s | %6s MB | %6.2f x |\n' "$label" "$threads" "$floor" "$secs" "$((kb / 1024))" "$ratio"
    last=$secs
}

header() {
    echo
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo
    printf '| %-40s | %7s | %6s | %5s | %9s | %8s |\n' "tool" "threads" "floor" "tool" "peak RSS" "ratio"
    printf '|%s|%s|%s|%s|%s|%s|\n' "------------------------------------------" "--------:" "-------:" "------:" "----------:" "---------:"
}

if [ -n "${SCALING:-}" ]; then
    header
    for c in $SCALING; do
        dir=$(capture "$c"); db=$dir/requests.db
        mb=$(du -m "$db" | cut -f1)
        pin="" threads=2
        paired "build, $c conversations ($mb MB)" "$bin/build-minimal-traces" "$db" --jsonl-dir "$dir/jsonl" \
            --include-subagents --salt "$salt" --quiet --force --threads 2 --output-dir "$out/s$c"
    done
    exit 0
fi

dir=$(capture "$n"); db=$dir/requests.db
common=("$db" --jsonl-dir "$dir/jsonl" --include-subagents --salt "$salt" --quiet --force)
"$bin/build-minimal-traces" "${common[@]}" --output-dir "$out/traces"
read -r rows bytes _ < <("$bin/read-floor" "$db")
echo "capture: synth-capture --seed $seed --conversations $n: $(du -m "$db" | cut -f1) MB, $rows rows, $((bytes / 1000000)) MB of body + response"
header
pin="" threads=2
paired "build-minimal-traces" "$bin/build-minimal-traces" "${common[@]}" --threads 2 --output-dir "$out/t2"
t2=$last
paired "build-minimal-traces --scan-only" "$bin/build-minimal-traces" "${common[@]}" --threads 2 --scan-only
paired "validate-trace-cache" "$bin/validate-trace-cache" "$out/traces" --db "$db" --jsonl-dir "$dir/jsonl" --quiet
paired "visualize-cache all" "$bin/visualize-cache" "$db" --jsonl-dir "$dir/jsonl" --conversation-id all --output-dir "$out/viz" --quiet
paired "recover-conversations" "$bin/recover-conversations" "$db" --output-dir "$out/rec" --force --quiet
paired "list-conversations" "$bin/list-conversations" "$db" --jsonl-dir "$dir/jsonl" --quiet
paired "session-stats (logs only)" "$bin/session-stats" "$dir/jsonl" --quiet
paired "build-minimal-traces --logs-only" "$bin/build-minimal-traces" --logs-only --jsonl-dir "$dir/jsonl" \
    --include-subagents --salt "$salt" --quiet --force --threads 2 --output-dir "$out/logs"
pin="taskset -c 0" threads=1
paired "build-minimal-traces, on 1 core" taskset -c 0 "$bin/build-minimal-traces" "${common[@]}" --threads 1 --output-dir "$out/t1"
cmp -s <(cat "$out"/t1/*) <(cat "$out"/t2/*) || { echo "threads 1 and 2 differ!" >&2; exit 1; }
t1=$last

# Baseline on a subset: the first 10 conversations (plus their agents) in a copy of the dir.
sub="$out/subset"; mkdir -p "$sub"
for f in $(ls "$dir/jsonl" | grep -v '^agent-' | grep '\.jsonl$' | head -10); do
    ln -s "$dir/jsonl/$f" "$sub/$f"; d="${f%.jsonl}"; [ -d "$dir/jsonl/$d" ] && ln -s "$dir/jsonl/$d" "$sub/$d"
done
for f in "$dir"/jsonl/agent-*.jsonl; do [ -e "$f" ] && ln -s "$f" "$sub/"; done
subset=("$db" --jsonl-dir "$sub" --include-subagents --salt "$salt" --quiet --force)
rm -f "$out/fast" "$out/full"
timed fast taskset -c 0 "$bin/build-minimal-traces" "${subset[@]}" --threads 1 --output-dir "$out/bf"
timed full taskset -c 0 "$bin/build-minimal-traces" "${subset[@]}" --threads 1 --full-tokenization --output-dir "$out/bz"
cmp -s <(cat "$out"/bf/*) <(cat "$out"/bz/*) || { echo "baseline and fast path differ!" >&2; exit 1; }
read -r fast _ < "$out/fast"; read -r full full_kb < "$out/full"
echo
printf 'build: %.2f x faster on 2 cores than on 1\n' "$(echo "$t1 / $t2" | bc -l)"
printf 'baseline (10 conversations, 1 core): %s s, %s MB; fast path %s s: %.0f x\n' "$full" "$((full_kb / 1024))" "$fast" "$(echo "$full / $fast" | bc -l)"
