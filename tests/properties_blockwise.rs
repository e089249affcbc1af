//! Blockwise attention (`aiayn::blockwise`) computes Eq. 1 (§3.2.1): its output equals
//! `scaled_dot_product_attention`'s within 1e-12 in f64 and 1e-5 in f32 (absolute, in units of
//! the largest |V| entry, or relative), over random shapes (n, m, d_k, d_v from 1 up, so n = 1
//! and d_k = 1 occur), tile sizes that do and do not divide n and m, and masks: none, a random
//! grid (where some queries see no key), padding, causal, causal with padding, stored as grids
//! and as implicit rules alike. Logits of size 1e4 are checked in both precisions; in f32 with
//! inputs whose scores are exact, so that both functions start from the same numbers.
//!
//! Each property runs proptest's 256 cases (`PROPTEST_CASES` overrides it); the shapes stay
//! below 13 so that the file runs in well under a second.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_blockwise.txt";

use aiayn::attention::scaled_dot_product_attention;
use aiayn::blockwise::{blockwise_attention, Blocks};
use aiayn::mask::{Allows, ImplicitMask, Mask};
use approx::assert_relative_eq;
use nalgebra::{DMatrix, RealField};
use properties_support::{config, matrix};
use proptest::prelude::*;

/// The masks the properties draw from, for n queries and m keys.
#[derive(Clone, Debug)]
enum MaskKind {
    None,
    /// A random grid: `allowed[i * m + j]`.
    Grid(Vec<bool>),
    Padding(Vec<bool>),
    /// Causal over the last n of m positions (n <= m).
    Causal,
    CausalPadding(Vec<bool>),
}

impl MaskKind {
    /// The mask as a rule (for the causal and padding kinds) and as a grid.
    fn build(&self, n: usize, m: usize) -> (Option<ImplicitMask>, Option<Mask>) {
        let implicit = match self {
            MaskKind::None => return (None, None),
            MaskKind::Grid(allowed) => {
                return (None, Some(Mask::from_fn(n, m, |i, j| allowed[i * m + j])));
            }
            MaskKind::Padding(pad) => ImplicitMask::padding(n, pad),
            MaskKind::Causal => ImplicitMask::causal_suffix(n, m),
            MaskKind::CausalPadding(pad) => {
                ImplicitMask::causal_suffix(n, m).and(&ImplicitMask::padding(n, pad))
            }
        };
        let grid = implicit.to_mask();
        (Some(implicit), Some(grid))
    }
}

/// One case: Q (n, d_k), K (m, d_k), V (m, d_v) with entries in [-3, 3), a mask, and tiles of
/// 1 to 5 queries by 1 to 5 keys.
#[derive(Clone, Debug)]
struct Case {
    q: DMatrix<f64>,
    k: DMatrix<f64>,
    v: DMatrix<f64>,
    mask: MaskKind,
    blocks: Blocks,
}

fn case() -> impl Strategy<Value = Case> {
    (1..=12usize, 1..=12usize, 1..=8usize, 1..=6usize, 0..5usize).prop_flat_map(
        |(n, m, d_k, d_v, kind)| {
            let m = if kind >= 3 { m.max(n) } else { m }; // causal kinds need n <= m
            let pad = prop::collection::vec(prop::bool::weighted(0.3), m);
            let mask = match kind {
                0 => Just(MaskKind::None).boxed(),
                1 => prop::collection::vec(prop::bool::weighted(0.6), n * m)
                    .prop_map(MaskKind::Grid)
                    .boxed(),
                2 => pad.prop_map(MaskKind::Padding).boxed(),
                3 => Just(MaskKind::Causal).boxed(),
                _ => pad.prop_map(MaskKind::CausalPadding).boxed(),
            };
            (
                matrix(n, d_k, -3.0, 3.0),
                matrix(m, d_k, -3.0, 3.0),
                matrix(m, d_v, -3.0, 3.0),
                mask,
                1..=5usize,
                1..=5usize,
            )
                .prop_map(|(q, k, v, mask, b_q, b_k)| Case {
                    q,
                    k,
                    v,
                    mask,
                    blocks: Blocks {
                        queries: b_q,
                        keys: b_k,
                    },
                })
        },
    )
}

