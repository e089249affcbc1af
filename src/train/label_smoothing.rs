//! Label smoothing (§5.4), eps_ls = 0.1.
//!
//! Instead of training towards a one-hot target, the model is trained towards a mixture: most
//! of the mass (1 - eps) on the correct token, eps spread over the vocabulary. The paper cites
//! Szegedy et al. (2016), whose form spreads eps uniformly over all V classes, the correct one
//! included (so the correct token gets 1 - eps + eps / V). That is also PyTorch's
//! `CrossEntropyLoss(label_smoothing = eps)`. tensor2tensor spreads eps over the V - 1 wrong
//! classes only. Both are here; the loss is the cross-entropy with the smoothed distribution,
//! averaged over positions.
//!
//! It "hurts perplexity, as the model learns to be more unsure, but improves accuracy and BLEU".

use nalgebra::{DMatrix, RealField};

/// Where the smoothing mass eps goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Spread {
    /// eps / V on every class, the target included (Szegedy et al.; PyTorch).
    #[default]
    AllClasses,
    /// eps / (V - 1) on every class but the target (tensor2tensor).
    OtherClasses,
}

// ANCHOR: smoothed
/// The smoothed target distribution for each position (`eq:label-smoothing`).
///
/// # Shapes
/// `targets`: n ids -> (n, vocab), each row summing to 1.
///
/// # Panics
/// If a target id is not below `vocab`, or `vocab < 2` with [`Spread::OtherClasses`].
pub fn smoothed_targets<T: RealField + Copy>(
    targets: &[usize],
    vocab: usize,
    eps: f64,
    spread: Spread,
) -> DMatrix<T> {
    let (on, off) = match spread {
        Spread::AllClasses => (1.0 - eps + eps / vocab as f64, eps / vocab as f64),
        Spread::OtherClasses => {
            assert!(
                vocab >= 2,
                "label smoothing over the other classes needs vocab >= 2, got {vocab}"
            );
            (1.0 - eps, eps / (vocab - 1) as f64)
        }
    };
    DMatrix::from_fn(targets.len(), vocab, |i, j| {
        assert!(
            targets[i] < vocab,
            "target {} at position {i} is outside the vocabulary of {vocab}",
            targets[i]
        );
        nalgebra::convert(if j == targets[i] { on } else { off })
    })
}
// ANCHOR_END: smoothed

// ANCHOR: loss
/// Cross-entropy of the model's log-probabilities against the smoothed targets, averaged over
/// positions: `-(1/n) sum_i sum_j q_ij log p_ij`.
///
/// # Shapes
/// `log_probs`: (n, vocab), `targets`: n ids -> scalar.
pub fn label_smoothed_loss<T: RealField + Copy>(
    log_probs: &DMatrix<T>,
    targets: &[usize],
    eps: f64,
    spread: Spread,
) -> T {
    assert_eq!(
        log_probs.nrows(),
        targets.len(),
        "loss: {} rows of log-probabilities but {} targets",
        log_probs.nrows(),
        targets.len()
    );
    let q = smoothed_targets::<T>(targets, log_probs.ncols(), eps, spread);
    let n: T = nalgebra::convert(targets.len() as f64);
    -q.component_mul(log_probs).sum() / n
}
// ANCHOR_END: loss

// ANCHOR: loss_backward
/// The gradient of [`label_smoothed_loss`] with respect to the log-probabilities
/// (`eq:loss-backward`): `-q / n`, the smoothed targets over the number of positions. Through
/// the generator's log-softmax this becomes (p - q) / n on the logits: the predicted
/// distribution minus the target one.
///
/// # Shapes
/// `targets`: n ids -> (n, vocab).
pub fn label_smoothed_loss_backward<T: RealField + Copy>(
    targets: &[usize],
    vocab: usize,
    eps: f64,
    spread: Spread,
) -> DMatrix<T> {
    let n: T = nalgebra::convert(targets.len() as f64);
    -smoothed_targets::<T>(targets, vocab, eps, spread) / n
}
// ANCHOR_END: loss_backward
