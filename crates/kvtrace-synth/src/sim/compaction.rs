//! Compaction: when a parent's context outgrows the plan's limit, Claude Code asks the model
//! for a summary (an unrelated row when those are enabled), logs a `compact_boundary` and
//! the summary, and restarts the context from that summary.

use super::actor::Actor;
use super::Conv;
use crate::ids::uuid;
use crate::json::{quoted, Dialect};
use crate::model::{Block, Msg};
use crate::text;
use crate::SynthError;
use rand::Rng;

impl<'a> Conv<'a> {
    /// Compact `a`'s context; returns the summary message that opens the next user turn.
    pub(super) fn compact(&mut self, a: &mut Actor) -> Result<Msg, SynthError> {
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
}
