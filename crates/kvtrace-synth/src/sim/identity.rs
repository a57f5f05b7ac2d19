//! Setting up a conversation: the draws that fix who is talking and through which proxy —
//! session id, Claude Code version (and so the Agent/Task tool name), project directory and
//! branch, request headers, plus the proxy's per-conversation quirks (timestamp style, timing
//! header, fork fields, string bodies) and the sub-agent file layout. Also the strings derived
//! from them: the common session-log fields and the system prompt's environment block.

use super::{Conv, ConvPlan, ConvStats, Shared};
use crate::clock::{iso_ms, StampStyle};
use crate::ids::{rng_for, uuid, IdGen, SynthRng};
use crate::json::{quoted, Dialect};
use crate::text;
use rand::Rng;
use std::path::Path;
use std::sync::Arc;

/// Who is talking: drawn first, in this order.
pub(super) struct Identity {
    pub(super) session: String,
    pub(super) version: &'static str,
    pub(super) agent_tool: &'static str,
    pub(super) cwd: String,
    pub(super) branch: String,
    pub(super) user_agent: Arc<str>,
    pub(super) req_headers: Arc<str>,
}

impl Identity {
    fn draw(rng: &mut SynthRng) -> Identity {
        let session = uuid(rng);
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
            format!("feature/{}", text::ident(rng))
        };
        let user_agent: Arc<str> = Arc::from(format!("claude-cli/{version} (external, cli)"));
        let req_headers: Arc<str> = Arc::from(format!(
            "{{\"Accept\":[\"application/json\"],\"Anthropic-Beta\":[\"claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14\"],\"Anthropic-Version\":[\"2023-06-01\"],\"Content-Type\":[\"application/json\"],\"User-Agent\":[\"{user_agent}\"],\"X-App\":[\"cli\"],\"X-Stainless-Lang\":[\"js\"]}}"
        ));
        Identity {
            session,
            version,
            agent_tool,
            cwd,
            branch,
            user_agent,
            req_headers,
        }
    }
}

/// How this conversation's proxy formats what it stores: drawn after the identity.
struct Quirks {
    style: StampStyle,
    offset_min: i32,
    timing_header: u8,
    fork_ttft: bool,
    string_bodies: f64,
}

impl Quirks {
    fn draw(rng: &mut SynthRng, oddities: bool) -> Quirks {
        let r: f64 = rng.gen();
        let (style, offset_min) = if !oddities || r < 0.88 {
            (StampStyle::Utc, 0)
        } else if r < 0.94 {
            (StampStyle::Offset(480), 480)
        } else {
            (StampStyle::Millis, 0)
        };
        let timing_header = if rng.gen_bool(0.7) { 0 } else { 1 };
        let fork_ttft = oddities && rng.gen_bool(0.1);
        let string_bodies = if oddities && rng.gen_bool(0.1) {
            0.3
        } else {
            0.0
        };
        Quirks {
            style,
            offset_min,
            timing_header,
            fork_ttft,
            string_bodies,
        }
    }
}

/// Sub-agent file layout (see [`ConvPlan::layout`]), always drawn even when the plan forces one.
fn draw_layout(rng: &mut SynthRng) -> u8 {
    if rng.gen_bool(0.4) {
        0
    } else if rng.gen_bool(0.67) {
        1
    } else {
        2
    }
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
        let who = Identity::draw(&mut rng);
        let Quirks {
            style,
            offset_min,
            timing_header,
            fork_ttft,
            string_bodies,
        } = Quirks::draw(&mut rng, plan.oddities);
        let drawn = draw_layout(&mut rng);
        let layout = plan.layout.unwrap_or(drawn);
        Conv {
            shared,
            plan,
            rng,
            ids: IdGen::new(seed, index),
            dir: jsonl_dir.to_path_buf(),
            who,
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

    /// The fields every session-log entry of this conversation carries.
    pub(super) fn common(&self, sidechain: bool) -> String {
        format!(
            "\"isSidechain\":{sidechain},\"userType\":\"external\",\"cwd\":{},\"sessionId\":\"{}\",\"version\":\"{}\",\"gitBranch\":{}",
            quoted(&self.who.cwd, Dialect::Js),
            self.who.session,
            self.who.version,
            quoted(&self.who.branch, Dialect::Js)
        )
    }

    /// The `<env>` block and git status of a system prompt (peeks at the rng, never advances it).
    pub(super) fn env_text(&self, model: &str, start: i64) -> String {
        format!(
            "Here is useful information about the environment you are running in:\n<env>\nWorking directory: {}\nIs directory a git repo: Yes\nPlatform: linux\nOS Version: Linux 6.8.0\nToday's date: {}\n</env>\nYou are powered by the model {model}.\n\ngitStatus: This is the git status at the start of the conversation.\nCurrent branch: {}\n\nRecent commits:\n{:07x} {}\n{:07x} {}\n",
            self.who.cwd,
            &iso_ms(start)[..10],
            self.who.branch,
            self.rng.clone().gen::<u32>() >> 4,
            "Initial import",
            (start as u64 >> 8) & 0xFFF_FFFF,
            "Fix flaky test"
        )
    }
}
