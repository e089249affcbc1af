//! §3.2.3 The three uses of attention and their masks.
//!
//! A masked score is -inf, so its weight is exactly zero: whatever sits at a masked key cannot
//! reach the output. In decoder self-attention the causal mask makes output i a function of
//! inputs 0..=i only; in every attention the padding mask makes padded keys invisible. The
//! claims are checked on Eq. 1 itself, on multi-head attention, and on whole layers.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_masks.txt";

use aiayn::attention::scaled_dot_product_attention;
use aiayn::mask::Mask;
use approx::assert_abs_diff_eq;
use nalgebra::DMatrix;
use properties_support::{
    config, layer_sizes, matrix, random_decoder_layer, random_encoder_layer, random_multi_head,
    rng, uniform,
};
use proptest::prelude::*;

type Qkv = (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>);

/// Q (n, d_k), K (m, d_k), V (m, d_v) with entries in [-3, 3).
fn qkv(n: usize, m: usize, d_k: usize, d_v: usize) -> impl Strategy<Value = Qkv> {
    (
        matrix(n, d_k, -3.0, 3.0),
        matrix(m, d_k, -3.0, 3.0),
        matrix(m, d_v, -3.0, 3.0),
    )
}

/// Self-attention inputs of one length n, a second set of inputs of the same shapes, and a
/// position i after which the second set is spliced in.
fn causal_case() -> impl Strategy<Value = (Qkv, Qkv, usize)> {
    (1..=8usize, 1..=8usize, 1..=8usize)
        .prop_flat_map(|(n, d_k, d_v)| (qkv(n, n, d_k, d_v), qkv(n, n, d_k, d_v), 0..n))
}

/// m padding flags, at least one of them false (a real key).
fn padding_flags(m: usize) -> impl Strategy<Value = Vec<bool>> {
    (prop::collection::vec(any::<bool>(), m), 0..m).prop_map(|(mut pad, real)| {
        pad[real] = false;
        pad
    })
}

/// Attention inputs with n queries and m keys, a padding flag per key (at least one real),
/// and replacement keys and values.
fn padding_case() -> impl Strategy<Value = (Qkv, Vec<bool>, DMatrix<f64>, DMatrix<f64>)> {
    (1..=8usize, 1..=8usize, 1..=8usize, 1..=8usize).prop_flat_map(|(n, m, d_k, d_v)| {
        (
            qkv(n, m, d_k, d_v),
            padding_flags(m),
            matrix(m, d_k, -3.0, 3.0),
            matrix(m, d_v, -3.0, 3.0),
        )
    })
}

/// Rows 0..=i of `x`, rows i+1.. of `other`.
fn splice_after(x: &DMatrix<f64>, other: &DMatrix<f64>, i: usize) -> DMatrix<f64> {
    DMatrix::from_fn(x.nrows(), x.ncols(), |r, c| {
        if r <= i {
            x[(r, c)]
        } else {
            other[(r, c)]
        }
    })
}

/// `x` with its padded rows taken from `other`.
fn replace_padded(x: &DMatrix<f64>, other: &DMatrix<f64>, pad: &[bool]) -> DMatrix<f64> {
    DMatrix::from_fn(x.nrows(), x.ncols(), |r, c| {
        if pad[r] {
            other[(r, c)]
        } else {
            x[(r, c)]
        }
    })
}

