//! Response envelopes as the proxy stores them: headers (with this conversation's timing
//! header), streamed SSE chunks or a plain JSON body, completion stamps, and the proxy's
//! oddities — missing headers, bodies stored as strings, fork-only `ttft` fields.

use super::usage::Metered;
use super::Conv;
use crate::clock::rfc3339_nano;
use crate::ids::api_request_id;
use crate::json::{Dialect, J};
use crate::model::{api_message, sse_lines, stream_body_go, EnvBody, Envelope, Reply};
use rand::Rng;

impl<'a> Conv<'a> {
    /// Response headers of one reply.
    pub(super) fn resp_headers(
        &mut self,
        streaming: bool,
        ttft_ms: u64,
    ) -> Vec<(&'static str, String)> {
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

    /// A `completedAt` stamp for `ms`, with random nanoseconds in this conversation's zone.
    pub(super) fn completed(&mut self, ms: i64) -> String {
        let ns = self.rng.gen_range(0..1_000_000);
        rfc3339_nano(ms, ns, self.offset_min)
    }

    /// A streaming envelope for a reply.
    pub(super) fn stream_envelope(&mut self, r: &Reply, m: &Metered, done: i64) -> String {
        let stop = r.stop;
        let (u, rt, ttft) = (&m.u, m.rt, m.ttft);
        let chunks = sse_lines(&mut self.rng, r, u);
        let stored_stop = if self.rng.gen_bool(0.9) { "" } else { stop };
        let mut body = String::new();
        let stored = Reply {
            stop: stored_stop,
            ..*r
        };
        stream_body_go(&mut body, &stored, u);
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
            body: stored_body(&body, as_string),
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
    pub(super) fn plain_envelope(&mut self, r: &Reply, m: &Metered, done: i64) -> String {
        let (u, rt, ttft) = (&m.u, m.rt, m.ttft);
        let as_string = self.string_bodies > 0.0 && self.rng.gen_bool(self.string_bodies);
        let mut body = String::new();
        // A body stored as a string was never compacted by Go: plain API escaping.
        let dialect = if as_string { Dialect::Js } else { Dialect::Api };
        api_message(&mut body, r, u, dialect);
        let headers = self.resp_headers(false, ttft);
        let completed_at = self.completed(done);
        Envelope {
            status: 200,
            headers: Some(&headers),
            body: stored_body(&body, as_string),
            body_text: None,
            response_time: rt,
            chunks: None,
            is_streaming: false,
            completed_at: &completed_at,
            ttft: None,
        }
        .to_json()
    }
}

/// The reply body as the proxy stores it: a JSON string holding it, or the JSON itself.
fn stored_body(body: &str, as_string: bool) -> EnvBody<'_> {
    if as_string {
        EnvBody::Str(body)
    } else {
        EnvBody::Raw(body)
    }
}
