//! §6.1: incremental decoding with cached keys and values against the full recomputation, and
//! beam search against greedy decoding, its own trace, and brute force.
//!
//! The models are small and random (every weight, bias, gain and positional row uniform in
//! [-1, 1]), in f64, over both norm placements, with and without attention biases and a final
//! decoder norm, with learned or sinusoidal positions. Cases per test: 64, or `PROPTEST_CASES`.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/decode.txt";

use aiayn::decode::{argmax, beam_search, beam_search_traced, greedy, length_penalty};
use aiayn::encoder::LayerSizes;
use aiayn::layer_norm::LayerNorm;
use aiayn::Transformer;
use properties_support::{layer_sizes, rng};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rand::Rng;

/// Positions a learned table covers: the start symbol and up to 7 tokens.
const MAX_POSITIONS: usize = 8;

fn cases(n: u32) -> ProptestConfig {
    properties_support::config_with_cases(REGRESSIONS, n)
}

/// A random two-layer model (see `properties_support::random_model`); with `final_norm`, a
/// post-norm decoder gets a random final LayerNorm too (pre-norm always has one).
fn random_model(
    s: &LayerSizes,
    learned: bool,
    final_norm: bool,
    vocab: usize,
    r: &mut impl Rng,
) -> Transformer<f64> {
    let mut model = properties_support::random_model(s, learned, MAX_POSITIONS, vocab, r);
    if final_norm && model.decoder.final_norm.is_none() {
        let mut norm = LayerNorm::new(s.h * s.d_v, s.layer_norm_eps);
        properties_support::scramble_norm(&mut norm, r);
        model.decoder.final_norm = Some(norm);
    }
    model
}

/// The greedy decoder as it was before the cache: the whole prefix through the decoder at
/// every step, the most probable token (the first on a tie) appended. The test oracle.
fn greedy_full(
    model: &Transformer<f64>,
    src: &[usize],
    bos: usize,
    eos: usize,
    max_len: usize,
) -> Vec<usize> {
    let memory = model.encode(src, None);
    let mut tgt = vec![bos];
    while tgt.len() <= max_len {
        let y = model.decode(&tgt, &memory, None); // (n_t, d_model)
        let last = y.rows(tgt.len() - 1, 1).into_owned(); // (1, d_model)
        let next = argmax(&model.embedding.logits(&last).row(0));
        if next == eos {
            break;
        }
        tgt.push(next);
    }
    tgt.split_off(1)
}

/// log P(tokens (+ eos) | src) by the full forward pass, and |Y|.
fn full_log_prob(
    model: &Transformer<f64>,
    src: &[usize],
    bos: usize,
    eos: Option<usize>,
    tokens: &[usize],
) -> (f64, usize) {
    let tgt_in: Vec<usize> = std::iter::once(bos).chain(tokens.iter().copied()).collect();
    let tgt_out: Vec<usize> = tokens.iter().copied().chain(eos).collect();
    let log_probs = model.forward(src, &tgt_in[..tgt_out.len()], None); // (|Y|, vocab)
    let sum = tgt_out
        .iter()
        .enumerate()
        .map(|(i, &t)| log_probs[(i, t)])
        .sum();
    (sum, tgt_out.len())
}

/// Every output a search with these settings could return: token sequences over the vocabulary
/// without `eos`, either ended by `eos` (shorter than `max_len`) or cut at `max_len`.
fn all_outputs(vocab: usize, eos: usize, max_len: usize) -> Vec<(Vec<usize>, bool)> {
    let mut out = Vec::new();
    let mut prefixes: Vec<Vec<usize>> = vec![Vec::new()];
    for len in 0..=max_len {
        for p in &prefixes {
            out.push((p.clone(), len < max_len)); // ended by eos, or cut at the limit
        }
        prefixes = prefixes
            .iter()
            .flat_map(|p| {
                (0..vocab)
                    .filter(|&w| w != eos)
                    .map(move |w| [p.as_slice(), &[w]].concat())
            })
            .collect();
    }
    out
}

// verifies: eq:length-penalty (example)
#[test]
fn length_penalty_matches_its_formula_on_hand_checked_values() {
    // |Y| = 1: 6^alpha / 6^alpha = 1 whatever alpha
    for alpha in [0.0, 0.3, 0.6, 1.0, 2.5] {
        assert_eq!(length_penalty::<f64>(1, alpha), 1.0, "alpha = {alpha}");
    }
    // alpha = 0: no penalty at any length
    for n in [0, 1, 7, 60] {
        assert_eq!(length_penalty::<f64>(n, 0.0), 1.0, "|Y| = {n}");
    }
    assert_eq!(length_penalty::<f64>(7, 1.0), 2.0); // 12 / 6
    assert_eq!(length_penalty::<f64>(7, 2.0), 4.0); // (12 / 6)^2
    approx::assert_relative_eq!(length_penalty::<f64>(19, 0.5), 2.0, epsilon = 1e-15); // sqrt(24 / 6)
    approx::assert_relative_eq!(
        length_penalty::<f64>(4, 0.5),
        1.5f64.sqrt(),
        epsilon = 1e-15
    ); // sqrt(9 / 6)
       // the paper's alpha at |Y| = 10: 2.5^0.6 = exp(0.6 ln 2.5) = exp(0.549 774)
    approx::assert_relative_eq!(length_penalty::<f64>(10, 0.6), 1.732_862_1, epsilon = 1e-7);
}

