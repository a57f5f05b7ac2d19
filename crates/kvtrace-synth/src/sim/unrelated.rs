//! Rows no session log references: Claude Code's side requests — the quota check at start-up,
//! the topic/title detector on user prompts, and the summarization call of a compaction. Their
//! message ids appear nowhere in the JSONL, so a trace builder must leave them out.

use super::request::body_of;
use super::{Conv, HAIKU};
use crate::model::{Block, Msg, Usage};
use crate::prompts;
use crate::text;
use rand::Rng;

impl<'a> Conv<'a> {
    /// A request no session log references (its message id appears nowhere); returns the
    /// time its reply completed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn unrelated(
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
        let body = body_of(
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
        let m = super::usage::Metered { u, ttft, rt };
        let r = crate::model::Reply {
            id: &id,
            model,
            blocks: &blocks,
            stop,
        };
        let env = if stream {
            self.stream_envelope(&r, &m, done)
        } else {
            self.plain_envelope(&r, &m, done)
        };
        self.push_row(at, body, Some(env), model);
        done
    }

    /// The one-token quota check Claude Code sends just before a session starts.
    pub(super) fn quota_check(&mut self, start_ms: i64) {
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

    /// The topic detector run on a user prompt typed at `now`.
    pub(super) fn title_check(&mut self, now: i64, prompt: &str) {
        let t = Msg::new(true, vec![Block::Text(prompt.to_string())]);
        let sys = prompts::system_json(&[(
            "Analyze if this message indicates a new conversation topic. If it does, extract a 2-3 word title that captures the new topic. Format your response as a JSON object with two fields: 'isNewTopic' (boolean) and 'title' (string, or null if isNewTopic is false).",
            false,
        )]);
        let reply = format!(
            "{{\"isNewTopic\": true, \"title\": \"{}\"}}",
            text::type_name(&mut self.rng)
        );
        let at = now + self.rng.gen_range(100..600);
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
}
