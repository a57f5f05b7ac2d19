//! Simulation of one Claude Code conversation: the parent agent, its sub-agents, the proxy
//! rows every API call leaves in requests.db (spec §2) and the session logs (spec §3).
//!
//! A conversation is a sequence of user turns; each turn is an agentic loop of API calls
//! (tool_use → tool_result → …) ending with a text answer. Contexts only grow by appending,
//! except at a compaction, where the context is replaced by a summary. Sub-agents are
//! spawned several at once by one assistant message and run interleaved in time; their rows
//! are buffered and merged by time before they are emitted, so rows leave this module in
//! request-time order and one conversation never needs more memory than its own context.

use crate::clock::{iso_ms, rfc3339_nano, row_stamp, sqlite_stamp, StampStyle};
use crate::ids::{api_request_id, base64ish, rng_for, uuid, IdGen, SynthRng};
use crate::json::{quoted, write_str, Dialect, J};
use crate::model::{
    api_message, sse_lines, stream_body_go, Block, EnvBody, Envelope, Msg, ToolContent, Usage,
};
use crate::prompts::{self, ToolSet, IDENTITY};
use crate::text;
use crate::SynthError;
use rand::Rng;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Parent models.
pub const OPUS: &str = "claude-opus-4-6";
/// Parent models.
pub const SONNET: &str = "claude-sonnet-4-5-20250929";
/// Sub-agent and utility model.
pub const HAIKU: &str = "claude-haiku-4-5-20251001";

const CACHE_TTL_MS: i64 = 5 * 60 * 1000;

/// One row of the `requests` table.
#[derive(Clone, Debug)]
pub struct Row {
    /// `id`
    pub id: String,
    /// `timestamp`
    pub timestamp: String,
    /// `headers`
    pub headers: Arc<str>,
    /// `body`
    pub body: String,
    /// `user_agent`
    pub user_agent: Arc<str>,
    /// `response` (NULL when None)
    pub response: Option<String>,
    /// `model`, `original_model`, `routed_model`
    pub model: &'static str,
    /// `created_at`
    pub created_at: String,
    at_ms: i64,
    seq: u64,
}

/// State shared by every conversation of a run (built once).
pub struct Shared {
    tools_agent: ToolSet,
    tools_task: ToolSet,
    tools_sub: ToolSet,
    instr_parent: String,
    instr_sub: String,
}