#[test]
#[should_panic(expected = "beam size must be at least 1")]
fn a_beam_of_zero_is_refused() {
    let model = random_model(&small_sizes(), false, false, 4, &mut rng(1));
    beam_search(&model, &[1, 2], 0, 1, 0, 0.6, 5);
}

#[test]
#[should_panic(expected = "alpha = -0.5 must be a number >= 0")]
fn a_negative_alpha_is_refused() {
    let model = random_model(&small_sizes(), false, false, 4, &mut rng(1));
    beam_search(&model, &[1, 2], 0, 1, 2, -0.5, 5);
}

#[test]
#[should_panic(expected = "alpha = NaN must be a number >= 0")]
fn a_nan_alpha_is_refused() {
    let model = random_model(&small_sizes(), false, false, 4, &mut rng(1));
    beam_search(&model, &[1, 2], 0, 1, 2, f64::NAN, 5);
}

#[test]
fn a_length_limit_of_zero_returns_the_empty_translation() {
    let model = random_model(&small_sizes(), false, false, 4, &mut rng(1));
    let found = beam_search(&model, &[1, 2], 0, 1, 3, 0.6, 0);
    assert_eq!(found.len(), 1);
    assert!(found[0].tokens.is_empty() && !found[0].eos);
    assert_eq!(greedy(&model, &[1, 2], 0, 1, 0), Vec::<usize>::new());
}

