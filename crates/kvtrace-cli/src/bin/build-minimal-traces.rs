//! build-minimal-traces: turn a capture and its session logs into block traces (spec §4).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use kvtrace::builder::{self, batch, BuildError, BuildOptions, Output, Shape};
use kvtrace::encode::blocks::{IdMap, Salt};
use kvtrace_cli::guard::{self, Earlier, Input};
use kvtrace_cli::Failure;

#[derive(Parser)]
#[command(
    version,
    about = "Build compact, anonymizable KV-cache block traces from requests.db and Claude Code session logs",
    after_help = "EXAMPLE:\n  build-minimal-traces examples/requests.db --jsonl-dir examples/jsonl \\\n      --output-dir traces --include-subagents --anonymize\n\n\
SALT: each run draws a secret random salt for the block hashes. Traces hold only small\n\
integer ids, never the hashes; the salted hashes appear only in an --id-map file.\n\
--salt / --salt-file FIX the salt, for reproducible, batched or sharded runs: anyone who\n\
holds the salt (and an id map) can test guesses of the content. Keep both private.\n\n\
BATCH:\n  build-minimal-traces --batch captures.csv --output-dir traces --salt-file salt.hex\n\
captures.csv rows: name,db,jsonl_dir (relative paths start at the manifest's folder)."
)]
struct Args {
    /// The capture (requests.db from claude-code-proxy).
    #[arg(required_unless_present = "batch")]
    db: Option<PathBuf>,
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
    /// Tokens per block; only full blocks are hashed.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    block_size: u32,
    /// Conversations (and segments) with fewer requests produce no trace.
    #[arg(long, default_value_t = 0)]
    min_requests: usize,
    /// Start a new segment (`_s1`, `_s2`, …) where requests are more than N seconds apart.
    #[arg(long, value_name = "N")]
    split_at_gap: Option<f64>,
    /// Nest sub-agent requests inside their parent trace.
    #[arg(long)]
    include_subagents: bool,
    /// Rename traces trace_0001… and agents agent_001…, drop timestamps and analysis fields.
    #[arg(long)]
    anonymize: bool,
    /// One hash-id space for the whole run (`"hash_id_scope": "global"`): identical
    /// prefixes in different conversations share ids. Default: each conversation (with its
    /// sub-agents) numbers its blocks from 1 (`"local"`), as replayers expect.
    #[arg(long, conflicts_with = "local_hash_ids")]
    global_hash_ids: bool,
    /// The default (local hash-id scope); accepted for older scripts.
    #[arg(long)]
    local_hash_ids: bool,
    /// Hash content as stored, as the reference does, instead of the canonical form (a
    /// one-text-block `content` list and its string hash alike).
    #[arg(long)]
    raw_content: bool,
    /// Fixed salt, 32 hex characters. WEAKENS ANONYMIZATION: see SALT below.
    #[arg(long, value_name = "HEX", conflicts_with = "salt_file")]
    salt: Option<String>,
    /// Read a fixed salt from a file. WEAKENS ANONYMIZATION: see SALT below.
    #[arg(long, value_name = "PATH")]
    salt_file: Option<PathBuf>,
    /// Worker threads (default: all cores; at most 256). Output is identical for any value.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=256))]
    threads: u16,
    /// Tokenize every request from scratch (slow; the benchmark baseline).
    #[arg(long, hide = true)]
    full_tokenization: bool,
    /// Benchmark floor: only read every byte of the used rows, write nothing.
    #[arg(long, hide = true)]
    scan_only: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar, no summary text.
    #[arg(long, short)]
    quiet: bool,
    /// Fail (exit 1) when damaged lines or rows were skipped.
    #[arg(long)]
    strict: bool,
}