impl Shared {
    /// Build the tool blocks and system prompt texts.
    pub fn new() -> Shared {
        Shared {
            tools_agent: prompts::parent_tools("Agent"),
            tools_task: prompts::parent_tools("Task"),
            tools_sub: prompts::agent_tools(),
            instr_parent: prompts::instructions(false),
            instr_sub: prompts::instructions(true),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// A fan-out forced at a given parent request (used by the example preset).
#[derive(Clone, Debug)]
pub struct ForcedFanout {
    /// 0-based index of the parent request whose reply spawns the agents.
    pub at_request: usize,
    /// How many agents.
    pub count: usize,
    /// `subagent_type`
    pub kind: &'static str,
    /// Requests per agent.
    pub requests: usize,
}

/// What one conversation should look like.
#[derive(Clone, Debug)]
pub struct ConvPlan {
    /// Parent API calls (sub-agents come on top).
    pub target_requests: usize,
    /// Compact when the context exceeds this many tokens.
    pub max_context_tokens: u64,
    /// Old proxy: a streaming request plus a non-streaming replay per call.
    pub old_proxy: bool,
    /// Forced fan-out, if any.
    pub forced_fanout: Option<ForcedFanout>,
    /// Allow random fan-outs.
    pub random_fanout: bool,
    /// Emit rows that no session log references (quota checks, titles, summaries).
    pub unrelated: bool,
    /// Emit odd rows (errors, NULL responses, string bodies, forks' ttft).
    pub oddities: bool,
    /// Force the parent model (else opus or sonnet at random).
    pub parent_model: Option<&'static str>,
    /// Multiplier of tool-result sizes (1.0 = default).
    pub content_scale: f64,
    /// Sub-agent file layout: None = drawn per conversation; Some(0) older (beside the
    /// parent), Some(1) newer (`<session>/subagents/`), Some(2) alternating.
    pub layout: Option<u8>,
}

/// Counts for one conversation.
#[derive(Clone, Debug, Default)]
pub struct ConvStats {
    /// API calls referenced by the session logs (parent + sub-agents).
    pub requests: u64,
    /// Rows emitted.
    pub rows: u64,
    /// Sub-agents spawned.
    pub subagents: u64,
    /// JSONL files written.
    pub jsonl_files: u64,
    /// JSONL bytes written.
    pub jsonl_bytes: u64,
    /// Largest context seen (≈ tokens).
    pub max_context_tokens: u64,
    /// Compactions.
    pub compactions: u64,
    /// Time of the last event (ms since epoch).
    pub end_ms: i64,
}

/// A session-log file being written.
struct Log {
    w: BufWriter<File>,
    last: Option<String>,
    common: String,
    tail: String,
    bytes: u64,
}

impl Log {
    fn create(path: &Path, common: String, agent_id: Option<&str>) -> Result<Log, SynthError> {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let tail = agent_id
            .map(|a| format!(",\"agentId\":\"{a}\""))
            .unwrap_or_default();
        Ok(Log {
            w: BufWriter::with_capacity(1 << 16, File::create(path)?),
            last: None,
            common,
            tail,
            bytes: 0,
        })
    }

    fn raw(&mut self, line: &str) -> Result<(), SynthError> {
        self.w.write_all(line.as_bytes())?;
        self.w.write_all(b"\n")?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Write an entry in Claude Code's key order; `mid` holds `,"message":…` and friends,
    /// `after` fields that follow the timestamp (toolUseResult …).
    fn entry(
        &mut self,
        id: &str,
        typ: &str,
        ts: i64,
        mid: &str,
        after: &str,
    ) -> Result<(), SynthError> {
        let mut s = String::with_capacity(mid.len() + after.len() + 400);
        s.push_str("{\"parentUuid\":");
        match &self.last {
            Some(u) => write_str(&mut s, u, Dialect::Js),
            None => s.push_str("null"),
        }
        s.push(',');
        s.push_str(&self.common);
        s.push_str(",\"type\":");
        write_str(&mut s, typ, Dialect::Js);
        s.push_str(mid);
        s.push_str(",\"uuid\":\"");
        s.push_str(id);
        s.push_str("\",\"timestamp\":\"");
        s.push_str(&iso_ms(ts));
        s.push('"');
        s.push_str(after);
        s.push_str(&self.tail);
        s.push('}');
        self.last = Some(id.to_string());
        self.raw(&s)
    }

    fn finish(mut self) -> Result<u64, SynthError> {
        self.w.flush()?;
        Ok(self.bytes)
    }
}

/// One agent (the parent or a sub-agent) talking to the API.
struct Actor {
    model: &'static str,
    tools: ToolSet,
    system: String,
    system_tokens: u64,
    msgs: Vec<Msg>,
    msg_bytes: usize,
    log: Log,
    now: i64,
    cached_prefix: u64,
    last_req: i64,
    sub: bool,
    requests: u64,
    tool_uses: u64,
    tokens_total: u64,
    root: String,
}

impl Actor {
    fn context_tokens(&self) -> u64 {
        self.tools.tokens + self.system_tokens + self.msg_bytes as u64 / 4
    }
    fn push(&mut self, m: Msg) {
        self.msg_bytes += m.go.len() + 1;
        self.msgs.push(m);
    }
}

/// A planned tool call: its tool_use block and what running it produces.
struct ToolCall {
    block: Block,
    result: String,
    is_error: bool,
    tur: String,
    exec_ms: i64,
}

struct SubResult {
    tool_use_id: String,
    agent_id: String,
    prompt: String,
    text: String,
    start: i64,
    finish: i64,
    tokens: u64,
    tool_uses: u64,
}

/// One conversation being generated.
pub struct Conv<'a> {
    shared: &'a Shared,
    plan: ConvPlan,
    rng: SynthRng,
    ids: IdGen,
    dir: PathBuf,
    session: String,
    version: &'static str,
    agent_tool: &'static str,
    cwd: String,
    branch: String,
    user_agent: Arc<str>,
    req_headers: Arc<str>,
    style: StampStyle,
    offset_min: i32,
    timing_header: u8,
    fork_ttft: bool,
    string_bodies: f64,
    layout: u8,
    pending: Vec<Row>,
    seq: u64,
    sub_warm_at: Option<i64>,
    stats: ConvStats,
}

/// A log-normal draw with the given median.
pub(crate) fn lognormal(rng: &mut SynthRng, median: f64, sigma: f64) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}

impl<'a> Conv<'a> {
    /// Prepare conversation `index` of a run.
    pub fn new(
        shared: &'a Shared,
        seed: u64,
        index: u64,
        plan: ConvPlan,
        jsonl_dir: &Path,
    ) -> Conv<'a> {
        let mut rng = rng_for(seed, index + 1);
        let session = uuid(&mut rng);
        let newer = rng.gen_bool(0.6);
        let (version, agent_tool) = if newer {
            ("2.1.83", "Agent")
        } else {
            ("1.0.128", "Task")
        };
        let projects = [
            "kvstore",
            "webapp",
            "parser",
            "infra",
            "ml-pipeline",
            "api-gateway",
        ];
        let cwd = format!("/home/dev/{}", projects[rng.gen_range(0..projects.len())]);
        let branch = if rng.gen_bool(0.5) {
            "main".to_string()
        } else {
            format!("feature/{}", text::ident(&mut rng))
        };
        let user_agent: Arc<str> = Arc::from(format!("claude-cli/{version} (external, cli)"));
        let req_headers: Arc<str> = Arc::from(format!(
            "{{\"Accept\":[\"application/json\"],\"Anthropic-Beta\":[\"claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14\"],\"Anthropic-Version\":[\"2023-06-01\"],\"Content-Type\":[\"application/json\"],\"User-Agent\":[\"{user_agent}\"],\"X-App\":[\"cli\"],\"X-Stainless-Lang\":[\"js\"]}}"
        ));
        let r: f64 = rng.gen();
        let (style, offset_min) = if !plan.oddities || r < 0.88 {
            (StampStyle::Utc, 0)
        } else if r < 0.94 {
            (StampStyle::Offset(480), 480)
        } else {
            (StampStyle::Millis, 0)
        };
        let timing_header = if rng.gen_bool(0.7) { 0 } else { 1 };
        let fork_ttft = plan.oddities && rng.gen_bool(0.1);
        let string_bodies = if plan.oddities && rng.gen_bool(0.1) {
            0.3
        } else {
            0.0
        };
        let drawn = if rng.gen_bool(0.4) {
            0
        } else if rng.gen_bool(0.67) {
            1
        } else {
            2
        };
        let layout = plan.layout.unwrap_or(drawn);
        Conv {
            shared,
            plan,
            rng,
            ids: IdGen::new(seed, index),
            dir: jsonl_dir.to_path_buf(),
            session,
            version,
            agent_tool,
            cwd,
            branch,
            user_agent,
            req_headers,
            style,
            offset_min,
            timing_header,
            fork_ttft,
            string_bodies,
            layout,
            pending: Vec::new(),
            seq: 0,
            sub_warm_at: None,
            stats: ConvStats::default(),
        }
    }

    /// The session id (parent file stem).
    pub fn session_id(&self) -> &str {
        &self.session
    }

    fn common(&self, sidechain: bool) -> String {
        format!(
            "\"isSidechain\":{sidechain},\"userType\":\"external\",\"cwd\":{},\"sessionId\":\"{}\",\"version\":\"{}\",\"gitBranch\":{}",
            quoted(&self.cwd, Dialect::Js),
            self.session,
            self.version,
            quoted(&self.branch, Dialect::Js)
        )
    }

    fn env_text(&self, model: &str, start: i64) -> String {
        format!(
            "Here is useful information about the environment you are running in:\n<env>\nWorking directory: {}\nIs directory a git repo: Yes\nPlatform: linux\nOS Version: Linux 6.8.0\nToday's date: {}\n</env>\nYou are powered by the model {model}.\n\ngitStatus: This is the git status at the start of the conversation.\nCurrent branch: {}\n\nRecent commits:\n{:07x} {}\n{:07x} {}\n",
            self.cwd,
            &iso_ms(start)[..10],
            self.branch,
            self.rng.clone().gen::<u32>() >> 4,
            "Initial import",
            (start as u64 >> 8) & 0xFFF_FFFF,
            "Fix flaky test"
        )
    }

    fn ts(&self, ms: i64) -> String {
        row_stamp(ms, self.style)
    }

    fn push_row(&mut self, at: i64, body: String, response: Option<String>, model: &'static str) {
        self.seq += 1;
        let row = Row {
            id: self.ids.row_id(&mut self.rng),
            timestamp: self.ts(at),
            headers: self.req_headers.clone(),
            body,
            user_agent: self.user_agent.clone(),
            response,
            model,
            created_at: sqlite_stamp(at),
            at_ms: at,
            seq: self.seq,
        };
        self.pending.push(row);
    }

    fn flush(
        &mut self,
        emit: &mut dyn FnMut(Row) -> Result<(), SynthError>,
    ) -> Result<(), SynthError> {
        self.pending.sort_by_key(|r| (r.at_ms, r.seq));
        for r in self.pending.drain(..) {
            self.stats.rows += 1;
            emit(r)?;
        }
        Ok(())
    }

    /// Assemble a request body in the proxy's struct order.
    #[allow(clippy::too_many_arguments)]
    fn body_of(
        model: &str,
        msgs: &[Msg],
        extra: Option<&Msg>,
        cc: bool,
        max_tokens: u32,
        temperature: Option<&str>,
        system: Option<&str>,
        stream: bool,
        tools: Option<&str>,
        cap: usize,
    ) -> String {
        let mut s = String::with_capacity(cap + 512);
        s.push_str("{\"model\":");
        write_str(&mut s, model, Dialect::Go);
        s.push_str(",\"messages\":[");
        let n = msgs.len() + extra.is_some() as usize;
        for (i, m) in msgs.iter().chain(extra).enumerate() {
            if i > 0 {
                s.push(',');
            }
            // Claude Code's moving breakpoints: the last message and the previous user turn.
            let mark = cc && m.user && (i + 1 == n || i + 3 == n);
            m.write_go(&mut s, mark);
        }
        s.push_str("],\"max_tokens\":");
        s.push_str(&max_tokens.to_string());
        if let Some(t) = temperature {
            s.push_str(",\"temperature\":");
            s.push_str(t);
        }
        if let Some(sys) = system {
            s.push_str(",\"system\":");
            s.push_str(sys);
        }
        if stream {
            s.push_str(",\"stream\":true");
        }
        if let Some(t) = tools {
            s.push_str(",\"tools\":");
            s.push_str(t);
        }
        s.push('}');
        s
    }

    fn actor_body(a: &Actor, stream: bool, extra: Option<&Msg>) -> String {
        Self::body_of(
            a.model,
            &a.msgs,
            extra,
            true,
            32000,
            None,
            Some(&a.system),
            stream,
            Some(&a.tools.json),
            a.msg_bytes + a.system.len() + a.tools.json.len() + extra.map_or(0, |m| m.go.len()),
        )
    }

    fn resp_headers(&mut self, streaming: bool, ttft_ms: u64) -> Vec<(&'static str, String)> {
        let mut h = vec![
            (
                "Content-Type",
                if streaming {
                    "text/event-stream; charset=utf-8".to_string()
                } else {
                    "application/json".to_string()
                },
            ),
            ("Request-Id", api_request_id(&mut self.rng)),
        ];
        match self.timing_header {
            0 => {
                if self.rng.gen_bool(0.1) {
                    h.push((
                        "Server-Timing",
                        format!(
                            "x-originResponse;dur={}.{}, cdn-cache;desc=MISS",
                            ttft_ms,
                            self.rng.gen_range(0..10)
                        ),
                    ));
                } else {
                    h.push(("Server-Timing", format!("x-originResponse;dur={ttft_ms}")));
                }
            }
            _ => h.push(("X-Envoy-Upstream-Service-Time", ttft_ms.to_string())),
        }
        h
    }

    fn completed(&mut self, ms: i64) -> String {
        let ns = self.rng.gen_range(0..1_000_000);
        rfc3339_nano(ms, ns, self.offset_min)
    }

    /// A streaming envelope for a reply.
    #[allow(clippy::too_many_arguments)]
    fn stream_envelope(
        &mut self,
        id: &str,
        model: &str,
        blocks: &[Block],
        stop: &str,
        u: &Usage,
        rt: u64,
        ttft: u64,
        done: i64,
    ) -> String {
        let chunks = sse_lines(&mut self.rng, id, model, blocks, stop, u);
        let stored_stop = if self.rng.gen_bool(0.9) { "" } else { stop };
        let mut body = String::new();
        stream_body_go(&mut body, id, model, blocks, stored_stop, u);
        let headers = if self.plan.oddities && self.rng.gen_bool(0.01) {
            None
        } else {
            Some(self.resp_headers(true, ttft))
        };
        let as_string = self.string_bodies > 0.0 && self.rng.gen_bool(self.string_bodies);
        let completed_at = self.completed(done);
        let fork = if self.fork_ttft {
            Some(if self.rng.gen_bool(0.5) {
                J::Int(ttft as i64)
            } else {
                J::Str(format!("{ttft}"))
            })
        } else {
            None
        };
        Envelope {
            status: 200,
            headers: headers.as_deref(),
            body: if as_string {
                EnvBody::Str(&body)
            } else {
                EnvBody::Raw(&body)
            },
            body_text: None,
            response_time: rt,
            chunks: Some(&chunks),
            is_streaming: true,
            completed_at: &completed_at,
            ttft: fork,
        }
        .to_json()
    }

    /// A non-streaming envelope.
    #[allow(clippy::too_many_arguments)]
    fn plain_envelope(
        &mut self,
        id: &str,
        model: &str,
        blocks: &[Block],
        stop: &str,
        u: &Usage,
        rt: u64,
        ttft: u64,
        done: i64,
    ) -> String {
        let as_string = self.string_bodies > 0.0 && self.rng.gen_bool(self.string_bodies);
        let mut body = String::new();
        // A body stored as a string was never compacted by Go: plain API escaping.
        api_message(
            &mut body,
            id,
            model,
            blocks,
            stop,
            u,
            if as_string { Dialect::Js } else { Dialect::Api },
        );
        let headers = self.resp_headers(false, ttft);
        let completed_at = self.completed(done);
        Envelope {
            status: 200,
            headers: Some(&headers),
            body: if as_string {
                EnvBody::Str(&body)
            } else {
                EnvBody::Raw(&body)
            },
            body_text: None,
            response_time: rt,
            chunks: None,
            is_streaming: false,
            completed_at: &completed_at,
            ttft: None,
        }
        .to_json()
    }

    /// One API call of actor `a` answered with `blocks`; writes rows and session-log lines.
    fn api_call(
        &mut self,
        a: &mut Actor,
        blocks: Vec<Block>,
        stop: &'static str,
    ) -> Result<(), SynthError> {
        let total_in = a.context_tokens();
        self.stats.max_context_tokens = self.stats.max_context_tokens.max(total_in);
        // A failed attempt first (overload, or a response the proxy never recorded).
        if self.plan.oddities && self.rng.gen_bool(0.012) {
            let body = Self::actor_body(a, true, None);
            let resp = if self.rng.gen_bool(0.5) {
                None
            } else {
                let rt = self.rng.gen_range(200..3000);
                let done = a.now + rt as i64;
                let completed_at = self.completed(done);
                let h = self.resp_headers(false, rt / 2);
                Some(
                    Envelope {
                        status: 529,
                        headers: Some(&h),
                        body: EnvBody::None,
                        body_text: Some("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"),
                        response_time: rt,
                        chunks: None,
                        is_streaming: true,
                        completed_at: &completed_at,
                        ttft: None,
                    }
                    .to_json(),
                )
            };
            self.push_row(a.now, body, resp, a.model);
            a.now += self.rng.gen_range(2_000..12_000);
        }
        let req_ms = a.now;
        let input = self.rng.gen_range(1..=9u64).min(total_in);
        let warm = a.last_req >= 0 && req_ms - a.last_req <= CACHE_TTL_MS;
        let prefix = a.tools.tokens + a.system_tokens;
        let read = if warm {
            a.cached_prefix.min(total_in - input)
        } else if a.sub
            && self
                .sub_warm_at
                .is_some_and(|t| req_ms > t + 1000 && req_ms - t < CACHE_TTL_MS)
        {
            prefix.min(total_in - input)
        } else if !a.sub && a.last_req >= 0 && self.rng.gen_bool(0.3) {
            // The shared tools+system prefix is often still warm from another session.
            prefix.min(total_in - input)
        } else {
            0
        };
        let create = total_in - input - read;
        a.cached_prefix = total_in - input;
        a.last_req = req_ms;
        if a.sub && self.sub_warm_at.is_none() {
            self.sub_warm_at = Some(req_ms);
        }
        let out_bytes: usize = blocks.iter().map(|b| b.content_len()).sum();
        let output = (out_bytes as u64 / 4 + self.rng.gen_range(5..40)).max(1);
        let u = Usage {
            input,
            cache_creation: create,
            cache_read: read,
            output,
        };
        let ttft = 400 + self.rng.gen_range(0..1500) + total_in / 120;
        let rt = ttft + output * self.rng.gen_range(6..20);
        let (jsonl_id, jsonl_usage, done, first_ms);
        if self.plan.old_proxy {
            let sid = self.ids.msg_id(&mut self.rng);
            let body = Self::actor_body(a, true, None);
            let body_ns = body.replacen(",\"stream\":true", "", 1);
            let s_done = req_ms + rt as i64;
            let env = self.stream_envelope(&sid, a.model, &blocks, stop, &u, rt, ttft, s_done);
            self.push_row(req_ms, body, Some(env), a.model);
            let replay = req_ms + self.rng.gen_range(0..=3000);
            let nid = self.ids.msg_id(&mut self.rng);
            let u2 = Usage {
                input,
                cache_creation: 0,
                cache_read: read + create,
                output,
            };
            let ttft2 = 300 + self.rng.gen_range(0..800);
            let rt2 = ttft2 + output * self.rng.gen_range(6..20);
            let n_done = replay + rt2 as i64;
            let env2 = self.plain_envelope(&nid, a.model, &blocks, stop, &u2, rt2, ttft2, n_done);
            self.push_row(replay, body_ns, Some(env2), a.model);
            jsonl_id = nid;
            jsonl_usage = u2;
            done = n_done.max(s_done);
            first_ms = replay + ttft2 as i64;
        } else {
            let id = self.ids.msg_id(&mut self.rng);
            let body = Self::actor_body(a, true, None);
            done = req_ms + rt as i64;
            let env = self.stream_envelope(&id, a.model, &blocks, stop, &u, rt, ttft, done);
            self.push_row(req_ms, body, Some(env), a.model);
            jsonl_id = id;
            jsonl_usage = u;
            first_ms = req_ms + ttft as i64;
        }
        // The session log: one line per content block, sharing message.id.
        let req_id = api_request_id(&mut self.rng);
        let n = blocks.len() as i64;
        for (i, b) in blocks.iter().enumerate() {
            let last = i as i64 + 1 == n;
            let mut mid = String::with_capacity(b.content_len() + 400);
            mid.push_str(",\"message\":{\"model\":");
            write_str(&mut mid, a.model, Dialect::Js);
            mid.push_str(",\"id\":");
            write_str(&mut mid, &jsonl_id, Dialect::Js);
            mid.push_str(",\"type\":\"message\",\"role\":\"assistant\",\"content\":[");
            b.write_api(&mut mid, Dialect::Js);
            mid.push_str("],\"stop_reason\":");
            if last {
                write_str(&mut mid, stop, Dialect::Js);
            } else {
                mid.push_str("null");
            }
            mid.push_str(&format!(
                ",\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{},\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{},\"output_tokens\":{},\"service_tier\":\"standard\"}}}},\"requestId\":\"{req_id}\"",
                jsonl_usage.input, jsonl_usage.cache_creation, jsonl_usage.cache_read, jsonl_usage.output
            ));
            let ts =
                first_ms + (done - first_ms) * (i as i64 + 1) / n.max(1) - if last { 0 } else { 1 };
            let id = uuid(&mut self.rng);
            a.log.entry(&id, "assistant", ts, &mid, "")?;
        }
        a.now = done;
        a.requests += 1;
        self.stats.requests += 1;
        a.tokens_total += u.input + u.cache_creation + u.cache_read + u.output;
        a.push(Msg::new(false, blocks));
        Ok(())
    }

    fn pick_tool(&mut self, sub: bool) -> &'static str {
        let table: &[(&str, u32)] = if sub {
            &[("Read", 40), ("Grep", 25), ("Glob", 15), ("Bash", 20)]
        } else {
            &[
                ("Read", 32),
                ("Bash", 24),
                ("Grep", 12),
                ("Glob", 5),
                ("Edit", 15),
                ("Write", 3),
                ("TodoWrite", 7),
                ("WebFetch", 2),
            ]
        };
        let total: u32 = table.iter().map(|t| t.1).sum();
        let mut x = self.rng.gen_range(0..total);
        for (n, w) in table {
            if x < *w {
                return n;
            }
            x -= w;
        }
        "Read"
    }