fn small_sizes() -> LayerSizes {
    LayerSizes {
        d_model: 4,
        h: 2,
        d_k: 2,
        d_v: 2,
        d_ff: 4,
        attention_bias: false,
        layer_norm_eps: 1e-6,
        placement: Default::default(),
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// Feeding a target one token at a time through the key/value caches gives, at every
    /// position, the log-probabilities of the full forward pass under the causal mask.
    #[test]
    fn cached_decoding_equals_full_recomputation_under_the_causal_mask(
        s in layer_sizes(),
        learned in any::<bool>(),
        final_norm in any::<bool>(),
        seed in any::<u64>(),
        vocab in 2..=6usize,
        n_s in 1..=5usize,
        n_t in 1..=MAX_POSITIONS,
        padded in any::<bool>(),
    ) {
        let mut r = rng(seed);
        let model = random_model(&s, learned, final_norm, vocab, &mut r);
        let src: Vec<usize> = (0..n_s).map(|_| r.random_range(0..vocab)).collect();
        let tgt: Vec<usize> = (0..n_t).map(|_| r.random_range(0..vocab)).collect();
        let pad: Vec<bool> = (0..n_s).map(|j| padded && j > 0 && r.random_bool(0.4)).collect();
        let padding = padded.then_some(pad.as_slice());

        let full = model.forward(&src, &tgt, padding); // (n_t, vocab)
        let memory = model.encode(&src, padding);
        let mut state = model.start_decoding(&memory, padding);
        for (i, &token) in tgt.iter().enumerate() {
            let step = model.decode_step(&mut state, token); // (vocab)
            for w in 0..vocab {
                prop_assert!(
                    (step[w] - full[(i, w)]).abs() <= 1e-10,
                    "position {i}, token {w}: cached {} but full {}", step[w], full[(i, w)]
                );
            }
        }
        prop_assert_eq!(state.position, n_t);
        for layer in &state.layers {
            prop_assert_eq!(layer.self_attn.len(), n_t);
            prop_assert_eq!(layer.cross_attn.len(), n_s);
        }
    }

    /// A beam of one is greedy decoding: the same tokens as the old decoder that recomputed
    /// the whole prefix at every step.
    #[test]
    fn a_beam_of_one_is_greedy_decoding(
        s in layer_sizes(),
        learned in any::<bool>(),
        seed in any::<u64>(),
        vocab in 2..=6usize,
        n_s in 1..=5usize,
        max_len in 0..MAX_POSITIONS,
        alpha in 0.0..2.0f64,
    ) {
        let mut r = rng(seed);
        let model = random_model(&s, learned, false, vocab, &mut r);
        let src: Vec<usize> = (0..n_s).map(|_| r.random_range(0..vocab)).collect();
        let (bos, eos) = (0, 1);
        let expected = greedy_full(&model, &src, bos, eos, max_len);
        prop_assert_eq!(&greedy(&model, &src, bos, eos, max_len), &expected);
        let beam = beam_search(&model, &src, bos, eos, 1, alpha, max_len);
        prop_assert_eq!(beam.len(), 1);
        prop_assert_eq!(&beam[0].tokens, &expected);
        prop_assert_eq!(beam[0].eos, expected.len() < max_len);
    }

    /// The returned hypotheses are sorted by score with correct scores; none that the search
    /// finished along the way scores above the best; and when it stopped with hypotheses still
    /// live, none of them could have reached the best score.
    // verifies: eq:length-penalty (property)
    #[test]
    fn beam_search_ranks_its_best_above_everything_it_finished_or_dropped(
        s in layer_sizes(),
        learned in any::<bool>(),
        seed in any::<u64>(),
        vocab in 2..=6usize,
        n_s in 1..=5usize,
        max_len in 1..MAX_POSITIONS,
        beam in 1..=5usize,
        alpha in 0.0..2.0f64,
    ) {
        let mut r = rng(seed);
        let model = random_model(&s, learned, false, vocab, &mut r);
        let src: Vec<usize> = (0..n_s).map(|_| r.random_range(0..vocab)).collect();
        let (bos, eos) = (0, 1);
        let (found, trace) = beam_search_traced(&model, &src, bos, eos, beam, alpha, max_len);
        prop_assert!(!found.is_empty());
        for pair in found.windows(2) {
            prop_assert!(pair[0].score >= pair[1].score);
        }
        for h in &found {
            prop_assert!(h.tokens.len() <= max_len && !h.tokens.contains(&eos));
            prop_assert!(h.eos || h.tokens.len() == max_len);
            let (log_prob, length) = full_log_prob(&model, &src, bos, h.eos.then_some(eos), &h.tokens);
            let lp = (5.0 + length as f64).powf(alpha) / 6f64.powf(alpha);
            prop_assert!((h.log_prob - log_prob).abs() <= 1e-10);
            prop_assert!((h.score - log_prob / lp).abs() <= 1e-10);
        }
        let best = found[0].score;
        let mut seen = 0;
        for step in &trace {
            prop_assert!(step.live.len() + step.finished.len() <= beam);
            for h in &step.finished {
                prop_assert!(h.score <= best);
                seen += 1;
            }
        }
        prop_assert_eq!(seen, found.len());
        let last = trace.last().expect("at least one step");
        let lp_max = (5.0 + max_len as f64).powf(alpha) / 6f64.powf(alpha);
        for h in &last.live {
            prop_assert!(h.log_prob / lp_max <= best, "a dropped live hypothesis could have won");
        }
    }

    /// With a beam as wide as the set of all possible outputs, nothing is ever cut, and beam
    /// search returns the best-scoring output found by brute force.
    // verifies: eq:length-penalty (property)
    #[test]
    fn a_beam_wider_than_all_outputs_finds_the_exact_best(
        s in layer_sizes(),
        learned in any::<bool>(),
        seed in any::<u64>(),
        n_s in 1..=4usize,
        max_len in 1..=3usize,
        alpha in 0.0..2.0f64,
    ) {
        let vocab = 3; // two tokens besides the end symbol
        let mut r = rng(seed);
        let model = random_model(&s, learned, false, vocab, &mut r);
        let src: Vec<usize> = (0..n_s).map(|_| r.random_range(0..vocab)).collect();
        let (bos, eos) = (0, 1);
        let outputs = all_outputs(vocab, eos, max_len);
        let scored: Vec<(f64, &Vec<usize>, bool)> = outputs
            .iter()
            .map(|(tokens, ended)| {
                let (log_prob, length) = full_log_prob(&model, &src, bos, ended.then_some(eos), tokens);
                (log_prob / ((5.0 + length as f64).powf(alpha) / 6f64.powf(alpha)), tokens, *ended)
            })
            .collect();
        let exact = scored
            .iter()
            .fold(&scored[0], |a, b| if b.0 > a.0 { b } else { a });
        let found = beam_search(&model, &src, bos, eos, outputs.len(), alpha, max_len);
        prop_assert!((found[0].score - exact.0).abs() <= 1e-10);
        prop_assert_eq!(&found[0].tokens, exact.1);
        prop_assert_eq!(found[0].eos, exact.2);
    }
}

#[test]
fn argmax_takes_the_first_of_tied_maxima() {
    // Greedy decoding and the beam's first candidate agree with the documented choice on ties.
    use nalgebra::RowDVector;
    assert_eq!(
        argmax(&RowDVector::from_row_slice(&[1.0, 3.0, 3.0, 2.0])),
        1
    );
    assert_eq!(argmax(&RowDVector::from_row_slice(&[0.5f32, 0.5, 0.5])), 0);
    assert_eq!(argmax(&RowDVector::from_row_slice(&[-2.0, -1.0, -1.5])), 1);
}
