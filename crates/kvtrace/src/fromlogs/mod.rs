//! Traces from session logs alone, for those who never ran a proxy (docs/logs-only.md).
//!
//! Each response in a log is one request. Recent Claude Code 2.1.x journals each request it sends
//! in the log (`journal`): such a request is taken as sent, tools, system prompt and
//! messages. Otherwise its `messages` section is rebuilt from the log ([`rebuild`]) and the
//! tools and system prompt, which such a log does not hold, are stood in for by a prefix of
//! estimated size ([`prefix`]). Either way the sections are serialized, tokenized and
//! hashed by the normal rules (spec §4.2–§4.3), so `in` and the blocks are in the same
//! units as capture-based traces. `out`, `stop` and the output types come from the reply, `t` from the time
//! of the entry the response answers, `api_time` from the response's last line; sub-agents
//! from their files and spawning calls exactly as in capture-based traces. The traces are
//! marked `"source": "session-logs"`.
//!
//! Two passes: the first rebuilds every conversation to estimate the prefix of each
//! Claude Code version (and sub-agent type), the second builds the requests.

mod journal;
pub mod prefix;
pub mod rebuild;

use std::collections::BTreeMap;
use std::path::Path;

use rebuild::{Chain, LoggedRequest, Replay};

use crate::conversation::{Counts, Gathered, GatheredAgent};
use crate::encode::blocks::Salt;
use crate::encode::{Processed, Stream, Tokenizer};
use crate::pyjson::{Body, Form};
use crate::session::{AgentLink, SessionDir, SessionLog, Unreadable};

/// The value of the `source` header field of a logs-only trace.
pub const SOURCE: &str = "session-logs";

/// One stream of requests: a parent's main chain or one of its sub-agents.
struct Part {
    /// The prefix key: `<version>/main` or `<version>/agent/<type>`.
    key: String,
    requests: Vec<LoggedRequest>,
}

/// A linked sub-agent, rebuilt.
struct AgentPart {
    link: AgentLink,
    log: SessionLog,
    subagent_type: Option<String>,
    part: Part,
}

/// A conversation, rebuilt: its parent log, main chain and sub-agents.
struct Parts {
    log: SessionLog,
    main: Part,
    agents: Vec<AgentPart>,
    /// Bytes of the log files read for it.
    bytes: u64,
}

/// A conversation rebuilt by the first pass and kept for the second, with what reading
/// it counted.
struct Rebuilt {
    parts: Parts,
    counts: Counts,
    unreadable: Vec<Unreadable>,
}

/// Bytes of log files whose rebuilt conversations the first pass keeps for the second
/// (which otherwise reads and rebuilds them again); bounds the memory they take.
const KEEP_REBUILT_BYTES: u64 = 128 << 20;

/// API tokens per token of ours, used to size stand-in prefixes, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ratio {
    pub value: f64,
    /// `given` (`--api-token-ratio`), `journal` (measured) or `default` (1).
    pub source: &'static str,
    /// Journal: the requests it was measured on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<usize>,
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} API tokens per token of ours (", self.value)?;
        match self.requests {
            Some(n) => write!(f, "measured on {n} journaled requests)"),
            None if self.source == "given" => write!(f, "--api-token-ratio)"),
            None => write!(f, "the default: no journaled request to measure it on)"),
        }
    }
}

impl Ratio {
    /// The ratio given, else the median of those measured on journaled requests, else 1.
    fn choose(given: Option<f64>, measured: Vec<f64>) -> Ratio {
        match (given, measured.len()) {
            (Some(value), _) => Ratio {
                value,
                source: "given",
                requests: None,
            },
            (None, 0) => Ratio {
                value: 1.0,
                source: "default",
                requests: None,
            },
            (None, n) => Ratio {
                value: prefix::middle(measured).unwrap_or(1.0),
                source: "journal",
                requests: Some(n),
            },
        }
    }
}

/// What pass one learns of one stream: its key, `(M, A)` points of its requests without
/// a journal, and the API-to-ours ratio of its first journaled request.
struct Learned {
    key: String,
    points: Vec<(f64, f64)>,
    ratio: Option<f64>,
}

