//! §5: every hand-written backward pass against central finite differences of its own forward
//! pass, in f64, over random shapes, masks and both norm placements; and the training forward
//! pass against the plain one.
//!
//! The loss is L = sum(output * w) for a fixed random w of the output's shape, so dL/doutput = w.
//! A finite difference (f(x + h) - f(x - h)) / 2h with h = 1e-5 has truncation error of order
//! h^2 f''' and rounding error of order 1e-16 / h, both far below the tolerance
//! |analytic - numeric| <= 1e-6 + 1e-5 |numeric|; a wrong term of a derivative is off by far
//! more.
//!
//! Cases per test: 64 for the single layers and functions, 24 for the stacks and the whole
//! model (each case differentiates every parameter numerically), or `PROPTEST_CASES`.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_backward.txt";

use aiayn::attention::{scaled_dot_product_attention, scaled_dot_product_attention_backward};
use aiayn::decoder::Decoder;
use aiayn::dropout::Dropout;
use aiayn::encoder::LayerSizes;
use aiayn::feed_forward::FeedForward;
use aiayn::layer_norm::LayerNorm;
use aiayn::mask::Mask;
use aiayn::params::Parameters;
use aiayn::softmax::{
    log_softmax_rows, log_softmax_rows_backward, softmax_rows, softmax_rows_backward,
};
use aiayn::sublayer::NormPlacement;
use aiayn::Transformer;
use nalgebra::DMatrix;
use properties_support::{
    layer_sizes, random_decoder_layer, random_encoder_layer, random_multi_head, random_stacks, rng,
    scramble_ffn, scramble_norm, uniform,
};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rand::Rng;

const H: f64 = 1e-5;

fn cases(n: u32) -> ProptestConfig {
    properties_support::config_with_cases(REGRESSIONS, n)
}

