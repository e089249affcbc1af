//! Decoding (§6.1): beam search with a length penalty; greedy decoding is its beam of one.
//!
//! The encoder runs once per sentence. The decoder then runs one position at a time, keeping
//! every layer's projected keys and values ([`crate::model::DecoderState`]), so that a step
//! costs one new row per layer instead of a pass over the whole prefix.
//!
//! Beam search keeps the k most probable partial translations ("hypotheses"). A step extends
//! each of them by every token of the vocabulary and keeps the k best extensions by
//! log-probability. An extension that ends with the end-of-sentence symbol is finished and
//! leaves the beam; so does one that reaches the length limit. The search stops when the beam is
//! empty, or when no live hypothesis can beat the best finished one any more (see
//! [`beam_search`] for the bound). Finished hypotheses are ranked by the paper's score, the
//! log-probability divided by the length penalty of Wu et al. (2016) ([`length_penalty`]).
//!
//! With k = 1 the only live hypothesis is extended by its most probable token, and finishes
//! when that token is the end symbol: this is greedy decoding, and [`greedy`] is exactly that.

use std::cmp::Ordering;

use nalgebra::{Dyn, Matrix, RealField, RowDVector, Storage, U1};

use crate::model::{DecoderState, Transformer};

/// A translation and how beam search scored it.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis<T: RealField> {
    /// The output tokens, without the start symbol and without the end symbol.
    pub tokens: Vec<usize>,
    /// Whether the hypothesis ended with the end symbol (`false`: cut at the length limit, or
    /// still live in a trace).
    pub eos: bool,
    /// log P(Y | source): the sum of the log-probabilities of its tokens, the end symbol
    /// included when `eos`.
    pub log_prob: T,
    /// log P(Y) / lp(Y), the rank beam search gives it.
    pub score: T,
}

impl<T: RealField + Copy> Hypothesis<T> {
    fn new(tokens: Vec<usize>, eos: bool, log_prob: T, alpha: T) -> Self {
        let length = tokens.len() + usize::from(eos);
        Hypothesis {
            tokens,
            eos,
            log_prob,
            score: log_prob / length_penalty(length, alpha),
        }
    }

    /// |Y|, the length the penalty counts: the tokens, plus one for the end symbol.
    pub fn length(&self) -> usize {
        self.tokens.len() + usize::from(self.eos)
    }
}

/// One step of beam search, as [`beam_search_traced`] records it.
#[derive(Clone, Debug, PartialEq)]
pub struct BeamStep<T: RealField> {
    /// The hypotheses kept for the next step, best first (`eos` false; `score` is their
    /// log-probability over the penalty of their present length).
    pub live: Vec<Hypothesis<T>>,
    /// The hypotheses that finished at this step, best extension first.
    pub finished: Vec<Hypothesis<T>>,
    /// The best score any completion of a live hypothesis could reach (`None` when none is
    /// live).
    pub bound: Option<T>,
    /// The best finished score so far (`None` before any hypothesis finished).
    pub best: Option<T>,
}

// ANCHOR: length_penalty
/// The length penalty of Wu et al. (2016) that §6.1 uses (`eq:length-penalty`):
/// lp(Y) = (5 + |Y|)^alpha / 6^alpha. It is 1 for |Y| = 1 and, for alpha >= 0, grows with |Y|;
/// alpha = 0 turns it off.
///
/// # Example
/// ```
/// use aiayn::decode::length_penalty;
/// assert_eq!(length_penalty(1, 0.6), 1.0);
/// assert_eq!(length_penalty(7, 1.0), 2.0); // 12 / 6
/// assert!((length_penalty(19, 0.5f64) - 2.0).abs() < 1e-15); // sqrt(24 / 6)
/// ```
pub fn length_penalty<T: RealField + Copy>(length: usize, alpha: T) -> T {
    let five: T = nalgebra::convert(5.0);
    let six: T = nalgebra::convert(6.0);
    let n: T = nalgebra::convert(length as f64);
    (five + n).powf(alpha) / six.powf(alpha)
}
// ANCHOR_END: length_penalty

