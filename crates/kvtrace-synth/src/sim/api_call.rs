//! One API call of an actor, end to end: an occasional failed attempt first, the proxy rows
//! (one streaming row with the fixed proxy; a streaming row plus a non-streaming replay with
//! the old proxy), the assistant lines of the session log (one per content block, sharing
//! the message id of the call Claude Code kept), and the actor's bookkeeping.

use super::actor::Actor;
use super::request::actor_body;
use super::usage::Metered;
use super::Conv;
use crate::ids::{api_request_id, uuid};
use crate::json::{write_str, Dialect};
use crate::model::{Block, EnvBody, Envelope, Msg, Reply, Usage};
use crate::SynthError;
use rand::Rng;

/// The call the session log records: its message id, usage and streaming times.
struct Logged {
    id: String,
    usage: Usage,
    /// First token (ms since epoch).
    first_ms: i64,
    /// Reply complete (ms since epoch).
    done: i64,
}

impl<'a> Conv<'a> {
    /// One API call of actor `a` answered with `blocks`; writes rows and session-log lines.
    pub(super) fn api_call(
        &mut self,
        a: &mut Actor,
        blocks: Vec<Block>,
        stop: &'static str,
    ) -> Result<(), SynthError> {
        let total_in = a.context_tokens();
        self.stats.max_context_tokens = self.stats.max_context_tokens.max(total_in);
        // A failed attempt first (overload, or a response the proxy never recorded).
        if self.plan.oddities && self.rng.gen_bool(0.012) {
            self.failed_attempt(a);
        }
        let m = self.meter(a, total_in, &blocks);
        let logged = if self.plan.old_proxy {
            self.old_proxy_rows(a, &blocks, stop, &m)
        } else {
            self.fixed_proxy_row(a, &blocks, stop, &m)
        };
        self.log_reply(a, &blocks, stop, &logged)?;
        a.now = logged.done;
        a.requests += 1;
        self.stats.requests += 1;
        let u = m.u;
        a.tokens_total += u.input + u.cache_creation + u.cache_read + u.output;
        a.push(Msg::new(false, blocks));
        Ok(())
    }

    /// A 529 overload or a row without a response, then a back-off before the retry.
    fn failed_attempt(&mut self, a: &mut Actor) {
        let body = actor_body(a, true, None);
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

    /// The fixed proxy: one streaming row, which the session log records.
    fn fixed_proxy_row(&mut self, a: &Actor, blocks: &[Block], stop: &str, m: &Metered) -> Logged {
        let req_ms = a.now;
        let id = self.ids.msg_id(&mut self.rng);
        let body = actor_body(a, true, None);
        let done = req_ms + m.rt as i64;
        let env = self.stream_envelope(&reply(&id, a.model, blocks, stop), m, done);
        self.push_row(req_ms, body, Some(env), a.model);
        Logged {
            id,
            usage: m.u,
            first_ms: req_ms + m.ttft as i64,
            done,
        }
    }

    /// The old proxy: the streaming request, then a non-streaming replay of it, which is the
    /// call the session log records.
    fn old_proxy_rows(&mut self, a: &Actor, blocks: &[Block], stop: &str, m: &Metered) -> Logged {
        let req_ms = a.now;
        let sid = self.ids.msg_id(&mut self.rng);
        let body = actor_body(a, true, None);
        let body_ns = body.replacen(",\"stream\":true", "", 1);
        let s_done = req_ms + m.rt as i64;
        let env = self.stream_envelope(&reply(&sid, a.model, blocks, stop), m, s_done);
        self.push_row(req_ms, body, Some(env), a.model);
        let replay = req_ms + self.rng.gen_range(0..=3000);
        let nid = self.ids.msg_id(&mut self.rng);
        let r = self.meter_replay(&m.u);
        let n_done = replay + r.rt as i64;
        let env2 = self.plain_envelope(&reply(&nid, a.model, blocks, stop), &r, n_done);
        self.push_row(replay, body_ns, Some(env2), a.model);
        Logged {
            id: nid,
            usage: r.u,
            first_ms: replay + r.ttft as i64,
            done: n_done.max(s_done),
        }
    }

    /// The session log: one assistant line per content block, sharing message.id, spread
    /// over the streaming time.
    fn log_reply(
        &mut self,
        a: &mut Actor,
        blocks: &[Block],
        stop: &str,
        logged: &Logged,
    ) -> Result<(), SynthError> {
        let (first_ms, done, usage) = (logged.first_ms, logged.done, &logged.usage);
        let req_id = api_request_id(&mut self.rng);
        let n = blocks.len() as i64;
        for (i, b) in blocks.iter().enumerate() {
            let last = i as i64 + 1 == n;
            let mut mid = String::with_capacity(b.content_len() + 400);
            mid.push_str(",\"message\":{\"model\":");
            write_str(&mut mid, a.model, Dialect::Js);
            mid.push_str(",\"id\":");
            write_str(&mut mid, &logged.id, Dialect::Js);
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
                usage.input, usage.cache_creation, usage.cache_read, usage.output
            ));
            let ts =
                first_ms + (done - first_ms) * (i as i64 + 1) / n.max(1) - if last { 0 } else { 1 };
            let id = uuid(&mut self.rng);
            a.log.entry(&id, "assistant", ts, &mid, "")?;
        }
        Ok(())
    }
}

/// The reply an API call stores.
fn reply<'a>(id: &'a str, model: &'a str, blocks: &'a [Block], stop: &'a str) -> Reply<'a> {
    Reply {
        id,
        model,
        blocks,
        stop,
    }
}
