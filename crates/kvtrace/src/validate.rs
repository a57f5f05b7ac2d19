//! validate-trace-cache: traces against the cache figures the API reported (spec §6).
//!
//! Per trace: the simulated hit rate from its hash ids ([`crate::simulate`]), the API's
//! rate over exactly the rows the simulation covers, and their ratio. Traces are matched
//! to conversations by name, or — for anonymized traces — by content without any secret:
//! the parent sequence of (model, out, stop) must occur as exactly one contiguous run of
//! one conversation's matched rows; sub-agents likewise against the agent files linked
//! from that conversation. No match and several matches are errors, never guesses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use rustc_hash::FxHashSet;

use crate::capture::{
    Capture, CaptureError, FirstAttempts, KeyMaker, MessageIndex, Response, RowRef,
};
use crate::conversation::Counts;
use crate::conversation::{matched_rows, RowKey};
use crate::report::units::thousands;
use crate::session::{SessionDir, SessionDirError, SessionLog, Unreadable};
use crate::simulate::{self, SimResult};
use crate::trace::read::{trace_files, Trace, TraceRequest};

/// What matching needs of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFacts {
    pub request_id: String,
    pub key: (String, u64, String),
    pub input: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub has_cache_fields: bool,
}

impl RowFacts {
    /// Facts of a row that becomes a trace record (rows the builder skips are skipped).
    /// The cache figures are its first attempt's when it has one.
    fn of(row: RowRef<'_>, attempts: &FirstAttempts, keys: &mut KeyMaker) -> Option<RowFacts> {
        // The key splits (and validates) the body, its messages transcoded incrementally,
        // and names the model.
        let key = keys.key(row)?;
        let model = key.0 .0.clone();
        let resp = row.response.and_then(Response::parse);
        let own = resp.as_ref().map(|r| r.usage).unwrap_or_default();
        let usage = attempts.usage_with(&key, own);
        Some(RowFacts {
            request_id: row.id.to_owned(),
            key: (
                model,
                own.output.unwrap_or(0),
                resp.as_ref().map(Response::stop).unwrap_or_default(),
            ),
            input: usage.input.unwrap_or(0),
            cache_read: usage.cache_read.unwrap_or(0),
            cache_creation: usage.cache_creation.unwrap_or(0),
            has_cache_fields: usage.has_cache_fields(),
        })
    }
}

/// A session file's usable rows in §4.1 order.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    pub file_name: String,
    pub rows: Vec<RowFacts>,
    /// Agent ids linked from this file, in link order.
    pub links: Vec<String>,
}

/// A session file read and matched: its log, its rows, and why it could not be read.
struct Matched {
    log: SessionLog,
    keys: Vec<RowKey>,
    unreadable: Option<Unreadable>,
}

/// All conversations and agent files of a capture.
pub struct Catalog {
    pub parents: Vec<Conversation>,
    pub agents: BTreeMap<String, Conversation>,
    /// Session files that could not be read (skipped).
    pub unreadable: Vec<Unreadable>,
}

