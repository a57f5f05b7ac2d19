//! `synth-capture`: command-line front end of kvtrace-synth (flags → Config → generate → print).

use clap::{Parser, ValueEnum};
use kvtrace_synth::{generate, Config, Preset, ProxyMode};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum ProxyArg {
    Fixed,
    Old,
    Mixed,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Example,
}

/// Generate a synthetic, realistic claude-code-proxy capture (requests.db) with the matching
/// Claude Code session logs (jsonl/). Output is a pure function of the flags: the same seed and
/// knobs give byte-identical JSONL files and identical DB rows.
///
/// Example:
///   synth-capture --seed 7 --conversations 200 --output /tmp/bench     # a GB-scale benchmark
///   synth-capture --preset example --output examples --force           # the shipped example
#[derive(Parser)]
#[command(name = "synth-capture", version, verbatim_doc_comment)]
struct Args {
    /// Run seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of parent conversations.
    #[arg(long, default_value_t = 10)]
    conversations: u64,
    /// Output directory (receives requests.db and jsonl/).
    #[arg(long)]
    output: PathBuf,
    /// Proxy generation: fixed (one streaming row per call), old (streaming + non-streaming
    /// replay per call) or mixed (per conversation).
    #[arg(long, value_enum, default_value = "fixed")]
    proxy: ProxyArg,
    /// Median context size (tokens) at which a conversation compacts.
    #[arg(long, default_value_t = 160_000)]
    max_context_tokens: u64,
    /// Median number of parent API calls per conversation.
    #[arg(long, default_value_t = 50)]
    median_requests: u64,
    /// A canned capture instead of the knobs above.
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Leave out rows that no session log references (quota checks, titles, summaries).
    #[arg(long)]
    no_unrelated: bool,
    /// Leave out odd rows (errors, NULL responses, string bodies, zone offsets, fork fields).
    #[arg(long)]
    no_oddities: bool,
    /// Replace requests.db and jsonl/ if the output directory already has them.
    #[arg(long)]
    force: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print nothing on success (unless --json).
    #[arg(long)]
    quiet: bool,
}

fn main() {
    let a = Args::parse();
    let cfg = Config {
        seed: a.seed,
        conversations: a.conversations,
        proxy: match a.proxy {
            ProxyArg::Fixed => ProxyMode::Fixed,
            ProxyArg::Old => ProxyMode::Old,
            ProxyArg::Mixed => ProxyMode::Mixed,
        },
        max_context_tokens: a.max_context_tokens,
        median_requests: a.median_requests,
        preset: if a.preset.is_some() {
            Preset::Example
        } else {
            Preset::None
        },
        unrelated: !a.no_unrelated,
        oddities: !a.no_oddities,
        force: a.force,
    };
    match generate(&cfg, &a.output) {
        Ok(s) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`synth-capture … | head`) is not an error: ignore write failures.
            if a.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&s).unwrap_or_default()
                );
            } else if !a.quiet {
                let _ = writeln!(
                    out,
                    "{} conversations, {} sub-agents, {} API calls in {} rows; requests.db {:.1} MB, {} JSONL files {:.1} MB; {:.1}s ({:.0} MB/s)",
                    s.conversations,
                    s.subagents,
                    s.requests,
                    s.rows,
                    s.db_bytes as f64 / 1e6,
                    s.jsonl_files,
                    s.jsonl_bytes as f64 / 1e6,
                    s.seconds,
                    s.mb_per_s
                );
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
