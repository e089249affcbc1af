//! The fast paths of `aiayn::fast` compute what the plain code computes: Eq. 1 and multi-head
//! attention (§3.2.1, §3.2.2), with and without masks, including fully masked queries.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_fast.txt";

use aiayn::attention::scaled_dot_product_attention;
use aiayn::fast::{multi_head_forward_fast, scaled_dot_product_attention_fast};
use aiayn::mask::Mask;
use approx::assert_relative_eq;
use nalgebra::DMatrix;
use properties_support::{config, matrix, random_multi_head, rng, uniform};
use proptest::prelude::*;
use rand::Rng;

/// Q (n, d_k), K (m, d_k), V (m, d_v) with entries in [-3, 3), and a random mask (n, m) in
/// which some queries may see no key at all.
#[allow(clippy::type_complexity)]
fn qkv_mask() -> impl Strategy<Value = (DMatrix<f64>, DMatrix<f64>, DMatrix<f64>, Option<Mask>)> {
    (1..=9usize, 1..=9usize, 1..=8usize, 1..=8usize).prop_flat_map(|(n, m, d_k, d_v)| {
        (
            matrix(n, d_k, -3.0, 3.0),
            matrix(m, d_k, -3.0, 3.0),
            matrix(m, d_v, -3.0, 3.0),
            prop::option::of(prop::collection::vec(any::<bool>(), n * m)),
        )
            .prop_map(move |(q, k, v, allowed)| {
                let mask = allowed.map(|a| Mask::from_fn(n, m, |i, j| a[i * m + j]));
                (q, k, v, mask)
            })
    })
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:attention (property)
    fn fast_attention_equals_plain_attention((q, k, v, mask) in qkv_mask()) {
        let plain = scaled_dot_product_attention(&q, &k, &v, mask.as_ref());
        let fast = scaled_dot_product_attention_fast(&q, &k, &v, mask.as_ref());
        assert_relative_eq!(fast.weights, plain.weights, epsilon = 1e-12, max_relative = 1e-10);
        assert_relative_eq!(fast.output, plain.output, epsilon = 1e-12, max_relative = 1e-10);
    }

    #[test]
    // verifies: eq:multi-head (property)
    fn fast_multi_head_equals_plain_multi_head(
        n in 1..=7usize,
        m in 1..=7usize,
        h in 1..=3usize,
        bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut rng = rng(seed);
        let (d_k, d_v, d_model) = (2, 3, 4);
        let mha = random_multi_head(d_model, h, d_k, d_v, bias, &mut rng);
        let query = uniform(n, d_model, 1.0, &mut rng);
        let memory = uniform(m, d_model, 1.0, &mut rng);
        let mask = Mask::from_fn(n, m, |_, _| rng.random_bool(0.7)); // some queries see nothing
        let plain = mha.forward(&query, &memory, &memory, Some(&mask));
        let fast = multi_head_forward_fast(&mha, &query, &memory, &memory, Some(&mask));
        assert_relative_eq!(fast.output, plain.output, epsilon = 1e-12, max_relative = 1e-10);
        for (f, p) in fast.weights.iter().zip(&plain.weights) {
            assert_relative_eq!(f, p, epsilon = 1e-12, max_relative = 1e-10);
        }
    }
}
