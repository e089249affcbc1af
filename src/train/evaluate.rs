//! Held-out metrics: exact match of greedy translations, token accuracy, loss and perplexity;
//! and, for §6, exact match and BLEU of any decoding (greedy or beam search).

use nalgebra::RealField;

use crate::decode::{argmax, beam_search, greedy};
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

/// What [`evaluate_decoding`] measures: the §6 metrics of a decoding method on held-out pairs.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodingMetrics {
    /// Pairs evaluated.
    pub pairs: usize,
    /// Fraction of pairs whose translation equals the reference exactly.
    pub exact_match: f64,
    /// Corpus BLEU of the translations against the references (sacreBLEU's default).
    pub bleu: crate::bleu::BleuScore,
    /// Each pair's translation, in order.
    pub hypotheses: Vec<Vec<usize>>,
}

// ANCHOR: evaluate_decoding
/// Translates every pair's source by beam search (`beam` = 1 is greedy) with length penalty
/// `alpha` and at most source length + 50 tokens (§6.1), on `threads` threads, and scores the
/// translations against the references: exact match and corpus BLEU, the words of each side
/// given by `words`.
pub fn evaluate_decoding<T: RealField + Copy + Send + Sync>(
    model: &Transformer<T>,
    pairs: &[Pair],
    threads: usize,
    beam: usize,
    alpha: T,
    words: impl Fn(&[usize]) -> String + Sync,
) -> DecodingMetrics {
    let hypotheses = parallel_map(pairs.len(), threads, |i| {
        let src = &pairs[i].src;
        let best = beam_search(model, src, BOS, EOS, beam, alpha, src.len() + 50);
        best.into_iter().next().map_or(Vec::new(), |h| h.tokens)
    });
    let exact = pairs
        .iter()
        .zip(&hypotheses)
        .filter(|(p, h)| &p.tgt == *h)
        .count();
    let hyp_text: Vec<String> = hypotheses.iter().map(|h| words(h)).collect();
    let ref_text: Vec<String> = pairs.iter().map(|p| words(&p.tgt)).collect();
    let hyp: Vec<&str> = hyp_text.iter().map(String::as_str).collect();
    let refs: Vec<&str> = ref_text.iter().map(String::as_str).collect();
    let bleu = crate::bleu::corpus_bleu(&hyp, &refs).expect("one hypothesis per reference");
    DecodingMetrics {
        pairs: pairs.len(),
        exact_match: exact as f64 / pairs.len().max(1) as f64,
        bleu,
        hypotheses,
    }
}
// ANCHOR_END: evaluate_decoding