impl Catalog {
    pub fn load(
        cap: &Capture,
        dir: &SessionDir,
        index: &MessageIndex,
    ) -> Result<Catalog, CaptureError> {
        use rayon::prelude::*;
        let caps = crate::capture::Pool::new(Capture::open(cap.path())?);
        // Every file's matched rows first (files parsed in parallel, one pooled connection
        // per task, results in file order): the rows no file names are the candidates for
        // first attempts.
        dir.load_claims();
        let matched =
            |p: &Path, log: std::io::Result<SessionLog>| -> Result<Matched, CaptureError> {
                let (log, unreadable) = match log {
                    Ok(log) => (log, None),
                    Err(e) => (SessionLog::default(), Some(Unreadable::new(p, &e))),
                };
                let keys = matched_rows(&*caps.get()?, index, &log, &mut Counts::default())?;
                Ok(Matched {
                    log,
                    keys,
                    unreadable,
                })
            };
        let parents = dir
            .parents
            .par_iter()
            .map(|p| Ok((p.as_path(), matched(p, dir.read_parent(p))?)))
            .collect::<Result<Vec<_>, CaptureError>>()?;
        let mut agents = dir
            .agents
            .iter()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(id, p)| Ok((id.clone(), p.as_path(), matched(p, SessionLog::read(p))?)))
            .collect::<Result<Vec<_>, CaptureError>>()?;
        // Sidechains written inline in a parent file (1.0.x) are agents too.
        for (path, m) in &parents {
            for (id, sub) in &m.log.inline_agents {
                let keys = matched_rows(cap, index, sub, &mut Counts::default())?;
                let m = Matched {
                    log: sub.clone(),
                    keys,
                    unreadable: None,
                };
                agents.push((id.clone(), *path, m));
            }
        }
        let unreadable: Vec<Unreadable> = parents
            .iter()
            .map(|(_, m)| m)
            .chain(agents.iter().map(|(_, _, m)| m))
            .filter_map(|m| m.unreadable.clone())
            .collect();
        let named: FxHashSet<String> = parents
            .iter()
            .map(|(_, m)| &m.keys)
            .chain(agents.iter().map(|(_, _, m)| &m.keys))
            .flatten()
            .map(|k| k.id.clone())
            .collect();
        let attempts = FirstAttempts::build(cap, &named)?;
        // Rows are read and their facts taken per session file, in parallel (one
        // pooled read-only connection per task); results keep file order.
        let load = |path: &Path, log: &SessionLog, keys: &[RowKey]| {
            let cap = caps.get()?;
            let mut maker = KeyMaker::default();
            let mut rows = Vec::with_capacity(keys.len());
            for k in keys {
                if let Some(Some(facts)) =
                    cap.with_row(&k.id, |r| RowFacts::of(r, &attempts, &mut maker))?
                {
                    rows.push(facts);
                }
            }
            Ok::<_, CaptureError>(Conversation {
                file_name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                rows,
                links: log.links.iter().map(|l| l.agent_id.clone()).collect(),
            })
        };
        let parents = parents
            .par_iter()
            .map(|(p, m)| load(p, &m.log, &m.keys))
            .collect::<Result<_, _>>()?;
        let agents = agents
            .par_iter()
            .map(|(id, p, m)| Ok((id.clone(), load(p, &m.log, &m.keys)?)))
            .collect::<Result<Vec<_>, CaptureError>>()?
            .into_iter()
            .collect();
        Ok(Catalog {
            parents,
            agents,
            unreadable,
        })
    }
}

/// One trace's validation.
#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    pub id: String,
    pub file: PathBuf,
    /// Entries of the trace's `requests` list (a sub-agent entry counts once).
    pub requests: usize,
    /// Rows covered on the API side.
    pub matched: usize,
    pub sim_hits: u64,
    pub sim_blocks: u64,
    pub sim_rate: f64,
    pub api_read: u64,
    pub api_total: u64,
    pub api_rate: Option<f64>,
    pub accuracy: Option<f64>,
    pub error: Option<String>,
}