    fn size(&mut self, lo_log2: f64, hi_log2: f64) -> usize {
        2f64.powf(self.rng.gen_range(lo_log2..hi_log2)) as usize
    }

    fn tool_call(&mut self, a: &Actor, sub: bool) -> ToolCall {
        let name = self.pick_tool(sub);
        let id = self.ids.tool_id(&mut self.rng);
        let scale = self.plan.content_scale;
        let rng = &mut self.rng;
        let root = a.root.clone();
        let err = rng.gen_bool(0.04);
        let (input, result, tur, exec_ms): (J, String, J, i64) = match name {
            "Read" => {
                let (p, lang) = text::path(rng, &root);
                let bytes = (2f64.powf(rng.gen_range(11.0..16.0)) * scale) as usize;
                if err {
                    let r = "<tool_use_error>File does not exist.</tool_use_error>".to_string();
                    (
                        J::obj([("file_path", J::s(&p))]),
                        r.clone(),
                        J::s(format!("Error: {r}")),
                        rng.gen_range(5..50),
                    )
                } else {
                    let content = text::code_file(rng, lang, bytes);
                    let (numbered, lines) = text::numbered(&content);
                    let tur = J::obj([
                        ("type", J::s("text")),
                        (
                            "file",
                            J::obj([
                                ("filePath", J::s(&p)),
                                ("content", J::s(content)),
                                ("numLines", J::Int(lines as i64)),
                                ("startLine", J::Int(1)),
                                ("totalLines", J::Int(lines as i64)),
                            ]),
                        ),
                    ]);
                    (
                        J::obj([("file_path", J::s(&p))]),
                        numbered,
                        tur,
                        rng.gen_range(5..200),
                    )
                }
            }
            "Bash" => {
                let bytes = (2f64.powf(rng.gen_range(6.5..13.5)) * scale) as usize;
                let (cmd, desc, out) = text::bash(rng, &root, bytes);
                let (res, stderr) = if err {
                    (
                        format!("Exit code 1\n{out}"),
                        "error: command failed".to_string(),
                    )
                } else {
                    (out.clone(), String::new())
                };
                let tur = J::obj([
                    ("stdout", J::s(out)),
                    ("stderr", J::s(stderr)),
                    ("interrupted", J::Bool(false)),
                    ("isImage", J::Bool(false)),
                ]);
                let exec = if rng.gen_bool(0.1) {
                    rng.gen_range(20_000..150_000)
                } else {
                    rng.gen_range(200..15_000)
                };
                (
                    J::obj([("command", J::s(cmd)), ("description", J::s(desc))]),
                    res,
                    tur,
                    exec,
                )
            }
            "Grep" => {
                let bytes = (2f64.powf(rng.gen_range(8.0..12.5)) * scale) as usize;
                let (lines, n) = text::grep_lines(rng, &root, bytes);
                let pat = text::ident(rng);
                let tur = J::obj([
                    ("mode", J::s("content")),
                    ("numFiles", J::Int(0)),
                    ("filenames", J::Arr(vec![])),
                    ("content", J::s(lines.clone())),
                    ("numLines", J::Int(n as i64)),
                ]);
                (
                    J::obj([
                        ("pattern", J::s(pat)),
                        ("path", J::s(&root)),
                        ("output_mode", J::s("content")),
                        ("-n", J::Bool(true)),
                    ]),
                    lines,
                    tur,
                    rng.gen_range(30..600),
                )
            }
            "Glob" => {
                let n = rng.gen_range(1..60);
                let files: Vec<String> = (0..n).map(|_| text::path(rng, &root).0).collect();
                let tur = J::obj([
                    ("filenames", J::Arr(files.iter().map(J::s).collect())),
                    ("durationMs", J::Int(rng.gen_range(3..300))),
                    ("numFiles", J::Int(n as i64)),
                    ("truncated", J::Bool(false)),
                ]);
                (
                    J::obj([("pattern", J::s(format!("**/*{}*", text::ident(rng))))]),
                    files.join("\n"),
                    tur,
                    rng.gen_range(10..300),
                )
            }
            "Edit" => {
                let (p, lang) = text::path(rng, &root);
                let old = {
                    let sz = rng.gen_range(40..400);
                    text::code_file(rng, lang, sz)
                };
                let new = {
                    let sz = rng.gen_range(40..600);
                    text::code_file(rng, lang, sz)
                };
                let snippet = text::numbered(&{
                    let sz = rng.gen_range(300..1500);
                    text::code_file(rng, lang, sz)
                })
                .0;
                let res = if err {
                    "<tool_use_error>String to replace not found in file.</tool_use_error>"
                        .to_string()
                } else {
                    format!("The file {p} has been updated. Here's the result of running `cat -n` on a snippet of the edited file:\n{snippet}")
                };
                let tur = J::obj([
                    ("filePath", J::s(&p)),
                    ("oldString", J::s(&old)),
                    ("newString", J::s(&new)),
                    ("replaceAll", J::Bool(false)),
                ]);
                let exec = if rng.gen_bool(0.3) {
                    rng.gen_range(2_000..60_000)
                } else {
                    rng.gen_range(20..300)
                };
                (
                    J::obj([
                        ("file_path", J::s(&p)),
                        ("old_string", J::s(old)),
                        ("new_string", J::s(new)),
                    ]),
                    res,
                    tur,
                    exec,
                )
            }
            "Write" => {
                let (p, lang) = text::path(rng, &root);
                let content = {
                    let sz = rng.gen_range(500..6000);
                    text::code_file(rng, lang, sz)
                };
                let tur = J::obj([("type", J::s("create")), ("filePath", J::s(&p))]);
                (
                    J::obj([("file_path", J::s(&p)), ("content", J::s(content))]),
                    format!("File created successfully at: {p}"),
                    tur,
                    rng.gen_range(20..3000),
                )
            }
            "TodoWrite" => {
                let todos: Vec<J> = (0..rng.gen_range(2..8))
                    .map(|i| {
                        let c = {
                            let sz = rng.gen_range(20..80);
                            text::prose(rng, sz, 0.01)
                        };
                        J::obj([
                            ("content", J::s(c.trim_end())),
                            (
                                "status",
                                J::s(if i == 0 { "in_progress" } else { "pending" }),
                            ),
                            (
                                "activeForm",
                                J::s(format!("Working on {}", text::ident(rng))),
                            ),
                        ])
                    })
                    .collect();
                let tur = J::obj([
                    ("oldTodos", J::Arr(vec![])),
                    ("newTodos", J::Arr(todos.clone())),
                ]);
                (
                    J::obj([("todos", J::Arr(todos))]),
                    "Todos have been modified successfully. Ensure that you continue to use the todo list to track your progress.".to_string(),
                    tur,
                    rng.gen_range(5..50),
                )
            }
            _ => {
                let url = format!(
                    "https://docs.example.com/{}/{}?lang=en&v=2",
                    text::ident(rng),
                    text::ident(rng)
                );
                let body = {
                    let sz = rng.gen_range(800..5000);
                    text::prose(rng, sz, 0.02)
                };
                let tur = J::obj([
                    ("bytes", J::Int(body.len() as i64 * 3)),
                    ("code", J::Int(200)),
                    ("result", J::s(&body)),
                    ("url", J::s(&url)),
                ]);
                (
                    J::obj([
                        ("url", J::s(url)),
                        ("prompt", J::s("Summarize the relevant API details")),
                    ]),
                    body,
                    tur,
                    rng.gen_range(1_500..12_000),
                )
            }
        };
        ToolCall {
            block: Block::ToolUse {
                id,
                name: name.to_string(),
                input,
            },
            result,
            is_error: err,
            tur: tur.to_string_in(Dialect::Js),
            exec_ms,
        }
    }