/// The beam search of §6.1: the finished hypotheses, best score first.
///
/// `beam` is k (the paper: 4), `alpha` the length penalty's exponent (the paper: 0.6), and
/// `max_len` the most output tokens (the paper: the input length + 50); a hypothesis that
/// reaches `max_len` tokens finishes without the end symbol.
///
/// **Early termination.** Log-probabilities are at most 0, so extending a hypothesis can only
/// lower its log-probability: every completion Y of a live hypothesis h has
/// log P(Y) <= log P(h). Its length is at most `max_len`, and for alpha >= 0 the penalty grows
/// with length, so score(Y) = log P(Y) / lp(Y) <= log P(h) / lp(max_len) (dividing a number
/// <= 0 by a larger positive one brings it closer to 0). The search stops as soon as the best
/// finished score is at least this bound for every live hypothesis; nothing it drops could
/// have ranked first.
///
/// **Ties** are broken deterministically: among extensions with equal log-probability, and
/// among finished hypotheses with equal score, the lexicographically smaller token sequence
/// (the lower token id at the first difference) comes first.
///
/// # Shapes
/// `src`: n_s ids -> hypotheses of at most `max_len` tokens each; at least one.
///
/// # Panics
/// If `beam` is 0, `alpha` is negative or NaN, or an id is outside the vocabulary.
pub fn beam_search<T: RealField + Copy>(
    model: &Transformer<T>,
    src: &[usize],
    bos: usize,
    eos: usize,
    beam: usize,
    alpha: T,
    max_len: usize,
) -> Vec<Hypothesis<T>> {
    let search = Search {
        bos,
        eos,
        beam,
        alpha,
        max_len,
    };
    search.run(model, src, None)
}

/// [`beam_search`], and what each step kept, finished and bounded (for the book's worked
/// example and the tests).
///
/// # Panics
/// As [`beam_search`].
pub fn beam_search_traced<T: RealField + Copy>(
    model: &Transformer<T>,
    src: &[usize],
    bos: usize,
    eos: usize,
    beam: usize,
    alpha: T,
    max_len: usize,
) -> (Vec<Hypothesis<T>>, Vec<BeamStep<T>>) {
    let search = Search {
        bos,
        eos,
        beam,
        alpha,
        max_len,
    };
    let mut trace = Vec::new();
    let finished = search.run(model, src, Some(&mut trace));
    (finished, trace)
}

/// The settings of one search.
struct Search<T> {
    bos: usize,
    eos: usize,
    beam: usize,
    alpha: T,
    max_len: usize,
}

/// A live hypothesis: its tokens, their log-probability, the decoder state after them, and
/// the log-probabilities of the token after them.
#[derive(Clone)]
struct Live<T: RealField> {
    tokens: Vec<usize>,
    log_prob: T,
    state: DecoderState<T>,
    next: RowDVector<T>,
}

