#!/usr/bin/env bash
# Make every capture of tests/fixtures/real/ and its MANIFEST.md.
#
#   scripts/realcapture/run_all.sh [--tools DIR] [--out DIR] [--all]
#   scripts/realcapture/run_all.sh [--tools DIR] [--out DIR] --compaction-only
#
# --all also makes the unmodified-proxy captures of the older versions
# (they behave like cc2.1-unmodified-proxy: every streamed turn repeated
# non-streaming), which are left out of the fixtures to keep them small.
# --compaction-only makes only cc2.1-compaction (capture.sh --scenario
# compaction) and leaves the other captures alone; a plain run does not
# remake cc2.1-compaction.  Either way MANIFEST.md lists every capture folder.
# Run setup.sh first.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=/tmp/realcapture-tools
OUT="$HERE/../../tests/fixtures/real"
ALL=0
COMPACTION_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tools) TOOLS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --all) ALL=1; shift ;;
    --compaction-only) COMPACTION_ONLY=1; shift ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
cap() {  # name version proxy switch-model [cache-model]
  echo "== $1"
  "$HERE/capture.sh" --tools "$TOOLS" --claude-version "$2" --proxy "$3" --switch-model "$4" \
    --cache-model "${5:-breakpoint}" --out "$OUT/$1"
}
if [ $COMPACTION_ONLY = 1 ]; then
  # one session: [rc:agents], two tool errors, /compact, a turn after the compaction
  echo "== cc2.1-compaction"
  "$HERE/capture.sh" --tools "$TOOLS" --claude-version 2.1.332 --proxy event --scenario compaction \
    --out "$OUT/cc2.1-compaction"
  python3 "$HERE/manifest.py" "$OUT"
  exit 0
fi
# Claude Code 2.1.332 defaults to claude-opus-5-5: switch to sonnet.
# 2.0.77 and 1.0.128 default to sonnet: switch to opus.
cap cc2.1-unmodified-proxy 2.1.332 unmodified sonnet
cap cc2.1-event-proxy      2.1.332 event      sonnet
cap cc2.0-event-proxy      2.0.77  event      opus
cap cc1.0-event-proxy      1.0.128 event      opus
# the fake API as an automatic prefix cache (64-token blocks, all models, no TTL)
cap cc2.1-event-proxy-prefixcache 2.1.332 event sonnet prefix
if [ $ALL = 1 ]; then
  cap cc2.0-unmodified-proxy 2.0.77  unmodified opus
  cap cc1.0-unmodified-proxy 1.0.128 unmodified opus
fi
python3 "$HERE/manifest.py" "$OUT"
