//! Corpus BLEU (Papineni et al., 2002), the metric of the paper's §6.1 and Table 2, computed
//! the way sacreBLEU 2.x does by default.
//!
//! The paper reports BLEU on WMT 2014 newstest. A BLEU number depends on details that the
//! formula leaves open: how text is split into words, whether the clipped counts are pooled over
//! the corpus or averaged over sentences, what happens to an n-gram order with no match. Post
//! (2018) showed that these choices move scores by more than the gaps between systems, and
//! sacreBLEU fixed one set of them. This module reproduces that set exactly, so that a number
//! from here can be put next to one from `sacrebleu`:
//!
//! - **Tokenisation** by the `13a` rules of mteval-v13a.pl ([`tokenize_13a`]), after trailing
//!   whitespace is removed; case is kept.
//! - **Counts are pooled over the corpus.** For each sentence and each order n = 1..4, every
//!   n-gram of the hypothesis counts toward `totals[n]`, and toward `counts[n]` at most as many
//!   times as it occurs in the reference (clipping). The sums over all sentences give the
//!   precisions `p_n = counts[n] / totals[n]`; `c` and `r` are the summed token counts of the
//!   hypotheses and references.
//! - **Smoothing** is sacreBLEU's default `exp` (method 3 of Chen and Cherry, 2014, the one
//!   mteval-v13a.pl uses): the k-th order with no match at all, counting from the lowest, gets
//!   `p_n = 1 / (2^k totals[n])` instead of 0.
//! - **Degenerate corpora.** With no match at any order the score is 0 and every precision is
//!   reported as 0. An order with no n-gram at all (every hypothesis shorter than n words) stops
//!   the loop: it and the orders above it keep precision 0, which makes the score 0 (sacreBLEU
//!   takes the log of 0 as -9999999999). The effective order is always 4.
//! - **One reference** per sentence. With several, sacreBLEU takes the reference length
//!   closest to the hypothesis's; with one, that is simply the reference's length.
//!
//! Everything here uses the standard library only.

use std::collections::HashMap;
use std::fmt;

/// The highest n-gram order, N in Eq. BLEU; the weights are `w_n = 1 / N`.
pub const MAX_ORDER: usize = 4;

/// A corpus BLEU score and the statistics it was computed from, as sacreBLEU reports them.
#[derive(Clone, Debug, PartialEq)]
pub struct BleuScore {
    /// BLEU on sacreBLEU's scale, 0 to 100.
    pub score: f64,
    /// The (smoothed) n-gram precisions for n = 1..4, in percent.
    pub precisions: [f64; 4],
    /// The brevity penalty, `min(1, exp(1 - r / c))`; 0 when `c = 0 < r`.
    pub bp: f64,
    /// `c`: the number of tokens in all hypotheses.
    pub sys_len: usize,
    /// `r`: the number of tokens in all references.
    pub ref_len: usize,
    /// Clipped n-gram matches summed over the corpus, for n = 1..4.
    pub counts: [usize; 4],
    /// Hypothesis n-grams summed over the corpus, for n = 1..4.
    pub totals: [usize; 4],
}

impl BleuScore {
    /// `sys_len / ref_len`, or 0 when the references are empty (as sacreBLEU prints it).
    pub fn ratio(&self) -> f64 {
        if self.ref_len == 0 {
            0.0
        } else {
            self.sys_len as f64 / self.ref_len as f64
        }
    }
}

/// sacreBLEU's one-line summary:
/// `BLEU = 27.31 58.2/33.1/21.4/14.3 (BP = 1.000 ratio = 1.012 hyp_len = 86 ref_len = 85)`.
impl fmt::Display for BleuScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [p1, p2, p3, p4] = self.precisions;
        write!(
            f,
            "BLEU = {:.2} {p1:.1}/{p2:.1}/{p3:.1}/{p4:.1} (BP = {:.3} ratio = {:.3} hyp_len = {} ref_len = {})",
            self.score,
            self.bp,
            self.ratio(),
            self.sys_len,
            self.ref_len
        )
    }
}

/// Why a corpus could not be scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BleuError {
    kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ErrorKind {
    LengthMismatch {
        hypotheses: usize,
        references: usize,
    },
}

impl fmt::Display for BleuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::LengthMismatch {
                hypotheses,
                references,
            } => write!(
                f,
                "{hypotheses} hypotheses but {references} references: BLEU pairs them one to one"
            ),
        }
    }
}

impl std::error::Error for BleuError {}