    fn preamble(&mut self, a: &Actor) -> Vec<Block> {
        let mut v = Vec::new();
        let p_think = if a.sub { 0.1 } else { 0.5 };
        if self.rng.gen_bool(p_think) {
            let n = self.size(7.0, 11.0);
            let t = text::thinking(&mut self.rng, n);
            let sig_len = self.rng.gen_range(200..700);
            v.push(Block::Thinking {
                text: t,
                sig: base64ish(&mut self.rng, sig_len),
            });
        }
        if self.rng.gen_bool(0.4) {
            let n = self.rng.gen_range(30..300);
            v.push(Block::Text(text::prose(&mut self.rng, n, 0.01)));
        }
        v
    }

    /// Write tool results to the log and the context.
    fn deliver_results(&mut self, a: &mut Actor, calls: Vec<ToolCall>) -> Result<(), SynthError> {
        let mut blocks = Vec::with_capacity(calls.len());
        let mut t = a.now;
        for c in calls {
            let Block::ToolUse { id, .. } = &c.block else {
                continue;
            };
            if c.exec_ms > 3000 && self.rng.gen_bool(0.7) {
                let pid = uuid(&mut self.rng);
                let mid = format!(
                    ",\"data\":{{\"type\":\"bash_progress\",\"output\":\"\",\"elapsedTimeSeconds\":{},\"totalLines\":0}},\"toolUseID\":\"bash-progress-0\",\"parentToolUseID\":\"{id}\"",
                    c.exec_ms / 2000
                );
                a.log.entry(&pid, "progress", t + c.exec_ms / 2, &mid, "")?;
            }
            t += c.exec_ms;
            let block = Block::ToolResult {
                id: id.clone(),
                content: ToolContent::Text(c.result),
                is_error: c.is_error,
            };
            let mut mid = String::with_capacity(block.content_len() + 100);
            mid.push_str(",\"message\":{\"role\":\"user\",\"content\":[");
            block.write_api(&mut mid, Dialect::Js);
            mid.push_str("]}");
            let after = format!(",\"toolUseResult\":{}", c.tur);
            let eid = uuid(&mut self.rng);
            a.log.entry(&eid, "user", t, &mid, &after)?;
            blocks.push(block);
            a.tool_uses += 1;
        }
        a.now = t + self.rng.gen_range(20..400);
        a.push(Msg::new(true, blocks));
        Ok(())
    }