fn close(analytic: f64, numeric: f64) -> bool {
    (analytic - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs()
}

/// Central differences of `loss` along one coordinate, set by `at(h)`, agreeing with
/// `analytic`: first with step H, and, only if that disagrees, with step H / 16. A ReLU whose
/// input lies within H of 0 makes the first step straddle the kink, where no derivative is
/// approximated; the smaller step then sees one side only. A wrong derivative fails both.
fn agrees(analytic: f64, loss_at: impl Fn(f64) -> f64) -> Result<(), f64> {
    let mut numeric = 0.0;
    for h in [H, H / 16.0] {
        numeric = (loss_at(h) - loss_at(-h)) / (2.0 * h);
        if close(analytic, numeric) {
            return Ok(());
        }
    }
    Err(numeric)
}

/// sum(y * w).
fn weighted(y: &DMatrix<f64>, w: &DMatrix<f64>) -> f64 {
    y.component_mul(w).sum()
}

/// Checks `grad` = dL/dx by central differences of `loss` at every entry of `x`.
fn assert_input_grad(
    what: &str,
    x: &DMatrix<f64>,
    grad: &DMatrix<f64>,
    loss: impl Fn(&DMatrix<f64>) -> f64,
) {
    assert_eq!(x.shape(), grad.shape(), "{what}: gradient shape");
    for idx in 0..x.len() {
        let moved = |h: f64| {
            let mut y = x.clone();
            y[idx] += h;
            loss(&y)
        };
        if let Err(numeric) = agrees(grad[idx], moved) {
            panic!(
                "{what}[{idx}]: backward {} but finite differences {numeric}",
                grad[idx]
            );
        }
    }
}

/// Checks every parameter gradient in `grads` by central differences of `loss` at `p`.
fn assert_param_grads<P: Parameters<f64> + Clone>(p: &P, grads: &P, loss: impl Fn(&P) -> f64) {
    let names: Vec<(String, usize)> = p
        .params()
        .iter()
        .map(|t| (t.name.clone(), t.data.len()))
        .collect();
    let g = grads.params();
    assert_eq!(
        names.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
        g.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        "the gradients name the parameters, in order"
    );
    for (t, (name, len)) in names.iter().enumerate() {
        assert_eq!(g[t].data.len(), *len, "{name}: gradient size");
        for e in 0..*len {
            let moved = |h: f64| {
                let mut q = p.clone();
                q.params_mut()[t].data[e] += h;
                loss(&q)
            };
            if let Err(numeric) = agrees(g[t].data[e], moved) {
                panic!(
                    "{name}[{e}]: backward {} but finite differences {numeric}",
                    g[t].data[e]
                );
            }
        }
    }
}

/// A random mask of shape (n, m) in which each pair is allowed with probability 3/4 (so some
/// rows are fully masked when m is small).
fn random_mask(n: usize, m: usize, r: &mut impl rand::Rng) -> Mask {
    Mask::from_fn(n, m, |_, _| r.random_range(0..4) != 0)
}

proptest! {
    #![proptest_config(cases(64))]

    // verifies: eq:softmax-backward (gradient)
    #[test]
    fn softmax_backward_matches_finite_differences(seed in any::<u64>(), n in 1..=4usize, m in 1..=6usize) {
        let mut r = rng(seed);
        let x = uniform(n, m, 4.0, &mut r);
        let w = uniform(n, m, 1.0, &mut r);
        let y = softmax_rows(&x);
        assert_input_grad("x", &x, &softmax_rows_backward(&y, &w), |x| weighted(&softmax_rows(x), &w));
    }

    // verifies: eq:log-softmax-backward (gradient)
    #[test]
    fn log_softmax_backward_matches_finite_differences(seed in any::<u64>(), n in 1..=4usize, m in 1..=6usize) {
        let mut r = rng(seed);
        let x = uniform(n, m, 4.0, &mut r);
        let w = uniform(n, m, 1.0, &mut r);
        let log_y = log_softmax_rows(&x);
        assert_input_grad("x", &x, &log_softmax_rows_backward(&log_y, &w), |x| weighted(&log_softmax_rows(x), &w));
    }

    // verifies: eq:attention-backward (gradient)
    #[test]
    fn attention_backward_matches_finite_differences(
        seed in any::<u64>(), n in 1..=4usize, m in 1..=5usize, d_k in 1..=4usize, d_v in 1..=4usize, masked in any::<bool>()
    ) {
        let mut r = rng(seed);
        let (q, k, v) = (uniform(n, d_k, 2.0, &mut r), uniform(m, d_k, 2.0, &mut r), uniform(m, d_v, 2.0, &mut r));
        let mask = masked.then(|| random_mask(n, m, &mut r));
        let w = uniform(n, d_v, 1.0, &mut r);
        let a = scaled_dot_product_attention(&q, &k, &v, mask.as_ref());
        let g = scaled_dot_product_attention_backward(&q, &k, &v, &a.weights, &w);
        let out = |q: &DMatrix<f64>, k: &DMatrix<f64>, v: &DMatrix<f64>| {
            weighted(&scaled_dot_product_attention(q, k, v, mask.as_ref()).output, &w)
        };
        assert_input_grad("Q", &q, &g.d_q, |q| out(q, &k, &v));
        assert_input_grad("K", &k, &g.d_k, |k| out(&q, k, &v));
        assert_input_grad("V", &v, &g.d_v, |v| out(&q, &k, v));
    }

    // verifies: eq:multi-head-backward (gradient)
    #[test]
    fn multi_head_backward_matches_finite_differences(
        seed in any::<u64>(), s in layer_sizes(), n in 1..=4usize, m in 1..=5usize, masked in any::<bool>()
    ) {
        let mut r = rng(seed);
        let mha = random_multi_head(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, &mut r);
        let (query, key, value) = (
            uniform(n, s.d_model, 2.0, &mut r),
            uniform(m, s.d_model, 2.0, &mut r),
            uniform(m, s.d_model, 2.0, &mut r),
        );
        let mask = masked.then(|| random_mask(n, m, &mut r));
        let w = uniform(n, s.d_model, 1.0, &mut r);
        let full = mask.clone().unwrap_or_else(|| Mask::full(n, m));
        let (out, cache) = mha.forward_train(&query, &key, &value, &[full]);
        prop_assert_eq!(&out, &mha.forward(&query, &key, &value, mask.as_ref()));
        let g = mha.backward(&cache, &w);
        let loss = |p: &aiayn::multi_head::MultiHeadAttention<f64>, q: &DMatrix<f64>, k: &DMatrix<f64>, v: &DMatrix<f64>| {
            weighted(&p.forward(q, k, v, mask.as_ref()).output, &w)
        };
        assert_input_grad("query", &query, &g.d_query, |x| loss(&mha, x, &key, &value));
        assert_input_grad("key", &key, &g.d_key, |x| loss(&mha, &query, x, &value));
        assert_input_grad("value", &value, &g.d_value, |x| loss(&mha, &query, &key, x));
        assert_param_grads(&mha, &g.params, |p| loss(p, &query, &key, &value));
    }

    // verifies: eq:ffn-backward (gradient)
    #[test]
    fn ffn_backward_matches_finite_differences(seed in any::<u64>(), d_model in 1..=6usize, d_ff in 1..=8usize, n in 1..=4usize) {
        let mut r = rng(seed);
        let mut ffn = FeedForward::<f64>::new(d_model, d_ff, &mut r);
        scramble_ffn(&mut ffn, &mut r);
        let x = uniform(n, d_model, 2.0, &mut r);
        let w = uniform(n, d_model, 1.0, &mut r);
        let (y, cache) = ffn.forward_train(&x);
        prop_assert_eq!(&y, &ffn.forward(&x));
        let (d_x, g) = ffn.backward(&cache, &w);
        assert_input_grad("x", &x, &d_x, |x| weighted(&ffn.forward(x), &w));
        assert_param_grads(&ffn, &g, |p| weighted(&p.forward(&x), &w));
    }

    // verifies: eq:layer-norm-backward (gradient)
    #[test]
    fn layer_norm_backward_matches_finite_differences(seed in any::<u64>(), d in 1..=8usize, n in 1..=4usize, eps_exp in 1..=6i32) {
        let mut r = rng(seed);
        let mut norm = LayerNorm::<f64>::new(d, 10f64.powi(-eps_exp));
        scramble_norm(&mut norm, &mut r);
        let x = uniform(n, d, 3.0, &mut r);
        let w = uniform(n, d, 1.0, &mut r);
        let (y, cache) = norm.forward_train(&x);
        prop_assert!(properties_support::max_abs_diff(&y, &norm.forward(&x)) <= 1e-14);
        let (d_x, g) = norm.backward(&cache, &w);
        assert_input_grad("x", &x, &d_x, |x| weighted(&norm.forward(x), &w));
        assert_param_grads(&norm, &g, |p| weighted(&p.forward(&x), &w));
    }
}

proptest! {
    #![proptest_config(cases(24))]

    // verifies: eq:sublayer-backward (gradient)
    #[test]
    fn encoder_layer_backward_matches_finite_differences(seed in any::<u64>(), s in layer_sizes(), n in 1..=4usize, pad in 0..=2usize) {
        let mut r = rng(seed);
        let layer = random_encoder_layer(&s, &mut r);
        let x = uniform(n, s.d_model, 2.0, &mut r);
        let padding: Vec<bool> = (0..n).map(|i| i + pad >= n && i > 0).collect();
        let mask = Mask::padding(n, &padding);
        let w = uniform(n, s.d_model, 1.0, &mut r);
        let (y, cache) = layer.forward_train(&x, std::slice::from_ref(&mask), &mut Dropout::off());
        prop_assert!(properties_support::max_abs_diff(&y, &layer.forward(&x, Some(&mask))) <= 1e-12);
        let (d_x, g) = layer.backward(&cache, &w);
        assert_input_grad("x", &x, &d_x, |x| weighted(&layer.forward(x, Some(&mask)), &w));
        assert_param_grads(&layer, &g, |p| weighted(&p.forward(&x, Some(&mask)), &w));
    }

    // verifies: eq:sublayer-backward, eq:multi-head-backward (gradient)
    #[test]
    fn decoder_layer_backward_matches_finite_differences(
        seed in any::<u64>(), s in layer_sizes(), n_t in 1..=4usize, n_s in 1..=4usize, pad in 0..=2usize
    ) {
        let mut r = rng(seed);
        let layer = random_decoder_layer(&s, &mut r);
        let y = uniform(n_t, s.d_model, 2.0, &mut r);
        let memory = uniform(n_s, s.d_model, 2.0, &mut r);
        let padding: Vec<bool> = (0..n_s).map(|i| i + pad >= n_s && i > 0).collect();
        let causal = Mask::causal(n_t);
        let memory_mask = Mask::padding(n_t, &padding);
        let w = uniform(n_t, s.d_model, 1.0, &mut r);
        let run = |p: &aiayn::decoder::DecoderLayer<f64>, y: &DMatrix<f64>, mem: &DMatrix<f64>| {
            p.forward(y, mem, Some(&causal), Some(&memory_mask))
        };
        let (out, cache) = layer.forward_train(&y, &memory, std::slice::from_ref(&causal), std::slice::from_ref(&memory_mask), &mut Dropout::off());
        prop_assert!(properties_support::max_abs_diff(&out, &run(&layer, &y, &memory)) <= 1e-12);
        let (d_y, d_memory, g) = layer.backward(&cache, &w);
        assert_input_grad("y", &y, &d_y, |y| weighted(&run(&layer, y, &memory), &w));
        assert_input_grad("memory", &memory, &d_memory, |m| weighted(&run(&layer, &y, m), &w));
        assert_param_grads(&layer, &g, |p| weighted(&run(p, &y, &memory), &w));
    }

    /// Two-layer stacks with a final norm (pre-norm) or without (post-norm).
    // verifies: eq:sublayer-backward (gradient)
    #[test]
    fn stacks_backward_match_finite_differences(seed in any::<u64>(), s in layer_sizes(), n_t in 1..=3usize, n_s in 1..=3usize) {
        let mut r = rng(seed);
        let (encoder, decoder) = random_stacks(&s, &mut r);
        prop_assert_eq!(encoder.final_norm.is_some(), s.placement == NormPlacement::Pre);
        let x = uniform(n_s, s.d_model, 2.0, &mut r);
        let y = uniform(n_t, s.d_model, 2.0, &mut r);
        let causal = Mask::causal(n_t);
        let w_enc = uniform(n_s, s.d_model, 1.0, &mut r);
        let w_dec = uniform(n_t, s.d_model, 1.0, &mut r);
        let (memory, enc_cache) = encoder.forward_train(&x, &[Mask::full(n_s, n_s)], &mut Dropout::off());
        let (d_x, enc_g) = encoder.backward(&enc_cache, &w_enc);
        assert_input_grad("x", &x, &d_x, |x| weighted(&encoder.forward(x, None), &w_enc));
        assert_param_grads(&encoder, &enc_g, |p| weighted(&p.forward(&x, None), &w_enc));
        let (_, dec_cache) = decoder.forward_train(&y, &memory, std::slice::from_ref(&causal), &[Mask::full(n_t, n_s)], &mut Dropout::off());
        let (d_y, d_memory, dec_g) = decoder.backward(&dec_cache, &w_dec);
        let run = |p: &Decoder<f64>, y: &DMatrix<f64>, m: &DMatrix<f64>| weighted(&p.forward(y, m, Some(&causal), None), &w_dec);
        assert_input_grad("y", &y, &d_y, |y| run(&decoder, y, &memory));
        assert_input_grad("memory", &memory, &d_memory, |m| run(&decoder, &y, m));
        assert_param_grads(&decoder, &dec_g, |p| run(p, &y, &memory));
    }

    /// The whole model, sinusoidal or learned positions, padded source, every parameter
    /// including the shared embedding (three contributions) checked numerically.
    // verifies: eq:embedding-backward, eq:logits-backward, eq:log-softmax-backward (gradient)
    #[test]
    fn model_backward_matches_finite_differences(
        seed in any::<u64>(), s in layer_sizes(), learned in any::<bool>(), n_s in 1..=4usize, n_t in 1..=4usize, vocab in 2..=7usize, pad in 0..=2usize
    ) {
        let mut r = rng(seed);
        let model = random_model(&s, learned, vocab, &mut r);
        let src: Vec<usize> = (0..n_s).map(|_| r.random_range(0..vocab)).collect();
        let tgt: Vec<usize> = (0..n_t).map(|_| r.random_range(0..vocab)).collect();
        let padding: Vec<bool> = (0..n_s).map(|i| i + pad >= n_s && i > 0).collect();
        let w = uniform(n_t, vocab, 1.0, &mut r);
        let (log_probs, cache) = model.forward_train(std::slice::from_ref(&src), std::slice::from_ref(&tgt), std::slice::from_ref(&padding), &mut Dropout::off());
        prop_assert!(properties_support::max_abs_diff(&log_probs, &model.forward(&src, &tgt, Some(&padding))) <= 1e-12);
        let g = model.backward(&cache, &w);
        assert_param_grads(&model, &g, |p| weighted(&p.forward(&src, &tgt, Some(&padding)), &w));
    }

    /// With dropout on, the backward pass is the derivative of the same dropped-out function:
    /// the same seed draws the same masks, so finite differences of `forward_train` see them.
    // verifies: eq:dropout (gradient)
    #[test]
    fn backward_through_dropout_matches_finite_differences(seed in any::<u64>(), s in layer_sizes(), n in 1..=3usize, vocab in 2..=5usize, p in 0.05..0.5f64) {
        let mut r = rng(seed);
        let model = random_model(&s, false, vocab, &mut r);
        let src: Vec<usize> = (0..n).map(|_| r.random_range(0..vocab)).collect();
        let tgt: Vec<usize> = (0..n).map(|_| r.random_range(0..vocab)).collect();
        let w = uniform(n, vocab, 1.0, &mut r);
        let drop_seed = r.random::<u64>();
        let no_padding = vec![false; n];
        let (_, cache) = model.forward_train(std::slice::from_ref(&src), std::slice::from_ref(&tgt), std::slice::from_ref(&no_padding), &mut Dropout::new(p, drop_seed));
        let g = model.backward(&cache, &w);
        assert_param_grads(&model, &g, |m| {
            weighted(&m.forward_train(std::slice::from_ref(&src), std::slice::from_ref(&tgt), std::slice::from_ref(&no_padding), &mut Dropout::new(p, drop_seed)).0, &w)
        });
    }
}

/// A random 2 + 2-layer model with learned positions covering 8 (see `properties_support`).
fn random_model(
    s: &LayerSizes,
    learned: bool,
    vocab: usize,
    r: &mut impl rand::Rng,
) -> Transformer<f64> {
    properties_support::random_model(s, learned, 8, vocab, r)
}