impl<T: RealField + Copy> Search<T> {
    // ANCHOR: beam_search
    fn run(
        &self,
        model: &Transformer<T>,
        src: &[usize],
        mut trace: Option<&mut Vec<BeamStep<T>>>,
    ) -> Vec<Hypothesis<T>> {
        self.check();
        let mut finished: Vec<Hypothesis<T>> = Vec::new();
        if self.max_len == 0 {
            return vec![Hypothesis::new(Vec::new(), false, T::zero(), self.alpha)];
        }
        let memory = model.encode(src, None); // (n_s, d_model), computed once
        let mut state = model.start_decoding(&memory, None);
        let next = model.decode_step(&mut state, self.bos); // (vocab)
        let mut live = vec![Live {
            tokens: Vec::new(),
            log_prob: T::zero(),
            state,
            next,
        }];
        let lp_max = length_penalty(self.max_len, self.alpha);
        while !live.is_empty() {
            // every one-token extension of every live hypothesis, the k best kept
            let mut candidates: Vec<(usize, usize, T)> = Vec::new(); // (parent, token, log P)
            for (p, h) in live.iter().enumerate() {
                for (w, &lp) in h.next.iter().enumerate() {
                    candidates.push((p, w, h.log_prob + lp));
                }
            }
            candidates.sort_by(|a, b| {
                descending(a.2, b.2)
                    .then_with(|| live[a.0].tokens.cmp(&live[b.0].tokens))
                    .then(a.1.cmp(&b.1))
            });
            candidates.truncate(self.beam);

            let mut kept = Vec::new();
            let mut step_finished = Vec::new();
            for (p, w, log_prob) in candidates {
                let parent = &live[p];
                if w == self.eos {
                    let tokens = parent.tokens.clone();
                    step_finished.push(Hypothesis::new(tokens, true, log_prob, self.alpha));
                    continue;
                }
                let tokens = [parent.tokens.as_slice(), &[w]].concat();
                if tokens.len() == self.max_len {
                    step_finished.push(Hypothesis::new(tokens, false, log_prob, self.alpha));
                    continue;
                }
                let mut state = parent.state.clone();
                let next = model.decode_step(&mut state, w); // one new row per layer
                kept.push(Live {
                    tokens,
                    log_prob,
                    state,
                    next,
                });
            }
            live = kept;
            finished.extend(step_finished.iter().cloned());

            // no completion of h scores above log P(h) / lp(max_len): stop when none can win
            let best = finished.iter().map(|h| h.score).reduce(T::max);
            let bound = live.iter().map(|h| h.log_prob / lp_max).reduce(T::max);
            if let Some(trace) = trace.as_deref_mut() {
                trace.push(self.record(&live, step_finished, bound, best));
            }
            if let (Some(best), Some(bound)) = (best, bound) {
                if best >= bound {
                    break;
                }
            }
        }
        finished.sort_by(|a, b| {
            descending(a.score, b.score)
                .then_with(|| a.tokens.cmp(&b.tokens))
                .then(a.eos.cmp(&b.eos))
        });
        finished
    }
    // ANCHOR_END: beam_search

    fn check(&self) {
        assert!(
            self.beam >= 1,
            "beam search: the beam size must be at least 1"
        );
        assert!(
            self.alpha >= T::zero(),
            "beam search: alpha = {} must be a number >= 0",
            self.alpha
        );
    }

    fn record(
        &self,
        live: &[Live<T>],
        finished: Vec<Hypothesis<T>>,
        bound: Option<T>,
        best: Option<T>,
    ) -> BeamStep<T> {
        BeamStep {
            live: live
                .iter()
                .map(|h| Hypothesis::new(h.tokens.clone(), false, h.log_prob, self.alpha))
                .collect(),
            finished,
            bound,
            best,
        }
    }
}

/// Larger first (NaN compares equal to anything, so it cannot panic a sort).
fn descending<T: RealField>(a: T, b: T) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

// ANCHOR: greedy
/// The greedy translation of `src`: at each step the most probable next token, stopping at
/// `eos` (not included) or after `max_len` tokens. This is [`beam_search`] with a beam of one
/// (the length penalty then plays no part: there is only ever one hypothesis to rank).
///
/// # Shapes
/// `src`: n_s ids -> at most `max_len` ids.
///
/// # Panics
/// If an id is outside the vocabulary.
pub fn greedy<T: RealField + Copy>(
    model: &Transformer<T>,
    src: &[usize],
    bos: usize,
    eos: usize,
    max_len: usize,
) -> Vec<usize> {
    let mut best = beam_search(model, src, bos, eos, 1, T::zero(), max_len);
    best.swap_remove(0).tokens // a beam of one finishes exactly one hypothesis
}
// ANCHOR_END: greedy

/// The index of the largest entry of a row (the first one on a tie).
pub fn argmax<T: RealField + Copy, S: Storage<T, U1, Dyn>>(row: &Matrix<T, U1, Dyn, S>) -> usize {
    let mut best = 0;
    for (j, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = j;
        }
    }
    best
}