// ANCHOR: tokenize_13a
/// Splits a line into words by the `13a` rules of mteval-v13a.pl, as sacreBLEU's default
/// tokenizer does, and returns the words joined by single spaces.
///
/// In order:
/// 1. `<skipped>` is deleted, `-` followed by a line break is joined, line breaks become spaces;
/// 2. `&quot;`, `&amp;`, `&lt;`, `&gt;` become `"`, `&`, `<`, `>`, one after the other (so
///    `&amp;lt;` ends as `<`);
/// 3. with a space added at both ends, every ASCII punctuation mark except `'`, `,`, `-` and `.`
///    becomes a word of its own;
/// 4. a period or comma is split off unless it sits between two digits (`1,000.5` stays whole,
///    `end.` does not); a hyphen is split off when it follows a digit (`2017-06` becomes
///    `2017 - 06`, while `well-known` stays);
/// 5. the line is split at whitespace (Python's definition) and rejoined with single spaces.
///
/// Letters of any script, digits, accents, CJK characters and emoji pass through unchanged and
/// are never split from their neighbours.
///
/// # Example
/// ```
/// use aiayn::bleu::tokenize_13a;
/// assert_eq!(tokenize_13a("Hello, world!"), "Hello , world !");
/// assert_eq!(tokenize_13a("It cost $1,000.50 (in 2017-06)."), "It cost $ 1,000.50 ( in 2017 - 06 ) .");
/// assert_eq!(tokenize_13a("Fish &amp; chips"), "Fish & chips");
/// ```
pub fn tokenize_13a(line: &str) -> String {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let padded: Vec<char> = format!(" {line} ").chars().collect();
    // Punctuation other than ' , - . stands alone.
    let mut s = Vec::with_capacity(padded.len() * 2);
    for c in padded {
        if is_13a_symbol(c) {
            s.extend([' ', c, ' ']);
        } else {
            s.push(c);
        }
    }
    let not_digit = |c: char| !c.is_ascii_digit();
    let period_or_comma = |c: char| c == '.' || c == ',';
    // A period or comma after a non-digit: "x." -> "x . ".
    let s = split_pairs(&s, not_digit, period_or_comma, Spacing::After);
    // A period or comma before a non-digit: ".x" -> " . x".
    let s = split_pairs(&s, period_or_comma, not_digit, Spacing::Before);
    // A hyphen after a digit: "9-" -> "9 - ".
    let s = split_pairs(
        &s,
        |c: char| c.is_ascii_digit(),
        |c| c == '-',
        Spacing::After,
    );
    let s: String = s.into_iter().collect();
    let words: Vec<&str> = split_python_whitespace(&s).collect();
    words.join(" ")
}
// ANCHOR_END: tokenize_13a

/// ASCII punctuation that the first 13a rule isolates: `{|}~`, ``[\]^_` ``, space to `&`,
/// `(` to `+`, `:` to `@`, and `/`.
fn is_13a_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// Where [`split_pairs`] puts spaces around a matched pair `a b`.
#[derive(Clone, Copy)]
enum Spacing {
    /// `a b ` (a space between and one after).
    After,
    /// ` a b` (one before and one between).
    Before,
}

/// Scans left to right for two adjacent characters `a b` with `first(a)` and `second(b)`, and
/// puts spaces around each match; after a match the scan resumes behind `b`, so matches never
/// overlap (as a regular-expression substitution of the two-character pattern does).
fn split_pairs(
    s: &[char],
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    spacing: Spacing,
) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && first(s[i]) && second(s[i + 1]) {
            match spacing {
                Spacing::After => out.extend([s[i], ' ', s[i + 1], ' ']),
                Spacing::Before => out.extend([' ', s[i], ' ', s[i + 1]]),
            }
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Whitespace as Python's `str.split()` and `str.rstrip()` see it: Unicode's White_Space
/// characters plus the four ASCII separators U+001C..U+001F.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn split_python_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_python_whitespace).filter(|w| !w.is_empty())
}

/// The sufficient statistics of one sentence pair: lengths, clipped matches and totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Stats {
    sys_len: usize,
    ref_len: usize,
    counts: [usize; MAX_ORDER],
    totals: [usize; MAX_ORDER],
}

