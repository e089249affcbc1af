//! Held-out metrics: exact match of greedy translations, token accuracy, loss and perplexity.

use nalgebra::RealField;

use crate::decode::{argmax, greedy};
use crate::model::Transformer;
use crate::train::tasks::{Pair, BOS, EOS};
use crate::train::trainer::parallel_map;

/// Metrics of a model on a set of pairs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Pairs evaluated.
    pub pairs: usize,
    /// Fraction of pairs whose greedy translation equals the reference exactly.
    pub exact_match: f64,
    /// Fraction of reference tokens (end of sentence included) that the model ranks first
    /// when given the correct prefix (teacher forcing).
    pub token_accuracy: f64,
    /// Mean negative log-likelihood per reference token (no smoothing), in nats.
    pub loss: f64,
    /// exp(loss).
    pub perplexity: f64,
}

// ANCHOR: evaluate
/// Evaluates `model` on `pairs` on `threads` threads. Greedy outputs are cut at the
/// reference length + `extra` tokens.
pub fn evaluate<T: RealField + Copy + Send + Sync>(
    model: &Transformer<T>,
    pairs: &[Pair],
    threads: usize,
    extra: usize,
) -> Metrics {
    let per_pair = parallel_map(pairs.len(), threads, |i| {
        let pair = &pairs[i];
        let tgt_in: Vec<usize> = std::iter::once(BOS)
            .chain(pair.tgt.iter().copied())
            .collect();
        let tgt_out: Vec<usize> = pair
            .tgt
            .iter()
            .copied()
            .chain(std::iter::once(EOS))
            .collect();
        let log_probs = model.forward(&pair.src, &tgt_in, None); // (n_t, vocab)
        let mut nll = 0.0;
        let mut correct = 0;
        for (row, &t) in tgt_out.iter().enumerate() {
            let lp = log_probs.row(row);
            nll -= nalgebra::try_convert::<T, f64>(lp[t]).unwrap_or(f64::NAN);
            correct += usize::from(argmax(&lp) == t);
        }
        let hyp = greedy(model, &pair.src, BOS, EOS, pair.tgt.len() + extra);
        (nll, correct, tgt_out.len(), hyp == pair.tgt)
    });
    let tokens: usize = per_pair.iter().map(|p| p.2).sum();
    let nll: f64 = per_pair.iter().map(|p| p.0).sum();
    let correct: usize = per_pair.iter().map(|p| p.1).sum();
    let exact = per_pair.iter().filter(|p| p.3).count();
    let loss = nll / tokens.max(1) as f64;
    Metrics {
        pairs: pairs.len(),
        exact_match: exact as f64 / pairs.len().max(1) as f64,
        token_accuracy: correct as f64 / tokens.max(1) as f64,
        loss,
        perplexity: loss.exp(),
    }
}
// ANCHOR_END: evaluate
