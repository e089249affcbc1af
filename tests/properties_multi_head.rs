//! §3.2.2 Multi-head attention.
//!
//! `MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O`, `head_i = Attention(Q W_i^Q, K W_i^K,
//! V W_i^V)`. The library stores the h matrices W_i^Q side by side and projects once; the tests
//! here rebuild the paper's per-head formula literally and compare.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_multi_head.txt";

use aiayn::attention::scaled_dot_product_attention;
use aiayn::mask::Mask;
use aiayn::multi_head::MultiHeadAttention;
use approx::assert_abs_diff_eq;
use nalgebra::{DMatrix, RowDVector};
use properties_support::{
    config, matrix, permutation, permute_rows, random_multi_head, rng, uniform,
};
use proptest::prelude::*;

/// Multi-head attention with h <= 4 heads, d_k and d_v <= 5 chosen independently of each other
/// and of d_model <= 8, biases or not; a query (n, d_model) and a memory (m, d_model).
fn case() -> impl Strategy<Value = (MultiHeadAttention<f64>, DMatrix<f64>, DMatrix<f64>)> {
    (
        1..=8usize,
        1..=4usize,
        1..=5usize,
        1..=5usize,
        any::<bool>(),
        1..=8usize,
        1..=8usize,
        any::<u64>(),
    )
        .prop_map(|(d_model, h, d_k, d_v, bias, n, m, seed)| {
            let mut rng = rng(seed);
            let mha = random_multi_head(d_model, h, d_k, d_v, bias, &mut rng);
            let query = uniform(n, d_model, 2.0, &mut rng);
            let memory = uniform(m, d_model, 2.0, &mut rng);
            (mha, query, memory)
        })
}

/// x W + b, with the bias optional.
fn affine(x: &DMatrix<f64>, w: &DMatrix<f64>, b: Option<RowDVector<f64>>) -> DMatrix<f64> {
    let mut y = x * w;
    if let Some(b) = b {
        for mut row in y.row_iter_mut() {
            row += &b;
        }
    }
    y
}

