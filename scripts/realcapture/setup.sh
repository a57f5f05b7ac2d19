#!/usr/bin/env bash
# Build the two claude-code-proxy variants and install Claude Code versions
# into a scratch tools folder (default /tmp/realcapture-tools).
#
#   scripts/realcapture/setup.sh --proxy-src DIR [--tools DIR] [--apt] [VERSION...]
#
# --proxy-src  a checkout of github.com/seifghazi/claude-code-proxy (the folder
#              that holds proxy/cmd/proxy); only the Go proxy is built, web/ is skipped
# --apt        apt-get install Go and the Debian Go library packages first
# VERSION      @anthropic-ai/claude-code versions to install (default: 2.1.332 2.0.77 1.0.128)
#
# Builds offline in GOPATH mode against Debian's /usr/share/gocode: no Go
# module proxy is needed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS=/tmp/realcapture-tools
SRC=""
APT=0
VERSIONS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --proxy-src) SRC=$2; shift 2 ;;
    --tools) TOOLS=$2; shift 2 ;;
    --apt) APT=1; shift ;;
    -h|--help) sed -n 2,15p "$0"; exit 0 ;;
    *) VERSIONS+=("$1"); shift ;;
  esac
done
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(2.1.332 2.0.77 1.0.128)
[ -n "$SRC" ] || { echo "setup.sh: --proxy-src DIR is required" >&2; exit 2; }
[ -f "$SRC/proxy/cmd/proxy/main.go" ] || { echo "setup.sh: $SRC/proxy/cmd/proxy/main.go not found" >&2; exit 2; }

if [ $APT = 1 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go sqlite3 \
    golang-github-gorilla-handlers-dev golang-github-gorilla-mux-dev \
    golang-github-joho-godotenv-dev golang-github-mattn-go-sqlite3-dev \
    golang-gopkg-yaml.v3-dev
fi

mkdir -p "$TOOLS/bin"
MOD=github.com/seifghazi/claude-code-monitor   # module path from proxy/go.mod
build() {  # variant patch-or-empty
  local variant=$1 patch=$2 gp="$TOOLS/gopath-$1"
  rm -rf "$gp"
  mkdir -p "$gp/src/$(dirname $MOD)"
  cp -r "$SRC/proxy" "$gp/src/$MOD"
  rm -f "$gp/src/$MOD/go.mod" "$gp/src/$MOD/go.sum" "$gp/src/$MOD/proxy"
  if [ -n "$patch" ]; then
    # the patch is relative to the repository root (a/proxy/...)
    patch -d "$gp/src/$MOD" -p2 < "$patch"
  fi
  (cd "$gp/src/$MOD" && GO111MODULE=off GOPATH="$gp:/usr/share/gocode" GOPROXY=off GOFLAGS= \
     go build -o "$TOOLS/bin/ccp-$variant" ./cmd/proxy)
  echo "built $TOOLS/bin/ccp-$variant"
}
build unmodified ""
build event "$HERE/proxy-forward-sse-events.patch"

for v in "${VERSIONS[@]}"; do
  d="$TOOLS/cc-$v"
  if [ ! -e "$d/node_modules/@anthropic-ai/claude-code/package.json" ]; then
    mkdir -p "$d"
    (cd "$d" && npm install --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$v")
  fi
  echo "installed $d: $("$HERE/capture.sh" --print-claude-cmd --tools "$TOOLS" --claude-version "$v")"
done
