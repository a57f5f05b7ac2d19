//! check-streams: verify the recorded SSE streams of a capture against the Messages
//! streaming grammar (spec §2); the rules live in `kvtrace::streams`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use kvtrace::streams::{self, CheckOptions};
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::Failure;

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Parser)]
#[command(
    name = "check-streams",
    version,
    about = "Check every recorded streaming response of requests.db against the SSE event rules",
    after_help = "EXAMPLE:\n  check-streams examples/requests.db\n  check-streams requests.db --request-id 0435cbe7e61ef400a6fc9786ae752f28 --format json --strict"
)]
struct Args {
    /// The claude-code-proxy capture.
    db: PathBuf,
    /// Check only this request.
    #[arg(long)]
    request_id: Option<String>,
    /// Check at most N streaming responses.
    #[arg(long)]
    limit: Option<u64>,
    /// text or json.
    #[arg(long, value_enum, default_value = "text")]
    format: Output,
    /// Exit 1 when any stream breaks a rule.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let opts = CheckOptions {
        request_id: args.request_id,
        limit: args.limit,
    };
    let report = streams::check_capture(&args.db, &opts).map_err(kvtrace_cli::fail)?;
    let format = if args.summary.json {
        Output::Json
    } else {
        args.format
    };
    match format {
        Output::Json => kvtrace_cli::print_json(&report)?,
        Output::Text => kvtrace_cli::out(report.text().trim_end())?,
    }
    if args.strict && report.with_violations > 0 {
        return Err(Failure::from(anyhow::anyhow!(
            "{} of {} streams break a rule (--strict)",
            report.with_violations,
            report.checked
        )));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
