#!/usr/bin/env bash
# One real capture: fake Anthropic API <- claude-code-proxy <- real Claude Code,
# all inside a loopback-only network namespace (unshare -rn).
#
#   scripts/realcapture/capture.sh --claude-version V --proxy unmodified|event --out DIR
#        [--tools /tmp/realcapture-tools] [--switch-model MODEL] [--keep-scratch]
#        [--cache-model breakpoint|prefix] [--scenario default|compaction]
#
# Runs Claude Code in print mode in /tmp/ccwork with HOME=/tmp/cchome (both
# wiped first).  --scenario default (the default) runs three invocations:
#   1. claude -p "[rc:agents] ..."              parallel sub-agents, one in the background
#   2. claude -c -p "[rc:tools] ..."            continuation
#   3. claude -c -p --model MODEL "[rc:think] ..."  continuation with a model switch
# --scenario compaction runs four, one session (--switch-model is not used):
#   1. claude -p "[rc:agents] ..."              as above
#   2. claude -c -p "[rc:errors] ..."           two tool errors (missing file)
#   3. claude -c -p "/compact"                  manual compaction
#   4. claude -c -p "[rc:after] ..."            a turn after the compaction
# and writes into DIR: requests.db (vacuumed), jsonl/<project>/..., api_log.jsonl,
# proxy.log, claude-runs.log, info.json.
# --cache-model picks the fake API's cache usage model (default: the env var
# FAKE_API_CACHE_MODEL, else breakpoint); see fake_anthropic.py --help.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=/tmp/realcapture-tools
VERSION=""
PROXY=unmodified
OUT=""
SWITCH_MODEL=""
KEEP=0
PRINT_CMD=0
CACHE_MODEL=${FAKE_API_CACHE_MODEL:-breakpoint}
SCENARIO=default
ARGS_ORIG=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --tools) TOOLS=$2; shift 2 ;;
    --claude-version) VERSION=$2; shift 2 ;;
    --proxy) PROXY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --switch-model) SWITCH_MODEL=$2; shift 2 ;;
    --cache-model) CACHE_MODEL=$2; shift 2 ;;
    --scenario) SCENARIO=$2; shift 2 ;;
    --keep-scratch) KEEP=1; shift ;;
    --print-claude-cmd) PRINT_CMD=1; shift ;;
    -h|--help) sed -n 2,22p "$0"; exit 0 ;;
    *) echo "capture.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$VERSION" ] || { echo "capture.sh: --claude-version is required" >&2; exit 2; }
case "$CACHE_MODEL" in
  breakpoint|prefix) ;;
  *) echo "capture.sh: --cache-model must be breakpoint or prefix, not '$CACHE_MODEL'" >&2; exit 2 ;;
esac
case "$SCENARIO" in
  default|compaction) ;;
  *) echo "capture.sh: --scenario must be default or compaction, not '$SCENARIO'" >&2; exit 2 ;;
esac

# How to start this Claude Code version: >= 2.1 ships a native binary in a
# per-platform package; older versions are a node script (cli.js).
PKG="$TOOLS/cc-$VERSION/node_modules/@anthropic-ai"
if [ -x "$PKG/claude-code-linux-x64/claude" ]; then
  CLAUDE=("$PKG/claude-code-linux-x64/claude")
elif [ -f "$PKG/claude-code/cli.js" ]; then
  CLAUDE=(node "$PKG/claude-code/cli.js")
else
  echo "capture.sh: Claude Code $VERSION not installed under $TOOLS (run setup.sh)" >&2; exit 2
fi
if [ $PRINT_CMD = 1 ]; then echo "${CLAUDE[*]}"; exit 0; fi
[ -n "$OUT" ] || { echo "capture.sh: --out is required" >&2; exit 2; }
PROXY_BIN="$TOOLS/bin/ccp-$PROXY"
[ -x "$PROXY_BIN" ] || { echo "capture.sh: $PROXY_BIN missing (run setup.sh)" >&2; exit 2; }

# Re-enter in a new user + network namespace: only a loopback interface,
# so nothing can reach any address outside this machine.
if [ -z "${REALCAPTURE_IN_NS:-}" ]; then
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  exec env REALCAPTURE_IN_NS=1 unshare -rn bash "$0" "${ARGS_ORIG[@]}" --out "$OUT"
fi

ip link set lo up
if ip -o addr | grep -v ' lo ' | grep -q inet; then
  echo "capture.sh: namespace has a non-loopback address, refusing" >&2; exit 1
fi

