//! Dropout (§5.4, "Residual Dropout"), P_drop = 0.1 in the base model.
//!
//! The paper applies dropout "to the output of each sub-layer, before it is added to the
//! sub-layer input and normalized" and "to the sums of the embeddings and the positional
//! encodings in both the encoder and decoder stacks". Nowhere else: dropout on the attention
//! weights, which many implementations add, is not in the paper.
//!
//! This is inverted dropout: during training each entry is kept with probability 1 - p and
//! multiplied by 1 / (1 - p), so the expected value of every entry is unchanged and evaluation
//! needs no rescaling: at inference dropout is the identity.
//!
//! Every draw comes from the dropout's own seeded generator, so the same seed gives the same
//! masks. The training loop gives each sequence of a batch its own seed (from the run's seed,
//! the step and the sequence's index), so a run does not depend on how many threads it uses.

use nalgebra::{DMatrix, RealField};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A dropout source: the rate and the generator that draws the masks.
#[derive(Clone, Debug)]
pub struct Dropout {
    /// P_drop, the probability of zeroing an entry.
    pub p: f64,
    rng: Option<StdRng>,
}

/// What the backward pass needs: `None` when nothing was dropped (dropout off), otherwise the
/// factor each entry was multiplied by (0 or 1 / (1 - p)).
pub type DropoutMask<T> = Option<DMatrix<T>>;

impl Dropout {
    /// Dropout switched off: the identity, as at inference.
    pub fn off() -> Self {
        Dropout { p: 0.0, rng: None }
    }

    /// Dropout with rate `p`, its masks drawn from `seed`.
    ///
    /// # Panics
    /// If `p` is not in [0, 1).
    pub fn new(p: f64, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&p),
            "dropout: P_drop = {p} is not in [0, 1)"
        );
        Dropout {
            p,
            rng: (p > 0.0).then(|| StdRng::seed_from_u64(seed)),
        }
    }

    /// Whether this dropout changes anything.
    pub fn is_active(&self) -> bool {
        self.rng.is_some()
    }

    // ANCHOR: dropout
    /// Inverted dropout (`eq:dropout`): each entry is zeroed with probability p and the kept
    /// ones are scaled by 1 / (1 - p). Returns the result and the mask for the backward pass.
    ///
    /// # Shapes
    /// `x`: any (r, c) -> (r, c).
    pub fn apply<T: RealField + Copy>(&mut self, x: &DMatrix<T>) -> (DMatrix<T>, DropoutMask<T>) {
        let Some(rng) = self.rng.as_mut() else {
            return (x.clone(), None); // evaluation mode: the identity
        };
        let keep: T = nalgebra::convert(1.0 / (1.0 - self.p));
        let p = self.p;
        let mask = DMatrix::from_fn(x.nrows(), x.ncols(), |_, _| {
            if rng.random::<f64>() < p {
                T::zero()
            } else {
                keep
            }
        });
        (x.component_mul(&mask), Some(mask))
    }
    // ANCHOR_END: dropout
}

/// The backward pass of [`Dropout::apply`]: the gradient flows through the kept entries,
/// scaled as they were.
pub fn dropout_backward<T: RealField + Copy>(
    mask: &DropoutMask<T>,
    d_y: &DMatrix<T>,
) -> DMatrix<T> {
    match mask {
        None => d_y.clone(),
        Some(mask) => d_y.component_mul(mask),
    }
}