/// The paper's formula, one head at a time: slice W_i^Q, W_i^K, W_i^V (and their biases) out
/// of the stored matrices, run Eq. 1 per head, concatenate, multiply by W^O.
fn explicit_loop_over_heads(
    mha: &MultiHeadAttention<f64>,
    query: &DMatrix<f64>,
    key: &DMatrix<f64>,
    value: &DMatrix<f64>,
    mask: Option<&Mask>,
) -> (DMatrix<f64>, Vec<DMatrix<f64>>) {
    let (h, d_k, d_v) = (mha.h, mha.d_k, mha.d_v);
    let slice = |b: &Option<RowDVector<f64>>, start: usize, len: usize| {
        b.as_ref().map(|b| b.columns(start, len).into_owned())
    };
    let mut heads = Vec::new();
    let mut weights = Vec::new();
    for i in 0..h {
        let w_q_i = mha.w_q.columns(i * d_k, d_k).into_owned(); // (d_model, d_k)
        let w_k_i = mha.w_k.columns(i * d_k, d_k).into_owned(); // (d_model, d_k)
        let w_v_i = mha.w_v.columns(i * d_v, d_v).into_owned(); // (d_model, d_v)
        let q_i = affine(query, &w_q_i, slice(&mha.b_q, i * d_k, d_k));
        let k_i = affine(key, &w_k_i, slice(&mha.b_k, i * d_k, d_k));
        let v_i = affine(value, &w_v_i, slice(&mha.b_v, i * d_v, d_v));
        let head = scaled_dot_product_attention(&q_i, &k_i, &v_i, mask);
        heads.push(head.output);
        weights.push(head.weights);
    }
    // Concat(head_1, ..., head_h): (n, h d_v).
    let n = query.nrows();
    let concat = DMatrix::from_fn(n, h * d_v, |r, c| heads[c / d_v][(r, c % d_v)]);
    (affine(&concat, &mha.w_o, mha.b_o.clone()), weights)
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:multi-head (property)
    fn multi_head_attention_equals_the_explicit_loop_over_heads((mha, query, memory) in case()) {
        // Cross-attention shapes (n queries, m keys) so that n != m is exercised.
        let got = mha.forward(&query, &memory, &memory, None);
        let (want, want_weights) = explicit_loop_over_heads(&mha, &query, &memory, &memory, None);
        prop_assert_eq!(got.output.shape(), (query.nrows(), mha.d_model()));
        // Entries are sums of at most 8 * 5 products of numbers below ~10: 1e-10 is rounding.
        assert_abs_diff_eq!(got.output, want, epsilon = 1e-10);
        prop_assert_eq!(got.weights.len(), mha.h);
        for (g, w) in got.weights.iter().zip(&want_weights) {
            assert_abs_diff_eq!(g, w, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:multi-head, eq:causal-mask (property)
    fn masked_multi_head_self_attention_equals_the_explicit_loop_over_heads(
        ((mha, x, _), causal, pad_seed) in (case(), any::<bool>(), any::<u64>())
    ) {
        let n = x.nrows();
        let pad: Vec<bool> = (0..n).map(|j| (pad_seed >> (j % 64)) & 1 == 1).collect();
        let order = if causal { Mask::causal(n) } else { Mask::full(n, n) };
        let mask = order.and(&Mask::padding(n, &pad));
        let got = mha.forward(&x, &x, &x, Some(&mask));
        let (want, _) = explicit_loop_over_heads(&mha, &x, &x, &x, Some(&mask));
        assert_abs_diff_eq!(got.output, want, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:multi-head (property)
    fn multi_head_output_is_the_sum_over_heads_of_head_i_times_its_rows_of_w_o(
        (mha, query, memory) in case()
    ) {
        // Concat(head_1..head_h) W^O = sum_i head_i W^O_i, where W^O_i is rows
        // i d_v .. (i + 1) d_v of W^O: the heads meet only in this sum. Each head_i is read
        // off the library by zeroing every other head's block of W^O (and the output bias).
        let full = mha.forward(&query, &memory, &memory, None).output;
        let mut sum = DMatrix::zeros(query.nrows(), mha.d_model());
        for i in 0..mha.h {
            let mut only_i = mha.clone();
            only_i.b_o = None;
            for r in 0..mha.h * mha.d_v {
                if r / mha.d_v != i {
                    only_i.w_o.row_mut(r).fill(0.0);
                }
            }
            sum += only_i.forward(&query, &memory, &memory, None).output;
        }
        if let Some(b_o) = &mha.b_o {
            for mut row in sum.row_iter_mut() {
                row += b_o;
            }
        }
        assert_abs_diff_eq!(full, sum, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:multi-head, eq:attention (property)
    fn one_head_with_identity_projections_is_eq_1(
        (q, k, v) in (1..=8usize, 1..=8usize, 1..=8usize).prop_flat_map(|(n, m, d)| (
            matrix(n, d, -3.0, 3.0),
            matrix(m, d, -3.0, 3.0),
            matrix(m, d, -3.0, 3.0),
        ))
    ) {
        let d = q.ncols();
        let mha = MultiHeadAttention {
            h: 1,
            d_k: d,
            d_v: d,
            w_q: DMatrix::identity(d, d),
            w_k: DMatrix::identity(d, d),
            w_v: DMatrix::identity(d, d),
            w_o: DMatrix::identity(d, d),
            b_q: None,
            b_k: None,
            b_v: None,
            b_o: None,
        };
        let got = mha.forward(&q, &k, &v, None);
        let eq_1 = scaled_dot_product_attention(&q, &k, &v, None);
        assert_abs_diff_eq!(got.output, eq_1.output, epsilon = 1e-12);
        assert_abs_diff_eq!(&got.weights[0], &eq_1.weights, epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:multi-head (property)
    fn multi_head_self_attention_is_permutation_equivariant(
        ((mha, x, _), perm) in case().prop_flat_map(|c| {
            let n = c.1.nrows();
            (Just(c), permutation(n))
        })
    ) {
        // Without positional encodings attention sees a set: permuting the positions permutes
        // the outputs the same way (the reason §3.5 adds positions).
        let y = mha.forward(&x, &x, &x, None).output;
        let xp = permute_rows(&x, &perm);
        let yp = mha.forward(&xp, &xp, &xp, None).output;
        assert_abs_diff_eq!(yp, permute_rows(&y, &perm), epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:multi-head (property)
    fn permuting_the_memory_leaves_cross_attention_unchanged(
        ((mha, query, memory), perm) in case().prop_flat_map(|c| {
            let m = c.2.nrows();
            (Just(c), permutation(m))
        })
    ) {
        let a = mha.forward(&query, &memory, &memory, None).output;
        let mp = permute_rows(&memory, &perm);
        let b = mha.forward(&query, &mp, &mp, None).output;
        assert_abs_diff_eq!(b, a, epsilon = 1e-10);
    }

    #[test]
    // verifies: eq:multi-head (property)
    fn changing_one_heads_query_projection_changes_only_that_heads_weights(
        ((mha, query, memory), head, seed) in case()
            .prop_filter("needs two heads", |c| c.0.h >= 2)
            .prop_flat_map(|c| { let h = c.0.h; (Just(c), 0..h, any::<u64>()) })
    ) {
        // Heads are independent attentions: W_i^Q belongs to head i alone.
        let mut changed = mha.clone();
        let d_k = mha.d_k;
        let new_block = uniform(mha.d_model(), d_k, 1.0, &mut rng(seed));
        changed.w_q.columns_mut(head * d_k, d_k).copy_from(&new_block);
        let a = mha.forward(&query, &memory, &memory, None);
        let b = changed.forward(&query, &memory, &memory, None);
        for i in (0..mha.h).filter(|&i| i != head) {
            assert_abs_diff_eq!(&b.weights[i], &a.weights[i], epsilon = 1e-14);
        }
        // ... and the changed head's weights do move, when there are two keys to choose from
        // (over one key every softmax is 1).
        if memory.nrows() >= 2 {
            prop_assert!(properties_support::max_abs_diff(&b.weights[head], &a.weights[head]) > 1e-9);
        }
    }
}

/// The key-value cache of incremental decoding counts its positions: none before the first
/// step, one more row per decoded position, and each row the projections of its position.
#[test]
fn the_key_value_cache_grows_by_one_projected_row_per_position() {
    let mut r = properties_support::rng(5);
    let mha = MultiHeadAttention::<f64>::new(6, 2, 3, 3, true, &mut r);
    let x = properties_support::uniform(4, 6, 1.0, &mut r);
    let mut cache = mha.cache(&DMatrix::zeros(0, 6));
    assert!(cache.is_empty());
    assert_eq!(cache.len(), 0);
    for t in 0..4 {
        mha.extend_cache(&mut cache, &x.rows(t, 1).into_owned());
        assert!(!cache.is_empty());
        assert_eq!(
            (cache.len(), cache.k.nrows(), cache.v.nrows()),
            (t + 1, t + 1, t + 1)
        );
    }
    // the rows are the projections of all four positions: x W^K + b^K and x W^V + b^V
    let with_bias = |p: DMatrix<f64>, b: &RowDVector<f64>| {
        DMatrix::from_fn(p.nrows(), p.ncols(), |i, j| p[(i, j)] + b[j])
    };
    let k = with_bias(&x * &mha.w_k, mha.b_k.as_ref().unwrap());
    let v = with_bias(&x * &mha.w_v, mha.b_v.as_ref().unwrap());
    assert_abs_diff_eq!(cache.k, k, epsilon = 1e-12);
    assert_abs_diff_eq!(cache.v, v, epsilon = 1e-12);
    assert_eq!(mha.cache(&x).len(), 4);
}
