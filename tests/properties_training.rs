//! §5.3 and §5.4: the learning-rate schedule (Eq. 3), Adam, and label smoothing.

mod properties_support;

const REGRESSIONS: &str = "proptest-regressions/properties_training.txt";

use aiayn::softmax::log_softmax_rows;
use aiayn::train::adam::Adam;
use aiayn::train::label_smoothing::{
    label_smoothed_loss, label_smoothed_loss_backward, smoothed_targets, Spread,
};
use aiayn::train::schedule::lrate;
use approx::{assert_abs_diff_eq, assert_relative_eq};
use nalgebra::DMatrix;
use properties_support::{config, matrix};
use proptest::prelude::*;

/// A (rows, cols) matrix whose entries have magnitude in [lo, hi) and a random sign.
fn signed_matrix(
    rows: usize,
    cols: usize,
    lo: f64,
    hi: f64,
) -> impl Strategy<Value = DMatrix<f64>> {
    (
        matrix(rows, cols, lo, hi),
        prop::collection::vec(any::<bool>(), rows * cols),
    )
        .prop_map(|(m, negative)| {
            let mut m = m;
            for (x, neg) in m.iter_mut().zip(negative) {
                if neg {
                    *x = -*x;
                }
            }
            m
        })
}

fn spread() -> impl Strategy<Value = Spread> {
    prop_oneof![Just(Spread::AllClasses), Just(Spread::OtherClasses)]
}

/// A loss to compute: n (1..=6) rows of a vocabulary of 2..=12 with entries in [lo, hi), a
/// target per row, eps_ls in [eps_lo, 0.5) and either spread.
fn loss_case(
    lo: f64,
    hi: f64,
    eps_lo: f64,
) -> impl Strategy<Value = (DMatrix<f64>, Vec<usize>, f64, Spread)> {
    (2..=12usize, 1..=6usize).prop_flat_map(move |(v, n)| {
        (
            matrix(n, v, lo, hi),
            prop::collection::vec(0..v, n),
            eps_lo..0.5f64,
            spread(),
        )
    })
}

