//! Sub-agents: a fan-out is one parent reply spawning several Agent/Task tool calls at once;
//! each sub-agent then runs its own short agentic loop on the small model with its own
//! session log (beside the parent or under `<session>/subagents/`, per the layout), and the
//! parent receives their results in finish order.

use super::actor::Actor;
use super::log::Log;
use super::{Conv, HAIKU};
use crate::ids::uuid;
use crate::json::{quoted, write_str, Dialect, J};
use crate::model::{Block, Msg, ToolContent};
use crate::text;
use crate::SynthError;
use rand::Rng;

/// What a finished sub-agent hands back to its parent.
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

impl<'a> Conv<'a> {
    /// The parent `a` spawns `count` sub-agents of type `kind` (drawn per agent when None),
    /// each making `sub_requests` calls (drawn when None), and collects their results.
    pub(super) fn fanout(
        &mut self,
        a: &mut Actor,
        count: usize,
        kind: Option<&'static str>,
        sub_requests: Option<usize>,
    ) -> Result<(), SynthError> {
        let (blocks, spawned) = self.spawn_blocks(count, kind);
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
        self.log_sub_results(a, &results, spawn)?;
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

    /// The spawning reply's blocks, and the (tool_use id, prompt) of every agent.
    fn spawn_blocks(
        &mut self,
        count: usize,
        kind: Option<&'static str>,
    ) -> (Vec<Block>, Vec<(String, String)>) {
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
                name: self.who.agent_tool.to_string(),
                input: J::obj([
                    ("description", J::s(desc)),
                    ("prompt", J::s(&prompt)),
                    ("subagent_type", J::s(kind)),
                ]),
            });
            spawned.push((id, prompt));
        }
        (blocks, spawned)
    }

    /// Log the sub-agents' tool results in the parent's log, in finish order.
    fn log_sub_results(
        &mut self,
        a: &mut Actor,
        results: &[SubResult],
        spawn: i64,
    ) -> Result<(), SynthError> {
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
        Ok(())
    }

    /// The session log of a new sub-agent, placed per the conversation's layout.
    fn open_sub_log(&mut self, agent_id: &str) -> Result<Log, SynthError> {
        let newer = match self.layout {
            0 => false,
            1 => true,
            _ => self.stats.subagents % 2 == 1,
        };
        let path = if newer {
            self.dir
                .join(&self.who.session)
                .join("subagents")
                .join(format!("agent-{agent_id}.jsonl"))
        } else {
            self.dir.join(format!("agent-{agent_id}.jsonl"))
        };
        let log = Log::create(&path, self.common(true), Some(agent_id))?;
        self.stats.jsonl_files += 1;
        self.stats.subagents += 1;
        Ok(log)
    }

    /// Run one sub-agent spawned at `spawn` for `n_req` calls.
    fn run_sub(
        &mut self,
        spawn: i64,
        tool_use_id: String,
        prompt: String,
        n_req: usize,
    ) -> Result<SubResult, SynthError> {
        let agent_id = self.ids.agent_id();
        let log = self.open_sub_log(&agent_id)?;
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
            if step + 1 == n_req {
                let mut blocks = self.preamble(&a);
                let n = self.size(8.0, 11.5);
                blocks.push(Block::Text(text::answer(&mut self.rng, n)));
                self.api_call(&mut a, blocks, "end_turn")?;
            } else {
                self.tool_step(&mut a, 0.25)?;
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
}
