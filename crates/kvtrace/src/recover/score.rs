//! Scoring a recovery against real session logs: pairwise precision and recall of the
//! relation "same conversation", exact recoveries and the worst offenders.
//!
//! Over the requests both sides know, let `n_ij` be the number of requests in real
//! conversation `i` and recovered conversation `j` (the contingency table), `a_i` and
//! `b_j` its row and column sums. Pairs placed together by both sides: `Σ C(n_ij, 2)`;
//! by the real logs: `Σ C(a_i, 2)`; by the recovery: `Σ C(b_j, 2)`. Precision and recall
//! are their ratios. Only the non-zero cells are stored, so memory is linear in the
//! number of requests, never quadratic.

use rustc_hash::FxHashMap;
use serde::Serialize;

/// Offenders listed per direction.
const WORST: usize = 5;

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// One conversation that lost the most pairs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Offender {
    /// A real conversation (file stem, `#k` for a piece) or a recovered file stem.
    pub name: String,
    /// Its known requests.
    pub requests: u64,
    /// Conversations of the other side its requests are spread over.
    pub spread: usize,
    /// Pairs it holds that the other side does not (missed pairs for a real conversation,
    /// false pairs for a recovered one).
    pub lost_pairs: u64,
}

/// Scores against one labelling of the real logs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Score {
    /// Requests both sides know.
    pub known_requests: u64,
    /// Real conversations with at least one known request.
    pub real_conversations: usize,
    /// Recovered conversations with at least one known request.
    pub recovered_conversations: usize,
    /// Real conversations whose known requests form exactly one recovered conversation's.
    pub exact: usize,
    pub exact_share: f64,
    pub true_pairs: u64,
    pub real_pairs: u64,
    pub recovered_pairs: u64,
    /// true_pairs / recovered_pairs (1 when the recovery pairs nothing).
    pub precision: f64,
    /// true_pairs / real_pairs (1 when the logs pair nothing).
    pub recall: f64,
    /// Real conversations split the most.
    pub worst_split: Vec<Offender>,
    /// Recovered conversations that merged the most.
    pub worst_merged: Vec<Offender>,
}

/// Score a recovery. `real` and `recovered` map request ids to conversation numbers,
/// which index `real_names` and `recovered_names`.
pub fn score(
    real: &FxHashMap<String, u32>,
    real_names: &[String],
    recovered: &FxHashMap<String, u32>,
    recovered_names: &[String],
) -> Score {
    let mut cells: FxHashMap<(u32, u32), u64> = FxHashMap::default();
    let mut a: FxHashMap<u32, u64> = FxHashMap::default();
    let mut b: FxHashMap<u32, u64> = FxHashMap::default();
    let mut known = 0u64;
    for (id, &i) in real {
        let Some(&j) = recovered.get(id) else {
            continue;
        };
        known += 1;
        *cells.entry((i, j)).or_default() += 1;
        *a.entry(i).or_default() += 1;
        *b.entry(j).or_default() += 1;
    }
    let true_pairs: u64 = cells.values().map(|&n| pairs(n)).sum();
    let real_pairs: u64 = a.values().map(|&n| pairs(n)).sum();
    let recovered_pairs: u64 = b.values().map(|&n| pairs(n)).sum();
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            1.0
        } else {
            num as f64 / den as f64
        }
    };
    // Per conversation: pairs kept together and how many cells it spans.
    let mut real_kept: FxHashMap<u32, (u64, usize)> = FxHashMap::default();
    let mut rec_kept: FxHashMap<u32, (u64, usize)> = FxHashMap::default();
    let mut exact = 0usize;
    for (&(i, j), &n) in &cells {
        let e = real_kept.entry(i).or_default();
        e.0 += pairs(n);
        e.1 += 1;
        let e = rec_kept.entry(j).or_default();
        e.0 += pairs(n);
        e.1 += 1;
        if a.get(&i) == Some(&n) && b.get(&j) == Some(&n) {
            exact += 1;
        }
    }
    let name = |names: &[String], k: u32| names.get(k as usize).cloned().unwrap_or_default();
    let worst =
        |sums: &FxHashMap<u32, u64>, kept: &FxHashMap<u32, (u64, usize)>, names: &[String]| {
            let mut v: Vec<Offender> = sums
                .iter()
                .filter_map(|(&k, &n)| {
                    let (kp, spread) = kept.get(&k).copied().unwrap_or_default();
                    let lost = pairs(n) - kp;
                    (lost > 0).then(|| Offender {
                        name: name(names, k),
                        requests: n,
                        spread,
                        lost_pairs: lost,
                    })
                })
                .collect();
            v.sort_by(|x, y| y.lost_pairs.cmp(&x.lost_pairs).then(x.name.cmp(&y.name)));
            v.truncate(WORST);
            v
        };
    Score {
        known_requests: known,
        real_conversations: a.len(),
        recovered_conversations: b.len(),
        exact,
        exact_share: ratio(exact as u64, a.len() as u64),
        true_pairs,
        real_pairs,
        recovered_pairs,
        precision: ratio(true_pairs, recovered_pairs),
        recall: ratio(true_pairs, real_pairs),
        worst_split: worst(&a, &real_kept, real_names),
        worst_merged: worst(&b, &rec_kept, recovered_names),
    }
}