proptest! {
    #![proptest_config(config(REGRESSIONS))]

    #[test]
    // verifies: eq:lrate (property)
    fn lrate_rises_linearly_during_warmup(
        (d_model, warmup, step) in (1..=1024usize, 2..=10_000usize)
            .prop_flat_map(|(d, w)| (Just(d), Just(w), 1..=w / 2))
    ) {
        // Doubling a step that stays within the warm-up doubles the rate, and the line
        // through the origin reaches the peak at step = warmup.
        assert_relative_eq!(
            lrate(d_model, warmup, 2 * step),
            2.0 * lrate(d_model, warmup, step),
            max_relative = 1e-12
        );
        assert_relative_eq!(
            lrate(d_model, warmup, step) * warmup as f64 / step as f64,
            lrate(d_model, warmup, warmup),
            max_relative = 1e-12
        );
    }

    #[test]
    // verifies: eq:lrate (property)
    fn lrate_decays_as_the_inverse_square_root_of_the_step_after_warmup(
        (d_model, warmup, step) in (1..=1024usize, 1..=10_000usize)
            .prop_flat_map(|(d, w)| (Just(d), Just(w), w..=1_000_000usize))
    ) {
        // Four times the step, half the rate.
        assert_relative_eq!(
            lrate(d_model, warmup, 4 * step),
            lrate(d_model, warmup, step) / 2.0,
            max_relative = 1e-12
        );
    }

    #[test]
    // verifies: eq:lrate (property)
    fn lrate_peaks_at_warmup_with_value_one_over_sqrt_of_d_model_times_warmup(
        (d_model, warmup, step) in (1..=1024usize, 1..=10_000usize, 1..=1_000_000usize)
    ) {
        // Both branches of the min meet at step = warmup: warmup^-0.5 = warmup * warmup^-1.5.
        let peak = lrate(d_model, warmup, warmup);
        assert_relative_eq!(peak, 1.0 / ((d_model * warmup) as f64).sqrt(), max_relative = 1e-12);
        prop_assert!(lrate(d_model, warmup, step) <= peak * (1.0 + 1e-12));
    }

    #[test]
    // verifies: eq:lrate (property)
    fn lrate_scales_as_the_inverse_square_root_of_d_model(
        (d_model, warmup, step) in (1..=1024usize, 1..=10_000usize, 1..=1_000_000usize)
    ) {
        assert_relative_eq!(
            lrate(4 * d_model, warmup, step),
            lrate(d_model, warmup, step) / 2.0,
            max_relative = 1e-12
        );
    }

    #[test]
    // verifies: eq:adam (property)
    fn first_adam_step_moves_each_parameter_by_lr_against_the_sign_of_its_gradient(
        (p, g, lr) in (1..=6usize, 1..=6usize)
            .prop_flat_map(|(r, c)| (
                matrix(r, c, -10.0, 10.0),
                signed_matrix(r, c, 1e-3, 10.0),
                1e-5..1e-1f64,
            ))
    ) {
        // Bias correction: after one step m_hat = g and v_hat = g^2, so the step is
        // lr g / (|g| + eps) = lr sign(g) (1 - eps / (|g| + eps)). With |g| >= 1e-3 and
        // eps = 1e-9 that is lr sign(g) to within 1e-6 relative. Without the correction the
        // step would be lr 0.1 g / (sqrt(0.02) |g|) = 0.707 lr: far outside the bound.
        let mut theta = p.clone();
        let mut adam = Adam::<f64>::paper();
        adam.step(&mut [&mut theta], &[&g], lr);
        for ((before, after), grad) in p.iter().zip(theta.iter()).zip(g.iter()) {
            let moved = after - before;
            assert_relative_eq!(moved, -lr * grad.signum(), max_relative = 1e-6);
        }
    }

    #[test]
    // verifies: eq:adam (property)
    fn adam_with_a_constant_gradient_moves_by_lr_every_step(
        (g, steps) in (matrix(2, 3, 1e-2, 10.0), 1..=50usize)
    ) {
        // With g_t = g for every t, m_t = (1 - beta_1^t) g and v_t = (1 - beta_2^t) g^2, so the
        // bias-corrected moments are g and g^2 at every step: each step is lr sign(g).
        let lr = 1e-3;
        let mut theta = DMatrix::<f64>::zeros(2, 3);
        let mut adam = Adam::<f64>::paper();
        for _ in 0..steps {
            adam.step(&mut [&mut theta], &[&g], lr);
        }
        for x in theta.iter() {
            assert_relative_eq!(*x, -lr * steps as f64, max_relative = 1e-6);
        }
    }

    #[test]
    // verifies: eq:adam (property)
    fn adam_updates_do_not_change_when_every_gradient_is_scaled(
        (grads, c) in (prop::collection::vec(signed_matrix(2, 2, 0.1, 1.0), 1..=10), 0.1..10.0f64)
    ) {
        // Adam divides the first moment by the root of the second: scaling all gradients by
        // c > 0 leaves the update as it was, except for eps. v_hat is a weighted average of
        // the g^2 >= 0.01, so sqrt(v_hat) >= 0.1 and |m_hat| <= sqrt(v_hat); eps then moves one
        // step by at most lr eps / sqrt(v_hat) |1 - 1/c| <= 1e-2 1e-9 / 0.1 * 9 ~ 1e-9, and 10
        // steps by 1e-8.
        let lr = 1e-2;
        let mut a = DMatrix::<f64>::zeros(2, 2);
        let mut b = DMatrix::<f64>::zeros(2, 2);
        let (mut adam_a, mut adam_b) = (Adam::<f64>::paper(), Adam::<f64>::paper());
        for g in &grads {
            adam_a.step(&mut [&mut a], &[g], lr);
            adam_b.step(&mut [&mut b], &[&(g * c)], lr);
        }
        assert_abs_diff_eq!(a, b, epsilon = 1e-7);
    }

    #[test]
    // verifies: eq:label-smoothing (property)
    fn smoothed_target_rows_are_distributions(
        (targets, vocab, eps, spread) in (2..=40usize).prop_flat_map(|v| (
            prop::collection::vec(0..v, 1..=8),
            Just(v),
            0.0..0.5f64,
            spread(),
        ))
    ) {
        let q = smoothed_targets::<f64>(&targets, vocab, eps, spread);
        prop_assert_eq!(q.shape(), (targets.len(), vocab));
        for row in q.row_iter() {
            prop_assert!(row.iter().all(|&x| x >= 0.0));
            assert_abs_diff_eq!(row.sum(), 1.0, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:label-smoothing (property)
    fn all_classes_spread_gives_the_target_exactly_one_minus_eps_more_than_the_rest(
        (targets, vocab, eps) in (2..=40usize)
            .prop_flat_map(|v| (prop::collection::vec(0..v, 1..=8), Just(v), 0.0..0.5f64))
    ) {
        // Szegedy et al. / PyTorch: (1 - eps) one-hot plus eps uniform over all V classes.
        // Equivalently: all non-targets equal, the target exceeds them by 1 - eps, sum 1.
        let q = smoothed_targets::<f64>(&targets, vocab, eps, Spread::AllClasses);
        for (i, &t) in targets.iter().enumerate() {
            let other = q[(i, (t + 1) % vocab)];
            for j in (0..vocab).filter(|&j| j != t) {
                assert_abs_diff_eq!(q[(i, j)], other, epsilon = 1e-15);
            }
            assert_abs_diff_eq!(q[(i, t)] - other, 1.0 - eps, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:label-smoothing (property)
    fn other_classes_spread_gives_the_target_exactly_one_minus_eps(
        (targets, vocab, eps) in (2..=40usize)
            .prop_flat_map(|v| (prop::collection::vec(0..v, 1..=8), Just(v), 0.0..0.5f64))
    ) {
        // tensor2tensor: the target keeps 1 - eps, the other V - 1 classes share eps equally.
        let q = smoothed_targets::<f64>(&targets, vocab, eps, Spread::OtherClasses);
        for (i, &t) in targets.iter().enumerate() {
            assert_abs_diff_eq!(q[(i, t)], 1.0 - eps, epsilon = 1e-15);
            let other = q[(i, (t + 1) % vocab)];
            for j in (0..vocab).filter(|&j| j != t) {
                assert_abs_diff_eq!(q[(i, j)], other, epsilon = 1e-15);
            }
        }
    }

    #[test]
    // verifies: eq:label-smoothing (property)
    fn smoothed_loss_is_smallest_when_the_model_predicts_the_smoothed_distribution(
        (logits, targets, eps, spread) in loss_case(-5.0, 5.0, 0.01)
    ) {
        // Gibbs' inequality: the cross-entropy H(q, p) is minimised over p at p = q, where it
        // equals the entropy of q. So no model can beat predicting the smoothed targets, which
        // is why smoothing keeps the model "more unsure".
        let vocab = logits.ncols();
        let q = smoothed_targets::<f64>(&targets, vocab, eps, spread);
        let model = label_smoothed_loss(&log_softmax_rows(&logits), &targets, eps, spread);
        let best = label_smoothed_loss(&q.map(f64::ln), &targets, eps, spread);
        prop_assert!(best <= model + 1e-12, "loss at q {best} above loss of a model {model}");
        let entropy = -q.map(|x| x * x.ln()).sum() / targets.len() as f64;
        assert_abs_diff_eq!(best, entropy, epsilon = 1e-12);
    }

    #[test]
    // verifies: eq:label-smoothing (property)
    fn loss_without_smoothing_is_the_negative_log_likelihood_of_the_targets(
        (logits, targets) in (2..=12usize, 1..=6usize)
            .prop_flat_map(|(v, n)| (matrix(n, v, -5.0, 5.0), prop::collection::vec(0..v, n)))
    ) {
        let log_p = log_softmax_rows(&logits);
        let nll = -targets.iter().enumerate().map(|(i, &t)| log_p[(i, t)]).sum::<f64>()
            / targets.len() as f64;
        for spread in [Spread::AllClasses, Spread::OtherClasses] {
            assert_abs_diff_eq!(label_smoothed_loss(&log_p, &targets, 0.0, spread), nll, epsilon = 1e-12);
        }
    }

    #[test]
    // verifies: eq:loss-backward (property)
    fn the_loss_gradient_is_the_slope_of_the_loss_in_every_log_probability(
        (log_p, targets, eps, spread) in loss_case(-8.0, 0.0, 0.0)
    ) {
        // The loss is linear in the log-probabilities, so a central difference is its slope
        // up to rounding, entry by entry; the mean over positions puts 1/n in every entry.
        let g = label_smoothed_loss_backward::<f64>(&targets, log_p.ncols(), eps, spread);
        prop_assert_eq!(g.shape(), log_p.shape());
        let h = 1e-3;
        for r in 0..log_p.nrows() {
            for c in 0..log_p.ncols() {
                let at = |d: f64| {
                    let mut x = log_p.clone();
                    x[(r, c)] += d;
                    label_smoothed_loss(&x, &targets, eps, spread)
                };
                let slope = (at(h) - at(-h)) / (2.0 * h);
                prop_assert!((g[(r, c)] - slope).abs() <= 1e-9, "({r}, {c}): {} vs {slope}", g[(r, c)]);
            }
        }
    }
}