impl TraceReport {
    pub fn is_valid(&self) -> bool {
        self.error.is_none() && self.api_rate.is_some()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub traces: usize,
    pub valid: usize,
    pub api_rate_min: Option<f64>,
    pub api_rate_max: Option<f64>,
    pub sim_rate_min: Option<f64>,
    pub sim_rate_max: Option<f64>,
    /// Mean of |simulated − API| over valid traces, in percentage points.
    pub mean_abs_gap_pp: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ttl: Option<f64>,
    pub warm_prefix: f64,
    pub traces: Vec<TraceReport>,
    pub summary: Summary,
    /// Session files that could not be read (skipped).
    pub unreadable_files: Vec<Unreadable>,
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    SessionDir(#[from] SessionDirError),
    #[error("{0}")]
    Traces(std::io::Error),
}

pub struct ValidateOptions {
    pub traces: PathBuf,
    pub db: PathBuf,
    pub jsonl_dir: PathBuf,
    pub ttl: Option<f64>,
    pub warm_prefix: f64,
}

/// Validate every trace at `opts.traces`; `progress(done, total)` is called after each.
pub fn validate(
    opts: &ValidateOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Report, ValidateError> {
    let files = trace_files(&opts.traces).map_err(ValidateError::Traces)?;
    let cap = Capture::open(&opts.db)?;
    let dir = SessionDir::scan(&opts.jsonl_dir)?;
    // The message-id pass and the session files' claims side by side (as the build).
    let (index, _) = rayon::join(
        || Capture::message_index_parallel(&opts.db, rayon::current_num_threads()),
        || dir.load_claims(),
    );
    let catalog = Catalog::load(&cap, &dir, &index?)?;
    progress(0, files.len());
    // Traces are read and simulated in parallel; reports keep file order.
    let done = std::sync::atomic::AtomicUsize::new(0);
    let traces = {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|f| {
                let t = validate_one(f, &catalog, opts);
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(n, files.len());
                t
            })
            .collect::<Vec<_>>()
    };
    let valid: Vec<&TraceReport> = traces.iter().filter(|t| t.is_valid()).collect();
    let fold = |f: &dyn Fn(&TraceReport) -> f64, min: bool| {
        valid
            .iter()
            .map(|t| f(t))
            .reduce(if min { f64::min } else { f64::max })
    };
    let api = |t: &TraceReport| t.api_rate.unwrap_or(0.0);
    let sim = |t: &TraceReport| t.sim_rate;
    let summary = Summary {
        traces: traces.len(),
        valid: valid.len(),
        api_rate_min: fold(&api, true),
        api_rate_max: fold(&api, false),
        sim_rate_min: fold(&sim, true),
        sim_rate_max: fold(&sim, false),
        mean_abs_gap_pp: (!valid.is_empty()).then(|| {
            valid
                .iter()
                .map(|t| (t.sim_rate - api(t)).abs())
                .sum::<f64>()
                / valid.len() as f64
        }),
    };
    Ok(Report {
        ttl: opts.ttl,
        warm_prefix: opts.warm_prefix,
        traces,
        summary,
        unreadable_files: catalog.unreadable,
    })
}

fn keys(reqs: &[&TraceRequest]) -> Vec<(String, u64, String)> {
    reqs.iter()
        .map(|r| (r.model.clone(), r.output, r.stop.clone()))
        .collect()
}

/// Every (conversation, start) where `seq` occurs as a contiguous run.
fn runs<'c>(
    seq: &[(String, u64, String)],
    convs: &[&'c Conversation],
) -> Vec<(&'c Conversation, usize)> {
    let mut out = Vec::new();
    if seq.is_empty() {
        return out;
    }
    for c in convs {
        if c.rows.len() < seq.len() {
            continue;
        }
        for s in 0..=c.rows.len() - seq.len() {
            if c.rows[s..s + seq.len()]
                .iter()
                .zip(seq)
                .all(|(r, k)| &r.key == k)
            {
                out.push((*c, s));
            }
        }
    }
    out
}

fn unique_run<'c>(
    what: &str,
    seq: &[(String, u64, String)],
    convs: &[&'c Conversation],
) -> Result<&'c [RowFacts], String> {
    let found = runs(seq, convs);
    match found.as_slice() {
        [(c, s)] => Ok(&c.rows[*s..*s + seq.len()]),
        [] => Err(format!(
            "No match: the {} (model, out, stop) values of {what} occur in no conversation",
            seq.len()
        )),
        many => Err(format!(
            "Ambiguous: the {} (model, out, stop) values of {what} occur as {} runs ({})",
            seq.len(),
            many.len(),
            many.iter()
                .map(|(c, s)| format!("{} from request {}", c.file_name, s + 1))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Strip a `_sN` segment suffix.
fn base_id(id: &str) -> &str {
    match id.rsplit_once("_s") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => id,
    }
}

fn validate_one(file: &Path, catalog: &Catalog, opts: &ValidateOptions) -> TraceReport {
    let mut rep = TraceReport {
        id: file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        file: file.to_owned(),
        requests: 0,
        matched: 0,
        sim_hits: 0,
        sim_blocks: 0,
        sim_rate: 0.0,
        api_read: 0,
        api_total: 0,
        api_rate: None,
        accuracy: None,
        error: None,
    };
    let trace = match Trace::read(file) {
        Ok(t) => t,
        Err(e) => {
            rep.error = Some(e.to_string());
            return rep;
        }
    };
    rep.id = trace.id.clone();
    rep.requests = trace.items.len();
    match match_rows(&trace, catalog) {
        Ok(rows) => {
            rep.matched = rows.len();
            let flatten = simulate::flattens(&trace);
            let placed = simulate::timeline(&trace, flatten);
            let warm = (opts.warm_prefix * (trace.tool_tokens + trace.system_tokens) as f64
                / trace.block_size as f64)
                .floor()
                .max(0.0) as usize;
            let sim: SimResult = simulate::simulate(&placed, opts.ttl, warm);
            rep.sim_hits = sim.hits;
            rep.sim_blocks = sim.blocks;
            rep.sim_rate = sim.rate();
            rep.api_read = rows.iter().map(|r| r.cache_read).sum();
            rep.api_total = rows
                .iter()
                .map(|r| r.input + r.cache_read + r.cache_creation)
                .sum();
            if rows.iter().any(|r| r.has_cache_fields) && rep.api_total > 0 {
                let api = 100.0 * rep.api_read as f64 / rep.api_total as f64;
                rep.api_rate = Some(api);
                rep.accuracy = Some(if api > 0.0 {
                    rep.sim_rate / api * 100.0
                } else {
                    0.0
                });
            }
        }
        Err(e) => rep.error = Some(e),
    }
    rep
}

/// The rows a trace's simulation covers: its parent rows, plus its sub-agents' rows when
/// the scope lets them be simulated.
fn match_rows<'c>(trace: &Trace, catalog: &'c Catalog) -> Result<Vec<&'c RowFacts>, String> {
    let parents: Vec<&TraceRequest> = trace.parents().collect();
    let seq = keys(&parents);
    // By name: a parent file whose name starts with the trace id (sans segment suffix).
    let base = base_id(&trace.id);
    let named: Vec<&Conversation> = catalog
        .parents
        .iter()
        .filter(|c| !base.is_empty() && c.file_name.starts_with(base))
        .collect();
    let all: Vec<&Conversation> = catalog.parents.iter().collect();
    let candidates = if named.len() == 1 { named } else { all };
    let parent_rows = unique_run("the parent requests", &seq, &candidates)?;
    let conv = candidates
        .iter()
        .find(|c| c.rows.as_ptr_range().contains(&parent_rows.as_ptr()))
        .copied();
    let mut rows: Vec<&RowFacts> = parent_rows.iter().collect();
    if simulate::flattens(trace) {
        let linked: Vec<&Conversation> = conv
            .map(|c| {
                c.links
                    .iter()
                    .filter_map(|id| catalog.agents.get(id))
                    .collect()
            })
            .unwrap_or_default();
        for (n, sub) in trace.subagents().enumerate() {
            let reqs: Vec<&TraceRequest> = sub.requests.iter().collect();
            let seq = keys(&reqs);
            let by_id: Vec<&Conversation> = catalog.agents.get(&sub.agent_id).into_iter().collect();
            let pool = if by_id.is_empty() { &linked } else { &by_id };
            let what = format!("sub-agent {} ({})", n + 1, sub.agent_id);
            rows.extend(unique_run(&what, &seq, pool)?.iter());
        }
    }
    Ok(rows)
}

const RULE: &str = "======================================================================";
const THIN: &str = "----------------------------------------------------------------------";

/// The report as the reference prints it; `db` and `jsonl` are shown as given.
pub fn render_text(report: &Report, db: &Path, jsonl: &Path) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Validating {} trace(s) against API metrics",
        report.traces.len()
    );
    let _ = writeln!(o, "Database: {}", db.display());
    let _ = writeln!(o, "JSONL dir: {}", jsonl.display());
    match report.ttl {
        None => o.push_str("TTL: infinite\n"),
        Some(t) if t.fract() == 0.0 => {
            let _ = writeln!(o, "TTL: {}s", t as i64);
        }
        Some(t) => {
            let _ = writeln!(o, "TTL: {t}s");
        }
    }
    if report.warm_prefix > 0.0 {
        let _ = writeln!(
            o,
            "Warm prefix: {:.0}% of tools + system",
            report.warm_prefix * 100.0
        );
    }
    let _ = writeln!(o, "{RULE}");
    // As the reference: a blank line after the rule and after every trace block (an
    // error is one line with no blank after it).
    o.push('\n');
    for t in &report.traces {
        if let Some(e) = &t.error {
            let _ = writeln!(o, "{}: ERROR - {e}", t.id);
            continue;
        }
        let _ = writeln!(o, "{} ({} reqs, {} matched)", t.id, t.requests, t.matched);
        let _ = writeln!(
            o,
            "  Simulated: {:.1}% ({}/{} blocks)",
            t.sim_rate,
            thousands(t.sim_hits),
            thousands(t.sim_blocks)
        );
        match (t.api_rate, t.accuracy) {
            (Some(api), Some(acc)) => {
                let _ = writeln!(
                    o,
                    "  API:       {api:.1}% ({}/{} tokens)",
                    thousands(t.api_read),
                    thousands(t.api_total)
                );
                let _ = writeln!(o, "  Accuracy:  {acc:.1}%");
            }
            _ => {
                o.push_str(
                    "  API:       no cache usage data (the upstream returned no cache fields)\n",
                );
                o.push_str("  Accuracy:  n/a\n");
            }
        }
        o.push('\n');
    }
    let s = &report.summary;
    let _ = writeln!(o, "{RULE}");
    o.push_str("SUMMARY\n");
    let _ = writeln!(o, "{THIN}");
    let _ = writeln!(o, "Valid traces: {}/{}", s.valid, s.traces);
    if let (Some(a0), Some(a1), Some(s0), Some(s1)) = (
        s.api_rate_min,
        s.api_rate_max,
        s.sim_rate_min,
        s.sim_rate_max,
    ) {
        let _ = writeln!(o, "API rate range: {a0:.1}% - {a1:.1}%");
        let _ = writeln!(o, "Sim rate range: {s0:.1}% - {s1:.1}%");
        if s.valid >= 2 {
            o.push('\n');
            if a1 - a0 > 1e-9 {
                o.push_str("API rates vary as expected - per-conversation validation working.\n");
            } else {
                o.push_str("WARNING: every trace has the same API rate - check that traces match their own conversations.\n");
            }
        }
    }
    o
}

