//! build-message-index: map every response's message id to its request id (spec §5.1).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::index::{self};
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::guard::{self, Input};
use kvtrace_cli::Failure;

#[derive(Parser)]
#[command(
    name = "build-message-index",
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
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    guard::output_is_not_an_input("--output", &args.output, &[Input::File(&args.db)])?;
    let bar = kvtrace_cli::spinner(!args.summary.text(), "scanning requests");
    let s = index::write_message_index(&args.db, &args.output).map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    kvtrace_cli::finish(&args.summary, &s, 0, || {
        format!(
            "{} message ids from {} rows ({} with a response, {} without a message id) → {}",
            s.message_ids,
            s.rows,
            s.rows_with_response,
            s.rows_without_message_id,
            s.output.display()
        )
    })
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
