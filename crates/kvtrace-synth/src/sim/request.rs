//! Request bodies as the proxy stores them: fields in the proxy's struct order, messages in
//! Go's compact form, and Claude Code's two moving cache breakpoints on user messages.

use super::actor::Actor;
use crate::json::{write_str, Dialect};
use crate::model::Msg;

/// Assemble a request body in the proxy's struct order.
#[allow(clippy::too_many_arguments)]
pub(super) fn body_of(
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

/// The body of actor `a`'s next request: its whole context, plus `extra` if given.
pub(super) fn actor_body(a: &Actor, stream: bool, extra: Option<&Msg>) -> String {
    body_of(
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
