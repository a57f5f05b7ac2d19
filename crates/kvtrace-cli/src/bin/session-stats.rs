//! session-stats: what happened in Claude Code sessions, from their JSONL logs (spec §3);
//! the metrics live in `kvtrace::session_stats`.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use kvtrace::report::Format;
use kvtrace::session_stats::{self, Options};
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "session-stats",
    version,
    about = "Summarize Claude Code session logs: prompts, responses, models, tools and tool errors, sub-agents, compactions, active time, tokens, cache reuse",
    after_help = "A project folder named like a path (-Users-me-src-app) can be given as it is.\n\nEXAMPLE:\n  session-stats examples/jsonl --format markdown\n  session-stats ~/.claude/projects/-Users-me-src-app --format json"
)]
struct Args {
    /// Session files, or directories (every *.jsonl below them, sub-agents included).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// markdown or json.
    #[arg(long, default_value = "markdown")]
    format: Format,
    /// Seconds between two entries above which the gap is a pause, not active time
    /// (default: the prompt cache's 5-minute TTL).
    #[arg(long, value_name = "SECONDS", default_value_t = session_stats::DEFAULT_PAUSE_S, value_parser = kvtrace_cli::args::positive_seconds)]
    pause: f64,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let cmd = Args::command();
    let known: Vec<String> = cmd
        .get_arguments()
        .flat_map(|a| {
            let long = a.get_long().map(|l| format!("--{l}"));
            let short = a.get_short().map(|s| format!("-{s}"));
            long.into_iter().chain(short)
        })
        .chain(["--help", "-h", "--version", "-V"].map(String::from))
        .collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let args: Args =
        kvtrace_cli::parse_from(kvtrace_cli::args::hyphen_paths(std::env::args_os(), &known));
    if args.format == Format::Csv {
        return Err(unusable(anyhow::anyhow!(
            "--format csv is not supported here (markdown or json)"
        )));
    }
    let options = Options {
        pause_s: args.pause,
    };
    let report = session_stats::session_stats(&args.paths, options).map_err(kvtrace_cli::fail)?;
    if !args.summary.quiet {
        kvtrace_cli::warn_unreadable(&report.unreadable_files);
    }
    let format = if args.summary.json {
        Format::Json
    } else {
        args.format
    };
    match format {
        Format::Json => kvtrace_cli::print_json(&report),
        _ => kvtrace_cli::out(session_stats::markdown(&report).trim_end()),
    }
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