    fn new_actor(&mut self, model: &'static str, sub: bool, log: Log, now: i64) -> Actor {
        let tools = if sub {
            self.shared.tools_sub.clone()
        } else if self.agent_tool == "Agent" {
            self.shared.tools_agent.clone()
        } else {
            self.shared.tools_task.clone()
        };
        let instr = if sub {
            &self.shared.instr_sub
        } else {
            &self.shared.instr_parent
        };
        let env = self.env_text(model, now);
        let big = format!("{instr}{env}");
        let system = prompts::system_json(&[(IDENTITY, true), (&big, true)]);
        let system_tokens = system.len() as u64 / 4;
        Actor {
            model,
            tools,
            system,
            system_tokens,
            msgs: Vec::new(),
            msg_bytes: 0,
            log,
            now,
            cached_prefix: 0,
            last_req: -1,
            sub,
            requests: 0,
            tool_uses: 0,
            tokens_total: 0,
            root: self.cwd.clone(),
        }
    }

    /// A request no session log references (its message id appears nowhere).
    #[allow(clippy::too_many_arguments)]
    fn unrelated(
        &mut self,
        at: i64,
        msgs: &[Msg],
        extra: Option<&Msg>,
        system: Option<&str>,
        model: &'static str,
        max_tokens: u32,
        temperature: Option<&str>,
        stream: bool,
        reply: &str,
        tools: Option<&str>,
    ) -> i64 {
        let cap = msgs.iter().map(|m| m.go.len() + 1).sum::<usize>()
            + system.map_or(0, str::len)
            + tools.map_or(0, str::len);
        let body = Self::body_of(
            model,
            msgs,
            extra,
            tools.is_some(),
            max_tokens,
            temperature,
            system,
            stream,
            tools,
            cap,
        );
        let id = self.ids.msg_id(&mut self.rng);
        let blocks = [Block::Text(reply.to_string())];
        let total = body.len() as u64 / 4;
        let u = Usage {
            input: total,
            cache_creation: 0,
            cache_read: 0,
            output: (reply.len() as u64 / 4).max(1),
        };
        let ttft = self.rng.gen_range(300..1500);
        let rt = ttft + u.output * self.rng.gen_range(5..15);
        let done = at + rt as i64;
        let stop = if max_tokens == 1 {
            "max_tokens"
        } else {
            "end_turn"
        };
        let env = if stream {
            self.stream_envelope(&id, model, &blocks, stop, &u, rt, ttft, done)
        } else {
            self.plain_envelope(&id, model, &blocks, stop, &u, rt, ttft, done)
        };
        self.push_row(at, body, Some(env), model);
        done
    }