/// The rows of `x` whose flag is false.
fn real_rows(x: &DMatrix<f64>, pad: &[bool]) -> DMatrix<f64> {
    let keep: Vec<usize> = (0..x.nrows()).filter(|&r| !pad[r]).collect();
    x.select_rows(keep.iter())
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:causal-mask (property)
    fn causal_mask_lets_query_i_see_exactly_the_keys_up_to_i(n in 1..=8usize) {
        let mask = Mask::causal(n);
        prop_assert_eq!(mask.shape(), (n, n));
        for i in 0..n {
            for j in 0..n {
                prop_assert_eq!(mask.allows(i, j), j <= i, "({}, {})", i, j);
            }
        }
    }

    #[test]
    // verifies: eq:causal-mask (property)
    fn causal_suffix_is_the_last_rows_of_the_causal_mask(
        (n_keys, n_queries) in (1..=8usize).prop_flat_map(|m| (Just(m), 1..=m))
    ) {
        // Incremental decoding: n_queries new positions at the end of n_keys.
        let full = Mask::causal(n_keys);
        let suffix = Mask::causal_suffix(n_queries, n_keys);
        let offset = n_keys - n_queries;
        for i in 0..n_queries {
            for j in 0..n_keys {
                prop_assert_eq!(suffix.allows(i, j), full.allows(offset + i, j));
            }
        }
    }

    #[test]
    // verifies: eq:causal-mask (property)
    fn combined_masks_allow_exactly_where_both_allow(
        (n, pad) in (1..=8usize).prop_flat_map(|n| (Just(n), prop::collection::vec(any::<bool>(), n)))
    ) {
        let both = Mask::causal(n).and(&Mask::padding(n, &pad));
        for i in 0..n {
            for (j, &padded) in pad.iter().enumerate() {
                prop_assert_eq!(both.allows(i, j), j <= i && !padded);
            }
        }
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn masked_weights_are_exactly_zero_and_the_rest_sum_to_one(
        ((q, k, v), pad, causal) in (1..=8usize, 1..=8usize, 1..=8usize)
            .prop_flat_map(|(n, d_k, d_v)| (
                qkv(n, n, d_k, d_v),
                prop::collection::vec(any::<bool>(), n),
                any::<bool>(),
            ))
    ) {
        // Padding flags may cover every key a query can see: such rows are checked in the
        // next test; here every row is either all zeros or a distribution over allowed keys.
        let n = q.nrows();
        let order = if causal { Mask::causal(n) } else { Mask::full(n, n) };
        let mask = order.and(&Mask::padding(n, &pad));
        let a = scaled_dot_product_attention(&q, &k, &v, Some(&mask));
        for i in 0..n {
            let any_allowed = (0..n).any(|j| mask.allows(i, j));
            for j in 0..n {
                if !mask.allows(i, j) {
                    // exp(-inf) = 0 exactly: the claim is exact.
                    prop_assert_eq!(a.weights[(i, j)], 0.0);
                }
            }
            if any_allowed {
                assert_abs_diff_eq!(a.weights.row(i).sum(), 1.0, epsilon = 1e-12);
            }
        }
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn a_fully_masked_row_gives_zero_weights_and_zero_output_not_nan(
        ((q, k, v), pad) in (1..=8usize, 1..=8usize, 1..=8usize)
            .prop_flat_map(|(n, d_k, d_v)| (
                qkv(n, n, d_k, d_v),
                prop::collection::vec(any::<bool>(), n).prop_map(|mut pad| {
                    pad[0] = true; // query 0 sees key 0 only, which is padding
                    pad
                }),
            ))
    ) {
        let n = q.nrows();
        let mask = Mask::causal(n).and(&Mask::padding(n, &pad));
        let a = scaled_dot_product_attention(&q, &k, &v, Some(&mask));
        prop_assert!(a.weights.iter().all(|w| w.is_finite()));
        prop_assert!(a.output.iter().all(|o| o.is_finite()));
        for i in 0..n {
            if (0..=i).all(|j| pad[j]) {
                // Exactly zero, by the documented convention (softmax of all -inf rows).
                prop_assert!(a.weights.row(i).iter().all(|&w| w == 0.0));
                prop_assert!(a.output.row(i).iter().all(|&o| o == 0.0));
            }
        }
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn under_a_causal_mask_output_i_ignores_inputs_after_i(
        ((q, k, v), (q2, k2, v2), i) in causal_case()
    ) {
        let n = q.nrows();
        let mask = Mask::causal(n);
        let a = scaled_dot_product_attention(&q, &k, &v, Some(&mask));
        let b = scaled_dot_product_attention(
            &splice_after(&q, &q2, i),
            &splice_after(&k, &k2, i),
            &splice_after(&v, &v2, i),
            Some(&mask),
        );
        // The claim is exact (the future's weights are exactly 0); 1e-12 only allows for a
        // matrix product that sums in a different order.
        assert_abs_diff_eq!(b.output.rows(0, i + 1), a.output.rows(0, i + 1), epsilon = 1e-12);
        assert_abs_diff_eq!(b.weights.rows(0, i + 1), a.weights.rows(0, i + 1), epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn causal_output_i_is_attention_over_the_first_i_plus_1_keys(((q, k, v), _, _) in causal_case()) {
        // An independent construction: no mask at all, just fewer keys.
        let n = q.nrows();
        let masked = scaled_dot_product_attention(&q, &k, &v, Some(&Mask::causal(n)));
        for i in 0..n {
            let prefix = scaled_dot_product_attention(
                &q.rows(i, 1).into_owned(),
                &k.rows(0, i + 1).into_owned(),
                &v.rows(0, i + 1).into_owned(),
                None,
            );
            assert_abs_diff_eq!(masked.output.rows(i, 1), prefix.output.rows(0, 1), epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn changing_padded_keys_and_values_leaves_every_output_unchanged(
        ((q, k, v), pad, k2, v2) in padding_case()
    ) {
        let mask = Mask::padding(q.nrows(), &pad);
        let a = scaled_dot_product_attention(&q, &k, &v, Some(&mask));
        let b = scaled_dot_product_attention(
            &q,
            &replace_padded(&k, &k2, &pad),
            &replace_padded(&v, &v2, &pad),
            Some(&mask),
        );
        assert_abs_diff_eq!(b.output, a.output, epsilon = 1e-12);
        assert_abs_diff_eq!(b.weights, a.weights, epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:attention, eq:causal-mask (property)
    fn padded_attention_equals_attention_over_the_real_keys_only(((q, k, v), pad, _, _) in padding_case()) {
        let masked = scaled_dot_product_attention(&q, &k, &v, Some(&Mask::padding(q.nrows(), &pad)));
        let dropped = scaled_dot_product_attention(&q, &real_rows(&k, &pad), &real_rows(&v, &pad), None);
        assert_abs_diff_eq!(masked.output, dropped.output, epsilon = 1e-12);
    }
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:multi-head, eq:causal-mask (property)
    fn under_a_causal_mask_multi_head_output_i_ignores_inputs_after_i(
        (s, n, i, seed) in (layer_sizes(), 1..=8usize)
            .prop_flat_map(|(s, n)| (Just(s), Just(n), 0..n, any::<u64>()))
    ) {
        let mut rng = rng(seed);
        let mha = random_multi_head(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, &mut rng);
        let x = uniform(n, s.d_model, 2.0, &mut rng);
        let x2 = splice_after(&x, &uniform(n, s.d_model, 2.0, &mut rng), i);
        let mask = Mask::causal(n);
        let a = mha.forward(&x, &x, &x, Some(&mask));
        let b = mha.forward(&x2, &x2, &x2, Some(&mask));
        assert_abs_diff_eq!(b.output.rows(0, i + 1), a.output.rows(0, i + 1), epsilon = 1e-12);
        for (wa, wb) in a.weights.iter().zip(&b.weights) {
            assert_abs_diff_eq!(wb.rows(0, i + 1), wa.rows(0, i + 1), epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:multi-head, eq:causal-mask (property)
    fn multi_head_attention_ignores_padded_memory(
        (s, n, pad, seed) in (layer_sizes(), 1..=8usize, 1..=8usize)
            .prop_flat_map(|(s, n, m)| (Just(s), Just(n), padding_flags(m), any::<u64>()))
    ) {
        // Encoder-decoder attention: n queries from the decoder, m keys and values from the
        // encoder output ("memory"), some of them padding.
        let mut rng = rng(seed);
        let m = pad.len();
        let mha = random_multi_head(s.d_model, s.h, s.d_k, s.d_v, s.attention_bias, &mut rng);
        let query = uniform(n, s.d_model, 2.0, &mut rng);
        let memory = uniform(m, s.d_model, 2.0, &mut rng);
        let memory2 = replace_padded(&memory, &uniform(m, s.d_model, 2.0, &mut rng), &pad);
        let mask = Mask::padding(n, &pad);
        let a = mha.forward(&query, &memory, &memory, Some(&mask));
        let b = mha.forward(&query, &memory2, &memory2, Some(&mask));
        assert_abs_diff_eq!(b.output, a.output, epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:causal-mask, eq:sublayer (property)
    fn under_a_causal_mask_decoder_layer_output_i_ignores_target_after_i(
        (s, n_t, n_s, i, seed) in (layer_sizes(), 1..=8usize, 1..=8usize)
            .prop_flat_map(|(s, n_t, n_s)| (Just(s), Just(n_t), Just(n_s), 0..n_t, any::<u64>()))
    ) {
        let mut rng = rng(seed);
        let layer = random_decoder_layer(&s, &mut rng);
        let y = uniform(n_t, s.d_model, 2.0, &mut rng);
        let y2 = splice_after(&y, &uniform(n_t, s.d_model, 2.0, &mut rng), i);
        let memory = uniform(n_s, s.d_model, 2.0, &mut rng);
        let mask = Mask::causal(n_t);
        let a = layer.forward(&y, &memory, Some(&mask), None);
        let b = layer.forward(&y2, &memory, Some(&mask), None);
        // Exact in exact arithmetic; the LayerNorm's division adds rounding of order 1e-16
        // times its gain (|gain| <= 2) over a variance kept away from 0 by the random inputs.
        assert_abs_diff_eq!(b.rows(0, i + 1), a.rows(0, i + 1), epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:causal-mask, eq:sublayer (property)
    fn decoder_layer_ignores_padded_memory(
        (s, n_t, pad, seed) in (layer_sizes(), 1..=8usize, 1..=8usize)
            .prop_flat_map(|(s, n_t, n_s)| (Just(s), Just(n_t), padding_flags(n_s), any::<u64>()))
    ) {
        let mut rng = rng(seed);
        let n_s = pad.len();
        let layer = random_decoder_layer(&s, &mut rng);
        let y = uniform(n_t, s.d_model, 2.0, &mut rng);
        let memory = uniform(n_s, s.d_model, 2.0, &mut rng);
        let memory2 = replace_padded(&memory, &uniform(n_s, s.d_model, 2.0, &mut rng), &pad);
        let causal = Mask::causal(n_t);
        let memory_mask = Mask::padding(n_t, &pad);
        let a = layer.forward(&y, &memory, Some(&causal), Some(&memory_mask));
        let b = layer.forward(&y, &memory2, Some(&causal), Some(&memory_mask));
        assert_abs_diff_eq!(b, a, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:causal-mask, eq:sublayer (property)
    fn encoder_outputs_at_real_positions_ignore_padded_positions(
        (s, pad, seed) in (layer_sizes(), 1..=8usize)
            .prop_flat_map(|(s, n)| (Just(s), padding_flags(n), any::<u64>()))
    ) {
        // Padded positions still get an output (their own residual path sees their input),
        // but no real position may depend on them.
        let mut rng = rng(seed);
        let n = pad.len();
        let layer = random_encoder_layer(&s, &mut rng);
        let x = uniform(n, s.d_model, 2.0, &mut rng);
        let x2 = replace_padded(&x, &uniform(n, s.d_model, 2.0, &mut rng), &pad);
        let mask = Mask::padding(n, &pad);
        let a = layer.forward(&x, Some(&mask));
        let b = layer.forward(&x2, Some(&mask));
        assert_abs_diff_eq!(real_rows(&b, &pad), real_rows(&a, &pad), epsilon = 1e-10);
    }
}

#[test]
fn a_key_column_lists_which_queries_may_see_that_key() {
    // causal over 3 of 5 keys (the last 3 queries of a sequence of 5), then padding on key 3
    let mask =
        Mask::causal_suffix(3, 5).and(&Mask::padding(3, &[false, false, false, true, false]));
    for j in 0..5 {
        let column = mask.key_column(j);
        assert_eq!(column.len(), 3);
        for (i, &allowed) in column.iter().enumerate() {
            assert_eq!(allowed, mask.allows(i, j), "query {i}, key {j}");
        }
    }
    assert_eq!(mask.key_column(4), &[false, false, true]);
    assert_eq!(mask.key_column(3), &[false, false, false]);
}
