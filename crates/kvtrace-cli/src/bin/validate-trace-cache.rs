//! validate-trace-cache: simulated cache hit rates of traces vs the API's (spec §6).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::validate::{self, ValidateOptions};
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::guard::{self, Input};
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "validate-trace-cache",
    version,
    about = "Compare the cache hit rate simulated from trace hash ids with the rate the API reported",
    after_help = "EXAMPLE:\n  validate-trace-cache traces/ --db examples/requests.db --jsonl-dir examples/jsonl --ttl 300\n\n\
Anonymized traces (trace_0001…) are matched to their conversations by content: the\n\
sequence of (model, out, stop) of their requests must occur in exactly one conversation.\n\n\
Exit status: 0 when every trace was validated, 1 when any could not be (no match,\n\
ambiguous match, unreadable trace; the report lists each), 2 for unusable input."
)]
struct Args {
    /// A trace file, or a directory of them.
    path: PathBuf,
    /// The capture the traces were built from.
    #[arg(long)]
    db: PathBuf,
    /// The session logs the traces were built from.
    #[arg(long)]
    jsonl_dir: PathBuf,
    /// Cache TTL in seconds (every use refreshes a block); infinite when absent.
    #[arg(long)]
    ttl: Option<f64>,
    /// Count this fraction of each conversation's tools+system prefix as already cached.
    #[arg(long, default_value_t = 0.0, value_parser = kvtrace_cli::args::fraction)]
    warm_prefix: f64,
    /// Also write one CSV row per trace to this file.
    #[arg(long)]
    csv: Option<PathBuf>,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    if args.ttl.is_some_and(|t| t.is_nan() || t < 0.0) {
        return Err(unusable(anyhow::anyhow!(
            "--ttl must be a number of seconds >= 0"
        )));
    }
    if let Some(csv) = &args.csv {
        let traces = if args.path.is_dir() {
            Input::Tree(&args.path, "json")
        } else {
            Input::File(&args.path)
        };
        let inputs = [
            Input::File(&args.db),
            Input::Tree(&args.jsonl_dir, "jsonl"),
            traces,
        ];
        guard::output_is_not_an_input("--csv", csv, &inputs)?;
    }
    let opts = ValidateOptions {
        traces: args.path.clone(),
        db: args.db.clone(),
        jsonl_dir: args.jsonl_dir.clone(),
        ttl: args.ttl,
        warm_prefix: args.warm_prefix,
    };
    let bar = kvtrace_cli::progress(0, args.summary.quiet, "validating traces");
    let report = validate::validate(&opts, &kvtrace_cli::progress_callback(&bar))
        .map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    kvtrace_cli::warn_unreadable(&report.unreadable_files);
    if let Some(csv) = &args.csv {
        kvtrace::trace::write_atomic(csv, validate::render_csv(&report).as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", csv.display()))?;
    }
    if args.summary.json {
        kvtrace_cli::print_json(&report)?;
    } else if !args.summary.quiet {
        let text = validate::render_text(&report, &args.db, &args.jsonl_dir);
        kvtrace_cli::out(text.trim_end_matches('\n'))?;
    }
    // A trace that could not be validated fails the run (after the full report).
    let failed = report.traces.iter().filter(|t| t.error.is_some()).count();
    if failed > 0 {
        return Err(anyhow::anyhow!(
            "{failed} of {} traces could not be validated (their errors are in the report)",
            report.traces.len()
        )
        .into());
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
