//! §5.4: inverted dropout. The kept fraction, the scale of the kept entries, evaluation mode,
//! and seeding.

use aiayn::dropout::{dropout_backward, Dropout};
use nalgebra::DMatrix;
use proptest::prelude::*;

/// A (rows, cols) matrix of entries in [1, 2), none of them zero, so a zero in the output can
/// only be a dropped entry.
fn nonzero(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |i, j| {
        1.0 + ((i * 31 + j * 17 + seed as usize) % 97) as f64 / 97.0
    })
}

// verifies: eq:dropout (property)
#[test]
fn the_kept_fraction_is_within_binomial_bounds() {
    // 200 x 200 = 40,000 entries per draw: the number kept is Binomial(40000, 1 - p), whose
    // standard deviation is at most 100; 5 standard deviations either side fails by chance
    // with probability below 1e-6 per draw.
    let x = nonzero(200, 200, 0);
    let n = x.len() as f64;
    for (p, seed) in [(0.1, 1), (0.3, 2), (0.5, 3), (0.9, 4)] {
        let (y, _) = Dropout::new(p, seed).apply(&x);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64;
        let sd = (n * p * (1.0 - p)).sqrt();
        assert!(
            (kept - n * (1.0 - p)).abs() <= 5.0 * sd,
            "p = {p}: kept {kept} of {n}, expected {} +- {}",
            n * (1.0 - p),
            5.0 * sd
        );
    }
}

// verifies: eq:dropout (property)
#[test]
fn kept_entries_are_scaled_by_one_over_one_minus_p_and_the_mask_says_so() {
    let x = nonzero(30, 40, 5);
    for p in [0.1, 0.25, 0.5] {
        let (y, mask) = Dropout::new(p, 9).apply(&x);
        let mask = mask.expect("dropout on returns its mask");
        for ((&xi, &yi), &mi) in x.iter().zip(y.iter()).zip(mask.iter()) {
            if yi == 0.0 {
                assert_eq!(mi, 0.0);
            } else {
                approx::assert_relative_eq!(yi, xi / (1.0 - p), max_relative = 1e-15);
                approx::assert_relative_eq!(mi, 1.0 / (1.0 - p), max_relative = 1e-15);
            }
        }
        // the backward pass lets the gradient through the kept entries, scaled alike
        let d_x = dropout_backward(&Some(mask.clone()), &DMatrix::from_element(30, 40, 1.0));
        assert_eq!(d_x, mask);
    }
}

// verifies: eq:dropout (property)
#[test]
fn evaluation_mode_and_p_zero_are_the_identity() {
    let x = nonzero(7, 9, 3);
    let (y, mask) = Dropout::off().apply(&x);
    assert_eq!((y, mask), (x.clone(), None));
    let (y, mask) = Dropout::new(0.0, 7).apply(&x);
    assert_eq!((y, mask), (x.clone(), None));
    assert!(!Dropout::off().is_active());
    assert!(Dropout::new(0.1, 0).is_active());
    assert_eq!(dropout_backward::<f64>(&None, &x), x);
}

proptest! {
    // verifies: eq:dropout (property)
    #[test]
    fn the_same_seed_draws_the_same_masks_and_another_seed_others(seed in any::<u64>(), p in 0.05..0.95f64) {
        let x = nonzero(16, 16, seed % 13);
        let (mut a, mut b, mut c) = (Dropout::new(p, seed), Dropout::new(p, seed), Dropout::new(p, seed.wrapping_add(1)));
        let first = (a.apply(&x).0, a.apply(&x).0);
        prop_assert_eq!(&first, &(b.apply(&x).0, b.apply(&x).0));
        // two draws from one generator differ, and another seed differs (256 entries: equal by
        // chance with probability below 1e-9 for p in [0.05, 0.95])
        prop_assert_ne!(&first.0, &first.1);
        prop_assert_ne!(&first.0, &c.apply(&x).0);
    }
}

#[test]
#[should_panic(expected = "dropout: P_drop = 1 is not in [0, 1)")]
fn p_of_one_is_refused() {
    Dropout::new(1.0, 0);
}