/// Asserts that blockwise attention equals Eq. 1 on (q, k, v) under `mask`, within `tol` times
/// the largest |v| absolutely or `tol` relatively, with the mask given as a rule and as a grid.
fn assert_equals_eq1<T: RealField + Copy + approx::RelativeEq<Epsilon = T>>(
    q: &DMatrix<T>,
    k: &DMatrix<T>,
    v: &DMatrix<T>,
    mask: &MaskKind,
    blocks: Blocks,
    tol: T,
) {
    let (n, m) = (q.nrows(), k.nrows());
    let (implicit, grid) = mask.build(n, m);
    let plain = scaled_dot_product_attention(q, k, v, grid.as_ref()).output;
    let epsilon = tol * v.amax().max(T::one());
    let from_grid = blockwise_attention(q, k, v, grid.as_ref().map(|g| g as &dyn Allows), blocks);
    assert!(
        from_grid.iter().all(|x| x.is_finite()),
        "not finite: {from_grid}"
    );
    assert_relative_eq!(from_grid, plain, epsilon = epsilon, max_relative = tol);
    if let Some(rule) = implicit {
        let from_rule = blockwise_attention(q, k, v, Some(&rule as &dyn Allows), blocks);
        assert_relative_eq!(from_rule, plain, epsilon = epsilon, max_relative = tol);
    }
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:attention, eq:online-softmax (property)
    fn blockwise_attention_equals_eq1_in_f64(c in case()) {
        assert_equals_eq1(&c.q, &c.k, &c.v, &c.mask, c.blocks, 1e-12);
    }

    #[test]
    // verifies: eq:attention, eq:online-softmax (property)
    fn blockwise_attention_equals_eq1_in_f32(c in case()) {
        let (q, k, v) = (c.q.cast::<f32>(), c.k.cast::<f32>(), c.v.cast::<f32>());
        assert_equals_eq1(&q, &k, &v, &c.mask, c.blocks, 1e-5);
    }

    #[test]
    // verifies: eq:attention, eq:online-softmax (property)
    fn blockwise_attention_equals_eq1_with_logits_of_1e4_in_f64(c in case()) {
        // scores up to about 1e4 * 3 * 3 * sqrt(d_k): every exp(s - max) but one underflows
        // unless the maximum is subtracted, and a running maximum jumps between tiles
        let q = &c.q * 1e4;
        assert_equals_eq1(&q, &c.k, &c.v, &c.mask, c.blocks, 1e-9);
    }

    #[test]
    // verifies: eq:attention, eq:online-softmax (property)
    fn blockwise_attention_equals_eq1_with_logits_of_1e4_in_f32(
        c in case(),
        d_k in prop::sample::select(vec![1usize, 4, 16]),
        seed in any::<u64>(),
    ) {
        // Integer entries in [-100, 100] and d_k a power of 4: every dot product is an integer
        // below 2^24 and sqrt(d_k) a power of 2, so both functions get exactly the same scores
        // (up to 4e4) however they sum; what is left to compare is the softmax alone.
        let mut rng = properties_support::rng(seed);
        let mut integers = |rows| properties_support::uniform(rows, d_k, 100.5, &mut rng)
            .map(|x| x.trunc() as f32);
        let (q, k) = (integers(c.q.nrows()), integers(c.k.nrows()));
        assert_equals_eq1(&q, &k, &c.v.cast::<f32>(), &c.mask, c.blocks, 1e-5);
    }

    #[test]
    // verifies: eq:causal-mask (property)
    fn implicit_masks_are_the_grids_they_name(
        n in 1..=9usize,
        extra in 0..=4usize,
        pad in prop::collection::vec(prop::bool::weighted(0.3), 13),
        pad2 in prop::collection::vec(prop::bool::weighted(0.3), 13),
        q0 in 0..9usize, q_len in 0..5usize, k0 in 0..13usize, k_len in 0..6usize,
    ) {
        let m = n + extra;
        let (pad, pad2) = (&pad[..m], &pad2[..m]);
        let cases = [
            (ImplicitMask::full(n, m), Mask::full(n, m)),
            (ImplicitMask::causal_suffix(n, m), Mask::causal_suffix(n, m)),
            (ImplicitMask::padding(n, pad), Mask::padding(n, pad)),
            (
                ImplicitMask::causal_suffix(n, m).and(&ImplicitMask::padding(n, pad)),
                Mask::causal_suffix(n, m).and(&Mask::padding(n, pad)),
            ),
            (
                ImplicitMask::padding(n, pad).and(&ImplicitMask::causal_suffix(n, m)),
                Mask::padding(n, pad).and(&Mask::causal_suffix(n, m)),
            ),
            // two paddings: a key is out if either marks it
            (
                ImplicitMask::padding(n, pad).and(&ImplicitMask::padding(n, pad2)),
                Mask::padding(n, pad).and(&Mask::padding(n, pad2)),
            ),
            (
                ImplicitMask::causal_suffix(n, m)
                    .and(&ImplicitMask::padding(n, pad))
                    .and(&ImplicitMask::padding(n, pad2)),
                Mask::causal_suffix(n, m)
                    .and(&Mask::padding(n, pad))
                    .and(&Mask::padding(n, pad2)),
            ),
            (
                ImplicitMask::full(n, m).and(&ImplicitMask::causal_suffix(n, m)),
                Mask::causal_suffix(n, m),
            ),
        ];
        prop_assert_eq!(ImplicitMask::causal(n).to_mask(), Mask::causal(n));
        let queries = q0.min(n)..(q0 + q_len).min(n);
        let keys = k0.min(m)..(k0 + k_len).min(m);
        for (rule, grid) in &cases {
            prop_assert_eq!(&rule.to_mask(), grid);
            // the shortcuts agree with the grid's pair-by-pair answers
            prop_assert_eq!(
                rule.any_allowed(queries.clone(), keys.clone()),
                grid.any_allowed(queries.clone(), keys.clone()),
                "any_allowed({:?}, {:?})", queries, keys
            );
            for i in 0..n {
                let mut from_rule = vec![false; keys.len()];
                let mut from_grid = vec![true; keys.len()];
                rule.allowed_keys(i, keys.clone(), &mut from_rule);
                grid.allowed_keys(i, keys.clone(), &mut from_grid);
                prop_assert_eq!(from_rule, from_grid, "query {}, keys {:?}", i, keys);
            }
        }
    }
}