/// Builds logs-only conversations; holds the estimated prefix of each key.
pub struct LogsGatherer<'a> {
    dir: &'a SessionDir,
    salt: &'a Salt,
    block_size: usize,
    include_subagents: bool,
    form: Form,
    /// API tokens per token of ours, for the stand-in prefixes.
    pub ratio: Ratio,
    /// Prefix size in our tokens, by key.
    pub prefixes: BTreeMap<String, usize>,
    /// Conversations the first pass rebuilt and kept, by parent log path.
    rebuilt: std::sync::Mutex<rustc_hash::FxHashMap<std::path::PathBuf, Rebuilt>>,
    /// Log bytes of the conversations kept so far.
    kept_bytes: std::sync::atomic::AtomicU64,
}

impl<'a> LogsGatherer<'a> {
    /// The first pass, over `parents` in parallel: measure the API's tokens per token of
    /// ours on journaled requests (unless `ratio` is given), then estimate the prefix of
    /// every key from the requests without a journal.
    pub fn new(
        dir: &'a SessionDir,
        parents: &[&Path],
        salt: &'a Salt,
        block_size: usize,
        include_subagents: bool,
        form: Form,
        ratio: Option<f64>,
    ) -> Self {
        let mut g = LogsGatherer {
            dir,
            salt,
            block_size,
            include_subagents,
            form,
            ratio: Ratio::choose(ratio, Vec::new()),
            prefixes: BTreeMap::new(),
            rebuilt: Default::default(),
            kept_bytes: Default::default(),
        };
        // Largest conversations first, so the pass does not end with one alone (a
        // tokenizer per task, borrowed from a small pool so caches live on).
        let estimates: Vec<u64> = parents
            .iter()
            .map(|p| crate::conversation::ordered::work_estimate(p))
            .collect();
        let tokenizers = crate::conversation::ordered::Lender::<Tokenizer>::default();
        let learned: Vec<Learned> =
            crate::conversation::ordered::map_largest_first(&estimates, |i| {
                tokenizers.with(|tk| g.learn(tk, parents[i]))
            })
            .into_iter()
            .flatten()
            .collect();
        let measured = learned.iter().filter_map(|l| l.ratio).collect();
        g.ratio = Ratio::choose(ratio, measured);
        let mut estimates: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for l in learned {
            if let Some(p) = prefix::estimate(&l.points, g.ratio.value) {
                estimates.entry(l.key).or_default().push(p);
            }
        }
        g.prefixes = estimates
            .into_iter()
            .map(|(k, v)| (k, prefix::median(v)))
            .collect();
        g
    }

    /// Pass one over a conversation: what each of its streams tells of the prefix. The
    /// rebuilt conversation is kept for pass two while [`KEEP_REBUILT_BYTES`] allows.
    fn learn(&self, tk: &mut Tokenizer, path: &Path) -> Vec<Learned> {
        let mut counts = Counts::default();
        let mut unreadable = Vec::new();
        let Some(parts) = self.parts(path, &mut counts, &mut unreadable) else {
            return Vec::new();
        };
        let all = std::iter::once(&parts.main).chain(parts.agents.iter().map(|a| &a.part));
        let learned = all
            .map(|part| {
                // Journaled requests carry their own tools and system prompt: the first of
                // them with usage measures the ratio (its prefix, which dominates it, is the
                // kind of text a stand-in replaces). The others give points of the estimate.
                let (mut whole, mut sections) =
                    (Stream::new(false, self.form), Stream::new(false, self.form));
                let mut replay = Replay::default();
                let mut ratio = None;
                let mut points = Vec::new();
                for r in &part.requests {
                    let messages = replay.apply(&r.messages);
                    let Some(api) = r.api_prompt_tokens.map(|a| a as f64) else {
                        continue;
                    };
                    if r.shape.is_none() {
                        if let Some(m) = message_tokens(&mut sections, tk, messages) {
                            points.push((m as f64, api));
                        }
                    } else if ratio.is_none() && r.journaled {
                        let ours = whole.count(tk, &body_of(r, messages)).unwrap_or(0) as f64;
                        ratio = (ours > 0.0).then(|| api / ours);
                    }
                }
                Learned {
                    key: part.key.clone(),
                    points,
                    ratio,
                }
            })
            .collect();
        use std::sync::atomic::Ordering;
        let before = self.kept_bytes.fetch_add(parts.bytes, Ordering::Relaxed);
        if before + parts.bytes <= KEEP_REBUILT_BYTES {
            if let Ok(mut kept) = self.rebuilt.lock() {
                let rebuilt = Rebuilt {
                    parts,
                    counts,
                    unreadable,
                };
                kept.insert(path.to_owned(), rebuilt);
            }
        }
        learned
    }

