//! One user turn of the parent: the prompt (with its file-history snapshot, the CLAUDE.md
//! reminder on the first turn and a compaction summary carried in front when there was one),
//! then the agentic loop — each step either fans out sub-agents, calls tools, or, at the end,
//! answers in text. Also the thinking/text preamble that opens an assistant reply, and the
//! tool step sub-agents share.

use super::actor::Actor;
use super::tools::ToolCall;
use super::{Conv, Row};
use crate::clock::iso_ms;
use crate::ids::{base64ish, uuid};
use crate::json::{quoted, Dialect};
use crate::model::{Block, Msg};
use crate::text;
use crate::SynthError;
use rand::Rng;

/// Fan-outs already spent by a conversation.
#[derive(Default)]
pub(super) struct FanoutBudget {
    /// The plan's forced fan-out has happened.
    forced_done: bool,
    /// Random fan-outs so far (at most 3).
    random: u32,
}

impl<'a> Conv<'a> {
    /// Log and add a user prompt to the context; `carry` is a compaction summary to prepend.
    pub(super) fn user_turn(
        &mut self,
        a: &mut Actor,
        first: bool,
        carry: Option<Msg>,
    ) -> Result<(), SynthError> {
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
        if let Some(Msg { blocks: b, .. }) = carry {
            blocks.extend(b);
        }
        if first {
            let n = self.rng.gen_range(800..4000);
            blocks.push(Block::Text(format!(
                "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n# claudeMd\nContents of {}/CLAUDE.md (project instructions, checked into the codebase):\n\n{}\n</system-reminder>",
                self.who.cwd,
                text::prose(&mut self.rng, n, 0.01)
            )));
        }
        blocks.push(Block::Text(prompt.clone()));
        a.push(Msg::new(true, blocks));
        if self.plan.unrelated && (first || self.rng.gen_bool(0.3)) {
            self.title_check(a.now, &prompt);
        }
        a.now += self.rng.gen_range(50..400);
        Ok(())
    }

    /// The agentic loop of one turn, until its last step or the plan's request count;
    /// rows are flushed after every step.
    pub(super) fn agent_loop(
        &mut self,
        a: &mut Actor,
        target: usize,
        budget: &mut FanoutBudget,
        emit: &mut dyn FnMut(Row) -> Result<(), SynthError>,
    ) -> Result<(), SynthError> {
        let steps = (1.0 + -(self.rng.gen_range(f64::EPSILON..1.0f64)).ln() * 6.0) as usize;
        let steps = steps.clamp(1, 30);
        for step in 0..steps {
            let idx = a.requests as usize;
            let last = step + 1 == steps || idx + 1 >= target;
            self.agent_step(a, step, idx, last, budget)?;
            self.flush(emit)?;
            if last {
                break;
            }
        }
        Ok(())
    }

    /// Step `step` of a turn, the parent's request `idx`: a forced or random fan-out, the
    /// final answer, or a round of tool calls.
    fn agent_step(
        &mut self,
        a: &mut Actor,
        step: usize,
        idx: usize,
        last: bool,
        budget: &mut FanoutBudget,
    ) -> Result<(), SynthError> {
        let forced = self
            .plan
            .forced_fanout
            .clone()
            .filter(|f| !budget.forced_done && idx >= f.at_request && !last);
        if let Some(f) = forced {
            budget.forced_done = true;
            self.fanout(a, f.count, Some(f.kind), Some(f.requests))
        } else if !last
            && self.plan.random_fanout
            && budget.random < 3
            && step > 0
            && self.rng.gen_bool(0.035)
        {
            budget.random += 1;
            let n = [1, 1, 2, 2, 3, 4][self.rng.gen_range(0..6)];
            self.fanout(a, n, None, None)
        } else if last {
            self.final_answer(a)
        } else {
            self.tool_step(a, 0.2)
        }
    }

    /// The parent's closing text answer (no preamble text, maybe thinking).
    fn final_answer(&mut self, a: &mut Actor) -> Result<(), SynthError> {
        let mut blocks = self.preamble(a);
        blocks.retain(|b| !matches!(b, Block::Text(_)));
        let n = self.size(7.0, 11.5);
        blocks.push(Block::Text(text::answer(&mut self.rng, n)));
        self.api_call(a, blocks, "end_turn")
    }

    /// A reply calling one tool, or 2–3 at once with probability `p_multi`, and the results.
    pub(super) fn tool_step(&mut self, a: &mut Actor, p_multi: f64) -> Result<(), SynthError> {
        let mut blocks = self.preamble(a);
        let k = if self.rng.gen_bool(p_multi) {
            self.rng.gen_range(2..4)
        } else {
            1
        };
        let calls: Vec<ToolCall> = (0..k).map(|_| self.tool_call(a, a.sub)).collect();
        blocks.extend(calls.iter().map(|c| c.block.clone()));
        self.api_call(a, blocks, "tool_use")?;
        self.deliver_results(a, calls)
    }

    /// What opens an assistant reply: sometimes thinking, sometimes a sentence of text.
    pub(super) fn preamble(&mut self, a: &Actor) -> Vec<Block> {
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
}
