//! Agents talking to the API: the tool sets and instructions every conversation shares
//! ([`Shared`]), and the `Actor` — the parent or one sub-agent — with its model, system
//! prompt, growing message list, session log, clock and prompt-cache state.

use super::log::Log;
use super::Conv;
use crate::model::Msg;
use crate::prompts::{self, ToolSet, IDENTITY};

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

/// One agent (the parent or a sub-agent) talking to the API.
pub(super) struct Actor {
    pub(super) model: &'static str,
    pub(super) tools: ToolSet,
    pub(super) system: String,
    pub(super) system_tokens: u64,
    pub(super) msgs: Vec<Msg>,
    pub(super) msg_bytes: usize,
    pub(super) log: Log,
    /// The actor's clock (ms since epoch).
    pub(super) now: i64,
    /// Tokens the API has cached for this actor (what the next call may read).
    pub(super) cached_prefix: u64,
    /// Time of the previous request, -1 before the first.
    pub(super) last_req: i64,
    pub(super) sub: bool,
    pub(super) requests: u64,
    pub(super) tool_uses: u64,
    pub(super) tokens_total: u64,
    pub(super) root: String,
}

impl Actor {
    /// The context size (≈ tokens) of the next request.
    pub(super) fn context_tokens(&self) -> u64 {
        self.tools.tokens + self.system_tokens + self.msg_bytes as u64 / 4
    }

    /// Append a message to the context.
    pub(super) fn push(&mut self, m: Msg) {
        self.msg_bytes += m.go.len() + 1;
        self.msgs.push(m);
    }
}

impl<'a> Conv<'a> {
    /// A fresh actor writing to `log`, starting at `now`.
    pub(super) fn new_actor(
        &mut self,
        model: &'static str,
        sub: bool,
        log: Log,
        now: i64,
    ) -> Actor {
        let tools = if sub {
            self.shared.tools_sub.clone()
        } else if self.who.agent_tool == "Agent" {
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
            root: self.who.cwd.clone(),
        }
    }
}