/// One CSV row per trace.
pub fn render_csv(report: &Report) -> String {
    let header = "trace,file,requests,matched,sim_hits,sim_blocks,sim_rate,api_read,api_total,api_rate,accuracy,error";
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_default();
    let rows = report.traces.iter().map(|t| {
        vec![
            t.id.clone(),
            t.file.display().to_string(),
            t.requests.to_string(),
            t.matched.to_string(),
            t.sim_hits.to_string(),
            t.sim_blocks.to_string(),
            format!("{:.4}", t.sim_rate),
            t.api_read.to_string(),
            t.api_total.to_string(),
            opt(t.api_rate),
            opt(t.accuracy),
            t.error.clone().unwrap_or_default(),
        ]
    });
    let header: Vec<String> = header.split(',').map(str::to_owned).collect();
    crate::report::table::csv_text(std::iter::once(header).chain(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_like_python() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_903), "1,903");
        assert_eq!(thousands(71_770_123), "71,770,123");
    }

    #[test]
    fn segment_suffix_is_stripped() {
        assert_eq!(base_id("5f0c9e2a-7b1_s2"), "5f0c9e2a-7b1");
        assert_eq!(base_id("trace_0001"), "trace_0001");
        assert_eq!(base_id("abc_sx"), "abc_sx");
    }
}