    /// The parent log and the parts of one conversation (`None`: unreadable, counted).
    fn parts(
        &self,
        path: &Path,
        counts: &mut Counts,
        unreadable: &mut Vec<Unreadable>,
    ) -> Option<Parts> {
        let read = self
            .dir
            .read_parent(path)
            .and_then(|log| std::fs::read(path).map(|bytes| (log, bytes)));
        let (log, bytes) = match read {
            Ok(x) => x,
            Err(e) => {
                counts.unreadable_files += 1;
                unreadable.push(Unreadable::new(path, &e));
                return None;
            }
        };
        counts.unparseable_lines += log.unparseable_lines;
        counts.duplicate_links += log.duplicate_links;
        counts.claimed_elsewhere += log.claimed_elsewhere;
        let owned: rustc_hash::FxHashSet<&str> =
            log.message_ids.iter().map(String::as_str).collect();
        let mut main = rebuild::requests_of(&bytes, &Chain::Main);
        // A response another file wrote first (a `-c` copy) belongs to that file.
        rebuild::retain(&mut main, |r| owned.contains(r.message_id.as_str()));
        let version = main
            .iter()
            .find_map(|r| r.version.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let mut agents = Vec::new();
        let mut read = bytes.len() as u64;
        if self.include_subagents {
            for link in &log.links {
                let Some((agent_log, requests, agent_bytes)) =
                    self.agent(&log, &bytes, link, counts, unreadable)
                else {
                    continue;
                };
                read += agent_bytes;
                let subagent_type = log.spawn_for(link).and_then(|s| s.subagent_type.clone());
                agents.push(AgentPart {
                    link: link.clone(),
                    log: agent_log,
                    part: Part {
                        key: agent_key(&version, subagent_type.as_deref()),
                        requests,
                    },
                    subagent_type,
                });
            }
        }
        Some(Parts {
            main: Part {
                key: format!("{version}/main"),
                requests: main,
            },
            log,
            agents,
            bytes: read,
        })
    }

    /// The second pass: one conversation's requests, tokenized behind its prefix.
    pub fn gather(&self, tk: &mut Tokenizer, path: &Path) -> Gathered {
        let mut counts = Counts::default();
        let mut unreadable = Vec::new();
        let id = crate::session::dir::stem(path);
        let kept = self.rebuilt.lock().ok().and_then(|mut k| k.remove(path));
        let parts = match kept {
            Some(r) => {
                counts = r.counts;
                unreadable = r.unreadable;
                Some(r.parts)
            }
            None => self.parts(path, &mut counts, &mut unreadable),
        };
        let Some(parts) = parts else {
            return Gathered {
                id,
                indexed: 0,
                requests: Vec::new(),
                agents: Vec::new(),
                counts,
                unreadable,
            };
        };
        let rebuilt = std::iter::once(&parts.main)
            .chain(parts.agents.iter().map(|a| &a.part))
            .flat_map(|p| &p.requests);
        for r in rebuilt {
            counts.journaled_prefixes += usize::from(r.shape.is_some());
            counts.journaled_messages += usize::from(r.journaled);
        }
        let requests = self.process(tk, &parts.main);
        let agents = parts
            .agents
            .iter()
            .filter(|a| !a.part.requests.is_empty())
            .map(|a| GatheredAgent {
                agent_id: a.link.agent_id.clone(),
                subagent_type: a.subagent_type.clone(),
                spawn: parts.log.spawn_time(&a.link, &a.log),
                link: a.link.clone(),
                requests: self.process(tk, &a.part),
            })
            .collect();
        Gathered {
            id,
            indexed: requests.len(),
            requests,
            agents,
            counts,
            unreadable,
        }
    }

    /// A linked sub-agent's log, rebuilt requests and file size (`None`: no such file,
    /// counted).
    fn agent(
        &self,
        log: &SessionLog,
        parent_bytes: &[u8],
        link: &AgentLink,
        counts: &mut Counts,
        unreadable: &mut Vec<Unreadable>,
    ) -> Option<(SessionLog, Vec<LoggedRequest>, u64)> {
        if let Some(inline) = log.inline_agent(&link.agent_id) {
            let root = link.agent_id.strip_prefix("sidechain-")?.to_owned();
            let requests = rebuild::requests_of(parent_bytes, &Chain::Inline(root));
            return Some((inline.clone(), requests, 0));
        }
        let Some(file) = self.dir.agents.get(&link.agent_id) else {
            counts.missing_agent_files += 1;
            return None;
        };
        let read = std::fs::read(file).map(|bytes| {
            let mut agent_log = SessionLog::parse_bytes(&bytes);
            agent_log.path = file.clone();
            (agent_log, bytes)
        });
        match read {
            Ok((agent_log, bytes)) => {
                counts.unparseable_lines += agent_log.unparseable_lines;
                let requests = rebuild::requests_of(&bytes, &Chain::Whole);
                Some((agent_log, requests, bytes.len() as u64))
            }
            Err(e) => {
                counts.unreadable_files += 1;
                unreadable.push(Unreadable::new(file, &e));
                None
            }
        }
    }

    /// Tokenize and hash a stream's requests behind the stand-in prefix of `key`.
    fn process(&self, tk: &mut Tokenizer, part: &Part) -> Vec<Processed> {
        let size = self.prefixes.get(&part.key).copied().unwrap_or(0);
        let mut stream = Stream::new(false, self.form);
        let mut out = Vec::with_capacity(part.requests.len());
        // The stand-in of each model seen (its system part names the model).
        let mut stand_ins: Vec<(&str, std::sync::Arc<[crate::tokens::Token]>)> = Vec::new();
        let mut replay = Replay::default();
        for r in &part.requests {
            let messages = replay.apply(&r.messages);
            // A journaled request has its own tools and system prompt; others stand in.
            let stand_in = if r.shape.is_some() {
                None
            } else {
                let i = match stand_ins.iter().position(|(m, _)| *m == r.model) {
                    Some(i) => i,
                    None => {
                        let tokens = prefix::tokens(&part.key, &r.model, size);
                        stand_ins.push((&r.model, tokens.into()));
                        stand_ins.len() - 1
                    }
                };
                Some([Some(stand_ins[i].1.clone()), None])
            };
            let standing_in = stand_in.is_some();
            let Ok(t) = stream.tokenize_body_shared(tk, &body_of(r, messages), stand_in) else {
                continue;
            };
            // As for a capture: digests of the prefix shared with the previous request
            // reused; content types only where the context was replaced (§4.5).
            let chained = stream.chain_shared(self.salt, self.block_size, &t);
            let (tool_tokens, system_tokens) = if standing_in {
                let system = prefix::system_part(size);
                (size - system, system)
            } else {
                (chained.tool_tokens, chained.system_tokens)
            };
            let (digests, tokens_in, reset) = (chained.digests, chained.tokens_in, chained.reset);
            out.push(Processed {
                request_id: r.message_id.clone(),
                ts: r.time,
                ts_text: r.time.isoformat(),
                streaming: true,
                model: r.model.clone(),
                tokens_in,
                tool_tokens,
                system_tokens,
                digests,
                message_types: if reset {
                    message_types(messages)
                } else {
                    Vec::new()
                },
                response: Some(r.response.clone()),
            });
        }
        out
    }
}

/// A rebuilt request's body: its messages, and its tools and system prompt when the
/// journal holds them.
fn body_of<'a>(r: &'a LoggedRequest, messages: &'a str) -> Body<'a> {
    Body {
        model: Some(r.model.clone()),
        stream: true,
        tools: r.shape.as_ref().map(|s| s.tools.as_str()),
        system: r.shape.as_ref().map(|s| s.system.as_str()),
        messages: Some(messages),
    }
}

/// The prefix key of a sub-agent.
fn agent_key(version: &str, subagent_type: Option<&str>) -> String {
    format!("{version}/agent/{}", subagent_type.unwrap_or("unknown"))
}

/// Our tokens of a request's messages (pass one).
fn message_tokens(stream: &mut Stream, tk: &mut Tokenizer, messages: &str) -> Option<usize> {
    let body = Body {
        model: None,
        stream: true,
        tools: None,
        system: None,
        messages: Some(messages),
    };
    stream.count(tk, &body).ok()
}

/// Sorted distinct content types of a messages array (`text` for string content).
fn message_types(messages: &str) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    if let Ok(crate::pyjson::Value::Array(msgs)) = crate::pyjson::parse(messages) {
        for m in &msgs {
            match m.get("content") {
                Some(crate::pyjson::Value::Array(blocks)) => types.extend(
                    blocks
                        .iter()
                        .filter_map(|b| b.get("type").and_then(crate::pyjson::Value::as_string)),
                ),
                _ => types.push("text".to_owned()),
            }
        }
    }
    types.sort();
    types.dedup();
    types
}
