//! §5: training runs B sequences at once, stacked row-wise, each with its own masks. A batch
//! must compute exactly what each of its sequences computes alone: the same output rows, the
//! same attention weights, the same input gradients, and parameter gradients that are the sum
//! of the sequences' own. A wrong offset into the stack would mix one sequence's keys into
//! another's attention, or send one sequence's gradient to another's rows; the single-sequence
//! property tests (`tests/properties_backward.rs`) cannot see that.
//!
//! Each sequence gets its own random mask (padding, causal or both), so sequences differ in
//! what they may see. Agreement is to 1e-12 relative: the batch and the single runs add the
//! same numbers, though not always in the same order.
//!
//! Cases per test: 48 (multi-head attention, the layers), 24 (the stacks, the whole model), or
//! `PROPTEST_CASES`.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_batch.txt";

use aiayn::dropout::Dropout;
use aiayn::mask::Mask;
use aiayn::params::Parameters;
use nalgebra::DMatrix;
use properties_support::{
    layer_sizes, random_decoder_layer, random_encoder_layer, random_model, random_multi_head,
    random_stacks, rng, uniform,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rand::Rng;

fn cases(n: u32) -> ProptestConfig {
    properties_support::config_with_cases(REGRESSIONS, n)
}

/// Whether a and b agree to 1e-12 relative (to the larger magnitude in either).
fn close(a: &DMatrix<f64>, b: &DMatrix<f64>) -> bool {
    let scale = a.amax().max(b.amax()).max(1.0);
    a.shape() == b.shape() && properties_support::max_abs_diff(a, b) <= 1e-12 * scale
}

/// Sequence `b` of a stack of sequences of `rows` rows each.
fn block(x: &DMatrix<f64>, b: usize, rows: usize) -> DMatrix<f64> {
    x.rows(b * rows, rows).into_owned()
}

/// The sequences stacked row-wise.
fn stack(parts: &[DMatrix<f64>]) -> DMatrix<f64> {
    let cols = parts[0].ncols();
    let rows: usize = parts.iter().map(DMatrix::nrows).sum();
    let mut out = DMatrix::zeros(rows, cols);
    let mut at = 0;
    for p in parts {
        out.rows_mut(at, p.nrows()).copy_from(p);
        at += p.nrows();
    }
    out
}

/// A mask for n queries over m keys: padding on some keys (never all), causal when n = m and
/// `causal`.
fn random_mask(n: usize, m: usize, causal: bool, r: &mut impl Rng) -> Mask {
    let mut pad: Vec<bool> = (0..m).map(|_| r.random_bool(0.3)).collect();
    pad[r.random_range(0..m)] = false;
    let padding = Mask::padding(n, &pad);
    if causal && n == m {
        padding.and(&Mask::causal(n))
    } else {
        padding
    }
}

/// `batched` equals the sum of `alone`, parameter by parameter.
fn sums<P: Parameters<f64>>(batched: &P, alone: &[P]) -> Result<(), TestCaseError> {
    for (k, p) in batched.params().iter().enumerate() {
        let mut total = DMatrix::<f64>::zeros(p.rows, p.cols);
        for a in alone {
            let q = &a.params()[k];
            prop_assert_eq!(&q.name, &p.name);
            total += DMatrix::from_column_slice(q.rows, q.cols, q.data);
        }
        let got = DMatrix::from_column_slice(p.rows, p.cols, p.data);
        prop_assert!(close(&got, &total), "gradient of {}", p.name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(48))]

    // verifies: eq:multi-head-backward (property)
    #[test]
    fn a_batch_through_multi_head_attention_is_each_sequence_alone(
        seed in any::<u64>(), s in layer_sizes(), batch in 2..=3usize, n in 1..=4usize, m in 1..=4usize,
    ) {
        let mut r = rng(seed);
        let mha = random_multi_head(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, &mut r);
        let qs: Vec<_> = (0..batch).map(|_| uniform(n, s.d_model, 2.0, &mut r)).collect();
        let ks: Vec<_> = (0..batch).map(|_| uniform(m, s.d_model, 2.0, &mut r)).collect();
        let vs: Vec<_> = (0..batch).map(|_| uniform(m, s.d_model, 2.0, &mut r)).collect();
        let masks: Vec<Mask> = (0..batch).map(|_| random_mask(n, m, true, &mut r)).collect();
        let d_out = uniform(batch * n, s.d_model, 1.0, &mut r);

        let (out, cache) = mha.forward_train(&stack(&qs), &stack(&ks), &stack(&vs), &masks);
        let g = mha.backward(&cache, &d_out);
        let mut alone_grads = Vec::new();
        for b in 0..batch {
            let (one, one_cache) =
                mha.forward_train(&qs[b], &ks[b], &vs[b], std::slice::from_ref(&masks[b]));
            prop_assert!(close(&block(&out.output, b, n), &one.output), "output of sequence {}", b);
            for i in 0..s.h {
                prop_assert!(close(&out.weights[b * s.h + i], &one.weights[i]), "weights of sequence {}, head {}", b, i);
            }
            let one_g = mha.backward(&one_cache, &block(&d_out, b, n));
            prop_assert!(close(&block(&g.d_query, b, n), &one_g.d_query), "d_query of sequence {}", b);
            prop_assert!(close(&block(&g.d_key, b, m), &one_g.d_key), "d_key of sequence {}", b);
            prop_assert!(close(&block(&g.d_value, b, m), &one_g.d_value), "d_value of sequence {}", b);
            alone_grads.push(one_g.params);
        }
        sums(&g.params, &alone_grads)?;
    }

    // verifies: eq:sublayer-backward (property)
    #[test]
    fn a_batch_through_an_encoder_layer_is_each_sequence_alone(
        seed in any::<u64>(), s in layer_sizes(), batch in 2..=3usize, n in 1..=4usize,
    ) {
        let mut r = rng(seed);
        let layer = random_encoder_layer(&s, &mut r);
        let xs: Vec<_> = (0..batch).map(|_| uniform(n, s.d_model, 2.0, &mut r)).collect();
        let masks: Vec<Mask> = (0..batch).map(|_| random_mask(n, n, false, &mut r)).collect();
        let d_y = uniform(batch * n, s.d_model, 1.0, &mut r);
        let (y, cache) = layer.forward_train(&stack(&xs), &masks, &mut Dropout::off());
        let (d_x, g) = layer.backward(&cache, &d_y);
        let mut alone = Vec::new();
        for b in 0..batch {
            let (one, c) = layer.forward_train(&xs[b], std::slice::from_ref(&masks[b]), &mut Dropout::off());
            prop_assert!(close(&block(&y, b, n), &one), "output of sequence {}", b);
            let (one_dx, one_g) = layer.backward(&c, &block(&d_y, b, n));
            prop_assert!(close(&block(&d_x, b, n), &one_dx), "d_x of sequence {}", b);
            alone.push(one_g);
        }
        sums(&g, &alone)?;
    }

    // verifies: eq:sublayer-backward (property)
    #[test]
    fn a_batch_through_a_decoder_layer_is_each_sequence_alone(
        seed in any::<u64>(), s in layer_sizes(), batch in 2..=3usize, n_t in 1..=4usize, n_s in 1..=4usize,
    ) {
        let mut r = rng(seed);
        let layer = random_decoder_layer(&s, &mut r);
        let ys: Vec<_> = (0..batch).map(|_| uniform(n_t, s.d_model, 2.0, &mut r)).collect();
        let mems: Vec<_> = (0..batch).map(|_| uniform(n_s, s.d_model, 2.0, &mut r)).collect();
        let self_masks: Vec<Mask> = (0..batch).map(|_| random_mask(n_t, n_t, true, &mut r)).collect();
        let mem_masks: Vec<Mask> = (0..batch).map(|_| random_mask(n_t, n_s, false, &mut r)).collect();
        let d_out = uniform(batch * n_t, s.d_model, 1.0, &mut r);
        let (out, cache) = layer.forward_train(&stack(&ys), &stack(&mems), &self_masks, &mem_masks, &mut Dropout::off());
        let (d_y, d_mem, g) = layer.backward(&cache, &d_out);
        let mut alone = Vec::new();
        for b in 0..batch {
            let (one, c) = layer.forward_train(
                &ys[b], &mems[b], std::slice::from_ref(&self_masks[b]), std::slice::from_ref(&mem_masks[b]), &mut Dropout::off(),
            );
            prop_assert!(close(&block(&out, b, n_t), &one), "output of sequence {}", b);
            let (one_dy, one_dm, one_g) = layer.backward(&c, &block(&d_out, b, n_t));
            prop_assert!(close(&block(&d_y, b, n_t), &one_dy), "d_y of sequence {}", b);
            prop_assert!(close(&block(&d_mem, b, n_s), &one_dm), "d_memory of sequence {}", b);
            alone.push(one_g);
        }
        sums(&g, &alone)?;
    }
}

proptest! {
    #![proptest_config(cases(24))]

    // verifies: eq:sublayer-backward (property)
    #[test]
    fn a_batch_through_both_stacks_is_each_sequence_alone(
        seed in any::<u64>(), s in layer_sizes(), batch in 2..=3usize, n_t in 1..=3usize, n_s in 1..=3usize,
    ) {
        let mut r = rng(seed);
        let (encoder, decoder) = random_stacks(&s, &mut r);
        let xs: Vec<_> = (0..batch).map(|_| uniform(n_s, s.d_model, 2.0, &mut r)).collect();
        let ys: Vec<_> = (0..batch).map(|_| uniform(n_t, s.d_model, 2.0, &mut r)).collect();
        let src_masks: Vec<Mask> = (0..batch).map(|_| random_mask(n_s, n_s, false, &mut r)).collect();
        let self_masks: Vec<Mask> = (0..batch).map(|_| random_mask(n_t, n_t, true, &mut r)).collect();
        let mem_masks: Vec<Mask> = (0..batch).map(|_| random_mask(n_t, n_s, false, &mut r)).collect();
        let d_out = uniform(batch * n_t, s.d_model, 1.0, &mut r);
        let d_mem_extra = uniform(batch * n_s, s.d_model, 1.0, &mut r);

        let (memory, enc_cache) = encoder.forward_train(&stack(&xs), &src_masks, &mut Dropout::off());
        let (out, dec_cache) = decoder.forward_train(&stack(&ys), &memory, &self_masks, &mem_masks, &mut Dropout::off());
        let (d_y, d_memory, dec_g) = decoder.backward(&dec_cache, &d_out);
        let (d_x, enc_g) = encoder.backward(&enc_cache, &(&d_memory + &d_mem_extra));
        let (mut enc_alone, mut dec_alone) = (Vec::new(), Vec::new());
        for b in 0..batch {
            let (mem, ec) = encoder.forward_train(&xs[b], std::slice::from_ref(&src_masks[b]), &mut Dropout::off());
            prop_assert!(close(&block(&memory, b, n_s), &mem), "memory of sequence {}", b);
            let (one, dc) = decoder.forward_train(
                &ys[b], &mem, std::slice::from_ref(&self_masks[b]), std::slice::from_ref(&mem_masks[b]), &mut Dropout::off(),
            );
            prop_assert!(close(&block(&out, b, n_t), &one), "output of sequence {}", b);
            let (one_dy, one_dm, one_dg) = decoder.backward(&dc, &block(&d_out, b, n_t));
            prop_assert!(close(&block(&d_y, b, n_t), &one_dy), "d_y of sequence {}", b);
            prop_assert!(close(&block(&d_memory, b, n_s), &one_dm), "d_memory of sequence {}", b);
            let (one_dx, one_eg) = encoder.backward(&ec, &(&one_dm + &block(&d_mem_extra, b, n_s)));
            prop_assert!(close(&block(&d_x, b, n_s), &one_dx), "d_x of sequence {}", b);
            enc_alone.push(one_eg);
            dec_alone.push(one_dg);
        }
        sums(&enc_g, &enc_alone)?;
        sums(&dec_g, &dec_alone)?;
    }
}

proptest! {
    #![proptest_config(cases(24))]

    /// The whole model on a batch of pairs (source padding of its own for each) computes what
    /// each pair computes alone: the same log-probabilities, and parameter gradients that sum
    /// to the batch's. With learned positions this includes the position table, whose gradient
    /// collects every pair's rows at the same positions.
    // verifies: eq:embedding-backward (property)
    #[test]
    fn a_batch_through_the_whole_model_is_each_pair_alone(
        seed in any::<u64>(), s in layer_sizes(), learned in any::<bool>(), batch in 2..=3usize,
        n_s in 1..=4usize, n_t in 2..=4usize, vocab in 2..=6usize,
    ) {
        let mut r = rng(seed);
        let model = random_model(&s, learned, 8, vocab, &mut r);
        let tokens = |n: usize, r: &mut rand::rngs::StdRng| -> Vec<usize> {
            (0..n).map(|_| r.random_range(0..vocab)).collect()
        };
        let src: Vec<Vec<usize>> = (0..batch).map(|_| tokens(n_s, &mut r)).collect();
        let tgt: Vec<Vec<usize>> = (0..batch).map(|_| tokens(n_t, &mut r)).collect();
        // padding at the end of a source, never all of it
        let padding: Vec<Vec<bool>> = (0..batch)
            .map(|_| {
                let real = r.random_range(1..=n_s);
                (0..n_s).map(|i| i >= real).collect()
            })
            .collect();
        let d_log_probs = uniform(batch * n_t, vocab, 1.0, &mut r);
        let (log_probs, cache) = model.forward_train(&src, &tgt, &padding, &mut Dropout::off());
        let grads = model.backward(&cache, &d_log_probs);
        let mut alone = Vec::new();
        for b in 0..batch {
            let (one, c) = model.forward_train(
                std::slice::from_ref(&src[b]), std::slice::from_ref(&tgt[b]),
                std::slice::from_ref(&padding[b]), &mut Dropout::off(),
            );
            prop_assert!(close(&block(&log_probs, b, n_t), &one), "log-probabilities of pair {}", b);
            alone.push(model.backward(&c, &block(&d_log_probs, b, n_t)));
        }
        sums(&grads, &alone)?;
    }
}
