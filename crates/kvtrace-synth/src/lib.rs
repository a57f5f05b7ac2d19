//! kvtrace-synth: a deterministic generator of realistic claude-code-proxy captures
//! (`requests.db`, spec §2) and the matching Claude Code session logs (`jsonl/`, spec §3).
//!
//! Same seed and knobs → byte-identical JSONL files and identical DB rows. Conversations are
//! generated one at a time on a worker thread (contexts, sub-agents, session logs) while the
//! calling thread streams the rows into SQLite in large transactions, so memory stays bounded
//! by one conversation whatever `--conversations` is.

pub mod clock;
pub mod ids;
pub mod json;
pub mod model;
pub mod prompts;
pub mod sim;
pub mod text;

use rand::Rng;
use serde::Serialize;
use sim::{ConvPlan, ConvStats, ForcedFanout, Row, Shared};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// File-system failure.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Unusable configuration or output location.
    #[error("{0}")]
    Invalid(String),
}

/// Which proxy generation wrote the capture (spec §2 "Old vs fixed proxy").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// One streaming request per API call.
    Fixed,
    /// A streaming request plus a non-streaming replay per call.
    Old,
    /// Each conversation picks one of the two.
    Mixed,
}

/// Canned shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Everything drawn from the knobs.
    None,
    /// The small example capture shipped in `examples/`.
    Example,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Run seed.
    pub seed: u64,
    /// Number of conversations (ignored by the example preset).
    pub conversations: u64,
    /// Proxy generation.
    pub proxy: ProxyMode,
    /// Median compaction threshold in tokens (each conversation draws 0.6–1.15×).
    pub max_context_tokens: u64,
    /// Median parent API calls per conversation.
    pub median_requests: u64,
    /// Canned shape.
    pub preset: Preset,
    /// Emit rows no session log references (quota checks, titles, summaries).
    pub unrelated: bool,
    /// Emit odd rows (errors, NULL responses, string bodies, offsets, forks' ttft).
    pub oddities: bool,
    /// Replace an existing capture in the output directory.
    pub force: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            conversations: 10,
            proxy: ProxyMode::Fixed,
            max_context_tokens: 160_000,
            median_requests: 50,
            preset: Preset::None,
            unrelated: true,
            oddities: true,
            force: false,
        }
    }
}

/// What was generated.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Parent conversations.
    pub conversations: u64,
    /// Sub-agents.
    pub subagents: u64,
    /// API calls referenced by session logs (parent + sub-agents).
    pub requests: u64,
    /// Rows in requests.db (including replays, failures and unrelated rows).
    pub rows: u64,
    /// Bytes of body + response text written to requests.db.
    pub payload_bytes: u64,
    /// Size of requests.db.
    pub db_bytes: u64,
    /// Session-log files.
    pub jsonl_files: u64,
    /// Session-log bytes.
    pub jsonl_bytes: u64,
    /// db_bytes + jsonl_bytes.
    pub total_bytes: u64,
    /// Compactions.
    pub compactions: u64,
    /// Largest context of any request (≈ tokens).
    pub max_context_tokens: u64,
    /// Wall time.
    pub seconds: f64,
    /// total_bytes / seconds, in MB/s.
    pub mb_per_s: f64,
}

/// The `CREATE TABLE` of the proxy capture, as in the golden capture.
pub const SCHEMA: &str = "CREATE TABLE requests (
        id TEXT PRIMARY KEY, timestamp TEXT, method TEXT, endpoint TEXT, headers TEXT, body TEXT,
        user_agent TEXT, content_type TEXT, prompt_grade TEXT, response TEXT, model TEXT,
        original_model TEXT, routed_model TEXT, created_at DATETIME DEFAULT CURRENT_TIMESTAMP)";

/// The plans of every conversation of a run, in order, with their start times.
pub fn plans(cfg: &Config) -> Vec<(ConvPlan, i64)> {
    let base = clock::ms_of(2026, 3, 2, 9, 0, 0);
    match cfg.preset {
        Preset::Example => {
            let common = ConvPlan {
                target_requests: 6,
                max_context_tokens: 30_000,
                old_proxy: false,
                forced_fanout: None,
                random_fanout: false,
                unrelated: true,
                oddities: false,
                parent_model: Some(sim::OPUS),
                content_scale: 0.3,
                layout: Some(2),
            };
            let first = ConvPlan {
                target_requests: 42,
                forced_fanout: Some(ForcedFanout {
                    at_request: 4,
                    count: 4,
                    kind: "Explore",
                    requests: 12,
                }),
                ..common.clone()
            };
            let second = ConvPlan {
                parent_model: Some(sim::SONNET),
                ..common
            };
            vec![(first, base), (second, base + 26 * 3600 * 1000)]
        }
        Preset::None => {
            let mut rng = ids::rng_for(cfg.seed, 0);
            let mut t = base;
            (0..cfg.conversations)
                .map(|_| {
                    let median = cfg.median_requests.max(1) as f64;
                    let n = sim::lognormal(&mut rng, median, 0.6).clamp(3.0, median * 8.0) as usize;
                    let old = match cfg.proxy {
                        ProxyMode::Fixed => false,
                        ProxyMode::Old => true,
                        ProxyMode::Mixed => rng.gen_bool(0.5),
                    };
                    let ctx = (cfg.max_context_tokens as f64 * rng.gen_range(0.6..1.15)) as u64;
                    let plan = ConvPlan {
                        target_requests: n,
                        max_context_tokens: ctx.max(20_000),
                        old_proxy: old,
                        forced_fanout: None,
                        random_fanout: true,
                        unrelated: cfg.unrelated,
                        oddities: cfg.oddities,
                        parent_model: None,
                        content_scale: 1.0,
                        layout: None,
                    };
                    let start = t;
                    t += rng.gen_range(5 * 60_000..20 * 3_600_000);
                    (plan, start)
                })
                .collect()
        }
    }
}