    /// Run sub-agent `k` spawned at `spawn`.
    fn run_sub(
        &mut self,
        spawn: i64,
        tool_use_id: String,
        prompt: String,
        n_req: usize,
    ) -> Result<SubResult, SynthError> {
        let agent_id = self.ids.agent_id();
        let newer = match self.layout {
            0 => false,
            1 => true,
            _ => self.stats.subagents % 2 == 1,
        };
        let path = if newer {
            self.dir
                .join(&self.session)
                .join("subagents")
                .join(format!("agent-{agent_id}.jsonl"))
        } else {
            self.dir.join(format!("agent-{agent_id}.jsonl"))
        };
        let log = Log::create(&path, self.common(true), Some(&agent_id))?;
        self.stats.jsonl_files += 1;
        self.stats.subagents += 1;
        // Siblings start within the same wall-clock second as their spawn.
        let room = (999 - spawn.rem_euclid(1000)).min(400);
        let start = spawn + self.rng.gen_range(0..=room);
        let mut a = self.new_actor(HAIKU, true, log, start);
        let pid = uuid(&mut self.rng);
        let mid = format!(
            ",\"message\":{{\"role\":\"user\",\"content\":{}}}",
            quoted(&prompt, Dialect::Js)
        );
        a.log.entry(&pid, "user", start, &mid, "")?;
        a.push(Msg::new(true, vec![Block::Text(prompt.clone())]));
        a.now += self.rng.gen_range(30..300);
        for step in 0..n_req {
            let last = step + 1 == n_req;
            let mut blocks = self.preamble(&a);
            if last {
                let n = self.size(8.0, 11.5);
                blocks.push(Block::Text(text::answer(&mut self.rng, n)));
                self.api_call(&mut a, blocks, "end_turn")?;
            } else {
                let k = if self.rng.gen_bool(0.25) {
                    self.rng.gen_range(2..4)
                } else {
                    1
                };
                let calls: Vec<ToolCall> = (0..k).map(|_| self.tool_call(&a, true)).collect();
                blocks.extend(calls.iter().map(|c| c.block.clone()));
                self.api_call(&mut a, blocks, "tool_use")?;
                self.deliver_results(&mut a, calls)?;
            }
        }
        let text = match a.msgs.last().and_then(|m| m.blocks.last()) {
            Some(Block::Text(t)) => t.clone(),
            _ => String::new(),
        };
        let finish = a.now;
        self.stats.jsonl_bytes += a.log.bytes;
        let (tokens, tool_uses) = (a.tokens_total, a.tool_uses);
        a.log.finish()?;
        Ok(SubResult {
            tool_use_id,
            agent_id,
            prompt,
            text,
            start,
            finish,
            tokens,
            tool_uses,
        })
    }

