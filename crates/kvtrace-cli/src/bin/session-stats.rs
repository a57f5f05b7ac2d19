//! session-stats: what happened in Claude Code sessions, from their JSONL logs (spec §3);
//! the metrics live in `kvtrace::session_stats`.

use std::path::PathBuf;

use clap::Parser;
use kvtrace::report::Format;
use kvtrace::session_stats;
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "session-stats",
    version,
    about = "Summarize Claude Code session logs: events, responses, models, tools, sub-agents, tokens, cache reuse",
    after_help = "EXAMPLE:\n  session-stats examples/jsonl --format markdown\n  session-stats ~/.claude/projects/my-project/0a1b….jsonl --format json"
)]
struct Args {
    /// Session files, or directories (every *.jsonl below them, sub-agents included).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// markdown or json.
    #[arg(long, default_value = "markdown")]
    format: Format,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args = Args::parse();
    if args.format == Format::Csv {
        return Err(unusable(anyhow::anyhow!(
            "--format csv is not supported here (markdown or json)"
        )));
    }
    let report = session_stats::session_stats(&args.paths).map_err(kvtrace_cli::fail)?;
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
