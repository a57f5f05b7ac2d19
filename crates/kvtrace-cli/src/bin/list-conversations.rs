//! list-conversations: one row per parent conversation of a capture, sorted by start time
//! (the rows are computed by `kvtrace::conversations`).

use clap::Parser;
use kvtrace::conversations;
use kvtrace_cli::args::{CaptureLogs, SummaryArgs};
use kvtrace_cli::Failure;

#[derive(Parser)]
#[command(
    name = "list-conversations",
    version,
    about = "List the conversations of a capture: requests, times, models, sub-agents, API cache-read share",
    after_help = "EXAMPLE:\n  list-conversations examples/requests.db --jsonl-dir examples/jsonl\n  list-conversations requests.db --jsonl-dir ~/.claude/projects/my-project --format csv"
)]
struct Args {
    #[command(flatten)]
    input: CaptureLogs,
    /// text, csv or json.
    #[arg(long, default_value = "text", value_parser = ["text", "csv", "json"])]
    format: String,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let listing =
        conversations::list(&args.input.db, &args.input.jsonl_dir).map_err(kvtrace_cli::fail)?;
    if !args.summary.quiet {
        kvtrace_cli::warn_unreadable(&listing.unreadable);
    }
    let rows = listing.conversations;
    let format = if args.summary.json {
        "json"
    } else {
        args.format.as_str()
    };
    match format {
        "json" => kvtrace_cli::print_json(&rows),
        "csv" => kvtrace_cli::out(conversations::csv(&rows).trim_end()),
        _ => kvtrace_cli::out(conversations::text(&rows).trim_end()),
    }
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