    fn fanout(
        &mut self,
        a: &mut Actor,
        count: usize,
        kind: Option<&'static str>,
        sub_requests: Option<usize>,
    ) -> Result<(), SynthError> {
        let mut blocks = Vec::new();
        if self.rng.gen_bool(0.7) {
            blocks.push(Block::Text(format!(
                "I'll launch {count} agents in parallel to investigate this."
            )));
        }
        let mut spawned = Vec::new();
        for _ in 0..count {
            let id = self.ids.tool_id(&mut self.rng);
            let kind = kind.unwrap_or_else(|| {
                ["Explore", "Explore", "general-purpose", "Plan"][self.rng.gen_range(0..4)]
            });
            let desc = format!(
                "{} {}",
                ["Explore", "Find", "Check", "Trace", "Map"][self.rng.gen_range(0..5)],
                text::ident(&mut self.rng)
            );
            let prompt = format!(
                "{} {}",
                text::user_prompt(&mut self.rng),
                text::prose(&mut self.rng, 200, 0.01)
            );
            blocks.push(Block::ToolUse {
                id: id.clone(),
                name: self.agent_tool.to_string(),
                input: J::obj([
                    ("description", J::s(desc)),
                    ("prompt", J::s(&prompt)),
                    ("subagent_type", J::s(kind)),
                ]),
            });
            spawned.push((id, prompt));
        }
        self.api_call(a, blocks, "tool_use")?;
        let spawn = a.now;
        let mut results = Vec::new();
        for (id, prompt) in spawned {
            let n = sub_requests.unwrap_or_else(|| self.rng.gen_range(3..16));
            let r = self.run_sub(spawn, id.clone(), prompt, n)?;
            let pid = uuid(&mut self.rng);
            let mid = format!(
                ",\"data\":{{\"type\":\"agent_progress\",\"agentId\":\"{}\"}},\"toolUseID\":\"agent_msg_{}\",\"parentToolUseID\":\"{id}\"",
                r.agent_id,
                &id[8..]
            );
            a.log.entry(&pid, "progress", r.start + 500, &mid, "")?;
            results.push(r);
        }
        // Results arrive in finish order; the next request lists them in tool_use order.
        let mut order: Vec<usize> = (0..results.len()).collect();
        order.sort_by_key(|&i| (results[i].finish, i));
        for &i in &order {
            let r = &results[i];
            let block = Block::ToolResult {
                id: r.tool_use_id.clone(),
                content: ToolContent::Blocks(vec![r.text.clone()]),
                is_error: false,
            };
            let mut mid = String::from(",\"message\":{\"role\":\"user\",\"content\":[");
            block.write_api(&mut mid, Dialect::Js);
            mid.push_str("]}");
            let mut after =
                String::from(",\"toolUseResult\":{\"status\":\"completed\",\"prompt\":");
            write_str(&mut after, &r.prompt, Dialect::Js);
            after.push_str(&format!(
                ",\"agentId\":\"{}\",\"content\":[{{\"type\":\"text\",\"text\":",
                r.agent_id
            ));
            write_str(&mut after, &r.text, Dialect::Js);
            after.push_str(&format!(
                "}}],\"totalDurationMs\":{},\"totalTokens\":{},\"totalToolUseCount\":{}}}",
                r.finish - spawn,
                r.tokens,
                r.tool_uses
            ));
            let eid = uuid(&mut self.rng);
            a.log.entry(&eid, "user", r.finish + 50, &mid, &after)?;
        }
        let blocks: Vec<Block> = results
            .iter()
            .map(|r| Block::ToolResult {
                id: r.tool_use_id.clone(),
                content: ToolContent::Blocks(vec![r.text.clone()]),
                is_error: false,
            })
            .collect();
        a.tool_uses += results.len() as u64;
        a.now =
            results.iter().map(|r| r.finish).max().unwrap_or(a.now) + self.rng.gen_range(200..1500);
        a.push(Msg::new(true, blocks));
        Ok(())
    }

    fn pause(&mut self) -> i64 {
        let r: f64 = self.rng.gen();
        if r < 0.55 {
            self.rng.gen_range(5_000..90_000)
        } else if r < 0.85 {
            self.rng.gen_range(90_000..1_200_000)
        } else if r < 0.97 {
            self.rng.gen_range(1_200_000..10_800_000)
        } else {
            self.rng.gen_range(10_800_000..50_400_000)
        }
    }

    fn compact(&mut self, a: &mut Actor) -> Result<Msg, SynthError> {
        let n = self.rng.gen_range(4_000..12_000);
        let summary = format!(
            "This session is being continued from a previous conversation that ran out of context. The conversation is summarized below:\n{}",
            text::prose(&mut self.rng, n, 0.01)
        );
        // The summarization call itself: the whole context plus an instruction.
        let ask = Msg::new(true, vec![Block::Text("Your task is to create a detailed summary of the conversation so far, paying close attention to the user's explicit requests and your previous actions.".to_string())]);
        if self.plan.unrelated {
            let at = a.now;
            let msgs = std::mem::take(&mut a.msgs);
            let done = self.unrelated(
                at,
                &msgs,
                Some(&ask),
                Some(&a.system.clone()),
                a.model,
                20000,
                None,
                true,
                &summary,
                Some(&a.tools.json.clone()),
            );
            a.msgs = msgs;
            a.now = done + self.rng.gen_range(200..2000);
        } else {
            a.now += self.rng.gen_range(20_000..60_000);
        }
        let pre = a.context_tokens();
        a.msgs.clear();
        a.msg_bytes = 0;
        a.cached_prefix = a.tools.tokens + a.system_tokens;
        let id = uuid(&mut self.rng);
        let mid = format!(",\"message\":null,\"subtype\":\"compact_boundary\",\"content\":\"Conversation compacted\",\"isMeta\":false,\"level\":\"info\",\"compactMetadata\":{{\"trigger\":\"auto\",\"preTokens\":{pre}}}");
        a.log.entry(&id, "system", a.now, &mid, "")?;
        let id = uuid(&mut self.rng);
        let mid = format!(
            ",\"message\":{{\"role\":\"user\",\"content\":{}}},\"isCompactSummary\":true",
            quoted(&summary, Dialect::Js)
        );
        a.log.entry(&id, "user", a.now + 5, &mid, "")?;
        self.stats.compactions += 1;
        Ok(Msg::new(true, vec![Block::Text(summary)]))
    }