HOMED=/tmp/cchome
WORK=/tmp/ccwork
SCR=/tmp/ccscratch
API_PORT=8787
PROXY_PORT=3001
rm -rf "$HOMED" "$WORK" "$SCR"
mkdir -p "$HOMED" "$WORK" "$SCR"
printf 'alpha\nbeta\ngamma\n' > "$WORK/notes.txt"
printf '1\n2\n3\n' > "$WORK/data.txt"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# ids (msg_, toolu_, req_) come from a seeded RNG: seed by capture name so
# that two captures never share a message id
SEED=$(basename "$OUT" | cksum | cut -d' ' -f1)
FAKE_API_CACHE_MODEL=$CACHE_MODEL python3 "$HERE/fake_anthropic.py" --port $API_PORT --seed "$SEED" --log "$SCR/api_log.jsonl" 2> "$SCR/fake_api.log" &
PIDS+=($!)
# claude-code-proxy reads PORT, ANTHROPIC_FORWARD_URL and DB_PATH (and a
# config.yaml / .env beside it or in its cwd: there is none in $SCR).
(cd "$SCR" && exec env PORT=$PROXY_PORT ANTHROPIC_FORWARD_URL=http://127.0.0.1:$API_PORT \
   DB_PATH="$SCR/requests.db" "$PROXY_BIN") > "$SCR/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=($PROXY_PID)
for port in $API_PORT $PROXY_PORT; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
done

export HOME=$HOMED
export ANTHROPIC_API_KEY=sk-ant-fake-realcapture-0000000000000000
export ANTHROPIC_BASE_URL=http://127.0.0.1:$PROXY_PORT
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1
export DISABLE_ERROR_REPORTING=1 DISABLE_BUG_COMMAND=1 DISABLE_COST_WARNINGS=1
export IS_SANDBOX=1            # lets --dangerously-skip-permissions run as (namespace) root
export MAX_THINKING_TOKENS=2048  # older versions think only when asked to
unset ANTHROPIC_AUTH_TOKEN CLAUDE_CODE_USE_BEDROCK CLAUDE_CODE_USE_VERTEX || true
cd "$WORK"

RUNLOG="$SCR/claude-runs.log"
: > "$RUNLOG"
run() {  # label, args...
  local label=$1; shift
  {
    echo "=== $label"
    echo "\$ claude $*"
  } >> "$RUNLOG"
  local rc=0
  timeout 240 "${CLAUDE[@]}" "$@" > "$SCR/out.txt" 2> "$SCR/err.txt" || rc=$?
  { echo "--- exit $rc; stdout:"; cat "$SCR/out.txt"; echo "--- stderr:"; cat "$SCR/err.txt"; } >> "$RUNLOG"
  echo "$label: exit $rc"
}
P="--dangerously-skip-permissions"
run run1 -p "[rc:agents] Inspect this folder with parallel sub-agents, then list and read the files." $P
if [ "$SCENARIO" = compaction ]; then
  run run2 -c -p "[rc:errors] Read missing.txt, then look for it with ls." $P
  run run3 -c -p "/compact" $P
  run run4 -c -p "[rc:after] Go on: read data.txt again and add the numbers." $P
else
run run2 -c -p "[rc:tools] Now count the bytes of the text files." $P
if [ -n "$SWITCH_MODEL" ]; then
  run run3 -c -p "[rc:think] Think, then read data.txt and add the numbers." --model "$SWITCH_MODEL" $P
else
  run run3 -c -p "[rc:think] Think, then read data.txt and add the numbers." $P
fi
fi
sleep 2
kill -TERM $PROXY_PID; wait $PROXY_PID 2>/dev/null || true

# ---- collect
rm -rf "$OUT/jsonl" "$OUT/requests.db"
mkdir -p "$OUT/jsonl"
sqlite3 "$SCR/requests.db" "VACUUM INTO '$OUT/requests.db'"
cp -r "$HOMED/.claude/projects/." "$OUT/jsonl/"
find "$OUT/jsonl" -type d -empty -delete
cp "$SCR/api_log.jsonl" "$SCR/proxy.log" "$RUNLOG" "$OUT/"
python3 - "$OUT" "$VERSION" "$PROXY" "${SWITCH_MODEL:-}" "${CLAUDE[*]}" "$CACHE_MODEL" "$SCENARIO" <<'EOF'
import json, sys, os
out, version, proxy, switch, cmd, cache_model, scenario = sys.argv[1:]
info = {"claude_code_version": version, "proxy_variant": proxy, "switch_model": switch or None,
        "home": "/tmp/cchome", "cwd": "/tmp/ccwork"}
if cache_model != "breakpoint":  # the default is left out, as in the captures made before the option
    info["cache_model"] = cache_model
if scenario != "default":  # likewise
    info["scenario"] = scenario
json.dump(info, open(os.path.join(out, "info.json"), "w"), indent=1)
EOF
[ $KEEP = 1 ] || rm -rf "$SCR"
echo "capture written to $OUT"
