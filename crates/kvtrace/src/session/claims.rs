//! Which session file a response belongs to when several files name it.
//!
//! Claude Code 1.0.x starts a `-c` (continue) session in a new file that opens with a copy
//! of the previous session's chain: the same message ids, re-timestamped at the moment of
//! the copy. Each request belongs to one conversation only, so a response (and a sub-agent
//! link) named by several parent files is claimed by the file that wrote it first: the
//! earliest entry timestamp, ties (and entries without a time) to the file that sorts
//! first. The other files leave it out.

use rustc_hash::FxHashMap;

use super::SessionLog;

/// Owner (index into the parent list) of every response and sub-agent link that more than
/// one parent file names. Ids named by one file only are not stored.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    messages: FxHashMap<String, usize>,
    agents: FxHashMap<String, usize>,
}

/// What one parent file names: response ids and linked agent ids, each with the time of
/// its entry in µs (`i64::MAX` when unknown). Small, so every file's can be held at once.
#[derive(Debug, Clone, Default)]
pub struct Named {
    pub messages: Vec<(String, i64)>,
    pub agents: Vec<(String, i64)>,
}

impl Named {
    pub fn of(log: &SessionLog) -> Named {
        let sides = log.inline_agents.values();
        Named {
            messages: std::iter::once(log)
                .chain(sides)
                .flat_map(|l| &l.messages)
                .map(|m| (m.id.clone(), m.timestamp.map_or(i64::MAX, |t| t.micros)))
                .collect(),
            agents: log
                .links
                .iter()
                .map(|l| {
                    let t = l.result_time.map_or(i64::MAX, |t| t.micros);
                    (l.agent_id.clone(), t)
                })
                .collect(),
        }
    }
}

/// A candidate owner: (time in µs, `i64::MAX` when unknown; file index).
type Rank = (i64, usize);

impl Claims {
    /// Build the claims from the parent logs, given with their file index.
    pub fn from_logs<'a>(logs: impl IntoIterator<Item = (usize, &'a SessionLog)>) -> Claims {
        Claims::from_named(logs.into_iter().map(|(i, l)| (i, Named::of(l))))
    }

    /// Build the claims from what each parent file names.
    pub fn from_named(files: impl IntoIterator<Item = (usize, Named)>) -> Claims {
        let mut messages: FxHashMap<String, (Rank, usize)> = FxHashMap::default();
        let mut agents: FxHashMap<String, (Rank, usize)> = FxHashMap::default();
        let offer = |map: &mut FxHashMap<String, (Rank, usize)>, id: String, rank: Rank| {
            let (best, files) = map.entry(id).or_insert((rank, 0));
            if *files == 0 || rank.1 != best.1 {
                *files += 1;
            }
            if rank < *best {
                *best = rank;
            }
        };
        for (i, named) in files {
            for (id, t) in named.messages {
                offer(&mut messages, id, (t, i));
            }
            for (id, t) in named.agents {
                offer(&mut agents, id, (t, i));
            }
        }
        let shared = |map: FxHashMap<String, (Rank, usize)>| -> FxHashMap<String, usize> {
            map.into_iter()
                .filter(|(_, (_, files))| *files > 1)
                .map(|(id, ((_, owner), _))| (id, owner))
                .collect()
        };
        Claims {
            messages: shared(messages),
            agents: shared(agents),
        }
    }

    /// Whether no id is shared between files (the usual case).
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.agents.is_empty()
    }

    /// Drop from `log` (parent file number `file`) what another file claims; returns how
    /// many responses and links were dropped (also added to `log.claimed_elsewhere`).
    pub fn apply(&self, file: usize, log: &mut SessionLog) -> usize {
        if self.is_empty() {
            return 0;
        }
        let mine = |owner: Option<&usize>| owner.is_none_or(|&o| o == file);
        let mut dropped = 0;
        let keep_messages = |l: &mut SessionLog| {
            let before = l.messages.len();
            l.messages.retain(|m| mine(self.messages.get(&m.id)));
            l.message_ids
                .retain(|id| mine(self.messages.get(id.as_str())));
            before - l.messages.len()
        };
        dropped += keep_messages(log);
        for side in log.inline_agents.values_mut() {
            dropped += keep_messages(side);
        }
        let before = log.links.len();
        log.links.retain(|l| mine(self.agents.get(&l.agent_id)));
        dropped += before - log.links.len();
        log.claimed_elsewhere += dropped;
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> SessionLog {
        SessionLog::parse_bytes(lines.join("\n").as_bytes())
    }

    fn reply(id: &str, t: &str) -> String {
        format!(
            r#"{{"type":"assistant","timestamp":"{t}","message":{{"id":"{id}","content":[]}}}}"#
        )
    }

    #[test]
    fn the_earliest_writer_keeps_a_shared_response() {
        // File 0 sorts first but holds the later copy; file 1 wrote the responses first.
        let copy = log(&[
            &reply("msg_a", "2025-01-02T10:00:00.000Z"),
            &reply("msg_b", "2025-01-02T10:00:00.000Z"),
            &reply("msg_c", "2025-01-02T10:05:00.000Z"),
        ]);
        let original = log(&[
            &reply("msg_a", "2025-01-01T09:00:00.000Z"),
            &reply("msg_b", "2025-01-01T09:01:00.000Z"),
        ]);
        let claims = Claims::from_logs([(0, &copy), (1, &original)]);
        let (mut copy, mut original) = (copy, original);
        assert_eq!(claims.apply(0, &mut copy), 2);
        assert_eq!(copy.message_ids, ["msg_c"]);
        assert_eq!(claims.apply(1, &mut original), 0);
        assert_eq!(original.message_ids, ["msg_a", "msg_b"]);
    }

    #[test]
    fn one_file_naming_a_response_twice_claims_nothing() {
        let a = log(&[
            &reply("msg_a", "2025-01-01T09:00:00.000Z"),
            &reply("msg_a", "2025-01-01T09:00:01.000Z"),
        ]);
        let b = log(&[&reply("msg_b", "2025-01-01T09:00:00.000Z")]);
        assert!(Claims::from_logs([(0, &a), (1, &b)]).is_empty());
    }

    #[test]
    fn equal_times_go_to_the_first_file() {
        let a = log(&[&reply("msg_a", "2025-01-01T09:00:00.000Z")]);
        let b = log(&[&reply("msg_a", "2025-01-01T09:00:00.000Z")]);
        let claims = Claims::from_logs([(0, &a), (1, &b)]);
        let (mut a, mut b) = (a, b);
        assert_eq!(claims.apply(0, &mut a), 0);
        assert_eq!(claims.apply(1, &mut b), 1);
        assert!(b.message_ids.is_empty());
    }
}