fn prepare_output(dir: &Path, force: bool) -> Result<(PathBuf, PathBuf), SynthError> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join("requests.db");
    let jsonl = dir.join("jsonl");
    if db.exists() || jsonl.exists() {
        if !force {
            return Err(SynthError::Invalid(format!(
                "{} already holds requests.db or jsonl/ (use --force to replace them)",
                dir.display()
            )));
        }
        if db.exists() {
            std::fs::remove_file(&db)?;
        }
        if jsonl.exists() {
            std::fs::remove_dir_all(&jsonl)?;
        }
    }
    let db_tmp = dir.join("requests.db.tmp");
    let jsonl_tmp = dir.join("jsonl.tmp");
    if db_tmp.exists() {
        std::fs::remove_file(&db_tmp)?;
    }
    if jsonl_tmp.exists() {
        std::fs::remove_dir_all(&jsonl_tmp)?;
    }
    std::fs::create_dir_all(&jsonl_tmp)?;
    Ok((db_tmp, jsonl_tmp))
}

/// Generate a capture into `out_dir` (`requests.db` and `jsonl/`).
pub fn generate(cfg: &Config, out_dir: &Path) -> Result<Summary, SynthError> {
    let t0 = Instant::now();
    let (db_tmp, jsonl_tmp) = prepare_output(out_dir, cfg.force)?;
    let result = generate_into(cfg, &db_tmp, &jsonl_tmp);
    match result {
        Ok(mut s) => {
            std::fs::rename(&db_tmp, out_dir.join("requests.db"))?;
            std::fs::rename(&jsonl_tmp, out_dir.join("jsonl"))?;
            s.seconds = t0.elapsed().as_secs_f64();
            s.total_bytes = s.db_bytes + s.jsonl_bytes;
            s.mb_per_s = s.total_bytes as f64 / 1e6 / s.seconds.max(1e-9);
            Ok(s)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&db_tmp);
            let _ = std::fs::remove_dir_all(&jsonl_tmp);
            Err(e)
        }
    }
}

const BATCH_BYTES: u64 = 256 << 20;

fn generate_into(cfg: &Config, db_path: &Path, jsonl_dir: &Path) -> Result<Summary, SynthError> {
    let conn = rusqlite::Connection::open(db_path)?;
    // A fresh file written once: no journal needed (a failure deletes the file).
    conn.execute_batch(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;",
    )?;
    conn.execute_batch(SCHEMA)?;
    let plans = plans(cfg);
    let n_conv = plans.len() as u64;
    let (tx, rx) = sync_channel::<Row>(64);
    let seed = cfg.seed;
    let mut summary = Summary {
        conversations: n_conv,
        ..Default::default()
    };
    let gen_result = std::thread::scope(|scope| -> Result<Vec<ConvStats>, SynthError> {
        let worker = scope.spawn(move || -> Result<Vec<ConvStats>, SynthError> {
            let shared = Shared::new();
            let mut all = Vec::with_capacity(plans.len());
            for (i, (plan, start)) in plans.into_iter().enumerate() {
                let conv = sim::Conv::new(&shared, seed, i as u64, plan, jsonl_dir);
                let mut send = |r: Row| {
                    tx.send(r)
                        .map_err(|_| SynthError::Invalid("writer stopped".into()))
                };
                all.push(conv.run(start, &mut send)?);
            }
            Ok(all)
        });
        let write_result = (|rx: std::sync::mpsc::Receiver<Row>| -> Result<(), SynthError> {
            let mut batch_bytes = 0u64;
            conn.execute_batch("BEGIN")?;
            {
                let mut stmt = conn.prepare(
                    "INSERT INTO requests (id, timestamp, method, endpoint, headers, body, user_agent, content_type, prompt_grade, response, model, original_model, routed_model, created_at) VALUES (?1, ?2, 'POST', '/v1/messages?beta=true', ?3, ?4, ?5, 'application/json', NULL, ?6, ?7, ?7, ?7, ?8)",
                )?;
                for r in rx.iter() {
                    let n = r.body.len() as u64 + r.response.as_ref().map_or(0, |s| s.len() as u64);
                    stmt.execute(rusqlite::params![
                        r.id,
                        r.timestamp,
                        &*r.headers,
                        r.body,
                        &*r.user_agent,
                        r.response,
                        r.model,
                        r.created_at
                    ])?;
                    summary.rows += 1;
                    summary.payload_bytes += n;
                    batch_bytes += n;
                    if batch_bytes >= BATCH_BYTES {
                        conn.execute_batch("COMMIT; BEGIN")?;
                        batch_bytes = 0;
                    }
                }
            }
            conn.execute_batch("COMMIT")?;
            Ok(())
        })(rx);
        // If the writer failed, dropping the receiver makes the worker stop at its next send.
        let stats = worker
            .join()
            .map_err(|_| SynthError::Invalid("generator thread panicked".into()))?;
        write_result?;
        stats
    })?;
    drop(conn);
    for s in gen_result {
        summary.subagents += s.subagents;
        summary.requests += s.requests;
        summary.jsonl_files += s.jsonl_files;
        summary.jsonl_bytes += s.jsonl_bytes;
        summary.compactions += s.compactions;
        summary.max_context_tokens = summary.max_context_tokens.max(s.max_context_tokens);
    }
    summary.db_bytes = std::fs::metadata(db_path)?.len();
    Ok(summary)
}
