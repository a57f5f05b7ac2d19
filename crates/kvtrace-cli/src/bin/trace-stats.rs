//! trace-stats: the summary table of a trace set.

use std::path::PathBuf;

use clap::Parser;
use kvtrace::report::Format;
use kvtrace::stats;
use kvtrace::trace::read::{trace_files, Trace};
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "trace-stats",
    version,
    about = "Summarize a set of traces: requests, input sizes, durations, hit rates, timing",
    after_help = "EXAMPLE:\n  trace-stats traces/ --warm-prefix 0.75 --format markdown"
)]
struct Args {
    /// A trace file, or a directory of them.
    path: PathBuf,
    /// Fraction of tools+system counted as cached on each trace's first request.
    #[arg(long, default_value_t = 0.75, value_parser = kvtrace_cli::args::fraction)]
    warm_prefix: f64,
    /// markdown, csv or json.
    #[arg(long, default_value = "markdown")]
    format: Format,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let files = trace_files(&args.path).map_err(unusable)?;
    let mut traces = Vec::new();
    let mut skipped = 0;
    for f in &files {
        match Trace::read(f) {
            Ok(t) => traces.push(t),
            Err(e) => {
                skipped += 1;
                if !args.summary.quiet {
                    eprintln!("warning: skipped {e}");
                }
            }
        }
    }
    if traces.is_empty() {
        return Err(unusable(anyhow::anyhow!(
            "{}: no trace files ({} skipped)",
            args.path.display(),
            skipped
        )));
    }
    let s = stats::trace_set_stats(&traces, args.warm_prefix);
    let (dist, tokens) = stats::tables(&s, args.warm_prefix);
    let format = if args.summary.json {
        Format::Json
    } else {
        args.format
    };
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&s)?,
        Format::Csv => kvtrace::report::table::tidy_csv(&[&dist, &tokens]),
        Format::Markdown => format!(
            "**Traces:** {} | **Requests:** {} | **Traces with sub-agents:** {} | **Sub-agents:** {}\n\n{}\n{}",
            kvtrace::report::units::group_thousands(&s.traces.to_string()),
            kvtrace::report::units::group_thousands(&s.requests.to_string()),
            s.traces_with_subagents,
            s.subagents,
            dist.markdown(),
            tokens.markdown()
        ),
    };
    kvtrace_cli::out(text.trim_end())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