    /// Generate the whole conversation starting at `start_ms`, emitting rows in time order.
    pub fn run(
        mut self,
        start_ms: i64,
        emit: &mut dyn FnMut(Row) -> Result<(), SynthError>,
    ) -> Result<ConvStats, SynthError> {
        let path = self.dir.join(format!("{}.jsonl", self.session));
        let mut log = Log::create(&path, self.common(false), None)?;
        self.stats.jsonl_files += 1;
        if self.rng.gen_bool(0.25) {
            let leaf = uuid(&mut self.rng);
            let s = format!(
                "{{\"type\":\"summary\",\"summary\":{},\"leafUuid\":\"{leaf}\"}}",
                quoted(&text::prose(&mut self.rng, 50, 0.1), Dialect::Js)
            );
            log.raw(s.trim_end())?;
        }
        let model =
            self.plan
                .parent_model
                .unwrap_or(if self.rng.gen_bool(0.6) { OPUS } else { SONNET });
        let mut a = self.new_actor(model, false, log, start_ms);
        if self.plan.unrelated && self.rng.gen_bool(0.5) {
            let q = Msg {
                user: true,
                blocks: vec![],
                go: "{\"role\":\"user\",\"content\":\"quota\"}".to_string(),
            };
            self.unrelated(
                start_ms - 1500,
                &[q],
                None,
                None,
                HAIKU,
                1,
                None,
                false,
                "Hi",
                None,
            );
        }
        let target = self.plan.target_requests.max(1);
        let mut fanouts = 0;
        let mut forced_done = false;
        let mut first = true;
        let mut carry: Option<Msg> = None;
        while (a.requests as usize) < target {
            if !first {
                a.now += self.pause();
                if a.context_tokens() > self.plan.max_context_tokens {
                    carry = Some(self.compact(&mut a)?);
                }
            }
            // A user prompt.
            let prompt = text::user_prompt(&mut self.rng);
            let uid = uuid(&mut self.rng);
            let snap = format!(
                "{{\"type\":\"file-history-snapshot\",\"messageId\":\"{uid}\",\"snapshot\":{{\"messageId\":\"{uid}\",\"trackedFileBackups\":{{}},\"timestamp\":\"{}\"}},\"isSnapshotUpdate\":false}}",
                iso_ms(a.now)
            );
            a.log.raw(&snap)?;
            let mid = format!(
                ",\"message\":{{\"role\":\"user\",\"content\":{}}}",
                quoted(&prompt, Dialect::Js)
            );
            a.log.entry(&uid, "user", a.now, &mid, "")?;
            let mut blocks = Vec::new();
            if let Some(Msg { blocks: b, .. }) = carry.take() {
                blocks.extend(b);
            }
            if first {
                let n = self.rng.gen_range(800..4000);
                blocks.push(Block::Text(format!(
                    "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n# claudeMd\nContents of {}/CLAUDE.md (project instructions, checked into the codebase):\n\n{}\n</system-reminder>",
                    self.cwd,
                    text::prose(&mut self.rng, n, 0.01)
                )));
            }
            blocks.push(Block::Text(prompt.clone()));
            a.push(Msg::new(true, blocks));
            if self.plan.unrelated && (first || self.rng.gen_bool(0.3)) {
                let t = Msg::new(true, vec![Block::Text(prompt.clone())]);
                let sys = prompts::system_json(&[(
                    "Analyze if this message indicates a new conversation topic. If it does, extract a 2-3 word title that captures the new topic. Format your response as a JSON object with two fields: 'isNewTopic' (boolean) and 'title' (string, or null if isNewTopic is false).",
                    false,
                )]);
                let reply = format!(
                    "{{\"isNewTopic\": true, \"title\": \"{}\"}}",
                    text::type_name(&mut self.rng)
                );
                let at = a.now + self.rng.gen_range(100..600);
                self.unrelated(
                    at,
                    &[t],
                    None,
                    Some(&sys),
                    HAIKU,
                    512,
                    Some("0"),
                    true,
                    &reply,
                    None,
                );
            }
            a.now += self.rng.gen_range(50..400);
            first = false;
            // The agentic loop of this turn.
            let steps = (1.0 + -(self.rng.gen_range(f64::EPSILON..1.0f64)).ln() * 6.0) as usize;
            let steps = steps.clamp(1, 30);
            for step in 0..steps {
                let idx = a.requests as usize;
                let last = step + 1 == steps || idx + 1 >= target;
                let forced = self
                    .plan
                    .forced_fanout
                    .clone()
                    .filter(|f| !forced_done && idx >= f.at_request && !last);
                if let Some(f) = forced {
                    forced_done = true;
                    self.fanout(&mut a, f.count, Some(f.kind), Some(f.requests))?;
                } else if !last
                    && self.plan.random_fanout
                    && fanouts < 3
                    && step > 0
                    && self.rng.gen_bool(0.035)
                {
                    fanouts += 1;
                    let n = [1, 1, 2, 2, 3, 4][self.rng.gen_range(0..6)];
                    self.fanout(&mut a, n, None, None)?;
                } else if last {
                    let mut blocks = self.preamble(&a);
                    blocks.retain(|b| !matches!(b, Block::Text(_)));
                    let n = self.size(7.0, 11.5);
                    blocks.push(Block::Text(text::answer(&mut self.rng, n)));
                    self.api_call(&mut a, blocks, "end_turn")?;
                } else {
                    let mut blocks = self.preamble(&a);
                    let k = if self.rng.gen_bool(0.2) {
                        self.rng.gen_range(2..4)
                    } else {
                        1
                    };
                    let calls: Vec<ToolCall> = (0..k).map(|_| self.tool_call(&a, false)).collect();
                    blocks.extend(calls.iter().map(|c| c.block.clone()));
                    self.api_call(&mut a, blocks, "tool_use")?;
                    self.deliver_results(&mut a, calls)?;
                }
                self.flush(emit)?;
                if last {
                    break;
                }
            }
        }
        self.flush(emit)?;
        self.stats.end_ms = a.now;
        self.stats.jsonl_bytes += a.log.bytes;
        a.log.finish()?;
        Ok(self.stats)
    }
}
