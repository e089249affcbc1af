//! §3.1 and §3.3: LayerNorm, the residual sub-layer connection, the position-wise
//! feed-forward network (Eq. 2), and the encoder and decoder layers built from them.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_layers.txt";

use aiayn::decoder::Decoder;
use aiayn::encoder::Encoder;
use aiayn::feed_forward::FeedForward;
use aiayn::layer_norm::LayerNorm;
use aiayn::mask::Mask;
use aiayn::sublayer::{residual, NormPlacement};
use approx::{assert_abs_diff_eq, assert_relative_eq};
use nalgebra::{DMatrix, RowDVector};
use properties_support::{
    config, layer_sizes, matrix, permutation, permute_rows, random_decoder_layer,
    random_encoder_layer, rng, row, uniform,
};
use proptest::prelude::*;

/// An FFN with d_model <= 8, d_ff <= 16 and every weight and bias uniform in [-1, 1).
fn ffn() -> impl Strategy<Value = FeedForward<f64>> {
    (1..=8usize, 1..=16usize).prop_flat_map(|(d_model, d_ff)| {
        (
            matrix(d_model, d_ff, -1.0, 1.0),
            row(d_ff, -1.0, 1.0),
            matrix(d_ff, d_model, -1.0, 1.0),
            row(d_model, -1.0, 1.0),
        )
            .prop_map(|(w_1, b_1, w_2, b_2)| FeedForward { w_1, b_1, w_2, b_2 })
    })
}

/// An FFN and an input of n <= 8 positions.
fn ffn_and_input() -> impl Strategy<Value = (FeedForward<f64>, DMatrix<f64>)> {
    (ffn(), 1..=8usize).prop_flat_map(|(f, n)| {
        let d = f.w_1.nrows();
        (Just(f), matrix(n, d, -3.0, 3.0))
    })
}

/// Rows of width 2..=16 whose entries are not all (nearly) equal: spread >= 0.1.
fn spread_rows() -> impl Strategy<Value = DMatrix<f64>> {
    (1..=8usize, 2..=16usize)
        .prop_flat_map(|(n, d)| matrix(n, d, -10.0, 10.0))
        .prop_filter("every row needs some spread", |x| {
            x.row_iter().all(|r| r.max() - r.min() >= 0.1)
        })
}

fn row_mean(r: &RowDVector<f64>) -> f64 {
    r.sum() / r.len() as f64
}

