//! Chaining turns into conversations by their block digests.
//!
//! Turns arrive in time order. A turn B continues the *open* conversation whose latest turn
//! A is at most `max_gap` earlier and shares with B a common block prefix of at least 90%
//! of A's blocks; among several, the longest common prefix wins, then the most recent A.
//! A turn that cannot continue anything (see [`Chainer::add`]) starts a conversation.
//!
//! # The index
//!
//! Chained digests make "B shares at least `m` leading blocks with A" equivalent to the
//! single test `digest_B[m-1] == digest_A[m-1]` (a block digest folds in its position and
//! every block before it). So each open conversation registers its latest turn under one
//! key, the **checkpoint**: A's digest at position `ceil(0.9 · |A|) - 1`. To find B's
//! predecessors we look up each of B's digests in the checkpoint map; a hit is exactly a
//! conversation whose latest turn passes the 90% test. The exact common prefix of each hit
//! is then found by binary search (equality of chained digests is monotone in position).
//!
//! Cost per turn: `|B|` hash lookups plus `O(log |A|)` per hit; no pair of turns is ever
//! compared blindly. Conversations whose latest turn is more than `max_gap` old are closed
//! (removed from the map, their digests freed) from a time-ordered expiry queue, so memory
//! is bounded by the conversations active within one gap.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::encode::blocks::Digest64;

/// A turn continues a conversation when it keeps at least this share of its latest turn's
/// blocks (as a fraction `NUM / DEN`).
const SHARE_NUM: usize = 9;
const SHARE_DEN: usize = 10;

/// Blocks a successor must share with a turn of `n` blocks: `ceil(0.9 n)`.
pub fn required_prefix(n: usize) -> usize {
    (n * SHARE_NUM).div_ceil(SHARE_DEN)
}