fn run() -> Result<(), Failure> {
    let args = Args::parse();
    let salt = match (&args.salt, &args.salt_file) {
        (Some(hex), _) => Some(Salt::from_hex(hex).map_err(kvtrace_cli::fail)?),
        (_, Some(path)) => Some(Salt::from_file(path).map_err(kvtrace_cli::fail)?),
        _ => None,
    };
    let salt = match salt {
        Some(s) => {
            eprintln!("warning: a fixed salt was given; anyone who knows it can test guesses of the content against the hash ids");
            s
        }
        None => Salt::random().context("drawing a salt")?,
    };
    let opts = BuildOptions {
        db: args.db.clone().unwrap_or_default(),
        jsonl_dir: args.jsonl_dir.clone().unwrap_or_default(),
        conversation_id: args.conversation_id.clone(),
        output: match &args.output {
            Some(file) => Output::File(file.clone()),
            None => Output::Dir(args.output_dir.clone()),
        },
        shape: Shape {
            block_size: args.block_size as usize,
            min_requests: args.min_requests,
            split_at_gap: args.split_at_gap,
            include_subagents: args.include_subagents,
            anonymize: args.anonymize,
            local_ids: !args.global_hash_ids,
        },
        salt,
        content_form: if args.raw_content {
            kvtrace::pyjson::Form::Raw
        } else {
            kvtrace::pyjson::Form::Canonical
        },
        threads: usize::from(args.threads),
        full_tokenization: args.full_tokenization,
        cancel: Some(kvtrace_cli::interrupt_flag()),
        first_trace_number: 1,
    };
    // No output may overwrite an input (the capture, a session log, the salt file).
    {
        let db = opts.db.as_path();
        let logs = opts.jsonl_dir.as_path();
        let mut inputs = vec![Input::File(db), Input::Tree(logs, "jsonl")];
        if let Some(salt) = &args.salt_file {
            inputs.push(Input::File(salt));
        }
        if let Some(file) = &args.output {
            guard::output_is_not_an_input("--output", file, &inputs)?;
        } else if args.batch.is_none() {
            guard::output_is_not_an_input("--output-dir", &args.output_dir, &inputs)?;
        }
    }
    let earlier = match (&args.output, args.scan_only) {
        (None, false) => guard::earlier_outputs(
            "--output-dir",
            &args.output_dir,
            Earlier::Traces,
            args.force,
        )?,
        _ => Vec::new(),
    };
    if args.scan_only {
        let s = builder::scan_used_rows(&opts).map_err(kvtrace_cli::fail)?;
        return kvtrace_cli::print_json(&s);
    }
    let bar = kvtrace_cli::progress(0, args.quiet || args.json, "conversations");
    if let Some(manifest) = &args.batch {
        return run_batch(&args, &opts, manifest, &bar, &earlier);
    }
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let mut ids = match args.id_map {
        Some(_) => IdMap::with_digests(),
        None => IdMap::new(),
    };
    let summary = builder::run_with(&opts, &mut ids, &progress).map_err(|e| match e {
        // 128 + SIGINT, as shells report an interrupted command.
        BuildError::Interrupted(_) => Failure {
            code: 130,
            error: e.into(),
        },
        other => kvtrace_cli::fail(other),
    })?;
    bar.finish_and_clear();
    if let Some(path) = &args.id_map {
        batch::write_id_map(path, &ids)?;
    }
    for path in &summary.overwritten {
        eprintln!(
            "warning: a trace file of this run was replaced: {}",
            path.display()
        );
    }
    if args.strict && !summary.overwritten.is_empty() {
        return Err(anyhow::anyhow!(
            "--strict: {} trace files were replaced",
            summary.overwritten.len()
        )
        .into());
    }
    let removed = guard::remove_stale(&earlier, &summary.files)?;
    if !args.quiet {
        kvtrace_cli::warn_unreadable(&summary.unreadable_files);
    }
    if args.json {
        kvtrace_cli::print_json(&summary)?;
    } else if !args.quiet {
        let s = &summary;
        if removed > 0 {
            eprintln!("--force: removed {removed} traces of an earlier run");
        }
        eprintln!(
            "{} traces from {} conversations: {} requests, {} sub-agents ({} requests), {} unique blocks",
            s.traces, s.conversations, s.parent_requests, s.subagents, s.subagent_requests, s.unique_blocks
        );
        let k = &s.skipped;
        if k.damaged() + k.missing_rows + k.missing_agent_files + k.bad_values > 0 {
            eprintln!(
                "skipped: {} unparseable lines, {} bad bodies, {} bad timestamps, {} missing rows, {} missing agent files, {} bad values",
                k.unparseable_lines, k.bad_bodies, k.bad_timestamps, k.missing_rows, k.missing_agent_files, k.bad_values
            );
        }
        if k.claimed_elsewhere > 0 {
            eprintln!(
                "{} responses named by two session files (a copied chain) were traced once, in the file that wrote them first",
                k.claimed_elsewhere
            );
        }
    }
    if args.strict && summary.skipped.damaged() > 0 {
        return Err(anyhow::anyhow!(
            "--strict: {} damaged lines or rows were skipped",
            summary.skipped.damaged()
        )
        .into());
    }
    Ok(())
}

fn run_batch(
    args: &Args,
    template: &BuildOptions,
    manifest: &std::path::Path,
    bar: &indicatif::ProgressBar,
    earlier: &[PathBuf],
) -> Result<(), Failure> {
    let rows = batch::read_manifest(manifest).map_err(kvtrace_cli::fail)?;
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let summary = batch::run_batch(
        template,
        &rows,
        &args.output_dir,
        args.strict,
        args.id_map.as_deref(),
        &progress,
    )
    .map_err(kvtrace_cli::fail)?;
    bar.finish_and_clear();
    let removed = guard::remove_stale(earlier, &summary.files)?;
    if args.json {
        kvtrace_cli::print_json(&summary)?;
    } else if !args.quiet {
        if removed > 0 {
            eprintln!("--force: removed {removed} traces of an earlier run");
        }
        for r in &summary.rows {
            match r.status.as_str() {
                "ok" => eprintln!(
                    "{}: {} traces, {} requests, {} new unique blocks",
                    r.name, r.traces, r.requests, r.unique_blocks
                ),
                _ => eprintln!("{}: skipped: {}", r.name, r.error),
            }
        }
        eprintln!(
            "{} rows ({} failed), {} unique blocks; summary in {}",
            summary.rows.len(),
            summary.failed,
            summary.unique_blocks,
            summary.summary_csv.display()
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    kvtrace_cli::main(run)
}
