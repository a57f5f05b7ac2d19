//! The stand-in for what a session log does not hold: the tool definitions and the system
//! prompt (and the text Claude Code injects), which open every request.
//!
//! **Its size** is estimated from the usage the log carries. For each response the API
//! reports its prompt tokens `A` (input + cache read + cache creation, in the API's own
//! tokenizer); we count the rebuilt messages `M` in ours. With `R` API tokens per token of
//! ours (`--api-token-ratio`, else measured on journaled requests, else 1), `A / R − M` is what the request held beyond
//! the logged messages: the tools, the system prompt and the injected text. Its median
//! over a conversation's requests is the conversation's estimate (the median shrugs off
//! a request whose injected text was unusual); sessions of one Claude Code version (and
//! sub-agents of one type) share one prefix, the median of their estimates. A straight-
//! line fit of `A` against `M` (intercept over slope) would find `R` too, but the slope
//! measures the ratio on the messages' content, not on the prefix's, and on the captures
//! tested it was off by 20 % to 270 %; docs/logs-only.md has the figures.
//!
//! **Its content** is a fixed pseudo-random token sequence derived from that key
//! (version, and sub-agent type), so the prefixes of one version are identical and keep
//! identical block ids, and prefixes of different versions share nothing; its last fifth,
//! standing for the system prompt, which names the model, derives from the model too.

use crate::tokens::Token;

/// Prefix size in our tokens from `(M, A)` pairs and the ratio `R`, or `None` without
/// usage.
pub fn estimate(points: &[(f64, f64)], ratio: f64) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let beyond: Vec<f64> = points.iter().map(|(m, a)| a / ratio - m).collect();
    Some((median(beyond) as f64).clamp(0.0, 2_000_000.0))
}

/// The median of estimates, rounded (the lower middle one for an even count; 0 for none).
pub fn median(values: Vec<f64>) -> usize {
    middle(values).map_or(0, |m| m.round() as usize)
}

/// The lower middle value (`None` for none).
pub fn middle(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// The share of a stand-in prefix that stands for the system prompt, the part that names
/// the model: Claude Code's system prompt says which model it runs on, so a model switch
/// changes the prefix there. Measured shares of tools + system: 17.5 % (2.0.77), 19 %
/// (2.1.332), 24 % (1.0.128).
pub const SYSTEM_SHARE: f64 = 0.2;

/// The system prompt's part of an `n`-token stand-in prefix.
pub fn system_part(n: usize) -> usize {
    (n as f64 * SYSTEM_SHARE).round() as usize
}

/// `n` tokens of the stand-in prefix for `key` and `model`: the first `n - system_part(n)`
/// (the tools) depend only on `key` and their position, the rest on the model too, so
/// prefixes of one key share their tools and, on one model, everything.
pub fn tokens(key: &str, model: &str, n: usize) -> Vec<Token> {
    let tools = n - system_part(n);
    let seed = xxhash_rust::xxh3::xxh3_64(key.as_bytes());
    let system_seed = xxhash_rust::xxh3::xxh3_64(format!("{key}\n{model}").as_bytes());
    (0..n as u64)
        .map(|i| {
            let seed = if i < tools as u64 { seed } else { system_seed };
            (xxhash_rust::xxh3::xxh3_64_with_seed(&i.to_le_bytes(), seed) % 100_000) as Token
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_the_median_excess_in_our_units() {
        // API tokens = 1.2 × ours; a 10,000-token prefix of ours is 12,000 API tokens; one
        // request carried 900 more injected tokens than the others.
        let mut pts: Vec<(f64, f64)> = [100.0, 900.0, 2500.0]
            .iter()
            .map(|m| (*m, 1.2 * (10_000.0 + m)))
            .collect();
        pts.push((3000.0, 1.2 * (10_900.0 + 3000.0)));
        assert_eq!(estimate(&pts, 1.2), Some(10_000.0));
        assert_eq!(estimate(&[(100.0, 5100.0)], 1.0), Some(5000.0));
        assert_eq!(estimate(&[(100.0, 50.0)], 1.0), Some(0.0));
        assert_eq!(estimate(&[], 1.0), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), 2);
    }

    #[test]
    fn prefixes_of_one_key_share_their_tools_and_of_one_model_everything() {
        let a = tokens("2.1.0/main", "opus", 100);
        assert_eq!(a, tokens("2.1.0/main", "opus", 100));
        let b = tokens("2.1.0/main", "sonnet", 100);
        assert_eq!(system_part(100), 20);
        assert_eq!(a[..80], b[..80]);
        assert!(a[80..].iter().zip(&b[80..]).filter(|(x, y)| x == y).count() < 3);
        assert_ne!(tokens("2.0.0/main", "opus", 100)[..80], a[..80]);
    }
}
