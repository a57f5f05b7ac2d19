//! visualize-cache: per-conversation (or whole-capture) cache dashboards.
//!
//! - [`select`]: which requests, tokenized into blocks (partial last block included);
//! - [`cache`]: the longest-prefix TTL cache model, working set and prefill counts;
//! - [`text`]: the statistics report (`--text-only`), [`timeline`]: `--timeline`;
//! - [`html`] + [`svg`]: the self-contained HTML dashboard.
//!
//! Outputs are written atomically (spec §7). An empty selection is an error with a clear
//! message, never an empty dashboard.

pub mod cache;
pub mod html;
pub mod select;
pub mod svg;
pub mod text;
pub mod timeline;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::capture::CaptureError;
use crate::session::SessionDirError;
use crate::trace::write_atomic;
use cache::{simulate_many, SimRequest, SimResult};
use select::{Inputs, Selection};

#[derive(Debug, Error)]
pub enum VisualizeError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Dir(#[from] SessionDirError),
    #[error("{0}")]
    Selection(String),
    #[error("{0}")]
    Empty(String),
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A session id or unique prefix: that conversation with its sub-agents.
    Conversation(String),
    /// Every turn of the capture, one global cache.
    Combined,
    /// One dashboard per conversation plus an index.
    All,
}

impl Target {
    pub fn parse(s: &str) -> Target {
        match s {
            "combined" => Target::Combined,
            "all" => Target::All,
            id => Target::Conversation(id.to_owned()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub db: PathBuf,
    pub jsonl_dir: PathBuf,
    pub target: Target,
    pub output: Option<PathBuf>,
    pub output_dir: Option<PathBuf>,
    pub text_only: bool,
    pub timeline: bool,
    /// `None`: blocks never expire.
    pub ttl: Option<f64>,
    pub block_size: usize,
}

/// What a run produced.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    /// `--timeline` text (conversations separated by a `== id ==` heading in `all`).
    pub timeline: Option<String>,
    pub written: Vec<PathBuf>,
    /// Conversations left out of `all` (no request in the capture).
    pub skipped: Vec<String>,
    /// Session files that could not be read (skipped).
    pub unreadable: Vec<crate::session::Unreadable>,
}

/// The simulations and report of one selection.
pub struct Analysis {
    pub main: SimResult,
    /// Per [`text::TTLS`], then the infinite cache.
    pub by_ttl: Vec<SimResult>,
    pub sections: Vec<text::Section>,
}

/// Labels and [`text::TTLS`] indices of the working-set-over-time series.
pub const WORKING_TTLS: [(&str, usize); 5] = [
    ("1 min", 0),
    ("5 min", 4),
    ("15 min", 6),
    ("1 h", 8),
    ("1 day", 12),
];

/// Run every simulation of a selection.
pub fn analyze(sel: &Selection, ttl: Option<f64>) -> Analysis {
    let reqs: Vec<SimRequest<'_>> = sel
        .requests
        .iter()
        .map(|r| SimRequest {
            t: r.t,
            blocks: &r.blocks,
            tokens: r.tokens_in,
        })
        .collect();
    let bs = sel.block_size;
    // Every TTL of the table, the infinite cache, and the chosen TTL when the table
    // lacks it, in one walk over the requests.
    let mut ttls: Vec<Option<f64>> = text::TTLS.iter().map(|(_, s)| Some(*s)).collect();
    ttls.push(None);
    let main_at = match ttl {
        None => Some(ttls.len() - 1),
        Some(t) => text::TTLS.iter().position(|(_, s)| *s == t),
    };
    if main_at.is_none() {
        ttls.push(ttl);
    }
    let mut by_ttl = simulate_many(&reqs, bs, &ttls);
    let main = match main_at {
        Some(i) => by_ttl[i].clone(),
        None => by_ttl.pop().unwrap_or_default(),
    };
    let sections = text::report(sel, &main, &by_ttl);
    Analysis {
        main,
        by_ttl,
        sections,
    }
}

/// The dashboard page of a selection.
pub fn dashboard(sel: &Selection, a: &Analysis) -> String {
    let title = match sel.name.as_str() {
        "combined" => "Cache dashboard: whole capture (combined)".to_owned(),
        id => format!("Cache dashboard: conversation {id}"),
    };
    let working: Vec<(&str, SimResult)> = WORKING_TTLS
        .iter()
        .map(|(l, i)| (*l, a.by_ttl[*i].clone()))
        .collect();
    html::render(&html::Dashboard {
        title: &title,
        sel,
        main: &a.main,
        by_ttl: &a.by_ttl,
        working: &working,
        sections: &a.sections,
    })
}

/// The `--text-only` report of a selection.
pub fn stats_text(sel: &Selection, a: &Analysis) -> String {
    let title = match sel.name.as_str() {
        "combined" => "Cache statistics: whole capture (combined)".to_owned(),
        id => format!("Cache statistics: conversation {id}"),
    };
    text::text(&title, &a.sections)
}

/// One conversation of `all`, drawn: its request count, timeline text (with
/// `--timeline`) and file to write (path, contents, main hit rate).
struct Drawn {
    requests: usize,
    timeline: String,
    file: Option<(PathBuf, String, f64)>,
}

fn draw(sel: &Selection, id: &str, dir: &Path, opts: &Options, write_files: bool) -> Drawn {
    let mut drawn = Drawn {
        requests: sel.requests.len(),
        timeline: String::new(),
        file: None,
    };
    if sel.requests.is_empty() {
        return drawn;
    }
    if opts.timeline {
        drawn.timeline = format!("== {id} ==\n{}\n", timeline::timeline(sel));
    }
    if write_files {
        let a = analyze(sel, opts.ttl);
        let html_path = dir.join(format!("{}.html", short_id(id)));
        drawn.file = Some(if opts.text_only {
            (
                stats_path(&html_path),
                stats_text(sel, &a),
                a.main.hit_rate(),
            )
        } else {
            (html_path, dashboard(sel, &a), a.main.hit_rate())
        });
    }
    drawn
}

fn write(path: &Path, text: &str, out: &mut Outcome) -> Result<(), VisualizeError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| VisualizeError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    write_atomic(path, text.as_bytes()).map_err(|source| VisualizeError::Io {
        path: path.to_owned(),
        source,
    })?;
    out.written.push(path.to_owned());
    Ok(())
}

/// `<base>.html` → `<base>_stats.txt`.
pub fn stats_path(html: &Path) -> PathBuf {
    let stem = html
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cache".into());
    html.with_file_name(format!("{stem}_stats.txt"))
}

fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// The whole command. `progress(done, total)` follows the conversations of `all`.
pub fn run(
    opts: &Options,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Outcome, VisualizeError> {
    if opts.block_size == 0 {
        return Err(VisualizeError::Usage(
            "the block size must be at least 1".into(),
        ));
    }
    if opts
        .ttl
        .is_some_and(|t| t.is_nan() || t <= 0.0 || !t.is_finite())
    {
        return Err(VisualizeError::Usage(
            "the TTL must be a positive number of seconds".into(),
        ));
    }
    if opts.output.is_some() && opts.output_dir.is_some() {
        return Err(VisualizeError::Usage(
            "an output file and an output folder exclude each other".into(),
        ));
    }
    let inputs = Inputs::open(&opts.db, &opts.jsonl_dir)?;
    let mut out = Outcome::default();
    // With --timeline alone, nothing is written.
    let write_files =
        !opts.timeline || opts.text_only || opts.output.is_some() || opts.output_dir.is_some();
    match &opts.target {
        Target::All => {
            if opts.output.is_some() {
                return Err(VisualizeError::Usage(
                    "all conversations means one file per conversation: give an output folder, not a file"
                        .into(),
                ));
            }
            let dir = opts
                .output_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("cache_dashboards"));
            let mut index_rows = Vec::new();
            let mut timeline = String::new();
            let total = inputs.dir.parents.len();
            progress(0, total);
            // Dashboards are selected, simulated and drawn in parallel, a window of
            // conversations ahead (bounded memory), and written in file order.
            let parents = &inputs.dir.parents;
            let estimates: Vec<u64> = parents
                .iter()
                .map(|p| crate::conversation::ordered::work_estimate(p))
                .collect();
            let window = rayon::current_num_threads().max(1) * 16;
            let draw_one = |i: usize| {
                let id = crate::session::dir::stem(&parents[i]);
                let drawn = select::conversation(&inputs, &id, opts.block_size)
                    .map(|sel| draw(&sel, &id, &dir, opts, write_files));
                (id, drawn)
            };
            let mut done = 0;
            crate::conversation::ordered::for_each_ordered(
                &estimates,
                window,
                draw_one,
                |_, (id, drawn)| -> Result<(), VisualizeError> {
                    done += 1;
                    progress(done, total);
                    let drawn = match drawn {
                        Err(VisualizeError::Io { path, source }) => {
                            out.unreadable
                                .push(crate::session::Unreadable::new(&path, &source));
                            return Ok(());
                        }
                        d => d?,
                    };
                    if drawn.requests == 0 {
                        out.skipped.push(id);
                        return Ok(());
                    }
                    timeline.push_str(&drawn.timeline);
                    let Some((path, text, hit_rate)) = drawn.file else {
                        return Ok(());
                    };
                    write(&path, &text, &mut out)?;
                    index_rows.push((
                        id.clone(),
                        format!("{}.html", short_id(&id)),
                        drawn.requests,
                        hit_rate,
                    ));
                    Ok(())
                },
            )?;
            if index_rows.is_empty() && !opts.timeline {
                return Err(VisualizeError::Empty(format!(
                    "no conversation in {} has requests in {}",
                    opts.jsonl_dir.display(),
                    opts.db.display()
                )));
            }
            if write_files && !opts.text_only && !index_rows.is_empty() {
                write(&dir.join("index.html"), &html::index(&index_rows), &mut out)?;
            }
            if opts.timeline {
                out.timeline = Some(timeline.trim_end().to_owned());
            }
        }
        target => {
            let sel = match target {
                Target::Conversation(id) => select::conversation(&inputs, id, opts.block_size)?,
                _ => select::combined(&inputs, opts.block_size)?,
            };
            out.unreadable.extend(sel.unreadable.iter().cloned());
            if sel.requests.is_empty() {
                return Err(VisualizeError::Empty(match target {
                    Target::Conversation(_) => format!(
                        "conversation {} has no requests in {} (its message ids match no row)",
                        sel.name,
                        opts.db.display()
                    ),
                    _ => format!("{} holds no usable request", opts.db.display()),
                }));
            }
            if opts.timeline {
                out.timeline = Some(timeline::timeline(&sel).trim_end().to_owned());
            }
            if write_files {
                let label = if sel.name == "combined" {
                    "combined".to_owned()
                } else {
                    short_id(&sel.name)
                };
                let default_name = format!("cache_{label}.html");
                let html_path = match (&opts.output, &opts.output_dir) {
                    (Some(p), _) => p.clone(),
                    (None, Some(d)) => d.join(default_name),
                    (None, None) => PathBuf::from(default_name),
                };
                let a = analyze(&sel, opts.ttl);
                if opts.text_only {
                    write(&stats_path(&html_path), &stats_text(&sel, &a), &mut out)?;
                } else {
                    write(&html_path, &dashboard(&sel, &a), &mut out)?;
                }
            }
        }
    }
    Ok(out)
}
