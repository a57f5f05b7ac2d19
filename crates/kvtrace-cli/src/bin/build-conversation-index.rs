//! build-conversation-index: the `conversation_index` table of a capture (spec §5.2).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::index::{self};
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::Failure;

#[derive(Parser)]
#[command(
    name = "build-conversation-index",
    version,
    about = "Create or replace the conversation_index table of requests.db from Claude Code session logs",
    after_help = "EXAMPLE:\n  build-conversation-index examples/requests.db --jsonl-dir examples/jsonl\n\n\
This is the only kvtrace tool that writes to the capture: it replaces the table\n\
conversation_index in one transaction and never touches `requests`."
)]
struct Args {
    /// The capture (requests.db from claude-code-proxy).
    db: PathBuf,
    /// Directory scanned recursively for *.jsonl session logs [default: ~/.claude/projects]
    /// (`--projects-path`, the reference's name, is accepted too).
    #[arg(long, alias = "projects-path")]
    jsonl_dir: Option<PathBuf>,
    /// A message index written by build-message-index (built from the DB when absent).
    #[arg(long)]
    message_index: Option<PathBuf>,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let projects = match args.jsonl_dir {
        Some(p) => p,
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".claude/projects"))
            .unwrap_or_else(|| PathBuf::from(".claude/projects")),
    };
    let bar = kvtrace_cli::spinner(!args.summary.text(), "indexing session logs");
    let summary =
        index::build_conversation_index(&args.db, &projects, args.message_index.as_deref())
            .map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    kvtrace_cli::warn_unreadable(&summary.unreadable_files);
    let s = &summary;
    kvtrace_cli::finish(&args.summary, s, 0, || {
        format!(
            "{} files, {} message ids, {} matched ({:.1}% match rate), {} rows in conversation_index",
            s.files, s.message_ids, s.matched, s.match_rate, s.rows_inserted
        )
    })
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
