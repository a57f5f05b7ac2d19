//! build-conversation-index: the `conversation_index` table of a capture (spec §5.2).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::index::{self};
use kvtrace_cli::Failure;

#[derive(Parser)]
#[command(
    version,
    about = "Create or replace the conversation_index table of requests.db from Claude Code session logs",
    after_help = "EXAMPLE:\n  build-conversation-index examples/requests.db --projects-path examples/jsonl\n\n\
This is the only kvtrace tool that writes to the capture: it replaces the table\n\
conversation_index in one transaction and never touches `requests`."
)]
struct Args {
    /// The capture (requests.db from claude-code-proxy).
    db: PathBuf,
    /// Directory scanned recursively for *.jsonl session logs [default: ~/.claude/projects].
    #[arg(long)]
    projects_path: Option<PathBuf>,
    /// A message index written by build-message-index (built from the DB when absent).
    #[arg(long)]
    message_index: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// No summary text.
    #[arg(long, short)]
    quiet: bool,
}

fn run() -> Result<(), Failure> {
    let args = Args::parse();
    let projects = match args.projects_path {
        Some(p) => p,
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".claude/projects"))
            .unwrap_or_else(|| PathBuf::from(".claude/projects")),
    };
    let bar = kvtrace_cli::spinner(args.quiet || args.json, "indexing session logs");
    let summary =
        index::build_conversation_index(&args.db, &projects, args.message_index.as_deref())
            .map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    if !args.quiet {
        kvtrace_cli::warn_unreadable(&summary.unreadable_files);
    }
    if args.json {
        kvtrace_cli::print_json(&summary)?;
    } else if !args.quiet {
        println!(
            "{} files, {} message ids, {} matched ({:.1}% match rate), {} rows in conversation_index",
            summary.files, summary.message_ids, summary.matched, summary.match_rate, summary.rows_inserted
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