/// Every n-gram of `words` for n = 1..=4, with how often it occurs.
fn ngram_counts<'a>(words: &'a [&'a str]) -> HashMap<&'a [&'a str], usize> {
    let mut counts = HashMap::new();
    for n in 1..=MAX_ORDER {
        for gram in words.windows(n) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

/// Tokenises one pair as sacreBLEU does (trailing whitespace removed, then 13a) and counts.
fn sentence_stats(hypothesis: &str, reference: &str) -> Stats {
    let hyp = tokenize_13a(hypothesis.trim_end_matches(is_python_whitespace));
    let reference = tokenize_13a(reference.trim_end_matches(is_python_whitespace));
    let hyp: Vec<&str> = split_python_whitespace(&hyp).collect();
    let reference: Vec<&str> = split_python_whitespace(&reference).collect();
    let ref_grams = ngram_counts(&reference);
    let mut stats = Stats {
        sys_len: hyp.len(),
        ref_len: reference.len(),
        ..Stats::default()
    };
    for (gram, count) in ngram_counts(&hyp) {
        let n = gram.len() - 1;
        stats.totals[n] += count;
        // Clipping: an n-gram is credited at most as often as the reference has it.
        stats.counts[n] += count.min(ref_grams.get(gram).copied().unwrap_or(0));
    }
    stats
}

// ANCHOR: corpus_bleu
/// Corpus BLEU of `hypotheses` against one reference each, identical to sacreBLEU's default
/// `BLEU().corpus_score(hypotheses, [references])` (`eq:bleu`):
///
/// `BLEU = BP · exp(Σ_{n=1}^{4} w_n log p_n)`, with `w_n = 1/4` and
/// `BP = min(1, exp(1 - r / c))`,
///
/// where `p_n` is the clipped n-gram precision pooled over the corpus, `c` the number of
/// hypothesis tokens and `r` the number of reference tokens, all after [`tokenize_13a`]. The
/// score is reported times 100. An order with no match is smoothed the `exp` way
/// (`p_n = 1 / (2^k totals[n])` for the k-th such order); a corpus with no match at all scores
/// 0, as does one whose hypotheses are all shorter than 4 tokens (see the module docs).
///
/// An empty corpus (no sentences) has all its statistics zero and scores 0 with `bp = 1`, as a
/// corpus of empty lines does. (sacreBLEU itself rejects an empty list.)
///
/// # Errors
/// When the two slices have different lengths; the error names both.
///
/// # Example
/// The hypothesis `the cat sat` against `the cat sat down`: c = 3, r = 4, and every n-gram of
/// the hypothesis matches (3/3, 2/2, 1/1), but it has no 4-gram, so BLEU is 0 (and the
/// brevity penalty is exp(1 - 4/3)).
/// ```
/// use aiayn::bleu::corpus_bleu;
/// let s = corpus_bleu(&["the cat sat"], &["the cat sat down"]).unwrap();
/// assert_eq!((s.sys_len, s.ref_len), (3, 4));
/// assert_eq!(s.counts, [3, 2, 1, 0]);
/// assert_eq!(s.totals, [3, 2, 1, 0]);
/// assert_eq!(s.score, 0.0);
/// assert_eq!(s.bp, (1.0f64 - 4.0 / 3.0).exp());
///
/// // 4 of 5 words, 3 of 4 bigrams, 2 of 3 trigrams, 1 of 2 4-grams, c = r = 5:
/// // BLEU = 100 * (4/5 * 3/4 * 2/3 * 1/2)^(1/4) = 100 * 0.2^0.25.
/// let s = corpus_bleu(&["the cat sat down today"], &["the cat sat down ."]).unwrap();
/// assert_eq!(s.counts, [4, 3, 2, 1]);
/// assert!((s.score - 100.0 * 0.2f64.powf(0.25)).abs() < 1e-12);
/// assert!(corpus_bleu(&["a"], &["a", "b"]).is_err());
/// ```
pub fn corpus_bleu(hypotheses: &[&str], references: &[&str]) -> Result<BleuScore, BleuError> {
    if hypotheses.len() != references.len() {
        return Err(BleuError {
            kind: ErrorKind::LengthMismatch {
                hypotheses: hypotheses.len(),
                references: references.len(),
            },
        });
    }
    // Pool the statistics of all sentence pairs.
    let mut total = Stats::default();
    for (hyp, reference) in hypotheses.iter().zip(references) {
        let s = sentence_stats(hyp, reference);
        total.sys_len += s.sys_len;
        total.ref_len += s.ref_len;
        for n in 0..MAX_ORDER {
            total.counts[n] += s.counts[n];
            total.totals[n] += s.totals[n];
        }
    }
    let (c, r) = (total.sys_len, total.ref_len);
    // BP = min(1, exp(1 - r / c)); a corpus of empty hypotheses gets 0.
    let bp = if c >= r {
        1.0
    } else if c == 0 {
        0.0
    } else {
        (1.0 - r as f64 / c as f64).exp()
    };
    let mut precisions = [0.0; MAX_ORDER];
    let mut score = 0.0;
    if total.counts.iter().any(|&m| m > 0) {
        let mut smooth = 1.0; // 2^k after the k-th order without a match
        for (p_n, (&matches, &grams)) in precisions
            .iter_mut()
            .zip(total.counts.iter().zip(&total.totals))
        {
            if grams == 0 {
                break; // no n-grams at this order or above: p_n stays 0
            }
            *p_n = if matches == 0 {
                smooth *= 2.0;
                100.0 / (smooth * grams as f64)
            } else {
                100.0 * matches as f64 / grams as f64
            };
        }
        // Σ w_n log p_n with w_n = 1/4; sacreBLEU's log(0) is -9999999999.
        let mut sum_log = 0.0;
        for p in precisions {
            sum_log += if p == 0.0 { -9_999_999_999.0 } else { p.ln() };
        }
        score = bp * (sum_log / MAX_ORDER as f64).exp();
    }
    Ok(BleuScore {
        score,
        precisions,
        bp,
        sys_len: c,
        ref_len: r,
        counts: total.counts,
        totals: total.totals,
    })
}
// ANCHOR_END: corpus_bleu
