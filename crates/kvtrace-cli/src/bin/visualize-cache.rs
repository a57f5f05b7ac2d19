//! visualize-cache: cache dashboards of a capture — one conversation with its sub-agents,
//! the whole capture (`combined`), or every conversation (`all`) — as self-contained HTML,
//! a statistics text report, or a request timeline; see `kvtrace::visualize`.

use std::path::PathBuf;

use clap::Parser;
use kvtrace::visualize::{self, Options, Target};
use kvtrace_cli::args::{CaptureLogs, SummaryArgs};
use kvtrace_cli::guard::{self, Input};
use kvtrace_cli::{unusable, Failure};

#[derive(Parser)]
#[command(
    name = "visualize-cache",
    version,
    about = "Simulate a prefix KV cache over a capture and draw it as an offline HTML dashboard",
    after_help = "EXAMPLE:\n  visualize-cache examples/requests.db --jsonl-dir examples/jsonl --conversation-id 044cdae1 --output dash.html\n  visualize-cache examples/requests.db --jsonl-dir examples/jsonl --conversation-id 044cdae1 --timeline\n  visualize-cache examples/requests.db --jsonl-dir examples/jsonl --conversation-id combined --text-only --ttl 300\n  visualize-cache examples/requests.db --jsonl-dir examples/jsonl --conversation-id all --output-dir dashboards"
)]
struct Args {
    #[command(flatten)]
    input: CaptureLogs,
    /// A session id (or unique prefix), `combined` (every turn of the capture, one global
    /// cache) or `all` (one dashboard per conversation plus index.html).
    #[arg(long)]
    conversation_id: String,
    /// Dashboard file (default cache_<id>.html); --text-only writes <base>_stats.txt.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Directory for the output files (required layout of `all`; default cache_dashboards).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Write the statistics report <base>_stats.txt instead of the HTML.
    #[arg(long)]
    text_only: bool,
    /// Print one line per request in time order (files are then written only with
    /// --output, --output-dir or --text-only).
    #[arg(long)]
    timeline: bool,
    /// Cache TTL in seconds (a use exactly TTL later still hits); `inf` = never expires.
    #[arg(long, default_value = "300")]
    ttl: String,
    /// Tokens per block.
    #[arg(long, default_value_t = 64)]
    block_size: usize,
    #[command(flatten)]
    summary: SummaryArgs,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let ttl = match args.ttl.as_str() {
        "inf" | "infinite" | "none" => None,
        s => Some(
            s.parse::<f64>()
                .map_err(|_| unusable(anyhow::anyhow!("--ttl {s:?}: expected seconds or `inf`")))?,
        ),
    };
    let inputs = [
        Input::File(&args.input.db),
        Input::Tree(&args.input.jsonl_dir, "jsonl"),
    ];
    if let Some(p) = &args.output {
        guard::output_is_not_an_input("--output", p, &inputs)?;
    }
    if let Some(p) = &args.output_dir {
        guard::output_is_not_an_input("--output-dir", p, &inputs)?;
    }
    let opts = Options {
        db: args.input.db,
        jsonl_dir: args.input.jsonl_dir,
        target: Target::parse(&args.conversation_id),
        output: args.output,
        output_dir: args.output_dir,
        text_only: args.text_only,
        timeline: args.timeline,
        ttl,
        block_size: args.block_size,
    };
    let bar = kvtrace_cli::progress(0, args.summary.quiet, "conversations");
    let outcome =
        visualize::run(&opts, &kvtrace_cli::progress_callback(&bar)).map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    kvtrace_cli::warn_unreadable(&outcome.unreadable);
    if args.summary.json {
        return kvtrace_cli::print_json(&outcome);
    }
    if let Some(t) = &outcome.timeline {
        kvtrace_cli::out(t)?;
    }
    if !args.summary.quiet {
        for id in &outcome.skipped {
            eprintln!("note: conversation {id} has no requests in the capture; skipped");
        }
        for p in &outcome.written {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
