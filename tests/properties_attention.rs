//! §3.2.1 Scaled dot-product attention: invariants of the softmax, of Eq. 1, and footnote 4.
//!
//! Eq. 1 says each output row is `sum_j w_ij v_j` with `w_i = softmax(q_i K^T / sqrt(d_k))`, a
//! probability distribution over the keys. Everything below follows from that sentence: the
//! output is a convex combination of the values, attention does not care about the order of
//! the keys, and it treats every query independently.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_attention.txt";

use aiayn::attention::{dot_product_moments, scaled_dot_product_attention};
use aiayn::softmax::{log_softmax_rows, softmax_rows};
use approx::{assert_abs_diff_eq, assert_relative_eq};
use nalgebra::{DMatrix, RowDVector};
use properties_support::{config, matrix, permutation, permute_rows, rng};
use proptest::prelude::*;
use rand::Rng;

/// (n, m) logits in [-50, 50).
fn logits() -> impl Strategy<Value = DMatrix<f64>> {
    (1..=8usize, 1..=8usize).prop_flat_map(|(n, m)| matrix(n, m, -50.0, 50.0))
}

/// Q (n, d_k), K (m, d_k), V (m, d_v) with entries in [-3, 3).
fn qkv() -> impl Strategy<Value = (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>)> {
    (1..=8usize, 1..=8usize, 1..=8usize, 1..=8usize).prop_flat_map(|(n, m, d_k, d_v)| {
        (
            matrix(n, d_k, -3.0, 3.0),
            matrix(m, d_k, -3.0, 3.0),
            matrix(m, d_v, -3.0, 3.0),
        )
    })
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:softmax (property)
    fn rows_of_softmax_are_non_negative_and_sum_to_one(x in logits()) {
        let p = softmax_rows(&x);
        for row in p.row_iter() {
            for &w in row.iter() {
                prop_assert!(w >= 0.0, "negative probability {w}");
            }
            assert_abs_diff_eq!(row.sum(), 1.0, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:softmax (property)
    fn softmax_is_unchanged_by_adding_a_constant_to_a_row(
        (x, c) in logits().prop_flat_map(|x| {
            let n = x.nrows();
            (Just(x), prop::collection::vec(-100.0..100.0f64, n))
        })
    ) {
        // A different constant for every row: the rows are independent distributions.
        let shifted = DMatrix::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] + c[i]);
        // Logits up to 150 in magnitude carry an absolute rounding error of ~150 * 2^-52, which
        // the exponential turns into a relative error of the same size: 1e-12 is ample.
        assert_abs_diff_eq!(softmax_rows(&shifted), softmax_rows(&x), epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:softmax (property)
    fn softmax_of_logits_up_to_1e4_does_not_overflow(
        x in (1..=8usize, 1..=8usize).prop_flat_map(|(n, m)| matrix(n, m, -1e4, 1e4))
    ) {
        // exp(1e4) overflows both f32 and f64; subtracting the row maximum first keeps every
        // exponent <= 0.
        let p = softmax_rows(&x);
        let p32 = softmax_rows(&x.cast::<f32>());
        for (row, row32) in p.row_iter().zip(p32.row_iter()) {
            prop_assert!(row.iter().all(|w| w.is_finite() && *w >= 0.0));
            prop_assert!(row32.iter().all(|w| w.is_finite() && *w >= 0.0));
            assert_abs_diff_eq!(row.sum(), 1.0, epsilon = 1e-12);
            // f32: at most 8 terms, each rounded to 2^-24 relative.
            assert_abs_diff_eq!(row32.sum(), 1.0f32, epsilon = 1e-6);
        }
    }

    #[test]
    // verifies: eq:softmax (property)
    fn log_softmax_is_the_log_of_softmax(x in logits()) {
        // Logits within [-50, 50) keep every probability above e^-100, far from underflow, so
        // ln(softmax) is accurate and the direct log-softmax must agree with it.
        let log_p = log_softmax_rows(&x);
        let p = softmax_rows(&x);
        assert_abs_diff_eq!(log_p, p.map(f64::ln), epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:attention (property)
    fn attention_weights_rows_are_probability_distributions((q, k, v) in qkv()) {
        let a = scaled_dot_product_attention(&q, &k, &v, None);
        prop_assert_eq!(a.weights.shape(), (q.nrows(), k.nrows()));
        for row in a.weights.row_iter() {
            prop_assert!(row.iter().all(|&w| w >= 0.0));
            assert_abs_diff_eq!(row.sum(), 1.0, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:attention (property)
    fn every_attention_output_row_lies_in_the_range_of_the_value_rows((q, k, v) in qkv()) {
        let a = scaled_dot_product_attention(&q, &k, &v, None);
        prop_assert_eq!(a.output.shape(), (q.nrows(), v.ncols()));
        for c in 0..v.ncols() {
            let lo = v.column(c).min();
            let hi = v.column(c).max();
            for i in 0..q.nrows() {
                let o = a.output[(i, c)];
                // A convex combination of numbers in [lo, hi]; 1e-12 absorbs rounding.
                prop_assert!(
                    lo - 1e-12 <= o && o <= hi + 1e-12,
                    "output ({i}, {c}) = {o} outside [{lo}, {hi}]"
                );
            }
        }
    }

    #[test]
    // verifies: eq:attention (property)
    fn equal_keys_give_the_mean_of_the_values(
        (q, key, v) in (1..=8usize, 1..=8usize, 1..=8usize, 1..=8usize).prop_flat_map(
            |(n, m, d_k, d_v)| (
                matrix(n, d_k, -3.0, 3.0),
                matrix(1, d_k, -3.0, 3.0),
                matrix(m, d_v, -3.0, 3.0),
            )
        )
    ) {
        // Every key is the same vector, so every score in a row is the same and the weights
        // are uniform, whatever the query.
        let m = v.nrows();
        let k = DMatrix::from_fn(m, key.ncols(), |_, j| key[(0, j)]);
        let a = scaled_dot_product_attention(&q, &k, &v, None);
        let mean = RowDVector::from_fn(v.ncols(), |_, c| v.column(c).sum() / m as f64);
        for i in 0..q.nrows() {
            for j in 0..m {
                assert_relative_eq!(a.weights[(i, j)], 1.0 / m as f64, max_relative = 1e-12);
            }
            assert_abs_diff_eq!(a.output.row(i).into_owned(), mean, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:attention (property)
    fn permuting_the_queries_permutes_the_output_rows(
        ((q, k, v), perm) in qkv().prop_flat_map(|qkv| {
            let n = qkv.0.nrows();
            (Just(qkv), permutation(n))
        })
    ) {
        let a = scaled_dot_product_attention(&q, &k, &v, None);
        let b = scaled_dot_product_attention(&permute_rows(&q, &perm), &k, &v, None);
        assert_abs_diff_eq!(b.output, permute_rows(&a.output, &perm), epsilon = 1e-12);
        assert_abs_diff_eq!(b.weights, permute_rows(&a.weights, &perm), epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:attention (property)
    fn permuting_keys_and_values_together_leaves_the_output_unchanged(
        ((q, k, v), perm) in qkv().prop_flat_map(|qkv| {
            let m = qkv.1.nrows();
            (Just(qkv), permutation(m))
        })
    ) {
        let a = scaled_dot_product_attention(&q, &k, &v, None);
        let b = scaled_dot_product_attention(
            &q,
            &permute_rows(&k, &perm),
            &permute_rows(&v, &perm),
            None,
        );
        // Summation order changes, so allow rounding: values are below 3, weights below 1.
        assert_abs_diff_eq!(b.output, a.output, epsilon = 1e-12);
        // The weights move with their keys: weight of new key j is the old weight of perm[j].
        for i in 0..q.nrows() {
            for (j, &pj) in perm.iter().enumerate() {
                assert_abs_diff_eq!(b.weights[(i, j)], a.weights[(i, pj)], epsilon = 1e-12);
            }
        }
    }

    #[test]
    // verifies: eq:attention (property)
    fn log_ratio_of_two_weights_is_the_score_difference_over_sqrt_d_k((q, k, v) in qkv()) {
        // softmax(s)_j / softmax(s)_l = exp(s_j - s_l): the log-odds of two keys is the
        // difference of their dot products with the query, divided by sqrt(d_k). This pins
        // the scale, which the order-invariances above cannot see.
        let a = scaled_dot_product_attention(&q, &k, &v, None);
        let d_k = q.ncols() as f64;
        for i in 0..q.nrows() {
            for j in 0..k.nrows() {
                let dot_ij = q.row(i).dot(&k.row(j));
                let dot_i0 = q.row(i).dot(&k.row(0));
                let log_ratio = (a.weights[(i, j)] / a.weights[(i, 0)]).ln();
                // Scores are below 9 * 8 / 1 = 72 in magnitude, so weights stay above e^-144:
                // no underflow, and the log-ratio is accurate to ~1e-13 relative.
                assert_abs_diff_eq!(log_ratio, (dot_ij - dot_i0) / d_k.sqrt(), epsilon = 1e-9);
            }
        }
    }

    #[test]
    // verifies: eq:attention (property)
    fn each_query_is_attended_independently_of_the_other_queries((q, k, v) in qkv()) {
        // Row i of Eq. 1 uses q_i alone: attention of the single query q_i is row i.
        let a = scaled_dot_product_attention(&q, &k, &v, None);
        for i in 0..q.nrows() {
            let one = scaled_dot_product_attention(&q.rows(i, 1).into_owned(), &k, &v, None);
            assert_abs_diff_eq!(one.output, a.output.rows(i, 1).into_owned(), epsilon = 1e-12);
        }
    }
}

// Footnote 4. The components of q and k are independent, uniform on [-sqrt 3, sqrt 3] (mean 0,
// variance 1). Each product X = q_i k_i has E[X] = 0, E[X^2] = 1 and
// E[X^4] = E[q^4]^2 = (9/5)^2 = 81/25, since a uniform variable on [-a, a] has E[q^4] = a^4 / 5.
// The dot product S = sum of d_k such products has variance sigma^2 = d_k and fourth moment
//     mu_4 = d_k E[X^4] + 3 d_k (d_k - 1) = 3 d_k^2 + (81/25 - 3) d_k = 3 d_k^2 + 0.24 d_k.
// The sample variance s^2 of n draws has Var(s^2) = (mu_4 - sigma^4 (n - 3) / (n - 1)) / n, and
// the sample mean has variance sigma^2 / n. With n = 20000 draws we allow 6 standard errors:
// a correct implementation lands outside with probability below 1e-8 (the sample variance is
// nearly normal at this n), and the generator is seeded, so the test is deterministic anyway.
// A missing or doubled factor in the experiment would be off by many standard errors: at
// d_k = 64 one standard error of s^2 / d_k is sqrt(2 / 20000) = 1%.

/// Standard error of the sample variance of n draws of q . k, from the moments above.
fn standard_error_of_sample_variance(d_k: f64, n: f64) -> f64 {
    let sigma2 = d_k;
    let mu4 = 3.0 * d_k * d_k + 0.24 * d_k;
    ((mu4 - sigma2 * sigma2 * (n - 3.0) / (n - 1.0)) / n).sqrt()
}

const FOOTNOTE_4_SAMPLES: usize = 20_000;
const FOOTNOTE_4_WIDTHS: [usize; 6] = [1, 2, 8, 64, 256, 512];

#[test]
// verifies: eq:dot-variance (property)
fn dot_product_of_unit_variance_vectors_has_mean_zero_and_variance_d_k() {
    let mut rng = rng(4);
    let n = FOOTNOTE_4_SAMPLES as f64;
    for d_k in FOOTNOTE_4_WIDTHS {
        let (mean, variance) = dot_product_moments(d_k, FOOTNOTE_4_SAMPLES, &mut rng);
        let d = d_k as f64;
        let se_mean = (d / n).sqrt();
        let se_var = standard_error_of_sample_variance(d, n);
        assert!(
            mean.abs() <= 6.0 * se_mean,
            "d_k = {d_k}: sample mean {mean} is more than 6 standard errors ({se_mean}) from 0"
        );
        assert!(
            (variance - d).abs() <= 6.0 * se_var,
            "d_k = {d_k}: sample variance {variance} is more than 6 standard errors ({se_var}) \
             from d_k"
        );
    }
}

#[test]
// verifies: eq:dot-variance, eq:attention (property)
fn scaled_scores_have_unit_variance_whatever_d_k() {
    // Reads the scaled score off the library's attention weights rather than recomputing it:
    // with two keys k and 0, the weights are softmax([s, 0]) with s = q . k / sqrt(d_k), so
    // s = ln(w_0 / w_1). Footnote 4 predicts Var(s) = 1 for every d_k; s^2's standard error is
    // the one above divided by d_k.
    let mut rng = rng(44);
    let a = 3f64.sqrt();
    let n = FOOTNOTE_4_SAMPLES;
    for d_k in FOOTNOTE_4_WIDTHS {
        let v = DMatrix::<f64>::zeros(2, 1);
        let scores: Vec<f64> = (0..n)
            .map(|_| {
                let q = DMatrix::from_fn(1, d_k, |_, _| rng.random_range(-a..=a));
                let k = DMatrix::from_fn(2, d_k, |i, _| {
                    if i == 0 {
                        rng.random_range(-a..=a)
                    } else {
                        0.0
                    }
                });
                let w = scaled_dot_product_attention(&q, &k, &v, None).weights;
                (w[(0, 0)] / w[(0, 1)]).ln()
            })
            .collect();
        let mean = scores.iter().sum::<f64>() / n as f64;
        let variance = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        let d = d_k as f64;
        let se_var = standard_error_of_sample_variance(d, n as f64) / d;
        assert!(
            (variance - 1.0).abs() <= 6.0 * se_var,
            "d_k = {d_k}: variance of the scaled score {variance} is more than 6 standard \
             errors ({se_var}) from 1"
        );
    }
}
