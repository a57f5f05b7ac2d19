//! build-message-index: map every response's message id to its request id (spec §5.1).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::index::{self};
use kvtrace_cli::guard::{self, Input};
use kvtrace_cli::Failure;

#[derive(Parser)]
#[command(
    version,
    about = "Write a JSON map of message id (msg_…) → request id for every row of requests.db with a response",
    after_help = "EXAMPLE:\n  build-message-index examples/requests.db --output message_id_index.json"
)]
struct Args {
    /// The capture (requests.db from claude-code-proxy); opened read-only.
    db: PathBuf,
    /// Where to write the map (atomically).
    #[arg(long, default_value = "message_id_index.json")]
    output: PathBuf,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// No summary text.
    #[arg(long, short)]
    quiet: bool,
}

fn run() -> Result<(), Failure> {
    let args = Args::parse();
    guard::output_is_not_an_input("--output", &args.output, &[Input::File(&args.db)])?;
    let bar = kvtrace_cli::spinner(args.quiet || args.json, "scanning requests");
    let summary = index::write_message_index(&args.db, &args.output).map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    if args.json {
        kvtrace_cli::print_json(&summary)?;
    } else if !args.quiet {
        eprintln!(
            "{} message ids from {} rows ({} with a response, {} without a message id) → {}",
            summary.message_ids,
            summary.rows,
            summary.rows_with_response,
            summary.rows_without_message_id,
            summary.output.display()
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