// verifies: eq:attention, eq:online-softmax (example)
#[test]
fn a_query_that_sees_no_key_gets_a_zero_output_and_the_others_their_values() {
    // Causal over three positions, key 0 padding. Every score is 0 (the queries are 0), so
    // each query gets the mean of the values it may see: query 0 sees no key (zero output),
    // query 1 sees key 1, query 2 keys 1 and 2. Value 0's huge entries must not leak in.
    let q = DMatrix::<f64>::zeros(3, 1);
    let k = DMatrix::from_row_slice(3, 1, &[5.0, 1.0, 1.0]);
    let v = DMatrix::from_row_slice(3, 2, &[1e9, -1e9, 2.0, 10.0, 4.0, 20.0]);
    let mask = ImplicitMask::causal(3).and(&ImplicitMask::padding(3, &[true, false, false]));
    let want = DMatrix::from_row_slice(3, 2, &[0.0, 0.0, 2.0, 10.0, 3.0, 15.0]);
    let tiles = [(1, 1), (2, 2), (3, 1), (128, 256)];
    for (queries, keys) in tiles {
        let blocks = Blocks { queries, keys };
        let o = blockwise_attention(&q, &k, &v, Some(&mask as &dyn Allows), blocks);
        assert_relative_eq!(o, want, max_relative = 1e-15);
    }
}

#[test]
#[should_panic(expected = "blocks of 0 queries by 4 keys: both must be at least 1")]
fn blockwise_attention_refuses_empty_tiles() {
    let x = DMatrix::<f64>::zeros(3, 2);
    blockwise_attention(
        &x,
        &x,
        &x,
        None,
        Blocks {
            queries: 0,
            keys: 4,
        },
    );
}

#[test]
#[should_panic(expected = "a mask of shape (3, 4) does not fit 3 queries and 5 keys")]
fn blockwise_attention_names_a_mask_of_the_wrong_shape() {
    let (q, kv) = (DMatrix::<f64>::zeros(3, 2), DMatrix::<f64>::zeros(5, 2));
    let mask = ImplicitMask::causal_suffix(3, 4);
    blockwise_attention(&q, &kv, &kv, Some(&mask as &dyn Allows), Blocks::default());
}

#[test]
#[should_panic(expected = "attention: queries have d_k = 2 but keys have d_k = 4")]
fn blockwise_attention_names_mismatched_shapes() {
    let x = DMatrix::<f64>::zeros(3, 2);
    blockwise_attention(&x, &DMatrix::zeros(3, 4), &x, None, Blocks::default());
}