/// Sub-agent links against the real logs' links.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkScore {
    /// Real sub-agents whose first request and spawning turn are both in the capture.
    pub real_subagents: usize,
    /// Linked to the parent turn that spawned them.
    pub linked_right: usize,
    /// Linked to another turn.
    pub linked_wrong: usize,
    /// Not linked (left as a conversation of their own, or merged into another).
    pub unlinked: usize,
    /// Recovered links whose sub-agent is not a real one (a conversation the logs do not
    /// link, or that starts elsewhere).
    pub false_links: usize,
    /// linked_right / real_subagents (1 when there are none).
    pub right_share: f64,
}

/// Score links: `real` and `recovered` are (sub-agent's first request id, spawning turn's
/// request id) pairs.
pub fn score_links(real: &[(String, String)], recovered: &[(String, String)]) -> LinkScore {
    let rec: FxHashMap<&str, &str> = recovered
        .iter()
        .map(|(c, p)| (c.as_str(), p.as_str()))
        .collect();
    let (mut right, mut wrong, mut unlinked) = (0, 0, 0);
    for (child, parent) in real {
        match rec.get(child.as_str()) {
            Some(p) if p == parent => right += 1,
            Some(_) => wrong += 1,
            None => unlinked += 1,
        }
    }
    let real_children: rustc_hash::FxHashSet<&str> = real.iter().map(|(c, _)| c.as_str()).collect();
    let false_links = rec.keys().filter(|c| !real_children.contains(*c)).count();
    LinkScore {
        real_subagents: real.len(),
        linked_right: right,
        linked_wrong: wrong,
        unlinked,
        false_links,
        right_share: if real.is_empty() {
            1.0
        } else {
            right as f64 / real.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &[(&str, u32)]) -> FxHashMap<String, u32> {
        v.iter().map(|(k, c)| (k.to_string(), *c)).collect()
    }

    #[test]
    fn perfect_recovery_scores_one() {
        let real = labels(&[("a", 0), ("b", 0), ("c", 1)]);
        let rec = labels(&[("a", 5), ("b", 5), ("c", 2), ("x", 2)]);
        let names: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        let s = score(&real, &names, &rec, &names);
        assert_eq!(s.known_requests, 3);
        assert_eq!((s.precision, s.recall), (1.0, 1.0));
        assert_eq!((s.exact, s.real_conversations), (2, 2));
    }

    #[test]
    fn split_and_merge_are_counted() {
        // Real: {a,b,c,d} {e,f}. Recovered: {a,b} {c,d,e,f}.
        let real = labels(&[("a", 0), ("b", 0), ("c", 0), ("d", 0), ("e", 1), ("f", 1)]);
        let rec = labels(&[("a", 0), ("b", 0), ("c", 1), ("d", 1), ("e", 1), ("f", 1)]);
        let names = vec!["r0".to_string(), "r1".to_string()];
        let s = score(&real, &names, &rec, &names);
        // Together in both: ab, cd, ef = 3. Real pairs: 6 + 1 = 7. Recovered: 1 + 6 = 7.
        assert_eq!((s.true_pairs, s.real_pairs, s.recovered_pairs), (3, 7, 7));
        assert!((s.precision - 3.0 / 7.0).abs() < 1e-12);
        assert_eq!(s.exact, 0);
        assert_eq!(s.worst_split[0].name, "r0");
        assert_eq!(s.worst_split[0].lost_pairs, 4);
        assert_eq!(s.worst_merged[0].name, "r1");
        assert_eq!(s.worst_merged[0].spread, 2);
    }

    #[test]
    fn links_are_scored_by_spawning_turn() {
        let pair = |c: &str, p: &str| (c.to_owned(), p.to_owned());
        let real = [pair("a", "p1"), pair("b", "p1"), pair("c", "p2")];
        let rec = [pair("a", "p1"), pair("b", "p2"), pair("x", "p1")];
        let s = score_links(&real, &rec);
        assert_eq!(
            (
                s.real_subagents,
                s.linked_right,
                s.linked_wrong,
                s.unlinked,
                s.false_links
            ),
            (3, 1, 1, 1, 1)
        );
        assert!((s.right_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(score_links(&[], &[]).right_share, 1.0);
    }
}
