# kvtrace pipeline recipes. `just --list` shows them.

db := "examples/requests.db"
jsonl := "examples/jsonl"
out := "traces"
bin := "target/release"

# Build the release binaries.
build:
    cargo build --release --workspace

# Run the whole pipeline on a capture: index → traces → validate → summarize.
pipeline db=db jsonl=jsonl out=out: build
    {{bin}}/build-message-index {{db}} --output {{out}}-message_id_index.json
    {{bin}}/build-minimal-traces {{db}} --jsonl-dir {{jsonl}} --output-dir {{out}} --include-subagents --anonymize --force
    {{bin}}/validate-trace-cache {{out}} --db {{db}} --jsonl-dir {{jsonl}} --ttl 300
    {{bin}}/trace-stats {{out}}

# The pipeline on the bundled examples/.
demo: (pipeline db jsonl out)

# The test suite.
test:
    cargo test --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Every tool against the read floor on a synthetic capture (see docs/benchmarks.md).
bench conversations="20" seed="7": build
    bash scripts/bench.sh {{conversations}} {{seed}}

# Throughput of the build's inner kernels (split, transcode, tokenize, responses), one core,
# on the bench capture (generated here if `just bench` has not made it yet).
bench-kernels conversations="20" seed="7": build
    test -f /tmp/kvtrace-bench-{{conversations}}-{{seed}}/requests.db || {{bin}}/synth-capture --seed {{seed}} --conversations {{conversations}} --output /tmp/kvtrace-bench-{{conversations}}-{{seed}} --force --quiet
    cargo build --release -p kvtrace --example kernels
    target/release/examples/kernels /tmp/kvtrace-bench-{{conversations}}-{{seed}}/requests.db

# The 2-thread build on captures of 1x, 3x and 10x the bench capture's size.
bench-scaling seed="7": build
    SCALING="20 80 270" bash scripts/bench.sh 20 {{seed}}

# Regenerate the bundled example capture.
examples: build
    {{bin}}/synth-capture --preset example --output examples --force

# Run every capture folder under DIR (each with requests.db and jsonl/) as one batch.
batch dir out="traces": build
    #!/usr/bin/env bash
    set -euo pipefail
    manifest=$(mktemp)
    for d in {{dir}}/*/; do [ -f "$d/requests.db" ] && echo "$(basename "$d"),$(realpath "$d/requests.db"),$(realpath "$d/jsonl")"; done > "$manifest"
    {{bin}}/build-minimal-traces --batch "$manifest" --output-dir {{out}} --include-subagents --global-hash-ids --force

# Man pages and shell completions (bash, zsh, fish) of every tool, from their own flags,
# installed under PREFIX (share/man/man1, share/bash-completion, share/zsh, share/fish).
install-extras prefix="~/.local": build
    #!/usr/bin/env bash
    set -euo pipefail
    prefix="{{prefix}}"; prefix="${prefix/#\~/$HOME}"
    mkdir -p "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
        "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
    for bin in crates/kvtrace-cli/src/bin/*.rs; do
        tool=$(basename "$bin" .rs)
        "{{bin}}/$tool" --generate man > "$prefix/share/man/man1/$tool.1"
        "{{bin}}/$tool" --generate complete-bash > "$prefix/share/bash-completion/completions/$tool"
        "{{bin}}/$tool" --generate complete-zsh > "$prefix/share/zsh/site-functions/_$tool"
        "{{bin}}/$tool" --generate complete-fish > "$prefix/share/fish/vendor_completions.d/$tool.fish"
    done
    echo "man pages and completions for $(ls crates/kvtrace-cli/src/bin | wc -l) tools installed under $prefix"
