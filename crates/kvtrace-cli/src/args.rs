//! Flags several tools share, flattened into their `Args` (`#[command(flatten)]`), with
//! one spelling, one help text and one validation each.

use std::path::PathBuf;

use anyhow::Context as _;
use kvtrace::encode::blocks::Salt;

use crate::Failure;

/// `--salt HEX` / `--salt-file PATH`: a fixed salt instead of a fresh random one.
#[derive(clap::Args, Debug, Clone)]
pub struct SaltArgs {
    /// Fixed salt, 32 hex characters. WEAKENS ANONYMIZATION: see SALT below.
    #[arg(long, value_name = "HEX", conflicts_with = "salt_file")]
    pub salt: Option<String>,
    /// Read a fixed salt from a file. WEAKENS ANONYMIZATION: see SALT below.
    #[arg(long, value_name = "PATH")]
    pub salt_file: Option<PathBuf>,
}

impl SaltArgs {
    /// The run's salt: the fixed one (with a warning on stderr), else a random one.
    pub fn resolve(&self) -> Result<Salt, Failure> {
        let fixed = match (&self.salt, &self.salt_file) {
            (Some(hex), _) => Salt::from_hex(hex).map_err(crate::fail)?,
            (_, Some(path)) => Salt::from_file(path).map_err(crate::fail)?,
            _ => return Ok(Salt::random().context("drawing a salt")?),
        };
        eprintln!(
            "warning: a fixed salt was given; anyone who knows it can test guesses of the \
             content against the hash ids"
        );
        Ok(fixed)
    }
}

/// `--json` and `-q/--quiet`: what a tool says when it is done.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct SummaryArgs {
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar, no summary text (warnings still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

impl SummaryArgs {
    /// Whether a human-readable summary is wanted.
    pub fn text(&self) -> bool {
        !self.json && !self.quiet
    }
}

/// `--threads N`.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ThreadsArg {
    /// Worker threads (default: all cores; at most 256). Output is identical for any value.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=256))]
    pub threads: u16,
}

/// What a trace looks like: block size, segments, sub-agents, anonymization, id scope,
/// content form (build-minimal-traces).
#[derive(clap::Args, Debug, Clone)]
pub struct ShapeArgs {
    /// Tokens per block; only full blocks are hashed.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub block_size: u32,
    /// Conversations (and segments) with fewer requests produce no trace.
    #[arg(long, default_value_t = 0)]
    pub min_requests: usize,
    /// Start a new segment (`_s1`, `_s2`, …) where requests are more than N seconds apart.
    #[arg(long, value_name = "N")]
    pub split_at_gap: Option<f64>,
    /// Nest sub-agent requests inside their parent trace.
    #[arg(long)]
    pub include_subagents: bool,
    /// Rename traces trace_0001… and agents agent_001…, drop timestamps and analysis fields.
    #[arg(long)]
    pub anonymize: bool,
    /// One hash-id space for the whole run (`"hash_id_scope": "global"`): identical
    /// prefixes in different conversations share ids. Default: each conversation (with its
    /// sub-agents) numbers its blocks from 1 (`"local"`), as replayers expect.
    #[arg(long, conflicts_with = "local_hash_ids")]
    pub global_hash_ids: bool,
    /// The default (local hash-id scope); accepted for older scripts.
    #[arg(long)]
    pub local_hash_ids: bool,
    /// Hash content as stored, as the reference does, instead of the canonical form (a
    /// one-text-block `content` list and its string hash alike).
    #[arg(long)]
    pub raw_content: bool,
}

impl ShapeArgs {
    pub fn shape(&self) -> kvtrace::builder::Shape {
        kvtrace::builder::Shape {
            block_size: self.block_size as usize,
            min_requests: self.min_requests,
            split_at_gap: self.split_at_gap,
            include_subagents: self.include_subagents,
            anonymize: self.anonymize,
            local_ids: !self.global_hash_ids,
        }
    }

    pub fn form(&self) -> kvtrace::pyjson::Form {
        if self.raw_content {
            kvtrace::pyjson::Form::Raw
        } else {
            kvtrace::pyjson::Form::Canonical
        }
    }
}

/// The command line with every argument that starts with `-`, is not a flag of the
/// tool, and names an existing file or folder rewritten as `./<arg>`: Claude Code's
/// project folders are named after paths (`-Users-me-src-app`), and a user should be
/// able to pass one as it is listed. `known` are the tool's flags (without values).
pub fn hyphen_paths(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    known: &[&str],
) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut after_double_dash = false;
    for (i, a) in args.into_iter().enumerate() {
        let s = a.to_string_lossy();
        let flag_name = s.split('=').next().unwrap_or("");
        let is_path = i > 0
            && !after_double_dash
            && s.starts_with('-')
            && s.len() > 1
            && !known.contains(&flag_name)
            && std::path::Path::new(&a).exists();
        after_double_dash |= s == "--";
        if is_path {
            let mut p = std::ffi::OsString::from("./");
            p.push(&a);
            out.push(p);
        } else {
            out.push(a);
        }
    }
    out
}

/// A finite number of seconds greater than 0.
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number of seconds > 0")),
    }
}

/// A capture and its session logs, the inputs of the tools that follow conversations.
#[derive(clap::Args, Debug, Clone)]
pub struct CaptureLogs {
    /// The claude-code-proxy capture (requests.db).
    pub db: PathBuf,
    /// Directory of Claude Code session logs.
    #[arg(long)]
    pub jsonl_dir: PathBuf,
}

/// A fraction, from 0 to 1 inclusive (`--warm-prefix`).
pub fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

/// A finite number greater than 0.
pub fn positive_number(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number > 0")),
    }
}

/// `--logs-only` and its ratio (build-minimal-traces).
#[derive(clap::Args, Debug, Clone)]
pub struct LogsOnlyArgs {
    /// Build from the session logs alone, without a capture: each response is a request,
    /// as journaled by Claude Code 2.1.x, else rebuilt from the log with the tools and
    /// system prompt stood in for by a prefix of estimated size; the traces are marked
    /// "source": "session-logs" (docs/logs-only.md).
    #[arg(long, conflicts_with_all = ["batch", "id_map"])]
    pub logs_only: bool,
    /// With --logs-only: the API's tokens per token of ours (cl100k_base), used to turn the
    /// usage the logs report into the size of the stand-in prefix (logs without a request
    /// journal) [default: measured on the journaled requests of the logs, else 1].
    #[arg(long, value_parser = positive_number, value_name = "R")]
    pub api_token_ratio: Option<f64>,
}

impl LogsOnlyArgs {
    /// The ratio given (`None`: measured from journaled requests, else 1); an error when
    /// it is given without `--logs-only`.
    pub fn ratio(&self) -> Result<Option<f64>, Failure> {
        match (self.api_token_ratio, self.logs_only) {
            (Some(_), false) => Err(crate::unusable(anyhow::anyhow!(
                "--api-token-ratio applies only with --logs-only"
            ))),
            (r, _) => Ok(r),
        }
    }
}

/// Hidden flags of the benchmarks (`just bench`).
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Tokenize every request from scratch (slow; the benchmark baseline).
    #[arg(long, hide = true)]
    pub full_tokenization: bool,
    /// Benchmark floor: only read every byte of the used rows, write nothing.
    #[arg(long, hide = true)]
    pub scan_only: bool,
}
