//! recover-conversations: rebuild conversations from a capture whose session logs are
//! lost, and write them as Claude Code session files (docs/recovery.md).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::recover::{self, RecoverOptions};
use kvtrace_cli::args::{SummaryArgs, ThreadsArg};
use kvtrace_cli::guard::{self, Earlier, Input};
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "recover-conversations",
    version,
    about = "Recover conversations from requests.db alone (when session logs are lost) as Claude Code session files",
    after_help = "EXAMPLE:\n  recover-conversations capture/requests.db --output-dir recovered \\\n      --exclude-indexed ~/.claude/projects/myproj\n  build-minimal-traces capture/requests.db --jsonl-dir recovered --output-dir traces\n\n\
Turns are chained on salted 64-token block hashes: a request continues the conversation\n\
whose latest turn it extends (keeping at least 90% of its blocks), across compactions and\n\
pauses of any length (--max-gap sets a limit). A sub-agent is linked to the parent turn\n\
whose Task/Agent call carried its prompt and written as <stem>/subagents/agent-<id>.jsonl.\n\
--validate-against DIR scores the recovery against real session logs of the same capture."
)]
struct Args {
    /// The capture (requests.db from claude-code-proxy).
    db: PathBuf,
    /// Where to write <12 hex>-recovered.jsonl session files and their sub-agents' files
    /// (a folder holding recovered logs of an earlier run is refused unless --force).
    #[arg(long)]
    output_dir: PathBuf,
    /// Replace the recovered logs of an earlier run (those not rewritten are removed).
    #[arg(long)]
    force: bool,
    /// Session logs whose requests are already covered: never recover them again.
    #[arg(long, value_name = "JSONL_DIR")]
    exclude_indexed: Option<PathBuf>,
    /// Also skip requests whose tools+system sections hold fewer tokens (requests without
    /// tools, such as titles and quota checks, are always skipped).
    #[arg(long, default_value_t = 0)]
    min_prefix_tokens: usize,
    /// A request continues a conversation only within this many seconds of its latest turn
    /// [default: no limit: people come back after lunch or the next day].
    #[arg(long, value_name = "SECONDS")]
    max_gap: Option<f64>,
    #[command(flatten)]
    threads: ThreadsArg,
    /// Real session logs of the same capture: report pairwise precision and recall.
    #[arg(long, value_name = "JSONL_DIR")]
    validate_against: Option<PathBuf>,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    for dir in [&args.exclude_indexed, &args.validate_against]
        .into_iter()
        .flatten()
    {
        if !dir.is_dir() {
            return Err(unusable(anyhow::anyhow!(
                "{}: no such directory",
                dir.display()
            )));
        }
        // Recovered logs never land among the real ones they are compared with.
        if guard::resolve(&args.output_dir).starts_with(guard::resolve(dir)) {
            return Err(unusable(anyhow::anyhow!(
                "--output-dir {} is inside the session logs {}",
                args.output_dir.display(),
                dir.display()
            )));
        }
    }
    guard::output_is_not_an_input("--output-dir", &args.output_dir, &[Input::File(&args.db)])?;
    let earlier = guard::earlier_outputs(
        "--output-dir",
        &args.output_dir,
        Earlier::RecoveredLogs,
        args.force,
    )?;
    let max_gap = args.max_gap.unwrap_or(f64::INFINITY);
    if max_gap.is_nan() || max_gap < 0.0 {
        return Err(unusable(anyhow::anyhow!(
            "--max-gap must be a number of seconds >= 0"
        )));
    }
    let opts = RecoverOptions {
        db: args.db.clone(),
        output_dir: args.output_dir.clone(),
        exclude_indexed: args.exclude_indexed.clone(),
        min_prefix_tokens: args.min_prefix_tokens,
        max_gap_seconds: max_gap,
        threads: usize::from(args.threads.threads),
        validate_against: args.validate_against.clone(),
        salt: None,
    };
    let bar = kvtrace_cli::progress(0, args.summary.quiet, "reading candidate requests");
    let summary =
        recover::run(&opts, &kvtrace_cli::progress_callback(&bar)).map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    let removed = guard::remove_stale(&earlier, &summary.written)?;
    kvtrace_cli::warn_unreadable(&summary.unreadable_files);
    // The summary goes to stderr (stdout is for data; --json puts it there).
    kvtrace_cli::finish(&args.summary, &summary, removed, || summary.text())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