/// The biased variance (divide by d), as LayerNorm uses.
fn row_variance(r: &RowDVector<f64>) -> f64 {
    let m = row_mean(r);
    r.iter().map(|x| (x - m).powi(2)).sum::<f64>() / r.len() as f64
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:layer-norm (property)
    fn layer_norm_rows_have_mean_zero_and_variance_one(
        (x, eps) in (spread_rows(), prop_oneof![Just(0.0), 1e-12..1e-5f64])
    ) {
        // With gain 1 and bias 0 a row is (x - mean) / sqrt(var + eps), whose variance is
        // var / (var + eps): exactly 1 for eps = 0, and below 1 by at most eps / var otherwise.
        let y = LayerNorm::new(x.ncols(), eps).forward(&x);
        for (r_in, r_out) in x.row_iter().zip(y.row_iter()) {
            let var_in = row_variance(&r_in.into_owned());
            let r_out = r_out.into_owned();
            assert_abs_diff_eq!(row_mean(&r_out), 0.0, epsilon = 1e-12);
            let var_out = row_variance(&r_out);
            prop_assert!(var_out <= 1.0 + 1e-12, "variance {var_out} above 1");
            prop_assert!(
                var_out >= 1.0 - eps / var_in - 1e-12,
                "variance {var_out} below 1 - eps / var = {}", 1.0 - eps / var_in
            );
        }
    }

    #[test]
    // verifies: eq:layer-norm (property)
    fn layer_norm_is_invariant_to_scaling_and_shifting_a_row(
        (x, scale, shift) in spread_rows().prop_flat_map(|x| {
            let n = x.nrows();
            (
                Just(x),
                prop::collection::vec(0.1..10.0f64, n),
                prop::collection::vec(-100.0..100.0f64, n),
            )
        })
    ) {
        // eps = 0, so the invariance is exact in exact arithmetic; a shift of 100 on entries
        // of 10 loses about 2 decimal digits to cancellation, well inside 1e-9.
        let norm = LayerNorm::new(x.ncols(), 0.0);
        let moved = DMatrix::from_fn(x.nrows(), x.ncols(), |i, j| scale[i] * x[(i, j)] + shift[i]);
        assert_abs_diff_eq!(norm.forward(&moved), norm.forward(&x), epsilon = 1e-9);
    }

    #[test]
    // verifies: eq:layer-norm (property)
    fn layer_norm_applies_gain_and_bias_per_feature_after_normalising(
        (x, gain, bias) in spread_rows().prop_flat_map(|x| {
            let d = x.ncols();
            (Just(x), row(d, -2.0, 2.0), row(d, -2.0, 2.0))
        })
    ) {
        let plain = LayerNorm::new(x.ncols(), 1e-6).forward(&x);
        let scaled = LayerNorm { gain: gain.clone(), bias: bias.clone(), eps: 1e-6 }.forward(&x);
        for (p, s) in plain.row_iter().zip(scaled.row_iter()) {
            let want = p.component_mul(&gain) + &bias;
            assert_abs_diff_eq!(s.into_owned(), want, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:sublayer, eq:layer-norm (property)
    fn post_norm_sublayer_is_layer_norm_of_x_plus_f_of_x(
        (x, a, gain, bias) in spread_rows().prop_flat_map(|x| {
            let d = x.ncols();
            (Just(x), matrix(d, d, -1.0, 1.0), row(d, 0.5, 2.0), row(d, -1.0, 1.0))
        })
    ) {
        // f(x) = tanh(x A): a simple sub-layer that is neither linear nor position-free.
        let f = |x: &DMatrix<f64>| (x * &a).map(f64::tanh);
        let norm = LayerNorm { gain, bias, eps: 1e-6 };
        let got = residual(&x, &norm, NormPlacement::Post, f);
        let want = norm.forward(&(&x + f(&x)));
        assert_abs_diff_eq!(got, want, epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:sublayer, eq:layer-norm (property)
    fn pre_norm_sublayer_is_x_plus_f_of_layer_norm_of_x(
        (x, a, gain, bias) in spread_rows().prop_flat_map(|x| {
            let d = x.ncols();
            (Just(x), matrix(d, d, -1.0, 1.0), row(d, 0.5, 2.0), row(d, -1.0, 1.0))
        })
    ) {
        let f = |x: &DMatrix<f64>| (x * &a).map(f64::tanh);
        let norm = LayerNorm { gain, bias, eps: 1e-6 };
        let got = residual(&x, &norm, NormPlacement::Pre, f);
        let want = &x + f(&norm.forward(&x));
        assert_abs_diff_eq!(got, want, epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:ffn (property)
    fn ffn_row_i_depends_on_row_i_only(
        ((f, x), j, new_row) in ffn_and_input().prop_flat_map(|(f, x)| {
            let (n, d) = x.shape();
            (Just((f, x)), 0..n, row(d, -3.0, 3.0))
        })
    ) {
        let mut x2 = x.clone();
        x2.set_row(j, &new_row);
        let y = f.forward(&x);
        let y2 = f.forward(&x2);
        for i in (0..x.nrows()).filter(|&i| i != j) {
            assert_abs_diff_eq!(y2.row(i), y.row(i), epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:ffn (property)
    fn ffn_of_a_decoding_step_is_the_ffn((f, x) in ffn_and_input()) {
        // forward_step computes its products another way for up to 5 rows (a decoding step
        // has one); it must give the same values, up to rounding, for any number of rows
        assert_abs_diff_eq!(f.forward_step(&x), f.forward(&x), epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:ffn (property)
    fn ffn_of_a_single_row_is_that_row_of_ffn_of_the_matrix((f, x) in ffn_and_input()) {
        let y = f.forward(&x);
        for i in 0..x.nrows() {
            let one = f.forward(&x.rows(i, 1).into_owned());
            assert_abs_diff_eq!(one.row(0), y.row(i), epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:ffn (property)
    fn ffn_without_biases_is_positively_homogeneous(
        ((mut f, x), c) in (ffn_and_input(), 0.01..100.0f64)
    ) {
        // max(0, c z) = c max(0, z) for c > 0, and the rest is linear: FFN(c x) = c FFN(x)
        // when b_1 = b_2 = 0. A smooth activation (GELU, tanh) would break this; a leaky ReLU
        // would not, and `ffn_whose_relu_never_fires_outputs_b_2` is what tells the two apart.
        f.b_1.fill(0.0);
        f.b_2.fill(0.0);
        let y = f.forward(&x);
        let yc = f.forward(&(&x * c));
        for (a, b) in yc.iter().zip(y.iter()) {
            assert_relative_eq!(*a, c * b, max_relative = 1e-12, epsilon = 1e-12 * c);
        }
    }

    #[test]
    // verifies: eq:ffn (property)
    fn ffn_whose_relu_never_fires_outputs_b_2((mut f, x) in ffn_and_input()) {
        // |x W_1| <= 3 * 8 = 24 < 100, so with b_1 = -100 every hidden unit is negative and
        // max(0, .) zeroes it: what is left is b_2 on every row.
        f.b_1.fill(-100.0);
        let y = f.forward(&x);
        for r in y.row_iter() {
            assert_abs_diff_eq!(r.into_owned(), f.b_2.clone(), epsilon = 0.0);
        }
    }
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:sublayer (property)
    fn encoder_layer_is_self_attention_then_ffn_each_in_a_residual(
        (s, n, seed) in (layer_sizes(), 1..=8usize, any::<u64>())
    ) {
        // Rebuilt from the paper's two lines, with the layer's own parts:
        //   z = LayerNorm(x + MultiHead(x, x, x)),  y = LayerNorm(z + FFN(z))   (post-norm)
        //   z = x + MultiHead(LN(x) x3),            y = z + FFN(LN(z))           (pre-norm)
        let mut rng = rng(seed);
        let layer = random_encoder_layer(&s, &mut rng);
        let x = uniform(n, s.d_model, 2.0, &mut rng);
        let attn = |x: &DMatrix<f64>| layer.self_attn.forward(x, x, x, None).output;
        let want = match s.placement {
            NormPlacement::Post => {
                let z = layer.norm_1.forward(&(&x + attn(&x)));
                layer.norm_2.forward(&(&z + layer.ffn.forward(&z)))
            }
            NormPlacement::Pre => {
                let z = &x + attn(&layer.norm_1.forward(&x));
                &z + layer.ffn.forward(&layer.norm_2.forward(&z))
            }
        };
        assert_abs_diff_eq!(layer.forward(&x, None), want, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:sublayer (property)
    fn decoder_layer_is_masked_self_attention_then_cross_attention_then_ffn(
        (s, n_t, n_s, seed) in (layer_sizes(), 1..=8usize, 1..=8usize, any::<u64>())
    ) {
        let mut rng = rng(seed);
        let layer = random_decoder_layer(&s, &mut rng);
        let y = uniform(n_t, s.d_model, 2.0, &mut rng);
        let memory = uniform(n_s, s.d_model, 2.0, &mut rng);
        let causal = Mask::causal(n_t);
        let self_attn = |a: &DMatrix<f64>| layer.self_attn.forward(a, a, a, Some(&causal)).output;
        // Queries from the decoder, keys and values from the encoder output.
        let cross = |a: &DMatrix<f64>| layer.cross_attn.forward(a, &memory, &memory, None).output;
        let want = match s.placement {
            NormPlacement::Post => {
                let a = layer.norm_1.forward(&(&y + self_attn(&y)));
                let b = layer.norm_2.forward(&(&a + cross(&a)));
                layer.norm_3.forward(&(&b + layer.ffn.forward(&b)))
            }
            NormPlacement::Pre => {
                let a = &y + self_attn(&layer.norm_1.forward(&y));
                let b = &a + cross(&layer.norm_2.forward(&a));
                &b + layer.ffn.forward(&layer.norm_3.forward(&b))
            }
        };
        let got = layer.forward(&y, &memory, Some(&causal), None);
        assert_abs_diff_eq!(got, want, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:sublayer, eq:multi-head (property)
    fn encoder_stack_is_permutation_equivariant(
        ((s, n_layers, seed), perm) in (layer_sizes(), 1..=3usize, any::<u64>())
            .prop_flat_map(|c| (Just(c), (1..=8usize).prop_flat_map(permutation)))
    ) {
        // Self-attention, the FFN and LayerNorm all treat positions alike, so without
        // positional encodings a whole encoder cannot tell positions apart.
        let mut rng = rng(seed);
        let n = perm.len();
        let encoder = Encoder::new(n_layers, &s, &mut rng);
        let x = uniform(n, s.d_model, 2.0, &mut rng);
        let y = encoder.forward(&x, None);
        let yp = encoder.forward(&permute_rows(&x, &perm), None);
        assert_abs_diff_eq!(yp, permute_rows(&y, &perm), epsilon = 1e-9);
    }

    #[test]
    // verifies: eq:sublayer, eq:multi-head (property)
    fn decoder_stack_is_unchanged_by_permuting_the_memory(
        ((s, n_layers, n_t, seed), perm) in (layer_sizes(), 1..=3usize, 1..=8usize, any::<u64>())
            .prop_flat_map(|c| (Just(c), (1..=8usize).prop_flat_map(permutation)))
    ) {
        // Encoder-decoder attention reads the memory as a set of (key, value) pairs.
        let mut rng = rng(seed);
        let n_s = perm.len();
        let decoder = Decoder::new(n_layers, &s, &mut rng);
        let y = uniform(n_t, s.d_model, 2.0, &mut rng);
        let memory = uniform(n_s, s.d_model, 2.0, &mut rng);
        let causal = Mask::causal(n_t);
        let a = decoder.forward(&y, &memory, Some(&causal), None);
        let b = decoder.forward(&y, &permute_rows(&memory, &perm), Some(&causal), None);
        assert_abs_diff_eq!(b, a, epsilon = 1e-9);
    }

    #[test]
    // verifies: eq:sublayer (property)
    fn stacks_are_their_layers_in_sequence(
        (s, n_layers, n, seed) in (layer_sizes(), 1..=3usize, 1..=8usize, any::<u64>())
    ) {
        // The stacks add nothing between layers; the final LayerNorm exists for pre-norm only
        // (the paper's post-norm stack ends with the last layer's own norm).
        let mut rng = rng(seed);
        let encoder = Encoder::new(n_layers, &s, &mut rng);
        let decoder = Decoder::new(n_layers, &s, &mut rng);
        prop_assert_eq!(encoder.final_norm.is_some(), s.placement == NormPlacement::Pre);
        prop_assert_eq!(decoder.final_norm.is_some(), s.placement == NormPlacement::Pre);
        let x = uniform(n, s.d_model, 2.0, &mut rng);
        let mut want = x.clone();
        for layer in &encoder.layers {
            want = layer.forward(&want, None);
        }
        if let Some(norm) = &encoder.final_norm {
            want = norm.forward(&want);
        }
        assert_abs_diff_eq!(encoder.forward(&x, None), want, epsilon = 1e-12);
        let causal = Mask::causal(n);
        let mut want = x.clone();
        for layer in &decoder.layers {
            want = layer.forward(&want, &x, Some(&causal), None);
        }
        if let Some(norm) = &decoder.final_norm {
            want = norm.forward(&want);
        }
        assert_abs_diff_eq!(decoder.forward(&x, &x, Some(&causal), None), want, epsilon = 1e-12);
    }
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:sublayer (property)
    fn decoder_weights_come_from_the_same_pass_as_forward_and_rows_are_distributions(
        (s, n_layers, n_t, n_s, pad_last, seed) in
            (layer_sizes(), 1..=3usize, 1..=8usize, 2..=8usize, any::<bool>(), any::<u64>())
    ) {
        // forward_with_weights is the appendix's view of the same pass: equal outputs, and
        // weights that are what attention weights must be: each row a distribution, nothing
        // above the diagonal in the masked self-attention, nothing on a padded source word.
        let mut rng = rng(seed);
        let decoder = Decoder::new(n_layers, &s, &mut rng);
        let y = uniform(n_t, s.d_model, 2.0, &mut rng);
        let memory = uniform(n_s, s.d_model, 2.0, &mut rng);
        let causal = Mask::causal(n_t);
        let mut padding = vec![false; n_s];
        padding[n_s - 1] = pad_last;
        let memory_mask = Mask::padding(n_t, &padding);
        let want = decoder.forward(&y, &memory, Some(&causal), Some(&memory_mask));
        let (got, weights) =
            decoder.forward_with_weights(&y, &memory, Some(&causal), Some(&memory_mask));
        assert_abs_diff_eq!(got, want, epsilon = 1e-12);
        prop_assert_eq!(weights.len(), n_layers);
        for layer in &weights {
            prop_assert_eq!(layer.self_attn.len(), s.h);
            prop_assert_eq!(layer.cross_attn.len(), s.h);
            for w in &layer.self_attn {
                prop_assert_eq!(w.shape(), (n_t, n_t));
                for i in 0..n_t {
                    assert_abs_diff_eq!(w.row(i).sum(), 1.0, epsilon = 1e-12);
                    for j in 0..n_t {
                        prop_assert!(w[(i, j)] >= 0.0);
                        if j > i {
                            prop_assert_eq!(w[(i, j)], 0.0);
                        }
                    }
                }
            }
            for w in &layer.cross_attn {
                prop_assert_eq!(w.shape(), (n_t, n_s));
                for i in 0..n_t {
                    assert_abs_diff_eq!(w.row(i).sum(), 1.0, epsilon = 1e-12);
                    prop_assert!(w.row(i).iter().all(|&x| x >= 0.0));
                    if pad_last {
                        prop_assert_eq!(w[(i, n_s - 1)], 0.0);
                    }
                }
            }
        }
    }
}