/// Length of the common prefix of two chained digest lists (binary search: once two
/// chained digests differ, every later pair differs too).
pub fn common_blocks(a: &[Digest64], b: &[Digest64]) -> usize {
    let (mut lo, mut hi) = (0usize, a.len().min(b.len()));
    // Invariant: the first `lo` blocks agree; block `hi` (if any) and later do not matter.
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if a[mid - 1] == b[mid - 1] {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// What a turn says about where it belongs, besides its blocks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Its messages hold more than one message (a first turn, a sub-agent's start and the
    /// first request after a compaction hold one).
    pub can_continue: bool,
    /// It opens with a compaction's summary.
    pub after_compaction: bool,
    /// Its session (`X-Claude-Code-Session-Id`, interned), when the request carried one.
    pub session: Option<u32>,
    /// Key of the start of its messages (their first bytes, normalized).
    pub lineage: u64,
    /// Its reply is a compaction summary with this key.
    pub writes_summary: Option<u64>,
    /// It opens with the compaction summary of this key.
    pub opens_with_summary: Option<u64>,
    /// Its leading blocks that hold tools and system only (no message token).
    pub prefix_blocks: usize,
}

struct Conv {
    /// Turn numbers (order of [`Chainer::add`] calls).
    turns: Vec<usize>,
    session: Option<u32>,
    /// The lineage of its latest turn.
    lineage: u64,
    /// Its latest turn's blocks of tools and system only.
    prefix_blocks: usize,
    /// Its latest turn's message-prefix keys ([`super::scan::message_prefix_keys`]).
    history: Vec<u64>,
    latest_micros: i64,
    /// Digests of the latest turn; emptied when the conversation is closed.
    latest: Vec<Digest64>,
    /// The key this conversation is registered under, while open.
    checkpoint: Option<Digest64>,
}

/// Sequential chaining state. See the module documentation for the structure.
pub struct Chainer {
    max_gap_micros: i64,
    convs: Vec<Conv>,
    /// Checkpoint digest → open conversations registered under it.
    by_checkpoint: FxHashMap<Digest64, Vec<u32>>,
    /// (latest time, conversation) in time order; stale entries are skipped.
    expiry: VecDeque<(i64, u32)>,
    turns: usize,
    /// Compaction summary key → the conversation whose turn wrote it.
    summaries: FxHashMap<u64, u32>,
    /// Turns that had at least one candidate predecessor.
    pub continued: usize,
    /// Turns that had more than one candidate (a choice was made).
    pub ambiguous: usize,
}

impl Chainer {
    pub fn new(max_gap_micros: i64) -> Self {
        Chainer {
            max_gap_micros,
            convs: Vec::new(),
            by_checkpoint: FxHashMap::default(),
            summaries: FxHashMap::default(),
            expiry: VecDeque::new(),
            turns: 0,
            continued: 0,
            ambiguous: 0,
        }
    }

    /// Add the next turn (times must not decrease). A turn that continues nothing by its
    /// blocks starts a conversation, unless it carries a session id and either opens with
    /// a compaction's summary (it joins the session's open conversation with the most
    /// turns: a main conversation outgrows its sub-agents) or holds several messages that
    /// start like the latest turn of one of the session's conversations (its history was
    /// rewritten: it joins the latest such). Two different session ids never share a
    /// conversation. Returns the index of the
    /// conversation the turn joined.
    ///
    /// Without a session id, a turn of several messages that no block evidence places
    /// joins the open conversation without a session (same lineage) whose latest turn's
    /// leading messages it repeats the most, at least two and at least half of them
    /// (`history`: the keys of the turn's message prefixes,
    /// [`super::scan::message_prefix_keys`]; ties: the most recent): the tools or the
    /// system prompt changed (another model, a tool added), the conversation did not.
    /// Among block candidates of equal share, one whose messages the turn extends wins.
    pub fn add(
        &mut self,
        micros: i64,
        digests: Vec<Digest64>,
        ev: Evidence,
        history: &[u64],
    ) -> usize {
        let can_continue = ev.can_continue;
        let turn = self.turns;
        self.turns += 1;
        self.expire(micros);
        let mut best: Option<(usize, bool, i64, u32)> = None;
        let mut hits = 0usize;
        if can_continue {
            for d in &digests {
                let Some(list) = self.by_checkpoint.get(d) else {
                    continue;
                };
                for &c in list {
                    let conv = &self.convs[c as usize];
                    if ev.session.is_some() && conv.session.is_some() && conv.session != ev.session
                    {
                        continue;
                    }
                    let gap = micros - conv.latest_micros;
                    if !(0..=self.max_gap_micros).contains(&gap) {
                        continue;
                    }
                    let shared = common_blocks(&conv.latest, &digests);
                    if shared < required_prefix(conv.latest.len()) || shared == 0 {
                        continue;
                    }
                    // A latest turn with whole blocks of messages is continued by a turn
                    // that shares some of its messages, not only tools and system (after a
                    // compaction 90% of a turn can be its tools and system).
                    if conv.latest.len() > conv.prefix_blocks + 1 && shared <= conv.prefix_blocks {
                        continue;
                    }
                    hits += 1;
                    // Equal shares (siblings whose prompts differ only in a last, partial
                    // block): the one whose messages the turn extends.
                    let extends = !conv.history.is_empty()
                        && common_blocks(&conv.history, history) == conv.history.len();
                    let key = (shared, extends, conv.latest_micros, c);
                    if best.is_none_or(|b| key > b) {
                        best = Some(key);
                    }
                }
            }
        }
        if hits > 0 {
            self.continued += 1;
        }
        if hits > 1 {
            self.ambiguous += 1;
        }
        // No block evidence, but a session: a compaction's first turn resumes the
        // session's longest conversation; a turn of several messages whose earlier
        // history was rewritten (background results delivered, tools or system changed)
        // resumes the session's latest conversation that starts with the same messages.
        let resumed = match (best, ev.session) {
            (None, Some(s)) if ev.after_compaction || ev.can_continue => self
                .convs
                .iter()
                .enumerate()
                .filter(|(_, c)| c.session == Some(s) && c.checkpoint.is_some())
                .filter(|(_, c)| ev.after_compaction || c.lineage == ev.lineage)
                .max_by_key(|(i, c)| {
                    let size = if ev.after_compaction {
                        c.turns.len()
                    } else {
                        0
                    };
                    (size, c.latest_micros, *i)
                })
                .map(|(i, _)| i as u32),
            _ => None,
        };
        let carried = match (best, resumed, ev.session) {
            (None, None, None) if ev.can_continue => self
                .convs
                .iter()
                .enumerate()
                .filter(|(_, c)| c.session.is_none() && c.checkpoint.is_some())
                .filter(|(_, c)| c.lineage == ev.lineage)
                .map(|(i, c)| (common_blocks(&c.history, history), c.latest_micros, i))
                .filter(|&(shared, _, i)| shared >= 2 && 2 * shared >= self.convs[i].history.len())
                .max()
                .map(|(_, _, i)| i as u32),
            _ => None,
        };
        // The turn that opens with a summary continues the conversation whose turn asked
        // for it: the surest evidence, with or without a session id.
        let summarized = ev
            .opens_with_summary
            .and_then(|k| self.summaries.get(&k).copied())
            .filter(|&c| {
                let conv = &self.convs[c as usize];
                ev.session.is_none() || conv.session.is_none() || conv.session == ev.session
            });
        let c = match summarized
            .or(best.map(|(_, _, _, c)| c))
            .or(resumed)
            .or(carried)
        {
            Some(c) => {
                self.unregister(c);
                c as usize
            }
            None => {
                self.convs.push(Conv {
                    session: ev.session,
                    lineage: ev.lineage,
                    history: Vec::new(),
                    prefix_blocks: 0,
                    turns: Vec::new(),
                    latest_micros: micros,
                    latest: Vec::new(),
                    checkpoint: None,
                });
                self.convs.len() - 1
            }
        };
        if let Some(k) = ev.writes_summary {
            self.summaries.insert(k, c as u32);
        }
        let conv = &mut self.convs[c];
        conv.turns.push(turn);
        conv.lineage = ev.lineage;
        conv.history = history.to_vec();
        conv.prefix_blocks = ev.prefix_blocks;
        conv.latest_micros = micros;
        conv.latest = digests;
        // A turn without a full block cannot be continued (nothing to share).
        if !conv.latest.is_empty() {
            let key = conv.latest[required_prefix(conv.latest.len()).max(1) - 1];
            conv.checkpoint = Some(key);
            self.by_checkpoint.entry(key).or_default().push(c as u32);
            self.expiry.push_back((micros, c as u32));
        }
        c
    }

    fn unregister(&mut self, c: u32) {
        let Some(key) = self.convs[c as usize].checkpoint.take() else {
            return;
        };
        if let Some(list) = self.by_checkpoint.get_mut(&key) {
            list.retain(|&x| x != c);
            if list.is_empty() {
                self.by_checkpoint.remove(&key);
            }
        }
    }

    /// Close conversations whose latest turn is more than `max_gap` before `now`.
    fn expire(&mut self, now: i64) {
        while let Some(&(t, c)) = self.expiry.front() {
            if now - t <= self.max_gap_micros {
                break;
            }
            self.expiry.pop_front();
            let conv = &self.convs[c as usize];
            if conv.latest_micros == t && conv.checkpoint.is_some() {
                self.unregister(c);
                self.convs[c as usize].latest = Vec::new();
            }
        }
    }

    /// Conversations in order of creation, each as its turn numbers.
    pub fn into_conversations(self) -> Vec<Vec<usize>> {
        self.convs.into_iter().map(|c| c.turns).collect()
    }

    /// Conversations still registered in the index (for tests).
    pub fn open(&self) -> usize {
        self.convs.iter().filter(|c| c.checkpoint.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(can_continue: bool) -> Evidence {
        Evidence {
            can_continue,
            ..Evidence::default()
        }
    }

    #[test]
    fn sessions_never_mix_and_a_compaction_resumes_its_session() {
        let mut ch = Chainer::new(i64::MAX);
        let a: Vec<u64> = (1..=20).collect();
        let mut b = a.clone();
        b.extend(21..=25);
        let in_session = |s: u32, can_continue: bool, after_compaction: bool| Evidence {
            can_continue,
            after_compaction,
            session: Some(s),
            lineage: 7,
            ..Evidence::default()
        };
        // Session 0's main conversation, two turns; a sub-agent of session 0 (one turn);
        // the same blocks under session 1 do not continue session 0's conversation.
        assert_eq!(ch.add(0, chain(&a), in_session(0, false, false), &[]), 0);
        assert_eq!(ch.add(1, chain(&b), in_session(0, true, false), &[]), 0);
        assert_eq!(
            ch.add(2, chain(&[90, 91]), in_session(0, false, false), &[]),
            1
        );
        let mut c = b.clone();
        c.push(26);
        assert_eq!(ch.add(3, chain(&c), in_session(1, true, false), &[]), 2);
        // After a compaction the summary opens a new message list: no shared blocks, one
        // message; it resumes session 0's longest conversation.
        assert_eq!(
            ch.add(4, chain(&[70, 71, 72]), in_session(0, false, true), &[]),
            0
        );
        // Without a session id it starts a conversation of its own.
        assert_eq!(ch.add(5, chain(&[80, 81]), ev(false), &[]), 3);
        // A turn that writes a summary, and the turn that opens with it (no session, no
        // shared block): the summary decides.
        let writes = Evidence {
            writes_summary: Some(42),
            ..ev(true)
        };
        let mut d = c.clone();
        d.push(27);
        assert_eq!(ch.add(5, chain(&d), writes, &[]), 2);
        let opens = Evidence {
            opens_with_summary: Some(42),
            ..ev(false)
        };
        assert_eq!(ch.add(5, chain(&[33, 34]), opens, &[]), 2);
        // Session 0's history rewritten: no shared blocks, but several messages starting
        // as its latest turn's did: it resumes that conversation; another lineage does not.
        assert_eq!(
            ch.add(6, chain(&[60, 61]), in_session(0, true, false), &[]),
            0
        );
        let other_start = Evidence {
            lineage: 8,
            ..in_session(0, true, false)
        };
        assert_eq!(ch.add(7, chain(&[50, 51]), other_start, &[]), 4);
    }

    /// Fake chained digests: block k of a sequence of "token runs".
    fn chain(parts: &[u64]) -> Vec<Digest64> {
        let mut out = Vec::new();
        let mut h: u64 = 0x9e37_79b9;
        for (k, p) in parts.iter().enumerate() {
            h = h.rotate_left(13) ^ p.wrapping_mul(0x1000_0000_01b3) ^ (k as u64);
            out.push(h);
        }
        out
    }

    const S: i64 = 1_000_000;

    #[test]
    fn required_prefix_rounds_up() {
        assert_eq!(required_prefix(10), 9);
        assert_eq!(required_prefix(11), 10);
        assert_eq!(required_prefix(1), 1);
        assert_eq!(required_prefix(0), 0);
    }

    #[test]
    fn common_blocks_finds_the_prefix() {
        let a = chain(&[1, 2, 3, 4, 5]);
        let b = chain(&[1, 2, 3, 9, 5]);
        assert_eq!(common_blocks(&a, &b), 3);
        assert_eq!(common_blocks(&a, &a[..2]), 2);
        assert_eq!(common_blocks(&a, &chain(&[7])), 0);
        assert_eq!(common_blocks(&[], &a), 0);
    }

    #[test]
    fn appended_turns_chain_and_unrelated_ones_do_not() {
        let mut ch = Chainer::new(3600 * S);
        let shared: Vec<u64> = (0..20).collect();
        let mut a = shared.clone();
        a.extend([100, 101]);
        let mut b = a.clone();
        b.extend([102, 103, 104]);
        let mut other = shared.clone();
        other.extend([200, 201]);
        assert_eq!(ch.add(0, chain(&a), ev(false), &[]), 0);
        // Another session's first turn: one message, never a continuation.
        assert_eq!(ch.add(S, chain(&other), ev(false), &[]), 1);
        assert_eq!(ch.add(2 * S, chain(&b), ev(true), &[]), 0);
        let mut other2 = other.clone();
        other2.extend([202, 203]);
        assert_eq!(ch.add(3 * S, chain(&other2), ev(true), &[]), 1);
        assert_eq!(ch.into_conversations(), vec![vec![0, 2], vec![1, 3]]);
    }

    #[test]
    fn longest_prefix_wins_then_most_recent() {
        let mut ch = Chainer::new(3600 * S);
        let base: Vec<u64> = (0..50).collect();
        let mut a1 = base.clone();
        a1.push(1000);
        let mut a2 = base.clone();
        a2.push(2000);
        ch.add(0, chain(&a1), ev(false), &[]);
        ch.add(0, chain(&a2), ev(false), &[]);
        // Continues a2 fully; shares 50/51 with a1 (98%), but the longer prefix wins.
        let mut b2 = a2.clone();
        b2.extend([2001, 2002]);
        assert_eq!(ch.add(S, chain(&b2), ev(true), &[]), 1);
        // Equal prefixes: the most recent latest turn wins.
        let mut c = Chainer::new(3600 * S);
        c.add(0, chain(&base), ev(false), &[]);
        c.add(5 * S, chain(&base), ev(false), &[]);
        let mut b = base.clone();
        b.push(7);
        assert_eq!(c.add(6 * S, chain(&b), ev(true), &[]), 1);
    }

    #[test]
    fn gap_and_threshold_are_respected() {
        let mut ch = Chainer::new(60 * S);
        let a: Vec<u64> = (0..10).collect();
        ch.add(0, chain(&a), ev(false), &[]);
        let mut b = a.clone();
        b.push(10);
        // 61 s later: the conversation is closed.
        assert_eq!(ch.add(61 * S, chain(&b), ev(true), &[]), 1);
        assert_eq!(ch.open(), 1);
        // Keeps 8 of 11 blocks (< 90%): a new conversation (a compaction-like rewrite).
        let mut c: Vec<u64> = (0..8).collect();
        c.extend([50, 51, 52, 53]);
        assert_eq!(ch.add(62 * S, chain(&c), ev(true), &[]), 2);
        // Keeps 10 of 11 blocks (>= 90%, an edit of the last block): continues.
        let mut d: Vec<u64> = (0..10).collect();
        d.extend([77, 78]);
        assert_eq!(ch.add(63 * S, chain(&d), ev(true), &[]), 1);
    }

    /// No session id: another model's system prompt shares no block with the turn before,
    /// but the messages go on; a turn repeating one message only (a sibling sub-agent's
    /// prompt) does not join.
    #[test]
    fn messages_carry_a_conversation_across_a_new_prefix() {
        let mut ch = Chainer::new(i64::MAX);
        let lineage = |can_continue| Evidence {
            lineage: 5,
            ..ev(can_continue)
        };
        let a: Vec<u64> = (1..=20).collect();
        assert_eq!(
            ch.add(0, chain(&a), lineage(true), &[11, 12, 13, 14, 15]),
            0
        );
        // Shares 4 of its 5 leading messages (the last was rewritten): joins.
        let b: Vec<u64> = (100..=130).collect();
        assert_eq!(
            ch.add(1, chain(&b), lineage(true), &[11, 12, 13, 14, 16, 17, 18]),
            0
        );
        // One message in common only: a conversation of its own.
        let c: Vec<u64> = (200..=230).collect();
        assert_eq!(ch.add(2, chain(&c), lineage(true), &[11, 40, 41]), 1);
        // Another lineage never joins.
        let d: Vec<u64> = (300..=330).collect();
        let other = Evidence {
            lineage: 6,
            ..ev(true)
        };
        assert_eq!(
            ch.add(3, chain(&d), other, &[11, 12, 13, 14, 16, 17, 18, 19]),
            2
        );
        // Two candidates of equal block share: the one whose messages it extends.
        let e: Vec<u64> = (400..=420).collect();
        assert_eq!(ch.add(4, chain(&e), ev(false), &[50]), 3);
        assert_eq!(ch.add(5, chain(&e), ev(false), &[51]), 4);
        let mut f = e.clone();
        f.extend([421, 422]);
        assert_eq!(ch.add(6, chain(&f), ev(true), &[50, 60, 61]), 3);
    }

    /// After a compaction the latest turn is tools + system + a summary: a turn sharing
    /// only the tools and system passes the 90% test but does not continue it.
    #[test]
    fn sharing_only_tools_and_system_continues_nothing() {
        let mut ch = Chainer::new(i64::MAX);
        let prefix: Vec<u64> = (1..=18).collect();
        let mut summary = prefix.clone();
        summary.extend([40, 41]);
        let with_prefix = |blocks: usize| Evidence {
            prefix_blocks: blocks,
            ..ev(false)
        };
        assert_eq!(ch.add(0, chain(&summary), with_prefix(18), &[]), 0);
        // Another conversation's turn with the same tools and system: 18 of 20 blocks.
        let mut other = prefix.clone();
        other.extend([50, 51, 52]);
        let cont = Evidence {
            prefix_blocks: 18,
            ..ev(true)
        };
        assert_eq!(ch.add(1, chain(&other), cont, &[]), 1);
        // The summary's own successor shares a block of its messages.
        let mut next = summary.clone();
        next.extend([42]);
        assert_eq!(ch.add(2, chain(&next), cont, &[]), 0);
    }
}
