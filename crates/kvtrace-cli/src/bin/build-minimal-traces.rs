//! build-minimal-traces: turn a capture and its session logs into block traces (spec §4).

use std::path::PathBuf;

use clap::Parser;
use kvtrace::builder::{self, batch, BuildOptions, Output};
use kvtrace::encode::blocks::IdMap;
use kvtrace_cli::args::{SaltArgs, ShapeArgs, SummaryArgs, ThreadsArg};
use kvtrace_cli::guard::{self, Earlier, Input};
use kvtrace_cli::Failure;

#[derive(Parser)]
#[command(
    name = "build-minimal-traces",
    version,
    about = "Build compact, anonymizable KV-cache block traces from requests.db and Claude Code session logs",
    after_help = "EXAMPLE:\n  build-minimal-traces examples/requests.db --jsonl-dir examples/jsonl \\\n      --output-dir traces --include-subagents --anonymize\n  build-minimal-traces --logs-only --jsonl-dir ~/.claude/projects --output-dir traces --anonymize\n\n\
SALT: each run draws a secret random salt for the block hashes. Traces hold only small\n\
integer ids, never the hashes; the salted hashes appear only in an --id-map file. --salt /\n\
--salt-file FIX it (reproducible, batched or sharded runs): anyone who holds the salt (and\n\
an id map) can test guesses of the content. Keep both private.\n\n\
BATCH:\n  build-minimal-traces --batch captures.csv --output-dir traces --salt-file salt.hex\n\
captures.csv rows: name,db,jsonl_dir (relative paths start at the manifest's folder)."
)]
struct Args {
    /// The capture (requests.db from claude-code-proxy).
    #[arg(required_unless_present_any = ["batch", "logs_only"], conflicts_with = "logs_only")]
    db: Option<PathBuf>,
    #[command(flatten)]
    logs: kvtrace_cli::args::LogsOnlyArgs,
    /// Directory holding the session logs (<session>.jsonl and agent-*.jsonl files).
    #[arg(long, required_unless_present = "batch")]
    jsonl_dir: Option<PathBuf>,
    /// Process every row (name,db,jsonl_dir) of a CSV manifest into <output-dir>/<name>/,
    /// with one salt and one hash-id space; writes <output-dir>/batch_summary.csv.
    #[arg(long, value_name = "MANIFEST", conflicts_with_all = ["db", "conversation_id"])]
    batch: Option<PathBuf>,
    /// Also write a PRIVATE map of hash id → salted block digest (for merge-traces).
    /// Keep it away from the traces: with it, ids can be tested against guessed content.
    #[arg(long, value_name = "FILE", requires = "global_hash_ids")]
    id_map: Option<PathBuf>,
    /// Build only this conversation (session id, or a unique prefix of it).
    #[arg(long)]
    conversation_id: Option<String>,
    /// Output file for --conversation-id (`_sN` is added before the extension when split).
    #[arg(long, requires = "conversation_id")]
    output: Option<PathBuf>,
    /// Output directory: one `<id>.json` per trace. A folder holding traces of an earlier
    /// run is refused unless --force.
    #[arg(long, default_value = "traces")]
    output_dir: PathBuf,
    /// Replace the traces of an earlier run in --output-dir: after a successful run, the
    /// earlier traces this run did not rewrite are removed (other files are kept).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    shape: ShapeArgs,
    #[command(flatten)]
    salt: SaltArgs,
    #[command(flatten)]
    threads: ThreadsArg,
    #[command(flatten)]
    bench: kvtrace_cli::args::BenchArgs,
    #[command(flatten)]
    summary: SummaryArgs,
    /// Fail (exit 1) when damaged lines or rows were skipped.
    #[arg(long)]
    strict: bool,
}

fn run() -> Result<(), Failure> {
    let args: Args = kvtrace_cli::parse();
    let api_token_ratio = args.logs.ratio()?;
    let opts = BuildOptions {
        db: args.db.clone().unwrap_or_default(),
        jsonl_dir: args.jsonl_dir.clone().unwrap_or_default(),
        conversation_id: args.conversation_id.clone(),
        output: match &args.output {
            Some(file) => Output::File(file.clone()),
            None => Output::Dir(args.output_dir.clone()),
        },
        shape: args.shape.shape(),
        salt: args.salt.resolve()?,
        content_form: args.shape.form(),
        threads: usize::from(args.threads.threads),
        full_tokenization: args.bench.full_tokenization,
        cancel: Some(kvtrace_cli::interrupt_flag()),
        first_trace_number: 1,
        logs_only: args.logs.logs_only,
        api_token_ratio,
    };
    // No output may overwrite an input (the capture, a session log, the salt file).
    let mut inputs = vec![Input::File(&opts.db), Input::Tree(&opts.jsonl_dir, "jsonl")];
    inputs.extend(args.salt.salt_file.as_deref().map(Input::File));
    match (&args.output, &args.batch) {
        (Some(file), _) => guard::output_is_not_an_input("--output", file, &inputs)?,
        (None, None) => guard::output_is_not_an_input("--output-dir", &args.output_dir, &inputs)?,
        _ => {}
    }
    if args.bench.scan_only {
        return kvtrace_cli::print_json(
            &builder::scan_used_rows(&opts).map_err(kvtrace_cli::fail)?,
        );
    }
    let earlier = match &args.output {
        None => guard::earlier_outputs(
            "--output-dir",
            &args.output_dir,
            Earlier::Traces,
            args.force,
        )?,
        Some(_) => guard::EarlierOutputs::none(),
    };
    let bar = kvtrace_cli::progress(0, !args.summary.text(), "conversations");
    let progress = kvtrace_cli::progress_callback(&bar);
    if let Some(manifest) = &args.batch {
        let rows = batch::read_manifest(manifest).map_err(kvtrace_cli::fail)?;
        let map = args.id_map.as_deref();
        let summary = batch::run_batch(&opts, &rows, &args.output_dir, args.strict, map, &progress)
            .map_err(kvtrace_cli::fail)?;
        bar.finish_and_clear();
        let removed = guard::remove_stale(&earlier, &summary.files)?;
        return kvtrace_cli::finish(&args.summary, &summary, removed, || summary.text());
    }
    let mut ids = match args.id_map {
        Some(_) => IdMap::with_digests(),
        None => IdMap::new(),
    };
    let summary = builder::run_with(&opts, &mut ids, &progress).map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    if let Some(path) = &args.id_map {
        batch::write_id_map(path, &ids).map_err(kvtrace_cli::fail)?;
    }
    let removed = guard::remove_stale(&earlier, &summary.files)?;
    summary
        .warnings()
        .iter()
        .for_each(|w| eprintln!("warning: {w}"));
    kvtrace_cli::finish(&args.summary, &summary, removed, || summary.text())?;
    let damaged = summary.skipped.damaged() + summary.overwritten.len();
    if args.strict && damaged > 0 {
        let what = "damaged lines or rows were skipped, or trace files replaced";
        return Err(anyhow::anyhow!("--strict: {damaged} {what}").into());
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
