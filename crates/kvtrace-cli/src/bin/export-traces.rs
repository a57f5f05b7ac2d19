//! export-traces: write a trace set in another tool's format (Mooncake-style JSONL for
//! AIPerf's `mooncake_trace` and similar replayers; docs/exports.md).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::export::{self, ExportFormat, ExportOptions};
use kvtrace_cli::args::SummaryArgs;
use kvtrace_cli::guard::{self, Input};
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "export-traces",
    version,
    about = "Export traces as one replayable request timeline (Mooncake-style JSONL)",
    after_help = "EXAMPLE:\n  export-traces traces/ --format mooncake --stagger 30 --output trace.jsonl\n\n\
Sub-agent requests are placed at their entry's t plus their own t; trace i (file-name\n\
order) starts at i x STAGGER seconds. Local-scope traces get disjoint id ranges."
)]
struct Args {
    /// A trace file, or a directory of them.
    path: PathBuf,
    /// Output format: mooncake.
    #[arg(long)]
    format: ExportFormat,
    /// Output block size in tokens, a multiple of the traces' (default: 512, what AIPerf
    /// and Mooncake replayers assume).
    #[arg(long)]
    block_size: Option<u64>,
    /// Seconds between the starts of consecutive traces.
    #[arg(long, default_value_t = 0.0)]
    stagger: f64,
    /// The JSONL file to write (`-`: standard output).
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let traces = if args.path.is_dir() {
        Input::Tree(&args.path, "json")
    } else {
        Input::File(&args.path)
    };
    guard::output_is_not_an_input("--output", &args.output, &[traces])?;
    let opts = ExportOptions {
        path: args.path,
        format: args.format,
        block_size: args.block_size,
        stagger: args.stagger,
        output: args.output,
    };
    if args.summary.json && kvtrace::trace::is_stdout(&opts.output) {
        let both = "--json and --output - both write to standard output";
        return Err(unusable(anyhow::anyhow!("{both}; choose one")));
    }
    let s = export::export(&opts).map_err(kvtrace_cli::fail)?;
    if args.summary.json {
        return kvtrace_cli::print_json(&s);
    }
    if args.summary.quiet {
        return Ok(());
    }
    // The summary goes to stderr: stdout may be the export itself (`--output -`).
    eprintln!(
        "{}: {} lines ({} traces, {} sub-agent requests), block size {} -> {}, blocks {} -> {}",
        opts.output.display(),
        s.lines,
        s.traces,
        s.subagent_requests,
        s.block_size_in,
        s.block_size_out,
        s.blocks_in,
        s.blocks_out
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
